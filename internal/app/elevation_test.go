package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// elevationRules: developers (bob, carol) may request prod Admin for up to
// an hour of its 4-hour session, approved by admins (alice), with a ticket
// as the reason; they hold prod ReadOnly standing.
const elevationRules = `
accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
grants:
  - id: developers
    group: developers
    roles:
      - {arn: "arn:aws:iam::111122223333:role/ReadOnly", max_session_seconds: 3600}
      - {arn: "arn:aws:iam::111122223333:role/Admin", max_session_seconds: 14400, access: eligible, max_duration: 1h,
         approvers: admins, reason_pattern: "^INC-[0-9]+"}
`

const elevAdminARN = "arn:aws:iam::111122223333:role/Admin"

// hook is a webhook receiver that checks each delivery's signature.
type hook struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	got    []map[string]any
	bad    []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	err := elevation.VerifySignature(h.secret, r.Header.Get("X-Warden-Signature"), body, time.Now(), time.Minute)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.bad = append(h.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev map[string]any
	_ = json.Unmarshal(body, &ev)
	h.got = append(h.got, ev)
}

// types waits until the receiver has events of every type in want.
func (h *hook) waitTypes(want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.mu.Lock()
		seen := map[string]bool{}
		for _, ev := range h.got {
			seen[ev["type"].(string)] = true
		}
		bad := append([]string(nil), h.bad...)
		h.mu.Unlock()
		if len(bad) > 0 {
			h.t.Fatalf("deliveries with a bad signature: %v", bad)
		}
		all := true
		for _, w := range want {
			all = all && seen[w]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("webhook events %v not all received; got %v", want, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestElevationConsole is the elevation flow through wardend's pages on the
// real OpenLDAP and Redis: bob (TOTP) requests prod Admin for 30 minutes,
// alice (an admin, the approver group) approves, and bob's console click
// gets a signed response, checked by xmlsec1, whose SessionDuration ends
// with the window and whose session tags name the request. Webhooks go to
// a receiver that checks every signature and to one that never answers:
// the request and the decision complete all the same. Bad input is a 4xx
// that stores nothing.
func TestElevationConsole(t *testing.T) {
	env := testenv.Require(t, "LDAP_USER_PW")
	o, secrets := elevationOptions(t, "bob", "alice", "carol")

	secret := []byte("elevation-webhook-test-secret")
	good := &hook{t: t, secret: secret}
	goodSrv := httptest.NewServer(good)
	defer goodSrv.Close()
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release) // only when the test is over: every decision below happened while it hung
	o.Elevation.Webhooks = []elevation.WebhookConfig{
		{URL: goodSrv.URL + "/warden", Secret: string(secret)},
		{URL: hung.URL + "/hang", Secret: string(secret), Timeout: time.Minute, Retries: -1},
	}
	base := startApp(t, o)

	signIn := func(name string) *browser {
		b := newBrowser(t, base)
		if code, page := b.signIn(name, env["LDAP_USER_PW"]); code != http.StatusOK || !strings.Contains(page, name) {
			t.Fatalf("%s: sign-in: %d", name, code)
		}
		return b
	}
	factor := func(b *browser, name string, do func() (int, string, http.Header)) (int, string, http.Header) {
		t.Helper()
		return stepUpTOTP(t, b, secrets[name], do)
	}
	bob := signIn("bob")
	home := bob.waitRoles()
	if !strings.Contains(home, "/elevations/new?role="+url.QueryEscape(elevAdminARN)) {
		t.Fatalf("the portal offers no Request for prod Admin:\n%s", home)
	}
	if strings.Contains(home, `value="`+elevAdminARN+`"`) {
		t.Fatal("prod Admin has a Console button before any elevation")
	}
	if code, page, _ := bob.get("/aws/console?role=prod/Admin"); code != http.StatusForbidden || !strings.Contains(page, "request this role") {
		t.Errorf("a bookmark of the eligible role before any elevation: %d, want 403 saying how to request it", code)
	}

	// Bad input: a 4xx, nothing stored.
	// The form asks for a fresh second factor first.
	_, form, _ := factor(bob, "bob", func() (int, string, http.Header) {
		return bob.get("/elevations/new?role=" + url.QueryEscape(elevAdminARN))
	})
	token := csrfRE.FindStringSubmatch(form)
	if token == nil {
		t.Fatalf("no request form:\n%s", form)
	}
	request := func(b *browser, csrf string, v url.Values) (int, string, http.Header) {
		v.Set("csrf_token", csrf)
		return b.post("/elevations", v)
	}
	for _, c := range []struct {
		name string
		v    url.Values
		want int
	}{
		{"over the maximum", url.Values{"role": {elevAdminARN}, "duration": {"2h"}, "reason": {"INC-1"}}, http.StatusBadRequest},
		{"reason not a ticket", url.Values{"role": {elevAdminARN}, "duration": {"30m"}, "reason": {"please"}}, http.StatusBadRequest},
		{"standing role", url.Values{"role": {"arn:aws:iam::111122223333:role/ReadOnly"}, "duration": {"30m"}, "reason": {"INC-1"}}, http.StatusForbidden},
		{"unknown role", url.Values{"role": {"arn:aws:iam::111122223333:role/Root"}, "duration": {"30m"}, "reason": {"INC-1"}}, http.StatusForbidden},
	} {
		if code, _, _ := request(bob, token[1], c.v); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	if _, page, _ := bob.get("/elevations"); strings.Contains(page, "INC-1") {
		t.Error("a refused request was stored")
	}

	code, _, hdr := request(bob, token[1], url.Values{"role": {elevAdminARN}, "duration": {"30m"}, "reason": {"INC-42 disk full"}})
	loc := hdr.Get("Location")
	id := regexp.MustCompile(`^/elevations/([0-9a-f]{32})`).FindStringSubmatch(loc)
	if code != http.StatusSeeOther || id == nil {
		t.Fatalf("request: %d to %q", code, loc)
	}
	good.waitTypes(elevation.EventRequested)

	// Another user's request: as if unknown.
	carol := signIn("carol")
	_, cpage, _ := carol.get("/")
	if code, _, _ := carol.post("/elevations/"+id[1]+"/end", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(cpage)[1]}}); code != http.StatusNotFound {
		t.Errorf("carol ending bob's request: %d, want 404", code)
	}
	if code, _, _ := carol.get("/elevations/" + id[1]); code != http.StatusNotFound {
		t.Errorf("carol reading bob's request: %d, want 404", code)
	}
	// bob cannot approve his own.
	_, own, _ := bob.get("/elevations/" + id[1])
	if code, _, _ := bob.post("/elevations/"+id[1]+"/approve", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(own)[1]}}); code != http.StatusForbidden {
		t.Errorf("bob approving his own request: %d, want 403", code)
	}

	alice := signIn("alice")
	_, list, _ := alice.get("/elevations")
	for _, s := range []string{"bob", "INC-42 disk full", "127.0.0.1", "/elevations/" + id[1] + "/approve"} {
		if !strings.Contains(list, s) {
			t.Errorf("alice's list lacks %q", s)
		}
	}
	code, body, hdr := factor(alice, "alice", func() (int, string, http.Header) {
		_, list, _ := alice.get("/elevations") // the token of the session as it is now (a factor replaces it)
		return alice.post("/elevations/"+id[1]+"/approve", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(list)[1]},
			"comment": {"go ahead"}})
	})
	if code != http.StatusSeeOther || strings.HasPrefix(hdr.Get("Location"), "/mfa") {
		t.Fatalf("approve: %d to %q\n%s", code, hdr.Get("Location"), body)
	}
	approvedAt := time.Now()
	good.waitTypes(elevation.EventRequested, elevation.EventApproved)

	// The console click: signed, capped, tagged.
	home = bob.waitRoles()
	csrf := csrfRE.FindStringSubmatch(home)[1]
	code, body, _ = bob.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {elevAdminARN}})
	if code != http.StatusOK {
		t.Fatalf("console during the elevation: %d\n%s", code, body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(samlRespRe.FindStringSubmatch(body)[1]))
	must(t, err)
	var r samlResponse
	must(t, xml.Unmarshal(raw, &r))
	secs, err := strconv.Atoi(strings.Join(r.attr("https://aws.amazon.com/SAML/Attributes/SessionDuration"), ""))
	must(t, err)
	if left := time.Until(approvedAt.Add(30 * time.Minute)); secs > int(left/time.Second)+1 || secs < 1500 {
		t.Errorf("SessionDuration %d; the window has %v left", secs, left.Round(time.Second))
	}
	if got := r.attr("https://aws.amazon.com/SAML/Attributes/PrincipalTag:WardenElevation"); len(got) != 1 || got[0] != id[1] {
		t.Errorf("WardenElevation tag %v, want %s", got, id[1])
	}
	if got := r.attr("https://aws.amazon.com/SAML/Attributes/PrincipalTag:WardenReason"); len(got) != 1 || got[0] != "INC-42 disk full" {
		t.Errorf("WardenReason tag %v", got)
	}
	if got := r.attr("https://aws.amazon.com/SAML/Attributes/Role"); len(got) != 1 || !strings.HasPrefix(got[0], elevAdminARN+",") {
		t.Errorf("Role %v", got)
	}
	verifyAssertion(t, bob, raw)

	// A standing role's session is not capped.
	code, body, _ = bob.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/ReadOnly"}})
	if code != http.StatusOK {
		t.Fatalf("console ReadOnly: %d", code)
	}
	raw, _ = base64.StdEncoding.DecodeString(html.UnescapeString(samlRespRe.FindStringSubmatch(body)[1]))
	var ro samlResponse
	must(t, xml.Unmarshal(raw, &ro))
	if got := ro.attr("https://aws.amazon.com/SAML/Attributes/SessionDuration"); strings.Join(got, "") != "3600" ||
		ro.attr("https://aws.amazon.com/SAML/Attributes/PrincipalTag:WardenElevation") != nil {
		t.Errorf("ReadOnly: SessionDuration %v, elevation tag %v", got, ro.attr("https://aws.amazon.com/SAML/Attributes/PrincipalTag:WardenElevation"))
	}

	// Ended early: no more hand-offs at once.
	_, own, _ = bob.get("/elevations/" + id[1])
	if code, _, _ := bob.post("/elevations/"+id[1]+"/end", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(own)[1]}}); code != http.StatusSeeOther {
		t.Fatalf("end: %d", code)
	}
	if code, _, _ := bob.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {elevAdminARN}}); code != http.StatusForbidden {
		t.Errorf("console after the end: %d, want 403", code)
	}
	good.waitTypes(elevation.EventRequested, elevation.EventApproved, elevation.EventEnded)
}

