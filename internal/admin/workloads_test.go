package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"html"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// Test keys: made once per run (RSA generation is slow).
var (
	testECKey     = mustEC()
	testRSAKey    = mustRSA(2048)
	testWeakRSA   = mustRSA(1024)
	testP384Key   = mustECCurve(elliptic.P384())
	arnOrders     = "arn:aws:iam::111122223333:role/orders-sqs"
	arnDeveloper  = "arn:aws:iam::111122223333:role/Developer"
	secretOnPage  = regexp.MustCompile(`<pre class="keys" id="client-secret" data-copy>([A-Za-z0-9_-]+)</pre>`)
	workloadRules = seedRules + `workloads:
  - id: batch
    disabled: true
    secret_sha256: ` + strings.Repeat("ab", 32) + `
    roles:
      - arn: ` + arnDeveloper + `
  - id: orders-worker
    description: Sends order events
    jwks_url: https://keys.example.com/jwks.json
    roles:
      - arn: ` + arnOrders + `
        max_session_seconds: 7200
      - arn: ` + arnDeveloper + `
    tags:
      team: orders
`
)

func mustEC() *ecdsa.PrivateKey { return mustECCurve(elliptic.P256()) }

func mustECCurve(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	//nolint:gosec // the 1024-bit key is the weak key the form must refuse
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// pemPublic is the PEM "PUBLIC KEY" block of pub.
func pemPublic(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// pemPrivate is the PEM "PRIVATE KEY" block of priv.
func pemPrivate(t testing.TB, priv any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// storedWorkload returns workload id of the current stored rules.
func storedWorkload(t *testing.T, e *env, id string) (rolemap.Workload, bool) {
	t.Helper()
	return findWorkload(t, e.rules, id)
}

// storedRealWorkload is storedWorkload on the real stack.
func storedRealWorkload(t *testing.T, s *stack, id string) (rolemap.Workload, bool) {
	t.Helper()
	return findWorkload(t, s.rules, id)
}

func findWorkload(t *testing.T, rules RuleStore, id string) (rolemap.Workload, bool) {
	t.Helper()
	_, doc, err := rules.Current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rs.Workloads {
		if w.ID == id {
			return w, true
		}
	}
	return rolemap.Workload{}, false
}

func workloadForm(version, id, keys, secret string) url.Values {
	return url.Values{"version": {version}, "id": {id}, "description": {"Sends order events to SQS"},
		"roles": {arnOrders + " 7200\n\n" + arnDeveloper}, "tags": {"team=orders\ncost-center = 42"},
		"keys": {keys}, "secret": {secret}}
}

// TestWorkloadPages: create, edit, disable, enable and delete a workload
// through the pages, with PEM and JWKS keys; problems shown by field.
func TestWorkloadPages(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	res := a.get("/admin/workloads")
	if res.code != http.StatusOK || !strings.Contains(res.body, `id="no-workloads"`) ||
		!strings.Contains(res.body, `<a href="/admin/workloads" aria-current="page">Workloads</a>`) {
		t.Fatalf("empty list: %d %s", res.code, res.body)
	}
	if body := a.get("/admin").body; !strings.Contains(body, `id="count-workloads">0<`) {
		t.Errorf("overview lacks the count:\n%s", body)
	}
	a.get("/admin/workloads/new")

	// A PEM key with a kid line, and one without (kid: the thumbprint).
	keys := "kid: k1\n" + pemPublic(t, &testECKey.PublicKey) + pemPublic(t, &testRSAKey.PublicKey)
	res = a.post("/admin/workloads", workloadForm("1", "orders-worker", keys, "none"))
	if res.code != http.StatusSeeOther || res.hdr.Get("Location") != "/admin/workloads?done=created&v=2" {
		t.Fatalf("create: %d %q %s", res.code, res.hdr.Get("Location"), res.body)
	}
	w, ok := storedWorkload(t, e, "orders-worker")
	if !ok || w.JWKS == nil || len(w.JWKS.Keys) != 2 || w.SecretSHA256 != "" || w.Tags["team"] != "orders" || w.Tags["cost-center"] != "42" ||
		len(w.Roles) != 2 || w.Roles[0] != (rolemap.WorkloadRole{ARN: arnOrders, MaxSessionSeconds: 7200}) || w.Roles[1].ARN != arnDeveloper {
		t.Fatalf("stored %+v", w)
	}
	wantEC, _ := rolemap.JWKFromKey(&testECKey.PublicKey, "k1")
	wantRSA, _ := rolemap.JWKFromKey(&testRSAKey.PublicKey, "")
	if w.JWKS.Keys[0] != wantEC || w.JWKS.Keys[1] != wantRSA || len(wantRSA.Kid) != 43 {
		t.Errorf("keys %+v, want %+v and %+v", w.JWKS.Keys, wantEC, wantRSA)
	}
	if evs := e.audit.find("rules.workload.create"); len(evs) != 1 || evs[0].Result != "success" || evs[0].Object != "orders-worker" {
		t.Errorf("audit %+v", evs)
	}
	list := a.get("/admin/workloads?done=created&v=2").body
	for _, want := range []string{"<code>orders-worker</code>", "Sends order events to SQS", "<code>" + arnOrders + "</code>",
		"(up to 7200 s)", "<code>k1 (EC P-256)</code>", "<code>" + wantRSA.Kid + " (RSA 2048 bits)</code>", `id="status-orders-worker">enabled`,
		`id="disable-orders-worker"`, "version 2"} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %s", want)
		}
	}
	if body := a.get("/admin").body; !strings.Contains(body, `id="count-workloads">1<`) {
		t.Error("overview count not 1")
	}

	// The edit form shows the keys as a JWKS; sending it back keeps them.
	edit := a.get("/admin/workloads/orders-worker/edit")
	m := regexp.MustCompile(`(?s)<textarea id="f-keys" name="keys"[^>]*>(.*?)</textarea>`).FindStringSubmatch(edit.body)
	if edit.code != 200 || m == nil || !strings.Contains(m[1], `&#34;keys&#34;`) {
		t.Fatalf("edit form: %d %s", edit.code, edit.body)
	}
	jwks := html.UnescapeString(m[1])
	f := workloadForm("2", "orders-worker", jwks, "none")
	f.Set("description", "Order events")
	if res = a.post("/admin/workloads/orders-worker", f); res.code != http.StatusSeeOther {
		t.Fatalf("update: %d %s", res.code, res.body)
	}
	if w2, _ := storedWorkload(t, e, "orders-worker"); w2.Description != "Order events" || len(w2.JWKS.Keys) != 2 || w2.JWKS.Keys[0] != wantEC {
		t.Errorf("after update %+v", w2)
	}
	// A stale version: refused, the input kept, a link to reload the form.
	if res = a.post("/admin/workloads/orders-worker", f); res.code != http.StatusConflict ||
		!strings.Contains(res.body, `<a href="/admin/workloads/orders-worker/edit">Reload the current rules</a>`) ||
		!strings.Contains(res.body, "Order events") {
		t.Errorf("conflict: %d %s", res.code, res.body)
	}
	// A single JWK (JSON) replaces them.
	one, _ := json.Marshal(wantEC)
	if res = a.post("/admin/workloads/orders-worker", workloadForm("3", "orders-worker", string(one), "none")); res.code != http.StatusSeeOther {
		t.Fatalf("one JWK: %d %s", res.code, res.body)
	}
	if w2, _ := storedWorkload(t, e, "orders-worker"); w2.JWKS == nil || len(w2.JWKS.Keys) != 1 || w2.JWKS.Keys[0] != wantEC {
		t.Errorf("after one JWK %+v", w2.JWKS)
	}

	// Problems, by field, nothing saved.
	before := e.rules.version()
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
		want  string
	}{
		{"bad ARN", func(f url.Values) { f.Set("roles", "arn:aws:iam::1:role/X") }, "roles", "Role 1:"},
		{"uncatalogued account", func(f url.Values) { f.Set("roles", arnOrders+"\narn:aws:iam::999988887777:role/X") }, "roles", "Role 2:"},
		{"bad seconds", func(f url.Values) { f.Set("roles", arnOrders+" soon") }, "roles", `&#34;soon&#34; is not a number`},
		{"short session", func(f url.Values) { f.Set("roles", arnOrders+" 60") }, "roles", "Role 1: session length:"},
		{"no roles", func(f url.Values) { f.Set("roles", "") }, "roles", "at least one role"},
		{"bad tag", func(f url.Values) { f.Set("tags", "no equals sign") }, "tags", "Line 1: write key=value."},
		{"own tag", func(f url.Values) { f.Set("tags", "WardenRole=x") }, "tags", "WardenRole: "},
		{"bad id", func(f url.Values) { f.Set("id", "Orders Worker") }, "id", "a-z, 0-9"},
		{"keys and URL", func(f url.Values) { f.Set("jwks_url", "https://keys.example.com/jwks.json") }, "jwks-url", "not both"},
		{"http URL", func(f url.Values) { f.Set("keys", ""); f.Set("jwks_url", "http://keys.example.com/jwks.json") }, "jwks-url", "https"},
		{"not a key", func(f url.Values) { f.Set("keys", "hello") }, "keys", "Paste a JWKS"},
		{"weak RSA (PEM)", func(f url.Values) { f.Set("keys", pemPublic(t, &testWeakRSA.PublicKey)) }, "keys", "Key 1 is an RSA key of 1024 bits; at least 2048 are needed."},
		{"weak RSA (JWK)", func(f url.Values) {
			k, _ := rolemap.JWKFromKey(&testWeakRSA.PublicKey, "old")
			b, _ := json.Marshal(map[string]any{"keys": []any{k}})
			f.Set("keys", string(b))
		}, "keys", "Key 1: an RSA key of 1024 bits; at least 2048 are needed"},
		{"P-384", func(f url.Values) { f.Set("keys", pemPublic(t, &testP384Key.PublicKey)) }, "keys", "only P-256"},
		{"two keys, one kid", func(f url.Values) {
			k1, _ := rolemap.JWKFromKey(&testECKey.PublicKey, "same")
			k2, _ := rolemap.JWKFromKey(&testRSAKey.PublicKey, "same")
			b, _ := json.Marshal(map[string]any{"keys": []any{k1, k2}})
			f.Set("keys", string(b))
		}, "keys", "Key 2: kid: duplicate kid"},
		{"keep without a secret", func(f url.Values) { f.Set("secret", "bogus") }, "secret", "Choose none, keep or generate."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := workloadForm("4", "orders-worker", pemPublic(t, &testECKey.PublicKey), "none")
			tc.edit(f)
			res := a.post("/admin/workloads/orders-worker", f)
			errs := regexp.MustCompile(`(?s)id="f-` + tc.field + `-err">(.*?)</(p|div)>`).FindStringSubmatch(res.body)
			if res.code != http.StatusUnprocessableEntity || errs == nil || !strings.Contains(errs[1], tc.want) {
				t.Errorf("%d, want 422 with %q on %s:\n%s", res.code, tc.want, tc.field, res.body)
			}
		})
	}
	// No way to authenticate: a problem of the whole workload.
	res = a.post("/admin/workloads/orders-worker", workloadForm("4", "orders-worker", "", "none"))
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `id="problems"`) || !strings.Contains(res.body, "a way to authenticate") {
		t.Errorf("no auth: %d %s", res.code, res.body)
	}
	if e.rules.version() != before {
		t.Fatal("an invalid workload was saved")
	}

	// Disable, at once a rules change; then enable.
	a.get("/admin/workloads")
	res = a.post("/admin/workloads/orders-worker/disable", url.Values{"version": {"4"}})
	if res.code != http.StatusSeeOther || res.hdr.Get("Location") != "/admin/workloads?done=disabled&v=5" {
		t.Fatalf("disable: %d %q %s", res.code, res.hdr.Get("Location"), res.body)
	}
	if w, _ := storedWorkload(t, e, "orders-worker"); !w.Disabled || w.JWKS == nil {
		t.Errorf("not disabled: %+v", w)
	}
	list = a.get("/admin/workloads?done=disabled&v=5").body
	if !strings.Contains(list, `id="status-orders-worker">disabled`) || !strings.Contains(list, `id="enable-orders-worker"`) ||
		!strings.Contains(list, "Disabled: its token requests are refused") {
		t.Errorf("list after disable:\n%s", list)
	}
	if evs := e.audit.find("rules.workload.disable"); len(evs) != 1 || !strings.Contains(evs[0].After, `"disabled":true`) ||
		strings.Contains(evs[0].Before, `"disabled"`) {
		t.Errorf("disable audit %+v", evs)
	}
	if res = a.post("/admin/workloads/orders-worker/enable", url.Values{"version": {"4"}}); res.code != http.StatusConflict {
		t.Errorf("stale enable: %d", res.code)
	}
	if res = a.post("/admin/workloads/orders-worker/enable", url.Values{"version": {"5"}}); res.code != http.StatusSeeOther {
		t.Fatalf("enable: %d %s", res.code, res.body)
	}
	if w, _ := storedWorkload(t, e, "orders-worker"); w.Disabled {
		t.Error("still disabled")
	}
	if res = a.post("/admin/workloads/nobody/disable", url.Values{"version": {"6"}}); res.code != http.StatusNotFound {
		t.Errorf("disable unknown: %d", res.code)
	}

	// Delete.
	if res = a.post("/admin/workloads/orders-worker/delete", url.Values{"version": {"6"}}); res.code != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	if _, ok := storedWorkload(t, e, "orders-worker"); ok {
		t.Error("not deleted")
	}
	if res = a.get("/admin/workloads/orders-worker/edit"); res.code != http.StatusNotFound {
		t.Errorf("edit deleted: %d", res.code)
	}
}

