package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// maxSecretFileSize bounds what an X_file key may read: secrets are short,
// and a path like /dev/zero must not exhaust memory.
const maxSecretFileSize = 64 << 10

// maxNodes bounds how many YAML nodes a document may decode to, aliases
// counted at every use, so that an alias bomb cannot make Parse run long.
const maxNodes = 100_000

// Load reads the configuration file at path and parses it (see Parse).
// A file that cannot be read gives an error wrapping the os error.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, env)
}

// Parse decodes a configuration document strictly and fills in defaults.
// It does not validate: call Validate on the result.
//
// env looks up environment variables for ${VAR} substitution (nil means
// os.LookupEnv). The returned error joins every problem found (unknown keys,
// wrong types, unset variables, unreadable X_file files), each a
// *FieldError whose text is "key.path: message", in document order; the
// Config is nil then.
//
// Processing order: the YAML is parsed into a node tree; ${VAR} is
// substituted in every scalar value of the tree (never in keys; a plain
// scalar is then typed by its new text, so port: ${PORT} is an integer,
// while a quoted one stays a string); the tree is decoded into Config,
// where X_file keys read their files (relative paths are relative to the
// working directory) and unknown keys are reported; then defaults are
// applied.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	c, problems := parse(data, env, readSecretFile)
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return c, nil
}

// parse is Parse with the file reader injected; it returns the config
// decoded as far as possible (defaults applied) along with the problems, so
// that CheckConfig can validate what was understood. The config is nil when
// the YAML itself cannot be parsed.
func parse(data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, []*FieldError) {
	var c Config
	problems, ok := decodeDocument(data, &c, env, readFile)
	if !ok {
		return nil, problems
	}
	applyDefaults(&c)
	return &c, problems
}

// decodeDocument decodes the YAML document in data into *out (a pointer to
// a struct) strictly, with ${VAR} substitution and X_file keys. ok is false
// when data is not YAML at all.
func decodeDocument(data []byte, out any, env func(string) (string, bool), readFile func(string) ([]byte, error)) (problems []*FieldError, ok bool) {
	root, problem := parseYAML(data)
	if problem != nil {
		return []*FieldError{problem}, false
	}
	if root == nil {
		return nil, true
	}
	p := &parser{env: env, readFile: readFile}
	p.substitute(root, "")
	p.decode(root, reflect.ValueOf(out).Elem(), "", false)
	// Substitution problems were found in a pass of their own: put all in
	// file order.
	slices.SortStableFunc(p.problems, func(a, b *FieldError) int { return a.Line - b.Line })
	return p.problems, true
}

// parseYAML returns the root node of the single document in data (nil for
// an empty document).
func parseYAML(data []byte) (*yaml.Node, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlProblem(err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlProblem(err)
	default:
		return nil, &FieldError{Line: more.Line, Msg: fmt.Sprintf("more than one YAML document (the second starts at line %d); a config file holds one", more.Line)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	return root, nil
}

func yamlProblem(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return &FieldError{Msg: "invalid YAML: " + msg, Err: err}
}

// readSecretFile reads a regular file of at most maxSecretFileSize bytes.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretFileSize {
		return nil, fmt.Errorf("%s: larger than %d KiB", path, maxSecretFileSize>>10)
	}
	return data, nil
}

type parser struct {
	env      func(string) (string, bool)
	readFile func(string) ([]byte, error)
	problems []*FieldError
	nodes    int
}

func (p *parser) add(path string, line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = insertLine(msg, line)
	}
	p.problems = append(p.problems, &FieldError{Path: path, Line: line, Msg: msg})
}

// insertLine puts "(line N)" after the first clause of msg:
// "unknown key; did you mean x?" becomes "unknown key (line 3); did you mean x?".
func insertLine(msg string, line int) string {
	l := fmt.Sprintf(" (line %d)", line)
	if i := strings.Index(msg, "; "); i >= 0 {
		return msg[:i] + l + msg[i:]
	}
	return msg + l
}

