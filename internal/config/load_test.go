package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// envMap is an env lookup backed by a map.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// filesMap is a file reader backed by a map; other paths do not exist.
func filesMap(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := m[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

// problemTexts parses doc and returns its problems' texts.
func problemTexts(t *testing.T, doc string, env map[string]string, files map[string]string) (*Config, []string) {
	t.Helper()
	c, ps := parse([]byte(doc), envMap(env), filesMap(files))
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return c, out
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n got: %q\nwant: %q", got, want)
	}
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "top level with suggestion",
			doc:  "servr:\n  listen: :8080\n",
			want: []string{"servr: unknown key (line 1); did you mean server?"},
		},
		{
			name: "several at once, nested, in document order",
			doc: `server:
  public_url: https://sso.example.com
  listn: ":9000"
directory:
  type: openldap
  atributes:
    username: uid
  attributes:
    usrname: uid
    disply_name: cn
redis:
  tls:
    enable: true
colour: blue
`,
			want: []string{
				"server.listn: unknown key (line 3); did you mean listen?",
				"directory.atributes: unknown key (line 6); did you mean attributes?",
				"directory.attributes.usrname: unknown key (line 9); did you mean username?",
				"directory.attributes.disply_name: unknown key (line 10); did you mean display_name?",
				"redis.tls.enable: unknown key (line 13); did you mean enabled?",
				"colour: unknown key (line 14); known keys here: server, directory, redis, session, login_limits, admin, keys, saml, oidc, mfa, elevation, portal, log, data_dir, dev",
			},
		},
		{
			name: "other spellings of a known key",
			doc:  "directory:\n  bindDN: cn=x\n  pool-size: 3\n",
			want: []string{
				"directory.bindDN: unknown key (line 2); did you mean bind_dn?",
				"directory.pool-size: unknown key (line 3); did you mean pool_size?",
			},
		},
		{
			name: "misspelt _file key",
			doc:  "directory:\n  bind_password_fil: /run/secrets/pw\n",
			want: []string{"directory.bind_password_fil: unknown key (line 2); did you mean bind_password_file?"},
		},
		{
			name: "_file of a block is unknown",
			doc:  "directory:\n  attributes_file: /x\n",
			want: []string{"directory.attributes_file: unknown key (line 2); only a single value can be read from a file, and attributes is not one"},
		},
		{
			name: "admin block",
			doc:  "admin:\n  group: [admins]\n  rules_readonly: true\n",
			want: []string{
				"admin.group: unknown key (line 2); did you mean groups?",
				"admin.rules_readonly: unknown key (line 3); did you mean rules_read_only?",
			},
		},
		{
			name: "duplicate key",
			doc:  "log:\n  level: info\n  level: debug\n",
			want: []string{"log.level: duplicate key (line 3); first set at line 2"},
		},
		{
			name: "merge key",
			doc:  "base: &b {level: info}\nlog:\n  <<: *b\n",
			want: []string{
				"base: unknown key (line 1); known keys here: server, directory, redis, session, login_limits, admin, keys, saml, oidc, mfa, elevation, portal, log, data_dir, dev",
				"log.<<: merge keys (<<) are not supported (line 3); repeat the keys",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := problemTexts(t, tt.doc, nil, nil)
			equalLines(t, got, tt.want)
		})
	}
}

// TestUnknownKeysInLists decodes into a type with a list of blocks (the
// wardend Config has none yet; the decoder is generic).
func TestUnknownKeysInLists(t *testing.T) {
	type item struct {
		Name string `yaml:"name"`
		Port int    `yaml:"port"`
	}
	var out struct {
		Items []item `yaml:"items"`
	}
	doc := "items:\n  - name: a\n    prot: 1\n  - name: b\n    port: x\n  - nme: c\n"
	ps, ok := decodeDocument([]byte(doc), &out, envMap(nil), filesMap(nil))
	if !ok {
		t.Fatal("not parsed")
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Error())
	}
	equalLines(t, got, []string{
		"items[0].prot: unknown key (line 3); did you mean port?",
		`items[1].port: expected an integer, got "x" (line 5)`,
		"items[2].nme: unknown key (line 6); did you mean name?",
	})
	if len(out.Items) != 3 || out.Items[1].Name != "b" {
		t.Errorf("items decoded as %+v", out.Items)
	}
}

func TestParseTypeErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"word for integer", "directory:\n  pool_size: ten\n", []string{`directory.pool_size: expected an integer, got "ten" (line 2)`}},
		{"float for integer", "redis:\n  db: 1.5\n", []string{`redis.db: expected an integer, got "1.5" (line 2)`}},
		{"overflow", "redis:\n  db: 99999999999999999999\n", []string{`redis.db: expected an integer, got "99999999999999999999" (line 2)`}},
		{"yes for boolean", "directory:\n  start_tls: yes\n", []string{`directory.start_tls: expected true or false, got "yes" (line 2)`}},
		{"bare number for duration", "server:\n  read_timeout: 30\n", []string{`server.read_timeout: expected a duration with a unit, like 30s, 5m or 1h30m, got "30" (line 2)`}},
		{"scalar for list", "directory:\n  urls: ldap://a\n", []string{`directory.urls: expected a list, got "ldap://a" (line 2)`}},
		{"mapping in list", "directory:\n  urls:\n    - {host: a}\n", []string{"directory.urls[0]: expected a string, got a mapping (line 3)"}},
		{"scalar for block", "server: yes\n", []string{`server: expected a mapping, got "yes" (line 1)`}},
		{"list for block", "log: [info]\n", []string{"log: expected a mapping, got a list (line 1)"}},
		{"list for string", "data_dir: [a, b]\n", []string{"data_dir: expected a string, got a list (line 1)"}},
		{"secret value not quoted", "directory:\n  bind_password: {a: hunter2}\n", []string{"directory.bind_password: expected a string, got a mapping (line 2)"}},
		{"root not a mapping", "- a\n- b\n", []string{"expected a mapping, got a list (line 1)"}},
		{"several at once", "redis:\n  db: x\n  pool_size: y\n", []string{
			`redis.db: expected an integer, got "x" (line 2)`,
			`redis.pool_size: expected an integer, got "y" (line 3)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := problemTexts(t, tt.doc, nil, nil)
			equalLines(t, got, tt.want)
		})
	}
}

func TestParseDocumentShape(t *testing.T) {
	tests := []struct {
		name, doc string
		wantErr   string // substring; "" means no problem
	}{
		{"empty", "", ""},
		{"only comments", "# nothing\n", ""},
		{"null document", "~\n", ""},
		{"null blocks keep defaults", "server:\nlog:\n", ""},
		{"syntax error", "server:\n  listen: [\n", "invalid YAML: "},
		{"tab indentation", "server:\n\tlisten: x\n", "invalid YAML: "},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", "more than one YAML document (the second starts at line 2)"},
		{"alias to a list", "directory:\n  urls: &u [ldap://a]\nserver:\n  trusted_proxies: *u\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := problemTexts(t, tt.doc, nil, nil)
			if tt.wantErr == "" {
				if len(got) != 0 {
					t.Fatalf("problems: %q", got)
				}
				if c == nil || c.Log.Level != DefaultLogLevel {
					t.Fatalf("config without defaults: %+v", c)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.wantErr) {
				t.Fatalf("problems %q, want one containing %q", got, tt.wantErr)
			}
		})
	}
}

// aliasTree is what aliasBomb decodes into.
type aliasTree struct {
	K []aliasTree `yaml:"k"`
}

// aliasBomb: each anchor holds two aliases of the one before, so decoding
// every use would visit 2^40 nodes.
func aliasBomb() []byte {
	var b strings.Builder
	b.WriteString("k:\n  - &a0 {k: []}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  - &a%d {k: [*a%d, *a%d]}\n", i, i-1, i-1)
	}
	return []byte(b.String())
}

// TestAliasBombIsBounded: the decoder stops at its size limit. That it
// stops at all is the bound (2^40 nodes would not finish within the test
// binary's timeout); how fast is measured by BenchmarkAliasBomb, not
// asserted: a wall-clock limit fails on a loaded machine.
func TestAliasBombIsBounded(t *testing.T) {
	var out aliasTree
	ps, ok := decodeDocument(aliasBomb(), &out, envMap(nil), filesMap(nil))
	if !ok || len(ps) != 1 || !strings.Contains(ps[0].Error(), "document too large") {
		t.Fatalf("problems %v, want one: document too large", ps)
	}
}

// BenchmarkAliasBomb: the time to refuse aliasBomb (docs/benchmarks.md,
// Components).
func BenchmarkAliasBomb(b *testing.B) {
	doc := aliasBomb()
	b.ReportAllocs()
	for b.Loop() {
		var out aliasTree
		if ps, _ := decodeDocument(doc, &out, envMap(nil), filesMap(nil)); len(ps) == 0 {
			b.Fatal("the alias bomb decoded without a problem")
		}
	}
}

func TestEnvSubstitution(t *testing.T) {
	env := map[string]string{
		"HOST":   "dc1.example.com",
		"PORT":   "6380",
		"EMPTY":  "",
		"TRICKY": "${HOST}$$x",
		"PW":     "p@ss: word #1",
		"TRUE":   "true",
	}
	tests := []struct {
		name  string
		doc   string
		check func(*Config) string // returns the value under test
		want  string
		prob  string // expected single problem, "" for none
	}{
		{"set", "directory:\n  urls:\n    - ldaps://${HOST}\n", func(c *Config) string { return c.Directory.URLs[0] }, "ldaps://dc1.example.com", ""},
		{"default when unset", "data_dir: ${NOPE:-/srv/warden}\n", func(c *Config) string { return c.DataDir }, "/srv/warden", ""},
		{"default when empty", "data_dir: ${EMPTY:-/srv/warden}\n", func(c *Config) string { return c.DataDir }, "/srv/warden", ""},
		{"empty default", "directory:\n  bind_dn: ${NOPE:-}\n", func(c *Config) string { return c.Directory.BindDN }, "", ""},
		{"set but empty, no default", "directory:\n  bind_dn: x${EMPTY}y\n", func(c *Config) string { return c.Directory.BindDN }, "xy", ""},
		{"literal $$", "directory:\n  bind_password: 'a$$b'\n", func(c *Config) string { return c.Directory.BindPassword }, "a$b", ""},
		{"lone $ kept", "directory:\n  bind_password: pa$word$\n", func(c *Config) string { return c.Directory.BindPassword }, "pa$word$", ""},
		{"substituted value not re-expanded", "directory:\n  bind_password: ${TRICKY}\n", func(c *Config) string { return c.Directory.BindPassword }, "${HOST}$$x", ""},
		{"default not expanded", "directory:\n  bind_password: ${NOPE:-$$HOST}\n", func(c *Config) string { return c.Directory.BindPassword }, "$$HOST", ""},
		{"YAML syntax in value stays a string", "directory:\n  bind_password: ${PW}\n", func(c *Config) string { return c.Directory.BindPassword }, "p@ss: word #1", ""},
		{"plain scalar typed by substituted text", "redis:\n  db: ${PORT}\n", func(c *Config) string { return strconv.Itoa(c.Redis.DB) }, "6380", ""},
		{"boolean from env", "directory:\n  start_tls: ${TRUE}\n", func(c *Config) string { return map[bool]string{true: "true", false: "false"}[c.Directory.StartTLS] }, "true", ""},
		{"quoted number stays a string", "directory:\n  bind_password: \"${PORT}\"\n", func(c *Config) string { return c.Directory.BindPassword }, "6380", ""},
		{"in a list", "redis:\n  addrs: [\"${HOST}:${PORT}\", b:1]\n", func(c *Config) string { return strings.Join(c.Redis.Addrs, ",") }, "dc1.example.com:6380,b:1", ""},
		{"keys are not substituted", "${HOST}: 1\n", nil, "", "${HOST}: unknown key (line 1)"},
		{"unset", "directory:\n  bind_password: ${NOPE}\n", nil, "", "directory.bind_password: environment variable NOPE is not set (line 2); set it, or give a default: ${NOPE:-value}"},
		{"unset in list", "directory:\n  urls: [ldap://a, \"ldap://${NOPE}\"]\n", nil, "", "directory.urls[1]: environment variable NOPE is not set (line 2)"},
		{"unterminated", "data_dir: ${HOST\n", nil, "", `data_dir: "${" without a closing "}" (write $$ for a literal $) (line 1)`},
		{"bad name", "directory:\n  bind_password: ${PW-hunter2}\n", nil, "", "directory.bind_password: invalid variable reference: the form is"},
		{"nested default", "data_dir: ${A:-${B}}\n", nil, "", "data_dir: default of ${A} contains ${: defaults are not expanded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := problemTexts(t, tt.doc, env, nil)
			if tt.prob != "" {
				if len(got) != 1 || !strings.Contains(got[0], tt.prob) {
					t.Fatalf("problems %q, want one containing %q", got, tt.prob)
				}
				if strings.Contains(got[0], "hunter2") {
					t.Errorf("problem quotes the value: %q", got[0])
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("problems: %q", got)
			}
			if v := tt.check(c); v != tt.want {
				t.Errorf("value %q, want %q", v, tt.want)
			}
		})
	}
}

func TestUnsetVariableKeepsDefault(t *testing.T) {
	c, got := problemTexts(t, "data_dir: ${NOPE}\n", nil, nil)
	if len(got) != 1 {
		t.Fatalf("problems: %q", got)
	}
	if c.DataDir != DefaultDataDir {
		t.Errorf("data_dir = %q, want the default (no half-expanded text)", c.DataDir)
	}
}

func TestSecretFiles(t *testing.T) {
	files := map[string]string{
		"/run/secrets/pw":      "s3cret\n",
		"/run/secrets/crlf":    "s3cret\r\n",
		"/run/secrets/two":     "s3cret\n\n",
		"/run/secrets/none":    "s3cret",
		"/run/secrets/size":    "16\n",
		"/run/secrets/notnum":  "hunter2\n",
		"/run/secrets/numeric": "12345\n",
	}
	tests := []struct {
		name  string
		doc   string
		check func(*Config) string
		want  string
		prob  string
	}{
		{"read, one newline trimmed", "directory:\n  bind_password_file: /run/secrets/pw\n", func(c *Config) string { return c.Directory.BindPassword }, "s3cret", ""},
		{"crlf trimmed", "directory:\n  bind_password_file: /run/secrets/crlf\n", func(c *Config) string { return c.Directory.BindPassword }, "s3cret", ""},
		{"only one newline trimmed", "directory:\n  bind_password_file: /run/secrets/two\n", func(c *Config) string { return c.Directory.BindPassword }, "s3cret\n", ""},
		{"no newline", "redis:\n  password_file: /run/secrets/none\n", func(c *Config) string { return c.Redis.Password }, "s3cret", ""},
		{"numeric content stays a string", "redis:\n  password_file: /run/secrets/numeric\n", func(c *Config) string { return c.Redis.Password }, "12345", ""},
		{"path from env", "redis:\n  sentinel_password_file: ${SECRETS}/pw\n", func(c *Config) string { return c.Redis.SentinelPassword }, "s3cret", ""},
		{"non-secret scalar from a file", "directory:\n  pool_size_file: /run/secrets/size\n", func(c *Config) string { return strconv.Itoa(c.Directory.PoolSize) }, "16", ""},
		{"empty path means unset", "directory:\n  bind_password_file: ${NOPE:-}\n  bind_password: x\n", func(c *Config) string { return c.Directory.BindPassword }, "x", ""},
		{"file contents are not expanded", "directory:\n  bind_dn_file: /run/secrets/pw\n", func(c *Config) string { return c.Directory.BindDN }, "s3cret", ""},
		{"both given", "directory:\n  bind_password: x\n  bind_password_file: /run/secrets/pw\n", nil, "",
			"directory.bind_password_file: both bind_password (line 2) and bind_password_file (line 3) are set; set only one of them"},
		{"both given, file first", "directory:\n  bind_password_file: /run/secrets/pw\n  bind_password: x\n", nil, "",
			"directory.bind_password_file: both bind_password (line 3) and bind_password_file (line 2) are set; set only one of them"},
		{"missing file", "directory:\n  bind_password_file: /run/secrets/missing\n", nil, "",
			"directory.bind_password_file: cannot read file: /run/secrets/missing: file does not exist (line 2)"},
		{"contents not in a type error", "directory:\n  pool_size_file: /run/secrets/notnum\n", nil, "",
			"directory.pool_size_file: expected an integer, got something else (not shown: the value is secret) (line 2)"},
		{"path must be a scalar", "directory:\n  bind_password_file: [a]\n", nil, "",
			"directory.bind_password_file: expected a file path, got a list (line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := problemTexts(t, tt.doc, map[string]string{"SECRETS": "/run/secrets"}, files)
			if tt.prob != "" {
				if len(got) != 1 || got[0] != tt.prob {
					t.Fatalf("problems %q\nwant [%q]", got, tt.prob)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("problems: %q", got)
			}
			if v := tt.check(c); v != tt.want {
				t.Errorf("value %q, want %q", v, tt.want)
			}
		})
	}
}

// TestSecretFilesOnDisk uses the real reader: regular files only, bounded.
func TestSecretFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-disk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want, prob string
	}{
		{pw, "from-disk", ""},
		{dir, "", "not a regular file"},
		{big, "", "larger than 64 KiB"},
		{filepath.Join(dir, "nope"), "", "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			c, err := Parse([]byte("directory:\n  bind_password_file: "+tt.path+"\n"), envMap(nil))
			if tt.prob != "" {
				var fe *FieldError
				if err == nil || !strings.Contains(err.Error(), tt.prob) || !errors.As(err, &fe) || fe.Path != "directory.bind_password_file" {
					t.Fatalf("err = %v, want a directory.bind_password_file problem containing %q", err, tt.prob)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Directory.BindPassword != tt.want {
				t.Errorf("bind_password %q, want %q", c.Directory.BindPassword, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(p, []byte("log: {level: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, envMap(nil))
	if err != nil || c.Log.Level != "debug" || c.Log.Format != DefaultLogFormat {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), envMap(nil)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if err := os.WriteFile(p, []byte("logg: {}\nlog: {levl: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(p, envMap(nil))
	if c != nil || err == nil {
		t.Fatalf("Load = %v, %v; want nil and an error", c, err)
	}
	want := "logg: unknown key (line 1); did you mean log?\nlog.levl: unknown key (line 2); did you mean level?"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
}
