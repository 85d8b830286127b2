package web

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// navMount gives admins two header links, one with a label to escape.
type navMount struct{}

func (navMount) Routes() []Route { return nil }
func (navMount) Nav(u identity.User) []NavLink {
	if u.Username == "alice" {
		return []NavLink{{Label: "Admin", Path: "/admin"}, {Label: "Q&A <help>", Path: "/admin/help?a=1&b=2"}}
	}
	return nil
}

// postPageServer is a server with a portal and navMount, for the post page.
func postPageServer(tb testing.TB) *Server {
	srv, err := New(Config{PublicURL: "https://sso.example.com"}, Deps{
		Directory: &fakeDir{}, Sessions: fixedSession{store.Session{Key: "k", User: bob}}, Limiter: benchLimiter{},
		CSRFKey: bytes.Repeat([]byte{1}, 32), Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Portal: &fakePortal{acs: "https://signin.aws.amazon.com/saml"}, Mounts: []Mount{navMount{}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

// TestPostPageMatchesTemplate: the SAML post page from its frame
// (postpage.go) is byte for byte what the template makes, for plain values
// and for values that the frame leaves to the template; and plain values
// do take the frame.
func TestPostPageMatchesTemplate(t *testing.T) {
	srv := postPageServer(t)
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
			user := identity.User{Username: c.user}
			page := consolePage{RoleName: c.role, AccountName: c.account, AccountID: c.accountID,
				Post: ConsolePost{URL: c.url, SAMLResponse: c.response, RelayState: c.relay}}
			run := func(fn func(*gin.Context)) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				ctx, _ := gin.CreateTestContext(w)
				ctx.Request = httptest.NewRequest(http.MethodGet, "/aws/console", nil)
				ctx.Set(stateKey, &reqState{id: "0123456789abcdef0123456789abcdef", srv: srv})
				fn(ctx)
				return w
			}
			srv.frames.mu.Lock()
			srv.frames.m = nil
			srv.frames.mu.Unlock()
			fast := run(func(ctx *gin.Context) { srv.renderPost(ctx, view{User: &user, Console: &page}) })
			srv.frames.mu.RLock()
			framed := len(srv.frames.m) > 0
			srv.frames.mu.RUnlock()
			if framed != c.frame {
				t.Errorf("frame used: %v, want %v", framed, c.frame)
			}
			tmpl := run(func(ctx *gin.Context) {
				srv.render(ctx, http.StatusOK, "saml_post.html", view{User: &user, Console: &page})
			})
			if fast.Code != tmpl.Code || fast.Body.String() != tmpl.Body.String() {
				t.Errorf("frame and template differ (%d, %d):\n%s\n----\n%s", fast.Code, tmpl.Code, fast.Body, tmpl.Body)
			}
			for _, h := range []string{"Content-Type", "Content-Length"} {
				if fast.Header().Get(h) != tmpl.Header().Get(h) {
					t.Errorf("%s: %q, template %q", h, fast.Header().Get(h), tmpl.Header().Get(h))
				}
			}
			if !strings.Contains(tmpl.Body.String(), `name="SAMLResponse"`) {
				t.Error("no SAMLResponse field")
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