// substitute expands ${VAR} in every scalar value under n, in place. It
// visits each node once, in document order, and does not follow aliases:
// an anchored node is expanded where it is defined, and its aliases see the
// result. A scalar whose expansion fails is made null, so that the key
// keeps its default and no half-expanded text is used.
func (p *parser) substitute(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p.substitute(n.Content[i+1], joinKey(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.substitute(c, path+"["+strconv.Itoa(i)+"]")
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expand(n.Value, p.env)
		if err != nil {
			p.add(path, n.Line, "%v", err)
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
			return
		}
		n.Value = v
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain scalar is typed by its text (YAML core schema):
			// type it again by the substituted text.
			n.Tag = ""
		}
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeFor[time.Duration]()

// decode stores n into v (addressable), reporting problems at path. secret
// marks values that must not be quoted back in an error.
func (p *parser) decode(n *yaml.Node, v reflect.Value, path string, secret bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	p.nodes++
	if p.nodes == maxNodes {
		p.add(path, n.Line, "document too large (more than %d values, aliases counted at each use)", maxNodes)
	}
	if p.nodes >= maxNodes {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" or "key: null" leaves the default
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			p.add(path, n.Line, "%s", cleanYAMLError(err))
		}
		return
	}
	if v.Type() == durationType {
		p.decodeDuration(n, v, path, secret)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		p.decodeStruct(n, v, path, secret)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.typeError(n, "a list", path, secret)
			return
		}
		if len(n.Content) == 0 {
			return // [] is the same as not set: nil, so defaults apply
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p.decode(c, s.Index(i), path+"["+strconv.Itoa(i)+"]", secret)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			p.typeError(n, "a mapping", path, secret)
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			p.add(path, n.Line, "unsupported map key type %s", v.Type().Key())
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			e := reflect.New(v.Type().Elem()).Elem()
			p.decode(n.Content[i+1], e, joinKey(path, k.Value), secret)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		p.decode(n, e.Elem(), path, secret)
		v.Set(e)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			p.typeError(n, "a string", path, secret)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			p.typeError(n, "true or false", path, secret)
			return
		}
		switch strings.ToLower(n.Value) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			p.typeError(n, "true or false", path, secret)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(scalarText(n), 10, 64)
		if err != nil || v.OverflowInt(i) {
			p.typeError(n, "an integer", path, secret)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(scalarText(n), 10, 64)
		if err != nil || v.OverflowUint(u) {
			p.typeError(n, "a non-negative integer", path, secret)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(scalarText(n), 64)
		if err != nil || v.OverflowFloat(f) {
			p.typeError(n, "a number", path, secret)
			return
		}
		v.SetFloat(f)
	default:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			p.add(path, n.Line, "%s", cleanYAMLError(err))
		}
	}
}

// scalarText is the text of a scalar node, "" (never a number) otherwise.
func scalarText(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func (p *parser) decodeDuration(n *yaml.Node, v reflect.Value, path string, secret bool) {
	const want = "a duration with a unit, like 30s, 5m or 1h30m"
	if n.Kind != yaml.ScalarNode {
		p.typeError(n, want, path, secret)
		return
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.typeError(n, want, path, secret)
		return
	}
	v.SetInt(int64(d))
}

// typeError reports a value of the wrong type, quoting it unless secret.
func (p *parser) typeError(n *yaml.Node, want, path string, secret bool) {
	var got string
	switch {
	case n.Kind == yaml.MappingNode:
		got = "a mapping"
	case n.Kind == yaml.SequenceNode:
		got = "a list"
	case secret:
		got = "something else (not shown: the value is secret)"
	default:
		got = strconv.Quote(truncate(n.Value, 60))
	}
	p.add(path, n.Line, "expected %s, got %s", want, got)
}

func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// field is one YAML key of a struct.
type field struct {
	name   string
	index  []int
	secret bool
}

// structFields returns the YAML keys of struct type t, in field order,
// following yaml.v3's naming: the yaml tag's name, or the lower-cased field
// name; "-" is skipped; ",inline" structs contribute their own keys.
func structFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range structFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name: name, index: []int{i}, secret: isSecretName(name)})
	}
	return out
}

// fileable reports whether a field may be given as NAME_file: any scalar
// (string, number, boolean, duration), not a block or a list.
func fileable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Array:
		return false
	}
	return true
}

// entry is one key of a mapping as the file gives it.
type entry struct {
	key, val *yaml.Node
	f        field
	viaFile  bool // the key is f.name + "_file"
}

