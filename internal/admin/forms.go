package admin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardenidp/warden/internal/rolemap"
)

// Form field names of each kind, in display order.
var formFields = map[kind][]string{
	kindAccount: {"id", "name", "partition", "saml_provider"},
	kindGrant:   {"id", "group", "roles", "description"},
	kindPattern: {"id", "pattern", "role_arn", "max_session_seconds", "description"},
}

// Partitions offered by the account form.
var partitions = []string{"aws", "aws-us-gov", "aws-cn"}

// maxField bounds one form field (a grant's role list may be long).
const maxField = 16 << 10

// formToObject reads a form into an object. Problems that the form alone
// shows (a number that is not one, a field too long) come back by field
// name; the object is then not usable.
func formToObject(k kind, f url.Values) (object, map[string][]string) {
	fields := map[string][]string{}
	val := func(name string) string {
		v := strings.TrimSpace(f.Get(name))
		if len(v) > maxField {
			fields[name] = append(fields[name], fmt.Sprintf("Too long (at most %d bytes).", maxField))
			return ""
		}
		return v
	}
	o := object{kind: k}
	switch k {
	case kindAccount:
		o.account = rolemap.Account{ID: val("id"), Name: val("name"), Partition: val("partition"), SAMLProvider: val("saml_provider")}
	case kindGrant:
		o.grant = rolemap.GrantRule{ID: val("id"), Group: val("group"), Description: val("description")}
		for n, line := range strings.Split(strings.ReplaceAll(val("roles"), "\r\n", "\n"), "\n") {
			parts := strings.Fields(line)
			if len(parts) == 0 {
				continue
			}
			ref := rolemap.RoleRef{ARN: parts[0]}
			if len(parts) > 2 {
				fields["roles"] = append(fields["roles"], fmt.Sprintf("Line %d: write the role ARN, optionally followed by a session length in seconds.", n+1))
				continue
			}
			if len(parts) == 2 {
				s, err := strconv.Atoi(parts[1])
				if err != nil {
					fields["roles"] = append(fields["roles"], fmt.Sprintf("Line %d: %q is not a number of seconds.", n+1, parts[1]))
					continue
				}
				ref.MaxSessionSeconds = s
			}
			o.grant.Roles = append(o.grant.Roles, ref)
		}
	case kindPattern:
		o.pattern = rolemap.PatternRule{ID: val("id"), Pattern: val("pattern"), RoleARN: val("role_arn"), Description: val("description")}
		if s := val("max_session_seconds"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				fields["max_session_seconds"] = append(fields["max_session_seconds"], "Write a whole number of seconds (900 to 43200), or leave it empty.")
			}
			o.pattern.MaxSessionSeconds = n
		}
	}
	return o, fields
}

// objectToForm is the form of an existing object.
func objectToForm(o object) map[string]string {
	switch o.kind {
	case kindAccount:
		a := o.account
		p := a.Partition
		if p == "" {
			p = "aws"
		}
		return map[string]string{"id": a.ID, "name": a.Name, "partition": p, "saml_provider": a.SAMLProvider}
	case kindGrant:
		g := o.grant
		var lines []string
		for _, r := range g.Roles {
			if r.MaxSessionSeconds != 0 {
				lines = append(lines, fmt.Sprintf("%s %d", r.ARN, r.MaxSessionSeconds))
			} else {
				lines = append(lines, r.ARN)
			}
		}
		return map[string]string{"id": g.ID, "group": g.Group, "roles": strings.Join(lines, "\n"), "description": g.Description}
	}
	p := o.pattern
	secs := ""
	if p.MaxSessionSeconds != 0 {
		secs = strconv.Itoa(p.MaxSessionSeconds)
	}
	return map[string]string{"id": p.ID, "pattern": p.Pattern, "role_arn": p.RoleARN, "max_session_seconds": secs, "description": p.Description}
}

// formValues keeps what the user typed (for redisplay).
func formValues(k kind, f url.Values) map[string]string {
	out := map[string]string{}
	for _, n := range formFields[k] {
		out[n] = f.Get(n)
	}
	return out
}

// formField maps a problem path relative to an object to its form field:
// "roles[2].arn" -> "roles" (with "Line 3: " in front of the message).
func formField(k kind, rel string, msg string) (string, string) {
	if rel == "" {
		return "", msg
	}
	name, rest, _ := strings.Cut(rel, ".")
	if i := strings.IndexByte(name, '['); i >= 0 {
		if n, err := strconv.Atoi(strings.TrimSuffix(name[i+1:], "]")); err == nil && k == kindGrant && name[:i] == "roles" {
			_ = rest
			return "roles", fmt.Sprintf("Line %d: %s", n+1, msg)
		}
		name = name[:i]
	}
	for _, f := range formFields[k] {
		if f == name {
			return name, msg
		}
	}
	return "", rel + ": " + msg
}
