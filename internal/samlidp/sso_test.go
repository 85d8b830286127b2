package samlidp

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

func authnXML(issuer, id string, instant time.Time, acs, dest string, extra string) string {
	return fmt.Sprintf(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" `+
		`ID="%s" Version="2.0" IssueInstant="%s" Destination="%s" %s ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">`+
		`<saml:Issuer>%s</saml:Issuer></samlp:AuthnRequest>`, id, instant.UTC().Format(time.RFC3339), dest,
		map[bool]string{true: `AssertionConsumerServiceURL="` + acs + `"`, false: ""}[acs != ""]+extra, issuer)
}

func deflate(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// redirectURL is the HTTP-Redirect binding of an AuthnRequest.
func redirectURL(t testing.TB, base, xmlText, relay string) string {
	q := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(deflate(t, xmlText))}}
	if relay != "" {
		q.Set("RelayState", relay)
	}
	return base + "/saml/sso?" + q.Encode()
}

func signInDirect(t testing.TB, b *http.Client, base, user string) {
	t.Helper()
	resp, err := b.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp = signIn(t, b, base, readBody(t, resp), user)
	resp.Body.Close()
}

// TestBadRequests: every bad input is a clear error page with a request ID,
// never a 500, never a SAML response, never a redirect off the IdP.
func TestBadRequests(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	base := e.idpURL
	acs := e.spURL + "/saml/acs"
	spID := e.sp.ServiceProvider.EntityID
	if spID == "" {
		spID = e.sp.ServiceProvider.MetadataURL.String()
	}
	sso := base + "/saml/sso"
	now := time.Now()
	ok := func(id string) string { return authnXML(spID, id, now, acs, sso, "") }
	b := browser(t)
	signInDirect(t, b, base, "bob")

	// A fresh valid request is answered (the baseline the cases vary).
	resp, err := b.Get(redirectURL(t, base, ok("_ok1"), "state-1"))
	if err != nil {
		t.Fatal(err)
	}
	if page := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(page, `name="SAMLResponse"`) || !strings.Contains(page, `value="state-1"`) {
		t.Fatalf("baseline: %d %s", resp.StatusCode, page)
	}

	bigRelay := strings.Repeat("r", 2000)
	bomb := strings.Repeat(" ", 20<<20) // 20 MiB of spaces: ~20 KiB deflated
	bombB64 := base64.StdEncoding.EncodeToString(deflate(t, `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">`+bomb))
	dtd := `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>` +
		strings.Replace(ok("_dtd"), "<saml:Issuer>", "<saml:Issuer>&c;", 1)
	cases := []struct {
		name   string
		method string
		url    string
		form   url.Values
		status int
		msg    string
	}{
		{"unknown_sp", "GET", redirectURL(t, base, authnXML("https://unknown.example.com/sp", "_u1", now, acs, sso, ""), ""), nil, 400, msgUnknownSP},
		{"acs_not_in_metadata", "GET", redirectURL(t, base, authnXML(spID, "_a1", now, "https://evil.example.com/acs", sso, ""), ""), nil, 400, msgUnknownACS},
		{"acs_index_not_in_metadata", "GET", redirectURL(t, base, authnXML(spID, "_a2", now, "", sso, ` AssertionConsumerServiceIndex="7"`), ""), nil, 400, msgUnknownACS},
		{"stale", "GET", redirectURL(t, base, authnXML(spID, "_s1", now.Add(-6*time.Minute), acs, sso, ""), ""), nil, 400, msgStale},
		{"future", "GET", redirectURL(t, base, authnXML(spID, "_s2", now.Add(3*time.Minute), acs, sso, ""), ""), nil, 400, msgStale},
		{"no_issue_instant", "GET", redirectURL(t, base, strings.Replace(ok("_s3"), "IssueInstant=", "X=", 1), ""), nil, 400, msgMalformed},
		{"wrong_destination", "GET", redirectURL(t, base, authnXML(spID, "_d1", now, acs, "https://other.example.com/sso", ""), ""), nil, 400, msgDestination},
		{"malformed_xml", "GET", redirectURL(t, base, `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x"`, ""), nil, 400, msgMalformed},
		{"not_xml", "GET", redirectURL(t, base, "hello", ""), nil, 400, msgMalformed},
		{"wrong_root", "GET", redirectURL(t, base, `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x"/>`, ""), nil, 400, msgMalformed},
		{"two_roots", "GET", redirectURL(t, base, ok("_r2")+ok("_r3"), ""), nil, 400, msgMalformed},
		{"dtd_entities", "GET", redirectURL(t, base, dtd, ""), nil, 400, msgDTD},
		{"dtd_external", "GET", redirectURL(t, base, `<!DOCTYPE r SYSTEM "file:///etc/passwd">`+ok("_x1"), ""), nil, 400, msgDTD},
		{"processing_instruction", "GET", redirectURL(t, base, `<?evil x?>`+ok("_p1"), ""), nil, 400, msgMalformed},
		{"not_base64", "GET", sso + "?SAMLRequest=%%%%", nil, 400, msgMalformed},
		{"not_deflate", "GET", sso + "?SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("not deflate"))), nil, 400, msgMalformed},
		{"deflate_bomb", "GET", sso + "?SAMLRequest=" + url.QueryEscape(bombB64), nil, 413, msgTooLarge},
		{"oversize_query", "GET", sso + "?SAMLRequest=" + strings.Repeat("A", 40<<10), nil, 413, msgTooLarge},
		{"oversize_post", "POST", sso, url.Values{"SAMLRequest": {strings.Repeat("A", 200<<10)}}, 413, ""},
		{"oversize_post_xml", "POST", sso, url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 70<<10) + ok("_big")))}}, 413, msgTooLarge},
		{"no_request", "GET", sso, nil, 400, msgNoRequest},
		{"no_request_post", "POST", sso, url.Values{"RelayState": {"x"}}, 400, msgNoRequest},
		{"relay_state_too_long", "GET", redirectURL(t, base, ok("_rs1"), bigRelay), nil, 400, msgRelayState},
		{"relay_state_control", "GET", redirectURL(t, base, ok("_rs2"), "a\x01b"), nil, 400, msgRelayState},
		{"relay_state_non_ascii", "POST", sso, url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte(ok("_rs3")))}, "RelayState": {"é"}}, 400, msgRelayState},
		{"repeated_param", "GET", redirectURL(t, base, ok("_rp"), "") + "&SAMLRequest=x", nil, 400, msgMalformed},
		{"version", "GET", redirectURL(t, base, strings.Replace(ok("_v1"), `Version="2.0"`, `Version="1.1"`, 1), ""), nil, 400, msgUnsupported},
		{"continue_unknown", "GET", base + "/saml/continue/" + strings.Repeat("A", 43), nil, 400, msgPendingGone},
		{"continue_garbage", "GET", base + "/saml/continue/%2e%2e%2f", nil, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			var err error
			if c.method == "POST" {
				resp, err = b.PostForm(c.url, c.form)
			} else {
				resp, err = b.Get(c.url)
			}
			if err != nil {
				t.Fatal(err)
			}
			checkErrorPage(t, resp, c.status, c.msg)
		})
	}

	t.Run("replayed_id", func(t *testing.T) {
		u := redirectURL(t, base, ok("_replay"), "")
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if page := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(page, "SAMLResponse") {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		resp, err = b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		checkErrorPage(t, resp, 400, msgReplay)
		// Replayed by a browser that is not signed in too (no pause, no redirect).
		resp, err = browser(t).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		checkErrorPage(t, resp, 400, msgReplay)
	})
	t.Run("continue_once", func(t *testing.T) {
		anon := browser(t)
		resp, err := anon.Get(redirectURL(t, base, ok("_once"), ""))
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := resp.Location()
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.Path, "/saml/continue/") {
			t.Fatalf("not paused: %d %v", resp.StatusCode, loc)
		}
		cont := loc.String()
		if !loc.IsAbs() {
			cont = base + loc.String()
		}
		signInDirect(t, anon, base, "bob")
		if resp, _ = anon.Get(cont); resp.StatusCode != 200 || !strings.Contains(readBody(t, resp), "SAMLResponse") {
			t.Fatalf("continue: %d", resp.StatusCode)
		}
		resp, _ = anon.Get(cont)
		checkErrorPage(t, resp, 400, msgPendingGone)
	})
}

