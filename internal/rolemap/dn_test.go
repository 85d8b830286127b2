package rolemap

import (
	"strings"
	"testing"
)

func TestNormDN(t *testing.T) {
	same := [][]string{
		{"cn=admins,ou=groups,dc=example,dc=org", "CN=Admins,OU=Groups,DC=Example,DC=Org", " cn = admins , ou=groups,  dc=example ,dc=org ", "cn=admins;ou=groups;dc=example;dc=org", `cn=\61dmins,ou=groups,dc=example,dc=org`},
		{`cn=Pat O'Connor\, Jr. (ext*),ou=people,dc=example,dc=org`, `CN=pat o'connor\, jr. (EXT*),OU=People,DC=Example,DC=Org`, `cn=Pat O'Connor\2C Jr. (ext*), ou=people, dc=example, dc=org`},
		{"cn=a+sn=b,dc=x", "sn=b+cn=a,dc=x", "SN=B + CN=A,DC=X"},
		{"cn=Jürgen Müller,dc=x", "CN=JÜRGEN MÜLLER,DC=X", `cn=J\c3\bcrgen M\c3\bcller,dc=x`},
		{"cn=a=b,dc=x", `cn=a\=b,dc=x`},
		{"cn=K,dc=x", "cn=k,dc=x", "cn=\u212a,dc=x"}, // Kelvin sign folds to k, as in strings.EqualFold
	}
	for _, set := range same {
		want, ok := normDN(set[0])
		if !ok {
			t.Fatalf("normDN(%q) not ok", set[0])
		}
		for _, dn := range set[1:] {
			if got, ok := normDN(dn); !ok || got != want {
				t.Errorf("normDN(%q) = %q, %v; want %q (as for %q)", dn, got, ok, want, set[0])
			}
		}
	}
	different := [][2]string{
		{"cn=admins,ou=groups,dc=example,dc=org", "cn=admins,ou=people,dc=example,dc=org"},
		{"cn=admins,ou=groups,dc=example,dc=org", "cn=admins,dc=example,dc=org"},
		{`cn=a\,b,dc=x`, "cn=a,b=,dc=x"},
		{`cn=a\,dc=x`, "cn=a,dc=x"},
		{"cn=a+sn=b,dc=x", "cn=a,sn=b,dc=x"},
		{"cn=a b,dc=x", "cn=ab,dc=x"},
		{"cn=a=b,dc=x", `cn=a,b=,dc=x`},
		{"uid=admins,dc=x", "cn=admins,dc=x"},
	}
	for _, d := range different {
		a, _ := normDN(d[0])
		b, _ := normDN(d[1])
		if a == b {
			t.Errorf("normDN(%q) == normDN(%q) = %q", d[0], d[1], a)
		}
	}
	for _, bad := range []string{"", "   ", "admins", "cn=a,", "cn=a,,dc=x", `cn=a\`, "=a", `cn=a"b`, "cn=#zz"} {
		if k, ok := normDN(bad); ok {
			t.Errorf("normDN(%q) = %q, ok; want not a DN", bad, k)
		}
	}
}

func TestFold(t *testing.T) {
	for _, tc := range [][2]string{{"developers", "DEVELOPERS"}, {"Jürgen", "JÜRGEN"}, {"k", "\u212a"}, {"straße", "STRAßE"}} {
		if fold(tc[0]) != fold(tc[1]) {
			t.Errorf("fold(%q) = %q != fold(%q) = %q", tc[0], fold(tc[0]), tc[1], fold(tc[1]))
		}
	}
	if s := "already-folded"; fold(s) != s {
		t.Errorf("fold changed a folded string")
	}
}

// FuzzNormDN checks the fast path against ldap.ParseDN, the folding against
// strings.EqualFold, and that the key never panics.
func FuzzNormDN(f *testing.F) {
	for _, s := range []string{"cn=admins,ou=groups,dc=example,dc=org", " CN = A , DC=x ", "cn=a=b,dc=x", `cn=Pat O'Connor\, Jr. (ext*),ou=people,dc=example,dc=org`, "cn=a+sn=b", "=x", "cn=,dc=x"} {
		f.Add(s, strings.ToUpper(s))
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, oka := normDN(a)
		if fast, ok := normDNFast(a); ok {
			slow, sok := normDNParsed(a)
			if !sok || fast != slow {
				t.Fatalf("fast path %q (ok) != ParseDN path %q (%v) for %q", fast, slow, sok, a)
			}
		}
		if strings.EqualFold(a, b) {
			kb, okb := normDN(b)
			if oka != okb || ka != kb {
				t.Fatalf("EqualFold DNs %q and %q normalize differently: %q/%v, %q/%v", a, b, ka, oka, kb, okb)
			}
		}
	})
}
