package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/rolemap"
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
	add("directory", reflect.TypeOf(c.Directory), directoryError(c.Directory))
	add("redis", reflect.TypeOf(c.Redis), c.Redis.Validate())
	add("session", reflect.TypeOf(c.Session), c.Session.Validate())
	add("login_limits", reflect.TypeOf(c.LoginLimits), c.LoginLimits.Validate())
	add("admin", reflect.TypeOf(c.Admin), c.Admin.Validate())
	add("keys", reflect.TypeOf(c.Keys), c.Keys.Validate())
	add("saml", reflect.TypeOf(c.SAML), c.SAML.Validate())
	add("oidc", reflect.TypeOf(c.OIDC), c.OIDC.Validate())
	add("mfa", reflect.TypeOf(c.MFA), c.MFA.Validate())
	add("elevation", reflect.TypeOf(c.Elevation), c.Elevation.Validate())
	add("portal.access_keys", reflect.TypeOf(c.Portal.AccessKeys), c.Portal.AccessKeys.Validate())

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
	ps = append(ps, c.defaultIssuerProblems(ps)...)
	ps = append(ps, c.sessionNameProblems(ps)...)
	return sortProblems(ps)
}

// directoryError validates the directory block. A missing or unknown type
// applies no preset, so user_filter, group_source and the attributes a
// preset fills would be reported missing too, burying the one real
// mistake under four others. Then only the type problem is kept, with the
// problems the block has under every preset (openldap and
// activedirectory): those that stay whatever type was meant.
func directoryError(d ldap.Config) error {
	err := d.Validate()
	switch d.Type {
	case ldap.TypeOpenLDAP, ldap.TypeActiveDirectory, ldap.TypeCustom:
		return err
	}
	keep := flatten(err)
	for _, preset := range []string{ldap.TypeOpenLDAP, ldap.TypeActiveDirectory} {
		v := d
		v.Type = preset
		v.ApplyPreset()
		under := map[string]bool{}
		for _, e := range flatten(v.Validate()) {
			under[e.Error()] = true
		}
		keep = slices.DeleteFunc(keep, func(e error) bool {
			return !strings.HasPrefix(e.Error(), "type: ") && !under[e.Error()]
		})
	}
	return errors.Join(keep...)
}

// defaultIssuerProblems checks the OIDC issuer that oidc.issuer left to its
// default, server.public_url without a trailing slash, exactly as
// oidcop.Config.Validate checks one that is set (item 28: AWS registers
// the issuer as the IAM OIDC provider URL). A public_url that is itself
// refused (a problem in ps) is not checked again.
func (c *Config) defaultIssuerProblems(ps []*FieldError) []*FieldError {
	if c.OIDC.Issuer != "" || c.Server.PublicURL == "" || hasProblemAt(ps, "server.public_url") {
		return nil
	}
	o := c.OIDC
	o.Issuer = strings.TrimRight(c.Server.PublicURL, "/")
	var out []*FieldError
	for _, e := range flatten(o.Validate()) {
		if msg, ok := strings.CutPrefix(e.Error(), "issuer: "); ok {
			out = append(out, &FieldError{Path: "oidc.issuer", Err: e,
				Msg: fmt.Sprintf("not set, so it is server.public_url %q, which %s; set oidc.issuer, or change server.public_url", o.Issuer, msg)})
		}
	}
	return out
}

// fetched reports whether the directory reads attribute a for every user
// (directory.attributes.extra, compared case-insensitively).
func (c *Config) fetched(a string) bool {
	return slices.ContainsFunc(c.Directory.Attributes.Extra, func(x string) bool { return strings.EqualFold(x, a) })
}

// sessionNameProblems reports a saml.aws.session_name_attribute naming a
// directory attribute the directory does not read: every sign-in to AWS
// would fail. A name the saml block refuses (a problem in ps) is left to it.
func (c *Config) sessionNameProblems(ps []*FieldError) []*FieldError {
	const path = "saml.aws.session_name_attribute"
	a := c.SAML.AWS.SessionNameAttribute
	if a == "" || a == "username" || a == "email" || c.fetched(a) || hasProblemAt(ps, path) {
		return nil
	}
	return []*FieldError{{Path: path,
		Msg: fmt.Sprintf("%q is not read from the directory: add it to directory.attributes.extra, or every sign-in to AWS fails for want of a role session name", a)}}
}

// rulesFileProblems checks admin.rules_file for check-config: every
// problem of the rule set (rolemap Validate), and the tag rules that read
// a directory attribute the directory does not read
// (rolemap.RuleSet.CheckFetched), each at admin.rules_file after the file
// name. Validate does not read the file: wardend reads it at start, and
// `wardend users revoke` must not wait on a rule. A file that cannot be
// read here gives a warning instead (check-config may run on another
// machine than wardend).
func (c *Config) rulesFileProblems() (ps []*FieldError, warning string) {
	name := c.Admin.RulesFile
	if name == "" {
		return nil, ""
	}
	data, err := readRulesFile(name)
	if err != nil {
		return nil, "admin.rules_file: cannot read " + fileErrorText(err) + "; the rules were not checked (wardend reads them at start)"
	}
	rule := func(p rolemap.Problem) {
		ps = append(ps, &FieldError{Path: "admin.rules_file", Msg: name + ": " + p.String()})
	}
	rs, err := rolemap.ParseYAML(data)
	var rerr *rolemap.Error
	switch {
	case errors.As(err, &rerr):
		for _, p := range rerr.Problems {
			rule(p)
		}
		return ps, ""
	case err != nil:
		return []*FieldError{{Path: "admin.rules_file", Msg: name + ": " + err.Error(), Err: err}}, ""
	}
	for _, p := range rs.Validate() {
		rule(p)
	}
	for _, p := range rs.CheckFetched(c.Directory.Attributes.Extra) {
		rule(p)
	}
	return ps, ""
}

// readRulesFile reads a regular file of at most rolemap.MaxDocumentBytes
// (+1, so that ParseYAML reports one too large), so that a path such as
// /dev/zero cannot hang a check.
func readRulesFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, rolemap.MaxDocumentBytes+1))
}

// hasProblemAt reports whether ps has a problem at path.
func hasProblemAt(ps []*FieldError, path string) bool {
	return slices.ContainsFunc(ps, func(p *FieldError) bool { return p.Path == path })
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
