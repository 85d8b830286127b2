// Package rolemap is Warden's rules engine: it turns a user's directory
// groups and attributes into the AWS roles they may assume (role ARN,
// provider ARN, account, session length) plus session tags and a source
// identity. It is pure: no I/O, no clock, no package state.
//
// A RuleSet (YAML or JSON) holds an accounts catalogue, grant rules (a
// group, by CN or DN, grants roles), pattern rules (a regular expression
// over group names whose named captures fill a role ARN template, e.g. the
// ADFS convention AWS-<account>-<role>) and tag rules. Validate reports every
// problem at once with its path; Compile turns a valid set into an Engine
// whose Evaluate is O(groups + output): grant rules are looked up in maps by
// normalized DN and case-folded CN, pattern rules are prefiltered by their
// literal prefix.
//
// A role (of a grant rule) or a pattern rule may require a second factor
// (require_mfa) and name the only methods that count (mfa_methods, which
// implies require_mfa). The engine only reports it in Grant.RequireMFA and
// Grant.MFAMethods, the strictest of all the rules that gave the role;
// enforcing it is the hand-off's job.
//
// A role (of a grant rule) or a pattern rule is standing (access: standing,
// the default) or eligible (access: eligible): an eligible role is never
// granted outright but offered for time-boxed elevation, in
// Result.Eligible with its terms in Grant.Eligible: max_duration (a Go
// duration of 15m or more, at most the role's session length, which it
// defaults to), approvers (a group whose members decide requests; none
// means self-service), require_reason and reason_pattern (an RE2
// expression the reason must match; Eligibility.CheckReason). A role that
// any matching rule gives as standing is a standing grant, made from the
// standing rules alone; an eligible-only role takes its terms from the
// first eligible rule in rule ID order. Requests, approvals and active
// elevations live elsewhere (internal/elevation), which marks grants of
// active elevations with Grant.Elevation.
//
// AWS limits applied (docs: aws-federation-rules.md items 9–15): role ARN
// grammar and account IDs via awsfed.ParseRoleARN, which also refuses a
// comma (legal in IAM, but it breaks the SAML Role attribute
// "<role ARN>,<provider ARN>"); SessionDuration 900–43200
// (item 12); session tags at most 50, key ≤128 and value ≤256 characters of
// letters, digits, spaces and _.:/=+-@, no "aws:" key prefix, keys unique
// regardless of case, one value per tag (item 14); SourceIdentity 2–64
// characters of [\w+=,.@-] (item 15). A value that breaks a limit at
// evaluation time is left out and reported in Result.Dropped, never changed
// into a different value.
package rolemap

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// Limits on a rule set, so that a rule file or an API call cannot make
// Compile or Evaluate arbitrarily slow or large. Validate enforces them.
const (
	MaxGrants        = 100_000 // grant rules
	MaxPatterns      = 500     // pattern rules (each runs over every group name)
	MaxAccounts      = 1000    // accounts in the catalogue
	MaxRolesPerGrant = 1000    // roles in one grant rule
	MaxTagAttributes = 50      // = AWS's limit of 50 session tags
	maxIDLength      = 64
	maxNameLength    = 128  // account display names
	maxDescription   = 1024 // bytes
	maxGroupLength   = 4096 // bytes, a CN or a DN
	maxPatternLength = 4096 // bytes of regular expression
	maxTemplate      = 4096 // bytes of role ARN template
	maxAttrName      = 128  // bytes of an attribute name

	MinSessionSeconds = 900   // SessionDuration lower bound (item 12)
	MaxSessionSeconds = 43200 // SessionDuration upper bound (item 12)
)

// RuleSet is the whole mapping configuration, as stored and edited.
type RuleSet struct {
	Accounts []Account     `yaml:"accounts" json:"accounts"`
	Grants   []GrantRule   `yaml:"grants" json:"grants"`
	Patterns []PatternRule `yaml:"patterns" json:"patterns"`
	Tags     TagRules      `yaml:"tags" json:"tags"`
	// Workloads are the workload clients and their roles (workload.go).
	Workloads []Workload `yaml:"workloads,omitempty" json:"workloads,omitempty"`
}

// Account is one AWS account of the catalogue. Only roles in catalogued
// accounts are ever granted.
type Account struct {
	ID           string `yaml:"id" json:"id"`                                   // 12 digits
	Name         string `yaml:"name" json:"name"`                               // display name, unique (case-insensitively)
	Partition    string `yaml:"partition,omitempty" json:"partition,omitempty"` // "aws" (default when empty), "aws-us-gov", "aws-cn"
	SAMLProvider string `yaml:"saml_provider" json:"saml_provider"`             // IAM SAML provider name in this account
}

