package identity

import (
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// GroupMatcher decides membership in a configured list of groups from a
// User's groups (nested ones included: the directory resolved them). A
// configured group with '=' is a DN, compared by RFC 4517
// distinguishedNameMatch (case-insensitive attribute types and values,
// spacing normalized); otherwise it is a name, compared case-insensitively
// with Group.Name.
type GroupMatcher struct {
	names []string
	dns   []*ldap.DN
}

// NewGroupMatcher returns the matcher of groups; DNs that do not parse
// match nothing (config validation refuses them).
func NewGroupMatcher(groups []string) GroupMatcher {
	var m GroupMatcher
	for _, g := range groups {
		if strings.Contains(g, "=") {
			if dn, err := ldap.ParseDN(g); err == nil {
				m.dns = append(m.dns, dn)
			}
			continue
		}
		m.names = append(m.names, g)
	}
	return m
}

// Empty reports whether the matcher has no group (it matches nobody).
func (m GroupMatcher) Empty() bool { return len(m.names) == 0 && len(m.dns) == 0 }

// Match reports whether u is in one of the groups.
func (m GroupMatcher) Match(u User) bool {
	for _, g := range u.Groups {
		for _, n := range m.names {
			if strings.EqualFold(n, g.Name) {
				return true
			}
		}
		if len(m.dns) == 0 || g.DN == "" {
			continue
		}
		dn, err := ldap.ParseDN(g.DN)
		if err != nil {
			continue
		}
		for _, want := range m.dns {
			if want.EqualFold(dn) {
				return true
			}
		}
	}
	return false
}
