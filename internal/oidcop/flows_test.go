package oidcop_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/oidcop"
)

func webConfig(s *stack, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: webClientID, ClientSecret: webClientSecret, RedirectURL: webRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: s.base + "/oauth/authorize", TokenURL: s.base + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader},
		Scopes: scopes,
	}
}

// codeFlow signs user in and runs the code flow with PKCE S256 for conf;
// it returns the token response and the code.
func codeFlow(t *testing.T, s *stack, b *browser, conf *oauth2.Config, nonce string) (*oauth2.Token, string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	u := conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))
	back := b.authorize(u)
	if back.Query().Get("state") != "st4te" || back.Query().Get("code") == "" {
		t.Fatalf("redirect back: %s", back)
	}
	code := back.Query().Get("code")
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, code
}

func oauthErrCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// TestCodeFlow: a browser signs in at Warden (sent there by the callback),
// the client exchanges the code with PKCE S256; coreos/go-oidc verifies the
// ID token through discovery and JWKS; the section C rules hold on it.
func TestCodeFlow(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	conf := webConfig(s, "openid", "profile", "email", "groups", "offline_access")
	b := s.browser(t)

	// Not signed in: the callback sends the browser to /login and back.
	verifier := oauth2.GenerateVerifier()
	r := b.get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n0nce")))
	if r.code != http.StatusFound || !strings.HasPrefix(r.loc, "/oauth/callback?id=") {
		t.Fatalf("authorize: %d %q", r.code, r.loc)
	}
	r = b.get(r.loc)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/login?next=") {
		t.Fatalf("callback without session: %d %q", r.code, r.loc)
	}
	next, _ := url.Parse(r.loc)
	r = b.login("bob", next.Query().Get("next"))
	back := b.authorize(s.base + r.loc)
	if back.Query().Get("state") != "st4te" {
		t.Fatalf("redirect back: %s", back)
	}
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response: %+v", tok)
	}
	raw, _ := tok.Extra("id_token").(string)

	// Independent verifier: discovery (go-oidc checks that the document's
	// issuer equals the URL exactly), JWKS, signature, iss, aud, exp.
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idt, err := prov.Verifier(&gooidc.Config{ClientID: webClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != "n0nce" || idt.Issuer != s.base {
		t.Errorf("nonce %q issuer %q", idt.Nonce, idt.Issuer)
	}
	bob, err := s.dir.Lookup(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// Opaque: neither the username nor the directory ID (a substring test
	// would fail now and then: 43 random base64url characters can spell
	// "bob").
	if idt.Subject != s.p.Subject(bob) || idt.Subject == bob.Username || idt.Subject == bob.ID || len(idt.Subject) < 6 {
		t.Errorf("sub %q", idt.Subject)
	}
	checkSectionC(t, s, raw, webClientID)
	var cl struct {
		Name   string   `json:"name"`
		User   string   `json:"preferred_username"`
		Groups []string `json:"groups"`
		Tags   struct {
			Principal  map[string][]string `json:"principal_tags"`
			Transitive []string            `json:"transitive_tag_keys"`
		} `json:"https://aws.amazon.com/tags"`
	}
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Name != "Bob Brown" || cl.User != "bob" || !slices.Contains(cl.Groups, "developers") || !slices.Contains(cl.Groups, "company") {
		t.Errorf("claims: %+v", cl)
	}
	if got := cl.Tags.Principal["WardenUser"]; len(got) != 1 || got[0] != "bob" || !slices.Equal(cl.Tags.Transitive, []string{"WardenUser"}) {
		t.Errorf("tags: %+v", cl.Tags)
	}

	// userinfo with the access token; roles need the roles scope.
	code, ui := s.userinfo(t, tok.AccessToken)
	if code != 200 || ui["sub"] != idt.Subject || ui["preferred_username"] != "bob" || ui["roles"] != nil {
		t.Errorf("userinfo: %d %v", code, ui)
	}
	if !s.audit.has("oidc.authorize", "success") || !s.audit.has("oidc.token", "success") {
		t.Error("authorize/token not audited")
	}

	// A second sign-in by the same browser skips the login page (SSO).
	tok2, _ := codeFlow(t, s, b, webConfig(s, "openid", "roles"), "n2")
	code, ui = s.userinfo(t, tok2.AccessToken)
	roles, _ := ui["roles"].([]any)
	if code != 200 || len(roles) != 2 {
		t.Fatalf("userinfo roles: %d %v", code, ui)
	}
	first, _ := roles[0].(map[string]any)
	if first["role_arn"] != "arn:aws:iam::111122223333:role/Developer" || first["account_name"] != "prod" ||
		first["role_name"] != "Developer" || first["session_seconds"] != 3600.0 || first["account_id"] != "111122223333" {
		t.Errorf("roles[0] = %v", first)
	}
	if tok2.RefreshToken != "" {
		t.Error("refresh token without offline_access")
	}
}

// checkSectionC checks the rules of aws-federation-rules.md section C that
// apply to a Warden ID token: iss exactly the discovery issuer (28),
// integer timestamps (30), aud (32), no azp unless equal to aud (32), exp
// (33), sub 6–255 characters (34), the tags claim shape (35).
func checkSectionC(t *testing.T, s *stack, raw, clientID string) {
	t.Helper()
	if n := len(raw); n < 4 || n > 20000 {
		t.Errorf("token length %d not in 4..20000 (item 30)", n)
	}
	res, err := http.Get(s.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&disc)
	res.Body.Close()
	claims, _ := jwtPayload(t, raw)
	if claims["iss"] != disc["issuer"] || claims["iss"] != s.p.Issuer() {
		t.Errorf("iss %v, discovery issuer %v (item 28)", claims["iss"], disc["issuer"])
	}
	if jw, _ := disc["jwks_uri"].(string); jw != s.base+"/oauth/keys" {
		t.Errorf("jwks_uri %q", jw)
	}
	for _, k := range []string{"exp", "iat", "auth_time"} {
		n, ok := claims[k].(json.Number)
		if !ok || strings.ContainsAny(n.String(), ".eE") {
			t.Errorf("%s = %v is not an integer (item 30)", k, claims[k])
		}
	}
	var aud []string
	switch a := claims["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, x := range a {
			aud = append(aud, x.(string))
		}
	}
	if len(aud) != 1 || aud[0] != clientID {
		t.Errorf("aud %v (item 32)", claims["aud"])
	}
	if azp, ok := claims["azp"]; ok && (len(aud) != 1 || azp != aud[0]) {
		t.Errorf("azp %v differs from aud %v (item 32)", azp, aud)
	}
	if sub, _ := claims["sub"].(string); len(sub) < 6 || len(sub) > 255 {
		t.Errorf("sub %q (item 34)", sub)
	}
	if tags, ok := claims[oidcop.TagsClaim].(map[string]any); ok {
		pt, _ := tags["principal_tags"].(map[string]any)
		if len(pt) == 0 || len(pt) > 50 {
			t.Errorf("principal_tags %v (item 35)", tags)
		}
		for k, v := range pt {
			arr, ok := v.([]any)
			if !ok || len(arr) != 1 {
				t.Errorf("tag %s = %v: not an array of one string (item 35)", k, v)
				continue
			}
			str, ok := arr[0].(string)
			if !ok || len(k) > 128 || len(str) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
				t.Errorf("tag %s = %v breaks the limits (item 14)", k, v)
			}
		}
		for _, k := range tags["transitive_tag_keys"].([]any) {
			if _, ok := pt[k.(string)]; !ok {
				t.Errorf("transitive key %v not a principal tag", k)
			}
		}
	}
}

