package rolemap

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// MaxDocumentBytes bounds a rule document (100,000 grant rules fit in
// about 20 MiB of YAML).
const MaxDocumentBytes = 32 << 20

// maxNodes bounds the YAML nodes visited, aliases counted at every use, so
// that an alias bomb cannot make ParseYAML run long.
const maxNodes = 4_000_000

// ParseYAML decodes a rule document strictly: unknown keys, duplicate keys,
// values of the wrong kind and more than one document are errors. The
// error is an *Error listing every such problem with its key path and line
// ("grants[2].rolez: unknown key (line 14)"). An empty document is an
// empty RuleSet. ParseYAML does not validate: call Validate or Compile.
func ParseYAML(data []byte) (RuleSet, error) {
	fail := func(ps ...Problem) (RuleSet, error) { return RuleSet{}, &Error{Op: "parse", Problems: ps} }
	if len(data) > MaxDocumentBytes {
		return fail(Problem{Message: fmt.Sprintf("document is %d bytes; at most %d allowed", len(data), MaxDocumentBytes)})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return RuleSet{}, nil
		}
		return fail(Problem{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return fail(Problem{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
	default:
		return fail(Problem{Message: fmt.Sprintf("more than one YAML document (the second starts at line %d)", more.Line)})
	}
	if len(doc.Content) == 0 {
		return RuleSet{}, nil
	}
	root := doc.Content[0]
	w := &walker{}
	w.walk(root, reflect.TypeFor[RuleSet](), "")
	if len(w.problems) > 0 {
		return fail(w.problems...)
	}
	var rs RuleSet
	if err := root.Decode(&rs); err != nil {
		// The walk checked keys and kinds; what remains is, e.g., an
		// integer out of range. yaml's message carries the line.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			ps := make([]Problem, len(te.Errors))
			for i, m := range te.Errors {
				ps[i] = Problem{Message: m}
			}
			return fail(ps...)
		}
		return fail(Problem{Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
	}
	return rs, nil
}

// walker checks a node tree against a Go type: every mapping key must be a
// field (by its yaml tag), keys must not repeat, and scalars, sequences and
// mappings must sit where the type expects them.
type walker struct {
	problems []Problem
	nodes    int
	stopped  bool
}

func (w *walker) add(path string, line int, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	// "(line N)" goes after the first clause: "unknown key (line 3); did you mean …".
	msg, rest, _ := strings.Cut(fmt.Sprintf(format, args...), "; ")
	msg += fmt.Sprintf(" (line %d)", line)
	if rest != "" {
		msg += "; " + rest
	}
	w.problems = append(w.problems, Problem{Path: path, Message: msg})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if w.stopped {
		return
	}
	if w.nodes++; w.nodes > maxNodes {
		w.stopped = true
		w.add(path, n.Line, "document too large: more than %d YAML nodes (aliases counted at every use)", maxNodes)
		return
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the zero value
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(n, t.Elem(), path)
		w.nodes--
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(path, n.Line, "must be a mapping (key: value), got %s", kindName(n))
			return
		}
		w.mapping(n, t, path, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(path, n.Line, "must be a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.add(path, n.Line, "must be a string, got %s", kindName(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			w.add(path, n.Line, "must be an integer, got %s", kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			w.add(path, n.Line, "must be true or false, got %s", kindName(n))
		}
	}
}

// mapping checks the keys of a mapping node for struct type t. Merge keys
// ("<<: *anchor") are followed: their keys count as if written here.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.add(path, k.Line, "keys must be strings")
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			w.merge(v, t, path, seen)
			continue
		}
		kp := joinKey(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			w.add(kp, k.Line, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			w.add(kp, k.Line, "unknown key%s", suggest(t, k.Value))
			continue
		}
		w.walk(v, f.Type, kp)
	}
}

func (w *walker) merge(v *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	if w.nodes++; w.nodes > maxNodes {
		return
	}
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		w.mapping(v, t, path, seen)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			w.merge(c, t, path, seen)
		}
	default:
		w.add(path, v.Line, "a merge key (<<) needs a mapping")
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest names the known keys of t, nearest first by a simple measure.
func suggest(t reflect.Type, key string) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		names = append(names, name)
	}
	simple := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for _, n := range names {
		if simple(n) == simple(key) || len(key) > 3 && distance(n, key) <= 2 {
			return fmt.Sprintf("; did you mean %q?", n)
		}
	}
	return "; known keys: " + strings.Join(names, ", ")
}

