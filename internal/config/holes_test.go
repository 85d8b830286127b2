package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// problemLines validates c and returns one line per problem.
func problemLines(c *Config) []string {
	var out []string
	for _, p := range c.problems() {
		out = append(out, p.Error())
	}
	return out
}

// A typo in directory.type gives one problem naming the allowed values,
// not one more for every key the preset would have filled.
func TestDirectoryTypeTypoIsOneProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"typo", func(c *Config) { c.Directory.Type = "ldpa" }, []string{
			`directory.type: must be openldap, activedirectory or custom, not "ldpa"`,
		}},
		{"missing", func(c *Config) { c.Directory.Type = "" }, []string{
			"directory.type: required (openldap, activedirectory or custom)",
		}},
		{"typo and real problems of the block", func(c *Config) {
			c.Directory.Type = "OpenLDAP"
			c.Directory.URLs = []string{"ftp://x"}
			c.Directory.BindPassword = ""
			c.Directory.Attributes.Extra = []string{"bad attr"}
		}, []string{
			`directory.attributes.extra[0]: not an attribute name: "bad attr"`,
			"directory.bind_password: required (an empty password is an unauthenticated bind, RFC 4513 section 5.1.2)",
			`directory.type: must be openldap, activedirectory or custom, not "OpenLDAP"`,
			`directory.urls[0]: scheme must be ldap or ldaps, not "ftp"`,
		}},
		// A key the file sets wrong is still reported: it would be wrong
		// under any preset.
		{"typo with a bad filter", func(c *Config) {
			c.Directory.Type = "ldpa"
			c.Directory.UserFilter = "(uid=x)"
		}, []string{
			`directory.type: must be openldap, activedirectory or custom, not "ldpa"`,
			"directory.user_filter: must contain {username}",
		}},
		// custom applies no preset on purpose: what it lacks is missing.
		{"custom", func(c *Config) { c.Directory.Type = "custom" }, []string{
			"directory.attributes.id: required (a stable ID such as entryUUID or objectGUID)",
			"directory.attributes.username: required",
			"directory.group_source: required (memberof, search or in_chain)",
			"directory.user_filter: required",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := rawConfig(t)
			tc.mod(c)
			applyDefaults(c)
			equalLines(t, problemLines(c), tc.want)
		})
	}
}

// rawConfig parses a minimal file without directory.type: the test sets
// the type, then applies the defaults (and so the preset).
func rawConfig(t *testing.T) *Config {
	t.Helper()
	c, problems := parse([]byte(`server:
  public_url: https://sso.example.com
directory:
  urls: [ldaps://ldap.example.com]
  bind_dn: cn=svc,dc=example,dc=org
  bind_password: x
  base_dn: dc=example,dc=org
redis:
  addrs: [127.0.0.1:6379]
admin:
  groups: [admins]
`), envMap(nil), readSecretFile)
	if len(problems) > 0 {
		t.Fatalf("parse: %v", joinProblems(problems))
	}
	return c
}

func TestCheckConfigDirectoryTypo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(path, []byte(`server:
  public_url: https://sso.example.com
directory:
  type: ldpa
  urls: [ldaps://ldap.example.com]
  bind_dn: cn=svc,dc=example,dc=org
  bind_password: x
  base_dn: dc=example,dc=org
redis:
  addrs: [127.0.0.1:6379]
admin:
  groups: [admins]
`), 0o600)
	var out bytes.Buffer
	if code := CheckConfig(path, envMap(nil), &out); code != CheckProblems {
		t.Errorf("exit %d", code)
	}
	equalLines(t, strings.Split(strings.TrimSpace(out.String()), "\n"), []string{
		`directory.type: must be openldap, activedirectory or custom, not "ldpa"`,
		path + ": 1 problem",
	})
}