// oathTOTP is the TOTP code of secret at at, computed by oathtool.
func oathTOTP(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	out, err := exec.Command(testenv.Binary(t, "oathtool"), "--totp=SHA1", "--digits=6", "--time-step-size=30s", "-b",
		"--now", "@"+strconv.FormatInt(at.Unix(), 10), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// elevationOptions is openLDAPOptions with a key space of the run's own
// (deleted at the end), elevationRules, and a TOTP factor of a random
// secret for each of users, which it returns by name.
func elevationOptions(t testing.TB, users ...string) (Options, map[string]string) {
	t.Helper()
	o := openLDAPOptions(t)
	o.Redis.KeyPrefix = "warden-apptest-elev-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	cleanRedis(t, o.Redis)
	dir := t.TempDir()
	rules := filepath.Join(dir, "mappings.yaml")
	must(t, os.WriteFile(rules, []byte(elevationRules), 0o600))
	o.Admin.RulesFile, o.Admin.RulesReadOnly = rules, true
	key := make([]byte, mfa.KeySize)
	_, _ = rand.Read(key)
	o.MFA.EncryptionKeyFile = filepath.Join(dir, "mfa.key")
	must(t, os.WriteFile(o.MFA.EncryptionKeyFile, []byte(hex.EncodeToString(key)), 0o600))

	secrets := map[string]string{}
	ctx := context.Background()
	d, err := ldap.New(o.Directory)
	must(t, err)
	defer d.Close()
	st, err := store.Open(ctx, o.Redis, slog.New(slog.DiscardHandler))
	must(t, err)
	defer st.Close()
	f, err := mfa.New(st, key, nil, nil)
	must(t, err)
	for _, name := range users {
		u, err := d.Lookup(ctx, name)
		must(t, err)
		raw := make([]byte, 20)
		_, _ = rand.Read(raw)
		secrets[name] = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
		_, err = f.ImportTOTP(ctx, u.ID, "test", secrets[name])
		must(t, err)
	}
	return o, secrets
}

// stepUpTOTP answers the step-up do ran into (a redirect to /mfa) with
// the TOTP code of secret, and runs do again (do reads a CSRF token
// afresh: the factor replaces the session).
func stepUpTOTP(t testing.TB, b *browser, secret string, do func() (int, string, http.Header)) (int, string, http.Header) {
	t.Helper()
	code, body, hdr := do()
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/mfa") {
		return code, body, hdr
	}
	_, page, _ := b.get(hdr.Get("Location"))
	action := totpFormRE.FindStringSubmatch(page)
	if action == nil {
		t.Fatalf("no code form at %s:\n%s", hdr.Get("Location"), page)
	}
	if code, _, h := b.post(html.UnescapeString(action[1]), url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]},
		"code": {oathTOTP(t, secret, time.Now())}}); code != http.StatusSeeOther {
		t.Fatalf("TOTP code: %d to %q", code, h.Get("Location"))
	}
	return do()
}
