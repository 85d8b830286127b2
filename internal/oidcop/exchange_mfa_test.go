package oidcop

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
)

const xTag = "WardenAuth"

func withXAuthnTag(c *ExchangeConfig, _ *ExchangeDeps, _ *samlidp.Config) { c.AuthnTag = xTag }

// TestExchangeInsufficientAuthn: a role that demands a second factor is
// refused for a grant whose sign-in was a password alone, with RFC 9470's
// insufficient_user_authentication (400) and a description the CLI can
// show, audited as insufficient_authentication; a TOTP grant gets it, and
// a passkey-only role needs a passkey. The deployment's methods
// (mfa.methods) bound what counts.
func TestExchangeInsufficientAuthn(t *testing.T) {
	signedIn := time.Now().Add(-10 * time.Minute)
	password := identity.PasswordOnly(signedIn)
	totp := identity.Authn{Method: identity.MethodTOTP, Time: signedIn, FactorTime: signedIn.Add(time.Minute)}
	passkey := identity.Authn{Method: identity.MethodWebAuthn, Time: signedIn, FactorTime: signedIn.Add(time.Minute), UserVerified: true}
	for _, c := range []struct {
		name     string
		authn    identity.Authn
		role     string
		allowed  []string
		ok       bool
		wantDesc string
		wantMeth string
	}{
		{"password_mfa_role", password, xProdMFA, nil, false, "needs a sign-in with a second factor", ""},
		{"totp_mfa_role", totp, xProdMFA, nil, true, "", ""},
		{"totp_not_counted", totp, xProdMFA, []string{identity.MethodWebAuthn}, false, "a second factor", ""},
		{"totp_passkey_role", totp, xProdPasskey, nil, false, "needs a sign-in with a passkey", "webauthn"},
		{"passkey_passkey_role", passkey, xProdPasskey, nil, true, "", ""},
		{"zero_authn_mfa_role", identity.Authn{}, xProdMFA, nil, false, "a second factor", ""},
	} {
		for _, typ := range []string{TokenTypeSAML2, TokenTypeIDToken} {
			t.Run(c.name+"/"+typ[strings.LastIndex(typ, ":")+1:], func(t *testing.T) {
				f := newXFixture(t, func(cfg *ExchangeConfig, _ *ExchangeDeps, _ *samlidp.Config) {
					cfg.AuthnTag, cfg.MFAMethods = xTag, c.allowed
				})
				f.access.addAuthn("tok-mia-x", f.dir.users["mia"], c.authn)
				r := f.post(t, xForm("tok-mia-x", typ, c.role))
				if c.ok {
					if r.status != http.StatusOK {
						t.Fatalf("%d %s", r.status, r.raw)
					}
					return
				}
				if r.status != http.StatusBadRequest || r.err.Error != ErrorInsufficientAuthn || !strings.Contains(r.err.Description, c.wantDesc) {
					t.Fatalf("%d %s: want 400 %s saying %q", r.status, r.raw, ErrorInsufficientAuthn, c.wantDesc)
				}
				if !strings.Contains(r.raw, `"acr_values":"`+identity.ACRMFA+`"`) {
					t.Errorf("no acr_values: %s", r.raw)
				}
				if got := strings.Contains(r.raw, `"mfa_methods"`); got != (c.wantMeth != "") || got && !strings.Contains(r.raw, `"mfa_methods":"`+c.wantMeth+`"`) {
					t.Errorf("mfa_methods: %s, want %q", r.raw, c.wantMeth)
				}
				ev, ok := f.audit.find("token.exchange", "insufficient_authentication", c.role)
				if !ok || ev.Actor != "mia" || ev.Detail["method"] != normalMethod(c.authn) {
					t.Errorf("audit %+v %v", ev, ok)
				}
			})
		}
	}
}

func normalMethod(a identity.Authn) string {
	if a.Method == "" {
		return identity.MethodPassword
	}
	return a.Method
}

