// Package web is Warden's HTTP front: the gin engine and its middleware
// (request ID, access log, metrics, security headers, client IP, body limit,
// CSRF), the sign-in, sign-out and "who am I" pages, health and readiness
// probes, Prometheus metrics, the opt-in profiler and the embedded static
// files.
//
// Handlers are thin: they parse the request, call one function that returns
// an error, and render. Every route is registered in routes() below.
//
// Errors users see are fixed public texts with the request ID (error.go);
// the private detail goes to the log under the same request ID.
package web

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// Authenticator checks a username and password (directory.Directory is one).
// A rejection is an identity sentinel (ErrInvalidCredentials, ErrAccountLocked,
// ...); any other failure wraps identity.ErrDirectoryUnavailable.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string) (identity.User, error)
}

// Sessions is what the web layer needs of the session store (store.Sessions).
// Get returns store.ErrNotFound for an absent or ended session; every Redis
// failure wraps store.ErrUnavailable.
type Sessions interface {
	Create(ctx context.Context, user identity.User, meta store.SessionMeta) (string, store.Session, error)
	Get(ctx context.Context, token string) (store.Session, error)
	Delete(ctx context.Context, token string) error
}

// Limiter counts failed sign-ins per username and client IP (store.Limiter).
type Limiter interface {
	Check(ctx context.Context, username, ip string) (store.Decision, error)
	Fail(ctx context.Context, username, ip string) error
	Succeed(ctx context.Context, username string) error
}

// HealthCheck is one dependency that /readyz asks. Name is public (it is
// shown in the /readyz answer); the error text is only logged.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Clock gives the time and waits. Sleep returns early when ctx ends.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration)
}

// SystemClock is the real clock; its Sleep is a timer, not a busy loop.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (SystemClock) Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Deps are the collaborators of the web server.
type Deps struct {
	Directory Authenticator // required
	Sessions  Sessions      // required
	Limiter   Limiter       // required
	// CSRFKey signs CSRF tokens; at least 32 bytes, the same on every replica
	// (store.SharedSecret(ctx, "csrf", 32)). Required.
	CSRFKey []byte
	Health  []HealthCheck
	Logger  *slog.Logger // nil: discard
	// Registry receives the metrics (nil: a private registry). Gatherer is
	// what /metrics serves; when nil, Registry is used if it is a Gatherer.
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Clock    Clock        // nil: SystemClock
	Audit    audit.Logger // nil: audit.Discard
	Rand     io.Reader    // nil: crypto/rand.Reader (tokens, request IDs)
	// Mounts are sub-applications (the admin UI, the portal) served behind
	// the same middleware; see mount.go and page.go.
	Mounts []Mount
	// Users, when set, re-checks the user of a browser session in the
	// directory: at every hand-off to AWS and privileged act (routes marked
	// Fresh), and at any request once the last look-up is older than
	// RecheckInterval (default 60 s). Nil: the sign-in's look-up is kept.
	Users           UserChecker
	RecheckInterval time.Duration
	// SecondFactor, when set, is the MFA policy: a sign-in whose user must
	// give a second factor (or set one up) gets a pending session and goes
	// to FactorPath, served by the MFA Mount. Nil: passwords alone.
	SecondFactor SecondFactor
}

// Server is the HTTP front of wardend.
type Server struct {
	cfg      Config
	https    bool
	origin   string // scheme://host of PublicURL
	dir      Authenticator
	sessions Sessions
	limiter  Limiter
	health   []HealthCheck
	log      *slog.Logger
	clock    Clock
	audit    audit.Logger
	rand     io.Reader
	csrfKey  []byte
	proxies  []netip.Prefix
	cop      *http.CrossOriginProtection
	metrics  *metrics
	gatherer prometheus.Gatherer
	// /metrics: who may read it, and the exposition handler.
	metricsGate  metricsGate
	promHandler  http.Handler
	views        *views
	assets       *assets
	engine       *gin.Engine
	handler      http.Handler
	mounts       []Mount
	users        UserChecker
	factor       SecondFactor
	factorPage   FactorPager // the Mount that asks for the factor, if any
	recheckEvery time.Duration
	limits       map[string]int64 // method+" "+route path -> body limit, where not maxBody
	headOf       map[string]bool  // paths whose HEAD route runs their GET route (head.go)
	sample       *sampler         // which successful requests the access log shows
	draining     atomic.Bool      // set at shutdown: /readyz answers 503
}

// maxBody bounds every request body (sign-in forms are a few hundred bytes).
const maxBody = 64 << 10

