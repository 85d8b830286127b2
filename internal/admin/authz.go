package admin

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/web"
)

// groupMatcher decides admin membership from the groups in the session's
// identity.User (nested groups included: the directory resolved them at
// sign-in). A configured group with '=' is a DN, compared by RFC 4517
// distinguishedNameMatch (case-insensitive attribute types and values,
// spacing normalized); otherwise it is a CN, compared case-insensitively
// with the group's Name.
type groupMatcher struct {
	cns []string
	dns []*ldap.DN
}

func newGroupMatcher(groups []string) groupMatcher {
	var m groupMatcher
	for _, g := range groups {
		if strings.Contains(g, "=") {
			if dn, err := ldap.ParseDN(g); err == nil { // Validate refused bad ones
				m.dns = append(m.dns, dn)
			}
			continue
		}
		m.cns = append(m.cns, g)
	}
	return m
}

func (m groupMatcher) isAdmin(u identity.User) bool {
	for _, g := range u.Groups {
		for _, cn := range m.cns {
			if strings.EqualFold(cn, g.Name) {
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

// Nav implements web.Navigator: admins get an "Admin" link in the header.
func (a *Admin) Nav(u identity.User) []web.NavLink {
	if a.groups.isAdmin(u) {
		return []web.NavLink{{Label: "Admin", Path: "/admin"}}
	}
	return nil
}

// authorize runs before every admin handler. Anonymous: pages go to the
// sign-in page (303, back here afterwards), the API answers 401. Signed in
// but not in an admin group: 403 (page or JSON).
func (a *Admin) authorize(api bool, h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, ok := web.CurrentSession(c)
		if !ok {
			if api {
				a.jsonError(c, http.StatusUnauthorized, "Sign in first.", nil)
				return
			}
			web.RedirectToLogin(c)
			return
		}
		if !a.groups.isAdmin(sess.User) {
			msg := "Only members of the admin groups may use the admin pages."
			if api {
				a.jsonError(c, http.StatusForbidden, msg, nil)
				return
			}
			web.Fail(c, http.StatusForbidden, msg, nil)
			return
		}
		h(c)
	}
}