func (p *parser) decodeStruct(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if n.Kind != yaml.MappingNode {
		p.typeError(n, "a mapping", path, secret)
		return
	}
	fields := structFields(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	seen := map[string]int{}      // key text -> line, for duplicates
	given := map[string][]entry{} // field name -> how the file sets it
	var order []string            // field names in document order
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			p.add(path, k.Line, "keys must be plain names, got %s", kindName(k))
			continue
		}
		kp := joinKey(path, k.Value)
		if k.Value == "<<" {
			p.add(kp, k.Line, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(kp, k.Line, "duplicate key; first set at line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		e := entry{key: k, val: val}
		if f, ok := byName[k.Value]; ok {
			e.f = f
		} else if base, ok := strings.CutSuffix(k.Value, "_file"); ok && byName[base].name != "" && fileable(v.FieldByIndex(byName[base].index).Type()) {
			e.f, e.viaFile = byName[base], true
		} else {
			p.unknownKey(kp, k, fields, v)
			continue
		}
		if _, ok := given[e.f.name]; !ok {
			order = append(order, e.f.name)
		}
		given[e.f.name] = append(given[e.f.name], e)
	}
	for _, name := range order {
		es := given[name]
		if len(es) > 1 {
			// Both X and X_file (a duplicate key was dropped above).
			direct, file := es[0], es[1]
			if direct.viaFile {
				direct, file = file, direct
			}
			if emptyPath(file.val) {
				p.decode(direct.val, v.FieldByIndex(direct.f.index), joinKey(path, name), secret || direct.f.secret)
				continue
			}
			p.problems = append(p.problems, &FieldError{
				Path: joinKey(path, file.key.Value), Line: file.key.Line,
				Msg: fmt.Sprintf("both %s (line %d) and %s (line %d) are set; set only one of them",
					name, direct.key.Line, file.key.Value, file.key.Line),
			})
			continue
		}
		e := es[0]
		fv := v.FieldByIndex(e.f.index)
		if !e.viaFile {
			p.decode(e.val, fv, joinKey(path, name), secret || e.f.secret)
			continue
		}
		p.decodeFile(e, fv, joinKey(path, e.key.Value))
	}
}

// decodeFile sets fv from the file that an X_file key names. The contents
// are never quoted in an error.
func (p *parser) decodeFile(e entry, fv reflect.Value, kp string) {
	val := e.val
	for val.Kind == yaml.AliasNode && val.Alias != nil {
		val = val.Alias
	}
	if val.Kind != yaml.ScalarNode {
		p.typeError(val, "a file path", kp, false)
		return
	}
	if emptyPath(val) {
		return // an empty X_file means not set
	}
	data, err := p.readFile(val.Value)
	if err != nil {
		p.problems = append(p.problems, &FieldError{
			Path: kp, Line: e.key.Line,
			Msg: insertLine("cannot read file: "+fileErrorText(err), e.key.Line),
			Err: err,
		})
		return
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	tag := ""
	if fv.Kind() == reflect.String {
		tag = "!!str"
	}
	p.decode(&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s, Line: val.Line, Column: val.Column}, fv, kp, true)
}

// emptyPath reports whether an X_file value is empty or null, which means
// the key is not set.
func emptyPath(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!null" || n.Value == "")
}

// fileErrorText describes a file read error: the os error names the path
// and the reason, never the contents.
func fileErrorText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a scalar"
	}
}

// unknownKey reports a key that the struct does not know, suggesting the
// nearest known one.
func (p *parser) unknownKey(kp string, k *yaml.Node, fields []field, v reflect.Value) {
	var cands []string
	for _, f := range fields {
		cands = append(cands, f.name)
		if fileable(v.FieldByIndex(f.index).Type()) {
			cands = append(cands, f.name+"_file")
		}
	}
	if base, ok := strings.CutSuffix(k.Value, "_file"); ok {
		for _, f := range fields {
			if f.name == base {
				p.add(kp, k.Line, "unknown key; only a single value can be read from a file, and %s is not one", base)
				return
			}
		}
	}
	if s := suggest(k.Value, cands); s != "" {
		p.add(kp, k.Line, "unknown key; did you mean %s?", s)
		return
	}
	p.add(kp, k.Line, "unknown key; known keys here: %s", strings.Join(names(fields), ", "))
}

func names(fields []field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// suggest returns the candidate nearest to key: the same name in another
// spelling (bindDN, bind-dn for bind_dn), or one within a small edit
// distance; "" when none is near.
func suggest(key string, cands []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	for _, c := range cands {
		if norm(c) == norm(key) {
			return c
		}
	}
	limit := min(3, max(1, len(key)/4))
	best, bestD := "", limit+1
	for _, c := range cands {
		if d := editDistance(key, c, limit+1); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance of a and b
// (Levenshtein plus transposition of neighbours, so prot is one edit from
// port), or bound when it is at least bound.
func editDistance(a, b string, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	// d[i][j] is the distance of a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return min(d[len(a)][len(b)], bound)
}
