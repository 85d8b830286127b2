package store

import (
	"fmt"
	"sort"
	"strings"
)

// Line diff for rule-set history: a unified diff (the format of GNU diff -u
// and POSIX patch, with three lines of context) of two documents.
//
// The algorithm is patience diff (lines unique to both sides anchor the
// match, as in git diff --patience) with Myers' O(ND) diff (Myers 1986,
// "An O(ND) Difference Algorithm and Its Variations") for the stretches
// between anchors. Its cost is bounded: a stretch whose edit distance is
// above maxMyersD is shown as "all old lines removed, all new lines added",
// which is still a correct diff, only not a minimal one. So a 10,000-rule
// document rewritten from top to bottom diffs in milliseconds, not seconds.

const (
	diffContext = 3
	// maxMyersD bounds the edit distance Myers searches for in one
	// stretch between anchors (time O((N+M)·D), memory O(D²) ints).
	maxMyersD = 512
)

type diffOp struct {
	kind byte // ' ' equal, '-' delete (index into a), '+' insert (index into b)
	i    int  // index of the line in a (' ', '-') or b ('+')
	j    int  // index in b for ' '
}

// splitLines cuts s into lines that keep their "\n"; the last one lacks it
// when s does not end with a newline.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// unifiedDiff returns the unified diff turning oldDoc into newDoc, with
// the given file labels; "" when they are equal.
func unifiedDiff(oldLabel, newLabel string, oldDoc, newDoc []byte) string {
	if string(oldDoc) == string(newDoc) {
		return ""
	}
	al, bl := splitLines(string(oldDoc)), splitLines(string(newDoc))
	// Intern lines: the algorithm compares ints.
	ids := make(map[string]int, len(al))
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	a, b := intern(al), intern(bl)
	d := &differ{a: a, b: b}
	d.diff(0, len(a), 0, len(b))
	return formatUnified(oldLabel, newLabel, al, bl, d.ops)
}

type differ struct {
	a, b []int
	ops  []diffOp
}

func (d *differ) equal(i, j int) { d.ops = append(d.ops, diffOp{kind: ' ', i: i, j: j}) }

func (d *differ) replace(alo, ahi, blo, bhi int) {
	for i := alo; i < ahi; i++ {
		d.ops = append(d.ops, diffOp{kind: '-', i: i})
	}
	for j := blo; j < bhi; j++ {
		d.ops = append(d.ops, diffOp{kind: '+', i: j})
	}
}

// diff appends the ops for a[alo:ahi] against b[blo:bhi].
func (d *differ) diff(alo, ahi, blo, bhi int) {
	for alo < ahi && blo < bhi && d.a[alo] == d.b[blo] {
		d.equal(alo, blo)
		alo++
		blo++
	}
	var suffix int
	for alo < ahi-suffix && blo < bhi-suffix && d.a[ahi-1-suffix] == d.b[bhi-1-suffix] {
		suffix++
	}
	defer func(ahi, bhi int) {
		for k := 0; k < suffix; k++ {
			d.equal(ahi+k, bhi+k)
		}
	}(ahi-suffix, bhi-suffix)
	ahi, bhi = ahi-suffix, bhi-suffix
	if alo == ahi || blo == bhi {
		d.replace(alo, ahi, blo, bhi)
		return
	}
	anchors := d.uniqueAnchors(alo, ahi, blo, bhi)
	if len(anchors) == 0 {
		d.myers(alo, ahi, blo, bhi)
		return
	}
	i, j := alo, blo
	for _, an := range anchors {
		d.diff(i, an[0], j, an[1])
		d.equal(an[0], an[1])
		i, j = an[0]+1, an[1]+1
	}
	d.diff(i, ahi, j, bhi)
}

// uniqueAnchors returns the longest increasing sequence (by position in b)
// of the lines that occur exactly once in a[alo:ahi] and once in
// b[blo:bhi], as (i, j) pairs in order.
func (d *differ) uniqueAnchors(alo, ahi, blo, bhi int) [][2]int {
	type pos struct{ na, nb, i, j int }
	seen := make(map[int]*pos)
	for i := alo; i < ahi; i++ {
		p := seen[d.a[i]]
		if p == nil {
			p = &pos{}
			seen[d.a[i]] = p
		}
		p.na++
		p.i = i
	}
	for j := blo; j < bhi; j++ {
		if p := seen[d.b[j]]; p != nil {
			p.nb++
			p.j = j
		}
	}
	var pairs [][2]int
	for _, p := range seen {
		if p.na == 1 && p.nb == 1 {
			pairs = append(pairs, [2]int{p.i, p.j})
		}
	}
	sort.Slice(pairs, func(x, y int) bool { return pairs[x][0] < pairs[y][0] })
	// Patience sorting: tails[k] is the index into pairs of the smallest
	// j ending an increasing run of length k+1.
	var tails []int
	prev := make([]int, len(pairs))
	for n, p := range pairs {
		k := sort.Search(len(tails), func(k int) bool { return pairs[tails[k]][1] >= p[1] })
		if k > 0 {
			prev[n] = tails[k-1]
		} else {
			prev[n] = -1
		}
		if k == len(tails) {
			tails = append(tails, n)
		} else {
			tails[k] = n
		}
	}
	if len(tails) == 0 {
		return nil
	}
	out := make([][2]int, len(tails))
	for n, k := tails[len(tails)-1], len(tails)-1; n >= 0; n, k = prev[n], k-1 {
		out[k] = pairs[n]
	}
	return out
}

