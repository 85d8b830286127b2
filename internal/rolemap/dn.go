package rolemap

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// normDN returns the comparison key of a distinguished name, and false when
// dn is not a DN (does not parse under RFC 4514, or has no RDN).
//
// Two DNs get the same key exactly when they have the same RDN sequence
// with, in each RDN, the same set of attribute types and values compared
// case-insensitively (fold); spaces around types and values and escapes
// ("\,", "\2C") do not matter. This is distinguishedNameMatch (RFC 4517
// 4.2.15) with caseIgnoreMatch for every attribute, which is how directory
// servers compare the cn/ou/dc values group DNs are made of.
//
// Most DNs contain no escapes or multi-valued RDNs; they take a fast path
// that gives the same key without the allocations of ldap.ParseDN (fuzzed
// against it in FuzzNormDN).
func normDN(dn string) (string, bool) {
	if k, ok := normDNFast(dn); ok {
		return k, true
	}
	return normDNParsed(dn)
}

// normDNParsed is the reference: ldap.ParseDN, then fold and encode.
func normDNParsed(dn string) (string, bool) {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return "", false
	}
	var b strings.Builder
	for i, rdn := range p.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		avas := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			avas[j] = escapeKey(fold(a.Type)) + "=" + escapeKey(fold(a.Value))
		}
		slices.Sort(avas)
		avas = slices.Compact(avas) // cn=a+cn=a is the set {cn=a}
		b.WriteString(strings.Join(avas, "+"))
	}
	return b.String(), true
}

// normDNFast handles DNs of printable ASCII without the characters that
// need ParseDN (escapes, quotes, multi-valued RDNs, ';' separators, '#'
// hex values, '<' '>'). ok is false when dn needs the full parser.
func normDNFast(dn string) (string, bool) {
	b, ok := appendNormDNFast(nil, dn)
	return string(b), ok
}

// appendNormDNFast appends the key of dn to b (see normDNFast), so that a
// caller can look the key up in a map without allocating a string.
func appendNormDNFast(b []byte, dn string) ([]byte, bool) {
	upper := false
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		if c < 0x20 || c > 0x7E {
			return b, false
		}
		switch c {
		case '\\', '"', '+', ';', '#', '<', '>':
			return b, false
		}
		if c >= 'A' && c <= 'Z' {
			upper = true
		}
	}
	start := len(b)
	for rest := dn; ; {
		part, tail, more := strings.Cut(rest, ",")
		eq := strings.IndexByte(part, '=')
		if eq < 0 {
			return b[:start], false
		}
		typ := strings.Trim(part[:eq], " ")
		val := strings.Trim(part[eq+1:], " ")
		if typ == "" {
			return b[:start], false
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = appendLowerASCII(b, typ, upper)
		b = append(b, '=')
		for i := 0; i < len(val); i++ {
			c := val[i]
			if c == '=' {
				b = append(b, '\\')
			}
			if upper && c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		if !more {
			return b, true
		}
		rest = tail
	}
}

func appendLowerASCII(b []byte, s string, upper bool) []byte {
	if !upper {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// escapeKey escapes the characters that separate parts of a DN key, so
// that different DNs never share a key.
func escapeKey(s string) string {
	if !strings.ContainsAny(s, `\,+=`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', ',', '+', '=':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fold returns a string such that fold(a) == fold(b) exactly when
// strings.EqualFold(a, b): each rune becomes the smallest rune of its
// Unicode simple-fold orbit, ASCII letters then lowercase. Strings that are
// already folded are returned without allocating.
func fold(s string) string {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c >= 'A' && c <= 'Z' {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// appendFold appends fold(s) to b.
func appendFold(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				b = utf8.AppendRune(b, foldRune(r))
			}
			return b
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < min {
			min = f
		}
	}
	if min >= 'A' && min <= 'Z' {
		min += 'a' - 'A'
	}
	return min
}

// firstRDNValue returns the value of the first attribute of the first RDN
// of dn ("" when dn does not parse).
func firstRDNValue(dn string) string {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
		return ""
	}
	return p.RDNs[0].Attributes[0].Value
}