// New builds the server: it validates cfg (after defaults), parses the
// templates, hashes the static files and registers the metrics.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("web: config: %w", err)
	}
	switch {
	case deps.Directory == nil:
		return nil, errors.New("web: Deps.Directory is required")
	case deps.Sessions == nil:
		return nil, errors.New("web: Deps.Sessions is required")
	case deps.Limiter == nil:
		return nil, errors.New("web: Deps.Limiter is required")
	case len(deps.CSRFKey) < 32:
		return nil, errors.New("web: Deps.CSRFKey must have at least 32 bytes")
	}
	for i, h := range deps.Health {
		if h.Name == "" || h.Check == nil {
			return nil, fmt.Errorf("web: Deps.Health[%d]: name and check are required", i)
		}
	}
	s := &Server{
		cfg:      cfg,
		https:    cfg.https(),
		dir:      deps.Directory,
		sessions: deps.Sessions,
		limiter:  deps.Limiter,
		health:   deps.Health,
		log:      deps.Logger,
		clock:    deps.Clock,
		audit:    deps.Audit,
		rand:     deps.Rand,
		csrfKey:  append([]byte(nil), deps.CSRFKey...),
		mounts:   deps.Mounts,

		users:        deps.Users,
		factor:       deps.SecondFactor,
		recheckEvery: deps.RecheckInterval,
	}
	if s.recheckEvery <= 0 {
		s.recheckEvery = time.Minute
	}
	for i, m := range deps.Mounts {
		if m == nil {
			return nil, fmt.Errorf("web: Deps.Mounts[%d] is nil", i)
		}
		if fp, ok := m.(FactorPager); ok && s.factor != nil {
			s.factorPage = fp
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = slog.New(requestIDHandler{s.log.Handler()})
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.audit == nil {
		s.audit = audit.Discard{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	u, _ := url.Parse(cfg.PublicURL) // validated above
	s.origin = u.Scheme + "://" + u.Host
	for _, p := range cfg.TrustedProxies {
		prefix, _ := parseProxy(p) // validated above
		s.proxies = append(s.proxies, prefix)
	}
	s.cop = http.NewCrossOriginProtection()
	if err := s.cop.AddTrustedOrigin(s.origin); err != nil {
		return nil, fmt.Errorf("web: trusted origin: %w", err)
	}

	reg := deps.Registry
	s.gatherer = deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, s.gatherer = r, r
	}
	if s.gatherer == nil {
		g, ok := reg.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("web: Deps.Gatherer is required when Deps.Registry is not a Gatherer")
		}
		s.gatherer = g
	}
	s.sample = newSampler(s.cfg.AccessLog)
	s.metricsGate = newMetricsGate(cfg.Metrics)
	s.cfg.Metrics.BearerToken = "" // only its hash is kept (metricsGate)
	s.promHandler = promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{})
	var err error
	if s.metrics, err = newMetrics(reg); err != nil {
		return nil, err
	}
	if s.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if s.views, err = parseViews(s.assets, s.mounts); err != nil {
		return nil, err
	}
	if s.engine, err = s.newEngine(); err != nil {
		return nil, err
	}
	s.handler = s.engine
	return s, nil
}

// route is one entry of the routing table.
type route struct {
	method, path string
	handler      gin.HandlerFunc
}

// mountedRoute is a route of a Mount, with the middleware in front of it.
type mountedRoute struct {
	method, path string
	handlers     []gin.HandlerFunc
	maxBody      int64 // 0: maxBody
}

// routes is every route of the package, in one place.
func (s *Server) routes() []route {
	var rs []route
	if !s.mountServesHome() { // else a Mount's page replaces it (page.go)
		rs = append(rs, route{http.MethodGet, homePath, s.handleHome})
	}
	rs = append(rs, []route{
		{http.MethodGet, "/login", s.handleLoginForm},
		{http.MethodPost, "/login", s.handleLogin},
		{http.MethodGet, "/logout", s.handleLogoutConfirm}, // a GET never signs out
		{http.MethodPost, "/logout", s.handleLogout},
		{http.MethodGet, "/healthz", s.handleHealthz},
		{http.MethodGet, "/readyz", s.handleReadyz},
		{http.MethodGet, "/metrics", s.guarded("metrics", s.promHandler)}, // server.metrics decides who (metrics_access.go)
		{http.MethodGet, "/static/:name", s.handleStatic},
		{http.MethodHead, "/static/:name", s.handleStatic},
	}...)
	if s.passwordChanger() != nil {
		// the change form of an expired or must-change password (password.go)
		rs = append(rs, route{http.MethodPost, passwordPath, s.handlePasswordChange})
	}
	// server.debug.pprof: the profiler, behind the same rule as /metrics (pprof.go)
	rs = append(rs, s.pprofRoutes()...)
	return rs
}

