package rolemap

import (
	"fmt"
	"strings"

	"github.com/wardenidp/warden/internal/awsfed"
)

// segment is one piece of a role ARN template: literal text, or the named
// capture with submatch index capture (when capture > 0).
type segment struct {
	lit     string
	capture int
}

// parseTemplate splits a role ARN template into segments. names maps the
// pattern's capture names to their submatch indexes. ${name} must name a
// capture; $$ is a literal $; any other $ is an error.
func parseTemplate(t string, names map[string]int) ([]segment, []string) {
	var (
		segs []segment
		errs []string
		lit  strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '$' {
			lit.WriteByte(c)
			continue
		}
		switch {
		case strings.HasPrefix(t[i:], "$$"):
			lit.WriteByte('$')
			i++
		case strings.HasPrefix(t[i:], "${"):
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				errs = append(errs, fmt.Sprintf("unterminated ${ at byte %d", i))
				return nil, errs
			}
			name := t[i+2 : i+end]
			idx, ok := names[name]
			switch {
			case name == "":
				errs = append(errs, fmt.Sprintf("empty ${} at byte %d", i))
			case !ok:
				errs = append(errs, fmt.Sprintf("${%s} is not a named capture of the pattern%s", name, knownNames(names)))
			default:
				flush()
				segs = append(segs, segment{capture: idx})
			}
			i += end
		default:
			errs = append(errs, fmt.Sprintf("lone $ at byte %d: write ${name} for a capture or $$ for a literal $", i))
		}
	}
	flush()
	return segs, errs
}

func knownNames(names map[string]int) string {
	if len(names) == 0 {
		return " (it has none; write (?P<name>…))"
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sortStrings(list)
	return " (it has: " + strings.Join(list, ", ") + ")"
}

// expand fills the template with the submatches of s at loc
// (FindStringSubmatchIndex). A capture that did not participate is empty.
func expand(segs []segment, s string, loc []int) string {
	n := 0
	for _, sg := range segs {
		if sg.capture == 0 {
			n += len(sg.lit)
		} else if a, b := loc[2*sg.capture], loc[2*sg.capture+1]; a >= 0 {
			n += b - a
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, sg := range segs {
		if sg.capture == 0 {
			b.WriteString(sg.lit)
		} else if x, y := loc[2*sg.capture], loc[2*sg.capture+1]; x >= 0 {
			b.WriteString(s[x:y])
		}
	}
	return b.String()
}

// hole stands for a capture in the shape of a template checked by
// checkTemplate; it cannot occur in a valid template's literal text, which
// holds printable ASCII only.
const hole = '\x00'

// checkTemplate reports why a template can never expand to a valid role ARN
// of a catalogued account, or "" when some expansion may be valid. The
// skeleton "arn:", ":iam::", ":role/" must be literal; holes may stand in
// the partition, the account and the path/name. accounts says whether an
// account ID is catalogued, and in which partition.
func checkTemplate(segs []segment, accounts map[string]*account) string {
	var shape strings.Builder
	holes := 0
	for _, sg := range segs {
		if sg.capture == 0 {
			shape.WriteString(sg.lit)
		} else {
			shape.WriteByte(hole)
			holes++
		}
	}
	s := shape.String()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != hole && (c < 0x21 || c > 0x7E) {
			return fmt.Sprintf("has the character %q; role ARNs are printable ASCII without spaces", c)
		}
	}
	if holes == 0 {
		a, err := awsfed.ParseRoleARN(s)
		if err != nil {
			return err.Error()
		}
		return checkAccount(a, accounts)
	}
	if i := strings.IndexByte(s, ','); i >= 0 {
		return `has a comma in its literal text: AWS reads the SAML Role attribute as "<role ARN>,<provider ARN>", so no role with a comma in its ARN can be handed to AWS`
	}
	if len(s)-holes > awsfed.MaxARNLength {
		return fmt.Sprintf("%v: longer than %d characters", awsfed.ErrInvalidARN, awsfed.MaxARNLength)
	}
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return `must start with the literal text "arn:" (captures may only stand for the partition, the account and the role path/name)`
	}
	part, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return `must have the form arn:<partition>:iam::<account>:role/<name> with the colons written out`
	}
	if !strings.ContainsRune(part, hole) {
		if _, known := awsfed.LookupPartition(part); !known {
			return fmt.Sprintf("unknown partition %s (want one of %s)", awsfed.Quote(part), strings.Join(awsfed.PartitionIDs(), ", "))
		}
	}
	rest, ok = strings.CutPrefix(rest, "iam::")
	if !ok {
		return `must continue with the literal text ":iam::" after the partition`
	}
	acct, res, ok := strings.Cut(rest, ":")
	if !ok {
		return `must have the form arn:<partition>:iam::<account>:role/<name> with the colons written out`
	}
	digits := 0
	for i := 0; i < len(acct); i++ {
		switch c := acct[i]; {
		case c == hole:
		case c >= '0' && c <= '9':
			digits++
		default:
			return fmt.Sprintf("account part %s has %q; account IDs are 12 digits", awsfed.Quote(strings.ReplaceAll(acct, string(hole), "${…}")), c)
		}
	}
	switch {
	case digits > 12:
		return "account part has more than 12 digits"
	case !strings.ContainsRune(acct, hole):
		if err := awsfed.ValidAccountID(acct); err != nil {
			return err.Error()
		}
		a, ok := accounts[acct]
		if !ok {
			return fmt.Sprintf("account %s is not in the accounts catalogue", acct)
		}
		if !strings.ContainsRune(part, hole) && part != a.partition {
			return fmt.Sprintf("account %s is in partition %q, the template says %q", acct, a.partition, part)
		}
	}
	pathName, ok := strings.CutPrefix(res, "role/")
	if !ok {
		return `must continue with the literal text ":role/" after the account`
	}
	// The role name follows the last "/" (a capture may add more "/", making
	// literal text before it part of the path, where any of ! to ~ is fine).
	// Literal text after the last capture of the name must be name text.
	name := pathName[strings.LastIndexByte(pathName, '/')+1:]
	tail := name[strings.LastIndexByte(name, hole)+1:]
	if name == "" {
		return "ends with \"/\": no role name after it"
	}
	if len(tail) > awsfed.MaxRoleNameLength {
		return fmt.Sprintf("role name longer than %d characters", awsfed.MaxRoleNameLength)
	}
	for i := 0; i < len(tail); i++ {
		if !awsfed.IsRoleNameByte(tail[i]) {
			return fmt.Sprintf("role name part %s has %q, outside [A-Za-z0-9_+=,.@-]", awsfed.Quote(tail), tail[i])
		}
	}
	return ""
}

// checkAccount reports when a parsed role ARN names an account outside the
// catalogue or in another partition than the catalogue says.
func checkAccount(a awsfed.RoleARN, accounts map[string]*account) string {
	acc, ok := accounts[a.Account]
	if !ok {
		return fmt.Sprintf("account %s is not in the accounts catalogue", a.Account)
	}
	if acc.partition != a.Partition {
		return fmt.Sprintf("account %s is in partition %q, the ARN says %q", a.Account, acc.partition, a.Partition)
	}
	return ""
}
