package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// Form field names of each kind, in display order. require_mfa is a
// checkbox ("on"); mfa_methods are checkboxes, one per method, kept in
// the page's form values as one comma-separated string. access is a pair
// of radio buttons ("standing" or "eligible"); require_reason a checkbox.
var formFields = map[kind][]string{
	kindAccount: {"id", "name", "partition", "saml_provider"},
	kindGrant: {"id", "group", "roles", "require_mfa", "mfa_methods",
		"access", "max_duration", "approvers", "require_reason", "reason_pattern", "description"},
	kindPattern: {"id", "pattern", "role_arn", "max_session_seconds", "require_mfa", "mfa_methods",
		"access", "max_duration", "approvers", "require_reason", "reason_pattern", "description"},
	kindWorkload: workloadFields,
}

// elevationFields are the form fields that apply to eligible roles only.
var elevationFields = []string{"max_duration", "approvers", "require_reason", "reason_pattern"}

// Words after a role ARN in a grant form's role list that set the role's
// access when it differs from the form's radio buttons: "standing",
// "eligible", or "eligible=90m" (eligible, with its own max duration).
const (
	standingToken = rolemap.AccessStanding
	eligibleToken = rolemap.AccessEligible
)

// mfaToken is the word that, after a role ARN in a grant form's role list,
// marks the role as requiring MFA: "mfa", or "mfa=webauthn,totp" for only
// these methods. It is needed only when the roles of one rule differ; the
// form's checkboxes set all the roles of the rule alike.
const mfaToken = "mfa"

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
	case kindWorkload:
		o.workload = workloadFromForm(f, fields, val)
	case kindAccount:
		o.account = rolemap.Account{ID: val("id"), Name: val("name"), Partition: val("partition"), SAMLProvider: val("saml_provider")}
	case kindGrant:
		o.grant = rolemap.GrantRule{ID: val("id"), Group: val("group"), Description: val("description")}
		require, methods := formMFA(f, fields)
		eligible, terms := formElevation(f, fields, val)
		anyEligible := false
		for n, line := range strings.Split(strings.ReplaceAll(val("roles"), "\r\n", "\n"), "\n") {
			parts := strings.Fields(line)
			if len(parts) == 0 {
				continue
			}
			ref, msg := roleLine(parts)
			if msg != "" {
				fields["roles"] = append(fields["roles"], fmt.Sprintf("Line %d: %s", n+1, msg))
				continue
			}
			if !ref.RequireMFA && require {
				ref.RequireMFA, ref.MFAMethods = true, slices.Clone(methods)
			}
			switch {
			case ref.Access == standingToken:
				ref.Access = ""
			case ref.Access == eligibleToken || eligible:
				anyEligible = true
				ref.Access, ref.Approvers, ref.RequireReason, ref.ReasonPattern = rolemap.AccessEligible, terms.Approvers, terms.RequireReason, terms.ReasonPattern
				if ref.MaxDuration == "" {
					ref.MaxDuration = terms.MaxDuration
				}
			}
			o.grant.Roles = append(o.grant.Roles, ref)
		}
		if !anyEligible && len(fields["roles"]) == 0 {
			onlyEligible(f, fields, "Only for eligible roles: choose Eligible above (or write eligible after a role), or leave this empty.")
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
		o.pattern.RequireMFA, o.pattern.MFAMethods = formMFA(f, fields)
		if eligible, terms := formElevation(f, fields, val); eligible {
			o.pattern.Access, o.pattern.MaxDuration, o.pattern.Approvers = rolemap.AccessEligible, terms.MaxDuration, terms.Approvers
			o.pattern.RequireReason, o.pattern.ReasonPattern = terms.RequireReason, terms.ReasonPattern
		} else {
			onlyEligible(f, fields, "Only for eligible roles: choose Eligible above, or leave this empty.")
		}
	}
	return o, fields
}

// formElevation reads the access radio buttons (eligible is true for
// "eligible") and the fields of eligible roles (max_duration, approvers,
// require_reason, reason_pattern), returned in a RoleRef.
func formElevation(f url.Values, fields map[string][]string, val func(string) string) (bool, rolemap.RoleRef) {
	eligible := false
	switch a := val("access"); a {
	case "", rolemap.AccessStanding:
	case rolemap.AccessEligible:
		eligible = true
	default:
		fields["access"] = append(fields["access"], "Choose standing or eligible.")
	}
	return eligible, rolemap.RoleRef{MaxDuration: val("max_duration"), Approvers: val("approvers"),
		RequireReason: f.Get("require_reason") != "", ReasonPattern: val("reason_pattern")}
}

// onlyEligible reports the fields of eligible roles that are filled in
// although no role is eligible: they would not apply, and a role someone
// meant to be approved must not be granted outright by mistake.
func onlyEligible(f url.Values, fields map[string][]string, msg string) {
	for _, n := range elevationFields {
		if strings.TrimSpace(f.Get(n)) != "" {
			fields[n] = append(fields[n], msg)
		}
	}
}