// PartitionID returns a.Partition, or "aws" when it is empty.
func (a Account) PartitionID() string {
	if a.Partition == "" {
		return "aws"
	}
	return a.Partition
}

// GrantRule gives the members of one group one or more roles.
type GrantRule struct {
	// ID is stable, [a-z0-9-]{1,64}, unique across grants and patterns.
	ID string `yaml:"id" json:"id"`
	// Group is a name ("developers"), matched against a group's Name
	// case-insensitively (strings.EqualFold): the sAMAccountName in Active
	// Directory, the CN elsewhere (identity.Group.Name). Or, when it contains "=", a
	// full DN, matched against a group's DN after RFC 4514 normalization
	// (attribute types and values case-folded, spaces around them and
	// escapes resolved). A group whose CN contains "=" must be given by DN.
	Group       string    `yaml:"group" json:"group"`
	Roles       []RoleRef `yaml:"roles" json:"roles"`
	Description string    `yaml:"description,omitempty" json:"description,omitempty"`
}

// RoleRef is one role of a grant rule.
type RoleRef struct {
	ARN string `yaml:"arn" json:"arn"`
	// MaxSessionSeconds becomes the role's SessionDuration: 0 means none
	// (AWS's default), else 900–43200.
	MaxSessionSeconds int `yaml:"max_session_seconds,omitempty" json:"max_session_seconds,omitempty"`
	// RequireMFA: a hand-off of this role needs a sign-in with a second
	// factor. MFAMethods, when not empty, names the only second factors
	// that count (identity.SecondFactors: webauthn, totp, recovery) and
	// implies RequireMFA, whatever require_mfa says.
	RequireMFA bool     `yaml:"require_mfa,omitempty" json:"require_mfa,omitempty"`
	MFAMethods []string `yaml:"mfa_methods,omitempty" json:"mfa_methods,omitempty"`
	// Access is "" or AccessStanding (the default: the role is granted
	// whenever the rule matches) or AccessEligible (the role is only
	// offered for time-boxed elevation: Result.Eligible, never
	// Result.Grants). The other fields apply to eligible roles only:
	//
	// MaxDuration is the longest elevation, a Go duration ("1h", "90m") of
	// whole seconds, 15m or more and at most the role's session length
	// (MaxSessionSeconds, or 1h when 0: AWS sessions of the role end then);
	// empty means the session length. Approvers names the group (a name or
	// a DN, matched like GrantRule.Group) whose members decide requests;
	// empty means self-service (after a fresh second factor).
	// RequireReason: a request needs a reason; ReasonPattern, when not
	// empty, is an RE2 expression (not anchored implicitly) that the
	// reason must match, and implies RequireReason.
	Access        string `yaml:"access,omitempty" json:"access,omitempty"`
	MaxDuration   string `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	Approvers     string `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	RequireReason bool   `yaml:"require_reason,omitempty" json:"require_reason,omitempty"`
	ReasonPattern string `yaml:"reason_pattern,omitempty" json:"reason_pattern,omitempty"`
}

// Values of RoleRef.Access and PatternRule.Access ("" means standing).
const (
	AccessStanding = "standing"
	AccessEligible = "eligible"
)

// MFA returns whether the role requires a second factor (MFAMethods
// implies it) and the methods that count (nil: any).
func (r RoleRef) MFA() (bool, []string) { return r.RequireMFA || len(r.MFAMethods) > 0, r.MFAMethods }

// IsEligible reports whether the role is eligible (Access is
// AccessEligible) rather than standing.
func (r RoleRef) IsEligible() bool { return r.Access == AccessEligible }

// PatternRule derives roles from group names.
type PatternRule struct {
	ID string `yaml:"id" json:"id"`
	// Pattern is an RE2 regular expression (Go regexp syntax) matched
	// against each group's Name (identity.Group.Name: the sAMAccountName in
	// Active Directory, the CN elsewhere). It is not anchored implicitly: write
	// ^…$ to match whole names.
	Pattern string `yaml:"pattern" json:"pattern"`
	// RoleARN is a template: ${name} is replaced by the named capture
	// "name" of Pattern ($$ is a literal $). The skeleton
	// arn:<partition>:iam::<account>:role/ must be written out, with
	// ${…} only inside the partition, the account and the path/name, e.g.
	// arn:aws:iam::${account}:role/${role}. An expansion that is not a
	// valid role ARN of a catalogued account is dropped and reported.
	RoleARN           string `yaml:"role_arn" json:"role_arn"`
	MaxSessionSeconds int    `yaml:"max_session_seconds,omitempty" json:"max_session_seconds,omitempty"`
	// RequireMFA and MFAMethods apply to every role the rule gives, as in
	// RoleRef.
	RequireMFA bool     `yaml:"require_mfa,omitempty" json:"require_mfa,omitempty"`
	MFAMethods []string `yaml:"mfa_methods,omitempty" json:"mfa_methods,omitempty"`
	// Access, MaxDuration, Approvers, RequireReason and ReasonPattern
	// apply to every role the rule gives, as in RoleRef; MaxDuration is at
	// most the rule's session length (MaxSessionSeconds, or 1h when 0).
	Access        string `yaml:"access,omitempty" json:"access,omitempty"`
	MaxDuration   string `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	Approvers     string `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	RequireReason bool   `yaml:"require_reason,omitempty" json:"require_reason,omitempty"`
	ReasonPattern string `yaml:"reason_pattern,omitempty" json:"reason_pattern,omitempty"`
	Description   string `yaml:"description,omitempty" json:"description,omitempty"`
}