// TestWorkloadPrivateKeyRefused: a private key (PEM or JWK) is refused
// with a clear message, not stored, and not sent back in the form.
func TestWorkloadPrivateKeyRefused(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin/workloads/new")
	privJWK, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB", "d": "c2VjcmV0LXNjYWxhcg"})
	ecDER, _ := x509.MarshalECPrivateKey(testECKey)
	for _, tc := range []struct{ name, keys, want, secret string }{
		{"PKCS#8", pemPrivate(t, testRSAKey), "Key 1 is a private key (PRIVATE KEY): paste only its public half", "MII"},
		{"SEC 1", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})), "Key 1 is a private key (EC PRIVATE KEY)", "MHc"},
		{"public then private", pemPublic(t, &testECKey.PublicKey) + pemPrivate(t, testECKey), "Key 2 is a private key", "MIG"},
		{"JWK", string(privJWK), `Key 1 is a private key (it has the member &#34;d&#34;)`, "c2VjcmV0LXNjYWxhcg"},
		{"symmetric", `{"kty":"oct","k":"c2VjcmV0LXNjYWxhcg"}`, "symmetric key (kty oct)", "c2VjcmV0LXNjYWxhcg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := a.post("/admin/workloads", workloadForm("1", "orders-worker", tc.keys, "none"))
			if res.code != http.StatusUnprocessableEntity || !fieldErr("keys").MatchString(res.body) || !strings.Contains(res.body, tc.want) {
				t.Errorf("%d, want 422 with %q:\n%s", res.code, tc.want, res.body)
			}
			if strings.Contains(res.body, tc.secret) {
				t.Error("the page sends the private key back")
			}
		})
	}
	if e.rules.version() != 1 {
		t.Error("a private key was saved")
	}
	if strings.Contains(e.logs.String(), "PRIVATE KEY") {
		t.Error("the log holds the private key")
	}
}

