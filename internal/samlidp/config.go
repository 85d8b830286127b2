package samlidp

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/awsfed"
)

// Config is the `saml` block of the config file.
type Config struct {
	// EntityID is the IdP's SAML entity ID, the Issuer of every response
	// and the entityID of /saml/metadata (item 8: it must equal the
	// metadata uploaded to IAM). Default: public_url + "/saml/metadata".
	EntityID string `yaml:"entity_id"`
	// AWS is the AWS sign-in service provider preset.
	AWS AWSConfig `yaml:"aws"`
	// ServiceProviders are the other SAML service providers, each from its
	// metadata.
	ServiceProviders []SPConfig `yaml:"service_providers"`
	// RequestMaxAge bounds how old an AuthnRequest's IssueInstant may be
	// (default 5m); one more than RequestMaxSkew (1m) in the future is
	// refused too. Request IDs are remembered for RequestMaxAge plus the
	// skew, so a request is answered once within its whole window.
	RequestMaxAge time.Duration `yaml:"request_max_age"`
	// AssertionLifetime is how far ahead Conditions and
	// SubjectConfirmationData NotOnOrAfter are (default 5m; 1m..15m).
	AssertionLifetime time.Duration `yaml:"assertion_lifetime"`
}

// RequestMaxSkew is how far in the future an AuthnRequest's IssueInstant
// may be (the clock of a service provider ahead of ours).
const RequestMaxSkew = time.Minute

// AWSConfig is the `saml.aws` block: the AWS sign-in service provider of one
// partition, through the global or a regional sign-in endpoint.
type AWSConfig struct {
	// Enabled turns the AWS preset on (default true; a nil pointer in YAML
	// terms means "not said").
	Enabled *bool `yaml:"enabled"`
	// Partition is aws (default), aws-us-gov or aws-cn.
	Partition string `yaml:"partition"`
	// Region "" uses the global sign-in endpoint
	// (https://signin.aws.amazon.com/saml); "us-west-2" uses
	// https://us-west-2.signin.aws.amazon.com/saml (items 1–2; there is no
	// "us-east-1." host, us-east-1 is the global endpoint).
	Region string `yaml:"region"`
	// SessionNameAttribute gives RoleSessionName: "username" (default),
	// "email", or a directory attribute (lowercase name).
	SessionNameAttribute string `yaml:"session_name_attribute"`
	// DefaultSessionSeconds is the SessionDuration sent when a grant has
	// none, and for multi-role (SP-initiated) responses (default 3600;
	// 900..43200, item 12).
	DefaultSessionSeconds int `yaml:"default_session_seconds"`
	// SignResponse signs the Response as well as the Assertion (default
	// false: AWS requires the Assertion signed, item 17; a second RSA
	// signature costs about 0.8 ms per sign-in).
	SignResponse bool `yaml:"sign_response"`
}

// On reports whether the AWS preset is enabled.
func (a AWSConfig) On() bool { return a.Enabled == nil || *a.Enabled }

// SPConfig is one generic service provider.
type SPConfig struct {
	// Name identifies the SP in logs and the audit log (required, unique).
	Name string `yaml:"name"`
	// MetadataFile or MetadataURL (exactly one) is the SP's SAML metadata.
	MetadataFile string `yaml:"metadata_file"`
	MetadataURL  string `yaml:"metadata_url"`
	// RefreshInterval re-reads the metadata (default 1h for a URL, 0 =
	// never for a file); a failed refresh keeps the last good copy.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// NameIDFormat is persistent (default: opaque, stable, per user),
	// email, or unspecified (the username).
	NameIDFormat string `yaml:"name_id_format"`
	// Attributes are the names of the attributes sent.
	Attributes SPAttributes `yaml:"attributes"`
	// GroupsFilter is a regular expression over group names (RE2, matched
	// anywhere unless anchored); empty sends every group.
	GroupsFilter string `yaml:"groups_filter"`
	// SignResponse signs the Response as well as the Assertion.
	SignResponse bool `yaml:"sign_response"`
	// RequireSignedRequests refuses unsigned AuthnRequests from this SP
	// (a signed one is always checked against the SP's metadata, and an SP
	// whose metadata says AuthnRequestsSigned must sign).
	RequireSignedRequests bool `yaml:"require_signed_requests"`
}

