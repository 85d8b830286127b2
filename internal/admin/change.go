package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// kind is one kind of object in the rule set.
type kind int

const (
	kindAccount kind = iota
	kindGrant
	kindPattern
	kindWorkload
)

// key is the name of the kind's list in the rule set (and in problem paths).
func (k kind) key() string { return [...]string{"accounts", "grants", "patterns", "workloads"}[k] }

// action is the audit action prefix.
func (k kind) action() string {
	return [...]string{"rules.account", "rules.grant", "rules.pattern", "rules.workload"}[k]
}

func (k kind) noun() string {
	return [...]string{"account", "grant rule", "pattern rule", "workload"}[k]
}

// errNoObject: the ID is not in the current rule set.
var errNoObject = errors.New("no such object")

// errExists: create with an ID that is taken.
var errExists = errors.New("id already exists")

// problemsError: the edited rule set does not validate; nothing was saved.
type problemsError struct{ problems []rolemap.Problem }

func (e *problemsError) Error() string {
	parts := make([]string, len(e.problems))
	for i, p := range e.problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "invalid rules: " + strings.Join(parts, "; ")
}

// object is one account, grant rule, pattern rule or workload.
type object struct {
	kind     kind
	account  rolemap.Account
	grant    rolemap.GrantRule
	pattern  rolemap.PatternRule
	workload rolemap.Workload
}

func (o object) id() string {
	switch o.kind {
	case kindAccount:
		return o.account.ID
	case kindGrant:
		return o.grant.ID
	case kindWorkload:
		return o.workload.ID
	}
	return o.pattern.ID
}

func (o object) value() any {
	switch o.kind {
	case kindAccount:
		return o.account
	case kindGrant:
		return o.grant
	case kindWorkload:
		return o.workload
	}
	return o.pattern
}

// objectJSON is the audit form of an object ("" for none).
func objectJSON(o *object) string {
	if o == nil {
		return ""
	}
	b, err := json.Marshal(o.value())
	if err != nil {
		return ""
	}
	return string(b)
}

// find returns the index of id in the rule set's list of k, or -1.
func find(rs *rolemap.RuleSet, k kind, id string) int {
	switch k {
	case kindAccount:
		return slices.IndexFunc(rs.Accounts, func(x rolemap.Account) bool { return x.ID == id })
	case kindGrant:
		return slices.IndexFunc(rs.Grants, func(x rolemap.GrantRule) bool { return x.ID == id })
	case kindWorkload:
		return slices.IndexFunc(rs.Workloads, func(x rolemap.Workload) bool { return x.ID == id })
	}
	return slices.IndexFunc(rs.Patterns, func(x rolemap.PatternRule) bool { return x.ID == id })
}

func get(rs *rolemap.RuleSet, k kind, i int) object {
	o := object{kind: k}
	switch k {
	case kindAccount:
		o.account = rs.Accounts[i]
	case kindGrant:
		o.grant = rs.Grants[i]
	case kindWorkload:
		o.workload = rs.Workloads[i]
	default:
		o.pattern = rs.Patterns[i]
	}
	return o
}

// put stores o at index i (i == len: append).
func put(rs *rolemap.RuleSet, o object, i int) {
	switch o.kind {
	case kindAccount:
		if i == len(rs.Accounts) {
			rs.Accounts = append(rs.Accounts, o.account)
		} else {
			rs.Accounts[i] = o.account
		}
	case kindGrant:
		if i == len(rs.Grants) {
			rs.Grants = append(rs.Grants, o.grant)
		} else {
			rs.Grants[i] = o.grant
		}
	case kindWorkload:
		if i == len(rs.Workloads) {
			rs.Workloads = append(rs.Workloads, o.workload)
		} else {
			rs.Workloads[i] = o.workload
		}
	default:
		if i == len(rs.Patterns) {
			rs.Patterns = append(rs.Patterns, o.pattern)
		} else {
			rs.Patterns[i] = o.pattern
		}
	}
}

func remove(rs *rolemap.RuleSet, k kind, i int) {
	switch k {
	case kindAccount:
		rs.Accounts = slices.Delete(rs.Accounts, i, i+1)
	case kindGrant:
		rs.Grants = slices.Delete(rs.Grants, i, i+1)
	case kindWorkload:
		rs.Workloads = slices.Delete(rs.Workloads, i, i+1)
	default:
		rs.Patterns = slices.Delete(rs.Patterns, i, i+1)
	}
}

func length(rs *rolemap.RuleSet, k kind) int {
	switch k {
	case kindAccount:
		return len(rs.Accounts)
	case kindGrant:
		return len(rs.Grants)
	case kindWorkload:
		return len(rs.Workloads)
	}
	return len(rs.Patterns)
}

