package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/testenv"
)

// applyPatch applies diff to old with GNU patch (an independent
// implementation of the format) and returns the result.
func applyPatch(t *testing.T, old, diff string) string {
	t.Helper()
	bin := testenv.Binary(t, "patch")
	dir := t.TempDir()
	f := filepath.Join(dir, "doc")
	if err := os.WriteFile(f, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--quiet", "--force", "--no-backup-if-mismatch", "-r", "-", f)
	cmd.Stdin = strings.NewReader(diff)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch: %v\n%s\ndiff:\n%s", err, out, diff)
	}
	got, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{name: "equal", a: "x\ny\n", b: "x\ny\n", want: ""},
		{name: "from_empty", a: "", b: "a\nb\n", want: "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{name: "to_empty", a: "a\n", b: "", want: "--- old\n+++ new\n@@ -1 +0,0 @@\n-a\n"},
		{name: "one_line_changed", a: "1\n2\n3\n4\n5\n6\n7\n8\n9\n", b: "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n",
			want: "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n"},
		{name: "no_newline_at_end", a: "a\nb", b: "a\nc",
			want: "--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{name: "two_hunks", a: "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", b: "X\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\nY\n",
			want: "--- old\n+++ new\n@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+Y\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := unifiedDiff("old", "new", []byte(tc.a), []byte(tc.b))
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			if tc.a != tc.b {
				if res := applyPatch(t, tc.a, got); res != tc.b {
					t.Fatalf("patch gave %q, want %q", res, tc.b)
				}
			}
		})
	}
}

// TestUnifiedDiffRandom edits random documents at random and checks, with
// GNU patch, that every diff turns the old document into the new one. The
// small vocabulary leaves few unique lines, so Myers does most of the work.
func TestUnifiedDiffRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "  - id: x", "    roles:", "", "}", "grants:"}
	doc := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[rng.IntN(len(words))] + "\n"
		}
		return out
	}
	rounds := 200
	if testing.Short() {
		rounds = 30
	}
	for r := range rounds {
		a := doc(rng.IntN(60))
		b := append([]string(nil), a...)
		for range rng.IntN(8) + 1 {
			switch op := rng.IntN(3); {
			case op == 0 && len(b) > 0:
				i := rng.IntN(len(b))
				b = append(b[:i], b[i+1:]...)
			case op == 1:
				i := rng.IntN(len(b) + 1)
				b = append(b[:i], append([]string{fmt.Sprintf("new %d\n", rng.IntN(5))}, b[i:]...)...)
			case len(b) > 0:
				b[rng.IntN(len(b))] = words[rng.IntN(len(words))] + "\n"
			}
		}
		as, bs := strings.Join(a, ""), strings.Join(b, "")
		if rng.IntN(4) == 0 && len(bs) > 0 {
			bs = strings.TrimSuffix(bs, "\n")
		}
		d := unifiedDiff("old", "new", []byte(as), []byte(bs))
		if as == bs {
			if d != "" {
				t.Fatalf("round %d: equal docs gave a diff", r)
			}
			continue
		}
		if got := applyPatch(t, as, d); got != bs {
			t.Fatalf("round %d: patch gave\n%q\nwant\n%q\ndiff:\n%s", r, got, bs, d)
		}
	}
}

// genRules makes an n-rule YAML document in rolemap's shape (about 150
// bytes a rule); tag changes every group name.
func genRules(n int, tag string) []byte {
	var b strings.Builder
	b.WriteString("accounts:\n  - id: \"123456789012\"\n    name: prod\n    saml_provider: warden\ngrants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: grant-%05d\n    group: team-%05d%s\n    roles:\n      - arn: arn:aws:iam::123456789012:role/team-%05d-admin\n        max_session_seconds: 3600\n", i, i, tag, i)
	}
	return []byte(b.String())
}

// largeDiffCases: a 10,000-rule document against one line changed, every
// group renamed, every rule rewritten and every line in reverse order.
func largeDiffCases() (a []byte, cases []struct {
	name string
	b    []byte
}) {
	a = genRules(10000, "")
	return a, []struct {
		name string
		b    []byte
	}{
		{"one_change", []byte(strings.Replace(string(a), "team-05000\n", "team-05000x\n", 1))},
		{"every_group", genRules(10000, "z")},
		{"all_new", genRules(10000, "-renamed\n    description: y")},
		{"reversed", []byte(reverseLines(string(a)))},
	}
}

// TestUnifiedDiffLarge: a 10,000-rule document rewritten throughout (every
// group renamed) diffs correctly. How fast is measured by
// BenchmarkUnifiedDiff (docs/benchmarks.md), not asserted here: a
// wall-clock limit fails on a loaded machine. A generic O(n²) matcher
// would take seconds per case and show there.
func TestUnifiedDiffLarge(t *testing.T) {
	a, cases := largeDiffCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := unifiedDiff("old", "new", a, tc.b)
			if got := applyPatch(t, string(a), d); got != string(tc.b) {
				t.Fatal("patch did not reproduce the new document")
			}
		})
	}
}

func reverseLines(s string) string {
	l := splitLines(s)
	for i, j := 0, len(l)-1; i < j; i, j = i+1, j-1 {
		l[i], l[j] = l[j], l[i]
	}
	return strings.Join(l, "")
}

// BenchmarkUnifiedDiff: the cases of TestUnifiedDiffLarge, timed.
func BenchmarkUnifiedDiff(b *testing.B) {
	a, cases := largeDiffCases()
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				unifiedDiff("old", "new", a, bc.b)
			}
		})
	}
}
