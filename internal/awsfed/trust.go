package awsfed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Web-identity session tags that Warden's role-scoped ID token carries
// (principal_tags of the https://aws.amazon.com/tags claim, item 35), and
// that a role's trust policy tests with aws:RequestTag/<key> (item 37: AWS
// can test only aud, sub and request tags of a web-identity token). Both
// are needed: a token for role "Admin" of one account must not open the
// "Admin" role of another account that trusts the same issuer.
const (
	TagRole    = "WardenRole"    // the role name
	TagAccount = "WardenAccount" // the role's 12-digit account ID
)

// DefaultMFASessionTag is the default of mfa.session_tag: the session tag,
// sent on both paths (SAML PrincipalTag and the web-identity token's
// tags), whose value names how the user signed in (password, totp,
// webauthn or recovery). AWS sees no MFA of a federated session otherwise
// (item 60); trust policies test it as aws:RequestTag/<key>, permission
// policies as aws:PrincipalTag/<key> (item 61).
const DefaultMFASessionTag = "WardenAuth"

// DefaultSTSAudience is the aud of the web-identity token and the
// client-id-list of the IAM OIDC provider unless configured otherwise.
const DefaultSTSAudience = "sts.amazonaws.com"

// MaxOIDCProviderURL is the longest IAM OIDC provider URL (item 28).
const MaxOIDCProviderURL = 255

// ErrInvalidIssuer is wrapped by ValidOIDCProviderURL errors.
var ErrInvalidIssuer = errors.New("issuer not usable as an IAM OIDC provider URL")

// ValidOIDCProviderURL checks issuer against IAM's rules for an OIDC
// provider URL (item 28, IAM CreateOpenIDConnectProvider Url): https, at
// most 255 characters, a host without port, no query, no fragment, no user
// info. A path is allowed. The token's iss must equal it exactly.
func ValidOIDCProviderURL(issuer string) error {
	if len(issuer) > MaxOIDCProviderURL {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidIssuer, MaxOIDCProviderURL)
	}
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s is not a URL", ErrInvalidIssuer, Quote(issuer))
	case u.Scheme != "https":
		return fmt.Errorf("%w: %s must start with https://", ErrInvalidIssuer, Quote(issuer))
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%w: %s has no host", ErrInvalidIssuer, Quote(issuer))
	case u.Port() != "":
		return fmt.Errorf("%w: %s has a port; IAM accepts none", ErrInvalidIssuer, Quote(issuer))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		return fmt.Errorf("%w: %s has a query or fragment", ErrInvalidIssuer, Quote(issuer))
	case u.User != nil:
		return fmt.Errorf("%w: %s has user info", ErrInvalidIssuer, Quote(issuer))
	}
	return nil
}

// IssuerHostPath is the issuer without its scheme, the name IAM gives the
// OIDC provider and the prefix of its condition keys ("<host/path>:aud",
// item 37): "https://sso.example.com/oidc" → "sso.example.com/oidc".
func IssuerHostPath(issuer string) string {
	s, _ := strings.CutPrefix(issuer, "https://")
	s, _ = strings.CutPrefix(s, "http://")
	return s
}

// OIDCProviderARN is the ARN IAM gives the OIDC provider of issuer in an
// account: arn:<partition>:iam::<account>:oidc-provider/<host/path>.
func OIDCProviderARN(partition, account, issuer string) string {
	return "arn:" + partition + ":iam::" + account + ":oidc-provider/" + IssuerHostPath(issuer)
}