// TestRefreshRotationAndReuse: every refresh rotates; presenting a rotated
// token revokes the family, so the newest refresh token and every access
// token of the family die too.
func TestRefreshRotationAndReuse(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	conf := webConfig(s, "openid", "offline_access")
	b := s.browser(t)
	b.login("carol", "/")
	tok, _ := codeFlow(t, s, b, conf, "n")
	rt1, at1 := tok.RefreshToken, tok.AccessToken

	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == rt1 || tok2.AccessToken == at1 {
		t.Fatalf("refresh did not rotate: %+v", tok2)
	}
	// Both responses say how long the sign-in lasts: the family's absolute
	// end, which rotation does not move (refresh_token_lifetime, 12 h).
	for i, tk := range []*oauth2.Token{tok, tok2} {
		left, ok := tk.Extra("refresh_token_expires_in").(float64)
		if !ok || left <= 11*3600 || left > 12*3600 {
			t.Errorf("response %d: refresh_token_expires_in %v", i+1, tk.Extra("refresh_token_expires_in"))
		}
	}
	raw, _ := tok2.Extra("id_token").(string)
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&gooidc.Config{ClientID: webClientID}).Verify(ctx, raw); err != nil {
		t.Fatalf("refreshed id token: %v", err)
	}
	checkSectionC(t, s, raw, webClientID)
	tok3, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	for _, at := range []string{at1, tok2.AccessToken, tok3.AccessToken} {
		if code, _ := s.userinfo(t, at); code != 200 {
			t.Fatalf("access token of the family dead before reuse: %d", code)
		}
	}

	// Reuse of rt1 (rotated twice already).
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1, Expiry: time.Now().Add(-time.Hour)}).Token()
	if oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("newest refresh token after reuse: %v", err)
	}
	for _, at := range []string{at1, tok2.AccessToken, tok3.AccessToken} {
		if code, _ := s.userinfo(t, at); code != http.StatusUnauthorized {
			t.Errorf("access token alive after family revocation: %d", code)
		}
		if _, err := s.p.VerifyAccessToken(ctx, at); !errors.Is(err, oidcop.ErrInvalidToken) {
			t.Errorf("VerifyAccessToken after revocation: %v", err)
		}
	}
	if !s.audit.has("oidc.refresh_reuse", "revoked") {
		t.Error("reuse not audited")
	}
}

