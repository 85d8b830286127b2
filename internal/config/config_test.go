package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

func TestDefaults(t *testing.T) {
	c := Defaults()
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.listen", c.Server.Listen, ":8080"},
		{"server.cookie_name", c.Server.CookieName, web.DefaultCookieName},
		{"server.public_url", c.Server.PublicURL, ""},
		{"directory.type", c.Directory.Type, ""},
		{"directory.pool_size", c.Directory.PoolSize, ldap.DefaultPoolSize},
		{"directory.timeout", c.Directory.Timeout, ldap.DefaultTimeout},
		{"redis.mode", c.Redis.Mode, store.ModeStandalone},
		{"redis.key_prefix", c.Redis.KeyPrefix, "warden:"},
		{"session.absolute_lifetime", c.Session.AbsoluteLifetime, 12 * time.Hour},
		{"login_limits.window", c.LoginLimits.Window, 15 * time.Minute},
		{"admin.groups", c.Admin.Groups, []string(nil)}, // required: never guessed
		{"admin.rules_file", c.Admin.RulesFile, ""},
		{"admin.rules_read_only", c.Admin.RulesReadOnly, false},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"data_dir", c.DataDir, "/var/lib/warden"},
		{"dev.allow_non_loopback", c.Dev.AllowNonLoopback, false},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
		}
	}
	// An empty file gives exactly the defaults.
	p, err := Parse(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*p, c) {
		t.Errorf("Parse(empty) = %+v\nwant Defaults() = %+v", *p, c)
	}
}

func TestDefaultsKeepWhatTheFileSets(t *testing.T) {
	doc := `server:
  listen: 127.0.0.1:9000
session:
  idle_timeout: 5m
log:
  format: text
data_dir: /srv/warden
`
	c, err := Parse([]byte(doc), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != "127.0.0.1:9000" || c.Session.IdleTimeout != 5*time.Minute || c.Log.Format != "text" || c.DataDir != "/srv/warden" {
		t.Errorf("file values lost: %+v", c)
	}
	if c.Log.Level != "info" || c.Session.AbsoluteLifetime != 12*time.Hour {
		t.Errorf("defaults missing: %+v", c)
	}
}

func TestPresets(t *testing.T) {
	tests := []struct {
		name, doc string
		check     func(ldap.Config) []string
	}{
		{"activedirectory", "directory:\n  type: activedirectory\n", func(d ldap.Config) (bad []string) {
			if !strings.Contains(d.UserFilter, "sAMAccountName={username}") || !strings.Contains(d.UserFilter, "userPrincipalName={username}") {
				bad = append(bad, "user_filter "+d.UserFilter)
			}
			if d.GroupSource != ldap.GroupSourceInChain || d.Attributes.ID != "objectGUID" || d.Attributes.Username != "sAMAccountName" || d.PageSize != 500 {
				bad = append(bad, fmt.Sprintf("%+v", d))
			}
			return bad
		}},
		{"openldap", "directory:\n  type: openldap\n", func(d ldap.Config) (bad []string) {
			if !strings.Contains(d.UserFilter, "(uid={username})") || d.Attributes.ID != "entryUUID" || d.Attributes.Username != "uid" || d.GroupSource != ldap.GroupSourceMemberOf {
				bad = append(bad, fmt.Sprintf("%+v", d))
			}
			return bad
		}},
		{"preset does not overwrite", "directory:\n  type: activedirectory\n  group_source: memberof\n  attributes:\n    username: userPrincipalName\n", func(d ldap.Config) (bad []string) {
			if d.GroupSource != ldap.GroupSourceMemberOf || d.Attributes.Username != "userPrincipalName" || d.Attributes.ID != "objectGUID" {
				bad = append(bad, fmt.Sprintf("%+v", d))
			}
			return bad
		}},
		{"base DNs follow base_dn", "directory:\n  type: openldap\n  base_dn: dc=example,dc=org\n", func(d ldap.Config) (bad []string) {
			if d.UserBaseDN != "dc=example,dc=org" || d.GroupBaseDN != "dc=example,dc=org" {
				bad = append(bad, fmt.Sprintf("%+v", d))
			}
			return bad
		}},
		{"custom fills nothing", "directory:\n  type: custom\n", func(d ldap.Config) (bad []string) {
			if d.UserFilter != "" || d.Attributes.ID != "" || d.GroupSource != "" {
				bad = append(bad, fmt.Sprintf("%+v", d))
			}
			return bad
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), envMap(nil))
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.check(c.Directory) {
				t.Error(b)
			}
		})
	}
}