// checkErrorPage: status, the public message, a request ID, no SAML
// response, no redirect.
func checkErrorPage(t testing.TB, resp *http.Response, status int, msg string) {
	t.Helper()
	page := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, page)
	}
	if msg != "" && !strings.Contains(page, htmlEscape(msg)) {
		t.Errorf("page lacks %q:\n%s", msg, page)
	}
	if !strings.Contains(page, "request ID") {
		t.Error("page shows no request ID")
	}
	if strings.Contains(page, "SAMLResponse") || resp.Header.Get("Location") != "" {
		t.Error("an error answered with a response or a redirect")
	}
}

func htmlEscape(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }

// TestSignedRequests: a signature is checked against the SP's metadata;
// missing when required, made with another key, or tampered: refused.
func TestSignedRequests(t *testing.T) {
	e := newE2E(t, e2eOpts{signRequests: true, spCfg: func(c *SPConfig) { c.RequireSignedRequests = true }})
	md := e.sp.ServiceProvider.IDPMetadata
	b := browser(t)
	signInDirect(t, b, e.idpURL, "bob")
	mk := func(who string) *saml.ServiceProvider {
		k := loadSigner(t, who)
		sp := e.sp.ServiceProvider // copy: same entity ID and ACS
		sp.Key, sp.Certificate, sp.IDPMetadata = k.Key, k.Cert, md
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
		return &sp
	}
	get := func(sp *saml.ServiceProvider, mutate func(url.Values)) *http.Response {
		req, err := sp.MakeAuthenticationRequest(e.idpURL+"/saml/sso", saml.HTTPRedirectBinding, saml.HTTPPostBinding)
		if err != nil {
			t.Fatal(err)
		}
		u, err := req.Redirect("rs", sp)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if mutate != nil {
			mutate(q)
		}
		u.RawQuery = q.Encode()
		resp, err := b.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(mk("sp"), nil); resp.StatusCode != 200 || !strings.Contains(readBody(t, resp), "SAMLResponse") {
		t.Fatalf("valid signed request refused: %d", resp.StatusCode)
	}
	checkErrorPage(t, get(mk("test2"), nil), 400, msgSignature)
	checkErrorPage(t, get(mk("sp"), func(q url.Values) {
		s := []byte(q.Get("Signature"))
		s[10] ^= 1
		q.Set("Signature", string(s))
	}), 400, msgSignature)
	checkErrorPage(t, get(mk("sp"), func(q url.Values) { q.Del("Signature"); q.Del("SigAlg") }), 400, msgSignature)
	// RelayState changed after signing.
	checkErrorPage(t, get(mk("sp"), func(q url.Values) { q.Set("RelayState", "other") }), 400, msgSignature)
}

// TestAWSSPInitiated: an AuthnRequest from AWS sign-in (the preset) gets
// every role of the user in one Role attribute; item 20: 200 roles with
// long names fit, 500 are refused with a clear message and nothing sent.
func TestAWSSPInitiated(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	const acs = "https://signin.aws.amazon.com/saml"
	sso := e.idpURL + "/saml/sso"
	for _, c := range []struct {
		user  string
		roles int
	}{{"alice", 2}, {"two-hundred", 200}, {"many", 500}, {"frank", 0}} {
		t.Run(c.user, func(t *testing.T) {
			b := browser(t)
			signInDirect(t, b, e.idpURL, c.user)
			resp, err := b.Get(redirectURL(t, e.idpURL, authnXML("urn:amazon:webservices", "_aws-"+c.user, time.Now(), acs, sso, ""), ""))
			if err != nil {
				t.Fatal(err)
			}
			switch c.user {
			case "many":
				checkErrorPage(t, resp, 422, "")
				if !e.f.audit.has("saml.sso too_large aws") {
					t.Error("not audited")
				}
				return
			case "frank":
				checkErrorPage(t, resp, 403, "You hold no AWS role")
				return
			}
			page := readBody(t, resp)
			action, fields := formOf(t, page)
			if resp.StatusCode != 200 || action != acs {
				t.Fatalf("%d, action %s", resp.StatusCode, action)
			}
			if n := len(fields.Get("SAMLResponse")); n > MaxResponseBase64 {
				t.Fatalf("%d characters", n)
			}
			p := parseResponse(t, fields.Get("SAMLResponse"))
			attrs := attributes(t, p.asr)
			if len(attrs[AttrRole]) != c.roles {
				t.Fatalf("%d roles, want %d", len(attrs[AttrRole]), c.roles)
			}
			if p.resp.SelectAttrValue("InResponseTo", "") != "_aws-"+c.user {
				t.Error("InResponseTo")
			}
			if d := attrs[AttrSessionDuration]; len(d) != 1 || d[0] != "3600" {
				t.Errorf("SessionDuration %v, want the default for a multi-role response", d)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "https://signin.aws.amazon.com") {
				t.Errorf("CSP %s", csp)
			}
			t.Logf("%d roles: %d characters of base64", c.roles, len(fields.Get("SAMLResponse")))
		})
	}
	// The message names the figures and the remedy.
	b := browser(t)
	signInDirect(t, b, e.idpURL, "many")
	resp, _ := b.Get(redirectURL(t, e.idpURL, authnXML("urn:amazon:webservices", "_aws-many2", time.Now(), acs, sso, ""), ""))
	page := readBody(t, resp)
	if !strings.Contains(page, "would carry 500 roles") || !strings.Contains(page, "narrow the role set") {
		t.Errorf("too-large page: %s", page)
	}
}
