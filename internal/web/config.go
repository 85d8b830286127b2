package web

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the HTTP side of wardend (the `server` block of the config file).
type Config struct {
	// Listen is the address to serve on (127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// PublicURL is the URL users reach Warden at (https://sso.example.com).
	// Cookies are Secure, and HSTS is sent, when it is https.
	PublicURL string `yaml:"public_url"`
	TLS       struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// TrustedProxies lists the CIDRs of reverse proxies whose
	// X-Forwarded-For is believed for the client IP. Empty: the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// CookieName of the session cookie; under https it gets the __Host- prefix.
	CookieName        string        `yaml:"cookie_name"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LoginMinDuration pads every failed sign-in to at least this long, so
	// an unknown user and a wrong password take alike long.
	LoginMinDuration time.Duration `yaml:"login_min_duration"`
	// Metrics says who may read /metrics (metrics_access.go), and the
	// profiler when Debug.Pprof is on.
	Metrics MetricsConfig `yaml:"metrics"`
	// Debug serves Go's profiler under /debug/pprof/ (pprof.go).
	Debug DebugConfig `yaml:"debug"`
	// AccessLog samples the log lines of successful requests at high
	// rates (logsample.go).
	AccessLog AccessLogConfig `yaml:"access_log"`
	// DrainDelay: after SIGTERM, /readyz answers 503 for this long while
	// requests are still served, so that a load balancer stops sending new
	// ones before the listener closes (default 0; a few seconds behind a
	// load balancer or on Kubernetes).
	DrainDelay time.Duration `yaml:"drain_delay"`
}

// DebugConfig switches the profiler on. Who may use it is decided by
// Metrics, exactly as for /metrics: the allow list or the bearer token;
// anyone else gets the 404 of an unknown path.
type DebugConfig struct {
	// Pprof registers /debug/pprof/ and its profiles. Default false: the
	// paths do not exist.
	Pprof bool `yaml:"pprof"`
	// Listen, when set, serves the profiler on a listener of its own (and
	// only there): a loopback address, or any address when
	// metrics.bearer_token is set.
	Listen string `yaml:"listen"`
}

// MetricsConfig guards /metrics. A request is served when its client IP
// (trusted_proxies aware) is in Allow, or when it carries
// "Authorization: Bearer <BearerToken>" and a token is set. Anything else
// gets the same 404 as an unknown path.
type MetricsConfig struct {
	// Allow lists CIDRs or IP addresses whose requests are served without
	// a token. Default: loopback only (DefaultMetricsAllow). The single
	// entry "none" allows no address (token only).
	Allow []string `yaml:"allow"`
	// BearerToken, when set (at least 16 characters of the RFC 6750
	// b64token alphabet), lets a scraper anywhere in. Usually given as
	// bearer_token_file.
	BearerToken string `yaml:"bearer_token"`
}

// DefaultMetricsAllow is loopback only: a Prometheus (or agent) on the same
// host. Returned fresh, so that no caller can change the default.
func DefaultMetricsAllow() []string { return []string{"127.0.0.0/8", "::1/128"} }

// MetricsAllowNone, as the only entry of metrics.allow, allows no address.
const MetricsAllowNone = "none"

// minMetricsToken is the shortest bearer token accepted (16 characters of
// the b64token alphabet: about 96 bits when random).
const minMetricsToken = 16

// Defaults. DefaultLoginMinDuration covers a service bind, a search and a
// user bind against a directory a few network hops away (typically 5-100 ms;
// Samba AD on loopback about 5 ms) with a wide margin. Only failed sign-ins
// wait, on a timer, so it costs a parked goroutine, not CPU or throughput.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultCookieName        = "warden_session"
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultLoginMinDuration  = 300 * time.Millisecond
)

// maxDrainDelay: longer only delays every stop; Kubernetes' default grace
// period is 30s.
const maxDrainDelay = 2 * time.Minute

// maxLoginMinDuration keeps a typo (300s for 300ms) from hanging every failed sign-in.
const maxLoginMinDuration = 10 * time.Second

// SetDefaults fills every unset field. PublicURL has no default: it decides
// whether cookies are Secure, so it must be said.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDur(&c.LoginMinDuration, DefaultLoginMinDuration)
	c.AccessLog.setDefaults()
	if c.Metrics.Allow == nil {
		c.Metrics.Allow = DefaultMetricsAllow()
	}
}

// Validate reports every problem at once, each as "key.path: message" with
// the path relative to the server block. The result is an errors.Join of
// the individual errors (nil when all is well).
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if c.Listen == "" {
		add("listen", "required")
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		add("listen", "must be host:port (127.0.0.1:8080, :8443)")
	}

	https := false
	if c.PublicURL == "" {
		add("public_url", "required (the URL users reach Warden at, e.g. https://sso.example.com)")
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		add("public_url", "must be an absolute http(s) URL")
	} else {
		https = u.Scheme == "https"
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			add("public_url", "must not have a path, query or fragment (Warden is served at the root)")
		}
	}

	cert, key := c.TLS.CertFile, c.TLS.KeyFile
	switch {
	case cert != "" && key == "":
		add("tls.key_file", "required with tls.cert_file")
	case key != "" && cert == "":
		add("tls.cert_file", "required with tls.key_file")
	}
	for _, f := range []struct{ key, path string }{{"tls.cert_file", cert}, {"tls.key_file", key}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			add(f.key, "cannot read %q", f.path)
		} else if st.IsDir() {
			add(f.key, "%q is a directory", f.path)
		}
	}
	if cert != "" && key != "" && c.PublicURL != "" && !https && strings.HasPrefix(c.PublicURL, "http://") {
		add("public_url", "must be https when tls is set (cookies would not be Secure)")
	}

	for i, p := range c.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "not a CIDR (10.0.0.0/8) or IP address")
		}
	}

	if c.CookieName == "" {
		add("cookie_name", "required")
	} else if !isCookieToken(c.CookieName) {
		add("cookie_name", "only letters, digits and !#$%%&'*+-.^_`|~ are allowed")
	} else if strings.HasPrefix(strings.ToLower(c.CookieName), "__host-") || strings.HasPrefix(strings.ToLower(c.CookieName), "__secure-") {
		add("cookie_name", "must not carry a __Host-/__Secure- prefix (added under https)")
	}

	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			add(d.key, "must be positive")
		}
	}
	if c.LoginMinDuration < 0 || c.LoginMinDuration > maxLoginMinDuration {
		add("login_min_duration", "must be between 0 and %s", maxLoginMinDuration)
	}
	if c.DrainDelay < 0 || c.DrainDelay > maxDrainDelay {
		add("drain_delay", "must be between 0 and %s", maxDrainDelay)
	}
	c.AccessLog.validate(add)
	c.Metrics.validate(add)
	c.validateDebug(add)
	return errors.Join(errs...)
}

