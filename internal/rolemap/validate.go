package rolemap

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
)

// Validate reports every problem of rs at once, in document order. An
// empty result means Compile will succeed.
func (rs RuleSet) Validate() []Problem {
	_, ps := build(rs)
	return ps
}

// Compile validates rs and builds its Engine. It refuses a set with
// problems: the error is an *Error listing all of them.
func Compile(rs RuleSet) (*Engine, error) {
	e, ps := build(rs)
	if len(ps) > 0 {
		return nil, &Error{Op: "compile", Problems: ps}
	}
	return e, nil
}

// builder collects problems while building an Engine.
type builder struct {
	e        *Engine
	problems []Problem
	ruleIDs  map[string]string // rule ID -> path of its first use
}

func (b *builder) add(path, format string, args ...any) {
	b.problems = append(b.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// build validates rs and, as it goes, compiles it. The Engine is only
// meaningful when there are no problems.
func build(rs RuleSet) (*Engine, []Problem) {
	b := &builder{
		e: &Engine{
			rs:       rs.clone(),
			accounts: make(map[string]*account, len(rs.Accounts)),
			byDN:     make(map[string][]int32),
			byCN:     make(map[string][]int32),
		},
		ruleIDs: make(map[string]string),
	}
	b.accounts(rs.Accounts)
	b.grants(rs.Grants)
	b.e.rankRoles()
	b.patterns(rs.Patterns)
	b.tags(rs.Tags)
	b.workloads(rs.Workloads)
	return b.e, b.problems
}

func (b *builder) accounts(list []Account) {
	if len(list) > MaxAccounts {
		b.add("accounts", "%d accounts; at most %d are allowed", len(list), MaxAccounts)
	}
	names := make(map[string]string, len(list))
	for i, a := range list {
		path := "accounts[" + strconv.Itoa(i) + "]"
		ok := true
		if err := awsfed.ValidAccountID(a.ID); err != nil {
			b.add(path+".id", "must be 12 digits, got %s", awsfed.Quote(a.ID))
			ok = false
		} else if prev, dup := b.e.accounts[a.ID]; dup {
			b.add(path+".id", "duplicate account ID %s (also %s)", a.ID, prev.path)
			ok = false
		}
		if msg := checkText(a.Name, maxNameLength); msg != "" {
			b.add(path+".name", "%s", msg)
		} else if prev, dup := names[fold(a.Name)]; dup {
			b.add(path+".name", "duplicate account name %s (also %s; names are compared case-insensitively)", awsfed.Quote(a.Name), prev)
		} else {
			names[fold(a.Name)] = path
		}
		part := a.PartitionID()
		if _, known := awsfed.LookupPartition(part); !known {
			b.add(path+".partition", "unknown partition %s (want one of %s)", awsfed.Quote(a.Partition), strings.Join(awsfed.PartitionIDs(), ", "))
			ok = false
		}
		provider := ""
		if err := awsfed.ValidSAMLProviderName(a.SAMLProvider); err != nil {
			b.add(path+".saml_provider", "must be the IAM SAML provider name, 1–%d characters of [A-Za-z0-9_.-], got %s", awsfed.MaxProviderNameLength, awsfed.Quote(a.SAMLProvider))
		} else if ok {
			provider, _ = awsfed.ProviderARN(part, a.ID, a.SAMLProvider)
		}
		if ok {
			b.e.accounts[a.ID] = &account{id: a.ID, name: a.Name, partition: part, provider: provider, path: path}
		}
	}
}

// checkText checks a required display text: non-empty, valid UTF-8, no
// control characters, no surrounding spaces, at most max runes.
func checkText(s string, max int) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is required"
	case s != strings.TrimSpace(s):
		return "has leading or trailing spaces"
	}
	return checkOptionalText(s, max, false)
}

func checkOptionalText(s string, max int, newlines bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("is %d characters long; at most %d allowed", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(newlines && (r == '\n' || r == '\t')) {
			return fmt.Sprintf("has the control character %q", r)
		}
	}
	return ""
}

