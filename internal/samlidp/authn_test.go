package samlidp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

const tagKey = "WardenAuth"

// withAuthnTag turns the authentication tag on.
func withAuthnTag(_ *Config, d *Deps) { d.AuthnTag = tagKey }

// totpAt is a sign-in with a password at t and a TOTP code a minute later.
func totpAt(t time.Time) identity.Authn {
	return identity.Authn{Method: identity.MethodTOTP, Time: t.UTC(), FactorTime: t.Add(time.Minute).UTC()}
}

func passkeyAt(t time.Time) identity.Authn {
	return identity.Authn{Method: identity.MethodWebAuthn, Time: t.UTC(), FactorTime: t.Add(time.Minute).UTC(), UserVerified: true}
}

// authnStatement returns the AuthnInstant and AuthnContextClassRef of p.
func authnStatement(t testing.TB, p parsed) (time.Time, string) {
	t.Helper()
	st := child(t, p.asr, nsSAML, "AuthnStatement")
	ref := child(t, child(t, st, nsSAML, "AuthnContext"), nsSAML, "AuthnContextClassRef")
	return attrTime(t, st, "AuthnInstant"), ref.Text()
}

// tagsOf returns the PrincipalTag values by key, and TransitiveTagKeys.
func tagsOf(t testing.TB, p parsed) (map[string][]string, []string) {
	t.Helper()
	tags := map[string][]string{}
	var transitive []string
	for name, vals := range attributes(t, p.asr) {
		if k, ok := strings.CutPrefix(name, AttrPrincipalTag); ok {
			tags[k] = vals
		}
		if name == AttrTransitiveTagKeys {
			transitive = vals
		}
	}
	return tags, transitive
}

// TestAuthnContextAndTag: the assertion states how the user signed in
// (DESIGN.md flow 6): AuthnInstant is the password's time,
// AuthnContextClassRef PasswordProtectedTransport or the REFEDS MFA
// profile, and the WardenAuth session tag the method (item 13), never
// transitive; without a configured key there is no tag. The same holds
// for the token exchange's response (STSResponse).
func TestAuthnContextAndTag(t *testing.T) {
	signedIn := fixedTime.Add(-20 * time.Minute)
	for _, c := range []struct {
		name    string
		authn   identity.Authn
		tag     bool
		wantACR string
	}{
		{"password", identity.PasswordOnly(signedIn), true, identity.ACRPassword},
		{"totp", totpAt(signedIn), true, identity.ACRMFA},
		{"webauthn", passkeyAt(signedIn), true, identity.ACRMFA},
		{"recovery", identity.Authn{Method: identity.MethodRecovery, Time: signedIn}, true, identity.ACRMFA},
		{"no_tag", totpAt(signedIn), false, identity.ACRMFA},
		{"old_session", identity.Authn{}, true, identity.ACRPassword}, // zero: a password alone, now
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []fixtureOpt{}
			if c.tag {
				opts = append(opts, withAuthnTag)
			}
			f := newFixture(t, opts...)
			g := grantOf(t, f.rules, "bob", roleReadOnly)
			post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], c.authn, g, "")
			if err != nil {
				t.Fatal(err)
			}
			res := f.rules.Load().Evaluate(rolemap.InputFromUser(testUsers["bob"]))
			sts, err := f.idp.STSResponse(context.Background(), testUsers["bob"], c.authn, g, res)
			if err != nil {
				t.Fatal(err)
			}
			wantTime, wantMethod := c.authn.Time, c.authn.Method
			if c.name == "old_session" {
				wantTime, wantMethod = fixedTime, identity.MethodPassword
			}
			for name, b64 := range map[string]string{"console": post.SAMLResponse, "sts": sts.Response} {
				p := parseResponse(t, b64)
				verifyDsig(t, p.raw, f.ring.cur.Cert.Raw, false)
				instant, acr := authnStatement(t, p)
				if acr != c.wantACR {
					t.Errorf("%s: AuthnContextClassRef %s, want %s", name, acr, c.wantACR)
				}
				if !instant.Equal(wantTime) {
					t.Errorf("%s: AuthnInstant %v, want the sign-in's %v", name, instant, wantTime)
				}
				tags, transitive := tagsOf(t, p)
				if got, ok := tags[tagKey]; c.tag != ok || ok && (len(got) != 1 || got[0] != wantMethod) {
					t.Errorf("%s: tag %s = %v (present %v), want %q", name, tagKey, got, ok, wantMethod)
				}
				if slices.Contains(transitive, tagKey) {
					t.Errorf("%s: %s is transitive", name, tagKey)
				}
				// The rules' tags are still there, transitive as they say.
				if d := tags["department"]; len(d) != 1 || d[0] != "Apps" || !slices.Contains(transitive, "department") {
					t.Errorf("%s: rule tags %v, transitive %v", name, tags, transitive)
				}
			}
		})
	}
}

