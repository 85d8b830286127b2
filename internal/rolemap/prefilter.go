package rolemap

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// firstBytes returns the set of bytes a group name must start with for the
// pattern to match, when the pattern is anchored at the start (^ or \A,
// not in multi-line mode) and its first element always consumes a
// character; ok is false otherwise. Evaluate only runs a pattern on names
// whose first byte is in its set, so 50 patterns over 200 names cost about
// 200 map lookups plus the few regexps that can match. Case-insensitive
// literals and character classes are handled; anything else (., empty
// alternatives, optional first elements) gives ok false and the pattern
// runs on every name.
func firstBytes(pattern string) (set *[256]bool, ok bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return nil, false
	}
	set = new([256]bool)
	if !firstOf(re.Sub[1:], set) {
		return nil, false
	}
	return set, true
}

// firstOf adds to set the possible first bytes of the concatenation subs,
// and reports whether it could (the first element that is not zero-width
// must always consume a character).
func firstOf(subs []*syntax.Regexp, set *[256]bool) bool {
	for _, re := range subs {
		switch re.Op {
		case syntax.OpBeginText, syntax.OpEmptyMatch:
			continue // zero-width here: look at the next element
		}
		return first(re, set)
	}
	return false
}

func first(re *syntax.Regexp, set *[256]bool) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return false
		}
		r := re.Rune[0]
		addRune(set, r)
		if re.Flags&syntax.FoldCase != 0 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				addRune(set, f)
			}
		}
		return true
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return false // matches nothing; let the regexp say so
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				set[r] = true
			}
			if hi >= utf8.RuneSelf {
				// Any non-ASCII byte: a lead byte, or an invalid byte that
				// the matcher reads as U+FFFD.
				for b := utf8.RuneSelf; b < 0x100; b++ {
					set[b] = true
				}
			}
		}
		return true
	case syntax.OpCapture, syntax.OpPlus:
		return first(re.Sub[0], set)
	case syntax.OpRepeat:
		return re.Min >= 1 && first(re.Sub[0], set)
	case syntax.OpConcat:
		return firstOf(re.Sub, set)
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if !first(s, set) {
				return false
			}
		}
		return true
	}
	return false
}

func addRune(set *[256]bool, r rune) {
	if r == utf8.RuneError { // also what an invalid byte reads as
		for b := utf8.RuneSelf; b < 0x100; b++ {
			set[b] = true
		}
	}
	var buf [utf8.UTFMax]byte
	utf8.EncodeRune(buf[:], r)
	set[buf[0]] = true
}

// literalPrefix returns a literal text every match of re starts with, ""
// when none is known. A prefix holding U+FFFD is not used: the matcher
// reads every invalid byte as U+FFFD, so the text need not contain it.
func literalPrefix(re *regexp.Regexp) string {
	p, _ := re.LiteralPrefix()
	if strings.ContainsRune(p, utf8.RuneError) {
		return ""
	}
	return p
}
