package rolemap

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
)

// Engine is a compiled RuleSet. It is immutable and safe for concurrent
// use. The zero value is an empty engine that grants nothing.
type Engine struct {
	rs       RuleSet
	accounts map[string]*account // by account ID
	grants   []cgrant
	byDN     map[string][]int32 // normalized DN -> grant indexes
	byCN     map[string][]int32 // folded CN -> grant indexes
	patterns []cpattern
	// Pattern prefilter: patterns anchored at the start are listed under
	// each byte a matching name can start with (firstBytes); the rest are
	// tried on every group name, after a check for their literal prefix.
	patByFirst map[byte][]int32
	patAny     []int32
	tags       []ctag // sorted by key
	// sourceIdentity is the (lowercased) attribute for SourceIdentity.
	sourceIdentity string
	// hasEligible: some role or pattern rule is eligible. When not,
	// Evaluate merges grants without looking for eligible hits.
	hasEligible bool
	// workloads by ID (workload.go).
	workloads map[string]*CompiledWorkload
}

type account struct {
	id, name, partition, provider string
	path                          string // where it was defined, for messages
}

type crole struct {
	arn, name, accountID, accountName, partition, provider string
	seconds                                                int
	// requireMFA and methods (strongest first, nil for any) as the rule
	// says; methods not empty implies requireMFA.
	requireMFA bool
	methods    []string
	// elig is set on eligible roles, nil on standing ones.
	elig *Eligibility
	// rank orders grant rule roles by (accountID, arn), equal for equal
	// ARNs, so that Evaluate sorts by comparing integers; -1 for roles a
	// pattern produced, which are compared by their strings.
	rank int32
}

type cgrant struct {
	id    string
	roles []crole
}

type cpattern struct {
	id      string
	re      *regexp.Regexp
	tmpl    []segment
	seconds int
	// requireMFA, methods and elig as in crole.
	requireMFA bool
	methods    []string
	elig       *Eligibility
	prefix     string // every match starts with it
	anchored   bool   // every match starts at the beginning of the name
}

type ctag struct {
	attr, key  string
	transitive bool
}

// rankRoles sets crole.rank of every grant rule role.
func (e *Engine) rankRoles() {
	var all []*crole
	for i := range e.grants {
		for j := range e.grants[i].roles {
			all = append(all, &e.grants[i].roles[j])
		}
	}
	slices.SortFunc(all, func(a, b *crole) int {
		return cmp.Or(strings.Compare(a.accountID, b.accountID), strings.Compare(a.arn, b.arn))
	})
	rank := int32(-1)
	for i, r := range all {
		if i == 0 || r.arn != all[i-1].arn {
			rank++
		}
		r.rank = rank
	}
}

func (e *Engine) indexPatterns() {
	e.patByFirst = make(map[byte][]int32)
	e.patAny = e.patAny[:0]
	for i, p := range e.patterns {
		set, ok := firstBytes(p.re.String())
		if !ok {
			e.patAny = append(e.patAny, int32(i))
			continue
		}
		for c := range set {
			if set[c] {
				e.patByFirst[byte(c)] = append(e.patByFirst[byte(c)], int32(i))
			}
		}
	}
}

// RuleSet returns a copy of the rule set the engine was compiled from.
func (e *Engine) RuleSet() RuleSet { return e.rs.clone() }

// hit is one (rule, group) that gave a role, before de-duplication.
type hit struct {
	role   *crole
	ruleID string
	kind   string
	group  string
}