func (b *builder) ruleID(path, id string) {
	switch {
	case id == "":
		b.add(path+".id", "is required")
	case len(id) > maxIDLength || strings.TrimLeft(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		b.add(path+".id", "must be 1–%d characters of a-z, 0-9 and -, got %s", maxIDLength, awsfed.Quote(id))
	default:
		if prev, dup := b.ruleIDs[id]; dup {
			b.add(path+".id", "duplicate rule ID %q (also %s); IDs are unique across grants and patterns", id, prev)
		} else {
			b.ruleIDs[id] = path
		}
	}
}

// roleARN checks the role ARN at path (roles[j] of a list): its grammar,
// a catalogued account of the right partition, and not listed twice in
// seen (which it joins), where says where ("in this rule").
func (b *builder) roleARN(path, arn string, j int, seen map[string]int, where string) (awsfed.RoleARN, bool) {
	a, err := awsfed.ParseRoleARN(arn)
	if err != nil {
		b.add(path+".arn", "%v", err)
		return a, false
	}
	if msg := checkAccount(a, b.e.accounts); msg != "" {
		b.add(path+".arn", "%s", msg)
		return a, false
	}
	if k, dup := seen[arn]; dup {
		b.add(path+".arn", "role listed twice %s (also roles[%d])", where, k)
		return a, false
	}
	seen[arn] = j
	return a, true
}

func checkSeconds(s int) string {
	if s == 0 || s >= MinSessionSeconds && s <= MaxSessionSeconds {
		return ""
	}
	return fmt.Sprintf("must be 0 (none) or %d–%d seconds, got %d", MinSessionSeconds, MaxSessionSeconds, s)
}

// mfa checks the mfa_methods of the role or pattern rule at path: each a
// second factor (identity.SecondFactors), none twice, and not recovery
// codes alone. It returns what the engine uses: whether MFA is required
// (mfa_methods implies it) and the known methods in identity.SecondFactors
// order (strongest first), nil for any.
func (b *builder) mfa(path string, require bool, methods []string) (bool, []string) {
	seen := make(map[string]int, len(methods))
	for i, m := range methods {
		mpath := path + ".mfa_methods[" + strconv.Itoa(i) + "]"
		k, dup := seen[m]
		switch {
		case identity.IsSecondFactor(strings.ToLower(strings.TrimSpace(m))) && !identity.IsSecondFactor(m):
			b.add(mpath, "write %s as %q (lower case, no spaces)", awsfed.Quote(m), strings.ToLower(strings.TrimSpace(m)))
		case !identity.IsSecondFactor(m):
			b.add(mpath, "unknown method %s; the second factors are %s", awsfed.Quote(m), strings.Join(identity.SecondFactors, ", "))
		case dup:
			b.add(mpath, "%q is listed twice (also mfa_methods[%d])", m, k)
		default:
			seen[m] = i
		}
	}
	if len(methods) == 1 && methods[0] == identity.MethodRecovery {
		b.add(path+".mfa_methods", "recovery alone cannot be met: a recovery code stands in for a lost factor, and a user has codes only "+
			"after enrolling %s or %s; add one of them", identity.MethodWebAuthn, identity.MethodTOTP)
	}
	var out []string
	for _, f := range identity.SecondFactors {
		if _, ok := seen[f]; ok {
			out = append(out, f)
		}
	}
	return require || len(methods) > 0, out
}

// Limits of the eligibility fields.
const (
	MinElevationSeconds = 900  // max_duration lower bound (15m)
	maxReasonPattern    = 1024 // bytes of reason_pattern
	defaultSessionSecs  = 3600 // AWS's SessionDuration when none is sent
)

// elig holds the eligibility fields of a role or pattern rule.
type elig struct {
	access, maxDuration, approvers string
	requireReason                  bool
	reasonPattern                  string
	sessionSeconds                 int // max_session_seconds of the role (0: none)
}

func roleElig(r RoleRef) elig {
	return elig{r.Access, r.MaxDuration, r.Approvers, r.RequireReason, r.ReasonPattern, r.MaxSessionSeconds}
}

func patternElig(p PatternRule) elig {
	return elig{p.Access, p.MaxDuration, p.Approvers, p.RequireReason, p.ReasonPattern, p.MaxSessionSeconds}
}

// eligibility checks the access, max_duration, approvers, require_reason
// and reason_pattern of the role or pattern rule at path. It returns the
// compiled Eligibility of an eligible role, nil for a standing one (or
// when access is invalid).
func (b *builder) eligibility(path string, f elig) *Eligibility {
	eligible, known := false, true
	switch f.access {
	case "", AccessStanding:
	case AccessEligible:
		eligible = true
	default:
		known = false
		if l := strings.ToLower(strings.TrimSpace(f.access)); l == AccessStanding || l == AccessEligible {
			b.add(path+".access", "write %s as %q (lower case, no spaces)", awsfed.Quote(f.access), l)
		} else {
			b.add(path+".access", "unknown access %s; want %q or %q (empty means %s)", awsfed.Quote(f.access), AccessStanding, AccessEligible, AccessStanding)
		}
	}
	if !eligible && known {
		// A standing role takes none of the elevation fields.
		only := func(key string) {
			b.add(path+"."+key, "only applies to eligible roles (access: %s); this role is standing", AccessEligible)
		}
		if f.maxDuration != "" {
			only("max_duration")
		}
		if f.approvers != "" {
			only("approvers")
		}
		if f.requireReason {
			only("require_reason")
		}
		if f.reasonPattern != "" {
			only("reason_pattern")
		}
		return nil
	}
	e := &Eligibility{Approvers: f.approvers, RequireReason: f.requireReason || f.reasonPattern != "", ReasonPattern: f.reasonPattern}
	ok := true
	session := f.sessionSeconds
	if session == 0 {
		session = defaultSessionSecs
	}
	if f.maxDuration == "" {
		e.MaxSeconds = session
	} else if secs, msg := checkMaxDuration(f.maxDuration, f.sessionSeconds); msg != "" {
		b.add(path+".max_duration", "%s", msg)
		ok = false
	} else {
		e.MaxSeconds = secs
	}
	if f.approvers != "" {
		if key, _ := b.groupKey(path+".approvers", f.approvers); key == "" {
			ok = false
		}
	}
	if f.reasonPattern != "" {
		if len(f.reasonPattern) > maxReasonPattern {
			b.add(path+".reason_pattern", "is %d bytes long; at most %d allowed", len(f.reasonPattern), maxReasonPattern)
			ok = false
		} else if re, err := regexp.Compile(f.reasonPattern); err != nil {
			b.add(path+".reason_pattern", "not a valid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			ok = false
		} else {
			e.re = re
		}
	}
	if !ok || !eligible {
		return nil
	}
	return e
}

// checkMaxDuration parses a max_duration against the role's
// max_session_seconds (0: AWS's default of 1h) and returns its seconds,
// or a message saying what is wrong.
func checkMaxDuration(s string, sessionSeconds int) (int, string) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("not a duration: write it like \"1h\", \"90m\" or \"1h30m\", got %s", awsfed.Quote(s))
	}
	if d%time.Second != 0 {
		return 0, fmt.Sprintf("must be whole seconds, got %s", awsfed.Quote(s))
	}
	if d < MinElevationSeconds*time.Second {
		return 0, fmt.Sprintf("must be at least %s, got %s", ShortDuration(MinElevationSeconds), awsfed.Quote(s))
	}
	secs := int(d / time.Second)
	if checkSeconds(sessionSeconds) != "" {
		return secs, "" // max_session_seconds is reported on its own
	}
	switch {
	case sessionSeconds == 0 && secs > defaultSessionSecs:
		return 0, fmt.Sprintf("is %s, longer than the role's session length of %s (max_session_seconds is not set, so AWS's default of 1h applies): "+
			"AWS sessions of the role end then; set max_session_seconds to allow longer", ShortDuration(secs), ShortDuration(defaultSessionSecs))
	case sessionSeconds > 0 && secs > sessionSeconds:
		return 0, fmt.Sprintf("is %s, longer than the role's session length of %s (max_session_seconds %d): AWS sessions of the role end then",
			ShortDuration(secs), ShortDuration(sessionSeconds), sessionSeconds)
	}
	return secs, ""
}