// myers appends a shortest edit script of a[alo:ahi] against b[blo:bhi],
// or a plain replacement when the edit distance exceeds maxMyersD.
func (d *differ) myers(alo, ahi, blo, bhi int) {
	a, b := d.a[alo:ahi], d.b[blo:bhi]
	n, m := len(a), len(b)
	maxD := min(n+m, maxMyersD)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int // trace[dd] = v[off-dd .. off+dd] after step dd
	found := -1
	for dd := 0; dd <= maxD && found < 0; dd++ {
		for k := -dd; k <= dd; k += 2 {
			var x int
			if k == -dd || (k != dd && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = dd
				break
			}
		}
		snap := make([]int, 2*dd+1)
		copy(snap, v[off-dd:off+dd+1])
		trace = append(trace, snap)
	}
	if found < 0 {
		d.replace(alo, ahi, blo, bhi)
		return
	}
	// Walk back from (n, m) to (0, 0), collecting ops in reverse.
	var rev []diffOp
	x, y := n, m
	for dd := found; dd > 0; dd-- {
		pv := trace[dd-1] // v after step dd-1, indexed k+(dd-1)
		at := func(k int) int { return pv[k+dd-1] }
		k := x - y
		var pk int
		if k == -dd || (k != dd && at(k-1) < at(k+1)) {
			pk = k + 1 // came down: insertion
		} else {
			pk = k - 1 // came right: deletion
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, diffOp{kind: ' ', i: alo + x, j: blo + y})
		}
		if pk == k+1 {
			y--
			rev = append(rev, diffOp{kind: '+', i: blo + y})
		} else {
			x--
			rev = append(rev, diffOp{kind: '-', i: alo + x})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, diffOp{kind: ' ', i: alo + x, j: blo + y})
	}
	for k := len(rev) - 1; k >= 0; k-- {
		d.ops = append(d.ops, rev[k])
	}
}

// formatUnified renders ops as unified diff hunks.
func formatUnified(oldLabel, newLabel string, al, bl []string, ops []diffOp) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldLabel, newLabel)
	// Position of each op in a and b (lines before it).
	n := len(ops)
	aPos, bPos := make([]int, n+1), make([]int, n+1)
	for k, op := range ops {
		aPos[k+1], bPos[k+1] = aPos[k], bPos[k]
		switch op.kind {
		case ' ':
			aPos[k+1]++
			bPos[k+1]++
		case '-':
			aPos[k+1]++
		case '+':
			bPos[k+1]++
		}
	}
	writeLine := func(prefix byte, line string) {
		sb.WriteByte(prefix)
		sb.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
	for k := 0; k < n; {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: from diffContext equal ops before the change to
		// diffContext equal ops after the last change that is no more
		// than 2*diffContext equal ops from the next.
		start := k
		for c := 0; c < diffContext && start > 0 && ops[start-1].kind == ' '; c++ {
			start--
		}
		end := k
		for {
			for end < n && ops[end].kind != ' ' {
				end++
			}
			eq := end
			for eq < n && ops[eq].kind == ' ' {
				eq++
			}
			if eq < n && eq-end <= 2*diffContext {
				end = eq
				continue
			}
			end = min(end+diffContext, eq)
			break
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n",
			hunkRange(aPos[start], aPos[end]-aPos[start]), hunkRange(bPos[start], bPos[end]-bPos[start]))
		for _, op := range ops[start:end] {
			switch op.kind {
			case ' ':
				writeLine(' ', al[op.i])
			case '-':
				writeLine('-', al[op.i])
			case '+':
				writeLine('+', bl[op.i])
			}
		}
		k = end
	}
	return sb.String()
}

// hunkRange formats "start,length" as GNU diff does: a one-line range is
// just the line number, an empty range names the line before it.
func hunkRange(before, length int) string {
	switch length {
	case 0:
		return fmt.Sprintf("%d,0", before)
	case 1:
		return fmt.Sprintf("%d", before+1)
	default:
		return fmt.Sprintf("%d,%d", before+1, length)
	}
}