// Evaluate computes a user's grants, tags and source identity. It never
// fails: whatever cannot be used is left out and listed in Dropped. The
// result does not depend on the order of in.Groups or of the rules.
func (e *Engine) Evaluate(in Input) Result {
	var (
		hits    = make([]hit, 0, 2*len(in.Groups))
		dropped []Problem
		buf     = make([]byte, 0, 256) // keys, looked up as m[string(buf)] without allocating
	)
	for i := range in.Groups {
		g := &in.Groups[i]
		label := g.DN
		if label == "" {
			label = g.Name
		}
		if len(e.byDN) > 0 && g.DN != "" {
			var ok bool
			if buf, ok = appendNormDNFast(buf[:0], g.DN); ok {
				hits = e.grantHits(hits, e.byDN[string(buf)], label)
			} else if k, ok := normDNParsed(g.DN); ok {
				hits = e.grantHits(hits, e.byDN[k], label)
			}
		}
		if len(e.byCN) > 0 && g.Name != "" {
			buf = appendFold(buf[:0], g.Name)
			hits = e.grantHits(hits, e.byCN[string(buf)], label)
		}
		if len(e.patterns) > 0 && g.Name != "" {
			hits, dropped = e.patternHits(hits, dropped, g.Name, label)
		}
	}
	var res Result
	res.Grants, res.Eligible, dropped = merge(hits, dropped, e.hasEligible)
	res.Tags, dropped = e.evalTags(in, dropped)
	res.SourceIdentity, dropped = e.evalSourceIdentity(in, dropped)
	if len(dropped) > 1 {
		slices.SortFunc(dropped, func(a, b Problem) int {
			return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Message, b.Message))
		})
		dropped = slices.Compact(dropped)
	}
	res.Dropped = dropped
	return res
}

func (e *Engine) grantHits(hits []hit, idx []int32, label string) []hit {
	for _, i := range idx {
		g := &e.grants[i]
		for j := range g.roles {
			hits = append(hits, hit{role: &g.roles[j], ruleID: g.id, kind: KindGrant, group: label})
		}
	}
	return hits
}

func (e *Engine) patternHits(hits []hit, dropped []Problem, name, label string) ([]hit, []Problem) {
	for _, i := range e.patByFirst[name[0]] {
		if p := &e.patterns[i]; !p.anchored || strings.HasPrefix(name, p.prefix) {
			hits, dropped = e.tryPattern(hits, dropped, p, name, label)
		}
	}
	for _, i := range e.patAny {
		if p := &e.patterns[i]; p.prefix == "" || strings.Contains(name, p.prefix) {
			hits, dropped = e.tryPattern(hits, dropped, p, name, label)
		}
	}
	return hits, dropped
}

func (e *Engine) tryPattern(hits []hit, dropped []Problem, p *cpattern, name, label string) ([]hit, []Problem) {
	loc := p.re.FindStringSubmatchIndex(name)
	if loc == nil {
		return hits, dropped
	}
	arn := expand(p.tmpl, name, loc)
	path := "patterns[" + p.id + "].role_arn"
	a, err := awsfed.ParseRoleARN(arn)
	if err != nil {
		return hits, append(dropped, Problem{Path: path, Message: fmt.Sprintf("group %s gives %s: %v", awsfed.Quote(name), awsfed.Quote(arn), err)})
	}
	if msg := checkAccount(a, e.accounts); msg != "" {
		return hits, append(dropped, Problem{Path: path, Message: fmt.Sprintf("group %s gives %s: %s", awsfed.Quote(name), awsfed.Quote(arn), msg)})
	}
	acc := e.accounts[a.Account]
	r := &crole{arn: arn, name: a.Name, accountID: a.Account, accountName: acc.name, partition: a.Partition, provider: acc.provider, seconds: p.seconds,
		requireMFA: p.requireMFA, methods: p.methods, elig: p.elig, rank: -1}
	return append(hits, hit{role: r, ruleID: p.id, kind: KindPattern, group: label}), dropped
}

