package web

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/store"
)

// reqState is what the middleware learns about a request; handlers read it
// with state(c).
type reqState struct {
	id       string
	clientIP string
	start    time.Time
	srv      *Server
	// Mounted routes (loadSession) and a sign-in once it made the session
	// (NextAnswerer): the session, and the session cookie value that CSRF
	// tokens are bound to.
	session *store.Session
	token   string
	api     bool // a Mount's API route: errors are JSON
	// partial: the route accepts a session whose sign-in waits for its
	// second factor (Route.Partial); pending: such a session was found on
	// a route that does not.
	partial, pending bool
}

const stateKey = "warden.req"

func state(c *gin.Context) *reqState {
	if v, ok := c.Get(stateKey); ok {
		if st, ok := v.(*reqState); ok {
			return st
		}
	}
	return &reqState{} // only if a handler runs without the middleware
}

// requestContext assigns the request ID and works out the client IP.
//
// The request ID is random, unless the TCP peer is a trusted proxy that sent
// a short, safe X-Request-ID (so that the proxy's and Warden's logs agree).
func (s *Server) requestContext(c *gin.Context) {
	st := &reqState{start: s.clock.Now(), srv: s}
	peer := peerAddr(c.Request.RemoteAddr)
	fromProxy := peer.IsValid() && s.trusted(peer)
	if id := c.Request.Header.Get("X-Request-ID"); fromProxy && safeRequestID(id) {
		st.id = id
	} else {
		st.id = s.newRequestID()
	}
	st.clientIP = s.clientIP(peer, fromProxy, c.Request.Header.Values("X-Forwarded-For"))
	c.Set(stateKey, st)
	c.Request = c.Request.WithContext(withRequestID(c.Request.Context(), st.id))
	c.Header("X-Request-ID", st.id)
	c.Next()
}

func (s *Server) newRequestID() string {
	var b [10]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		// crypto/rand does not fail; an injected reader might. A request
		// ID is for correlation, not security: fall back to the time.
		return "t" + strconv.FormatInt(s.clock.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// safeRequestID accepts 1 to 64 characters of [A-Za-z0-9._-]: nothing that
// could forge a log line or an HTML context.
func safeRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the TCP peer, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For entry that is not itself a trusted proxy.
// Entries left of the first untrusted one are client-controlled and ignored.
// An unparsable entry stops the walk: the hop right of it is the answer.
func (s *Server) clientIP(peer netip.Addr, fromProxy bool, xff []string) string {
	if !peer.IsValid() {
		return ""
	}
	if !fromProxy || len(xff) == 0 {
		return peer.String()
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client.String()
			}
			client = a.Unmap()
			if !s.trusted(client) {
				return client.String()
			}
		}
	}
	return client.String()
}

// accessLog writes one JSON line per request and counts it in the metrics.
// It logs the path without the query string and never a header value,
// cookie or form field.
func (s *Server) accessLog(c *gin.Context) {
	c.Next()
	st := state(c)
	d := s.clock.Now().Sub(st.start)
	status := c.Writer.Status()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observeHTTP(route, c.Request.Method, status, d)

	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
		if status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
	case route == "/healthz" || route == "/readyz" || route == "/metrics" || route == "/static/:name":
		level = slog.LevelDebug
	}
	if !s.log.Enabled(c.Request.Context(), level) {
		return
	}
	var skipped int64
	if level == slog.LevelInfo && status < 400 && d < s.cfg.AccessLog.Slow {
		var keep bool
		if keep, skipped = s.sample.keep(st.start); !keep {
			s.metrics.logSkipped.Inc()
			return
		}
	}
	path := c.Request.URL.Path
	if len(path) > 256 {
		path = path[:256] + "..."
	}
	attrs := []slog.Attr{
		slog.String("method", methodLabel(c.Request.Method)),
		slog.String("path", path),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.String("client_ip", st.clientIP),
	}
	if skipped > 0 {
		attrs = append(attrs, slog.Int64("skipped", skipped))
	}
	s.log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
}

// recovery turns a panic into a logged error and a 500 page with the
// request ID; the client never sees the panic value or a stack trace.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v) // net/http's way to abort a response silently
		}
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic in handler",
			slog.String("route", c.FullPath()),
			slog.String("panic", fmt.Sprint(v)),
			slog.String("stack", string(debug.Stack())),
		)
		if c.Writer.Written() {
			c.Abort()
			return
		}
		s.renderError(c, http.StatusInternalServerError)
	}()
	c.Next()
}

// securityHeaders sets the headers every response carries. Pages default to
// Cache-Control: no-store (they may carry user data or CSRF tokens); the
// static handler overrides it.
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if s.https {
		// RFC 6797: only sent when the site is https.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}

// limitBody refuses request bodies over maxBody: at once when the declared
// length says so, otherwise when reading passes the limit (form parsing then
// fails with *http.MaxBytesError, answered 413 by the handler).
func (s *Server) limitBody(c *gin.Context) {
	limit := s.bodyLimit(c)
	if c.Request.ContentLength > limit {
		s.renderError(c, http.StatusRequestEntityTooLarge)
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
	c.Next()
}

// bodyLimit is the body limit of the matched route (Route.MaxBody), else maxBody.
func (s *Server) bodyLimit(c *gin.Context) int64 {
	if l, ok := s.limits[c.Request.Method+" "+c.FullPath()]; ok {
		return l
	}
	return maxBody
}

// methodLabel bounds the method label values of the metrics and the log.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