func TestDev(t *testing.T) {
	tests := []struct{ listen, listenWant, url string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"127.0.0.1:9090", "127.0.0.1:9090", "http://127.0.0.1:9090"},
		{"[::1]:8080", "[::1]:8080", "http://[::1]:8080"},
		{":8080", ":8080", "http://127.0.0.1:8080"},
		{"0.0.0.0:8080", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"localhost:8080", "localhost:8080", "http://localhost:8080"},
	}
	for _, tt := range tests {
		c := Dev(tt.listen)
		if c.Server.Listen != tt.listenWant || c.Server.PublicURL != tt.url {
			t.Errorf("Dev(%q): listen %q public_url %q, want %q %q", tt.listen, c.Server.Listen, c.Server.PublicURL, tt.listenWant, tt.url)
		}
		if c.Log.Format != "text" || c.DataDir != "./.warden-dev" || c.Session.IdleTimeout == 0 || c.LoginLimits.Window == 0 || c.Server.CookieName == "" {
			t.Errorf("Dev(%q) defaults: %+v", tt.listen, c)
		}
		if !reflect.DeepEqual(c.Directory, ldap.Config{}) || !reflect.DeepEqual(c.Redis, store.RedisConfig{}) {
			t.Errorf("Dev(%q) fills directory or redis", tt.listen)
		}
	}
	// Once dev mode fills directory and Redis, the server part validates,
	// and so does the admin block: alice's group administers.
	c := Dev("")
	if err := c.Server.Validate(); err != nil {
		t.Errorf("Dev server block invalid: %v", err)
	}
	if err := c.Admin.Validate(); err != nil || !reflect.DeepEqual(c.Admin.Groups, []string{"admins"}) || c.Admin.RulesFile != "" || c.Admin.RulesReadOnly {
		t.Errorf("Dev admin block %+v: %v", c.Admin, err)
	}
}

// validConfig returns a configuration that passes Validate.
func validConfig(t *testing.T) Config {
	t.Helper()
	c, err := Parse([]byte(`server:
  public_url: https://sso.example.com
directory:
  type: openldap
  urls: [ldaps://ldap.example.com]
  bind_dn: cn=svc,dc=example,dc=org
  bind_password: x
  base_dn: dc=example,dc=org
redis:
  addrs: [127.0.0.1:6379]
admin:
  groups: [admins]
`), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	return *c
}

func TestValidateAggregates(t *testing.T) {
	c := validConfig(t)
	c.Server.Listen = "nope"
	c.Directory.URLs = []string{"ldaps://a", "ftp://b", "ldap://c"}
	c.Directory.Attributes.Extra = []string{"ok", "bad attr"}
	c.Directory.BindPassword = ""
	c.Redis.Addrs = []string{"127.0.0.1:6379", "x"}
	c.Session.IdleTimeout = 24 * time.Hour
	c.LoginLimits.MaxFailuresPerIP = 0
	c.Admin.Groups = []string{"admins", " ", "cn=admins,ou"}
	c.Admin.RulesReadOnly = true
	c.Log.Level = "loud"
	c.Log.Format = "xml"
	c.DataDir = " "
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	var paths []string
	for _, e := range flatten(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		paths = append(paths, fe.Path)
	}
	want := []string{
		"admin.groups[1]",
		"admin.groups[2]",
		"admin.rules_read_only",
		"data_dir",
		"directory.attributes.extra[1]",
		"directory.bind_password",
		"directory.urls[1]",
		"log.format",
		"log.level",
		"login_limits.max_failures_per_ip",
		"redis.addrs",
		"redis.addrs[1]",
		"server.listen",
		"session.idle_timeout",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("paths:\n%s\nwant:\n%s\nerror:\n%v", strings.Join(paths, "\n"), strings.Join(want, "\n"), err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, ": ") {
			t.Errorf("line without key path: %q", line)
		}
	}
	for _, msg := range []string{
		`directory.urls[1]: scheme must be ldap or ldaps, not "ftp"`,
		"admin.groups[1]: empty group name",
		`admin.groups[2]: "cn=admins,ou" is not a valid DN`,
		"admin.rules_read_only: requires rules_file",
	} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("component message %q lost:\n%v", msg, err)
		}
	}
	// An empty admin block is one problem: the group list is required.
	c = validConfig(t)
	c.Admin = Defaults().Admin
	if err := c.Validate(); err == nil || err.Error() != "admin.groups: at least one admin group is required" {
		t.Errorf("no admin groups: %v", err)
	}
}