// TestWorkloadSecret: a generated secret is shown once (not cached), only
// its hash is stored; keeping it on edit needs no re-entry; it is never in
// the audit, the log, the API or a later page.
func TestWorkloadSecret(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	e.admin.SetAWSSetup(awsfed.SetupOptions{Issuer: "https://sso.example.com/", STSAudience: "sts.amazonaws.com"})
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin/workloads/new")
	res := a.post("/admin/workloads", workloadForm("1", "batch", "", "generate"))
	m := secretOnPage.FindStringSubmatch(res.body)
	if res.code != http.StatusOK || m == nil || res.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("secret page: %d %q %s", res.code, res.hdr.Get("Cache-Control"), res.body)
	}
	secret := m[1]
	if len(secret) != 43 || !strings.Contains(res.body, `<code id="token-endpoint">https://sso.example.com/oauth/token</code>`) ||
		!strings.Contains(res.body, `<code id="client-id">batch</code>`) || !strings.Contains(res.body, "version 2") {
		t.Errorf("secret %q; page:\n%s", secret, res.body)
	}
	sum := sha256.Sum256([]byte(secret))
	hash := hex.EncodeToString(sum[:])
	w, _ := storedWorkload(t, e, "batch")
	if w.SecretSHA256 != hash {
		t.Fatalf("stored hash %q, want %q", w.SecretSHA256, hash)
	}
	// Keep it on edit: the form offers it and needs nothing typed.
	edit := a.get("/admin/workloads/batch/edit").body
	if !strings.Contains(edit, `value="keep" checked`) || !strings.Contains(edit, hash[:12]) || strings.Contains(edit, secret) {
		t.Errorf("edit form:\n%s", edit)
	}
	f := workloadForm("2", "batch", "", "keep")
	f.Set("description", "nightly")
	f.Set("has_secret", hash[:12]+"…")
	if res = a.post("/admin/workloads/batch", f); res.code != http.StatusSeeOther {
		t.Fatalf("keep: %d %s", res.code, res.body)
	}
	if w, _ := storedWorkload(t, e, "batch"); w.SecretSHA256 != hash || w.Description != "nightly" {
		t.Errorf("after keep %+v", w)
	}
	// "keep" takes the stored hash, not one the form could carry.
	f.Set("description", "again")
	f.Set("version", "3")
	f.Set("secret_sha256", strings.Repeat("0", 64))
	if res = a.post("/admin/workloads/batch", f); res.code != http.StatusSeeOther {
		t.Fatalf("keep again: %d", res.code)
	}
	if w, _ := storedWorkload(t, e, "batch"); w.SecretSHA256 != hash {
		t.Error("keep lost the hash")
	}
	// A new workload has none to keep.
	if res = a.post("/admin/workloads", workloadForm("4", "other", "", "keep")); res.code != 422 || !fieldErr("secret").MatchString(res.body) {
		t.Errorf("keep on create: %d", res.code)
	}
	// Rotate: a new secret, a new hash.
	res = a.post("/admin/workloads/batch", workloadForm("4", "batch", "", "generate"))
	m2 := secretOnPage.FindStringSubmatch(res.body)
	if m2 == nil || m2[1] == secret {
		t.Fatalf("rotate: %d %s", res.code, res.body)
	}
	if w, _ := storedWorkload(t, e, "batch"); w.SecretSHA256 != secretHash(m2[1]) {
		t.Error("rotated hash not stored")
	}
	// A form problem generates nothing (and shows nothing).
	bad := workloadForm("5", "batch", "", "generate")
	bad.Set("tags", "x")
	if res = a.post("/admin/workloads/batch", bad); res.code != 422 || secretOnPage.MatchString(res.body) {
		t.Errorf("generate with a problem: %d", res.code)
	}

	// Neither secret anywhere else.
	_, doc, _ := e.rules.Current(t.Context())
	for _, s := range []string{secret, m2[1]} {
		if strings.Contains(string(doc), s) || strings.Contains(e.logs.String(), s) {
			t.Error("the secret is stored or logged")
		}
		for _, ev := range e.audit.events {
			if strings.Contains(ev.Before+ev.After+ev.Object, s) || strings.Contains(strings.Join(mapValues(ev.Detail), " "), s) {
				t.Errorf("the secret is in the audit: %+v", ev)
			}
		}
		for _, p := range []string{"/admin/workloads", "/admin/workloads/batch/edit", "/admin/api/workloads/batch", "/admin/api/rules", "/admin/export", "/admin/history/5"} {
			if strings.Contains(a.get(p).body, s) {
				t.Errorf("%s shows the secret", p)
			}
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestWorkloadAPI: the JSON API of workloads, like that of grants.
func TestWorkloadAPI(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, seedRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	a.get("/admin")
	k, _ := rolemap.JWKFromKey(&testECKey.PublicKey, "k1")
	body := map[string]any{"id": "orders-worker", "jwks": map[string]any{"keys": []any{k}},
		"roles": []any{map[string]any{"arn": arnOrders, "max_session_seconds": 3600}}, "tags": map[string]string{"team": "orders"}}
	if res := a.api("POST", "/admin/api/workloads", body); res.code != http.StatusPreconditionRequired {
		t.Errorf("no version: %d", res.code)
	}
	res := a.api("POST", "/admin/api/workloads", body, "If-Match", `"1"`)
	if res.code != http.StatusCreated || res.json(t)["version"].(float64) != 2 || res.json(t)["workload"] == nil || res.json(t)["client_secret"] != nil {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/workloads", body, "If-Match", "2"); res.code != http.StatusConflict {
		t.Errorf("duplicate: %d %s", res.code, res.body)
	}
	list := a.api("GET", "/admin/api/workloads", nil)
	ws, _ := list.json(t)["workloads"].([]any)
	if list.code != 200 || len(ws) != 1 || list.hdr.Get("ETag") != `"2"` {
		t.Fatalf("list: %d %s", list.code, list.body)
	}
	// Problems with paths; unknown fields refused.
	weak, _ := rolemap.JWKFromKey(&testWeakRSA.PublicKey, "old")
	bad := map[string]any{"id": "weak", "jwks": map[string]any{"keys": []any{weak}}, "roles": []any{map[string]any{"arn": arnOrders}}}
	res = a.api("POST", "/admin/api/workloads", bad, "If-Match", "2")
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `"path":"workloads[1].jwks.keys[0]"`) ||
		!strings.Contains(res.body, "1024 bits") {
		t.Errorf("weak key: %d %s", res.code, res.body)
	}
	if res := a.api("POST", "/admin/api/workloads", map[string]any{"id": "x", "client_secret": "s"}, "If-Match", "2"); res.code != 400 ||
		!strings.Contains(res.body, "unknown field") {
		t.Errorf("unknown field: %d %s", res.code, res.body)
	}
	// A generated secret comes back once; GET never returns it.
	res = a.api("PUT", "/admin/api/workloads/orders-worker?generate_secret=true", body, "If-Match", "2")
	secret, _ := res.json(t)["client_secret"].(string)
	if res.code != 200 || len(secret) != 43 || res.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("generate: %d %s", res.code, res.body)
	}
	got := a.api("GET", "/admin/api/workloads/orders-worker", nil)
	w, _ := got.json(t)["workload"].(map[string]any)
	if got.code != 200 || w["secret_sha256"] != secretHash(secret) || strings.Contains(got.body, secret) || strings.Contains(got.body, "client_secret") {
		t.Errorf("get: %d %s", got.code, got.body)
	}
	for _, q := range []string{"generate_secret=maybe"} {
		if res := a.api("PUT", "/admin/api/workloads/orders-worker?"+q, body, "If-Match", "3"); res.code != 400 {
			t.Errorf("%s: %d", q, res.code)
		}
	}
	if res := a.api("DELETE", "/admin/api/grants/devs?generate_secret=true", nil, "If-Match", "3"); res.code != 400 {
		t.Errorf("generate_secret on a grant: %d", res.code)
	}
	// Disable through the API (a PUT), then delete.
	body["disabled"] = true
	body["secret_sha256"] = secretHash(secret)
	if res := a.api("PUT", "/admin/api/workloads/orders-worker", body, "If-Match", "3"); res.code != 200 {
		t.Fatalf("disable: %d %s", res.code, res.body)
	}
	if w, _ := storedWorkload(t, e, "orders-worker"); !w.Disabled || w.SecretSHA256 != secretHash(secret) {
		t.Errorf("after PUT %+v", w)
	}
	if evs := e.audit.find("rules.workload.update"); len(evs) != 2 || strings.Contains(evs[0].After+evs[1].After, secret) {
		t.Errorf("update audit %+v", evs)
	}
	if res := a.api("DELETE", "/admin/api/workloads/orders-worker", nil, "If-Match", "4"); res.code != 200 {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	if res := a.api("GET", "/admin/api/workloads/orders-worker", nil); res.code != 404 {
		t.Errorf("get deleted: %d", res.code)
	}
}

// TestWhoGetsRole: "who gets what" for a role lists the grant rules and
// the workloads, disabled ones marked.
func TestWhoGetsRole(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, workloadRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	res := a.get("/admin/whogets?role=" + url.QueryEscape(arnDeveloper))
	if res.code != http.StatusOK {
		t.Fatalf("%d %s", res.code, res.body)
	}
	sec := res.body[strings.Index(res.body, `id="role-result"`):]
	grants := sec[strings.Index(sec, `id="role-grants"`):strings.Index(sec, "<h3>Workloads")]
	wl := sec[strings.Index(sec, `id="role-workloads"`):]
	if !strings.Contains(grants, "<code>devs</code>") || !strings.Contains(grants, "developers") || !strings.Contains(grants, "3600 s") {
		t.Errorf("grant rules:\n%s", grants)
	}
	if !strings.Contains(sec, "<code>adfs</code>") {
		t.Errorf("the pattern rule that may give it is not listed:\n%s", sec)
	}
	i, j := strings.Index(wl, "<code>batch</code>"), strings.Index(wl, "<code>orders-worker</code>")
	if i < 0 || j < i || !strings.Contains(wl[i:j], "disabled") || strings.Contains(wl[j:], ">disabled<") {
		t.Errorf("workloads:\n%s", wl)
	}
	res = a.get("/admin/whogets?role=" + url.QueryEscape(arnOrders))
	wl = res.body[strings.Index(res.body, `id="role-workloads"`):]
	if !strings.Contains(wl, "orders-worker") || strings.Contains(wl, "batch") || !strings.Contains(wl, "up to 7200 s") ||
		!strings.Contains(res.body, `id="no-role-grants"`) {
		t.Errorf("orders role:\n%s", res.body)
	}
	res = a.get("/admin/whogets?role=" + url.QueryEscape("arn:aws:iam::111122223333:role/Nobody"))
	if !strings.Contains(res.body, `id="no-role-workloads"`) {
		t.Errorf("unknown role:\n%s", res.body)
	}
	if res = a.get("/admin/whogets?role=Developer"); res.code != http.StatusUnprocessableEntity || !fieldErr("role").MatchString(res.body) {
		t.Errorf("not an ARN: %d", res.code)
	}
}

// TestAWSSetupWorkloads: roles of workloads are set up (web identity, a
// session covering theirs); a role a workload gets never requires MFA,
// with a note when a grant rule requires it.
func TestAWSSetupWorkloads(t *testing.T) {
	rs, err := rolemap.ParseYAML([]byte(strings.Replace(workloadRules, "        max_session_seconds: 3600\n",
		"        max_session_seconds: 3600\n        require_mfa: true\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ps := rs.Validate(); len(ps) > 0 {
		t.Fatalf("rules: %v", ps)
	}
	opts := awsfed.SetupOptions{SAML: true, SAMLPartition: "aws", Issuer: "https://sso.example.com", STSAudience: "sts.amazonaws.com",
		MetadataURL: "https://sso.example.com/saml/metadata", MFAMethods: []string{"webauthn", "totp"}}
	accts, notes := AWSSetupAccounts(rs, opts)
	roles := map[string]awsfed.SetupRole{}
	for _, r := range accts[0].Roles {
		roles[r.ARN] = r
	}
	if r, ok := roles[arnOrders]; !ok || r.SessionSeconds != 7200 || r.RequireMFA {
		t.Errorf("workload-only role %+v (%v)", r, ok)
	}
	if r := roles[arnDeveloper]; r.RequireMFA || r.SessionSeconds != 3600 {
		t.Errorf("shared role %+v", r)
	}
	found := false
	for _, n := range notes {
		if strings.HasPrefix(n, "role "+arnDeveloper+" requires MFA in grant rule devs, but workloads batch, orders-worker also get it") {
			found = true
		}
	}
	if !found {
		t.Errorf("no MFA note: %q", notes)
	}
	s, err := AWSSetup(rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Accounts[0].Roles {
		pol := r.TrustPolicy.JSON()
		if !strings.Contains(pol, "sts:AssumeRoleWithWebIdentity") || strings.Contains(pol, "WardenMFA") || r.MaxSessionDuration < r.SessionSeconds {
			t.Errorf("role %s: %d/%d %s", r.ARN, r.SessionSeconds, r.MaxSessionDuration, pol)
		}
		// Nobody signs in to a role only workloads get: no SAML trust.
		if saml := strings.Contains(pol, "sts:AssumeRoleWithSAML"); saml != (r.ARN != arnOrders) {
			t.Errorf("role %s: SAML statement %v: %s", r.ARN, saml, pol)
		}
	}
	// Without an issuer the workloads cannot get their roles: a note.
	opts.Issuer = ""
	if _, notes := AWSSetupAccounts(rs, opts); !strings.Contains(strings.Join(notes, "\n"), "no OIDC issuer is set") {
		t.Errorf("no issuer note: %q", notes)
	}
	// Without workloads the grant rule's MFA is the trust policy's again.
	rs.Workloads = nil
	accts, _ = AWSSetupAccounts(rs, opts)
	if len(accts[0].Roles) != 1 || !accts[0].Roles[0].RequireMFA {
		t.Errorf("without workloads %+v", accts[0].Roles)
	}

	// The page names the workloads of each role.
	e := newEnv(t, Config{})
	seed(t, e, workloadRules)
	e.admin.SetAWSSetup(awsfed.SetupOptions{SAML: true, SAMLPartition: "aws", Issuer: "https://sso.example.com", STSAudience: "sts.amazonaws.com"})
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	page := a.get("/admin/aws-setup").body
	for _, want := range []string{"<code>" + arnOrders + "</code>", "workloads: orders-worker</span>", "workloads: batch, orders-worker</span>",
		"MaxSessionDuration 7200 s (sessions of up to 7200 s)", `data-role="` + arnOrders + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("AWS setup page lacks %s", want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	ec, _ := rolemap.JWKFromKey(&testECKey.PublicKey, "")
	rsaCert := func() string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testRSAKey.PublicKey, testRSAKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}()
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testRSAKey.PublicKey)}))
	for _, tc := range []struct {
		name, text string
		n          int
		problem    string
	}{
		{"empty", "  ", 0, ""},
		{"JWKS", `{"keys":[` + mustJSON(ec) + `]}`, 1, ""},
		{"JWK with extra members", `{"kty":"EC","crv":"P-256","x":"` + ec.X + `","y":"` + ec.Y + `","key_ops":["verify"],"ext":true}`, 1, ""},
		{"array", `[` + mustJSON(ec) + `,` + mustJSON(ec) + `]`, 2, ""},
		{"PEM, certificate, PKCS#1", pemPublic(t, &testECKey.PublicKey) + "\nkid=cert\n" + rsaCert + pkcs1, 3, ""},
		{"garbage JSON", `{"keys": [}`, 0, "Not valid JSON"},
		{"two JSON values", mustJSON(ec) + " {}", 0, "more after the JSON"},
		{"empty set", `{"keys":[]}`, 0, "no keys"},
		{"truncated PEM", strings.Split(pemPublic(t, &testECKey.PublicKey), "-----END")[0], 0, "not a complete PEM block"},
		{"text before", "hello\n" + pemPublic(t, &testECKey.PublicKey), 0, "there is text before it"},
		{"text after", pemPublic(t, &testECKey.PublicKey) + "bye", 1, "text after the last PEM block"},
		{"other block", string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PUBLIC KEY", Bytes: []byte{1}})), 0, `type "OPENSSH PUBLIC KEY"`},
		// What `warden workload keygen` prints.
		{"keygen's YAML", "# the workload's public key\njwks:\n  keys:\n    - kty: EC\n      kid: " + ec.Kid + "\n      crv: P-256\n      x: " + ec.X +
			"\n      \"y\": " + ec.Y + "\n", 1, ""},
		{"YAML keys", "keys:\n  - {kty: EC, crv: P-256, x: " + ec.X + ", \"y\": " + ec.Y + "}\n", 1, ""},
		{"YAML without keys", "name: x\n", 0, "Paste a JWKS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, problems, _ := parseKeys(tc.text)
			if len(keys) != tc.n || (tc.problem == "") != (len(problems) == 0) ||
				tc.problem != "" && !strings.Contains(strings.Join(problems, " "), tc.problem) {
				t.Errorf("%d keys %v, problems %q; want %d, %q", len(keys), keys, problems, tc.n, tc.problem)
			}
		})
	}
	if _, _, private := parseKeys("jwks:\n  keys:\n    - {kty: EC, crv: P-256, x: " + ec.X + ", \"y\": " + ec.Y + ", d: " + ec.X + "}\n"); !private {
		t.Error("a private key in YAML was not recognised as one")
	}
	keys, _, _ := parseKeys(pemPublic(t, &testECKey.PublicKey) + "kid: second\n" + pemPublic(t, &testRSAKey.PublicKey))
	if len(keys) != 2 || keys[0].Kid != ec.Kid || keys[1].Kid != "second" {
		t.Errorf("kids %+v", keys)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestRealStackWorkloads: a workload through the pages and the API on the
// real Redis store: created with a generated secret (only its hash in the
// stored rules and the history), disabled, read back, deleted; the audit
// lands in the real stream without the secret.
func TestRealStackWorkloads(t *testing.T) {
	s := realStack(t)
	a := newClient(t, s.base)
	a.login("alice", s.userPW)
	a.get("/admin")
	if res := a.api("POST", "/admin/api/accounts", map[string]any{"id": "111122223333", "name": "prod", "saml_provider": "warden"},
		"If-Match", "0"); res.code != http.StatusCreated {
		t.Fatalf("account: %d %s", res.code, res.body)
	}
	a.get("/admin/workloads/new")
	res := a.post("/admin/workloads", workloadForm("1", "orders-worker", pemPublic(t, &testECKey.PublicKey), "generate"))
	m := secretOnPage.FindStringSubmatch(res.body)
	if res.code != http.StatusOK || m == nil {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	secret := m[1]
	_, doc, err := s.rules.Current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "secret_sha256: "+secretHash(secret)) || strings.Contains(string(doc), secret) {
		t.Errorf("stored rules:\n%s", doc)
	}
	a.get("/admin/workloads")
	if res = a.post("/admin/workloads/orders-worker/disable", url.Values{"version": {"2"}}); res.code != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", res.code, res.body)
	}
	got := a.api("GET", "/admin/api/workloads/orders-worker", nil)
	w, _ := got.json(t)["workload"].(map[string]any)
	if got.code != 200 || w["disabled"] != true || w["secret_sha256"] != secretHash(secret) || strings.Contains(got.body, secret) {
		t.Errorf("api: %d %s", got.code, got.body)
	}
	if h := a.get("/admin/history/3").body; !strings.Contains(h, "disabled: true") || strings.Contains(h, secret) {
		t.Errorf("history:\n%s", h)
	}
	if res = a.api("DELETE", "/admin/api/workloads/orders-worker", nil, "If-Match", "3"); res.code != 200 {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	evs, _, err := s.auditLog.Query(t.Context(), store.AuditQuery{Object: "orders-worker", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, e := range evs {
		actions[e.Action] = e.Result
		if strings.Contains(e.Before+e.After, secret) {
			t.Errorf("the secret is in the audit stream: %+v", e)
		}
	}
	for _, want := range []string{"rules.workload.create", "rules.workload.disable", "rules.workload.delete"} {
		if actions[want] != "success" {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
}

// TestWorkloadsReadOnly: with the rules in a file, the workloads are shown
// without forms or toggles, and every change is refused.
func TestWorkloadsReadOnly(t *testing.T) {
	e := newEnv(t, Config{RulesFile: "/etc/warden/rules.yaml", RulesReadOnly: true})
	seed(t, e, workloadRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	for _, p := range []string{"/admin/workloads", "/admin/workloads/orders-worker/edit", "/admin/workloads/batch/edit"} {
		body := a.get(p).body
		if strings.Contains(body, `method="post"`) || strings.Contains(body, "New workload") || !strings.Contains(body, "Read-only") {
			t.Errorf("%s shows forms in read-only mode:\n%s", p, body)
		}
	}
	if body := a.get("/admin/workloads/batch/edit").body; !strings.Contains(body, "registered <span class=\"muted\">(SHA-256 abababababab…)") ||
		!strings.Contains(body, "<dd>disabled</dd>") {
		t.Errorf("batch facts:\n%s", body)
	}
	if res := a.get("/admin/workloads/new"); res.code != http.StatusForbidden {
		t.Errorf("new form: %d", res.code)
	}
	if res := a.post("/admin/workloads/batch/enable", url.Values{"version": {"1"}}); res.code != http.StatusForbidden {
		t.Errorf("enable: %d", res.code)
	}
	if e.rules.version() != 1 {
		t.Error("a change was saved in read-only mode")
	}
}
