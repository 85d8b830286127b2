package awsfed

import (
	"errors"
	"strings"
	"testing"
)

func TestValidTagKey(t *testing.T) {
	for _, k := range []string{"email", "Department", "cost-center", "a_b.c:d/e=f+g-h@i", "with space",
		"Größe", "部署", "x1", strings.Repeat("k", 128), strings.Repeat("ü", 128), "awsome", "aws"} {
		if err := ValidTagKey(k); err != nil {
			t.Errorf("ValidTagKey(%q) = %v", k, err)
		}
	}
	for _, tc := range []struct{ k, msg string }{
		{"", "empty"},
		{"aws:foo", "reserved prefix"},
		{"AWS:foo", "reserved prefix"},
		{"Aws:", "reserved prefix"},
		{strings.Repeat("k", 129), "129 characters"},
		{strings.Repeat("ü", 129), "129 characters"},
		{"a*b", "'*'"},
		{"a,b", "','"},
		{"a\tb", `'\t'`},
		{"a\x00", `'\x00'`},
		{"\xff", "UTF-8"},
		{"emoji😀", "'😀'"},
	} {
		err := ValidTagKey(tc.k)
		if err == nil || !errors.Is(err, ErrInvalidTag) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ValidTagKey(%q) = %v, want an ErrInvalidTag mentioning %q", tc.k, err, tc.msg)
		}
	}
}

func TestValidTagValue(t *testing.T) {
	for _, v := range []string{"", "alice@example.org", "Research & Development"[:8], "Jürgen Müller",
		strings.Repeat("v", 256), "aws:allowed-in-values", "12:30/x=y+z-1"} {
		if err := ValidTagValue(v); err != nil {
			t.Errorf("ValidTagValue(%q) = %v", v, err)
		}
	}
	for _, tc := range []struct{ v, msg string }{
		{strings.Repeat("v", 257), "257 characters"},
		{"Pat O'Connor, Jr. (ext*)", `'\''`},
		{"R&D", "'&'"},
		{"line\nbreak", `'\n'`},
	} {
		err := ValidTagValue(tc.v)
		if err == nil || !errors.Is(err, ErrInvalidTag) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ValidTagValue(%q) = %v, want an ErrInvalidTag mentioning %q", tc.v, err, tc.msg)
		}
	}
}

func TestValidSourceIdentity(t *testing.T) {
	for _, s := range []string{"al", "alice", "alice@example.org", "a_b+c=d,e.f@g-h", strings.Repeat("s", 64)} {
		if err := ValidSourceIdentity(s); err != nil {
			t.Errorf("ValidSourceIdentity(%q) = %v", s, err)
		}
	}
	for _, tc := range []struct{ s, msg string }{
		{"", "2–64 characters"},
		{"a", "2–64 characters"},
		{strings.Repeat("s", 65), "2–64 characters"},
		{"aws:x", "reserved prefix"},
		{"AWS:alice", "reserved prefix"},
		{"jürgen", "outside"},
		{"pat o'connor", "outside"},
		{"a/b", "outside"},
	} {
		err := ValidSourceIdentity(tc.s)
		if err == nil || !errors.Is(err, ErrInvalidSourceIdentity) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ValidSourceIdentity(%q) = %v, want mention of %q", tc.s, err, tc.msg)
		}
	}
}