// The default issuer (server.public_url) is checked like oidc.issuer.
func TestDefaultIssuerChecked(t *testing.T) {
	for _, tc := range []struct {
		name, publicURL, issuer string
		want                    []string
	}{
		{"https", "https://sso.example.com", "", nil},
		{"trailing slash", "https://sso.example.com/", "", nil},
		{"loopback http with a port", "http://127.0.0.1:8080", "", nil},
		{"port", "https://sso.example.com:8443", "", []string{
			`oidc.issuer: not set, so it is server.public_url "https://sso.example.com:8443", which must not have a port (AWS IAM refuses OIDC provider URLs with a port); set oidc.issuer, or change server.public_url`,
		}},
		{"http", "http://sso.example.com", "", []string{
			`oidc.issuer: not set, so it is server.public_url "http://sso.example.com", which must be an https URL (http only on a loopback host, for dev and tests); set oidc.issuer, or change server.public_url`,
		}},
		{"port, but an explicit issuer", "https://sso.example.com:8443", "https://sso.example.com", nil},
		{"explicit issuer with a port", "https://sso.example.com", "https://sso.example.com:8443", []string{
			"oidc.issuer: must not have a port (AWS IAM refuses OIDC provider URLs with a port)",
		}},
		// A public_url refused by the server block is not reported twice.
		{"bad public_url", "https://sso.example.com/warden", "", []string{
			"server.public_url: must not have a path, query or fragment (Warden is served at the root)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.Server.PublicURL, c.OIDC.Issuer = tc.publicURL, tc.issuer
			equalLines(t, problemLines(&c), tc.want)
		})
	}
}

func TestSessionNameAttributeFetched(t *testing.T) {
	for _, tc := range []struct {
		name, attr string
		extra      []string
		want       []string
	}{
		{"username", "username", nil, nil},
		{"email", "email", nil, nil},
		{"fetched", "employeeid", []string{"department", "employeeID"}, nil},
		{"not fetched", "employeeid", []string{"department"}, []string{
			`saml.aws.session_name_attribute: "employeeid" is not read from the directory: add it to directory.attributes.extra, or every sign-in to AWS fails for want of a role session name`,
		}},
		{"refused name is reported once", "Employee ID", nil, []string{
			`saml.aws.session_name_attribute: "Employee ID" is not username, email or a lowercase directory attribute name`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.SAML.AWS.SessionNameAttribute, c.Directory.Attributes.Extra = tc.attr, tc.extra
			equalLines(t, problemLines(&c), tc.want)
		})
	}
}