// ShortDuration writes seconds the way max_duration takes them, without
// zero units: 3600 is "1h", 5400 "1h30m", 45 "45s".
func ShortDuration(secs int) string {
	if secs <= 0 {
		return "0s"
	}
	h, m, s := secs/3600, secs/60%60, secs%60
	var b strings.Builder
	if h > 0 {
		b.WriteString(strconv.Itoa(h) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.Itoa(m) + "m")
	}
	if s > 0 {
		b.WriteString(strconv.Itoa(s) + "s")
	}
	return b.String()
}

// grantSeen remembers, per group key and role ARN, the first rule that
// granted it, to find conflicting session lengths.
type grantSeen struct {
	path    string
	id      string
	seconds int
}

func (b *builder) grants(list []GrantRule) {
	if len(list) > MaxGrants {
		b.add("grants", "%d grant rules; at most %d are allowed", len(list), MaxGrants)
		return
	}
	b.e.grants = make([]cgrant, 0, len(list))
	seen := make(map[string]grantSeen)
	for i, g := range list {
		path := "grants[" + strconv.Itoa(i) + "]"
		b.ruleID(path, g.ID)
		if msg := checkOptionalText(g.Description, maxDescription, true); msg != "" {
			b.add(path+".description", "%s", msg)
		}
		key, byDN := b.groupKey(path+".group", g.Group)
		if len(g.Roles) == 0 {
			b.add(path+".roles", "a grant rule needs at least one role")
		} else if len(g.Roles) > MaxRolesPerGrant {
			b.add(path+".roles", "%d roles; at most %d per rule", len(g.Roles), MaxRolesPerGrant)
			continue
		}
		cg := cgrant{id: g.ID, roles: make([]crole, 0, len(g.Roles))}
		inRule := make(map[string]int, len(g.Roles))
		for j, r := range g.Roles {
			rpath := path + ".roles[" + strconv.Itoa(j) + "]"
			if msg := checkSeconds(r.MaxSessionSeconds); msg != "" {
				b.add(rpath+".max_session_seconds", "%s", msg)
			}
			requireMFA, methods := b.mfa(rpath, r.RequireMFA, r.MFAMethods)
			el := b.eligibility(rpath, roleElig(r))
			a, ok := b.roleARN(rpath, r.ARN, j, inRule, "in this rule")
			if !ok {
				continue
			}
			if key != "" {
				sk := key + "\x00" + r.ARN
				if prev, ok := seen[sk]; ok && prev.seconds != r.MaxSessionSeconds {
					b.add(rpath+".max_session_seconds", "conflicts with %s (rule %q): same group and role with max_session_seconds %d, here %d",
						prev.path, prev.id, prev.seconds, r.MaxSessionSeconds)
				} else if !ok {
					seen[sk] = grantSeen{path: rpath, id: g.ID, seconds: r.MaxSessionSeconds}
				}
			}
			acc := b.e.accounts[a.Account]
			cg.roles = append(cg.roles, crole{arn: r.ARN, name: a.Name, accountID: a.Account, accountName: acc.name,
				partition: a.Partition, provider: acc.provider, seconds: r.MaxSessionSeconds, requireMFA: requireMFA, methods: methods, elig: el})
			if el != nil {
				b.e.hasEligible = true
			}
		}
		if key == "" {
			continue
		}
		idx := int32(len(b.e.grants))
		b.e.grants = append(b.e.grants, cg)
		if byDN {
			b.e.byDN[key[1:]] = append(b.e.byDN[key[1:]], idx)
		} else {
			b.e.byCN[key[1:]] = append(b.e.byCN[key[1:]], idx)
		}
	}
}

