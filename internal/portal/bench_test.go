package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// fixedSession is a session store that always answers with one signed-in
// session (the portal benchmark measures rendering, not the store).
type fixedSession struct{ s store.Session }

func (f fixedSession) Create(context.Context, identity.User, store.SessionMeta) (string, store.Session, error) {
	return "", store.Session{}, nil
}
func (f fixedSession) Get(context.Context, string) (store.Session, error) { return f.s, nil }
func (fixedSession) Delete(context.Context, string) error                 { return nil }

// BenchmarkPortalHome measures the server side of GET / for a user with 200
// roles in 20 accounts: middleware, session (a fake), Grants (a fake),
// grouping and sorting, template rendering (about 90 KB of HTML).
//
//	go test -run '^$' -bench PortalHome ./internal/portal/
func BenchmarkPortalHome(b *testing.B) {
	for _, n := range []int{20, 200} {
		b.Run(strconv.Itoa(n)+"_roles", func(b *testing.B) {
			var grants []rolemap.Grant
			for i := 0; i < n; i++ {
				acct := fmt.Sprintf("%012d", 100000000000+i%20)
				grants = append(grants, grant(fmt.Sprintf("account-%02d", i%20), acct, fmt.Sprintf("Role%03d", i), 3600*(1+i%4)))
			}
			p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": grants}, acs: "https://signin.aws.amazon.com/saml"}
			ui, err := New(Deps{Backend: p, PublicURL: "https://sso.example.com"})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := web.New(web.Config{PublicURL: "https://sso.example.com"}, web.Deps{
				Directory: fakeDir{}, Sessions: fixedSession{store.Session{Key: "k", User: bob}}, Limiter: allowAll{},
				CSRFKey: bytes.Repeat([]byte{1}, 32), Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
				Mounts: []web.Mount{ui},
			})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
			csrfCookie := rec.Result().Cookies()[0]
			var size int
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/", nil)
					req.AddCookie(&http.Cookie{Name: "__Host-warden_session", Value: "token"})
					req.AddCookie(csrfCookie)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK || strings.Count(w.Body.String(), `class="console"`) != n {
						b.Fatalf("code %d", w.Code)
					}
					size = w.Body.Len()
				}
			})
			b.ReportMetric(float64(size)/1024, "KiB/page")
		})
	}
}

// BenchmarkSAMLPostPage measures the page a console click answers with
// (saml_post.html in the layout) for a 10 KB SAMLResponse, written to a
// recorder: through the template, and from its frame (postpage.go). Each
// request goes through the server's middleware (request ID, access log,
// session from a fake store), the same for both.
//
//	go test -run '^$' -bench SAMLPostPage ./internal/portal/
func BenchmarkSAMLPostPage(b *testing.B) {
	h, m := postPageServer(b)
	resp := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("<saml:Assertion/>"), 600))
	m.set(consolePage{AccountName: "prod", AccountID: "111122223333", RoleName: "ReadOnly",
		RoleARN: "arn:aws:iam::111122223333:role/ReadOnly",
		Post:    ConsolePost{URL: "https://signin.aws.amazon.com/saml", SAMLResponse: resp}})
	for _, how := range []string{"template", "frame"} {
		b.Run(how, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, postRequest("/t/"+how, "bob"))
				if w.Code != http.StatusOK {
					b.Fatalf("code %d", w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