// TestCodeReuse: a code works once; the second use fails and revokes what
// the first issued.
func TestCodeReuse(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	conf := webConfig(s, "openid", "offline_access")
	b := s.browser(t)
	b.login("dave", "/")
	verifier := oauth2.GenerateVerifier()
	back := b.authorize(conf.AuthCodeURL("x", oauth2.S256ChallengeOption(verifier)))
	code := back.Query().Get("code")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.userinfo(t, tok.AccessToken); c != 200 {
		t.Fatalf("userinfo: %d", c)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); oauthErrCode(err) != "invalid_grant" {
		t.Fatalf("second exchange: %v", err)
	}
	if c, _ := s.userinfo(t, tok.AccessToken); c != http.StatusUnauthorized {
		t.Errorf("access token alive after code reuse: %d", c)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); oauthErrCode(err) != "invalid_grant" {
		t.Errorf("refresh token alive after code reuse: %v", err)
	}
	if !s.audit.has("oidc.code_reuse", "revoked") {
		t.Error("code reuse not audited")
	}
}

// TestAuthorizeRefusals: plain PKCE and missing PKCE (public client) are
// refused with invalid_request at the redirect URI; an unregistered
// redirect URI is never redirected to.
func TestAuthorizeRefusals(t *testing.T) {
	s := newStack(t, nil)
	b := s.browser(t)
	b.login("alice", "/")
	verifier := oauth2.GenerateVerifier()
	q := func(kv ...string) string {
		v := url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "/oauth/authorize?" + v.Encode()
	}
	redirected := []struct {
		name, url, wantErr string
	}{
		{"plain pkce, public", q("client_id", spaClientID, "redirect_uri", spaRedirect, "code_challenge", verifier, "code_challenge_method", "plain"), "invalid_request"},
		{"pkce default method (plain), public", q("client_id", spaClientID, "redirect_uri", spaRedirect, "code_challenge", verifier), "invalid_request"},
		{"plain pkce, confidential", q("client_id", webClientID, "redirect_uri", webRedirect, "code_challenge", verifier, "code_challenge_method", "plain"), "invalid_request"},
		{"no pkce, public", q("client_id", spaClientID, "redirect_uri", spaRedirect), "invalid_request"},
		{"unknown method", q("client_id", spaClientID, "redirect_uri", spaRedirect, "code_challenge", verifier, "code_challenge_method", "S512"), "invalid_request"},
		{"short challenge", q("client_id", spaClientID, "redirect_uri", spaRedirect, "code_challenge", "abc", "code_challenge_method", "S256"), "invalid_request"},
		{"implicit", q("client_id", spaClientID, "redirect_uri", spaRedirect, "response_type", "id_token"), "unauthorized_client"},
		{"no openid", q("client_id", webClientID, "redirect_uri", webRedirect, "scope", "profile"), "invalid_scope"},
	}
	for _, tc := range redirected {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(tc.url)
			u, _ := url.Parse(r.loc)
			var params url.Values
			if u != nil {
				params = u.Query()
				if u.Fragment != "" { // implicit-style response types answer in the fragment
					params, _ = url.ParseQuery(u.Fragment)
				}
			}
			if r.code != http.StatusFound || params.Get("error") != tc.wantErr || params.Get("code") != "" {
				t.Fatalf("%d %q %s", r.code, r.loc, r.body)
			}
			if !strings.HasPrefix(r.loc, spaRedirect) && !strings.HasPrefix(r.loc, webRedirect) {
				t.Fatalf("redirected to %q", r.loc)
			}
		})
	}
	notRedirected := []struct{ name, url string }{
		{"unregistered redirect", q("client_id", webClientID, "redirect_uri", "https://evil.example/cb")},
		{"redirect with extra path", q("client_id", webClientID, "redirect_uri", webRedirect+"/x")},
		{"public: other host", q("client_id", spaClientID, "redirect_uri", "https://app.example.com.evil.example/cb", "code_challenge", strings.Repeat("a", 43), "code_challenge_method", "S256")},
		{"unknown client", q("client_id", "nobody", "redirect_uri", webRedirect)},
		{"no client", q("redirect_uri", webRedirect)},
		{"no redirect", q("client_id", webClientID)},
		{"repeated param", q("client_id", webClientID, "redirect_uri", webRedirect) + "&state=again"},
		{"oversized state", q("client_id", webClientID, "redirect_uri", "https://evil.example/", "state", strings.Repeat("s", 5000))},
		{"unparsable max_age", q("client_id", webClientID, "redirect_uri", webRedirect, "max_age", "x")},
		{"invalid UTF-8 max_age", q("client_id", webClientID, "redirect_uri", webRedirect, "max_age", "\xff")},
	}
	for _, tc := range notRedirected {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(tc.url)
			if r.code >= 500 || r.code < 400 {
				t.Fatalf("status %d %q", r.code, r.loc)
			}
			if r.loc != "" {
				t.Fatalf("redirected to %q", r.loc)
			}
			// Warden's error page with the request ID, never zitadel's
			// plain text ("ErrorType=... Parent=schema: ...")
			if id := r.hdr.Get("X-Request-ID"); id == "" || !strings.Contains(r.body, id) || !strings.Contains(r.hdr.Get("Content-Type"), "text/html") {
				t.Errorf("not the error page with request ID %q: %s %s", id, r.hdr.Get("Content-Type"), r.body)
			}
			for _, bad := range []string{"ErrorType=", "Parent=", "schema:"} {
				if strings.Contains(r.body, bad) {
					t.Errorf("internal text %q in the page: %s", bad, r.body)
				}
			}
		})
	}
	// The callback with a bogus id is a clear 400 page.
	if r := b.get("/oauth/callback?id=nope"); r.code != http.StatusBadRequest || !strings.Contains(r.body, "expired") {
		t.Errorf("bogus callback: %d", r.code)
	}
}

