package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// benchSessions creates sessions without keeping them (the map of the
// test fake would grow without bound).
type benchSessions struct{}

func (benchSessions) Create(_ context.Context, u identity.User, m store.SessionMeta) (string, store.Session, error) {
	return "dG9rZW4tdG9rZW4tdG9rZW4tdG9rZW4tdG9rZW4tdG9rZW4", store.Session{Key: "k", User: u,
		ExpiresAt: time.Now().Add(time.Hour), ClientIP: m.ClientIP}, nil
}
func (benchSessions) Get(context.Context, string) (store.Session, error) {
	return store.Session{}, store.ErrNotFound
}
func (benchSessions) Delete(context.Context, string) error { return nil }

type benchLimiter struct{}

func (benchLimiter) Check(context.Context, string, string) (store.Decision, error) {
	return store.Decision{Allowed: true}, nil
}
func (benchLimiter) Fail(context.Context, string, string) error { return nil }
func (benchLimiter) Succeed(context.Context, string) error      { return nil }

// noWait is a real clock whose Sleep returns at once, so that the
// wrong-password benchmark measures work, not the padding.
type noWait struct{ SystemClock }

func (noWait) Sleep(context.Context, time.Duration) {}

// BenchmarkLoginPOST measures Warden's own overhead of a sign-in POST:
// middleware, form parse, both CSRF layers, limiter call, directory call
// (a fake), session create call (a fake), access log and audit line (JSON
// to io.Discard), metrics and the redirect; or the re-rendered form.
func BenchmarkLoginPOST(b *testing.B) {
	for _, tc := range []struct {
		name, password string
		code           int
	}{{"success", testPassword, http.StatusSeeOther}, {"wrong_password", "wrong", http.StatusOK}} {
		b.Run(tc.name, func(b *testing.B) {
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			srv, err := New(Config{PublicURL: "https://sso.example.com"}, Deps{
				Directory: &fakeDir{}, Sessions: benchSessions{}, Limiter: benchLimiter{},
				CSRFKey: bytes.Repeat([]byte{1}, 32), Logger: logger, Registry: prometheus.NewRegistry(),
				Clock: noWait{}, Audit: audit.NewSlog(logger, nil),
			})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
			ck := rec.Result().Cookies()[0]
			body := url.Values{"csrf_token": {csrfFrom(b, rec.Body.String())}, "username": {"bob"},
				"password": {tc.password}, "next": {"/"}}.Encode()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Sec-Fetch-Site", "same-origin")
					req.AddCookie(ck)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != tc.code {
						b.Fatalf("code %d", w.Code)
					}
				}
			})
		})
	}
}

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
//	go test -run '^$' -bench PortalHome ./internal/web/
func BenchmarkPortalHome(b *testing.B) {
	for _, n := range []int{20, 200} {
		b.Run(strconv.Itoa(n)+"_roles", func(b *testing.B) {
			var grants []rolemap.Grant
			for i := 0; i < n; i++ {
				acct := fmt.Sprintf("%012d", 100000000000+i%20)
				grants = append(grants, grant(fmt.Sprintf("account-%02d", i%20), acct, fmt.Sprintf("Role%03d", i), 3600*(1+i%4)))
			}
			p := &fakePortal{grants: map[string][]rolemap.Grant{"bob": grants}, acs: "https://signin.aws.amazon.com/saml"}
			srv, err := New(Config{PublicURL: "https://sso.example.com"}, Deps{
				Directory: &fakeDir{}, Sessions: fixedSession{store.Session{Key: "k", User: bob}}, Limiter: benchLimiter{},
				CSRFKey: bytes.Repeat([]byte{1}, 32), Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
				Portal: p,
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
// recorder: through the template, and from its frame (postpage.go).
//
//	go test -run '^$' -bench SAMLPostPage ./internal/web/
func BenchmarkSAMLPostPage(b *testing.B) {
	srv := postPageServer(b)
	resp := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("<saml:Assertion/>"), 600))
	page := consolePage{AccountName: "prod", AccountID: "111122223333", RoleName: "ReadOnly",
		RoleARN: "arn:aws:iam::111122223333:role/ReadOnly",
		Post:    ConsolePost{URL: "https://signin.aws.amazon.com/saml", SAMLResponse: resp}}
	for _, how := range []string{"template", "frame"} {
		b.Run(how, func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				ctx, _ := gin.CreateTestContext(w)
				ctx.Request = httptest.NewRequest(http.MethodGet, "/aws/console", nil)
				ctx.Set(stateKey, &reqState{id: "0123456789abcdef0123456789abcdef", srv: srv})
				u := bob
				if how == "frame" {
					srv.renderPost(ctx, view{User: &u, Console: &page})
				} else {
					srv.render(ctx, http.StatusOK, "saml_post.html", view{User: &u, Console: &page})
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}
