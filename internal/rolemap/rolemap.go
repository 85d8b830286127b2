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
// AWS limits applied (docs: aws-federation-rules.md items 9–15): role ARN
// grammar and account IDs via awsfed.ParseRoleARN; SessionDuration 900–43200
// (item 12); session tags at most 50, key ≤128 and value ≤256 characters of
// letters, digits, spaces and _.:/=+-@, no "aws:" key prefix, keys unique
// regardless of case, one value per tag (item 14); SourceIdentity 2–64
// characters of [\w+=,.@-] (item 15). A value that breaks a limit at
// evaluation time is left out and reported in Result.Dropped, never changed
// into a different value.
package rolemap

import (
	"fmt"
	"strings"
	"sync/atomic"

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
}

// MFA returns whether the role requires a second factor (MFAMethods
// implies it) and the methods that count (nil: any).
func (r RoleRef) MFA() (bool, []string) { return r.RequireMFA || len(r.MFAMethods) > 0, r.MFAMethods }

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
	RequireMFA  bool     `yaml:"require_mfa,omitempty" json:"require_mfa,omitempty"`
	MFAMethods  []string `yaml:"mfa_methods,omitempty" json:"mfa_methods,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
}

// MFA returns whether the rule's roles require a second factor
// (MFAMethods implies it) and the methods that count (nil: any).
func (p PatternRule) MFA() (bool, []string) {
	return p.RequireMFA || len(p.MFAMethods) > 0, p.MFAMethods
}

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