// validate adds the problems of the metrics block under "metrics.". The
// token itself is never quoted.
func (m *MetricsConfig) validate(add func(key, format string, args ...any)) {
	for i, a := range m.Allow {
		key := fmt.Sprintf("metrics.allow[%d]", i)
		if strings.TrimSpace(a) == MetricsAllowNone {
			if len(m.Allow) != 1 {
				add(key, "%q must be the only entry", MetricsAllowNone)
			}
			continue
		}
		if _, err := parseProxy(a); err != nil {
			add(key, "not a CIDR (127.0.0.0/8) or IP address")
		}
	}
	if t := m.BearerToken; t != "" {
		if len(t) < minMetricsToken {
			add("metrics.bearer_token", "must have at least %d characters", minMetricsToken)
		} else if !isB64Token(t) {
			add("metrics.bearer_token", "only letters, digits and -._~+/ (then = padding) are allowed (RFC 6750 b64token)")
		}
	}
}

// isB64Token reports whether s is an RFC 6750 section 2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("-._~+/", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// https reports whether the public URL is https (Secure cookies, HSTS, __Host-).
func (c *Config) https() bool {
	return strings.HasPrefix(strings.ToLower(c.PublicURL), "https://")
}

// parseProxy accepts a CIDR or a bare IP (taken as a single-address prefix).
func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse proxy %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isCookieToken reports whether s is an RFC 6265 cookie-name (an RFC 7230 token).
func isCookieToken(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// validateDebug: the profiler's own listener is loopback-only unless a
// bearer token protects it.
func (c *Config) validateDebug(add func(key, format string, args ...any)) {
	if c.Debug.Listen == "" {
		return
	}
	if !c.Debug.Pprof {
		add("debug.listen", "only with debug.pprof: true")
		return
	}
	host, port, err := net.SplitHostPort(c.Debug.Listen)
	if err != nil || port == "" {
		add("debug.listen", "must be host:port (got %q)", c.Debug.Listen)
		return
	}
	if c.Debug.Listen == c.Listen {
		add("debug.listen", "must differ from listen")
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) && c.Metrics.BearerToken == "" {
		add("debug.listen", "%q is not a loopback address: use 127.0.0.1:PORT, or set metrics.bearer_token to require it", c.Debug.Listen)
	}
}