// TestPublicClientLoopback: the built-in CLI client uses the code flow to
// a loopback redirect on any port (RFC 8252 §7.3) with PKCE S256, no
// secret.
func TestPublicClientLoopback(t *testing.T) {
	s := newStack(t, nil)
	b := s.browser(t)
	b.login("erin", "/")
	conf := &oauth2.Config{ClientID: oidcop.CLIClientID, RedirectURL: "http://127.0.0.1:53127/callback",
		Endpoint: oauth2.Endpoint{AuthURL: s.base + "/oauth/authorize", TokenURL: s.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "offline_access"}}
	tok, _ := codeFlow(t, s, b, conf, "n")
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	info, err := s.p.VerifyAccessToken(t.Context(), tok.AccessToken)
	if err != nil || info.Username != "erin" || info.ClientID != oidcop.CLIClientID || !slices.Contains(info.Scopes, "offline_access") {
		t.Fatalf("VerifyAccessToken: %+v %v", info, err)
	}
	// Another path on loopback is refused.
	conf.RedirectURL = "http://127.0.0.1:53127/other"
	r := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if r.loc != "" || r.code != http.StatusBadRequest {
		t.Errorf("other loopback path: %d %q", r.code, r.loc)
	}
}

// TestTokenEndpointBadInput: spec errors, never a 500.
func TestTokenEndpointBadInput(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	b := s.browser(t)
	b.login("bob", "/")
	conf := webConfig(s, "openid", "offline_access")
	verifier := oauth2.GenerateVerifier()
	back := b.authorize(conf.AuthCodeURL("x", oauth2.S256ChallengeOption(verifier)))
	code := back.Query().Get("code")
	basic := []string{webClientID, webClientSecret}
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name   string
		form   url.Values
		basic  []string
		status int
		err    string
	}{
		{"no grant type", url.Values{}, basic, 400, "invalid_request"},
		{"unknown grant type", url.Values{"grant_type": {"password"}}, basic, 400, "unsupported_grant_type"},
		// client_credentials is for workloads (the rules), not oidc.clients
		{"client credentials", url.Values{"grant_type": {"client_credentials"}}, basic, 401, "invalid_client"},
		{"jwt bearer", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}}, nil, 400, "unsupported_grant_type"},
		{"wrong secret", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}, []string{webClientID, "wrong-secret-0123456789"}, 401, "invalid_client"},
		{"unknown client", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"a.b"}}, []string{"nobody", "x"}, 401, "invalid_client"},
		{"wrong verifier", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {oauth2.GenerateVerifier()}}, basic, 400, "invalid_grant"},
		{"garbage code", url.Values{"grant_type": {"authorization_code"}, "code": {"garbage"}, "redirect_uri": {webRedirect}, "code_verifier": {verifier}}, basic, 400, "invalid_grant"},
		{"no code", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {webRedirect}}, basic, 400, "invalid_request"},
		{"garbage refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, basic, 400, "invalid_grant"},
		{"forged refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"AAAAAAAAAAAAAAAAAAAAAA.BBBB"}}, basic, 400, "invalid_grant"},
		{"no refresh token", url.Values{"grant_type": {"refresh_token"}}, basic, 400, "invalid_request"},
		{"refresh grant not allowed", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"a.b"}}, []string{noRefreshID, webClientSecret}, 400, "unauthorized_client"},
		{"oversized param", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {long}}, basic, 400, "invalid_request"},
		{"repeated param", url.Values{"grant_type": {"refresh_token", "refresh_token"}}, basic, 400, "invalid_request"},
		{"client assertion", url.Values{"grant_type": {"refresh_token"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"x"}}, nil, 401, "invalid_client"},
		{"device: unknown code", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"nope"}, "client_id": {oidcop.CLIClientID}}, nil, 400, "invalid_grant"},
		{"device: no code", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {oidcop.CLIClientID}}, nil, 400, "invalid_request"},
		{"device: client without the grant", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}, basic, 400, "unauthorized_client"},
		{"device: no client", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}, nil, 401, "invalid_client"},
		{"token exchange not installed", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}}, nil, 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.form(t, "/oauth/token", tc.form, tc.basic...)
			if status != tc.status || body["error"] != tc.err {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.err)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, "store") || strings.Contains(d, "redis") {
				t.Errorf("internal detail in description: %q", d)
			}
		})
	}
	// The code survived the failed attempts that never reached it, but
	// the wrong verifier consumed it: single use means single attempt.
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); oauthErrCode(err) != "invalid_grant" {
		t.Errorf("code after a failed redemption: %v", err)
	}
	// Oversized body: refused by the server's body limit.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "x": {strings.Repeat("y", 40000)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d", res.StatusCode)
	}
}