// PolicyDocument is an IAM policy (here: a role trust policy).
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a trust policy. Condition maps an operator
// (StringEquals) to condition keys and their values: a string, or a
// []string of which one must match (IAM ORs the values of one key).
// encoding/json writes map keys sorted, so the output is stable.
type Statement struct {
	Sid       string                    `json:"Sid,omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string]string         `json:"Principal"`
	Action    []string                  `json:"Action"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// Statement IDs of the two trust paths.
const (
	SidSAML        = "WardenSAML"
	SidWebIdentity = "WardenWebIdentity"
)

// SAMLTrustStatement lets the SAML provider providerARN assume the role
// (AssumeRoleWithSAML) with responses addressed to acs: SAML:aud is the
// Recipient of the response, i.e. the ACS URL (item 4). sts:TagSession is
// always allowed (the tag rules may send session tags, item 13),
// sts:SetSourceIdentity when the rules send a source identity (item 15).
func SAMLTrustStatement(providerARN, acs string, sourceIdentity bool) Statement {
	return Statement{
		Sid:       SidSAML,
		Effect:    "Allow",
		Principal: map[string]string{"Federated": providerARN},
		Action:    actions("sts:AssumeRoleWithSAML", sourceIdentity),
		Condition: map[string]map[string]any{"StringEquals": {"SAML:aud": acs}},
	}
}

// WebIdentityTrustStatement lets the OIDC provider of issuer in the role's
// account assume role (AssumeRoleWithWebIdentity) with a token whose aud
// is audience and whose session tags name exactly this role and account
// (TagRole, TagAccount; items 35 and 37). sts:TagSession is required for
// the tags, sts:SetSourceIdentity when the rules send a source identity.
func WebIdentityTrustStatement(role RoleARN, issuer, audience string, sourceIdentity bool) Statement {
	return Statement{
		Sid:       SidWebIdentity,
		Effect:    "Allow",
		Principal: map[string]string{"Federated": OIDCProviderARN(role.Partition, role.Account, issuer)},
		Action:    actions("sts:AssumeRoleWithWebIdentity", sourceIdentity),
		Condition: map[string]map[string]any{"StringEquals": {
			IssuerHostPath(issuer) + ":aud": audience,
			"aws:RequestTag/" + TagRole:     role.Name,
			"aws:RequestTag/" + TagAccount:  role.Account,
		}},
	}
}

// RequireRequestTag adds to st the condition that the session tag key
// has one of values at assumption (StringEquals aws:RequestTag/<key>, item
// 61): with key the MFA session tag and values the second factors a role
// accepts, AWS itself refuses a session of a user who signed in without
// one. st's condition maps are copied, not changed.
func RequireRequestTag(st Statement, key string, values []string) Statement {
	cond := make(map[string]map[string]any, len(st.Condition)+1)
	for op, m := range st.Condition {
		cond[op] = make(map[string]any, len(m)+1)
		for k, v := range m {
			cond[op][k] = v
		}
	}
	if cond["StringEquals"] == nil {
		cond["StringEquals"] = map[string]any{}
	}
	cond["StringEquals"]["aws:RequestTag/"+key] = append([]string(nil), values...)
	st.Condition = cond
	return st
}

func actions(assume string, sourceIdentity bool) []string {
	a := []string{assume, "sts:TagSession"}
	if sourceIdentity {
		a = append(a, "sts:SetSourceIdentity")
	}
	return a
}

// SetupOptions describe the Warden whose AWS setup is printed.
type SetupOptions struct {
	// MetadataURL is Warden's SAML metadata (public_url + /saml/metadata).
	MetadataURL string
	// SAMLPartition and SAMLRegion are saml.aws.partition and .region: the
	// ACS that Warden's SAML responses are addressed to. SAML is false
	// when the AWS preset is off.
	SAML                      bool
	SAMLPartition, SAMLRegion string
	// Issuer is the OIDC issuer, exactly as in the tokens; empty leaves the
	// web-identity path out.
	Issuer string
	// STSAudience is the aud of the web-identity token (default
	// DefaultSTSAudience).
	STSAudience string
	// OIDCThumbprint is the SHA-1 (40 hex digits) of the top certificate
	// of the issuer's TLS chain (OIDCThumbprint); "" writes
	// ThumbprintPlaceholder, which AWS ignores for issuers whose
	// certificate a CA it trusts signed.
	OIDCThumbprint string
	// DefaultSessionSeconds is saml.aws.default_session_seconds: the
	// session length of a role whose rules set none (0: one hour).
	DefaultSessionSeconds int
	// SourceIdentity is true when the rules send a source identity.
	SourceIdentity bool
	// MFASessionTag is mfa.session_tag as configured: the session tag
	// that names how the user signed in; "" means the default
	// (DefaultMFASessionTag), "-" that none is sent. The trust policy of
	// a role that requires MFA tests it, unless it is "-": then AWS cannot
	// enforce the requirement and the setup says so.
	MFASessionTag string
	// MFAMethods is mfa.methods: the second factors that count in this
	// deployment (the values of that tag that a role requiring MFA
	// without mfa_methods accepts). Roles that require MFA need it.
	MFAMethods []string
}

// MFATag is the MFA session tag key, or "" when none is sent.
func (o SetupOptions) MFATag() string {
	switch o.MFASessionTag {
	case "":
		return DefaultMFASessionTag
	case "-":
		return ""
	}
	return o.MFASessionTag
}

// SessionSeconds is the session length of a rule that sets secs: secs,
// or DefaultSessionSeconds (one hour when unset) for 0.
func (o SetupOptions) SessionSeconds(secs int) int {
	switch {
	case secs > 0:
		return secs
	case o.DefaultSessionSeconds > 0:
		return o.DefaultSessionSeconds
	}
	return 3600
}

// MFAValues are the values of the MFA session tag that a role requiring
// MFA accepts: the role's own methods (its mfa_methods) that the
// deployment counts (o.MFAMethods), or, when the role names none, all of
// o.MFAMethods. ok is false when nothing is left: no sign-in can meet the
// role's requirement (values are then the role's methods, which Warden
// never sends).
func (o SetupOptions) MFAValues(roleMethods []string) (values []string, ok bool) {
	if len(roleMethods) == 0 {
		return append([]string(nil), o.MFAMethods...), len(o.MFAMethods) > 0
	}
	for _, m := range roleMethods {
		if slices.Contains(o.MFAMethods, m) {
			values = append(values, m)
		}
	}
	if len(values) == 0 {
		return append([]string(nil), roleMethods...), false
	}
	return values, true
}

// IAM's bounds of a role's MaxSessionDuration, in seconds.
const (
	MinMaxSessionDuration = 3600
	MaxMaxSessionDuration = 43200
)

// MaxSessionDuration is the MaxSessionDuration a role needs so that AWS
// accepts sessions of secs seconds: secs within IAM's bounds of one to
// twelve hours (a SessionDuration above it is refused, item 23).
func MaxSessionDuration(secs int) int {
	return min(max(secs, MinMaxSessionDuration), MaxMaxSessionDuration)
}

// ThumbprintPlaceholder is written as the OIDC provider's thumbprint when
// none could be computed. IAM requires 40 hex digits (older awscli and
// Terraform providers require the list), and ignores the value when the
// issuer's certificate chains to a CA that AWS trusts.
const ThumbprintPlaceholder = "ffffffffffffffffffffffffffffffffffffffff"

// PatternRoleName stands for the role name in the trust policy of a
// pattern rule's roles (PatternSetup.TrustPolicy); each output format
// replaces it by its own parameter.
const PatternRoleName = "ROLE_NAME"

// SetupAccount is one account of the catalogue with the roles the rules
// name explicitly and the pattern rules that may give roles in it.
type SetupAccount struct {
	ID, Name, Partition, SAMLProvider string
	Roles                             []SetupRole
	Patterns                          []SetupPattern
}

// SetupRole is one role and the session length the rules give it.
type SetupRole struct {
	ARN string
	// SessionSeconds is the longest session a rule gives the role (0:
	// SetupOptions.DefaultSessionSeconds).
	SessionSeconds int
	// RequireMFA: every rule that names the role requires a second
	// factor, so its trust policy may too. MFAMethods are the methods
	// those rules accept together (nil: any of SetupOptions.MFAMethods).
	RequireMFA bool
	MFAMethods []string
	// WebIdentityOnly: only workloads get the role, never a person, so
	// its trust policy has no SAML statement (nobody signs in to it).
	WebIdentityOnly bool
}

// SetupPattern is a pattern rule that may give roles in an account: the
// roles cannot be listed, only described.
type SetupPattern struct {
	RuleID string
	// RoleARN is the rule's role_arn template (with ${…}).
	RoleARN        string
	SessionSeconds int // the rule's max_session_seconds (0: the default)
	RequireMFA     bool
	MFAMethods     []string
}

// Setup is everything an AWS administrator runs or pastes.
type Setup struct {
	MetadataURL string `json:"metadata_url,omitempty"`
	Issuer      string `json:"issuer,omitempty"`
	STSAudience string `json:"sts_audience,omitempty"`
	// OIDCThumbprint is the thumbprint written for the OIDC provider;
	// ThumbprintIsPlaceholder says it is ThumbprintPlaceholder.
	OIDCThumbprint          string         `json:"oidc_thumbprint,omitempty"`
	ThumbprintIsPlaceholder bool           `json:"oidc_thumbprint_placeholder,omitempty"`
	Accounts                []AccountSetup `json:"accounts"`
	// Notes are warnings and hints for the whole setup.
	Notes []string `json:"notes,omitempty"`
}

// AccountSetup is the setup of one account.
type AccountSetup struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Partition       string `json:"partition"`
	SAMLProvider    string `json:"saml_provider,omitempty"` // its name
	SAMLProviderARN string `json:"saml_provider_arn,omitempty"`
	SAMLACS         string `json:"saml_acs,omitempty"`
	OIDCProviderARN string `json:"oidc_provider_arn,omitempty"`
	// Commands create the providers (the script also updates them).
	Commands []string       `json:"commands"`
	Roles    []RoleSetup    `json:"roles"`
	Patterns []PatternSetup `json:"patterns,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
}

// RoleSetup is the trust policy of one role and the commands that set it.
type RoleSetup struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	Path string `json:"path"`
	// SessionSeconds is the longest session the rules give the role;
	// MaxSessionDuration the role's setting that allows it.
	SessionSeconds     int `json:"session_seconds"`
	MaxSessionDuration int `json:"max_session_duration"`
	// RequireMFA: the role requires a second factor; MFAMethods are the
	// values of the MFA session tag its trust policy accepts (when a tag
	// is sent: MFATag).
	RequireMFA  bool           `json:"require_mfa,omitempty"`
	MFATag      string         `json:"mfa_tag,omitempty"`
	MFAMethods  []string       `json:"mfa_methods,omitempty"`
	TrustPolicy PolicyDocument `json:"trust_policy"`
	// PolicyFile is the file name the commands read the policy from.
	PolicyFile string `json:"policy_file"`
	// Commands create the role when it is missing, then set its trust
	// policy and MaxSessionDuration.
	Commands []string `json:"commands"`
}

// PatternSetup describes the roles that a pattern rule gives in one
// account: their trust policy, with PatternRoleName for the role name,
// and their MaxSessionDuration.
type PatternSetup struct {
	RuleID  string `json:"rule_id"`
	RoleARN string `json:"role_arn"` // the rule's template
	// Path is the roles' IAM path when the template fixes it ("" when
	// a ${…} makes it vary).
	Path               string         `json:"path,omitempty"`
	SessionSeconds     int            `json:"session_seconds"`
	MaxSessionDuration int            `json:"max_session_duration"`
	RequireMFA         bool           `json:"require_mfa,omitempty"`
	MFATag             string         `json:"mfa_tag,omitempty"`
	MFAMethods         []string       `json:"mfa_methods,omitempty"`
	TrustPolicy        PolicyDocument `json:"trust_policy"`
}

// iamRegionName is the region that IAM commands need outside the aws
// partition (IAM's endpoint there is regional), "" in aws.
func iamRegionName(partition string) string {
	switch partition {
	case "aws-us-gov":
		return "us-gov-west-1"
	case "aws-cn":
		return "cn-north-1"
	}
	return ""
}

// iamRegion is iamRegionName as a --region option with a leading space.
func iamRegion(partition string) string {
	if r := iamRegionName(partition); r != "" {
		return " --region " + r
	}
	return ""
}

// BuildSetup works out the IAM commands and trust policies for accounts.
// It never fails on a value AWS would refuse: it says so in a note (dev
// mode has an http issuer, and the output is still worth reading). Only
// an unusable input (a role ARN that does not parse, an unknown partition)
// is an error.
func BuildSetup(accounts []SetupAccount, o SetupOptions) (Setup, error) {
	if o.STSAudience == "" {
		o.STSAudience = DefaultSTSAudience
	}
	s := Setup{MetadataURL: o.MetadataURL, Issuer: o.Issuer, Accounts: []AccountSetup{}}
	if o.Issuer != "" {
		s.STSAudience = o.STSAudience
		if err := ValidOIDCProviderURL(o.Issuer); err != nil {
			s.Notes = append(s.Notes, "AWS will refuse this issuer for an OIDC provider: "+err.Error()+
				"; the web-identity path works only with an https issuer without port")
		}
		s.OIDCThumbprint = strings.ToLower(o.OIDCThumbprint)
		if s.OIDCThumbprint == "" {
			s.OIDCThumbprint, s.ThumbprintIsPlaceholder = ThumbprintPlaceholder, true
		} else if err := ValidThumbprint(s.OIDCThumbprint); err != nil {
			return Setup{}, fmt.Errorf("awsfed: setup: %w", err)
		}
	}
	var acs string
	if o.SAML {
		var err error
		if acs, err = SigninACS(o.SAMLPartition, o.SAMLRegion); err != nil {
			return Setup{}, fmt.Errorf("awsfed: setup: %w", err)
		}
	}
	if !o.SAML && o.Issuer == "" {
		s.Notes = append(s.Notes, "neither the SAML preset nor an OIDC issuer is on: nothing to set up")
	}
	accounts = append([]SetupAccount(nil), accounts...)
	sort.SliceStable(accounts, func(i, j int) bool { return accounts[i].ID < accounts[j].ID })
	for _, a := range accounts {
		as, err := accountSetup(a, o, acs, s.OIDCThumbprint)
		if err != nil {
			return Setup{}, err
		}
		s.Accounts = append(s.Accounts, as)
	}
	return s, nil
}

// ValidThumbprint checks that t is 40 hex digits, as IAM wants an OIDC
// provider's thumbprint.
func ValidThumbprint(t string) error {
	if len(t) != 40 || strings.Trim(strings.ToLower(t), "0123456789abcdef") != "" {
		return fmt.Errorf("thumbprint %s is not 40 hex digits (the SHA-1 of a certificate)", Quote(t))
	}
	return nil
}

// Only returns the setup of the accounts ids (all when ids is empty), or
// an error naming an account that it does not hold.
func (s Setup) Only(ids ...string) (Setup, error) {
	if len(ids) == 0 {
		return s, nil
	}
	out := s
	out.Accounts = []AccountSetup{}
	for _, id := range ids {
		i := slices.IndexFunc(s.Accounts, func(a AccountSetup) bool { return a.ID == id })
		if i < 0 {
			return Setup{}, fmt.Errorf("awsfed: setup: account %s is not in the catalogue", Quote(id))
		}
		if !slices.ContainsFunc(out.Accounts, func(a AccountSetup) bool { return a.ID == id }) {
			out.Accounts = append(out.Accounts, s.Accounts[i])
		}
	}
	return out, nil
}

func accountSetup(a SetupAccount, o SetupOptions, acs, thumbprint string) (AccountSetup, error) {
	part := a.Partition
	if part == "" {
		part = "aws"
	}
	if _, ok := LookupPartition(part); !ok {
		return AccountSetup{}, fmt.Errorf("awsfed: setup: account %s: unknown partition %s", a.ID, Quote(part))
	}
	as := AccountSetup{ID: a.ID, Name: a.Name, Partition: part, Commands: []string{}, Roles: []RoleSetup{}}
	region := iamRegion(part)
	samlHere := o.SAML && part == o.SAMLPartition
	if o.SAML && !samlHere {
		as.Notes = append(as.Notes, fmt.Sprintf("Warden's SAML responses go to the %s partition (saml.aws.partition); "+
			"this %s account is reached by the web-identity path only", o.SAMLPartition, part))
	}
	if samlHere {
		arn, err := ProviderARN(part, a.ID, a.SAMLProvider)
		if err != nil {
			return AccountSetup{}, fmt.Errorf("awsfed: setup: account %s: %w", a.ID, err)
		}
		as.SAMLProvider, as.SAMLProviderARN, as.SAMLACS = a.SAMLProvider, arn, acs
		as.Commands = append(as.Commands,
			"aws iam create-saml-provider"+region+" --name "+shellQuote(a.SAMLProvider)+
				" --saml-metadata-document file://warden-metadata.xml")
	}
	if o.Issuer != "" {
		as.OIDCProviderARN = OIDCProviderARN(part, a.ID, o.Issuer)
		as.Commands = append(as.Commands,
			"aws iam create-open-id-connect-provider"+region+" --url "+shellQuote(o.Issuer)+
				" --client-id-list "+shellQuote(o.STSAudience)+" --thumbprint-list "+thumbprint)
	}
	// trust is the trust policy of role arn, with the MFA condition.
	trust := func(arn RoleARN, requireMFA, webIdentityOnly bool, methods []string) (doc PolicyDocument, tag string, values []string) {
		doc = PolicyDocument{Version: "2012-10-17", Statement: []Statement{}}
		if samlHere && !webIdentityOnly {
			doc.Statement = append(doc.Statement, SAMLTrustStatement(as.SAMLProviderARN, acs, o.SourceIdentity))
		}
		if o.Issuer != "" {
			doc.Statement = append(doc.Statement, WebIdentityTrustStatement(arn, o.Issuer, o.STSAudience, o.SourceIdentity))
		}
		if requireMFA {
			var notes []string
			tag, values, notes = mfaCondition(SetupRole{ARN: arn.String(), MFAMethods: methods}, o)
			as.Notes = append(as.Notes, notes...)
			if tag != "" {
				for i := range doc.Statement {
					doc.Statement[i] = RequireRequestTag(doc.Statement[i], tag, values)
				}
			}
		}
		return doc, tag, values
	}
	roles := append([]SetupRole(nil), a.Roles...)
	sort.SliceStable(roles, func(i, j int) bool { return roles[i].ARN < roles[j].ARN })
	for _, r := range roles {
		arn, err := ParseRoleARN(r.ARN)
		if err != nil {
			return AccountSetup{}, fmt.Errorf("awsfed: setup: account %s: %w", a.ID, err)
		}
		if arn.Account != a.ID || arn.Partition != part {
			return AccountSetup{}, fmt.Errorf("awsfed: setup: role %s is not in account %s (%s)", r.ARN, a.ID, part)
		}
		secs := o.SessionSeconds(r.SessionSeconds)
		rs := RoleSetup{ARN: r.ARN, Name: arn.Name, Path: arn.Path, SessionSeconds: secs, MaxSessionDuration: MaxSessionDuration(secs),
			PolicyFile: "trust-" + a.ID + "-" + arn.Name + ".json", RequireMFA: r.RequireMFA}
		rs.TrustPolicy, rs.MFATag, rs.MFAMethods = trust(arn, r.RequireMFA, r.WebIdentityOnly, r.MFAMethods)
		name, file, dur := shellQuote(arn.Name), shellQuote(rs.PolicyFile), strconv.Itoa(rs.MaxSessionDuration)
		rs.Commands = []string{
			"aws iam get-role" + region + " --role-name " + name + " >/dev/null 2>&1 || aws iam create-role" + region +
				" --role-name " + name + " --path " + shellQuote(arn.Path) + " --max-session-duration " + dur +
				" --assume-role-policy-document file://" + file,
			"aws iam update-assume-role-policy" + region + " --role-name " + name + " --policy-document file://" + file,
			"aws iam update-role" + region + " --role-name " + name + " --max-session-duration " + dur,
		}
		as.Roles = append(as.Roles, rs)
	}
	for _, p := range a.Patterns {
		secs := o.SessionSeconds(p.SessionSeconds)
		ps := PatternSetup{RuleID: p.RuleID, RoleARN: p.RoleARN, Path: templatePath(p.RoleARN),
			SessionSeconds: secs, MaxSessionDuration: MaxSessionDuration(secs), RequireMFA: p.RequireMFA}
		arn := RoleARN{Partition: part, Account: a.ID, Path: "/", Name: PatternRoleName}
		// The notes about a pattern rule's MFA come with the rule's own
		// note (the caller's), not once per account.
		n := len(as.Notes)
		ps.TrustPolicy, ps.MFATag, ps.MFAMethods = trust(arn, p.RequireMFA, false, p.MFAMethods)
		as.Notes = as.Notes[:n]
		as.Patterns = append(as.Patterns, ps)
	}
	return as, nil
}

// templatePath is the IAM path of the roles of a role_arn template when
// it has no ${…}: "/" for …:role/${r}, "/team/" for …:role/team/${r}.
func templatePath(tmpl string) string {
	_, rest, ok := strings.Cut(tmpl, ":role/")
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(rest, '/')
	path := "/" + rest[:i+1]
	if strings.Contains(path, "$") {
		return ""
	}
	return path
}

// mfaCondition works out the MFA condition of a role that requires MFA:
// the tag key ("" when none is sent, with a note that AWS cannot enforce
// the requirement) and the values it accepts.
func mfaCondition(r SetupRole, o SetupOptions) (tag string, values []string, notes []string) {
	values, ok := o.MFAValues(r.MFAMethods)
	if !ok {
		if len(r.MFAMethods) == 0 {
			notes = append(notes, fmt.Sprintf("role %s requires MFA, but no MFA method is configured (mfa.methods): Warden refuses it to everyone", r.ARN))
		} else {
			notes = append(notes, fmt.Sprintf("role %s accepts only %s, none of which is in mfa.methods (%s): Warden refuses it to everyone",
				r.ARN, strings.Join(r.MFAMethods, ", "), strings.Join(o.MFAMethods, ", ")))
		}
	}
	tag = o.MFATag()
	if tag == "" {
		notes = append(notes, fmt.Sprintf("role %s requires MFA, but mfa.session_tag is \"-\": Warden sends no session tag saying how the user "+
			"signed in, so AWS cannot enforce the role's MFA requirement (only Warden does, at hand-off); set mfa.session_tag to let its trust policy require it", r.ARN))
	}
	return tag, values, notes
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and _ . , : / = + @ % -.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = isWord(c) || strings.IndexByte("_.,:/=+@%-", c) >= 0
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// JSON returns the trust policy as indented JSON, the text to paste into
// the IAM console or to save as PolicyFile.
func (p PolicyDocument) JSON() string {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil { // cannot happen: strings, slices and maps of strings
		panic(err)
	}
	return string(b)
}

func anySAML(s Setup) bool {
	for _, a := range s.Accounts {
		if a.SAMLProviderARN != "" {
			return true
		}
	}
	return false
}
