package rolemap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func testWorkload(t *testing.T) (Workload, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := JWKFromKey(&key.PublicKey, "")
	if err != nil {
		t.Fatal(err)
	}
	return Workload{
		ID:          "orders-worker",
		Description: "Sends order events",
		JWKS:        &WorkloadJWKS{Keys: []JWK{jwk}},
		Roles:       []WorkloadRole{{ARN: arn(prod, "orders-sqs"), MaxSessionSeconds: 3600}},
		Tags:        map[string]string{"team": "orders", "cost-centre": "42"},
	}, key
}

func TestWorkloadCompiles(t *testing.T) {
	rs := testRuleSet()
	w, key := testWorkload(t)
	sum := sha256.Sum256([]byte(strings.Repeat("s", 40)))
	rs.Workloads = []Workload{w, {ID: "batch", SecretSHA256: hex.EncodeToString(sum[:]), Disabled: true,
		Roles: []WorkloadRole{{ARN: arn(prod, "orders-sqs")}, {ARN: arn(staging, "Reader")}}}}
	e, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	cw, ok := e.Workload("orders-worker")
	if !ok || len(cw.Keys) != 1 || cw.HasSecret || cw.Disabled {
		t.Fatalf("workload: %+v", cw)
	}
	if !reflect.DeepEqual(cw.Keys[0].Key, &key.PublicKey) || cw.Keys[0].KeyID == "" {
		t.Fatalf("key: %+v", cw.Keys[0])
	}
	g, ok := cw.Grant(arn(prod, "orders-sqs"))
	if !ok || g.AccountID != prod || g.RoleName != "orders-sqs" || g.SessionSeconds != 3600 || g.AccountName == "" {
		t.Fatalf("grant: %+v %v", g, ok)
	}
	if _, ok := cw.Grant(arn(prod, "Admin")); ok {
		t.Fatal("a role the workload does not have was granted")
	}
	if want := []Tag{{Key: "cost-centre", Value: "42"}, {Key: "team", Value: "orders"}}; !reflect.DeepEqual(cw.Tags, want) {
		t.Fatalf("tags %+v", cw.Tags)
	}
	b, ok := e.Workload("batch")
	if !ok || !b.HasSecret || b.SecretHash != sum || !b.Disabled {
		t.Fatalf("batch: %+v", b)
	}
	if got := e.WorkloadsWithRole(arn(prod, "orders-sqs")); len(got) != 2 || got[0].ID != "batch" || got[1].ID != "orders-worker" {
		t.Fatalf("who gets it: %v", got)
	}
	if _, ok := e.Workload("nobody"); ok {
		t.Fatal("unknown workload found")
	}

	// YAML round trip, JSON-shaped JWKS accepted as YAML.
	y, err := rs.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseYAML(y)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Canonical(), rs.Canonical()) {
		t.Fatalf("round trip differs:\n%s", y)
	}
}

