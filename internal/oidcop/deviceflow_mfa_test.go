package oidcop

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/web"
)

// dfeFactor is a hand-written web.SecondFactor: nobody must give a factor
// at sign-in (AfterPassword says nothing), the users in enrolled have one.
// It is also the Mount of a stand-in second-factor page (web.FactorPath)
// that "takes" a TOTP code: it upgrades the session (web.UpgradeSession)
// and returns to next.
type dfeFactor struct {
	enrolled map[string]bool // by username
	mu       sync.Mutex
	asked    []url.Values
}

func (f *dfeFactor) AfterPassword(context.Context, identity.User) (string, error) { return "", nil }

// Enrolled answers by directory ID (enroll).
func (f *dfeFactor) Enrolled(_ context.Context, userID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolled[userID], nil
}

func (f *dfeFactor) Methods() []string { return nil }

func (f *dfeFactor) Routes() []web.Route {
	return []web.Route{{Method: http.MethodGet, Path: web.FactorPath, Handler: func(c *gin.Context) {
		f.mu.Lock()
		f.asked = append(f.asked, c.Request.URL.Query())
		f.mu.Unlock()
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

func (f *dfeFactor) enroll(userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enrolled[userID] = true
}

func (f *dfeFactor) visits() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

// TestDeviceFlowSecondFactor: the device approval asks a user who has a
// second factor for it (before the confirmation page and before
// approving), coming back to the pre-filled form; the CLI's grant then
// records it: the ID token's amr holds "mfa" (and "otp"), its acr is the
// REFEDS MFA profile, auth_time is the password's, and the access token's
// grant carries the amr the token exchange checks. A user without a
// factor approves with the password alone (amr ["pwd"]).
func TestDeviceFlowSecondFactor(t *testing.T) {
	factor := &dfeFactor{enrolled: map[string]bool{}}
	e := newDeviceE2E(t, func(d *web.Deps) {
		d.SecondFactor = factor
		d.Mounts = append(d.Mounts, factor)
	})
	bob, err := e.p.users.Check(context.Background(), identity.User{Username: "bob"}, access.Request{})
	if err != nil {
		t.Fatal(err)
	}
	factor.enroll(bob.ID)

	t.Run("enrolled", func(t *testing.T) {
		da := e.start(t)
		b, page := e.user(t, da, "bob")
		resume := "/device?" + url.Values{"user_code": {da.UserCode}}.Encode()
		wantFactor := func(what string, resp *http.Response) {
			t.Helper()
			resp.Body.Close()
			loc, _ := resp.Location()
			if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != web.FactorPath || loc.Query().Get("next") != resume {
				t.Fatalf("%s: %d to %v, want 303 to %s?next=%s", what, resp.StatusCode, loc, web.FactorPath, resume)
			}
		}
		// A password-only session: the approval POST goes to the second
		// factor and approves nothing (a forged or stale form as well).
		csrf := duiFormOf(t, page, "/device").fields.Get("csrf_token")
		wantFactor("approve", duiPost(t, b, e.base, "/device/approve", url.Values{"csrf_token": {csrf}, "user_code": {da.UserCode}}))
		time.Sleep(1100 * time.Millisecond)
		if got := e.poll(t, da); got != "authorization_pending" {
			t.Fatalf("after the refused approval: %q, want authorization_pending", got)
		}
		// The confirmation page asks for it too.
		lookup := duiPost(t, b, e.base, "/device", duiFormOf(t, page, "/device").fields)
		wantFactor("confirmation", lookup)
		// The factor is given; back on the pre-filled form, then as usual.
		resp := duiFollow(t, b, duiGet(t, b, e.base, lookup.Header.Get("Location")))
		page = duiBody(t, resp)
		if got := duiFormOf(t, page, "/device").fields.Get("user_code"); resp.StatusCode != http.StatusOK || got != da.UserCode {
			t.Fatalf("back from the factor: %d, code %q", resp.StatusCode, got)
		}
		page = e.confirm(t, b, page)
		resp = duiPost(t, b, e.base, "/device/approve", duiFormOf(t, page, "/device/approve").fields)
		duiWant(t, "approved", duiBody(t, resp), "You can return to your terminal")
		if n := len(factor.visits()); n != 1 {
			t.Errorf("second-factor page visited %d times, want once", n)
		}

		amr, acr := e.grantAuthn(t, da)
		if !slices.Contains(amr, "mfa") || !slices.Contains(amr, "otp") || acr != identity.ACRMFA {
			t.Errorf("amr %v acr %q, want mfa and otp, %s", amr, acr, identity.ACRMFA)
		}
		if ev := e.audit.find("device.approve"); len(ev) == 0 || ev[len(ev)-1].Detail["method"] != identity.MethodTOTP {
			t.Errorf("audit %+v", ev)
		}
	})
	t.Run("not_enrolled", func(t *testing.T) {
		before := len(factor.visits())
		da := e.start(t)
		b, page := e.user(t, da, "alice")
		page = e.confirm(t, b, page)
		resp := duiPost(t, b, e.base, "/device/approve", duiFormOf(t, page, "/device/approve").fields)
		duiWant(t, "approved", duiBody(t, resp), "You can return to your terminal")
		if len(factor.visits()) != before {
			t.Error("a user without a factor was asked for one")
		}
		amr, acr := e.grantAuthn(t, da)
		if !slices.Equal(amr, []string{"pwd"}) || acr != identity.ACRPassword {
			t.Errorf("amr %v acr %q, want [pwd] %s", amr, acr, identity.ACRPassword)
		}
	})
}

// grantAuthn redeems the approved device code and returns the ID token's
// amr and acr (verified with go-oidc), after checking that the access
// token's grant carries the same amr and the ID token an auth_time.
func (e *deviceE2E) grantAuthn(t *testing.T, da *oauth2.DeviceAuthResponse) ([]string, string) {
	t.Helper()
	ctx := e.ctx(t)
	tok, err := e.oauth.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	prov, err := gooidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := prov.Verifier(&gooidc.Config{ClientID: CLIClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	var c struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.AuthTime == 0 || c.AuthTime > time.Now().Unix() {
		t.Errorf("auth_time %d", c.AuthTime)
	}
	info, err := e.p.VerifyAccessToken(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.AMR, c.AMR) || info.AuthTime.Unix() != c.AuthTime {
		t.Errorf("grant amr %v auth_time %v, ID token %v %d", info.AMR, info.AuthTime, c.AMR, c.AuthTime)
	}
	// A refresh keeps how the user signed in (zitadel sets acr only for
	// the code flow; Warden adds it for refreshes and devices).
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := e.oauth.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw, _ = fresh.Extra("id_token").(string)
	idt, err = prov.Verifier(&gooidc.Config{ClientID: CLIClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("refreshed id token: %v", err)
	}
	var rc struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&rc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.AMR, c.AMR) || rc.ACR != c.ACR || rc.AuthTime != c.AuthTime {
		t.Errorf("refreshed ID token %+v, first %+v", rc, c)
	}
	return c.AMR, c.ACR
}
