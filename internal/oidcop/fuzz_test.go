package oidcop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/rolemap"
)

// FuzzExchangeForm posts any form to the token exchange (the fixture's
// directory and token store are up, so nothing is a 5xx): the answer is
// JSON, never cached, and either an OAuth error (400 or 401, a known code
// with a description, no token) or a token of the requested type for a
// role that the subject token's user holds by the rules. Seeds: below and
// testdata/fuzz/FuzzExchangeForm.
func FuzzExchangeForm(f *testing.F) {
	fx := newXFixture(f)
	for _, s := range []string{
		xForm("tok-bob", TokenTypeSAML2, xProdRO).Encode(),
		xForm("tok-bob", TokenTypeIDToken, xProdRO).Encode() + "&audience=sts.amazonaws.com",
		xForm("tok-frank", "", "arn:aws:iam::111122223333:role/a/b/c").Encode(),
		"grant_type=%zz", "", "resource=&resource=",
	} {
		f.Add(s)
	}
	codes := []string{"invalid_request", "invalid_target", "invalid_grant", "unsupported_grant_type", ErrorInsufficientAuthn}
	// holds reports whether the user of an access token holds role.
	holds := func(ctx context.Context, token, role string) bool {
		s, err := fx.access.verify(ctx, token)
		if err != nil {
			return false
		}
		u, err := fx.dir.Lookup(ctx, s.Username)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(fx.rules.Load().Evaluate(rolemap.InputFromUser(u)).Grants,
			func(g rolemap.Grant) bool { return g.RoleARN == role })
	}
	f.Fuzz(func(t *testing.T, body string) {
		fx.audit.mu.Lock()
		fx.audit.events = nil // one run's events; the fuzzer runs millions
		fx.audit.mu.Unlock()
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		fx.x.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%d, not JSON (%v): %q for %q", rec.Code, err, rec.Body.String(), body)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q for %q", cc, body)
		}
		if rec.Code != http.StatusOK {
			code, _ := m["error"].(string)
			desc, _ := m["error_description"].(string)
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized || !slices.Contains(codes, code) ||
				strings.TrimSpace(desc) == "" || m["access_token"] != nil {
				t.Fatalf("%d %q for %q", rec.Code, rec.Body.String(), body)
			}
			return
		}
		form, err := url.ParseQuery(body)
		if err != nil {
			t.Fatalf("a token for a form that does not parse (%v): %q", err, body)
		}
		tok, _ := m["access_token"].(string)
		want := form.Get("requested_token_type")
		if want == "" {
			want = TokenTypeSAML2
		}
		if tok == "" || m["issued_token_type"] != want {
			t.Fatalf("200 %q for %q", rec.Body.String(), body)
		}
		subject := form.Get("subject_token")
		if !slices.ContainsFunc(append(form["resource"], form["audience"]...), func(r string) bool { return holds(t.Context(), subject, r) }) {
			t.Fatalf("a token for a role the user of %q does not hold: %q", subject, body)
		}
	})
}
