package ldap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

func TestApplyPresetFillsOnlyEmpty(t *testing.T) {
	c := Config{Type: TypeActiveDirectory, UserFilter: "(sAMAccountName={username})", PageSize: 7}
	c.ApplyPreset()
	if c.UserFilter != "(sAMAccountName={username})" || c.PageSize != 7 {
		t.Errorf("preset overwrote set fields: %q %d", c.UserFilter, c.PageSize)
	}
	if c.Attributes.ID != "objectGUID" || c.GroupSource != GroupSourceInChain || c.Attributes.Username != "sAMAccountName" {
		t.Errorf("AD preset not applied: %+v", c)
	}
	o := Config{Type: TypeOpenLDAP}
	o.ApplyPreset()
	if o.Attributes.ID != "entryUUID" || o.GroupSource != GroupSourceMemberOf ||
		o.UserFilter != "(&(objectClass=inetOrgPerson)(uid={username}))" ||
		o.GroupFilter != "(&(objectClass=groupOfNames)(member={dn}))" || o.PageSize != 0 {
		t.Errorf("openldap preset: %+v", o)
	}
	cu := Config{Type: TypeCustom}
	cu.ApplyPreset()
	if cu.UserFilter != "" || cu.Attributes.ID != "" {
		t.Errorf("custom preset filled fields: %+v", cu)
	}
	cu.SetDefaults()
	if cu.DialTimeout != 5*time.Second || cu.Timeout != 10*time.Second || cu.PoolSize != 16 ||
		cu.HealthCheckInterval != 30*time.Second || cu.MaxNesting != 10 {
		t.Errorf("defaults: %+v", cu)
	}
}

func validConfig() Config {
	c := Config{Type: TypeOpenLDAP, URLs: []string{"ldap://127.0.0.1:389"}, BaseDN: "dc=example,dc=org",
		BindDN: "cn=svc,dc=example,dc=org", BindPassword: "x"}
	c.ApplyPreset()
	c.SetDefaults()
	return c
}

func TestValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"type", func(c *Config) { c.Type = "novell" }, []string{"type: must be"}},
		{"no urls", func(c *Config) { c.URLs = nil }, []string{"urls: at least one"}},
		{"scheme", func(c *Config) { c.URLs = []string{"ldap://a", "http://b"} }, []string{"urls[1]: scheme must be ldap or ldaps"}},
		{"starttls+ldaps", func(c *Config) { c.URLs = []string{"ldaps://a"}; c.StartTLS = true }, []string{"urls[0]: start_tls cannot be used with ldaps://"}},
		{"path", func(c *Config) { c.URLs = []string{"ldap://a/dc=x"} }, []string{"urls[0]: must be scheme://host[:port] only"}},
		{"port", func(c *Config) { c.URLs = []string{"ldap://a:99999"} }, []string{"urls[0]: port must be"}},
		{"base", func(c *Config) { c.BaseDN = "" }, []string{"base_dn: required"}},
		{"base syntax", func(c *Config) { c.BaseDN = "not a dn" }, []string{"base_dn: not a DN"}},
		{"user filter", func(c *Config) { c.UserFilter = "(uid=alice)" }, []string{"user_filter: must contain {username}"}},
		{"user filter syntax", func(c *Config) { c.UserFilter = "(uid={username}" }, []string{"user_filter: not a valid LDAP filter"}},
		{"user filter dn", func(c *Config) { c.UserFilter = "(&(uid={username})(x={dn}))" }, []string{"user_filter: cannot contain {dn}"}},
		{"group source", func(c *Config) { c.GroupSource = "magic" }, []string{"group_source: must be memberof, search or in_chain"}},
		{"group filter", func(c *Config) { c.GroupSource = GroupSourceSearch; c.GroupFilter = "" }, []string{"group_filter: required when group_source is search"}},
		{"durations", func(c *Config) { c.DialTimeout = 0; c.Timeout = -1; c.HealthCheckInterval = 0 },
			[]string{"dial_timeout: must be > 0", "timeout: must be > 0", "health_check_interval: must be > 0"}},
		{"pool", func(c *Config) { c.PoolSize = 0 }, []string{"pool_size: must be between 1 and"}},
		{"pool big", func(c *Config) { c.PoolSize = 100000 }, []string{"pool_size: must be between 1 and"}},
		{"nesting", func(c *Config) { c.MaxNesting = 0 }, []string{"max_nesting: must be between"}},
		{"ca missing", func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }, []string{"ca_file: cannot read"}},
		{"ca not pem", func(c *Config) { c.CAFile = notPEM }, []string{"ca_file: no PEM certificate"}},
		{"bind", func(c *Config) { c.BindDN = ""; c.BindPassword = "" }, []string{"bind_dn: required", "bind_password: required"}},
		{"id", func(c *Config) { c.Attributes.ID = "" }, []string{"attributes.id: required"}},
		{"extra", func(c *Config) { c.Attributes.Extra = []string{"ok", "bad one"} }, []string{"attributes.extra[1]: not an attribute name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("no error, want %v", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing line starting with %q in:\n%v", w, err)
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
		})
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestBindOutcome(t *testing.T) {
	ad := func(data string) error {
		return &goldap.Error{ResultCode: goldap.LDAPResultInvalidCredentials,
			Err: errors.New("80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data " + data + ", v3839")}
	}
	pp := func(code int8) *goldap.SimpleBindResult {
		c := goldap.NewControlBeheraPasswordPolicy()
		c.Error = code
		return &goldap.SimpleBindResult{Controls: []goldap.Control{c}}
	}
	tests := []struct {
		name string
		res  *goldap.SimpleBindResult
		err  error
		want error
	}{
		{"success", &goldap.SimpleBindResult{}, nil, nil},
		{"ad 52e", nil, ad("52e"), identity.ErrInvalidCredentials},
		{"ad 525", nil, ad("525"), identity.ErrInvalidCredentials},
		{"ad 775", nil, ad("775"), identity.ErrAccountLocked},
		{"ad 532", nil, ad("532"), identity.ErrPasswordExpired},
		{"ad 773", nil, ad("773"), identity.ErrMustChangePassword},
		{"ad 533", nil, ad("533"), identity.ErrAccountDisabled},
		{"ad 701", nil, ad("701"), identity.ErrAccountExpired},
		{"ad 530", nil, ad("530"), identity.ErrAccountDisabled},
		{"ad 531", nil, ad("531"), identity.ErrAccountDisabled},
		{"ad unknown data", nil, ad("999"), identity.ErrInvalidCredentials},
		{"49 plain", nil, &goldap.Error{ResultCode: 49, Err: errors.New("")}, identity.ErrInvalidCredentials},
		{"ppolicy locked", pp(1), &goldap.Error{ResultCode: 49, Err: errors.New("")}, identity.ErrAccountLocked},
		{"ppolicy expired", pp(0), &goldap.Error{ResultCode: 49, Err: errors.New("")}, identity.ErrPasswordExpired},
		{"ppolicy reset", pp(2), nil, identity.ErrMustChangePassword},
		{"ppolicy no error", pp(-1), nil, nil},
		{"busy", nil, &goldap.Error{ResultCode: 51, Err: errors.New("busy")}, identity.ErrDirectoryUnavailable},
		{"unavailable", nil, &goldap.Error{ResultCode: 52, Err: errors.New("")}, identity.ErrDirectoryUnavailable},
		{"unwilling", nil, &goldap.Error{ResultCode: 53, Err: errors.New("")}, identity.ErrDirectoryUnavailable},
		{"other", nil, &goldap.Error{ResultCode: 80, Err: errors.New("")}, identity.ErrDirectoryUnavailable},
		{"strong auth", nil, &goldap.Error{ResultCode: 8, Err: errors.New("")}, identity.ErrDirectoryUnavailable},
		{"network", nil, goldap.NewError(goldap.ErrorNetwork, errors.New("closed")), identity.ErrDirectoryUnavailable},
		{"plain error", nil, errors.New("boom"), identity.ErrDirectoryUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := bindOutcome(tt.res, tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %v, want success", got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if errors.Is(tt.want, identity.ErrDirectoryUnavailable) == identity.IsRejection(got) {
				t.Errorf("%v: rejection/outage confusion", got)
			}
		})
	}
}

func TestGUIDString(t *testing.T) {
	// Data1..3 little-endian, Data4 as is (MS-DTYP 2.3.4).
	raw := []byte{0x32, 0x84, 0xbf, 0x29, 0x01, 0x72, 0xc8, 0x4e, 0x9a, 0x0e, 0x46, 0x47, 0xfd, 0x7e, 0xcc, 0x71}
	got, err := guidString(raw)
	if err != nil || got != "29bf8432-7201-4ec8-9a0e-4647fd7ecc71" {
		t.Fatalf("guidString = %q, %v", got, err)
	}
	if _, err := guidString(raw[:15]); err == nil {
		t.Error("15 bytes accepted")
	}
}

func TestUsernameProblem(t *testing.T) {
	for _, u := range []string{"", strings.Repeat("x", 257), "a\x00b", "\xff"} {
		if usernameProblem(u) == "" {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"alice", "jürgen", strings.Repeat("x", 256), "*)(uid=*"} {
		if p := usernameProblem(u); p != "" {
			t.Errorf("%q refused: %s", u, p)
		}
	}
}