// rulesWithTags is a rule set granting ReadOnly to "developers" with the
// tag rules given.
func rulesWithTags(t testing.TB, tags []rolemap.TagAttribute) *rolemap.Holder {
	t.Helper()
	e, err := rolemap.Compile(rolemap.RuleSet{
		Accounts: []rolemap.Account{{ID: "111122223333", Name: "prod", SAMLProvider: "warden"}},
		Grants:   []rolemap.GrantRule{{ID: "developers", Group: "developers", Roles: []rolemap.RoleRef{{ARN: roleReadOnly}}}},
		Tags:     rolemap.TagRules{Attributes: tags},
	})
	if err != nil {
		t.Fatal(err)
	}
	var h rolemap.Holder
	h.Store(e)
	return &h
}

// TestAuthnTagWins: a rule tag with the authentication tag's key (in any
// case: AWS compares keys so) is left out, transitive or not, so that a
// rule cannot claim a second factor; past AWS's 50 tags, the rules' last
// tags make room for it.
func TestAuthnTagWins(t *testing.T) {
	user := identity.User{ID: "id-dev", Username: "dev", Groups: []identity.Group{group("developers")},
		Attributes: map[string][]string{"department": {"webauthn"}}}
	t.Run("same_key", func(t *testing.T) {
		h := rulesWithTags(t, []rolemap.TagAttribute{{Attribute: "department", Key: "wardenAUTH", Transitive: true}})
		f := newFixture(t, withAuthnTag, func(_ *Config, d *Deps) { d.Rules = h })
		g := h.Load().Evaluate(rolemap.InputFromUser(user)).Grants[0]
		post, err := f.idp.AWSConsoleAuthn(context.Background(), user, f.password(), g, "")
		if err != nil {
			t.Fatal(err)
		}
		tags, transitive := tagsOf(t, parseResponse(t, post.SAMLResponse))
		if len(tags) != 1 || len(tags[tagKey]) != 1 || tags[tagKey][0] != identity.MethodPassword {
			t.Errorf("tags %v: want only %s=password", tags, tagKey)
		}
		if len(transitive) != 0 {
			t.Errorf("transitive keys %v", transitive)
		}
	})
	t.Run("fifty", func(t *testing.T) {
		var attrs []rolemap.TagAttribute
		u := user
		u.Attributes = map[string][]string{}
		for k := range rolemap.MaxTagAttributes {
			name := fmt.Sprintf("a%02d", k)
			attrs = append(attrs, rolemap.TagAttribute{Attribute: name, Key: fmt.Sprintf("k%02d", k)})
			u.Attributes[name] = []string{"v"}
		}
		h := rulesWithTags(t, attrs)
		res := h.Load().Evaluate(rolemap.InputFromUser(u))
		if len(res.Tags) != 50 {
			t.Fatalf("the rules give %d tags, want 50", len(res.Tags))
		}
		f := newFixture(t, withAuthnTag, func(_ *Config, d *Deps) { d.Rules = h })
		post, err := f.idp.AWSConsoleAuthn(context.Background(), u, totpAt(fixedTime), res.Grants[0], "")
		if err != nil {
			t.Fatal(err)
		}
		tags, _ := tagsOf(t, parseResponse(t, post.SAMLResponse))
		if len(tags) != 50 || tags[tagKey][0] != identity.MethodTOTP {
			t.Errorf("%d tags, %s=%v: want 50 with the authentication tag", len(tags), tagKey, tags[tagKey])
		}
		if _, ok := tags["k49"]; ok {
			t.Error("the last rule tag was kept past 50")
		}
	})
	t.Run("bad_key", func(t *testing.T) {
		for _, k := range []string{"aws:auth", "Warden Auth!", strings.Repeat("k", 129)} {
			_, err := New(Config{}, Deps{Keys: newFixture(t).ring, Rules: testRules(t), Replay: noReplay{}, Pending: noPending{},
				PublicURL: testPublicURL, NameIDKey: []byte(strings.Repeat("k", 32)), AuthnTag: k})
			if err == nil {
				t.Errorf("AuthnTag %q accepted", k)
			}
		}
	})
}

type noReplay struct{}

func (noReplay) Seen(context.Context, string, time.Duration) (bool, error) { return true, nil }

type noPending struct{}