// merge sorts the hits by account, role ARN, rule ID and group, and makes
// one Grant per role ARN. MFA lists that cannot be combined are reported
// in dropped. When the engine has eligible roles (hasEligible), a role
// that some hit gives as standing is a standing grant made from its
// standing hits only; a role that only eligible hits give goes to
// eligible.
func merge(hits []hit, dropped []Problem, hasEligible bool) (standing, eligible []Grant, _ []Problem) {
	if len(hits) == 0 {
		return nil, nil, dropped
	}
	// Sort indexes rather than the hits themselves: moving hits (which
	// hold pointers) costs write barriers; ints do not.
	order := make([]int32, len(hits))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &hits[i], &hits[j]
		c := 0
		if a.role.rank >= 0 && b.role.rank >= 0 {
			c = cmp.Compare(a.role.rank, b.role.rank)
		} else {
			c = cmp.Or(strings.Compare(a.role.accountID, b.role.accountID), strings.Compare(a.role.arn, b.role.arn))
		}
		if c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.ruleID, b.ruleID), strings.Compare(a.group, b.group))
	})
	out := make([]Grant, 0, len(hits))
	ids := make([]string, 0, len(hits)) // one backing array for every Grant.Rules
	var scratch []int32                 // the standing hits of a role with both kinds
	for i := 0; i < len(order); {
		j := i + 1
		for arn := hits[order[i]].role.arn; j < len(order) && hits[order[j]].role.arn == arn; j++ {
		}
		idx, elig := order[i:j], false
		if hasEligible {
			idx, elig, scratch = standingHits(hits, idx, scratch)
		}
		h := &hits[idx[0]]
		r := h.role
		g := Grant{RoleARN: r.arn, ProviderARN: r.provider, AccountID: r.accountID, AccountName: r.accountName,
			Partition: r.partition, RoleName: r.name, SessionSeconds: r.seconds,
			RuleID: h.ruleID, RuleKind: h.kind, Group: h.group}
		first := len(ids)
		ids = append(ids, h.ruleID)
		mfa := r.requireMFA
		for _, k := range idx[1:] {
			hk := &hits[k]
			g.SessionSeconds = max(g.SessionSeconds, hk.role.seconds)
			mfa = mfa || hk.role.requireMFA
			if id := hk.ruleID; id != ids[len(ids)-1] {
				ids = append(ids, id)
			}
		}
		g.Rules = ids[first:len(ids):len(ids)]
		if mfa {
			g.RequireMFA = true
			g.MFAMethods, dropped = mergeMethods(hits, idx, dropped)
		}
		if elig {
			el := *r.elig
			g.Eligible = &el
			eligible = append(eligible, g)
		} else {
			out = append(out, g)
		}
		i = j
	}
	if len(out) == 0 {
		out = nil
	}
	return out, eligible, dropped
}

// standingHits returns the hits of one role (idx, sorted) that count: all
// of them, eligible ones, when none is standing (then elig is true); else
// the standing ones only, copied into scratch when some are eligible.
func standingHits(hits []hit, idx, scratch []int32) (_ []int32, elig bool, _ []int32) {
	n := 0
	for _, k := range idx {
		if hits[k].role.elig == nil {
			n++
		}
	}
	switch n {
	case 0:
		return idx, true, scratch
	case len(idx):
		return idx, false, scratch
	}
	scratch = scratch[:0]
	for _, k := range idx {
		if hits[k].role.elig == nil {
			scratch = append(scratch, k)
		}
	}
	return scratch, false, scratch
}

// mergeMethods combines the MFA method lists of the hits of one role
// (idx, in rule ID order): the intersection of the non-empty lists, nil
// when none has one. A list that shares no method with the intersection
// of the lists before it is left out and reported, so that the role keeps
// a method a user can meet (and MFA stays required).
func mergeMethods(hits []hit, idx []int32, dropped []Problem) ([]string, []Problem) {
	var (
		acc  []string
		from []string // IDs of the rules whose lists made acc
	)
	for _, k := range idx {
		h := &hits[k]
		ms := h.role.methods
		switch {
		case len(ms) == 0:
		case acc == nil:
			acc, from = slices.Clone(ms), []string{h.ruleID}
		case slices.Contains(from, h.ruleID):
			// the same rule through another group: the same list
		default:
			inter := make([]string, 0, len(acc))
			for _, m := range acc {
				if slices.Contains(ms, m) {
					inter = append(inter, m)
				}
			}
			if len(inter) == 0 {
				dropped = append(dropped, Problem{Path: kindKey(h.kind) + "[" + h.ruleID + "].mfa_methods",
					Message: fmt.Sprintf("role %s: mfa_methods %s share no method with %s of %s; this list is left out and the role takes %s",
						h.role.arn, strings.Join(ms, ", "), strings.Join(acc, ", "), ruleNames(from), strings.Join(acc, ", "))})
				continue
			}
			acc, from = inter, append(from, h.ruleID)
		}
	}
	return acc, dropped
}