// TestExchangeCarriesAuthn: the tokens tell AWS how the user signed in:
// the web-identity token (verified with go-oidc) carries amr, acr,
// auth_time and the WardenAuth tag (not transitive, and a rule cannot
// take its key); the SAML response the REFEDS MFA context class, the
// AuthnInstant of the sign-in, and the tag.
func TestExchangeCarriesAuthn(t *testing.T) {
	f := newXFixture(t, withXAuthnTag)
	mia := f.dir.users["mia"]
	signedIn := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	f.access.addAuthn("tok-mia-totp", mia, identity.Authn{Method: identity.MethodTOTP, Time: signedIn, FactorTime: signedIn.Add(time.Minute)})
	f.access.addAuthn("tok-mia-pwd", mia, identity.PasswordOnly(signedIn))

	for _, c := range []struct {
		user, token, role, method, acr string
		amr                            []string
	}{
		{"mia", "tok-mia-totp", xProdMFA, identity.MethodTOTP, identity.ACRMFA, []string{"pwd", "otp", "mfa"}},
		{"bob", "tok-bob", xProdRO, identity.MethodPassword, identity.ACRPassword, []string{"pwd"}}, // a grant without amr: a password
	} {
		t.Run(c.method, func(t *testing.T) {
			r := f.post(t, xForm(c.token, TokenTypeIDToken, c.role))
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			idt, err := xVerifier(t, f, time.Now).Verify(context.Background(), r.ok.AccessToken)
			if err != nil {
				t.Fatalf("go-oidc: %v", err)
			}
			var claims struct {
				AMR      []string `json:"amr"`
				ACR      string   `json:"acr"`
				AuthTime int64    `json:"auth_time"`
				Tags     AWSTags  `json:"https://aws.amazon.com/tags"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(claims.AMR, c.amr) || claims.ACR != c.acr {
				t.Errorf("amr %v acr %q, want %v %q", claims.AMR, claims.ACR, c.amr, c.acr)
			}
			if c.method == identity.MethodTOTP && claims.AuthTime != signedIn.Unix() {
				t.Errorf("auth_time %d, want %d", claims.AuthTime, signedIn.Unix())
			}
			if got := claims.Tags.PrincipalTags[xTag]; len(got) != 1 || got[0] != c.method {
				t.Errorf("tag %s = %v, want [%s]", xTag, got, c.method)
			}
			if slices.Contains(claims.Tags.TransitiveTagKeys, xTag) {
				t.Errorf("%s is transitive", xTag)
			}
			role, _ := awsfed.ParseRoleARN(c.role)
			checkWebIdentityToken(t, r.ok.AccessToken, f.dir.users[c.user], role, time.Now())
		})
	}

	t.Run("rule_cannot_take_key", func(t *testing.T) {
		rs := xRuleSet()
		rs.Tags.Attributes = append(rs.Tags.Attributes, rolemap.TagAttribute{Attribute: "email", Key: "wardenAUTH", Transitive: true})
		e, err := rolemap.Compile(rs)
		if err != nil {
			t.Fatal(err)
		}
		old := f.rules.Load()
		f.rules.Store(e)
		defer f.rules.Store(old)
		r := f.post(t, xForm("tok-bob", TokenTypeIDToken, xProdRO))
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		role, _ := awsfed.ParseRoleARN(xProdRO)
		c := checkWebIdentityToken(t, r.ok.AccessToken, f.dir.users["bob"], role, time.Now())
		tags := c[TagsClaim].(map[string]any)
		pt := tags["principal_tags"].(map[string]any)
		if _, ok := pt["wardenAUTH"]; ok || fmt.Sprint(pt[xTag]) != "[password]" {
			t.Errorf("tags %v: want only %s=[password]", pt, xTag)
		}
		if strings.Contains(fmt.Sprint(tags["transitive_tag_keys"]), "wardenAUTH") {
			t.Errorf("transitive keys %v", tags["transitive_tag_keys"])
		}
	})
	t.Run("saml", func(t *testing.T) {
		r := f.post(t, xForm("tok-mia-totp", TokenTypeSAML2, xProdMFA))
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		checkSTSResponse(t, f, r.ok.AccessToken, xProdMFA, 3600, mia) // items 4-12, 20, and xmlsec1
		raw, _ := base64.StdEncoding.DecodeString(r.ok.AccessToken)
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			t.Fatal(err)
		}
		asr := doc.FindElement("//Assertion")
		st := asr.FindElement("AuthnStatement")
		if got := st.FindElement("AuthnContext/AuthnContextClassRef").Text(); got != identity.ACRMFA {
			t.Errorf("AuthnContextClassRef %s", got)
		}
		if got := st.SelectAttrValue("AuthnInstant", ""); got != signedIn.UTC().Format(time.RFC3339) {
			t.Errorf("AuthnInstant %s, want %s", got, signedIn.UTC().Format(time.RFC3339))
		}
		var tag []string
		for _, a := range asr.FindElements("AttributeStatement/Attribute") {
			if a.SelectAttrValue("Name", "") == "https://aws.amazon.com/SAML/Attributes/PrincipalTag:"+xTag {
				for _, v := range a.SelectElements("AttributeValue") {
					tag = append(tag, v.Text())
				}
			}
		}
		if len(tag) != 1 || tag[0] != identity.MethodTOTP {
			t.Errorf("SAML tag %s = %v", xTag, tag)
		}
		if ev, ok := f.audit.find("saml.response", "success", xProdMFA); !ok || ev.Detail["method"] != identity.MethodTOTP {
			t.Errorf("audit %+v %v", ev, ok)
		}
	})
}

// TestNewExchangerAuthnTag: the authentication tag must be a valid tag key
// other than Warden's own.
func TestNewExchangerAuthnTag(t *testing.T) {
	f := newXFixture(t)
	for _, k := range []string{"WardenRole", "wardenaccount", "aws:auth", "bad key!"} {
		if _, err := NewExchanger(ExchangeConfig{Issuer: xIssuer, AuthnTag: k}, f.x.deps); err == nil {
			t.Errorf("AuthnTag %q accepted", k)
		}
	}
	if _, err := NewExchanger(ExchangeConfig{Issuer: xIssuer, AuthnTag: "Warden:Auth"}, f.x.deps); err != nil {
		t.Errorf("a valid key refused: %v", err)
	}
}
