package rolemap

import (
	"regexp"
	"strings"
	"testing"
)

func TestFirstBytes(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
		in, out string // bytes that must be / must not be in the set
	}{
		{`^AWS-(?P<a>\d+)$`, true, "A", "aw"},
		{`(?i)^aws-`, true, "aA", "bB"},
		{`(?i)^k`, true, "kK\xe2", "a"}, // \xe2 starts U+212A KELVIN SIGN
		{`^(?:ab|cd)`, true, "ac", "bd"},
		{`^[x-z0-9]+`, true, "xyz09", "aA"},
		{`^(team)-`, true, "t", "T"},
		{`\Ateam`, true, "t", "T"},
		{`^ü`, true, "\xc3", "u"},
		{`^[^a]`, true, "b\xc3", "a"},
		{`^.x`, false, "", ""},
		{`^a?b`, false, "", ""},
		{`^(|a)b`, false, "", ""},
		{`(?m)^a`, false, "", ""},
		{`a`, false, "", ""},
		{`^`, false, "", ""},
		{`^a*b`, false, "", ""},
		{`^a{2,}`, true, "a", "b"},
		{`^a{0,2}b`, false, "", ""},
	} {
		set, ok := firstBytes(tc.pattern)
		if ok != tc.ok {
			t.Errorf("firstBytes(%q) ok = %v", tc.pattern, ok)
			continue
		}
		for i := 0; i < len(tc.in); i++ {
			if !set[tc.in[i]] {
				t.Errorf("firstBytes(%q) lacks %q", tc.pattern, tc.in[i])
			}
		}
		for i := 0; i < len(tc.out); i++ {
			if set[tc.out[i]] {
				t.Errorf("firstBytes(%q) has %q", tc.pattern, tc.out[i])
			}
		}
	}
}

// FuzzFirstBytes: the prefilter never hides a match.
func FuzzFirstBytes(f *testing.F) {
	f.Add(`(?i)^aws-(?P<a>\d+)`, "AWS-1")
	f.Add(`^(?:ab|[x-z])`, "yes")
	f.Add(`^\x{212a}`, "\u212a")
	f.Add(`^\x{fffd}x`, "\x80x")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		re, err := regexp.Compile(pattern)
		if err != nil || name == "" {
			return
		}
		set, ok := firstBytes(pattern)
		if !re.MatchString(name) {
			return
		}
		if ok && !set[name[0]] {
			t.Fatalf("%q matches %q but the prefilter excludes byte %q", pattern, name, name[0])
		}
		if p := literalPrefix(re); !strings.Contains(name, p) || anchoredAtStart(pattern) && !strings.HasPrefix(name, p) {
			t.Fatalf("%q matches %q but the literal prefix %q excludes it", pattern, name, p)
		}
	})
}