func (s *Server) newEngine() (*gin.Engine, error) {
	// Release mode: gin prints no debug route table. The mode is gin's own
	// global (stored atomically); Warden never wants debug mode.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// No redirects invented by the router: gin builds them from the Host
	// header and the decoded path. /login/ is simply not found.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.ForwardedByClientIP = false // clientIP middleware decides, from trusted_proxies
	_ = e.SetTrustedProxies(nil)
	e.ContextWithFallback = true
	// Order matters: the request ID first (everything logs it), then the
	// access log and metrics (they see the final status, panics included),
	// then recovery, then headers and limits for every response.
	e.Use(s.requestContext, s.accessLog, s.recovery, s.securityHeaders, s.limitBody)
	s.limits = map[string]int64{}
	var all []mountedRoute
	for _, r := range s.routes() {
		all = append(all, mountedRoute{r.method, r.path, []gin.HandlerFunc{r.handler}, 0})
	}
	for _, r := range s.withHead(append(all, s.mountRoutes()...)) {
		if err := handle(e, r.method, r.path, r.handlers); err != nil {
			return nil, err
		}
		if r.maxBody > 0 {
			s.limits[r.method+" "+r.path] = r.maxBody
		}
	}
	e.NoRoute(func(c *gin.Context) { s.renderError(c, http.StatusNotFound) })
	e.NoMethod(s.noMethod) // 404, not 405, on /metrics and /debug/pprof/ for a refused caller
	return e, nil
}

// handle registers a route; gin panics on a conflicting or malformed path
// (a Mount's mistake), which becomes an error of New.
func handle(e *gin.Engine, method, path string, hs []gin.HandlerFunc) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("web: route %s %s: %v", method, path, v)
		}
	}()
	if method == "" || len(hs) == 0 || hs[len(hs)-1] == nil {
		return fmt.Errorf("web: route %s %s: method and handler are required", method, path)
	}
	e.Handle(method, path, hs...)
	return nil
}

// Handler returns the HTTP handler (for tests and for embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// RouteInfo is one registered route: a method and a gin path pattern
// ("/admin/api/accounts/:id").
type RouteInfo struct{ Method, Path string }

// Routes lists every registered route, the Mounts' included, sorted by path
// then method (tests sweep them all), but for the HEAD routes that run a
// GET route's handlers (head.go): sweeping the GET sweeps them.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.engine.Routes() {
		if r.Method == http.MethodHead && s.headOf[r.Path] {
			continue
		}
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Run listens on cfg.Listen and serves until ctx ends, then shuts down
// gracefully within cfg.ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (closed on return) until ctx ends. With tls.cert_file
// and tls.key_file set it serves TLS 1.2 or later.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests in flight outlive ctx (graceful shutdown); serveCtxKey
		// still lets a long profile stop early when ctx ends (pprof.go).
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), serveCtxKey{}, ctx)
		},
	}
	tlsOn := s.cfg.TLS.CertFile != ""
	if tlsOn {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- srv.ServeTLS(ln, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	s.log.Info("http server listening", "addr", ln.Addr().String(), "tls", tlsOn, "public_url", s.cfg.PublicURL)
	dbg, err := s.serveDebug(ctx)
	if err != nil {
		_ = srv.Close()
		<-errc
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	// Drain: /readyz fails while requests are still served, so that a load
	// balancer (a Kubernetes Service) stops sending new ones; then the
	// listener closes and the requests in flight finish.
	s.draining.Store(true)
	if s.cfg.DrainDelay > 0 {
		s.log.Info("draining: /readyz answers 503", "for", s.cfg.DrainDelay.String())
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("web: serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if dbg != nil {
		_ = dbg.Shutdown(sctx)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("web: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	s.log.Info("http server stopped")
	return nil
}

// serveDebug starts the profiler's own listener (server.debug.listen), which
// serves /debug/pprof/ and answers 404 for anything else; nil when none is
// configured.
func (s *Server) serveDebug(ctx context.Context) (*http.Server, error) {
	if s.cfg.Debug.Listen == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Debug.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: debug listener: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, pprofPrefix) {
				// the server's own 404 (request ID, access log), for a path
				// that has no route
				r = r.Clone(r.Context())
				r.URL.Path, r.URL.RawPath = "/debug/not-on-this-listener", ""
			}
			s.handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			c := context.WithValue(context.WithoutCancel(ctx), serveCtxKey{}, ctx)
			return context.WithValue(c, debugConnKey{}, true)
		},
	}
	go func() { _ = srv.Serve(ln) }()
	s.log.Info("debug listener (pprof)", "addr", ln.Addr().String())
	return srv, nil
}

// wantsJSON: API paths and clients that ask for JSON but not HTML get JSON errors.
func wantsJSON(r *http.Request) bool {
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/admin/api/") {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}