// TestIntrospectionRevocationEndSession: RFC 7662 for confidential clients
// only; RFC 7009 for access and refresh tokens; RP-initiated logout ends
// the client's grants.
func TestIntrospectionRevocationEndSession(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	b := s.browser(t)
	b.login("bob", "/")
	conf := webConfig(s, "openid", "offline_access")
	tok, _ := codeFlow(t, s, b, conf, "n")
	basic := []string{webClientID, webClientSecret}

	status, body := s.form(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, basic...)
	if status != 200 || body["active"] != true || body["client_id"] != webClientID || body["username"] != "bob" || body["iss"] != s.base {
		t.Fatalf("introspect: %d %v", status, body)
	}
	status, body = s.form(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {oidcop.CLIClientID}})
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("introspect by public client: %d %v", status, body)
	}
	status, body = s.form(t, "/oauth/introspect", url.Values{"token": {"garbage"}}, basic...)
	if status != 200 || body["active"] != false {
		t.Errorf("introspect garbage: %d %v", status, body)
	}

	// Revoke the access token: userinfo refuses it at once.
	status, _ = s.form(t, "/oauth/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}, basic...)
	if status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if c, _ := s.userinfo(t, tok.AccessToken); c != http.StatusUnauthorized {
		t.Errorf("revoked access token: %d", c)
	}
	status, body = s.form(t, "/oauth/introspect", url.Values{"token": {tok.AccessToken}}, basic...)
	if status != 200 || body["active"] != false {
		t.Errorf("introspect revoked: %d %v", status, body)
	}
	// Revoke the refresh token: the family ends.
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if status, _ = s.form(t, "/oauth/revoke", url.Values{"token": {tok2.RefreshToken}}, basic...); status != 200 {
		t.Fatalf("revoke refresh: %d", status)
	}
	if c, _ := s.userinfo(t, tok2.AccessToken); c != http.StatusUnauthorized {
		t.Errorf("access token after refresh-token revocation: %d", c)
	}
	if status, _ = s.form(t, "/oauth/revoke", url.Values{"token": {"unknown"}}, basic...); status != 200 {
		t.Errorf("revoke unknown token: %d (RFC 7009 §2.2 wants 200)", status)
	}

	// end_session with an id_token_hint ends the client's grants and
	// returns to the registered post-logout URI only.
	tok3, _ := codeFlow(t, s, b, conf, "n3")
	idt, _ := tok3.Extra("id_token").(string)
	r := b.get("/oauth/end_session?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"z"}}.Encode())
	if r.code != http.StatusFound || !strings.HasPrefix(r.loc, "http://127.0.0.1:9/bye") {
		t.Fatalf("end_session: %d %q %s", r.code, r.loc, r.body)
	}
	if c, _ := s.userinfo(t, tok3.AccessToken); c != http.StatusUnauthorized {
		t.Errorf("access token after end_session: %d", c)
	}
	r = b.get("/oauth/end_session?" + url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
	if strings.HasPrefix(r.loc, "https://evil.example") || r.code >= 500 {
		t.Errorf("end_session to unregistered URI: %d %q", r.code, r.loc)
	}
	// a query that does not parse is the client's mistake, not a 500
	for _, q := range []string{"a=1;b=2", "state=%zz", "state=a&state=b"} {
		if r := b.get("/oauth/end_session?" + q); r.code != http.StatusBadRequest || !strings.Contains(r.body, "invalid_request") {
			t.Errorf("end_session?%s: %d %s, want 400 invalid_request", q, r.code, r.body)
		}
	}
}

// TestDeviceGrant: RFC 8628 through the token endpoint: pending,
// slow_down (interval + 5 s), approval through the Provider API (the
// /device pages are tested with them), tokens once, then invalid_grant;
// denial; expiry.
func TestDeviceGrant(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	conf := &oauth2.Config{ClientID: oidcop.CLIClientID, Scopes: []string{"openid", "offline_access", "roles", "nonsense"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: s.base + "/oauth/device_authorization", TokenURL: s.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("device auth: %v", err)
	}
	if da.VerificationURI != s.base+"/device" || da.VerificationURIComplete != s.base+"/device?user_code="+da.UserCode || da.Interval != 5 || da.Expiry.IsZero() {
		t.Errorf("device response: %+v", da)
	}
	norm, ok := oidcop.NormalizeUserCode(strings.ToLower(strings.ReplaceAll(da.UserCode, "-", "")))
	if !ok || oidcop.FormatUserCode(norm) != da.UserCode {
		t.Fatalf("user code %q", da.UserCode)
	}
	req, err := s.p.DeviceRequest(ctx, strings.ToLower(da.UserCode))
	if err != nil || req.ClientName != "Warden CLI" || req.ClientIP != "127.0.0.1" || slices.Contains(req.Scopes, "nonsense") || !slices.Contains(req.Scopes, "roles") {
		t.Fatalf("DeviceRequest: %+v %v", req, err)
	}
	poll := func() (int, map[string]any) {
		return s.form(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {da.DeviceCode}, "client_id": {oidcop.CLIClientID}})
	}
	if _, b := poll(); b["error"] != "authorization_pending" {
		t.Fatalf("first poll: %v", b)
	}
	if _, b := poll(); b["error"] != "slow_down" {
		t.Fatalf("fast poll: %v", b)
	}
	s.clock.Advance(6 * time.Second) // > 5 s, < 10 s: still too fast now
	if _, b := poll(); b["error"] != "slow_down" {
		t.Fatalf("poll after 6 s with interval 10 s: %v", b)
	}
	s.clock.Advance(16 * time.Second)
	if _, b := poll(); b["error"] != "authorization_pending" {
		t.Fatalf("poll after 16 s: %v", b)
	}
	// Another client cannot redeem it.
	if st, b := s.form(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da.DeviceCode}, "client_id": {spaClientID}}); st != 400 || (b["error"] != "invalid_grant" && b["error"] != "unauthorized_client") {
		t.Errorf("other client: %d %v", st, b)
	}
	bob, err := s.dir.Lookup(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.p.ApproveDevice(ctx, norm, bob, identity.Authn{}); err != nil {
		t.Fatal(err)
	}
	if err := s.p.DenyDevice(ctx, da.UserCode); !errors.Is(err, oidcop.ErrAlreadyDecided) {
		t.Errorf("deny after approve: %v", err)
	}
	s.clock.Advance(31 * time.Second)
	status, body := poll()
	if status != 200 || body["access_token"] == nil || body["refresh_token"] == nil || body["id_token"] == nil {
		t.Fatalf("approved poll: %d %v", status, body)
	}
	raw := body["id_token"].(string)
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&gooidc.Config{ClientID: oidcop.CLIClientID}).Verify(ctx, raw); err != nil {
		t.Fatalf("device id token: %v", err)
	}
	checkSectionC(t, s, raw, oidcop.CLIClientID)
	info, err := s.p.VerifyAccessToken(ctx, body["access_token"].(string))
	if err != nil || info.Username != "bob" || info.Subject != s.p.Subject(bob) {
		t.Fatalf("VerifyAccessToken: %+v %v", info, err)
	}
	if c, ui := s.userinfo(t, body["access_token"].(string)); c != 200 || ui["roles"] == nil {
		t.Errorf("userinfo: %d %v", c, ui)
	}
	s.clock.Advance(31 * time.Second)
	if _, b := poll(); b["error"] != "invalid_grant" {
		t.Errorf("poll after redemption: %v", b)
	}
	// The refresh token of a device grant works (the CLI's "one login").
	ts := (&oauth2.Config{ClientID: oidcop.CLIClientID, Endpoint: conf.Endpoint}).TokenSource(ctx,
		&oauth2.Token{RefreshToken: body["refresh_token"].(string), Expiry: time.Now().Add(-time.Hour)})
	if _, err := ts.Token(); err != nil {
		t.Errorf("refresh of a device grant: %v", err)
	}

	// Denied.
	da2, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.p.DenyDevice(ctx, da2.UserCode); err != nil {
		t.Fatal(err)
	}
	if _, b := s.form(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da2.DeviceCode}, "client_id": {oidcop.CLIClientID}}); b["error"] != "access_denied" {
		t.Errorf("denied: %v", b)
	}
	if !s.audit.has("device.authorize", "pending") || !s.audit.has("oidc.token", "success") {
		t.Error("device authorization or token not audited")
	}

	// Expired: expired_token from the token endpoint; the API refuses.
	da3, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(11 * time.Minute)
	if _, b := s.form(t, "/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da3.DeviceCode}, "client_id": {oidcop.CLIClientID}}); b["error"] != "expired_token" {
		t.Errorf("expired: %v", b)
	}
	if err := s.p.ApproveDevice(ctx, da3.UserCode, bob, identity.Authn{}); !errors.Is(err, oidcop.ErrExpired) {
		t.Errorf("approve expired: %v", err)
	}
	for _, bad := range []string{"", "BCDF-GHJ", "AAAA-AAAA", "bcdfghjkl", "BCDF_GHJK", strings.Repeat("B", 100)} {
		if _, err := s.p.DeviceRequest(ctx, bad); !errors.Is(err, oidcop.ErrUnknownCode) {
			t.Errorf("DeviceRequest(%q): %v", bad, err)
		}
	}
}

// TestSignJWT: C's web-identity token is verifiable with the JWKS.
func TestSignJWT(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	now := time.Now()
	raw, err := s.p.SignJWT(map[string]any{"iss": s.p.Issuer(), "sub": "abcdefgh", "aud": "sts.amazonaws.com",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&gooidc.Config{ClientID: "sts.amazonaws.com"}).Verify(ctx, raw); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