func TestPrefixed(t *testing.T) {
	type tls struct {
		CertFile string `yaml:"cert_file"`
	}
	type block struct {
		URLs     []string `yaml:"urls"`
		Password string   `yaml:"password"`
		TLS      tls      `yaml:"tls"`
	}
	typ := reflect.TypeFor[block]()
	err := errors.Join(
		errors.New("urls[10]: bad"),
		errors.Join(errors.New("tls.cert_file: missing"), errors.New("urls[2]: bad")),
		fmt.Errorf("password_file: %w and %w", errors.New("a"), errors.New("b")),
		errors.New("nothing: not a key of the block"),
		errors.New("no key path at all"),
	)
	var got []string
	for _, p := range sortProblems(prefixed("blk", typ, err)) {
		got = append(got, p.Error())
	}
	equalLines(t, got, []string{
		"blk: nothing: not a key of the block",
		"blk: no key path at all",
		"blk.password_file: a and b",
		"blk.tls.cert_file: missing",
		"blk.urls[2]: bad",
		"blk.urls[10]: bad",
	})
	if prefixed("blk", typ, nil) != nil {
		t.Error("nil error gives problems")
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings, one per warning, in order
	}{
		{"none", func(*Config) {}, nil},
		{"directory insecure", func(c *Config) { c.Directory.InsecureSkipVerify = true }, []string{"directory.insecure_skip_verify: true"}},
		{"ldap without start_tls to a remote host", func(c *Config) {
			c.Directory.URLs = []string{"ldap://127.0.0.1:389", "ldap://dc2.example.com"}
		}, []string{"directory.urls[1]: ldap:// to dc2.example.com without start_tls"}},
		{"ldap with start_tls", func(c *Config) {
			c.Directory.URLs = []string{"ldap://dc2.example.com"}
			c.Directory.StartTLS = true
		}, nil},
		{"redis without TLS to a remote host", func(c *Config) {
			c.Redis.Addrs = []string{"localhost:6379", "redis.example.com:6379", "[::1]:6379"}
		}, []string{"redis.addrs[1]: redis.example.com is not a loopback address"}},
		{"redis with TLS", func(c *Config) {
			c.Redis.Addrs = []string{"redis.example.com:6379"}
			c.Redis.TLS.Enabled = true
			c.Redis.TLS.InsecureSkipVerify = true
		}, []string{"redis.tls.insecure_skip_verify: true"}},
		{"http public_url", func(c *Config) { c.Server.PublicURL = "http://sso.example.com" }, []string{"server.public_url: http:// on sso.example.com"}},
		{"http public_url on loopback", func(c *Config) { c.Server.PublicURL = "http://127.0.0.1:8080" }, nil},
		{"trust everyone", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "0.0.0.0/0"} }, []string{"server.trusted_proxies[1]: 0.0.0.0/0 trusts every client"}},
		{"metrics for everyone", func(c *Config) { c.Server.Metrics.Allow = []string{"::/0"} }, []string{"server.metrics.allow[0]: ::/0 lets anyone read /metrics"}},
		{"dev off loopback", func(c *Config) { c.Dev.AllowNonLoopback = true }, []string{"dev.allow_non_loopback: true"}},
		{"public_url by IP: no passkeys", func(c *Config) { c.Server.PublicURL = "https://10.1.2.3" }, []string{"server.public_url: 10.1.2.3 is an IP address: passkeys"}},
		{"public_url by IP without webauthn", func(c *Config) {
			c.Server.PublicURL = "https://10.1.2.3"
			c.MFA.Methods = []string{"totp"}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.mod(&c)
			got := c.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("warnings %q, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %q, want prefix %q", got[i], w)
				}
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := validConfig(t)
	c.Directory.BindPassword = "ldap-secret"
	c.Redis.Password = "redis-secret"
	c.Redis.SentinelPassword = ""
	r := c.Redacted()
	if r.Directory.BindPassword != Redaction || r.Redis.Password != Redaction || r.Redis.SentinelPassword != "" {
		t.Errorf("redacted: %q %q %q", r.Directory.BindPassword, r.Redis.Password, r.Redis.SentinelPassword)
	}
	if c.Directory.BindPassword != "ldap-secret" {
		t.Error("Redacted changed the original")
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "config", c)
	for _, out := range []string{c.String(), fmt.Sprintf("%v %+v %s", c, c, &c), logBuf.String()} {
		if strings.Contains(out, "ldap-secret") || strings.Contains(out, "redis-secret") {
			t.Errorf("secret printed: %s", out)
		}
	}
	// secrets inside lists (oidc.clients[].secret) are redacted too, in a
	// copy: the Config itself keeps them
	c.OIDC.Clients = []oidcop.ClientConfig{{ID: "grafana", Secret: "client-secret-0123456789"}}
	if out := c.String(); strings.Contains(out, "client-secret-0123456789") || !strings.Contains(out, "grafana") {
		t.Errorf("client secret printed or client lost:\n%s", out)
	}
	if c.OIDC.Clients[0].Secret != "client-secret-0123456789" {
		t.Error("Redacted changed the caller's client list")
	}
	want := []string{"server.metrics.bearer_token", "directory.bind_password", "redis.password", "redis.sentinel_password"}
	if got := SecretKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("SecretKeys = %q, want %q", got, want)
	}
}