// op is one edit of an object: create (o set, id ""), update (id and o),
// delete (id, o nil). keepSecret (workloads) keeps the stored client
// secret's hash of the object being updated, whatever obj says.
type op struct {
	kind       kind
	id         string
	obj        *object
	keepSecret bool
}

// edited is the outcome of a saved change.
type edited struct {
	version       store.RuleVersion
	before, after *object // nil when absent
	index         int     // where the object sits in the edited set (problem paths)
}

// changeObject applies op to the rules at version expected and saves a new
// version. Errors: store.ErrConflict (stale expected), errNoObject,
// errExists, *problemsError (with paths of the edited set; the object is at
// edited.index), store.ErrUnavailable.
func (a *Admin) changeObject(ctx context.Context, expected int64, o op, meta store.ChangeMeta) (edited, error) {
	var ed edited
	err := a.change(ctx, expected, meta, func(rs *rolemap.RuleSet) error {
		i := -1
		if o.id != "" {
			if i = find(rs, o.kind, o.id); i < 0 {
				return errNoObject
			}
			b := get(rs, o.kind, i)
			ed.before = &b
			if o.keepSecret && o.obj != nil {
				o.obj.workload.SecretSHA256 = b.workload.SecretSHA256
			}
		}
		switch {
		case o.obj == nil: // delete
			remove(rs, o.kind, i)
		case i < 0: // create
			if find(rs, o.kind, o.obj.id()) >= 0 {
				return errExists
			}
			i = length(rs, o.kind)
			put(rs, *o.obj, i)
		default: // update; an ID change must not collide
			if o.obj.id() != o.id && find(rs, o.kind, o.obj.id()) >= 0 {
				return errExists
			}
			put(rs, *o.obj, i)
		}
		ed.index, ed.after = i, o.obj
		return nil
	}, &ed.version)
	return ed, err
}

// change loads the current rules, checks that they are still version
// expected, applies edit, validates, and saves with compare-and-set.
func (a *Admin) change(ctx context.Context, expected int64, meta store.ChangeMeta,
	edit func(*rolemap.RuleSet) error, saved *store.RuleVersion) error {
	cur, doc, err := a.rules.Current(ctx)
	if err != nil {
		return fmt.Errorf("admin: load rules: %w", err)
	}
	if cur.Version != expected {
		return fmt.Errorf("admin: rules are at version %d, not %d: %w", cur.Version, expected, store.ErrConflict)
	}
	rs, err := parseDoc(doc)
	if err != nil {
		return fmt.Errorf("admin: stored rules version %d: %w", cur.Version, err)
	}
	if err := edit(&rs); err != nil {
		return err
	}
	return a.save(ctx, expected, rs, meta, saved)
}

// validate is rs.Validate, plus the attributes the directory must read
// for rs's tags (Deps.FetchedAttributes).
func (a *Admin) validate(rs rolemap.RuleSet) []rolemap.Problem {
	ps := rs.Validate()
	if a.fetched != nil {
		ps = append(ps, rs.CheckFetched(a.fetched)...)
	}
	return ps
}

// save validates rs and saves it as the version after expected.
func (a *Admin) save(ctx context.Context, expected int64, rs rolemap.RuleSet, meta store.ChangeMeta, saved *store.RuleVersion) error {
	if ps := a.validate(rs); len(ps) > 0 {
		return &problemsError{problems: ps}
	}
	out, err := rs.MarshalYAML()
	if err != nil {
		return fmt.Errorf("admin: marshal rules: %w", err)
	}
	v, err := a.rules.Save(ctx, expected, out, meta)
	if err != nil {
		return fmt.Errorf("admin: save rules: %w", err)
	}
	*saved = v
	return nil
}

// fieldProblems splits problems into those about the object at index i
// (or with ID id) of kind k, by field path relative to the object (e.g.
// "role_arn", "roles[0].arn"; "" for the object as a whole), and the rest.
func fieldProblems(ps []rolemap.Problem, k kind, i int, id string) (fields map[string][]string, other []rolemap.Problem) {
	fields = map[string][]string{}
	prefixes := []string{fmt.Sprintf("%s[%d]", k.key(), i)}
	if id != "" {
		prefixes = append(prefixes, fmt.Sprintf("%s[%s]", k.key(), id))
	}
next:
	for _, p := range ps {
		for _, pre := range prefixes {
			if rest, ok := strings.CutPrefix(p.Path, pre); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
				rest = strings.TrimPrefix(rest, ".")
				fields[rest] = append(fields[rest], p.Message)
				continue next
			}
		}
		other = append(other, p)
	}
	return fields, other
}