func TestRulesFileChecked(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const accounts = `accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
`
	tags := write("tags.yaml", accounts+`grants:
  - {id: devs, group: developers, roles: [{arn: "arn:aws:iam::111122223333:role/ReadOnly"}]}
tags:
  attributes:
    - {attribute: email, key: email}
    - {attribute: department, key: department}
  source_identity: employeeNumber
`)
	comma := write("comma.yaml", accounts+`grants:
  - {id: devs, group: developers, roles: [{arn: "arn:aws:iam::111122223333:role/ReadOnly"}]}
  - {id: ops, group: ops, roles: [{arn: "arn:aws:iam::111122223333:role/Ops,Admin"}]}
patterns:
  - {id: adfs, pattern: '^AWS-(?P<role>\w+)$', role_arn: "arn:aws:iam::111122223333:role/x,${role}"}
`)
	bad := write("bad.yaml", "grants: 3\n")
	for _, tc := range []struct {
		name, file string
		extra      []string
		want       []string
		warning    string
	}{
		{"tags fetched", tags, []string{"department", "employeeNumber"}, nil, ""},
		{"tags partly fetched", tags, []string{"Department"}, []string{
			"admin.rules_file: " + tags + `: tags.source_identity: "employeeNumber" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no session ever gets a source identity`,
		}, ""},
		{"nothing fetched", tags, nil, []string{
			"admin.rules_file: " + tags + `: tags.attributes[1].attribute: "department" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no user ever gets this tag`,
			"admin.rules_file: " + tags + `: tags.source_identity: "employeeNumber" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no session ever gets a source identity`,
		}, ""},
		{"commas in role ARNs", comma, nil, []string{
			"admin.rules_file: " + comma + `: grants[1].roles[0].arn: invalid ARN: role name "Ops,Admin" has a comma at byte 3: IAM allows it, but AWS reads the SAML Role attribute as "<role ARN>,<provider ARN>" and the WardenRole session tag cannot hold one: Warden cannot hand this role to AWS; rename it`,
			"admin.rules_file: " + comma + `: patterns[0].role_arn: can never give a valid role ARN: has a comma in its literal text: AWS reads the SAML Role attribute as "<role ARN>,<provider ARN>", so no role with a comma in its ARN can be handed to AWS`,
		}, ""},
		{"not a rule set", bad, nil, []string{"admin.rules_file: " + bad + ": grants: "}, ""},
		{"unreadable here", filepath.Join(dir, "none.yaml"), nil, nil,
			"admin.rules_file: cannot read " + filepath.Join(dir, "none.yaml") + ": no such file or directory; the rules were not checked (wardend reads them at start)"},
		{"not a regular file", dir, nil, nil, "admin.rules_file: cannot read " + dir + ": not a regular file; the rules were not checked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.Admin.RulesFile, c.Directory.Attributes.Extra = tc.file, tc.extra
			if err := c.Validate(); err != nil {
				t.Errorf("Validate reads the rules file: %v", err)
			}
			ps, warning := c.rulesFileProblems()
			if len(ps) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%s", len(ps), len(tc.want), joinProblems(ps))
			}
			for i, p := range ps {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %d:\n%s\nwant prefix:\n%s", i, p, tc.want[i])
				}
			}
			if !strings.HasPrefix(warning, tc.warning) || (tc.warning == "") != (warning == "") {
				t.Errorf("warning %q, want %q", warning, tc.warning)
			}
		})
	}

	// check-config puts them among the validation problems, by key path.
	cfg := write("wardend.yaml", `server:
  public_url: https://sso.example.com
directory:
  type: openldap
  urls: [ldaps://ldap.example.com]
  bind_dn: cn=svc,dc=example,dc=org
  bind_password: x
  base_dn: dc=example,dc=org
  attributes: {extra: [employeeNumber]}
redis:
  addrs: [127.0.0.1:6379]
admin:
  groups: [admins]
  rules_file: `+tags+`
log:
  level: loud
`)
	var out bytes.Buffer
	if code := CheckConfig(cfg, envMap(nil), &out); code != CheckProblems {
		t.Errorf("exit %d", code)
	}
	equalLines(t, strings.Split(strings.TrimSpace(out.String()), "\n"), []string{
		"admin.rules_file: " + tags + `: tags.attributes[1].attribute: "department" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no user ever gets this tag`,
		`log.level: must be debug, info, warn or error, not "loud"`,
		cfg + ": 2 problems",
	})
	out.Reset()
	os.WriteFile(cfg, bytes.Replace(must(os.ReadFile(cfg)), []byte("tags.yaml"), []byte("gone.yaml"), 1), 0o600)
	CheckConfig(cfg, envMap(nil), &out)
	if !strings.Contains(out.String(), "\nwarning: admin.rules_file: cannot read "+filepath.Join(dir, "gone.yaml")) {
		t.Errorf("no warning for an unreadable rules file:\n%s", out.String())
	}
}

// The example rules go with the example configuration's directory.
func TestExampleRulesFetched(t *testing.T) {
	c := validConfig(t)
	c.Directory.Attributes.Extra = []string{"department"} // as config/wardend.yaml
	c.Admin.RulesFile = "../../config/mappings.example.yaml"
	if ps, w := c.rulesFileProblems(); len(ps) != 0 || w != "" {
		t.Errorf("problems:\n%v\nwarning: %s", joinProblems(ps), w)
	}
	c.Directory.Attributes.Extra = nil
	if ps, _ := c.rulesFileProblems(); len(ps) != 1 || !strings.Contains(ps[0].Msg, `tags.attributes[1].attribute: "department" is not read`) {
		t.Errorf("without directory.attributes.extra: %v", joinProblems(ps))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
