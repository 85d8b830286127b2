package oidcop_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/web"
)

// authnClaims are the ID token's claims of how the user signed in.
type authnClaims struct {
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AuthTime int64    `json:"auth_time"`
}

// TestCodeFlowAuthn: the code flow's grant remembers how and when the user
// signed in (the session's Authn: amr, acr and auth_time in the ID token,
// amr and auth_time on the grant), and the authorization endpoint honours
// prompt=login and max_age (OIDC Core §3.1.2.1): a session older than the
// request signs in again (a fresh password at /login, which comes back to
// the callback), and the fresh sign-in ends the round trip; prompt=none
// with a stale session is login_required.
func TestCodeFlowAuthn(t *testing.T) {
	s := newStack(t, nil)
	ctx := t.Context()
	conf := webConfig(s, "openid", "profile")
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok *oauth2.Token) authnClaims {
		t.Helper()
		raw, _ := tok.Extra("id_token").(string)
		idt, err := prov.Verifier(&gooidc.Config{ClientID: webClientID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify id token: %v", err)
		}
		var c authnClaims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		info, err := s.p.VerifyAccessToken(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.AMR, c.AMR) || info.AuthTime.Unix() != c.AuthTime {
			t.Errorf("grant amr %v auth_time %v; ID token %v %d", info.AMR, info.AuthTime, c.AMR, c.AuthTime)
		}
		return c
	}
	b := s.browser(t)
	signedIn := time.Now()
	b.login("bob", "/")

	// The session's sign-in: a password, at sign-in time.
	tok, _ := codeFlow(t, s, b, conf, "n1")
	c := verify(tok)
	if !slices.Equal(c.AMR, []string{"pwd"}) || c.ACR != identity.ACRPassword ||
		c.AuthTime < signedIn.Unix()-1 || c.AuthTime > time.Now().Unix() {
		t.Errorf("claims %+v, want amr [pwd], acr %s, auth_time ≈ %d", c, identity.ACRPassword, signedIn.Unix())
	}

	// step runs the browser from the authorization URL to either the
	// sign-in page (returned with next) or the client (returned with the
	// redirect).
	step := func(authURL string) (next string, back *url.URL) {
		t.Helper()
		r := b.get(authURL)
		if r.code != http.StatusFound || !strings.HasPrefix(r.loc, "/oauth/callback?id=") {
			t.Fatalf("authorize: %d %q", r.code, r.loc)
		}
		r = b.get(r.loc)
		switch {
		case r.code == http.StatusSeeOther && strings.HasPrefix(r.loc, "/login?"):
			u, _ := url.Parse(r.loc)
			return u.Query().Get("next"), nil
		case r.code == http.StatusFound || r.code == http.StatusSeeOther:
			u, err := url.Parse(r.loc)
			if err != nil || u.Host == "" {
				t.Fatalf("callback: %d %q", r.code, r.loc)
			}
			return "", u
		}
		t.Fatalf("callback: %d %q %s", r.code, r.loc, r.body)
		return "", nil
	}
	exchange := func(back *url.URL, verifier string) *oauth2.Token {
		t.Helper()
		if back.Query().Get("code") == "" {
			t.Fatalf("no code: %s", back)
		}
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok
	}

	for _, tc := range []struct {
		name  string
		param map[string]string
		fresh bool
	}{
		{"prompt_login", map[string]string{"prompt": "login"}, true},
		{"max_age_0", map[string]string{"max_age": "0"}, true},
		{"max_age_recent", map[string]string{"max_age": "3600"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n2")}
			for k, v := range tc.param {
				opts = append(opts, oauth2.SetAuthURLParam(k, v))
			}
			asked := time.Now()
			next, back := step(conf.AuthCodeURL("st4te", opts...))
			if (next != "") != tc.fresh {
				t.Fatalf("sent to sign in: %v, want %v", next != "", tc.fresh)
			}
			if tc.fresh {
				if !strings.HasPrefix(next, "/oauth/callback?id=") {
					t.Fatalf("next %q does not resume the request", next)
				}
				time.Sleep(1100 * time.Millisecond) // a later second for auth_time
				r := b.login("bob", next)
				if r.loc != next {
					t.Fatalf("after sign-in to %q, want %q", r.loc, next)
				}
				// The fresh sign-in is newer than the request: answered.
				r = b.get(r.loc)
				u, err := url.Parse(r.loc)
				if (r.code != http.StatusFound && r.code != http.StatusSeeOther) || err != nil || u.Host == "" {
					t.Fatalf("callback after the fresh sign-in: %d %q", r.code, r.loc)
				}
				back = u
				if !s.audit.has("oidc.authorize", "reauthenticate") {
					t.Error("re-authentication not audited")
				}
			}
			c := verify(exchange(back, verifier))
			if tc.fresh && c.AuthTime <= asked.Unix() {
				t.Errorf("auth_time %d is not after the request (%d)", c.AuthTime, asked.Unix())
			}
			if !tc.fresh && c.AuthTime > asked.Unix() {
				t.Errorf("auth_time %d: a recent session signed in again", c.AuthTime)
			}
		})
	}

	t.Run("prompt_none_stale", func(t *testing.T) {
		u := conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("max_age", "0"))
		next, back := step(u)
		if next != "" || back == nil || back.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none, max_age=0: next %q, back %v", next, back)
		}
	})
}

