package awsfed

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidARN is wrapped by every ARN parse or build error; the text after
// it says which part is wrong.
var ErrInvalidARN = errors.New("invalid ARN")

// Limits of the IAM and STS grammars.
const (
	// MaxARNLength is the longest RoleArn or PrincipalArn STS accepts
	// (AssumeRoleWithSAML: 20–2048 characters).
	MaxARNLength = 2048
	// MaxRoleNameLength: IAM role names are 1–64 characters of [\w+=,.@-].
	MaxRoleNameLength = 64
	// MaxRolePathLength: IAM paths are 1–512 characters, "/" or
	// "/…/" with characters from ! (0x21) to ~ (0x7E) between.
	MaxRolePathLength = 512
	// MaxProviderNameLength: SAML provider names are 1–128 characters of
	// [\w._-] (IAM CreateSAMLProvider, item 22).
	MaxProviderNameLength = 128
)

// RoleARN is a parsed IAM role ARN:
// arn:<Partition>:iam::<Account>:role<Path><Name>.
type RoleARN struct {
	Partition string // a known partition ID
	Account   string // 12 decimal digits
	// Path is the IAM path, always beginning and ending with "/": "/" for
	// a role without a path, "/team/ops/" for one with. ParseRoleARN always
	// sets it; String treats an empty Path as "/".
	Path string
	Name string // the role name, [\w+=,.@-]{1,64}
}

// ParseRoleARN parses s strictly as an IAM role ARN (IAM User Guide,
// reference_identifiers.html and reference_iam-quotas.html; STS
// AssumeRoleWithSAML RoleArn):
//
//	arn:<partition>:iam::<12-digit account>:role/<path/><name>
//
// The partition must be known (LookupPartition), the region empty, the path
// "/"-delimited with characters 0x21–0x7E and at most 512 long, the name
// 1–64 characters of [A-Za-z0-9_+=,.@-], and the whole ARN at most 2048
// characters. Nothing is trimmed or case-folded.
//
// Stricter than IAM in one point: a comma in the path or the name is
// refused (NoComma), since Warden could not hand such a role to AWS.
func ParseRoleARN(s string) (RoleARN, error) {
	if len(s) > MaxARNLength {
		return RoleARN{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidARN, MaxARNLength)
	}
	fields := strings.SplitN(s, ":", 6)
	if len(fields) != 6 || fields[0] != "arn" {
		return RoleARN{}, fmt.Errorf("%w: %s is not of the form arn:<partition>:iam::<account>:role/<name>", ErrInvalidARN, Quote(s))
	}
	part, service, region, account, resource := fields[1], fields[2], fields[3], fields[4], fields[5]
	if _, ok := LookupPartition(part); !ok {
		return RoleARN{}, fmt.Errorf("%w: unknown partition %s (want one of %s)", ErrInvalidARN, Quote(part), strings.Join(PartitionIDs(), ", "))
	}
	if service != "iam" {
		return RoleARN{}, fmt.Errorf("%w: service must be \"iam\", not %s", ErrInvalidARN, Quote(service))
	}
	if region != "" {
		return RoleARN{}, fmt.Errorf("%w: IAM ARNs have no region, got %s", ErrInvalidARN, Quote(region))
	}
	if err := ValidAccountID(account); err != nil {
		return RoleARN{}, err
	}
	rest, ok := strings.CutPrefix(resource, "role/")
	if !ok {
		return RoleARN{}, fmt.Errorf("%w: resource must start with \"role/\", got %s", ErrInvalidARN, Quote(resource))
	}
	i := strings.LastIndexByte(rest, '/')
	path, name := "/"+rest[:i+1], rest[i+1:]
	if err := ValidRolePath(path); err != nil {
		return RoleARN{}, err
	}
	if err := ValidRoleName(name); err != nil {
		return RoleARN{}, err
	}
	if err := NoComma(path, name); err != nil {
		return RoleARN{}, err
	}
	return RoleARN{Partition: part, Account: account, Path: path, Name: name}, nil
}

// NoComma refuses a role path or name with a comma. IAM allows commas in
// both, but AWS reads the SAML Role attribute as "<role ARN>,<provider
// ARN>", and the WardenRole session tag (the role name) cannot hold one
// (ValidTagValue), so such a role cannot be federated through Warden.
func NoComma(path, name string) error {
	const saml = "IAM allows it, but AWS reads the SAML Role attribute as \"<role ARN>,<provider ARN>\""
	if i := strings.IndexByte(name, ','); i >= 0 {
		return fmt.Errorf("%w: role name %s has a comma at byte %d: %s and the WardenRole session tag cannot hold one: Warden cannot hand this role to AWS; rename it",
			ErrInvalidARN, Quote(name), i, saml)
	}
	if i := strings.IndexByte(path, ','); i >= 0 {
		return fmt.Errorf("%w: role path %s has a comma at byte %d: %s: Warden cannot hand this role to AWS; move it to a path without one",
			ErrInvalidARN, Quote(path), i, saml)
	}
	return nil
}

