package portal

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/accesskeys"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// TestAccessKeysPanel: the panel's pages and refusals with the real
// accesskeys service; its STS is a port nothing listens on, so a valid
// request ends at "AWS gave no keys" (the success, with moto, is
// internal/app's TestAccessKeysAgainstMoto).
func TestAccessKeysPanel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	signed := 0
	svc, err := accesskeys.New(accesskeys.Config{STSEndpoint: closed}, accesskeys.Deps{
		Signer: accesskeys.SignerFunc(func(context.Context, identity.User, identity.Authn, rolemap.Grant, rolemap.Result) (string, error) {
			signed++
			return "PHNhbWxwOlJlc3BvbnNlLz4=", nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": bobGrants}, acs: "https://signin.aws.amazon.com/saml"}
	e := newEnv(t, withBackend(p), withKeys(svc))
	b := signedIn(t, e)

	home := b.get("/").Body.String()
	if n := strings.Count(home, `class="keys small"`); n != len(bobGrants) {
		t.Errorf("%d Access keys links, want %d", n, len(bobGrants))
	}
	staging := "arn:aws:iam::444455556666:role/PowerUser" // 8 h
	rec := b.get(KeysPath + "?role=" + url.QueryEscape(staging))
	page := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(page, "PowerUser") {
		t.Fatalf("panel: %d\n%s", rec.Code, page)
	}
	for _, opt := range []string{`value="900">15 min`, `value="7200">2 h`, `value="28800">8 h`, `value="3600" selected>1 h`} {
		if !strings.Contains(page, opt) {
			t.Errorf("no option %s", opt)
		}
	}
	if strings.Contains(page, `value="43200"`) {
		t.Error("12 h offered for an 8 h role")
	}
	csrf := csrfFrom(t, page)
	post := func(role, dur string) (int, string) {
		rec := b.post(KeysPath, url.Values{"csrf_token": {csrf}, "role": {role}, "duration": {dur}})
		return rec.Code, rec.Body.String()
	}
	if code, body := post(staging, "43200"); code != http.StatusBadRequest || !strings.Contains(body, "Not that long") {
		t.Errorf("12 h: %d", code)
	}
	if code, _ := post("arn:aws:iam::111122223333:role/AdministratorAccess", "900"); code != http.StatusForbidden {
		t.Errorf("a role bob does not hold: %d", code)
	}
	if code, _ := post(staging, ""); code != http.StatusBadRequest {
		t.Errorf("no duration: %d", code)
	}
	if signed != 0 {
		t.Errorf("signed %d responses for refused requests", signed)
	}
	code, body := post(staging, "900")
	if code != http.StatusBadGateway || !strings.Contains(body, "AWS gave no keys") || signed != 1 {
		t.Errorf("STS unreachable: %d (signed %d)\n%s", code, signed, body)
	}

	// Without the panel: no links, no routes.
	e2, _ := newPortalEnv(t)
	b2 := signedIn(t, e2)
	if strings.Contains(b2.get("/").Body.String(), `class="keys small"`) {
		t.Error("Access keys links without the panel")
	}
	if rec := b2.get(KeysPath + "?role=" + url.QueryEscape(staging)); rec.Code != http.StatusNotFound {
		t.Errorf("panel route without the panel: %d", rec.Code)
	}
}