// SPAttributes are the attribute names of a generic SP's assertion; an
// attribute named "-" is not sent.
type SPAttributes struct {
	Username    string `yaml:"username"`     // default uid
	Email       string `yaml:"email"`        // default mail
	DisplayName string `yaml:"display_name"` // default displayName
	Groups      string `yaml:"groups"`       // default groups
}

// NameID formats of SPConfig.NameIDFormat.
const (
	NameIDPersistent  = "persistent"
	NameIDEmail       = "email"
	NameIDUnspecified = "unspecified"
)

// Defaults.
const (
	DefaultRequestMaxAge      = 5 * time.Minute
	DefaultAssertionLifetime  = 5 * time.Minute
	DefaultSessionSeconds     = 3600
	DefaultSPRefreshInterval  = time.Hour
	defaultSessionNameAttr    = "username"
	minSPRefreshInterval      = time.Minute
	maxRequestMaxAge          = time.Hour
	minAssertionLifetime      = time.Minute
	maxAssertionLifetime      = 15 * time.Minute
	minSessionSeconds         = 900
	maxSessionSeconds         = 43200
	defaultUsernameAttribute  = "uid"
	defaultEmailAttribute     = "mail"
	defaultDisplayAttribute   = "displayName"
	defaultGroupsAttribute    = "groups"
	sessionNameEmail          = "email"
	sessionNameUsername       = "username"
	maxServiceProviders       = 200
	maxAttributeNameLength    = 256
	maxGroupsFilterLength     = 1024
	maxEntityIDLength         = 1024
	maxSPNameLength           = 64
	maxSessionNameAttrLength  = 64
	maxMetadataURLLength      = 2048
	maxMetadataFileNameLength = 4096
)

// SetDefaults fills in what was not said. EntityID stays empty here: New
// defaults it from the public URL.
func (c *Config) SetDefaults() {
	c.EntityID = strings.TrimSpace(c.EntityID)
	if c.RequestMaxAge == 0 {
		c.RequestMaxAge = DefaultRequestMaxAge
	}
	if c.AssertionLifetime == 0 {
		c.AssertionLifetime = DefaultAssertionLifetime
	}
	if c.AWS.Partition == "" {
		c.AWS.Partition = "aws"
	}
	if c.AWS.SessionNameAttribute == "" {
		c.AWS.SessionNameAttribute = defaultSessionNameAttr
	}
	if c.AWS.DefaultSessionSeconds == 0 {
		c.AWS.DefaultSessionSeconds = DefaultSessionSeconds
	}
	for i := range c.ServiceProviders {
		sp := &c.ServiceProviders[i]
		if sp.NameIDFormat == "" {
			sp.NameIDFormat = NameIDPersistent
		}
		if sp.RefreshInterval == 0 && sp.MetadataURL != "" {
			sp.RefreshInterval = DefaultSPRefreshInterval
		}
		a := &sp.Attributes
		if a.Username == "" {
			a.Username = defaultUsernameAttribute
		}
		if a.Email == "" {
			a.Email = defaultEmailAttribute
		}
		if a.DisplayName == "" {
			a.DisplayName = defaultDisplayAttribute
		}
		if a.Groups == "" {
			a.Groups = defaultGroupsAttribute
		}
	}
}

var attrNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Validate reports every problem at once, with key paths relative to the block.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	if c.EntityID != "" {
		if len(c.EntityID) > maxEntityIDLength {
			add("entity_id", "longer than %d characters", maxEntityIDLength)
		} else if u, err := url.Parse(c.EntityID); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "urn") {
			add("entity_id", "must be an absolute http(s) URL or a urn")
		}
	}
	if c.RequestMaxAge < time.Minute || c.RequestMaxAge > maxRequestMaxAge {
		add("request_max_age", "%v not in 1m..1h", c.RequestMaxAge)
	}
	if c.AssertionLifetime < minAssertionLifetime || c.AssertionLifetime > maxAssertionLifetime {
		add("assertion_lifetime", "%v not in 1m..15m", c.AssertionLifetime)
	}
	if _, ok := awsfed.LookupPartition(c.AWS.Partition); !ok {
		add("aws.partition", "%q is not one of %s", c.AWS.Partition, strings.Join(awsfed.PartitionIDs(), ", "))
	} else if _, err := awsfed.SigninACS(c.AWS.Partition, c.AWS.Region); err != nil {
		add("aws.region", "%v", errors.Unwrap(err))
	}
	switch s := c.AWS.SessionNameAttribute; {
	case s == sessionNameUsername, s == sessionNameEmail:
	case len(s) > maxSessionNameAttrLength || !attrNameRE.MatchString(s):
		add("aws.session_name_attribute", "%q is not username, email or a lowercase directory attribute name", s)
	}
	if s := c.AWS.DefaultSessionSeconds; s < minSessionSeconds || s > maxSessionSeconds {
		add("aws.default_session_seconds", "%d not in %d..%d (item 12)", s, minSessionSeconds, maxSessionSeconds)
	}
	if len(c.ServiceProviders) > maxServiceProviders {
		add("service_providers", "more than %d", maxServiceProviders)
	}
	names := map[string]int{}
	for i, sp := range c.ServiceProviders {
		p := fmt.Sprintf("service_providers[%d]", i)
		switch {
		case sp.Name == "":
			add(p+".name", "required")
		case len(sp.Name) > maxSPNameLength || !spNameRE.MatchString(sp.Name):
			add(p+".name", "%q: use 1..64 letters, digits, '.', '_' or '-'", sp.Name)
		default:
			if j, dup := names[strings.ToLower(sp.Name)]; dup {
				add(p+".name", "%q is also service_providers[%d]", sp.Name, j)
			}
			names[strings.ToLower(sp.Name)] = i
		}
		switch {
		case (sp.MetadataFile == "") == (sp.MetadataURL == ""):
			add(p, "exactly one of metadata_file and metadata_url is required")
		case sp.MetadataURL != "":
			u, err := url.Parse(sp.MetadataURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(sp.MetadataURL) > maxMetadataURLLength {
				add(p+".metadata_url", "must be an http(s) URL")
			}
		case len(sp.MetadataFile) > maxMetadataFileNameLength:
			add(p+".metadata_file", "path too long")
		}
		if sp.RefreshInterval != 0 && sp.RefreshInterval < minSPRefreshInterval {
			add(p+".refresh_interval", "%v is under 1m", sp.RefreshInterval)
		}
		if sp.RefreshInterval < 0 {
			add(p+".refresh_interval", "negative")
		}
		switch sp.NameIDFormat {
		case NameIDPersistent, NameIDEmail, NameIDUnspecified:
		default:
			add(p+".name_id_format", "%q is not persistent, email or unspecified", sp.NameIDFormat)
		}
		for k, v := range map[string]string{"username": sp.Attributes.Username, "email": sp.Attributes.Email,
			"display_name": sp.Attributes.DisplayName, "groups": sp.Attributes.Groups} {
			if v == "" || len(v) > maxAttributeNameLength || strings.ContainsAny(v, " \t\r\n\"<>&") {
				add(p+".attributes."+k, "%q is not a usable attribute name", v)
			}
		}
		if sp.GroupsFilter != "" {
			if len(sp.GroupsFilter) > maxGroupsFilterLength {
				add(p+".groups_filter", "longer than %d characters", maxGroupsFilterLength)
			} else if _, err := regexp.Compile(sp.GroupsFilter); err != nil {
				add(p+".groups_filter", "%v", err)
			}
		}
	}
	sortErrs(errs)
	return errors.Join(errs...)
}

var spNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// sortErrs orders problems by text (key path first), so that a map walk
// above does not make the order change between runs.
func sortErrs(errs []error) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Error() < errs[j-1].Error(); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}