func (noPending) Put(context.Context, []byte, time.Duration) (string, error) {
	return "", errors.New("unused")
}
func (noPending) Take(context.Context, string) ([]byte, error) { return nil, errors.New("unused") }

// TestBuildersRefuseInsufficientAuthn: AWSConsoleAuthn and STSResponse
// never sign a role whose RequireMFA / MFAMethods the sign-in does not
// satisfy (defense in depth), with the deployment's methods that count.
func TestBuildersRefuseInsufficientAuthn(t *testing.T) {
	now := fixedTime.Add(-time.Minute)
	for _, c := range []struct {
		name    string
		role    string
		authn   identity.Authn
		allowed []string
		ok      bool
	}{
		{"mfa_role_password", roleMFA, identity.PasswordOnly(now), nil, false},
		{"mfa_role_totp", roleMFA, totpAt(now), nil, true},
		{"mfa_role_recovery", roleMFA, identity.Authn{Method: identity.MethodRecovery, Time: now}, nil, true},
		{"mfa_role_totp_not_allowed", roleMFA, totpAt(now), []string{identity.MethodWebAuthn}, false},
		{"passkey_role_totp", rolePasskey, totpAt(now), nil, false},
		{"passkey_role_webauthn", rolePasskey, passkeyAt(now), nil, true},
		{"plain_role_password", roleReadOnly, identity.PasswordOnly(now), nil, true},
		{"old_session_mfa_role", roleMFA, identity.Authn{}, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, withAuthnTag, func(_ *Config, d *Deps) { d.MFAMethods = c.allowed })
			user := testUsers["mia"]
			g := grantOf(t, f.rules, "mia", c.role)
			res := f.rules.Load().Evaluate(rolemap.InputFromUser(user))
			_, cerr := f.idp.AWSConsoleAuthn(context.Background(), user, c.authn, g, "")
			_, serr := f.idp.STSResponse(context.Background(), user, c.authn, g, res)
			for name, err := range map[string]error{"console": cerr, "sts": serr} {
				if c.ok {
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
					continue
				}
				var ie *InsufficientAuthnError
				if !errors.Is(err, ErrInsufficientAuthn) || !errors.As(err, &ie) || ie.RoleARN != c.role {
					t.Errorf("%s: %v, want an *InsufficientAuthnError for %s", name, err, c.role)
				}
			}
			if !c.ok && !f.audit.has("saml.response insufficient_authentication "+c.role) {
				t.Errorf("refusal not audited: %v", f.audit.events)
			}
		})
	}
	// The deprecated AWSConsole is a password alone.
	f := newFixture(t)
	if _, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["mia"], identity.PasswordOnly(time.Now()), grantOf(t, f.rules, "mia", roleMFA), ""); !errors.Is(err, ErrInsufficientAuthn) {
		t.Errorf("AWSConsole: %v", err)
	}
}

// fakeFactor stands in for the lead's /mfa page: it "takes" the factor
// given (method), upgrades the session (web.UpgradeSession) and returns to
// next, counting its visits.
type fakeFactor struct {
	mu     sync.Mutex
	method string
	visits []url.Values
}

func (f *fakeFactor) give(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.method = method
}

func (f *fakeFactor) Routes() []web.Route {
	return []web.Route{{Method: http.MethodGet, Path: web.FactorPath, Handler: func(c *gin.Context) {
		f.mu.Lock()
		f.visits = append(f.visits, c.Request.URL.Query())
		method := f.method
		f.mu.Unlock()
		sess, ok := web.CurrentSession(c)
		if !ok {
			c.String(http.StatusUnauthorized, "no session")
			return
		}
		a := sess.SignIn()
		a.Method, a.FactorTime, a.UserVerified = method, time.Now().UTC(), method == identity.MethodWebAuthn
		if _, err := web.UpgradeSession(c, a); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.Redirect(http.StatusSeeOther, c.Query("next"))
	}}}
}

func (f *fakeFactor) seen() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.visits)
}