// distance is the Levenshtein distance of two short strings (bytes).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "something else"
}

// MarshalYAML returns the canonical YAML of rs: accounts sorted by ID,
// grant and pattern rules by ID, the roles of a grant by ARN, MFA methods
// strongest first (webauthn, totp, recovery), tag rules by key; two-space
// indentation. Equal rule sets give equal bytes, so stored
// versions diff cleanly. Comments of a document read with ParseYAML are not
// kept: the canonical form has none.
func (rs RuleSet) MarshalYAML() ([]byte, error) {
	c := rs.Canonical()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("rolemap: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rolemap: marshal: %w", err)
	}
	return buf.Bytes(), nil
}

// Canonical returns a sorted deep copy of rs (the order MarshalYAML writes).
// Sorting is stable, so rules with equal IDs (invalid anyway) keep their
// relative order.
func (rs RuleSet) Canonical() RuleSet {
	c := rs.clone()
	slices.SortStableFunc(c.Accounts, func(a, b Account) int { return strings.Compare(a.ID, b.ID) })
	slices.SortStableFunc(c.Grants, func(a, b GrantRule) int { return strings.Compare(a.ID, b.ID) })
	for i := range c.Grants {
		slices.SortStableFunc(c.Grants[i].Roles, func(a, b RoleRef) int {
			return cmp.Or(strings.Compare(a.ARN, b.ARN), cmp.Compare(a.MaxSessionSeconds, b.MaxSessionSeconds))
		})
		for j := range c.Grants[i].Roles {
			sortMethods(c.Grants[i].Roles[j].MFAMethods)
		}
	}
	slices.SortStableFunc(c.Patterns, func(a, b PatternRule) int { return strings.Compare(a.ID, b.ID) })
	for i := range c.Patterns {
		sortMethods(c.Patterns[i].MFAMethods)
	}
	slices.SortStableFunc(c.Workloads, func(a, b Workload) int { return strings.Compare(a.ID, b.ID) })
	slices.SortStableFunc(c.Tags.Attributes, func(a, b TagAttribute) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Attribute, b.Attribute))
	})
	return c
}

// clone deep-copies rs. Empty slices become nil, so that a set and its
// YAML round trip compare equal.
func (rs RuleSet) clone() RuleSet {
	c := RuleSet{
		Accounts: cloneSlice(rs.Accounts),
		Grants:   cloneSlice(rs.Grants),
		Patterns: cloneSlice(rs.Patterns),
		Tags:     TagRules{Attributes: cloneSlice(rs.Tags.Attributes), SourceIdentity: rs.Tags.SourceIdentity},
	}
	for i := range c.Grants {
		c.Grants[i].Roles = cloneSlice(c.Grants[i].Roles)
		for j := range c.Grants[i].Roles {
			c.Grants[i].Roles[j].MFAMethods = cloneSlice(c.Grants[i].Roles[j].MFAMethods)
		}
	}
	for i := range c.Patterns {
		c.Patterns[i].MFAMethods = cloneSlice(c.Patterns[i].MFAMethods)
	}
	c.Workloads = cloneSlice(rs.Workloads)
	for i := range c.Workloads {
		w := &c.Workloads[i]
		w.Roles = cloneSlice(w.Roles)
		if w.JWKS != nil {
			w.JWKS = &WorkloadJWKS{Keys: cloneSlice(w.JWKS.Keys)}
		}
		if len(w.Tags) == 0 {
			w.Tags = nil
		} else {
			w.Tags = maps.Clone(w.Tags)
		}
	}
	return c
}

// sortMethods puts MFA methods in identity.SecondFactors order (strongest
// first); unknown names (invalid anyway) follow, in byte order.
func sortMethods(ms []string) {
	rank := func(m string) int {
		if i := slices.Index(identity.SecondFactors, m); i >= 0 {
			return i
		}
		return len(identity.SecondFactors)
	}
	slices.SortStableFunc(ms, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b)) })
}

func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func sortStrings(s []string) { slices.Sort(s) }
