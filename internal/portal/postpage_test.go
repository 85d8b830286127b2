package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// navMount gives admins two header links, one with a label to escape.
type navMount struct{}

func (navMount) Routes() []web.Route { return nil }
func (navMount) Nav(u identity.User) []web.NavLink {
	if u.Username == "alice" {
		return []web.NavLink{{Label: "Admin", Path: "/admin"}, {Label: "Q&A <help>", Path: "/admin/help?a=1&b=2"}}
	}
	return nil
}

// tokenSessions is a session store whose session cookie value is the
// username of its session (the post page tests sign in as many users).
type tokenSessions struct{}

func (tokenSessions) Create(context.Context, identity.User, store.SessionMeta) (string, store.Session, error) {
	return "", store.Session{}, nil
}
func (tokenSessions) Get(_ context.Context, token string) (store.Session, error) {
	u := bob
	if token != "" {
		u.Username = token
	}
	return store.Session{Key: "k", User: u}, nil
}
func (tokenSessions) Delete(context.Context, string) error { return nil }

// postMount answers /t/frame with the post page from its frame (as a
// console click does) and /t/template with the same page through the
// template, for its page and the session's user.
type postMount struct {
	ui   *UI
	mu   sync.Mutex
	page consolePage
}

func (m *postMount) Routes() []web.Route {
	page := func(c *gin.Context) *consolePage {
		m.mu.Lock()
		defer m.mu.Unlock()
		p := m.page
		return &p
	}
	return []web.Route{
		{Method: http.MethodGet, Path: "/t/frame", Handler: func(c *gin.Context) {
			sess, _ := web.CurrentSession(c)
			m.ui.renderPost(c, sess.User, page(c))
		}},
		{Method: http.MethodGet, Path: "/t/template", Handler: func(c *gin.Context) {
			web.RenderCard(c, http.StatusOK, pagePost, page(c))
		}},
	}
}

func (m *postMount) set(p consolePage) { m.mu.Lock(); m.page = p; m.mu.Unlock() }

const testRequestID = "0123456789abcdef0123456789abcdef"

// postPageServer is a server with the portal, navMount and postMount.
func postPageServer(tb testing.TB) (http.Handler, *postMount) {
	tb.Helper()
	ui, err := New(Deps{Backend: &fakeBackend{acs: "https://signin.aws.amazon.com/saml"}, PublicURL: "https://sso.example.com"})
	if err != nil {
		tb.Fatal(err)
	}
	m := &postMount{ui: ui}
	srv, err := web.New(web.Config{PublicURL: "https://sso.example.com", TrustedProxies: []string{"192.0.2.1/32"}}, web.Deps{
		Directory: fakeDir{}, Sessions: tokenSessions{}, Limiter: allowAll{},
		CSRFKey: bytes.Repeat([]byte{1}, 32), Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Mounts: []web.Mount{ui, navMount{}, m},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return srv.Handler(), m
}

// postRequest is a request for path as user, with the request ID
// testRequestID (set by a trusted proxy).
func postRequest(path, user string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("X-Request-ID", testRequestID)
	req.AddCookie(&http.Cookie{Name: "__Host-warden_session", Value: user})
	return req
}

// TestPostPageMatchesTemplate: the SAML post page from its frame
// (postpage.go) is byte for byte what the template makes, for plain values
// and for values that the frame leaves to the template; and plain values
// do take the frame.
func TestPostPageMatchesTemplate(t *testing.T) {
	h, m := postPageServer(t)
	resp := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("<saml:Assertion/>"), 300))
	acs := "https://signin.aws.amazon.com/saml"
	for _, c := range []struct {
		name, user, role, account, accountID, url, response, relay string
		frame                                                      bool
	}{
		{"plain", "bob", "ReadOnly", "prod", "111122223333", acs, resp, "", true},
		{"relay state", "bob", "ReadOnly", "prod", "111122223333", acs, resp, "https://console.aws.amazon.com/s3/home?region=eu-west-1&tab=a+b", true},
		{"admin nav", "alice", "AdministratorAccess", "prod", "111122223333", "https://eu-west-1.signin.aws.amazon.com/saml", resp, "", true},
		{"utf-8 user", "jürgen", "Role_1.2@x", "Konto Süd", "111122223333", acs, resp, "", true},
		{"response not base64", "bob", "ReadOnly", "prod", "111122223333", acs, `a"b&c<d>`, `x"y`, true},
		{"ampersand in account", "bob", "ReadOnly", "R&D", "111122223333", acs, resp, "", false},
		{"plus in role", "bob", "Role+Admin", "prod", "111122223333", acs, resp, "", false},
		{"quote in user", "o'brien", "ReadOnly", "prod", "111122223333", acs, resp, "", false},
		{"markup in role", "bob", "<b>x</b>", "prod", "111122223333", acs, resp, "", false},
		{"query in url", "bob", "ReadOnly", "prod", "111122223333", acs + "?a=b&c=d", resp, "", false},
		{"http url", "bob", "ReadOnly", "prod", "111122223333", "http://signin.aws.amazon.com/saml", resp, "", false},
		{"bad utf-8", "bob", "Read\xffOnly", "prod", "111122223333", acs, resp, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.set(consolePage{RoleName: c.role, AccountName: c.account, AccountID: c.accountID,
				Post: ConsolePost{URL: c.url, SAMLResponse: c.response, RelayState: c.relay}})
			run := func(path string) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, postRequest(path, c.user))
				return w
			}
			m.ui.frames.mu.Lock()
			m.ui.frames.m = nil
			m.ui.frames.mu.Unlock()
			fast := run("/t/frame")
			m.ui.frames.mu.RLock()
			framed := len(m.ui.frames.m) > 0
			m.ui.frames.mu.RUnlock()
			if framed != c.frame {
				t.Errorf("frame used: %v, want %v", framed, c.frame)
			}
			tmpl := run("/t/template")
			if fast.Code != http.StatusOK || fast.Code != tmpl.Code || fast.Body.String() != tmpl.Body.String() {
				t.Errorf("frame and template differ (%d, %d):\n%s\n----\n%s", fast.Code, tmpl.Code, fast.Body, tmpl.Body)
			}
			for _, h := range []string{"Content-Type", "Content-Length"} {
				if fast.Header().Get(h) != tmpl.Header().Get(h) {
					t.Errorf("%s: %q, template %q", h, fast.Header().Get(h), tmpl.Header().Get(h))
				}
			}
			body := tmpl.Body.String()
			if !strings.Contains(body, `name="SAMLResponse"`) || !strings.Contains(body, testRequestID) {
				t.Error("no SAMLResponse field or request ID")
			}
		})
	}
}

// TestCutFrame: text that looks like a marker but is not one stays text.
func TestCutFrame(t *testing.T) {
	f := cutFrame("a" + postMarker + "1Zb" + postMarker + "99Zc" + postMarker + "xZd" + postMarker)
	got := strings.Join(f.parts, "|")
	want := "a|b" + postMarker + "99Zc" + postMarker + "xZd" + postMarker // two parts, one field
	if got != want || len(f.fields) != 1 || f.fields[0] != pfRole {
		t.Errorf("parts %q fields %v", got, f.fields)
	}
}
