package embedded

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is what {SSHA} and UUIDv5 are defined with
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
)

type attr struct {
	name string
	vals []string
}

// entry is one directory entry. Entries never change after load, so they are
// read without locks.
type entry struct {
	dn     string
	key    string // normalized DN
	parent string // normalized DN of the parent ("" for a suffix)
	attrs  []attr // user attributes, in file order (userPassword included, never returned)
	oper   []attr // operational: entryUUID, entryDN, memberOf
}

func (e *entry) get(name string) []string {
	for _, a := range e.attrs {
		if strings.EqualFold(a.name, name) {
			return a.vals
		}
	}
	for _, a := range e.oper {
		if strings.EqualFold(a.name, name) {
			return a.vals
		}
	}
	return nil
}

func (e *entry) first(name string) string {
	if v := e.get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// store is the loaded directory.
type store struct {
	base    string // DN of the first entry (the naming context)
	entries []*entry
	byKey   map[string]*entry
}

// dnAttrs have DN syntax: equality compares normalized DNs.
var dnAttrs = map[string]bool{
	"member": true, "memberof": true, "entrydn": true, "uniquemember": true,
	"owner": true, "seealso": true, "manager": true, "pwdpolicysubentry": true,
}

// operational attributes are returned only when asked for by name or "+".
var operational = map[string]bool{
	"entryuuid": true, "entrydn": true, "memberof": true, "pwdreset": true,
	"pwdaccountlockedtime": true, "pwdchangedtime": true, "pwdpolicysubentry": true,
}

// normDN returns the comparison key of a DN: parsed (RFC 4514), attribute
// types and values lowercased.
func normDN(dn string) (string, error) {
	if strings.TrimSpace(dn) == "" {
		return "", nil
	}
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return "", err
	}
	return strings.ToLower(p.String()), nil
}

// warden's UUIDv5 namespace for entryUUID values derived from DNs.
var uuidNamespace = [16]byte{0x5c, 0x0e, 0x9a, 0x43, 0x1b, 0x7d, 0x4f, 0x2e, 0x9c, 0x61, 0x3a, 0x8f, 0x0b, 0x22, 0x47, 0xd5}

// uuidFromKey derives a stable UUIDv5 (RFC 9562 section 5.5) from a
// normalized DN.
func uuidFromKey(key string) string {
	return uuid.NewSHA1(uuid.UUID(uuidNamespace), []byte(key)).String()
}

// newStore builds the directory from LDIF records: DNs normalized and
// unique, parents present, entryUUID derived from the DN, memberOf computed
// from the member values of groupOfNames entries (direct membership only,
// like the OpenLDAP memberof overlay; member values naming no entry are
// kept but give nobody a memberOf).
func newStore(recs []ldifRecord) (*store, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("ldif: no entries")
	}
	s := &store{byKey: map[string]*entry{}}
	for _, r := range recs {
		key, err := normDN(r.dn)
		if err != nil || key == "" {
			return nil, fmt.Errorf("ldif line %d: bad dn %q: %v", r.line, r.dn, err)
		}
		if _, dup := s.byKey[key]; dup {
			return nil, fmt.Errorf("ldif line %d: duplicate entry %s", r.line, r.dn)
		}
		e := &entry{dn: r.dn, key: key, attrs: r.attrs}
		if i := parentIndex(key); i >= 0 {
			e.parent = key[i+1:]
		}
		if len(s.entries) == 0 {
			s.base = r.dn
		} else if _, ok := s.byKey[e.parent]; !ok {
			return nil, fmt.Errorf("ldif line %d: parent of %s not defined before it", r.line, r.dn)
		}
		if len(e.get("objectClass")) == 0 {
			return nil, fmt.Errorf("ldif line %d: %s has no objectClass", r.line, r.dn)
		}
		for _, a := range r.attrs {
			if strings.EqualFold(a.name, "memberOf") || strings.EqualFold(a.name, "entryUUID") {
				return nil, fmt.Errorf("ldif line %d: %s is computed by the server; remove it", r.line, a.name)
			}
		}
		e.oper = []attr{{name: "entryUUID", vals: []string{uuidFromKey(key)}}, {name: "entryDN", vals: []string{r.dn}}}
		s.entries = append(s.entries, e)
		s.byKey[key] = e
	}
	memberOf := map[string][]string{}
	for _, g := range s.entries {
		if !hasValueFold(g.get("objectClass"), "groupOfNames") {
			continue
		}
		for _, m := range g.get("member") {
			k, err := normDN(m)
			if err != nil {
				return nil, fmt.Errorf("ldif: %s: bad member %q: %v", g.dn, m, err)
			}
			if _, ok := s.byKey[k]; ok {
				memberOf[k] = append(memberOf[k], g.dn)
			}
		}
	}
	for k, groups := range memberOf {
		e := s.byKey[k]
		e.oper = append(e.oper, attr{name: "memberOf", vals: groups})
	}
	return s, nil
}

// parentIndex returns the index of the comma that ends the first RDN of a
// normalized DN, or -1. Escaped commas ("\,") belong to the value.
func parentIndex(key string) int {
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '\\':
			i++
		case ',':
			return i
		}
	}
	return -1
}