// TestStringRoundTrips: the redacted YAML is a valid config file that
// parses back to the same configuration (secrets aside).
func TestStringRoundTrips(t *testing.T) {
	c := validConfig(t)
	c.Directory.BindPassword = ""
	back, err := Parse([]byte(c.String()), envMap(nil))
	if err != nil {
		t.Fatalf("%v\n%s", err, c.String())
	}
	if !reflect.DeepEqual(*back, c) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", *back, c)
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(LogConfig{Level: "warn", Format: "text"}.Handler(&buf))
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "level=WARN msg=shown k=v") {
		t.Errorf("text log: %q", buf.String())
	}
	buf.Reset()
	slog.New(LogConfig{Level: "debug", Format: "json"}.Handler(&buf)).Debug("d")
	if !strings.HasPrefix(buf.String(), "{") || !strings.Contains(buf.String(), `"msg":"d"`) {
		t.Errorf("json log: %q", buf.String())
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `server:
  public_url: https://sso.example.com
directory:
  type: activedirectory
  urls: [ldap://dc1.example.com]
  bind_dn: svc-idp@example.test
  bind_password: ${PW}
  base_dn: DC=example,DC=test
redis:
  addrs: [127.0.0.1:6379]
admin:
  groups: [CN=Warden Admins,OU=Groups,DC=example,DC=test]
`)
	bad := write("bad.yaml", `server:
  public_url: https://sso.example.com
  listn: ":9000"
directory:
  type: activedirectory
  urls: [ldap://dc1.example.com, "ftp://x"]
  bind_dn: svc-idp@example.test
  bind_password: ${NOPE}
  base_dn: DC=example,DC=test
  pool_size: ten
redis:
  addrs: [127.0.0.1:6379]
session:
  idle_timeout: 48h
log:
  level: loud
`)
	tests := []struct {
		name, path string
		code       int
		want       string
	}{
		{"ok with warnings", good, CheckOK, good + `: config OK
warning: directory.urls[0]: ldap:// to dc1.example.com without start_tls: passwords travel unencrypted; use ldaps:// or start_tls: true
`},
		{"problems", bad, CheckProblems, ""}, // checked line by line below
		{"syntax", write("syntax.yaml", "server: [\n"), CheckProblems, "invalid YAML: "},
		{"unreadable", filepath.Join(dir, "missing.yaml"), CheckUnreadable, filepath.Join(dir, "missing.yaml") + ": cannot read config file: " + filepath.Join(dir, "missing.yaml") + ": no such file or directory\n"},
		{"directory", dir, CheckUnreadable, ": cannot read config file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := CheckConfig(tt.path, envMap(map[string]string{"PW": "pw"}), &out)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output:\n%s\nwant it to contain:\n%s", out.String(), tt.want)
			}
		})
	}
	var out bytes.Buffer
	CheckConfig(bad, envMap(nil), &out)
	equalLines(t, strings.Split(strings.TrimSpace(out.String()), "\n"), []string{
		"server.listn: unknown key (line 3); did you mean listen?",
		"directory.bind_password: environment variable NOPE is not set (line 8); set it, or give a default: ${NOPE:-value}",
		`directory.pool_size: expected an integer, got "ten" (line 10)`,
		"admin.groups: at least one admin group is required", // the file has no admin block
		`directory.urls[1]: scheme must be ldap or ldaps, not "ftp"`,
		`log.level: must be debug, info, warn or error, not "loud"`,
		"session.idle_timeout: must not exceed absolute_lifetime (12h0m0s)",
		bad + ": 7 problems",
		"warning: directory.urls[0]: ldap:// to dc1.example.com without start_tls: passwords travel unencrypted; use ldaps:// or start_tls: true",
	})
}

// TestYAMLShape pins the top-level keys (docker-compose and the docs use them).
func TestYAMLShape(t *testing.T) {
	var n yaml.Node
	out, err := yaml.Marshal(Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &n); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := 0; i < len(n.Content[0].Content); i += 2 {
		keys = append(keys, n.Content[0].Content[i].Value)
	}
	want := "server directory redis session login_limits admin keys saml oidc mfa elevation portal log data_dir dev"
	if strings.Join(keys, " ") != want {
		t.Errorf("top-level keys %q, want %q", keys, want)
	}
}