// MFA returns whether the rule's roles require a second factor
// (MFAMethods implies it) and the methods that count (nil: any).
func (p PatternRule) MFA() (bool, []string) {
	return p.RequireMFA || len(p.MFAMethods) > 0, p.MFAMethods
}

// IsEligible reports whether the rule's roles are eligible (Access is
// AccessEligible) rather than standing.
func (p PatternRule) IsEligible() bool { return p.Access == AccessEligible }

// TagRules say which user attributes become session tags and which one
// becomes the SourceIdentity.
type TagRules struct {
	Attributes []TagAttribute `yaml:"attributes,omitempty" json:"attributes,omitempty"`
	// SourceIdentity names the attribute (as in TagAttribute.Attribute)
	// whose value becomes SourceIdentity; empty for none.
	SourceIdentity string `yaml:"source_identity,omitempty" json:"source_identity,omitempty"`
}

// TagAttribute maps one user attribute to one session tag.
type TagAttribute struct {
	// Attribute is "username", "email", "display_name" (the user's own
	// fields), or the name of a directory attribute in Input.Attributes
	// (compared lowercased).
	Attribute  string `yaml:"attribute" json:"attribute"`
	Key        string `yaml:"key" json:"key"` // session tag key
	Transitive bool   `yaml:"transitive,omitempty" json:"transitive,omitempty"`
}

// Problem is one thing wrong with a rule set (Validate, ParseYAML) or one
// value left out of a Result (Dropped).
//
// Validation paths are positional, like the config package's:
// "grants[3].roles[0].arn", "accounts[1].id", "tags.attributes[2].key".
// Dropped paths name the rule by ID or the tag by key:
// "patterns[adfs].role_arn", "tags[department]", "source_identity".
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error is returned by ParseYAML and Compile; it carries every problem found.
// Use errors.As to get the list.
type Error struct {
	Op       string // "parse" or "compile"
	Problems []Problem
}