// TestAWSSPInitiatedStepUp: an SP-initiated AWS sign-in whose roles demand
// a second factor the session lacks is paused and sent through the
// second-factor page (asking for the methods every such role accepts),
// which comes back to /saml/continue/<id>; the answer then carries the
// roles, the MFA context class and the tag. A factor that satisfies only
// some roles gives those (asked once: no loop), or a clear page when none.
func TestAWSSPInitiatedStepUp(t *testing.T) {
	factor := &fakeFactor{}
	e := newE2E(t, e2eOpts{deps: func(d *Deps) { d.AuthnTag = tagKey }, mounts: []web.Mount{factor}})
	const acs = "https://signin.aws.amazon.com/saml"
	sso := e.idpURL + "/saml/sso"
	n := 0
	request := func(b *http.Client) *http.Response {
		t.Helper()
		n++
		resp, err := b.Get(redirectURL(t, e.idpURL, authnXML("urn:amazon:webservices", fmt.Sprintf("_stepup-%d", n), time.Now(), acs, sso, ""), ""))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	answer := func(resp *http.Response) (map[string][]string, string, map[string][]string) {
		t.Helper()
		page := readBody(t, resp)
		action, fields := formOf(t, page)
		if resp.StatusCode != http.StatusOK || action != acs {
			t.Fatalf("%d, action %s: %s", resp.StatusCode, action, page)
		}
		p := parseResponse(t, fields.Get("SAMLResponse"))
		verifyDsig(t, p.raw, e.f.ring.cur.Cert.Raw, false)
		_, acr := authnStatement(t, p)
		tags, _ := tagsOf(t, p)
		return attributes(t, p.asr), acr, tags
	}
	roles := func(attrs map[string][]string) []string {
		var out []string
		for _, v := range attrs[AttrRole] {
			out = append(out, v[:strings.Index(v, ",")])
		}
		slices.Sort(out)
		return out
	}

	t.Run("passkey_given", func(t *testing.T) {
		factor.give(identity.MethodWebAuthn)
		b := browser(t)
		signInDirect(t, b, e.idpURL, "mia")
		resp := request(b)
		resp.Body.Close()
		loc, _ := resp.Location()
		if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != web.FactorPath {
			t.Fatalf("%d to %v, want 303 to the second-factor page", resp.StatusCode, loc)
		}
		q := loc.Query()
		if !strings.HasPrefix(q.Get("next"), "/saml/continue/") || q.Get("methods") != identity.MethodWebAuthn {
			t.Fatalf("second-factor page asked with %v: want next=/saml/continue/<id>, methods=webauthn", q)
		}
		if !e.f.audit.has("saml.sso factor_required aws") {
			t.Errorf("not audited: %v", e.f.audit.events)
		}
		attrs, acr, tags := answer(follow(t, b, resp))
		if got := roles(attrs); !slices.Equal(got, []string{roleMFA, rolePasskey, roleReadOnly}) {
			t.Errorf("roles %v", got)
		}
		if acr != identity.ACRMFA || len(tags[tagKey]) != 1 || tags[tagKey][0] != identity.MethodWebAuthn {
			t.Errorf("AuthnContextClassRef %s, tags %v", acr, tags)
		}
		// Signed in with the passkey now: the next request is answered at once.
		before := len(factor.seen())
		if _, acr, _ := answer(request(b)); acr != identity.ACRMFA || len(factor.seen()) != before {
			t.Errorf("second request: %s, factor page visited again", acr)
		}
	})
	t.Run("totp_given", func(t *testing.T) {
		// TOTP satisfies AdminMFA but not BreakGlass (a passkey only):
		// asked once, then answered without BreakGlass.
		factor.give(identity.MethodTOTP)
		b := browser(t)
		signInDirect(t, b, e.idpURL, "mia")
		before := len(factor.seen())
		attrs, acr, tags := answer(follow(t, b, request(b)))
		if visits := len(factor.seen()) - before; visits != 1 {
			t.Errorf("second-factor page visited %d times, want once", visits)
		}
		if got := roles(attrs); !slices.Equal(got, []string{roleMFA, roleReadOnly}) {
			t.Errorf("roles %v, want BreakGlass left out", got)
		}
		if acr != identity.ACRMFA || tags[tagKey][0] != identity.MethodTOTP {
			t.Errorf("AuthnContextClassRef %s, tags %v", acr, tags)
		}
	})
	t.Run("nothing_satisfied", func(t *testing.T) {
		factor.give(identity.MethodTOTP)
		b := browser(t)
		signInDirect(t, b, e.idpURL, "pia")
		resp := follow(t, b, request(b))
		checkErrorPage(t, resp, http.StatusForbidden, "need a sign-in with a second factor")
		if !e.f.audit.has("saml.sso insufficient_authentication aws") {
			t.Errorf("not audited: %v", e.f.audit.events)
		}
	})
	t.Run("plain_roles_not_asked", func(t *testing.T) {
		b := browser(t)
		signInDirect(t, b, e.idpURL, "bob")
		before := len(factor.seen())
		if _, acr, tags := answer(request(b)); acr != identity.ACRPassword || tags[tagKey][0] != identity.MethodPassword || len(factor.seen()) != before {
			t.Errorf("bob: %s %v, factor page visited", acr, tags)
		}
	})
}
