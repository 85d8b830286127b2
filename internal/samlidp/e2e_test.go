package samlidp

import (
	"context"
	"crypto/rsa"
	"encoding/xml"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/web"
)

// lazyHandler lets a test server start before its handler exists (the IdP
// needs its own URL, the SP needs the IdP's metadata).
type lazyHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (l *lazyHandler) set(h http.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }
func (l *lazyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}

// e2e is a running IdP (through web.Server) and SP (crewjam samlsp).
type e2e struct {
	f        *fixture
	idpURL   string
	spURL    string
	sp       *samlsp.Middleware
	spKey    keys.Signer
	spMDPath string
}

type e2eOpts struct {
	binding      string
	signRequests bool
	spCfg        func(*SPConfig)
	cfg          func(*Config)
	deps         func(*Deps)
	mounts       []web.Mount // besides the IdP
}

func newE2E(t *testing.T, o e2eOpts) *e2e {
	t.Helper()
	idpLazy, spLazy := &lazyHandler{}, &lazyHandler{}
	idpSrv := httptest.NewServer(idpLazy)
	t.Cleanup(idpSrv.Close)
	spSrv := httptest.NewServer(spLazy)
	t.Cleanup(spSrv.Close)

	spKey := loadSigner(t, "sp")
	// Another host name than the IdP's: cookie jars ignore ports.
	spURL, _ := url.Parse(strings.Replace(spSrv.URL, "127.0.0.1", "localhost", 1))
	sp, err := samlsp.New(samlsp.Options{URL: *spURL, Key: spKey.Key, Certificate: spKey.Cert, SignRequest: o.signRequests,
		IDPMetadata: &saml.EntityDescriptor{EntityID: "placeholder"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.binding != "" {
		sp.Binding = o.binding
	}
	sp.ServiceProvider.AuthnNameIDFormat = saml.PersistentNameIDFormat
	mdXML, err := xml.MarshalIndent(sp.ServiceProvider.Metadata(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	mdPath := filepath.Join(t.TempDir(), "sp-metadata.xml")
	if err := os.WriteFile(mdPath, mdXML, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config, d *Deps) {
		d.PublicURL = idpSrv.URL
		d.Clock = time.Now // the SP checks times with the real clock
		spc := SPConfig{Name: "testsp", MetadataFile: mdPath}
		if o.spCfg != nil {
			o.spCfg(&spc)
		}
		c.ServiceProviders = []SPConfig{spc}
		if o.cfg != nil {
			o.cfg(c)
		}
		if o.deps != nil {
			o.deps(d)
		}
	})
	f.clock.Set(time.Now())
	idpLazy.set(f.server(t, idpSrv.URL, o.mounts...).Handler())

	// The SP trusts the IdP's published metadata.
	resp, err := http.Get(idpSrv.URL + "/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, err := samlsp.ParseMetadata([]byte(readBody(t, resp)))
	if err != nil {
		t.Fatalf("our metadata: %v", err)
	}
	sp.ServiceProvider.IDPMetadata = md
	mux := http.NewServeMux()
	mux.Handle("/saml/", sp)
	mux.Handle("/app", sp.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := samlsp.SessionFromContext(r.Context())
		attrs := s.(samlsp.SessionWithAttributes).GetAttributes()
		fmt.Fprintf(w, "uid=%s mail=%s name=%s groups=%s", attrs.Get("uid"), attrs.Get("mail"), attrs.Get("displayName"),
			strings.Join(attrs["groups"], ","))
	})))
	spLazy.set(mux)
	return &e2e{f: f, idpURL: idpSrv.URL, spURL: spURL.String(), sp: sp, spKey: spKey, spMDPath: mdPath}
}

var (
	inputRE  = regexp.MustCompile(`<input type="hidden" name="([A-Za-z_]+)" value="([^"]*)"`)
	actionRE = regexp.MustCompile(`<form[^>]* action="([^"]+)"`)
)

// formOf returns the action and hidden fields of the first form in page.
func formOf(t testing.TB, page string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page:\n%s", page)
	}
	v := url.Values{}
	for _, f := range inputRE.FindAllStringSubmatch(page, -1) {
		v.Set(f[1], html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), v
}

// follow GETs url with the browser and follows redirects, returning the
// last response.
func follow(t testing.TB, b *http.Client, resp *http.Response) *http.Response {
	t.Helper()
	for n := 0; resp.StatusCode >= 300 && resp.StatusCode < 400; n++ {
		if n > 10 {
			t.Fatal("redirect loop")
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp, err = b.Get(loc.String()); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// signIn submits the login form on page (at base) and returns the response
// after the redirects.
func signIn(t testing.TB, b *http.Client, base, page, user string) *http.Response {
	t.Helper()
	_, fields := formOf(t, page)
	fields.Set("username", user)
	fields.Set("password", "pw")
	resp, err := b.PostForm(base+"/login", fields)
	if err != nil {
		t.Fatal(err)
	}
	return follow(t, b, resp)
}

// postForm submits the SAML form (the IdP's or the SP's auto-post page).
func postForm(t testing.TB, b *http.Client, page string) *http.Response {
	t.Helper()
	action, fields := formOf(t, page)
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	return follow(t, b, resp)
}

// TestSPInitiated signs in to a crewjam samlsp service provider through
// the IdP: HTTP-Redirect and HTTP-POST bindings, first not signed in (the
// request is paused across the sign-in), then signed in (answered at once).
func TestSPInitiated(t *testing.T) {
	for _, binding := range []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding} {
		t.Run(binding[strings.LastIndex(binding, ":")+1:], func(t *testing.T) {
			for _, signed := range []bool{false, true} {
				t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
					e := newE2E(t, e2eOpts{binding: binding, signRequests: signed,
						spCfg: func(c *SPConfig) { c.GroupsFilter = "^(developers|staff)$"; c.RequireSignedRequests = signed }})
					b := browser(t)
					resp, err := b.Get(e.spURL + "/app")
					if err != nil {
						t.Fatal(err)
					}
					resp = follow(t, b, resp)
					page := readBody(t, resp)
					if binding == saml.HTTPPostBinding {
						// The SP's auto-post page carries the AuthnRequest.
						resp = postForm(t, b, page)
						page = readBody(t, resp)
					}
					if !strings.Contains(resp.Request.URL.Path, "/login") || !strings.Contains(resp.Request.URL.RawQuery, "saml%2Fcontinue") && !strings.Contains(resp.Request.URL.RawQuery, "saml/continue") {
						t.Fatalf("not at the sign-in page: %s\n%s", resp.Request.URL, page)
					}
					resp = signIn(t, b, e.idpURL, page, "bob")
					page = readBody(t, resp)
					if resp.StatusCode != 200 || !strings.Contains(page, `name="SAMLResponse"`) {
						t.Fatalf("after sign-in: %d %s", resp.StatusCode, page)
					}
					if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+e.spURL) {
						t.Errorf("CSP %s does not allow the ACS", csp)
					}
					resp = postForm(t, b, page)
					got := readBody(t, resp)
					if resp.StatusCode != 200 || got != "uid=bob mail=bob@example.org name=Bob Brown groups=developers,staff" {
						t.Fatalf("SP answered %d %q", resp.StatusCode, got)
					}
					if !e.f.audit.has("saml.sso success testsp") {
						t.Errorf("not audited: %v", e.f.audit.events)
					}

					// Signed in now: a second SP-initiated sign-in is answered at once.
					spOnly := browser(t) // new SP session, same IdP cookies
					for _, c := range b.Jar.Cookies(mustURL(e.idpURL)) {
						spOnly.Jar.SetCookies(mustURL(e.idpURL), []*http.Cookie{c})
					}
					resp, err = spOnly.Get(e.spURL + "/app")
					if err != nil {
						t.Fatal(err)
					}
					resp = follow(t, spOnly, resp)
					page = readBody(t, resp)
					if binding == saml.HTTPPostBinding {
						resp = postForm(t, spOnly, page)
						page = readBody(t, resp)
					}
					if !strings.Contains(page, `name="SAMLResponse"`) {
						t.Fatalf("signed-in browser was not answered at once: %s %s", resp.Request.URL, page)
					}
					resp = postForm(t, spOnly, page)
					if got := readBody(t, resp); !strings.HasPrefix(got, "uid=bob ") {
						t.Fatalf("second sign-in: %q", got)
					}
				})
			}
		})
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

var _ = context.Background
var _ *rsa.PrivateKey