// groupKey checks a grant rule's group and returns its lookup key ("D" +
// normalized DN, or "C" + folded CN), "" when invalid.
func (b *builder) groupKey(path, g string) (key string, byDN bool) {
	if msg := checkText(g, maxGroupLength); msg != "" {
		b.add(path, "%s", msg)
		return "", false
	}
	if !strings.Contains(g, "=") {
		return "C" + fold(g), false
	}
	k, ok := normDN(g)
	if !ok {
		reason := "it has no RDN"
		if _, err := goldap.ParseDN(g); err != nil {
			reason = err.Error()
		}
		b.add(path, "contains \"=\" but is not a valid DN (%s); a group name with \"=\" must be given as a full DN", reason)
		return "", false
	}
	return "D" + k, true
}

func (b *builder) patterns(list []PatternRule) {
	if len(list) > MaxPatterns {
		b.add("patterns", "%d pattern rules; at most %d are allowed", len(list), MaxPatterns)
		return
	}
	for i, p := range list {
		path := "patterns[" + strconv.Itoa(i) + "]"
		b.ruleID(path, p.ID)
		if msg := checkOptionalText(p.Description, maxDescription, true); msg != "" {
			b.add(path+".description", "%s", msg)
		}
		if msg := checkSeconds(p.MaxSessionSeconds); msg != "" {
			b.add(path+".max_session_seconds", "%s", msg)
		}
		requireMFA, methods := b.mfa(path, p.RequireMFA, p.MFAMethods)
		el := b.eligibility(path, patternElig(p))
		cp, ok := b.compilePattern(path, p)
		cp.requireMFA, cp.methods, cp.elig = requireMFA, methods, el
		if ok {
			b.e.patterns = append(b.e.patterns, cp)
			if el != nil {
				b.e.hasEligible = true
			}
		}
	}
	b.e.indexPatterns()
}

