package web

import "time"

// Config is the HTTP side of wardend.
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
}