// String formats the ARN. It does not validate; a RoleARN from
// ParseRoleARN formats back to the text it was parsed from.
func (a RoleARN) String() string {
	path := a.Path
	if path == "" {
		path = "/"
	}
	return "arn:" + a.Partition + ":iam::" + a.Account + ":role" + path + a.Name
}

// ValidAccountID checks an AWS account ID: exactly 12 ASCII digits.
func ValidAccountID(s string) error {
	if len(s) != 12 || !allBytes(s, isDigit) {
		return fmt.Errorf("%w: account ID must be 12 digits, got %s", ErrInvalidARN, Quote(s))
	}
	return nil
}

// ValidRolePath checks an IAM path against the IAM API pattern
// (\u002F)|(\u002F[\u0021-\u007E]+\u002F): "/" alone, or "/" + one or
// more characters 0x21–0x7E + "/", at most 512 characters (IAM API,
// Role.Path). As in that pattern, inner "//" is not refused.
func ValidRolePath(p string) error {
	switch {
	case len(p) > MaxRolePathLength:
		return fmt.Errorf("%w: role path longer than %d characters", ErrInvalidARN, MaxRolePathLength)
	case len(p) == 0 || p[0] != '/' || p[len(p)-1] != '/':
		return fmt.Errorf("%w: role path must begin and end with \"/\", got %s", ErrInvalidARN, Quote(p))
	case p == "//":
		return fmt.Errorf("%w: role path \"//\" is empty between its slashes", ErrInvalidARN)
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] > 0x7E {
			return fmt.Errorf("%w: role path %s has a character outside ! to ~ at byte %d", ErrInvalidARN, Quote(p), i)
		}
	}
	return nil
}

// ValidRoleName checks an IAM role name: 1–64 characters of
// [A-Za-z0-9_+=,.@-] (IAM API, Role.RoleName).
func ValidRoleName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("%w: role name is empty", ErrInvalidARN)
	case len(n) > MaxRoleNameLength:
		return fmt.Errorf("%w: role name longer than %d characters (%d)", ErrInvalidARN, MaxRoleNameLength, len(n))
	}
	for i := 0; i < len(n); i++ {
		if !IsRoleNameByte(n[i]) {
			return fmt.Errorf("%w: role name %s has a character outside [A-Za-z0-9_+=,.@-] at byte %d", ErrInvalidARN, Quote(n), i)
		}
	}
	return nil
}

// IsRoleNameByte reports whether c may appear in an IAM role name
// ([\w+=,.@-], ASCII only).
func IsRoleNameByte(c byte) bool {
	return isWord(c) || strings.IndexByte("+=,.@-", c) >= 0
}

// ValidSAMLProviderName checks an IAM SAML provider name: 1–128 characters
// of [\w._-] (item 22).
func ValidSAMLProviderName(n string) error {
	if n == "" || len(n) > MaxProviderNameLength || !allBytes(n, func(c byte) bool { return isWord(c) || c == '.' || c == '-' }) {
		return fmt.Errorf("%w: SAML provider name must be 1–%d characters of [A-Za-z0-9_.-], got %s", ErrInvalidARN, MaxProviderNameLength, Quote(n))
	}
	return nil
}

// ProviderARN builds the ARN of an IAM SAML identity provider:
// arn:<partition>:iam::<account>:saml-provider/<name>. Each part is checked.
func ProviderARN(partition, account, providerName string) (string, error) {
	if _, ok := LookupPartition(partition); !ok {
		return "", fmt.Errorf("%w: unknown partition %s (want one of %s)", ErrInvalidARN, Quote(partition), strings.Join(PartitionIDs(), ", "))
	}
	if err := ValidAccountID(account); err != nil {
		return "", err
	}
	if err := ValidSAMLProviderName(providerName); err != nil {
		return "", err
	}
	return "arn:" + partition + ":iam::" + account + ":saml-provider/" + providerName, nil
}

// Quote returns s quoted for an error message, cut to 80 bytes (on a rune
// boundary) with "…" when longer, so that messages stay readable whatever
// the input.
func Quote(s string) string {
	const max = 80
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