func (b *builder) compilePattern(path string, p PatternRule) (cpattern, bool) {
	cp := cpattern{id: p.ID, seconds: p.MaxSessionSeconds}
	switch {
	case p.Pattern == "":
		b.add(path+".pattern", "is required")
		return cp, false
	case len(p.Pattern) > maxPatternLength:
		b.add(path+".pattern", "longer than %d bytes", maxPatternLength)
		return cp, false
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		b.add(path+".pattern", "not a valid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return cp, false
	}
	cp.re = re
	cp.prefix = literalPrefix(re)
	cp.anchored = anchoredAtStart(p.Pattern)
	names := make(map[string]int)
	for i, n := range re.SubexpNames() {
		if n != "" {
			names[n] = i
		}
	}
	switch {
	case p.RoleARN == "":
		b.add(path+".role_arn", "is required")
		return cp, false
	case len(p.RoleARN) > maxTemplate:
		b.add(path+".role_arn", "longer than %d bytes", maxTemplate)
		return cp, false
	}
	segs, errs := parseTemplate(p.RoleARN, names)
	for _, e := range errs {
		b.add(path+".role_arn", "%s", e)
	}
	if len(errs) > 0 {
		return cp, false
	}
	if msg := checkTemplate(segs, b.e.accounts); msg != "" {
		b.add(path+".role_arn", "can never give a valid role ARN: %s", msg)
		return cp, false
	}
	cp.tmpl = segs
	return cp, true
}

// anchoredAtStart reports whether every match of the pattern starts at the
// beginning of the text (it begins with ^ or \A outside multi-line mode).
func anchoredAtStart(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	re = re.Simplify()
	for {
		switch re.Op {
		case syntax.OpBeginText:
			return true
		case syntax.OpConcat, syntax.OpCapture:
			if len(re.Sub) == 0 {
				return false
			}
			re = re.Sub[0]
		default:
			return false
		}
	}
}

// Special tag attribute names: the user's own fields.
const (
	AttrUsername    = "username"
	AttrEmail       = "email"
	AttrDisplayName = "display_name"
)

func (b *builder) tags(t TagRules) {
	if len(t.Attributes) > MaxTagAttributes {
		b.add("tags.attributes", "%d tag rules; AWS allows at most %d session tags", len(t.Attributes), MaxTagAttributes)
	}
	keys := make(map[string]string, len(t.Attributes))
	for i, a := range t.Attributes {
		path := "tags.attributes[" + strconv.Itoa(i) + "]"
		okAttr := b.attribute(path+".attribute", a.Attribute)
		okKey := true
		if err := awsfed.ValidTagKey(a.Key); err != nil {
			b.add(path+".key", "%v", err)
			okKey = false
		} else if prev, dup := keys[fold(a.Key)]; dup {
			b.add(path+".key", "duplicate tag key %s (also %s); AWS compares tag keys case-insensitively", awsfed.Quote(a.Key), prev)
			okKey = false
		} else {
			keys[fold(a.Key)] = path
		}
		if okAttr && okKey {
			b.e.tags = append(b.e.tags, ctag{attr: strings.ToLower(a.Attribute), key: a.Key, transitive: a.Transitive})
		}
	}
	slices.SortFunc(b.e.tags, func(x, y ctag) int { return strings.Compare(x.key, y.key) })
	if t.SourceIdentity != "" && b.attribute("tags.source_identity", t.SourceIdentity) {
		b.e.sourceIdentity = strings.ToLower(t.SourceIdentity)
	}
}

// attribute checks an attribute name: one of the special names, or an LDAP
// attribute description (a letter, then letters, digits and '-') or OID.
func (b *builder) attribute(path, name string) bool {
	switch strings.ToLower(name) {
	case AttrUsername, AttrEmail, AttrDisplayName:
		return true
	case "":
		b.add(path, "is required")
		return false
	}
	if len(name) > maxAttrName || !validAttrName(name) {
		b.add(path, "%s is not an attribute name: use %q, %q, %q or a directory attribute (a letter, then letters, digits, -)",
			awsfed.Quote(name), AttrUsername, AttrEmail, AttrDisplayName)
		return false
	}
	return true
}

func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' { // numericoid: digits and dots
		return strings.Trim(s, "0123456789.") == "" && !strings.Contains(s, "..") && s[len(s)-1] != '.'
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// CheckFetched reports each tag rule (tags.attributes[i].attribute,
// tags.source_identity) whose value would come from a directory attribute
// missing from fetched: the attributes the directory reads for every user
// (directory.attributes.extra), compared case-insensitively. Such a rule
// gives no tag to anyone, silently. Validate cannot see this, since a rule
// set does not know the directory's configuration: call both where both
// are known. Names Validate refuses are left to it.
func (rs RuleSet) CheckFetched(fetched []string) []Problem {
	have := make(map[string]bool, len(fetched))
	for _, f := range fetched {
		have[strings.ToLower(f)] = true
	}
	missing := func(name string) bool {
		switch l := strings.ToLower(name); {
		case l == AttrUsername, l == AttrEmail, l == AttrDisplayName:
			return false
		case len(name) > maxAttrName || !validAttrName(name):
			return false
		default:
			return !have[l]
		}
	}
	const msg = "%s is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or %s"
	var ps []Problem
	for i, a := range rs.Tags.Attributes {
		if missing(a.Attribute) {
			ps = append(ps, Problem{Path: "tags.attributes[" + strconv.Itoa(i) + "].attribute",
				Message: fmt.Sprintf(msg, awsfed.Quote(a.Attribute), "no user ever gets this tag")})
		}
	}
	if s := rs.Tags.SourceIdentity; s != "" && missing(s) {
		ps = append(ps, Problem{Path: "tags.source_identity",
			Message: fmt.Sprintf(msg, awsfed.Quote(s), "no session ever gets a source identity")})
	}
	return ps
}