func hasValueFold(vals []string, v string) bool {
	for _, x := range vals {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// inScope reports whether e is in the search scope of base (normalized).
func inScope(e *entry, baseKey string, scope int64) bool {
	switch scope {
	case 0: // baseObject
		return e.key == baseKey
	case 1: // singleLevel
		return e.parent == baseKey
	default: // wholeSubtree
		return e.key == baseKey || strings.HasSuffix(e.key, ","+baseKey)
	}
}

// match evaluates a compiled filter (RFC 4511 section 4.5.1.7) against e.
// Undefined results (unsupported extensible matches, unknown syntax) are
// false, as the RFC's three-valued logic makes them at the top level; NOT of
// an undefined is treated as false too.
func match(f *ber.Packet, e *entry) bool {
	v, ok := eval(f, e)
	return ok && v
}

// eval returns (value, defined).
func eval(f *ber.Packet, e *entry) (bool, bool) {
	switch f.Tag {
	case goldap.FilterAnd:
		all, defined := true, true
		for _, c := range f.Children {
			v, ok := eval(c, e)
			if ok && !v {
				return false, true
			}
			if !ok {
				defined = false
			}
			all = all && v
		}
		return all, defined
	case goldap.FilterOr:
		defined := true
		for _, c := range f.Children {
			v, ok := eval(c, e)
			if ok && v {
				return true, true
			}
			if !ok {
				defined = false
			}
		}
		return false, defined
	case goldap.FilterNot:
		if len(f.Children) != 1 {
			return false, false
		}
		v, ok := eval(f.Children[0], e)
		return !v, ok
	case goldap.FilterPresent:
		name := ber.DecodeString(f.Data.Bytes())
		if strings.EqualFold(name, "objectClass") {
			return true, true
		}
		if strings.EqualFold(name, "userPassword") {
			return false, true
		}
		return len(e.get(name)) > 0, true
	case goldap.FilterEqualityMatch, goldap.FilterApproxMatch:
		if len(f.Children) != 2 {
			return false, false
		}
		name := ber.DecodeString(f.Children[0].Data.Bytes())
		want := ber.DecodeString(f.Children[1].Data.Bytes())
		if strings.EqualFold(name, "userPassword") {
			return false, true // never matchable
		}
		if dnAttrs[strings.ToLower(name)] {
			wk, err := normDN(want)
			if err != nil {
				return false, false
			}
			for _, v := range e.get(name) {
				if k, err := normDN(v); err == nil && k == wk {
					return true, true
				}
			}
			return false, true
		}
		w := foldSpace(want)
		for _, v := range e.get(name) {
			if foldSpace(v) == w {
				return true, true
			}
		}
		return false, true
	case goldap.FilterSubstrings:
		if len(f.Children) != 2 {
			return false, false
		}
		name := ber.DecodeString(f.Children[0].Data.Bytes())
		if strings.EqualFold(name, "userPassword") || dnAttrs[strings.ToLower(name)] {
			return false, false
		}
		for _, v := range e.get(name) {
			if substringMatch(foldSpace(v), f.Children[1].Children) {
				return true, true
			}
		}
		return false, true
	}
	// greaterOrEqual, lessOrEqual, extensibleMatch (AD's in-chain rule
	// among them, which OpenLDAP does not have either): undefined.
	return false, false
}

func substringMatch(v string, parts []*ber.Packet) bool {
	pos := 0
	for i, p := range parts {
		s := foldSpace(ber.DecodeString(p.Data.Bytes()))
		switch p.Tag {
		case goldap.FilterSubstringsInitial:
			if i != 0 || !strings.HasPrefix(v, s) {
				return false
			}
			pos = len(s)
		case goldap.FilterSubstringsAny:
			j := strings.Index(v[pos:], s)
			if j < 0 {
				return false
			}
			pos += j + len(s)
		case goldap.FilterSubstringsFinal:
			if len(v)-pos < len(s) || !strings.HasSuffix(v, s) {
				return false
			}
		}
	}
	return true
}

// foldSpace applies caseIgnoreMatch's preparation (RFC 4518, simplified):
// lowercase, leading and trailing spaces dropped, inner runs of spaces
// collapsed to one.
func foldSpace(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// checkPassword compares password with a userPassword value: {SSHA}
// (base64 of SHA-1(password+salt) followed by the salt) or cleartext.
func checkPassword(stored, password string) bool {
	if len(stored) > 6 && strings.EqualFold(stored[:6], "{SSHA}") {
		raw, err := base64.StdEncoding.DecodeString(stored[6:])
		if err != nil || len(raw) <= sha1.Size {
			return false
		}
		h := sha1.New() //nolint:gosec // {SSHA} is defined with SHA-1
		h.Write([]byte(password))
		h.Write(raw[sha1.Size:])
		return subtle.ConstantTimeCompare(h.Sum(nil), raw[:sha1.Size]) == 1
	}
	if strings.HasPrefix(stored, "{") {
		return false // another scheme we do not know: never match
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(password)) == 1
}

// expired reports whether e's password is older than the pwdMaxAge of its
// pwdPolicySubentry (OpenLDAP ppolicy semantics, no grace logins).
func (s *store) expired(e *entry, now time.Time) bool {
	changed := e.first("pwdChangedTime")
	policyDN := e.first("pwdPolicySubentry")
	if changed == "" || policyDN == "" {
		return false
	}
	k, err := normDN(policyDN)
	if err != nil {
		return false
	}
	p := s.byKey[k]
	if p == nil {
		return false
	}
	maxAge, err := strconv.Atoi(p.first("pwdMaxAge"))
	if err != nil || maxAge <= 0 {
		return false
	}
	t, err := time.Parse("20060102150405Z", changed)
	if err != nil {
		return false
	}
	return now.After(t.Add(time.Duration(maxAge) * time.Second))
}
