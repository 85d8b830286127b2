package ldap

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Config describes one LDAP directory (OpenLDAP, Active Directory, or any
// other RFC 4511 server). The YAML keys are the reference in
// docs/configuration.md; ApplyPreset fills what Type implies, so that a
// typical directory needs only type, urls, base_dn, bind_dn and bind_password.
type Config struct {
	// Type is "openldap", "activedirectory" or "custom" (no preset).
	Type string `yaml:"type"`
	// URLs are tried in order (failover): ldap://host:389 or ldaps://host:636.
	URLs []string `yaml:"urls"`
	// StartTLS upgrades ldap:// connections before any bind.
	StartTLS bool `yaml:"start_tls"`
	// CAFile is a PEM bundle that verifies the server certificate; empty means
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks (never in production;
	// check-config warns).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// BindDN and BindPassword: the service account used for searches. For
	// Active Directory BindDN may be a userPrincipalName (svc@example.com).
	BindDN       string `yaml:"bind_dn"`
	BindPassword string `yaml:"bind_password"`

	BaseDN string `yaml:"base_dn"`
	// UserBaseDN defaults to BaseDN.
	UserBaseDN string `yaml:"user_base_dn"`
	// UserFilter is a filter template; {username} is replaced by the escaped
	// login name (escaped once, where the filter is built).
	UserFilter string `yaml:"user_filter"`
	// GroupBaseDN defaults to BaseDN.
	GroupBaseDN string `yaml:"group_base_dn"`
	// GroupFilter is a template for group searches by member; {dn} is the
	// escaped user DN, {username} the escaped login name.
	GroupFilter string `yaml:"group_filter"`
	// GroupSource: "memberof" (read the user's memberOf), "search" (search
	// groups by GroupFilter, following nesting level by level up to
	// MaxNesting) or "in_chain" (Active Directory's
	// LDAP_MATCHING_RULE_IN_CHAIN, 1.2.840.113556.1.4.1941).
	GroupSource string `yaml:"group_source"`
	// MaxNesting bounds how deep "search" and "memberof" follow nested groups.
	MaxNesting int `yaml:"max_nesting"`
	// GroupCacheTTL: with group_source memberof, the parents of a group (its
	// own memberOf, i.e. the nesting) are cached this long, so a sign-in
	// costs one search and one bind instead of one more search per level of
	// nesting. A user's direct groups are read fresh at every sign-in; only
	// changes to the nesting of groups take up to this long to show.
	// 0 means the default (30s); a negative value turns the cache off.
	GroupCacheTTL time.Duration `yaml:"group_cache_ttl"`

	// NetBIOSDomain is the Active Directory domain's NetBIOS name (EXAMPLE),
	// so that users may sign in as EXAMPLE\bob. Empty: read once from the
	// directory (the crossRef of the domain under CN=Partitions of the
	// configuration naming context). Only for type activedirectory.
	NetBIOSDomain string `yaml:"netbios_domain"`

	Attributes Attributes `yaml:"attributes"`

	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Timeout bounds each LDAP operation.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the number of pooled connections per server used for
	// service-bound searches; user binds use their own pooled connections.
	PoolSize int `yaml:"pool_size"`
	// HealthCheckInterval: idle pooled connections are checked this often.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// RecheckInterval: a browser session whose user was last looked up in
	// the directory longer ago than this is looked up again at its next
	// request (a user deleted, disabled or locked meanwhile loses every
	// access then). Hand-offs to AWS and privileged acts always look up.
	RecheckInterval time.Duration `yaml:"recheck_interval"`
	// PageSize > 0 turns on the paged-results control (RFC 2696) for
	// searches that may return many entries (group searches).
	PageSize int `yaml:"page_size"`
}

// Attributes names the directory attributes Warden reads.
type Attributes struct {
	Username    string `yaml:"username"`     // uid / sAMAccountName
	DisplayName string `yaml:"display_name"` // displayName / cn
	Email       string `yaml:"email"`        // mail
	ID          string `yaml:"id"`           // entryUUID / objectGUID
	// GroupName is the group attribute that becomes identity.Group.Name,
	// which grant rules with a bare name, pattern rules and admin.groups
	// match. Empty: the value of the first RDN of the group's DN (its CN).
	// The Active Directory preset sets sAMAccountName, which is unique in
	// the domain; a CN is unique only within its OU.
	GroupName string `yaml:"group_name"`
	// Extra attributes are read and kept in User.Attributes (for session
	// tags, later steps).
	Extra []string `yaml:"extra"`
}

// Directory types (Config.Type).
const (
	TypeOpenLDAP        = "openldap"
	TypeActiveDirectory = "activedirectory"
	TypeCustom          = "custom"
)

// Group sources (Config.GroupSource).
const (
	GroupSourceMemberOf = "memberof"
	GroupSourceSearch   = "search"
	GroupSourceInChain  = "in_chain"
)

// Defaults set by SetDefaults.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultTimeout             = 10 * time.Second
	DefaultPoolSize            = 16
	DefaultHealthCheckInterval = 30 * time.Second
	DefaultRecheckInterval     = 60 * time.Second
	DefaultMaxNesting          = 10
	DefaultGroupCacheTTL       = 30 * time.Second

	// MaxPoolSize bounds PoolSize (per server and per pool).
	MaxPoolSize = 1024
	// MaxMaxNesting bounds MaxNesting.
	MaxMaxNesting = 100
)

// ApplyPreset fills the fields that Type implies and that are still empty.
// Fields already set are never overwritten, so a preset is a starting point
// that any key in the file can override. "custom" (and an unknown type, which
// Validate reports) fills nothing.
//
//   - openldap: uid login against inetOrgPerson entries, entryUUID as the
//     stable ID, groups from memberOf (set group_source: search where the
//     memberof overlay is not loaded) with groupOfNames as the search fallback.
//   - activedirectory: login by sAMAccountName or userPrincipalName (and
//     DOMAIN\user, see NetBIOSDomain), objectGUID as the ID (rendered as a
//     canonical UUID), groups named by sAMAccountName, nested groups with
//     LDAP_MATCHING_RULE_IN_CHAIN, paged searches of 500.
func (c *Config) ApplyPreset() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	switch c.Type {
	case TypeOpenLDAP:
		set(&c.UserFilter, "(&(objectClass=inetOrgPerson)(uid={username}))")
		set(&c.GroupFilter, "(&(objectClass=groupOfNames)(member={dn}))")
		set(&c.GroupSource, GroupSourceMemberOf)
		set(&c.Attributes.Username, "uid")
		set(&c.Attributes.DisplayName, "displayName")
		set(&c.Attributes.Email, "mail")
		set(&c.Attributes.ID, "entryUUID")
	case TypeActiveDirectory:
		set(&c.UserFilter, "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))")
		set(&c.GroupFilter, "(&(objectClass=group)(member={dn}))")
		set(&c.GroupSource, GroupSourceInChain)
		set(&c.Attributes.Username, "sAMAccountName")
		set(&c.Attributes.DisplayName, "displayName")
		set(&c.Attributes.Email, "mail")
		set(&c.Attributes.ID, "objectGUID")
		set(&c.Attributes.GroupName, "sAMAccountName")
		if c.PageSize == 0 {
			c.PageSize = 500
		}
	}
}