// ruleNames is "rule a" or "rules a, b".
func ruleNames(ids []string) string {
	if len(ids) == 1 {
		return "rule " + ids[0]
	}
	return "rules " + strings.Join(ids, ", ")
}

// kindKey is the rule set key of a rule kind: "grants" or "patterns".
func kindKey(kind string) string {
	if kind == KindPattern {
		return "patterns"
	}
	return "grants"
}

// values returns the distinct non-empty values of a user attribute.
func values(in Input, attr string) []string {
	var vs []string
	switch attr {
	case AttrUsername:
		vs = []string{in.Username}
	case AttrEmail:
		vs = []string{in.Email}
	case AttrDisplayName:
		vs = []string{in.DisplayName}
	default:
		vs = in.Attributes[attr]
	}
	var out []string
	for _, v := range vs {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// evalTags builds the session tags. An attribute the user lacks gives no
// tag. An attribute with more than one distinct value gives no tag either
// (AWS takes one value per tag, item 14, and directories do not order
// values, so picking one would be arbitrary), and is reported; so is a
// value outside the tag limits.
func (e *Engine) evalTags(in Input, dropped []Problem) ([]Tag, []Problem) {
	var tags []Tag
	for _, t := range e.tags {
		vs := values(in, t.attr)
		path := "tags[" + t.key + "]"
		switch {
		case len(vs) == 0:
		case len(vs) > 1:
			dropped = append(dropped, Problem{Path: path, Message: fmt.Sprintf("attribute %q has %d values; a session tag carries one, so it is left out", t.attr, len(vs))})
		default:
			if err := awsfed.ValidTagValue(vs[0]); err != nil {
				dropped = append(dropped, Problem{Path: path, Message: fmt.Sprintf("attribute %q: %v", t.attr, err)})
				continue
			}
			tags = append(tags, Tag{Key: t.key, Value: vs[0], Transitive: t.transitive})
		}
	}
	return tags, dropped
}

func (e *Engine) evalSourceIdentity(in Input, dropped []Problem) (string, []Problem) {
	if e.sourceIdentity == "" {
		return "", dropped
	}
	vs := values(in, e.sourceIdentity)
	switch {
	case len(vs) == 0:
		return "", dropped
	case len(vs) > 1:
		return "", append(dropped, Problem{Path: "source_identity", Message: fmt.Sprintf("attribute %q has %d values; SourceIdentity takes one, so it is left out", e.sourceIdentity, len(vs))})
	}
	if err := awsfed.ValidSourceIdentity(vs[0]); err != nil {
		return "", append(dropped, Problem{Path: "source_identity", Message: fmt.Sprintf("attribute %q: %v", e.sourceIdentity, err)})
	}
	return vs[0], dropped
}

// TestGroup returns the standing grants a member of just this one group
// would get (grant and pattern rules): the pattern tester. group is a name
// (CN), or a DN when it contains "=" and parses as one (then its first RDN
// value is the name). TestGroupResult also gives the eligible roles.
func (e *Engine) TestGroup(group string) []Grant {
	return e.TestGroupResult(group).Grants
}

// TestGroupResult is Evaluate for a member of just this one group (as in
// TestGroup) with no attributes: its Grants are the standing roles, its
// Eligible the roles the member could request, Dropped what the rules
// could not give.
func (e *Engine) TestGroupResult(group string) Result {
	return e.Evaluate(Input{Groups: []identity.Group{GroupFromString(group)}})
}

// GroupFromString turns what an admin typed (a group name or a DN) into a
// Group: a string with "=" that parses as a DN is taken as the DN, with its
// first RDN value as Name; anything else is a Name.
func GroupFromString(s string) identity.Group {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "=") {
		if _, ok := normDN(s); ok {
			return identity.Group{DN: s, Name: firstRDNValue(s), Direct: true}
		}
	}
	return identity.Group{Name: s, Direct: true}
}
