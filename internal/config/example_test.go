package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/testenv"
)

const (
	examplePath = "../../config/wardend.yaml"
	docsPath    = "../../docs/configuration.md"
)

// leafKeys returns the full path of every leaf key of Config.
func leafKeys() []string {
	var out []string
	walkKeys(reflect.TypeFor[Config](), "", func(path string, _ field, _ reflect.Type) {
		out = append(out, path)
	})
	return out
}

// blockKeys returns the path of every key of Config whose value is a block.
func blockKeys() []string {
	var out []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for _, f := range structFields(t) {
			ft := t.FieldByIndex(f.index).Type
			if ft.Kind() == reflect.Struct && ft != durationType {
				p := joinKey(path, f.name)
				out = append(out, p)
				walk(ft, p)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// writeTestCA writes a self-signed CA certificate (PEM) to path.
func writeTestCA(t testing.TB, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// exampleEnv sets up what config/wardend.yaml refers to: a secrets
// directory with the bind password and a client secret, a CA file, the
// Redis password.
func exampleEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ldap-bind-password"), []byte("bind-pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "grafana-client-secret"), []byte("grafana-secret-from-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	writeTestCA(t, ca)
	return map[string]string{
		"WARDEN_SECRETS_DIR":    dir,
		"WARDEN_LDAP_CA_FILE":   ca,
		"WARDEN_REDIS_PASSWORD": "redis-pw-from-env",
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	env := exampleEnv(t)
	c, err := Load(examplePath, envMap(env))
	if err != nil {
		t.Fatalf("%s: %v", examplePath, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("%s does not validate:\n%v", examplePath, err)
	}
	if c.Directory.BindPassword != "bind-pw-from-file" || c.Redis.Password != "redis-pw-from-env" || c.Directory.CAFile != env["WARDEN_LDAP_CA_FILE"] {
		t.Errorf("substitution or secret file not applied: %q %q %q", c.Directory.BindPassword, c.Redis.Password, c.Directory.CAFile)
	}
	if !reflect.DeepEqual(c.Admin.Groups, []string{"admins"}) || c.Admin.RulesFile != "/etc/warden/mappings.yaml" || c.Admin.RulesReadOnly {
		t.Errorf("admin block: %+v", c.Admin)
	}
	if c.Redis.Addrs[0] != "127.0.0.1:6379" {
		t.Errorf("default of ${WARDEN_REDIS_ADDR:-...} not used: %q", c.Redis.Addrs)
	}
	// The example states the defaults and presets: setting them explicitly
	// must give what leaving them out gives.
	d := Defaults()
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.listen", c.Server.Listen, d.Server.Listen},
		{"server.cookie_name", c.Server.CookieName, d.Server.CookieName},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout, d.Server.ReadHeaderTimeout},
		{"server.read_timeout", c.Server.ReadTimeout, d.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout, d.Server.WriteTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout, d.Server.IdleTimeout},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout, d.Server.ShutdownTimeout},
		{"server.login_min_duration", c.Server.LoginMinDuration, d.Server.LoginMinDuration},
		{"directory.max_nesting", c.Directory.MaxNesting, d.Directory.MaxNesting},
		{"directory.group_cache_ttl", c.Directory.GroupCacheTTL, d.Directory.GroupCacheTTL},
		{"directory.dial_timeout", c.Directory.DialTimeout, d.Directory.DialTimeout},
		{"directory.timeout", c.Directory.Timeout, d.Directory.Timeout},
		{"directory.pool_size", c.Directory.PoolSize, d.Directory.PoolSize},
		{"directory.health_check_interval", c.Directory.HealthCheckInterval, d.Directory.HealthCheckInterval},
		{"directory.recheck_interval", c.Directory.RecheckInterval, d.Directory.RecheckInterval},
		{"redis.mode", c.Redis.Mode, d.Redis.Mode},
		{"redis.key_prefix", c.Redis.KeyPrefix, d.Redis.KeyPrefix},
		{"redis.dial_timeout", c.Redis.DialTimeout, d.Redis.DialTimeout},
		{"redis.read_timeout", c.Redis.ReadTimeout, d.Redis.ReadTimeout},
		{"redis.write_timeout", c.Redis.WriteTimeout, d.Redis.WriteTimeout},
		{"redis.pool_size", c.Redis.PoolSize, d.Redis.PoolSize},
		{"redis.wait_replicas", c.Redis.WaitReplicas, d.Redis.WaitReplicas},
		{"redis.wait_timeout", c.Redis.WaitTimeout, d.Redis.WaitTimeout},
		{"session", c.Session, d.Session},
		{"login_limits", c.LoginLimits, d.LoginLimits},
		{"log", c.Log, d.Log},
		{"data_dir", c.DataDir, d.DataDir},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("example %s = %v, but the default is %v", ch.key, ch.got, ch.want)
		}
	}
	// The Active Directory values stated are the preset's.
	ad, err := Parse([]byte("directory: {type: activedirectory}\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, e := ad.Directory, c.Directory
	if p.UserFilter != e.UserFilter || p.GroupFilter != e.GroupFilter || p.GroupSource != e.GroupSource || p.PageSize != e.PageSize ||
		!reflect.DeepEqual(p.Attributes.Username, e.Attributes.Username) || p.Attributes.DisplayName != e.Attributes.DisplayName ||
		p.Attributes.Email != e.Attributes.Email || p.Attributes.ID != e.Attributes.ID {
		t.Errorf("example directory block differs from the activedirectory preset:\nexample %+v\npreset  %+v", e, p)
	}
}

// TestExampleOpenLDAPBlock: the commented OpenLDAP alternative, uncommented,
// is a valid directory block, and the preset values it lists are the
// preset's.
func TestExampleOpenLDAPBlock(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := slices.Index(lines, "# directory:")
	if start < 0 {
		t.Fatal("no commented OpenLDAP directory block")
	}
	var block, presetLines []string
	for _, l := range lines[start:] {
		if !strings.HasPrefix(l, "#") {
			break
		}
		l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
		if rest, ok := strings.CutPrefix(l, "  # "); ok && strings.Contains(rest, ": ") && !strings.HasPrefix(rest, "What") {
			presetLines = append(presetLines, "  "+rest)
		}
		block = append(block, l)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "grafana-client-secret"), []byte("grafana-secret-from-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	writeTestCA(t, ca)
	doc := strings.ReplaceAll(strings.Join(block, "\n"), "/etc/warden/ldap-ca.pem", ca)
	c, err := Parse([]byte(doc), envMap(map[string]string{"WARDEN_LDAP_BIND_PASSWORD": "pw"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if err := c.Directory.Validate(); err != nil {
		t.Errorf("OpenLDAP block: %v", err)
	}
	stated, err := Parse([]byte("directory:\n  type: openldap\n"+strings.Join(presetLines, "\n")+"\n"), envMap(nil))
	if err != nil {
		t.Fatalf("preset lines: %v\n%s", err, strings.Join(presetLines, "\n"))
	}
	preset, _ := Parse([]byte("directory: {type: openldap}\n"), envMap(nil))
	if !reflect.DeepEqual(stated.Directory, preset.Directory) {
		t.Errorf("stated OpenLDAP preset %+v\nactual %+v", stated.Directory, preset.Directory)
	}
}

// TestEveryKeyInExample: every key Config knows is set in
// config/wardend.yaml (uncommented), so the example cannot fall behind.
func TestEveryKeyInExample(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	known := leafKeys()
	present := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			present[path] = true
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinKey(path, n.Content[i].Value)
			if base, ok := strings.CutSuffix(p, "_file"); ok && slices.Contains(known, base) {
				p = base
			}
			walk(n.Content[i+1], p)
		}
	}
	walk(doc.Content[0], "")
	for _, k := range known {
		if !present[k] {
			t.Errorf("%s: not in %s", k, examplePath)
		}
	}
	// Each key is annotated: the comment above it names its type.
	for _, want := range []string{"string", "integer", "boolean", "duration", "list"} {
		if !strings.Contains(string(data), "# "+want) {
			t.Errorf("no key annotated as %s", want)
		}
	}
}

// TestEveryKeyInDocs: docs/configuration.md names every key by its full
// path in backquotes, and names no key that does not exist.
func TestEveryKeyInDocs(t *testing.T) {
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	known := leafKeys()
	for _, k := range known {
		if !strings.Contains(text, "`"+k+"`") {
			t.Errorf("%s: not documented in %s", k, docsPath)
		}
	}
	valid := map[string]bool{}
	for _, k := range append(known, blockKeys()...) {
		valid[k] = true
	}
	re := regexp.MustCompile("`((?:server|directory|redis|session|login_limits|admin|log|dev)\\.[a-z_.]+)`")
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if !valid[m[1]] && !valid[strings.TrimSuffix(m[1], "_file")] {
			t.Errorf("%s names %s, which is not a key", docsPath, m[1])
		}
	}
	for _, s := range SecretKeys() {
		if !strings.Contains(text, "`"+s+"`") {
			t.Errorf("secret %s not documented", s)
		}
	}
}

// TestDevExampleIsValid: config/dev.yaml works with the variables that
// deploy/testenv exports.
func TestDevExampleIsValid(t *testing.T) {
	env := map[string]string{
		"LDAP_URL":       "ldap://127.0.0.1:3389",
		"LDAP_BIND_DN":   "cn=svc-idp,ou=people,dc=example,dc=org",
		"LDAP_BIND_PW":   "pw",
		"LDAP_BASE_DN":   "dc=example,dc=org",
		"LDAP_USERS_DN":  "ou=people,dc=example,dc=org",
		"LDAP_GROUPS_DN": "ou=groups,dc=example,dc=org",
		"REDIS_ADDR":     "127.0.0.1:6380",
	}
	c, err := Load("../../config/dev.yaml", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("config/dev.yaml:\n%v", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	delete(env, "REDIS_ADDR")
	if _, err := Load("../../config/dev.yaml", envMap(env)); err == nil || !strings.Contains(err.Error(), "redis.addrs[0]: environment variable REDIS_ADDR is not set") {
		t.Errorf("without REDIS_ADDR: %v", err)
	}
}

// TestDevExampleAgainstTestenv loads config/dev.yaml with the environment
// that deploy/testenv/up.sh exports; validation reads nothing the servers
// must answer, but the values are the real ones.
func TestDevExampleAgainstTestenv(t *testing.T) {
	testenv.Require(t, "LDAP_URL", "LDAP_BIND_DN", "LDAP_BIND_PW", "LDAP_BASE_DN", "LDAP_USERS_DN", "LDAP_GROUPS_DN", "REDIS_ADDR")
	var out strings.Builder
	if code := CheckConfig("../../config/dev.yaml", nil, &out); code != CheckOK {
		t.Fatalf("check-config exit %d:\n%s", code, out.String())
	}
}

func BenchmarkLoadAndValidateExample(b *testing.B) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ldap-bind-password"), []byte("pw\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	writeTestCA(b, ca)
	env := envMap(map[string]string{"WARDEN_SECRETS_DIR": dir, "WARDEN_LDAP_CA_FILE": ca, "WARDEN_REDIS_PASSWORD": "pw"})
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(data, env)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