func (e *Error) Error() string {
	const show = 10
	var b strings.Builder
	b.WriteString("rolemap: " + e.Op + ": ")
	for i, p := range e.Problems {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Input is what Evaluate needs to know about a user.
type Input struct {
	Username string
	// Groups are all the user's groups, nested ones included (Direct does
	// not matter for matching). DN and Name (CN) as the directory gave them.
	Groups []identity.Group
	// Attributes holds directory attributes by lowercase name.
	Attributes         map[string][]string
	Email, DisplayName string
}

// InputFromUser builds the Input for a directory user.
func InputFromUser(u identity.User) Input {
	return Input{Username: u.Username, Groups: u.Groups, Attributes: u.Attributes, Email: u.Email, DisplayName: u.DisplayName}
}

// Grant is one role a user may assume.
type Grant struct {
	RoleARN     string `json:"role_arn"`
	ProviderARN string `json:"provider_arn"`
	AccountID   string `json:"account_id"`
	AccountName string `json:"account_name"`
	Partition   string `json:"partition"`
	RoleName    string `json:"role_name"`
	// SessionSeconds is the SessionDuration to send: the largest
	// max_session_seconds of the rules that gave this role; 0 when none set
	// one (an explicit value wins over "none").
	SessionSeconds int `json:"session_seconds,omitempty"`
	// RuleID, RuleKind ("grant" or "pattern") and Group (the group's DN, or
	// its Name when the DN is unknown) tell which rule and group produced
	// the grant: the first, in (rule ID, group) order, of all that did.
	RuleID   string `json:"rule_id"`
	RuleKind string `json:"rule_kind"`
	Group    string `json:"group"`
	// Rules lists the IDs of every rule that gave this role, sorted.
	Rules []string `json:"rules"`
	// RequireMFA: a hand-off of this role needs a sign-in with a second
	// factor; MFAMethods, when not empty, names the only second factors
	// that count (identity.Method*), strongest first. The strictest of the
	// rules that gave the role wins: RequireMFA when any of them requires
	// it, and MFAMethods is the intersection of their non-empty lists. When
	// a rule's list shares no method with those of the rules before it (in
	// rule ID order), that list is left out and reported in
	// Result.Dropped ("grants[<id>].mfa_methods"); MFA stays required.
	RequireMFA bool     `json:"require_mfa,omitempty"`
	MFAMethods []string `json:"mfa_methods,omitempty"`
	// Eligible is set on the grants of Result.Eligible only: the terms of
	// an elevation to the role, from the first eligible rule (in rule ID
	// order) that gave it.
	Eligible *Eligibility `json:"eligible,omitempty"`
	// Elevation is set by internal/elevation on a grant that an active
	// elevation gives; the engine never sets it.
	Elevation *Elevated `json:"elevation,omitempty"`
}

// Eligibility holds the terms on which a user may request an eligible role.
type Eligibility struct {
	// MaxSeconds is the longest elevation: max_duration, or the role's
	// session length when that is empty.
	MaxSeconds int `json:"max_seconds"`
	// Approvers is the group (name or DN) whose members decide requests;
	// empty means self-service. Match it with
	// identity.NewGroupMatcher([]string{Approvers}).
	Approvers string `json:"approvers,omitempty"`
	// RequireReason: a request needs a reason (true whenever
	// ReasonPattern is set). ReasonPattern is the RE2 expression the reason
	// must match, empty for any.
	RequireReason bool   `json:"require_reason,omitempty"`
	ReasonPattern string `json:"reason_pattern,omitempty"`

	re *regexp.Regexp // compiled ReasonPattern; nil when empty or not compiled
}

// CheckReason returns nil when reason is acceptable for a request of the
// role, else an error whose message can be shown to the requester. A nil
// Eligibility accepts any reason.
func (e *Eligibility) CheckReason(reason string) error {
	if e == nil {
		return nil
	}
	if (e.RequireReason || e.ReasonPattern != "") && strings.TrimSpace(reason) == "" {
		if e.ReasonPattern != "" {
			return fmt.Errorf("this role needs a reason matching %s", e.ReasonPattern)
		}
		return errors.New("this role needs a reason")
	}
	if e.ReasonPattern == "" {
		return nil
	}
	re := e.re
	if re == nil {
		var err error
		if re, err = regexp.Compile(e.ReasonPattern); err != nil {
			return fmt.Errorf("the reason pattern of this role is not valid (%v); ask an administrator to fix the rule", err)
		}
	}
	if !re.MatchString(reason) {
		return fmt.Errorf("the reason must match %s", e.ReasonPattern)
	}
	return nil
}

// Elevated describes the active elevation that gives a grant.
type Elevated struct {
	ID     string    `json:"id"`
	EndsAt time.Time `json:"ends_at"`
	Reason string    `json:"reason,omitempty"`
}

// Rule kinds in Grant.RuleKind.
const (
	KindGrant   = "grant"
	KindPattern = "pattern"
)

// Tag is one session tag.
type Tag struct {
	Key        string `json:"key"`
	Value      string `json:"value"`
	Transitive bool   `json:"transitive,omitempty"`
}

// Result is the outcome of Evaluate.
type Result struct {
	// Grants are sorted by AccountID, then RoleARN, one per RoleARN.
	Grants []Grant `json:"grants"`
	// Eligible are the roles the user may request an elevation to, sorted
	// and merged like Grants, each with Grant.Eligible set. A role that any
	// rule gives as standing is in Grants only.
	Eligible []Grant `json:"eligible,omitempty"`
	// Tags are sorted by Key; at most 50.
	Tags []Tag `json:"tags,omitempty"`
	// SourceIdentity is empty when not configured or when the value was
	// dropped.
	SourceIdentity string `json:"source_identity,omitempty"`
	// Dropped lists what was left out and why, sorted by path, then message.
	Dropped []Problem `json:"dropped,omitempty"`
}

// Holder holds the current Engine for concurrent readers; rule changes
// Store a new one. The zero value is ready and holds an empty Engine.
type Holder struct{ p atomic.Pointer[Engine] }

// Load returns the current Engine (never nil).
func (h *Holder) Load() *Engine {
	if e := h.p.Load(); e != nil {
		return e
	}
	return &Engine{}
}

// Store makes e the current Engine; nil means an empty Engine.
func (h *Holder) Store(e *Engine) { h.p.Store(e) }
