package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
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
