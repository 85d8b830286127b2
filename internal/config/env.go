package config

import (
	"errors"
	"fmt"
	"strings"
)

// expand substitutes environment variables in one scalar value:
//
//	${VAR}          the value of VAR; an error when VAR is not set
//	${VAR:-default} the value of VAR, or default when VAR is unset or empty
//	$$              a literal $
//
// A $ followed by anything else is kept as it is (so "pa$word" needs no
// escaping). The default is literal text up to the first "}": it is not
// expanded again, and neither is a substituted value, so a value that itself
// contains "${...}" or "$$" arrives unchanged. VAR is [A-Za-z_][A-Za-z0-9_]*.
// Error texts name the variable, never a value.
func expand(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`"${" without a closing "}" (write $$ for a literal $)`)
			}
			inner := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(inner, ":-")
			if !validVarName(name) {
				// The text is not quoted back: it may hold a secret.
				return "", errors.New("invalid variable reference: the form is ${NAME} or ${NAME:-default} (write $$ for a literal $)")
			}
			if strings.Contains(def, "${") {
				return "", fmt.Errorf("default of ${%s} contains ${: defaults are not expanded", name)
			}
			val, ok := env(name)
			if !ok || (hasDef && val == "") {
				if !hasDef {
					return "", fmt.Errorf("environment variable %s is not set; set it, or give a default: ${%s:-value}", name, name)
				}
				val = def
			}
			b.WriteString(val)
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
