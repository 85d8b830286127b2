package config

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Validate checks the whole configuration and returns nil, or one error
// joining every problem (each a *FieldError), one per line as
// "key.path: message", sorted by key path. It runs each component's
// Validate and puts the block's name before the paths they report
// (urls[1] in directory becomes directory.urls[1]), then checks what spans
// components or belongs to this package.
func (c *Config) Validate() error {
	return joinProblems(c.problems())
}

func (c *Config) problems() []*FieldError {
	var ps []*FieldError
	add := func(block string, t reflect.Type, err error) {
		ps = append(ps, prefixed(block, t, err)...)
	}
	add("server", reflect.TypeOf(c.Server), c.Server.Validate())
	add("directory", reflect.TypeOf(c.Directory), c.Directory.Validate())
	add("redis", reflect.TypeOf(c.Redis), c.Redis.Validate())
	add("session", reflect.TypeOf(c.Session), c.Session.Validate())
	add("login_limits", reflect.TypeOf(c.LoginLimits), c.LoginLimits.Validate())
	add("admin", reflect.TypeOf(c.Admin), c.Admin.Validate())
	add("keys", reflect.TypeOf(c.Keys), c.Keys.Validate())
	add("saml", reflect.TypeOf(c.SAML), c.SAML.Validate())
	add("oidc", reflect.TypeOf(c.OIDC), c.OIDC.Validate())
	add("mfa", reflect.TypeOf(c.MFA), c.MFA.Validate())
	add("elevation", reflect.TypeOf(c.Elevation), c.Elevation.Validate())

	bad := func(path, format string, args ...any) {
		ps = append(ps, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text, not %q", c.Log.Format)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty: wardend keeps its generated keys there")
	}
	// server.public_url against server.tls (https when the server speaks
	// TLS) is checked by web.Config.Validate.
	return sortProblems(ps)
}

// keyPathRE matches a relative key path at the start of a component's
// error text: "urls[1]: ...", "attributes.id: ...", "tls.cert_file: ...".
var keyPathRE = regexp.MustCompile(`^([a-z0-9_]+(?:\[[0-9]+\])*(?:\.[a-z0-9_]+(?:\[[0-9]+\])*)*): `)

// prefixed turns a component's Validate error into problems with full key
// paths. Each leaf of err (errors.Join is opened up) whose text starts with
// a key path that block's type knows gets block + "." before it; any other
// text is reported at the block itself ("directory: ..."), so that nothing a
// component says is lost.
func prefixed(block string, t reflect.Type, err error) []*FieldError {
	var ps []*FieldError
	for _, e := range flatten(err) {
		text := e.Error()
		if m := keyPathRE.FindStringSubmatch(text); m != nil && knowsPath(t, m[1]) {
			ps = append(ps, &FieldError{Path: block + "." + m[1], Msg: text[len(m[0]):], Err: e})
			continue
		}
		ps = append(ps, &FieldError{Path: block, Msg: text, Err: e})
	}
	return ps
}

// knowsPath reports whether type t has the key path rel (indices ignored),
// X_file counting as X.
func knowsPath(t reflect.Type, rel string) bool {
	for _, seg := range strings.Split(rel, ".") {
		if i := strings.IndexByte(seg, '['); i >= 0 {
			seg = seg[:i]
		}
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return false
		}
		var next reflect.Type
		for _, f := range structFields(t) {
			if f.name == seg || f.name+"_file" == seg {
				next = t.FieldByIndex(f.index).Type
				break
			}
		}
		if next == nil {
			return false
		}
		t = next
	}
	return true
}

// Warnings returns what is allowed but unsafe or likely a mistake, one line
// each as "key.path: message", sorted by key path.
func (c *Config) Warnings() []string {
	var ws []*FieldError
	warn := func(path, format string, args ...any) {
		ws = append(ws, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Directory.InsecureSkipVerify {
		warn("directory.insecure_skip_verify", "true: the directory's certificate is not checked, so anyone on the path can read passwords")
	}
	for i, raw := range c.Directory.URLs {
		u, err := url.Parse(raw)
		if err != nil || !strings.EqualFold(u.Scheme, "ldap") || c.Directory.StartTLS || isLoopbackHost(u.Hostname()) {
			continue
		}
		warn(fmt.Sprintf("directory.urls[%d]", i), "ldap:// to %s without start_tls: passwords travel unencrypted; use ldaps:// or start_tls: true", u.Hostname())
	}
	if c.Redis.TLS.InsecureSkipVerify {
		warn("redis.tls.insecure_skip_verify", "true: the Redis server's certificate is not checked")
	}
	if !c.Redis.TLS.Enabled {
		for i, addr := range c.Redis.Addrs {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || isLoopbackHost(host) {
				continue
			}
			warn(fmt.Sprintf("redis.addrs[%d]", i), "%s is not a loopback address and redis.tls.enabled is false: sessions travel unencrypted", host)
		}
	}
	if u, err := url.Parse(c.Server.PublicURL); err == nil && net.ParseIP(u.Hostname()) != nil &&
		!isLoopbackHost(u.Hostname()) && slices.Contains(c.MFA.Methods, "webauthn") {
		warn("server.public_url", "%s is an IP address: passkeys and security keys need a host name, so only TOTP and recovery codes are offered", u.Hostname())
	}
	if u, err := url.Parse(c.Server.PublicURL); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		warn("server.public_url", "http:// on %s: session cookies cannot be Secure and passwords travel unencrypted; use https", u.Hostname())
	}
	for i, p := range c.Server.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil {
			if ones, _ := n.Mask.Size(); ones == 0 {
				warn(fmt.Sprintf("server.trusted_proxies[%d]", i), "%s trusts every client's X-Forwarded-For: anyone can choose the IP that per-IP login limits count", p)
			}
		}
	}
	for i, p := range c.Server.Metrics.Allow {
		if _, n, err := net.ParseCIDR(p); err == nil {
			if ones, _ := n.Mask.Size(); ones == 0 {
				warn(fmt.Sprintf("server.metrics.allow[%d]", i), "%s lets anyone read /metrics (sign-in counts, directory and Redis health)", p)
			}
		}
	}
	if c.Dev.AllowNonLoopback {
		warn("dev.allow_non_loopback", "true: dev mode (demo users with known passwords) may serve on a network address")
	}
	ws = sortProblems(ws)
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Error()
	}
	return out
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
