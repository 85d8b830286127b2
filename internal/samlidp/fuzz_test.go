package samlidp

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzInflate: the HTTP-Redirect inflate never yields more than the limit
// (so a DEFLATE bomb costs at most maxRequestXML+1 bytes) and checkXML
// never panics on what comes out.
func FuzzInflate(f *testing.F) {
	f.Add(deflate(f, authnXML("https://sp.example.org", "_1", fixedTime, "https://sp.example.org/acs", testPublicURL+"/saml/sso", "")))
	f.Add(deflate(f, strings.Repeat("<a>", 100000)))
	f.Add(deflate(f, `<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>`))
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := inflate(data, maxRequestXML)
		if len(out) > maxRequestXML {
			t.Fatalf("inflated %d bytes", len(out))
		}
		if err == nil {
			_ = checkXML(out)
		}
	})
}

// FuzzSSO sends arbitrary AuthnRequest XML through the whole SSO handler
// (both bindings, behind the real web server): never a 500, never a
// response to an address the SP's metadata does not list.
func FuzzSSO(f *testing.F) {
	fx := newFixture(f, withGenericSP, func(_ *Config, d *Deps) { d.Clock = time.Now })
	h := fx.server(f, testPublicURL).Handler()
	now := time.Now()
	for _, s := range []string{
		authnXML(genericSPID, "_f1", now, genericSPACS, testPublicURL+"/saml/sso", ""),
		authnXML(genericSPID, "_f2", now, "https://evil.example.com/acs", testPublicURL+"/saml/sso", ""),
		authnXML("urn:amazon:webservices", "_f3", now, "https://signin.aws.amazon.com/saml", testPublicURL+"/saml/sso", ""),
		`<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>`, "", "<", strings.Repeat("<x>", 50),
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, xmlText string, redirect bool) {
		var req *http.Request
		if redirect {
			q := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(deflate(t, xmlText))}}
			req = httptest.NewRequest(http.MethodGet, testPublicURL+"/saml/sso?"+q.Encode(), nil)
		} else {
			body := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString([]byte(xmlText))}}.Encode()
			req = httptest.NewRequest(http.MethodPost, testPublicURL+"/saml/sso", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q", rec.Code, xmlText)
		}
		if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/saml/continue/") {
			t.Fatalf("redirect to %s", loc)
		}
		if b := rec.Body.String(); strings.Contains(b, "SAMLResponse") && !strings.Contains(b, `action="`+genericSPACS+`"`) {
			t.Fatalf("a response to an unlisted address: %s", b)
		}
	})
}