// enrolledFactor is a web.SecondFactor under which every user has a factor
// (nobody must give one at sign-in), and the Mount of a stand-in
// second-factor page that "takes" a TOTP code and returns to next.
type enrolledFactor struct{ visits atomic.Int32 }

func (*enrolledFactor) AfterPassword(context.Context, identity.User) (string, error) { return "", nil }
func (*enrolledFactor) Enrolled(context.Context, string) (bool, error)               { return true, nil }
func (*enrolledFactor) Methods() []string                                            { return nil }

func (f *enrolledFactor) Routes() []web.Route {
	return []web.Route{{Method: http.MethodGet, Path: web.FactorPath, Handler: func(c *gin.Context) {
		f.visits.Add(1)
		sess, ok := web.CurrentSession(c)
		if !ok {
			c.String(http.StatusUnauthorized, "no session")
			return
		}
		a := sess.SignIn()
		a.Method, a.FactorTime = identity.MethodTOTP, time.Now().UTC()
		if _, err := web.UpgradeSession(c, a); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Redirect(http.StatusSeeOther, c.Query("next"))
	}}}
}

// TestCodeFlowPromptLoginFactor: prompt=login for a user who has a second
// factor asks for the password and then for the factor afresh, both after
// the request; the ID token then says so.
func TestCodeFlowPromptLoginFactor(t *testing.T) {
	f := &enrolledFactor{}
	s := newStack(t, nil, func(d *web.Deps) {
		d.SecondFactor = f
		d.Mounts = append(d.Mounts, f)
	})
	ctx := t.Context()
	conf := webConfig(s, "openid", "profile")
	prov, err := gooidc.NewProvider(ctx, s.base)
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser(t)
	b.login("bob", "/")
	verifier := oauth2.GenerateVerifier()
	r := b.get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")))
	if r.code != http.StatusFound || !strings.HasPrefix(r.loc, "/oauth/callback?id=") {
		t.Fatalf("authorize: %d %q", r.code, r.loc)
	}
	cb := r.loc
	if r = b.get(cb); r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/login?") {
		t.Fatalf("callback with an old session: %d %q, want the sign-in", r.code, r.loc)
	}
	time.Sleep(1100 * time.Millisecond) // a later second for auth_time
	if r = b.login("bob", cb); r.loc != cb {
		t.Fatalf("sign-in returns to %q, want %q", r.loc, cb)
	}
	// The fresh password, then the factor afresh.
	r = b.get(cb)
	u, _ := url.Parse(r.loc)
	if r.code != http.StatusSeeOther || u == nil || u.Path != web.FactorPath || u.Query().Get("fresh") != "1" || u.Query().Get("next") != cb {
		t.Fatalf("callback after the fresh password: %d %q, want the second factor", r.code, r.loc)
	}
	if r = b.get(r.loc); r.code != http.StatusSeeOther || r.loc != cb {
		t.Fatalf("factor page: %d %q", r.code, r.loc)
	}
	r = b.get(cb)
	back, err := url.Parse(r.loc)
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("callback after the factor: %d %q", r.code, r.loc)
	}
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&gooidc.Config{ClientID: webClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c authnClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.AMR, "mfa") || c.ACR != identity.ACRMFA {
		t.Errorf("claims %+v, want a second factor", c)
	}
	if n := f.visits.Load(); n != 1 {
		t.Errorf("factor page visited %d times, want once", n)
	}
}