// roleLine reads one line of a grant form's role list: the role ARN, then
// optionally a session length in seconds, the MFA word (mfaToken) and the
// access word (standing, eligible or eligible=<max duration>), in any
// order. The access word is returned in ref.Access as written.
func roleLine(parts []string) (rolemap.RoleRef, string) {
	const usage = "write the role ARN, optionally followed by a session length in seconds, by mfa or mfa=webauthn,totp, and by standing, eligible or eligible=1h."
	ref := rolemap.RoleRef{ARN: parts[0]}
	seconds := false
	for _, p := range parts[1:] {
		switch {
		case p == standingToken || p == eligibleToken || strings.HasPrefix(p, eligibleToken+"="):
			if ref.Access != "" {
				return ref, usage
			}
			ref.Access = p
			if d, ok := strings.CutPrefix(p, eligibleToken+"="); ok {
				if d == "" {
					return ref, fmt.Sprintf("%q names no duration; write eligible for the maximum duration below, or e.g. eligible=1h.", p)
				}
				ref.Access, ref.MaxDuration = eligibleToken, d
			}
		case p == mfaToken || strings.HasPrefix(p, mfaToken+"="):
			if ref.RequireMFA {
				return ref, usage
			}
			ref.RequireMFA = true
			if list, ok := strings.CutPrefix(p, mfaToken+"="); ok {
				for _, m := range strings.Split(list, ",") {
					if m = strings.TrimSpace(m); m != "" {
						ref.MFAMethods = append(ref.MFAMethods, m)
					}
				}
				if len(ref.MFAMethods) == 0 {
					return ref, fmt.Sprintf("%q names no method; write mfa for any, or mfa=%s.", p, strings.Join(identity.SecondFactors, ","))
				}
			}
		case !seconds && p != "" && strings.Trim(p, "+-0123456789") == "":
			s, err := strconv.Atoi(p)
			if err != nil {
				return ref, fmt.Sprintf("%q is not a number of seconds.", p)
			}
			ref.MaxSessionSeconds, seconds = s, true
		case !seconds && !strings.HasPrefix(strings.ToLower(p), mfaToken):
			return ref, fmt.Sprintf("%q is not a number of seconds.", p)
		default:
			return ref, usage
		}
	}
	return ref, ""
}

// formMFA reads the require_mfa checkbox and the mfa_methods checkboxes.
// Choosing methods implies requiring MFA. Problems (a method the form does
// not offer, recovery codes alone) go to the mfa_methods field.
func formMFA(f url.Values, fields map[string][]string) (bool, []string) {
	var methods []string
	for _, m := range identity.SecondFactors { // strongest first, each once
		if slices.Contains(f["mfa_methods"], m) {
			methods = append(methods, m)
		}
	}
	for _, m := range f["mfa_methods"] {
		if !identity.IsSecondFactor(m) {
			fields["mfa_methods"] = append(fields["mfa_methods"], fmt.Sprintf("%q is not a second factor (%s).", m, strings.Join(identity.SecondFactors, ", ")))
			break
		}
	}
	if len(methods) == 1 && methods[0] == identity.MethodRecovery {
		fields["mfa_methods"] = append(fields["mfa_methods"], "Recovery codes alone cannot be met: a user has them only after setting up a passkey or an authenticator app. Choose one of those too.")
	}
	require := f.Get("require_mfa") != "" || len(methods) > 0
	return require, methods
}

// objectToForm is the form of an existing object.
func objectToForm(o object) map[string]string {
	switch o.kind {
	case kindWorkload:
		return workloadToForm(o.workload)
	case kindAccount:
		a := o.account
		p := a.Partition
		if p == "" {
			p = "aws"
		}
		return map[string]string{"id": a.ID, "name": a.Name, "partition": p, "saml_provider": a.SAMLProvider}
	case kindGrant:
		g := o.grant
		// One MFA setting for all roles goes to the checkboxes; differing
		// ones are written on each line.
		uniform := true
		for _, r := range g.Roles {
			req0, ms0 := g.Roles[0].MFA()
			req, ms := r.MFA()
			uniform = uniform && req == req0 && slices.Equal(ms, ms0)
		}
		var lines []string
		for _, r := range g.Roles {
			line := r.ARN
			if r.MaxSessionSeconds != 0 {
				line += " " + strconv.Itoa(r.MaxSessionSeconds)
			}
			if req, ms := r.MFA(); req && !uniform {
				line += " " + mfaToken
				if len(ms) > 0 {
					line += "=" + strings.Join(ms, ",")
				}
			}
			lines = append(lines, line)
		}
		form := map[string]string{"id": g.ID, "group": g.Group, "roles": strings.Join(lines, "\n"), "description": g.Description}
		if uniform && len(g.Roles) > 0 {
			form["require_mfa"], form["mfa_methods"] = mfaForm(g.Roles[0].MFA())
		}
		return elevationForm(form, g.Roles)
	}
	p := o.pattern
	secs := ""
	if p.MaxSessionSeconds != 0 {
		secs = strconv.Itoa(p.MaxSessionSeconds)
	}
	form := map[string]string{"id": p.ID, "pattern": p.Pattern, "role_arn": p.RoleARN, "max_session_seconds": secs, "description": p.Description}
	form["require_mfa"], form["mfa_methods"] = mfaForm(p.MFA())
	form["access"] = rolemap.AccessStanding
	if p.IsEligible() {
		form["access"], form["max_duration"], form["approvers"] = rolemap.AccessEligible, p.MaxDuration, p.Approvers
		form["require_reason"], form["reason_pattern"] = checkbox(p.RequireReason), p.ReasonPattern
	}
	return form
}

