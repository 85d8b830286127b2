package samlidp

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/gin-gonic/gin"
)

// FuzzInflate: for any DEFLATE data and limit, inflate returns exactly the
// decoded bytes when there are at most limit of them, errTooLargeInput
// when a sound stream has more (so a DEFLATE bomb costs at most limit+1
// bytes), and another error when the stream breaks within the limit;
// checkXML never panics on what comes out. The limit is fuzzed, below
// 4 KiB: the code does not depend on its size (production passes
// maxRequestXML), and a small one finds the edges with runs that inflate
// little.
func FuzzInflate(f *testing.F) {
	f.Add(deflate(f, authnXML(genericSPID, "_1", fixedTime, genericSPACS, testPublicURL+"/saml/sso", "")), uint16(4095))
	f.Add(deflate(f, strings.Repeat("<a>", 2000)), uint16(1024))
	f.Add(deflate(f, "<r/>"), uint16(4))
	f.Add(deflate(f, `<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>`), uint16(100))
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		n := int(limit % 4096)
		out, err := inflate(data, n)
		if len(out) > n {
			t.Fatalf("inflated %d bytes, limit %d", len(out), n)
		}
		// The reference: everything flate yields, up to one byte past
		// the limit, and whether the stream ended cleanly.
		ref, refErr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), int64(n)+1))
		switch {
		case len(ref) > n && refErr == nil:
			if !errors.Is(err, errTooLargeInput) {
				t.Fatalf("%d+ bytes over limit %d: err %v, want errTooLargeInput", len(ref), n, err)
			}
		case len(ref) > n: // over the limit and broken in the same read: either error
			if err == nil {
				t.Fatalf("%d+ bytes over limit %d, then %v: accepted", len(ref), n, refErr)
			}
		case refErr != nil:
			if err == nil || errors.Is(err, errTooLargeInput) {
				t.Fatalf("broken stream (%v): err %v", refErr, err)
			}
		case err != nil:
			t.Fatalf("%d bytes within limit %d refused: %v", len(ref), n, err)
		case !bytes.Equal(out, ref):
			t.Fatalf("inflate gave %q, flate %q", out, ref)
		default:
			_ = checkXML(out)
		}
	})
}

// memReplay is an in-memory ReplayCache: the fuzz targets need the
// decision, not the Redis round trip (store.SAMLReplay has its own tests).
type memReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memReplay) Seen(_ context.Context, id string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[id] {
		return false, nil
	}
	m.seen[id] = true
	return true, nil
}

func (m *memReplay) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.seen)
}

