package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoginMFAE2E: `warden login --mfa` starts a new device login although
// the cached sign-in (a refresh token) still works, says that the approval
// page will ask for the second factor, and, once the new sign-in succeeds,
// revokes the old grant at the IdP. A plain `warden login` would have said
// "already signed in".
func TestLoginMFAE2E(t *testing.T) {
	idp := startWardend(t)
	a := testApp(t)
	if _, _, err := runCLI(a, "configure", "--idp-url", idp.base); err != nil {
		t.Fatal(err)
	}
	bob := newE2EUser(idp, "bob")
	var opened []string
	browserErr := make(chan error, 1)
	a.OpenBrowser = func(u string) error {
		opened = append(opened, u)
		go func() { browserErr <- bob.open(u, "", true) }()
		return nil
	}
	login := func(args ...string) string {
		t.Helper()
		_, stderr, err := runCLI(a, append([]string{"login"}, args...)...)
		if err != nil {
			t.Fatalf("login %v: %v\n%s", args, err, stderr)
		}
		return stderr
	}
	const notice = "The approval page will ask for your second factor"
	if stderr := login(); strings.Contains(stderr, notice) {
		t.Errorf("plain login mentions the second factor:\n%s", stderr)
	}
	if err := <-browserErr; err != nil {
		t.Fatalf("approval: %v", err)
	}
	var old tokenCache
	if ok, _ := readJSON(a.tokenPath(), &old); !ok || old.RefreshToken == "" {
		t.Fatalf("token cache: %+v", old)
	}

	stderr := login("--mfa")
	if err := <-browserErr; err != nil {
		t.Fatalf("second approval: %v", err)
	}
	if len(opened) != 2 {
		t.Fatalf("browser opened %d times, want a new device login", len(opened))
	}
	for _, want := range []string{notice, "To sign in, open ", "Signed in as bob."} {
		if !strings.Contains(stderr, want) {
			t.Errorf("login --mfa stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "Already signed in") {
		t.Errorf("login --mfa kept the cached sign-in:\n%s", stderr)
	}
	var cur tokenCache
	if ok, _ := readJSON(a.tokenPath(), &cur); !ok || cur.RefreshToken == "" || cur.RefreshToken == old.RefreshToken {
		t.Fatal("the new sign-in was not cached")
	}
	// The old grant is gone at the IdP; the new one works.
	refresh := func(rt string) (int, map[string]any) {
		resp, err := http.PostForm(idp.base+"/oauth/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {rt}, "client_id": {ClientID}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := refresh(old.RefreshToken); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("old refresh token after login --mfa: %d %v", code, body)
	}
	if code, body := refresh(cur.RefreshToken); code != http.StatusOK {
		t.Errorf("new refresh token: %d %v", code, body)
	}
}