// SetDefaults fills timeouts, pool size, nesting depth and the base DNs that
// are still zero. Call it after ApplyPreset and before Validate.
func (c *Config) SetDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.HealthCheckInterval == 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.RecheckInterval == 0 {
		c.RecheckInterval = DefaultRecheckInterval
	}
	if c.MaxNesting == 0 {
		c.MaxNesting = DefaultMaxNesting
	}
	if c.GroupCacheTTL == 0 {
		c.GroupCacheTTL = DefaultGroupCacheTTL
	}
	if c.UserBaseDN == "" {
		c.UserBaseDN = c.BaseDN
	}
	if c.GroupBaseDN == "" {
		c.GroupBaseDN = c.BaseDN
	}
}

// Validate reports every problem at once (errors.Join). Each message starts
// with the key path relative to the directory block ("urls[1]: ...",
// "user_filter: ..."); the config package adds its own prefix.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}

	switch c.Type {
	case TypeOpenLDAP, TypeActiveDirectory, TypeCustom:
	case "":
		add("type", "required (openldap, activedirectory or custom)")
	default:
		add("type", "must be openldap, activedirectory or custom, not %q", c.Type)
	}

	if len(c.URLs) == 0 {
		add("urls", "at least one URL is required")
	}
	for i, raw := range c.URLs {
		key := fmt.Sprintf("urls[%d]", i)
		u, err := url.Parse(raw)
		if err != nil {
			add(key, "not a URL: %v", err)
			continue
		}
		switch u.Scheme {
		case "ldap":
		case "ldaps":
			if c.StartTLS {
				add(key, "start_tls cannot be used with ldaps:// (the connection is already TLS)")
			}
		default:
			add(key, "scheme must be ldap or ldaps, not %q", u.Scheme)
			continue
		}
		if u.Hostname() == "" {
			add(key, "host is missing")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				add(key, "port must be 1-65535")
			}
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			add(key, "must be scheme://host[:port] only (no path, query or user info)")
		}
	}

	if c.CAFile != "" {
		if pem, err := os.ReadFile(c.CAFile); err != nil {
			add("ca_file", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("ca_file", "no PEM certificate found in %s", c.CAFile)
		}
	}

	if c.BindDN == "" {
		add("bind_dn", "required (the service account used for searches)")
	} else if c.Type != TypeActiveDirectory || !strings.Contains(c.BindDN, "@") {
		if _, err := goldap.ParseDN(c.BindDN); err != nil {
			add("bind_dn", "not a DN: %v", err)
		}
	}
	if c.BindPassword == "" {
		add("bind_password", "required (an empty password is an unauthenticated bind, RFC 4513 section 5.1.2)")
	}

	checkDN := func(key, dn string, required bool) {
		if dn == "" {
			if required {
				add(key, "required")
			}
			return
		}
		if _, err := goldap.ParseDN(dn); err != nil {
			add(key, "not a DN: %v", err)
		}
	}
	checkDN("base_dn", c.BaseDN, true)
	checkDN("user_base_dn", c.UserBaseDN, false)
	checkDN("group_base_dn", c.GroupBaseDN, false)

	if c.UserFilter == "" {
		add("user_filter", "required")
	} else {
		if !strings.Contains(c.UserFilter, "{username}") {
			add("user_filter", "must contain {username}")
		}
		if strings.Contains(c.UserFilter, "{dn}") {
			add("user_filter", "cannot contain {dn} (only group_filter has a DN to insert)")
		}
		if _, err := goldap.CompileFilter(expandTemplate(c.UserFilter, "x", "cn=x")); err != nil {
			add("user_filter", "not a valid LDAP filter: %v", err)
		}
	}

	switch c.GroupSource {
	case GroupSourceMemberOf, GroupSourceInChain:
	case GroupSourceSearch:
		if c.GroupFilter == "" {
			add("group_filter", "required when group_source is search")
		}
	case "":
		add("group_source", "required (memberof, search or in_chain)")
	default:
		add("group_source", "must be memberof, search or in_chain, not %q", c.GroupSource)
	}
	if c.GroupFilter != "" {
		if !strings.Contains(c.GroupFilter, "{dn}") && !strings.Contains(c.GroupFilter, "{username}") {
			add("group_filter", "must contain {dn} or {username}")
		}
		if _, err := goldap.CompileFilter(expandTemplate(c.GroupFilter, "x", "cn=x")); err != nil {
			add("group_filter", "not a valid LDAP filter: %v", err)
		}
	}
	if c.MaxNesting < 1 || c.MaxNesting > MaxMaxNesting {
		add("max_nesting", "must be between 1 and %d", MaxMaxNesting)
	}

	if c.Attributes.Username == "" {
		add("attributes.username", "required")
	}
	if c.Attributes.ID == "" {
		add("attributes.id", "required (a stable ID such as entryUUID or objectGUID)")
	}
	if a := c.Attributes.GroupName; a != "" && strings.ContainsAny(a, " ,()=*\\\x00") {
		add("attributes.group_name", "not an attribute name: %q", a)
	}
	if n := c.NetBIOSDomain; n != "" {
		switch {
		case c.Type != TypeActiveDirectory:
			add("netbios_domain", "only for type activedirectory")
		case len(n) > 15 || strings.ContainsAny(n, "\\/:*?\"<>|@. \x00"):
			add("netbios_domain", "not a NetBIOS domain name (at most 15 characters, no \\ / : * ? \" < > | @ . or space): %q", n)
		}
	}
	for i, a := range c.Attributes.Extra {
		if a == "" || strings.ContainsAny(a, " ,()=*\\\x00") {
			add(fmt.Sprintf("attributes.extra[%d]", i), "not an attribute name: %q", a)
		}
	}

	if c.DialTimeout <= 0 {
		add("dial_timeout", "must be > 0")
	}
	if c.Timeout <= 0 {
		add("timeout", "must be > 0")
	}
	if c.HealthCheckInterval <= 0 {
		add("health_check_interval", "must be > 0")
	}
	if c.RecheckInterval <= 0 {
		add("recheck_interval", "must be > 0")
	}
	if c.PoolSize < 1 || c.PoolSize > MaxPoolSize {
		add("pool_size", "must be between 1 and %d", MaxPoolSize)
	}
	if c.PageSize < 0 || c.PageSize > 1<<20 {
		add("page_size", "must be between 0 (no paging) and %d", 1<<20)
	}
	return errors.Join(errs...)
}

// expandTemplate replaces {username} and {dn} in a filter template. The
// values must already be escaped (ldap.EscapeFilter): escaping happens once,
// in the caller that builds the filter.
func expandTemplate(tmpl, escapedUsername, escapedDN string) string {
	return strings.NewReplacer("{username}", escapedUsername, "{dn}", escapedDN).Replace(tmpl)
}
