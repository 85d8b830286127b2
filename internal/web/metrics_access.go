package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
)

// metricsGate decides who may read /metrics (server.metrics). It keeps only
// the SHA-256 of the bearer token, never the token.
//
// A refused request gets 404, the same page an unknown path gets, not 403
// or 401: the metrics name Warden, its version and its traffic, and a 403
// (or RFC 6750's 401 with WWW-Authenticate: Bearer) would tell any scanner
// that there is a token-guarded endpoint here worth guessing at. Operators
// learn why a scrape was refused from the log line "metrics request
// refused" (client IP and reason; never a header value).
type metricsGate struct {
	allow     []netip.Prefix
	tokenHash [sha256.Size]byte
	hasToken  bool
}

func newMetricsGate(m MetricsConfig) metricsGate {
	var g metricsGate
	for _, a := range m.Allow {
		if strings.TrimSpace(a) == MetricsAllowNone {
			continue
		}
		p, _ := parseProxy(a) // validated by Config.Validate
		g.allow = append(g.allow, p)
	}
	if m.BearerToken != "" {
		g.tokenHash, g.hasToken = sha256.Sum256([]byte(m.BearerToken)), true
	}
	return g
}

// bearerMatches reports whether the Authorization header carries the
// configured token. Both sides are hashed to a fixed length first and
// compared with subtle.ConstantTimeCompare, so neither the token's content
// nor its length leaks through timing. The auth-scheme is case-insensitive
// (RFC 9110 section 11.1; RFC 6750 section 2.1).
func (g *metricsGate) bearerMatches(authorization string) bool {
	if !g.hasToken {
		return false
	}
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], g.tokenHash[:]) == 1
}

// addressAllowed reports whether the client IP is in allow.
func (g *metricsGate) addressAllowed(clientIP string) bool {
	a, err := netip.ParseAddr(clientIP)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardingHeaders are set by reverse proxies. From a peer that is not a
// trusted proxy they mean the request came through a proxy Warden was not
// told about (typically one on the same host, so the peer is loopback): the
// peer address says nothing about the client, so allow does not apply.
var forwardingHeaders = [...]string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"}

// guarded serves h to the callers server.metrics lets in (an address in
// metrics.allow, or the bearer token) and answers anyone else exactly like
// an unknown path, logging "<what> request refused" with the client IP and
// the reason. /metrics and, when server.debug.pprof, /debug/pprof/ are
// served through it.
func (s *Server) guarded(what string, h http.Handler) gin.HandlerFunc {
	msg := what + " request refused"
	return func(c *gin.Context) {
		if reason := s.metricsRefusal(c.Request); reason != "" {
			s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, msg,
				slog.String("client_ip", state(c).clientIP), slog.String("reason", reason))
			s.renderError(c, http.StatusNotFound)
			return
		}
		h.ServeHTTP(c.Writer, c.Request)
	}
}

// metricsRefusal returns "" when r may read /metrics (or use the profiler),
// else why not (for the log; it never contains a header value).
func (s *Server) metricsRefusal(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if s.metricsGate.bearerMatches(auth) {
		return ""
	}
	st := s.requestClientIP(r)
	if st.viaUnknownProxy {
		if auth != "" {
			return "wrong bearer token; address not considered (forwarding headers from a peer not in trusted_proxies)"
		}
		return "forwarding headers from a peer not in trusted_proxies"
	}
	if s.metricsGate.addressAllowed(st.ip) {
		return ""
	}
	if auth != "" {
		return "wrong bearer token and address not in metrics.allow"
	}
	return "address not in metrics.allow"
}

type requestIP struct {
	ip              string
	viaUnknownProxy bool
}

// requestClientIP is the client IP the middleware worked out (clientIP),
// and whether an untrusted peer sent forwarding headers.
func (s *Server) requestClientIP(r *http.Request) requestIP {
	peer := peerAddr(r.RemoteAddr)
	fromProxy := peer.IsValid() && s.trusted(peer)
	out := requestIP{ip: s.clientIP(peer, fromProxy, r.Header.Values("X-Forwarded-For"))}
	if !fromProxy {
		for _, h := range forwardingHeaders {
			if len(r.Header.Values(h)) > 0 {
				out.viaUnknownProxy = true
			}
		}
	}
	return out
}

// noMethod answers a method a route does not take. On a guarded path it
// first applies the access rule, so that a refused caller cannot tell the
// route exists from a 405 (or from the Allow header gin has already set).
func (s *Server) noMethod(c *gin.Context) {
	if s.guardedPath(c.Request.URL.Path) && s.metricsRefusal(c.Request) != "" {
		c.Writer.Header().Del("Allow")
		s.renderError(c, http.StatusNotFound)
		return
	}
	s.renderError(c, http.StatusMethodNotAllowed)
}

// guardedPath reports whether path is served through guarded: /metrics,
// and /debug/pprof/... when the profiler is on (when it is off those
// paths have no route, so gin never calls noMethod for them).
func (s *Server) guardedPath(path string) bool {
	return path == "/metrics" || s.cfg.Debug.Pprof && strings.HasPrefix(path, pprofPrefix)
}
