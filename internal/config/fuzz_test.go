package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// maxFuzzConfig bounds the fuzzer's documents: every block of the example
// is below 1.5 KiB once its comments are gone, and longer inputs only make
// each run (and each minimization, quadratic in the length) slower.
const maxFuzzConfig = 4 << 10

// exampleBlocks returns each top-level block of the example configuration,
// comment lines dropped: small seeds that reach every component's decoder.
func exampleBlocks(tb testing.TB) [][]byte {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "wardend.yaml"))
	if err != nil {
		tb.Fatalf("example configuration: %v", err)
	}
	comment := regexp.MustCompile(`^\s*(#.*)?$`)
	var blocks [][]byte
	var cur []byte
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if comment.MatchString(line) {
			continue
		}
		if line[0] != ' ' && len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = nil
		}
		cur = append(cur, line...)
	}
	return append(blocks, cur)
}

// FuzzParse: no input makes the parser panic or hang; every problem it
// reports has text and quotes no secret file's contents; Validate and
// Warnings take whatever it decoded; and Redacted (what String and the
// logs print) leaves no secret in place. Secret files come from a fake
// reader, never the disk. Seeds: testdata/fuzz/FuzzParse and each block of
// config/wardend.yaml.
func FuzzParse(f *testing.F) {
	for _, b := range exampleBlocks(f) {
		f.Add(b)
	}
	env := envMap(map[string]string{"PW": "pw", "H": "${PW}", "EMPTY": ""})
	// The secret file's contents: a text no message has of its own (the
	// known-keys hint names the key "secret").
	const fileSecret = "f1le-c0ntents"
	files := filesMap(map[string]string{"/s": fileSecret + "\n"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzConfig {
			return
		}
		c, problems := parse(data, env, files)
		for _, p := range problems {
			if strings.TrimSpace(p.Error()) == "" {
				t.Fatalf("empty problem for %q", data)
			}
			if strings.Contains(p.Error(), fileSecret) && !bytes.Contains(data, []byte(fileSecret)) {
				t.Fatalf("file contents in a problem: %q", p.Error())
			}
		}
		if c == nil {
			return
		}
		// Component validation reads the files these name (CA bundles,
		// key pairs): keep the fuzzer off the disk (/dev/stdin would block).
		c.Server.TLS.CertFile, c.Server.TLS.KeyFile = "", ""
		c.Directory.CAFile = ""
		c.Redis.TLS.CAFile, c.Redis.TLS.CertFile, c.Redis.TLS.KeyFile = "", "", ""
		if err := c.Validate(); err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("Validate: an empty error for %q", data)
		}
		_ = c.Warnings()
		if path, ok := unredacted(reflect.ValueOf(c.Redacted())); ok {
			t.Fatalf("Redacted leaves %s in place for %q", path, data)
		}
	})
}

// unredacted returns the key path (below v) of the first secret in v, by
// the key naming rule, that holds a value other than Redaction; ok is false
// when there is none. The path is built only for a find.
func unredacted(v reflect.Value) (path string, ok bool) {
	under := func(key, rest string) string {
		if rest == "" || rest[0] == '[' {
			return key + rest
		}
		return key + "." + rest
	}
	switch v.Kind() {
	case reflect.Struct:
		for _, f := range structFields(v.Type()) {
			fv := v.FieldByIndex(f.index)
			if f.secret && !fv.IsZero() && !(fv.Kind() == reflect.String && fv.String() == Redaction) {
				return f.name, true
			}
			if p, ok := unredacted(fv); ok {
				return under(f.name, p), true
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return unredacted(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if p, ok := unredacted(v.Index(i)); ok {
				return under(fmt.Sprintf("[%d]", i), p), true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if p, ok := unredacted(it.Value()); ok {
				return under(fmt.Sprint(it.Key()), p), true
			}
		}
	}
	return "", false
}