// ssoRequest is a /saml/sso request carrying xmlText in the HTTP-Redirect
// (deflated, query) or the HTTP-POST (form) binding, with params (raw,
// e.g. "RelayState=x&SigAlg=...") after SAMLRequest.
func ssoRequest(t testing.TB, xmlText string, redirect bool, params string) *http.Request {
	var enc string
	if redirect {
		enc = base64.StdEncoding.EncodeToString(deflate(t, xmlText))
	} else {
		enc = base64.StdEncoding.EncodeToString([]byte(xmlText))
	}
	raw := "SAMLRequest=" + url.QueryEscape(enc)
	if params != "" {
		raw += "&" + params
	}
	if redirect {
		r := httptest.NewRequest(http.MethodGet, testPublicURL+"/saml/sso", nil)
		r.URL.RawQuery = raw // set, not parsed: any bytes reach the handler
		return r
	}
	r := httptest.NewRequest(http.MethodPost, testPublicURL+"/saml/sso", strings.NewReader(raw))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// FuzzSSO sends arbitrary AuthnRequest XML in either binding, with
// arbitrary further parameters (RelayState, SigAlg, Signature, repeats),
// through the checks /saml/sso runs (parseRequest and the fail mapping;
// one IdP with the AWS preset and a generic SP, a fixed clock, the replay
// cache in memory): every refusal is a 4xx with public text, never a 500;
// an accepted request names a registered SP, is answered only at an ACS
// URL that SP's metadata lists, carries a valid RelayState, and is refused
// as a replay the second time.
func FuzzSSO(f *testing.F) {
	replay := &memReplay{seen: map[string]bool{}}
	fx := newFixture(f, withGenericSP, func(_ *Config, d *Deps) { d.Replay = replay })
	sso := testPublicURL + "/saml/sso"
	for _, s := range []struct {
		xml    string
		params string
	}{
		{authnXML(genericSPID, "_f1", fixedTime, genericSPACS, sso, ""), "RelayState=%2Fhome"},
		{authnXML(genericSPID, "_f2", fixedTime, "https://evil.example.com/acs", sso, ""), ""},
		{authnXML(genericSPID, "_f3", fixedTime, "", sso, `AssertionConsumerServiceIndex="0"`), ""},
		{authnXML(genericSPID, "_f4", fixedTime.Add(-time.Hour), genericSPACS, sso, ""), ""},
		{authnXML(genericSPID, "_f5", fixedTime, genericSPACS, "https://other.example.org/sso", ""), ""},
		{authnXML("urn:amazon:webservices", "_f6", fixedTime, "https://signin.aws.amazon.com/saml", sso, ""), ""},
		{authnXML(genericSPID, "_f7", fixedTime, genericSPACS, sso, ""), "SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA"},
		{authnXML(genericSPID, "_f8", fixedTime, genericSPACS, sso, ""), "SAMLRequest=x"},
		{`<!DOCTYPE r [<!ENTITY a "x">]><r>&a;</r>`, ""}, {"", ""}, {"<", ""}, {strings.Repeat("<x>", 50), ""},
	} {
		f.Add(s.xml, true, s.params)
		f.Add(s.xml, false, s.params)
	}
	gin.SetMode(gin.TestMode) // no debug print per context (the web server sets release mode)
	engine := gin.New()
	parse := func(t *testing.T, xmlText string, redirect bool, params string) (*httptest.ResponseRecorder, *gin.Context, *saml.IdpAuthnRequest, *spEntry, error) {
		rec := httptest.NewRecorder()
		c := gin.CreateTestContextOnly(rec, engine)
		c.Request = ssoRequest(t, xmlText, redirect, params)
		req, e, err := fx.idp.parseRequest(c)
		return rec, c, req, e, err
	}
	f.Fuzz(func(t *testing.T, xmlText string, redirect bool, params string) {
		replay.reset()
		rec, c, req, e, err := parse(t, xmlText, redirect, params)
		if err != nil {
			var pe *pageError
			if !errors.As(err, &pe) || strings.TrimSpace(pe.public) == "" {
				t.Fatalf("refusal without a public text: %T %v", err, err)
			}
			fx.idp.fail(c, err)
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("refusal answered %d: %v", rec.Code, err)
			}
			return
		}
		id := req.ServiceProviderMetadata.EntityID
		if reg, ok := fx.idp.sps.lookup(id); !ok || reg != e {
			t.Fatalf("accepted a request of %q, which is not the registered SP %v", id, e.name)
		}
		var listed []string
		for _, d := range e.metadata().SPSSODescriptors {
			for _, a := range d.AssertionConsumerServices {
				listed = append(listed, a.Location)
			}
		}
		if req.ACSEndpoint == nil || !slices.Contains(listed, req.ACSEndpoint.Location) {
			t.Fatalf("answer for %s would go to %v, not one of %q", id, req.ACSEndpoint, listed)
		}
		if req.RelayState != "" && checkRelayState(req.RelayState) != nil {
			t.Fatalf("accepted RelayState %q", req.RelayState)
		}
		_, _, _, _, err = parse(t, xmlText, redirect, params)
		var pe *pageError
		if !errors.As(err, &pe) || pe.public != msgReplay {
			t.Fatalf("the same request again: %v, want a replay refusal", err)
		}
	})
}