// elevationForm fills the access fields of a grant rule's form and adds
// access words to its role lines where the roles differ: the radio
// buttons say eligible when every role is; otherwise standing, and each
// eligible role's line says eligible. A max duration shared by all the
// eligible roles goes to its field, differing ones to the lines
// (eligible=90m). Approvers and reasons, one set per form, are those of
// the first eligible role; when the eligible roles differ in them the
// form says so ("elevation_note"), as saving it gives them all the same.
func elevationForm(form map[string]string, roles []rolemap.RoleRef) map[string]string {
	form["access"] = rolemap.AccessStanding
	var elig []int
	for i, r := range roles {
		if r.IsEligible() {
			elig = append(elig, i)
		}
	}
	if len(elig) == 0 {
		return form
	}
	form["eligible_roles"] = "on" // for the read-only view
	first := roles[elig[0]]
	all := len(elig) == len(roles)
	sameDuration, sameTerms := true, true
	for _, i := range elig {
		r := roles[i]
		sameDuration = sameDuration && r.MaxDuration == first.MaxDuration
		sameTerms = sameTerms && r.Approvers == first.Approvers && r.RequireReason == first.RequireReason && r.ReasonPattern == first.ReasonPattern
	}
	if all {
		form["access"] = rolemap.AccessEligible
	}
	if sameDuration {
		form["max_duration"] = first.MaxDuration
	}
	form["approvers"], form["require_reason"], form["reason_pattern"] = first.Approvers, checkbox(first.RequireReason), first.ReasonPattern
	if !sameTerms {
		form["elevation_note"] = "The eligible roles of this rule differ in approvers or reasons; the form shows those of the first. " +
			"Saving it gives every eligible role of the rule these. To keep them apart, edit the rules file or use the JSON API."
	}
	if all && sameDuration {
		return form
	}
	lines := strings.Split(form["roles"], "\n")
	for _, i := range elig {
		word := eligibleToken
		if !sameDuration && roles[i].MaxDuration != "" {
			word += "=" + roles[i].MaxDuration
		}
		lines[i] += " " + word
	}
	form["roles"] = strings.Join(lines, "\n")
	return form
}

// checkbox is the form value of a checkbox: "on" or "".
func checkbox(on bool) string {
	if on {
		return "on"
	}
	return ""
}

// mfaForm is the form value of require_mfa ("on" or "") and mfa_methods
// (comma-separated).
func mfaForm(require bool, methods []string) (string, string) {
	if !require {
		return "", ""
	}
	return "on", strings.Join(methods, ",")
}

// formValues keeps what the user typed (for redisplay).
func formValues(k kind, f url.Values) map[string]string {
	out := map[string]string{}
	for _, n := range formFields[k] {
		out[n] = f.Get(n)
	}
	if k == kindGrant || k == kindPattern {
		out["mfa_methods"] = strings.Join(f["mfa_methods"], ",")
	}
	return out
}

// formField maps a problem path relative to an object to its form field:
// "roles[2].arn" -> "roles" (with "Line 3: " in front of the message).
func formField(k kind, rel string, msg string) (string, string) {
	if rel == "" {
		return "", msg
	}
	if k == kindWorkload {
		return workloadFormField(rel, msg)
	}
	name, rest, _ := strings.Cut(rel, ".")
	if i := strings.IndexByte(name, '['); i >= 0 {
		if n, err := strconv.Atoi(strings.TrimSuffix(name[i+1:], "]")); err == nil && k == kindGrant && name[:i] == "roles" {
			switch {
			case strings.HasPrefix(rest, "mfa_methods"):
				msg = "MFA methods: " + msg
			case rest == "access":
				msg = "Access: " + msg
			case rest == "max_duration":
				msg = "Max duration: " + msg
			case rest == "approvers" || rest == "require_reason" || rest == "reason_pattern":
				// One value for the whole form: on its field, once.
				return rest, msg
			}
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