func TestWorkloadProblems(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, err := JWKFromKey(&small.PublicKey, "old")
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := JWKFromKey(&p384.PublicKey, ""); err == nil {
		t.Fatal("a P-384 key was turned into a JWK")
	}
	for _, tc := range []struct {
		name   string
		change func(w *Workload)
		want   []string
	}{
		{"id", func(w *Workload) { w.ID = "Orders_Worker" }, []string{`workloads[0].id: must be 1–64 characters of a-z, 0-9 and -, got "Orders_Worker"`}},
		{"no way to authenticate", func(w *Workload) { w.JWKS = nil }, []string{"workloads[0]: a workload needs a way to authenticate"}},
		{"both jwks and url", func(w *Workload) { w.JWKSURL = "https://example.com/jwks" }, []string{"workloads[0].jwks_url: give the keys either inline"}},
		{"http url", func(w *Workload) { w.JWKS, w.JWKSURL = nil, "http://example.com/jwks" }, []string{"workloads[0].jwks_url: must be https (http only on a loopback host)"}},
		{"url with a look-alike loopback host", func(w *Workload) { w.JWKS, w.JWKSURL = nil, "http://127.0.0.1.evil.example/jwks" }, []string{"workloads[0].jwks_url: must be https"}},
		{"url with user info", func(w *Workload) { w.JWKS, w.JWKSURL = nil, "https://u:p@example.com/jwks" }, []string{"workloads[0].jwks_url: must not carry a user name or password"}},
		{"loopback http url", func(w *Workload) { w.JWKS, w.JWKSURL = nil, "http://127.0.0.1:8080/jwks" }, nil},
		{"secret hash", func(w *Workload) { w.SecretSHA256 = "ABC" }, []string{"workloads[0].secret_sha256: must be 64 lower-case hex digits"}},
		{"small RSA key", func(w *Workload) { w.JWKS.Keys = append(w.JWKS.Keys, smallJWK) }, []string{
			"workloads[0].jwks.keys[1]: an RSA key of 1024 bits; at least 2048 are needed"}},
		{"symmetric key", func(w *Workload) { w.JWKS.Keys = []JWK{{Kty: "oct", Kid: "h"}} }, []string{"workloads[0].jwks.keys[0]: a symmetric key (kty oct) cannot be registered"}},
		{"HS256 alg on an EC key", func(w *Workload) { w.JWKS.Keys[0].Alg = "HS256" }, []string{`workloads[0].jwks.keys[0]: alg "HS256": only RS256`}},
		{"broken point", func(w *Workload) { w.JWKS.Keys[0].X = "AAAA" }, []string{"workloads[0].jwks.keys[0]: not a valid EC public key"}},
		{"several keys need kids", func(w *Workload) {
			k := w.JWKS.Keys[0]
			k.Kid = ""
			w.JWKS.Keys = []JWK{k, smallJWK}
		}, []string{"workloads[0].jwks.keys[0].kid: is required when there are several keys",
			"workloads[0].jwks.keys[1]: an RSA key of 1024 bits"}},
		{"duplicate kid", func(w *Workload) {
			k := w.JWKS.Keys[0]
			w.JWKS.Keys = []JWK{k, k}
		}, []string{"workloads[0].jwks.keys[1].kid: duplicate kid"}},
		{"no roles", func(w *Workload) { w.Roles = nil }, []string{"workloads[0].roles: a workload needs at least one role"}},
		{"uncatalogued role", func(w *Workload) { w.Roles[0].ARN = arn("000000000000", "x") }, []string{"workloads[0].roles[0].arn: account 000000000000 is not in the accounts catalogue"}},
		{"role twice", func(w *Workload) { w.Roles = append(w.Roles, w.Roles[0]) }, []string{"workloads[0].roles[1].arn: role listed twice"}},
		{"session length", func(w *Workload) { w.Roles[0].MaxSessionSeconds = 60 }, []string{"workloads[0].roles[0].max_session_seconds: must be 0 (none) or 900–43200"}},
		{"Warden's tag", func(w *Workload) { w.Tags = map[string]string{"wardenrole": "x"} }, []string{"workloads[0].tags.wardenrole: WardenRole is Warden's own session tag"}},
		{"tag case", func(w *Workload) { w.Tags = map[string]string{"Team": "a", "team": "b"} }, []string{"workloads[0].tags.team: same key as Team"}},
		{"tag value", func(w *Workload) { w.Tags = map[string]string{"team": "a\x00b"} }, []string{"workloads[0].tags.team:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := testRuleSet()
			w, _ := testWorkload(t)
			tc.change(&w)
			rs.Workloads = []Workload{w}
			ps := rs.Validate()
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems %v, want %d %v", len(ps), ps, len(tc.want), tc.want)
			}
			for i, want := range tc.want {
				if !strings.Contains(ps[i].String(), want) {
					t.Errorf("problem %d: %q, want it to contain %q", i, ps[i], want)
				}
			}
		})
	}
	rs := testRuleSet()
	w, _ := testWorkload(t)
	rs.Workloads = []Workload{w, w}
	if ps := rs.Validate(); len(ps) != 1 || !strings.Contains(ps[0].String(), `workloads[1].id: duplicate workload ID "orders-worker"`) {
		t.Fatalf("duplicate workload: %v", ps)
	}
}

func TestWorkloadYAMLRefusesPrivateKey(t *testing.T) {
	_, err := ParseYAML([]byte(`workloads:
  - id: w
    jwks:
      keys:
        - {kty: EC, crv: P-256, x: a, y: b, d: secret}
    roles: [{arn: "arn:aws:iam::111122223333:role/x"}]
`))
	if err == nil || !strings.Contains(err.Error(), "workloads[0].jwks.keys[0].d: unknown key") {
		t.Fatalf("err = %v", err)
	}
}
