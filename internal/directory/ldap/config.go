package ldap

import "time"

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

	Attributes Attributes `yaml:"attributes"`

	DialTimeout time.Duration `yaml:"dial_timeout"`
	// Timeout bounds each LDAP operation.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the number of pooled connections per server used for
	// service-bound searches; user binds use their own pooled connections.
	PoolSize int `yaml:"pool_size"`
	// HealthCheckInterval: idle pooled connections are checked this often.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
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
	// Extra attributes are read and kept in User.Attributes (for session
	// tags, later steps).
	Extra []string `yaml:"extra"`
}
