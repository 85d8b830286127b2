package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/web"
)

// groupMatcher decides admin membership from the groups in the session's
// identity.User (nested groups included: the directory resolved them at
// sign-in), by name or by DN (identity.GroupMatcher).
type groupMatcher struct{ identity.GroupMatcher }

func newGroupMatcher(groups []string) groupMatcher {
	return groupMatcher{identity.NewGroupMatcher(groups)}
}

func (m groupMatcher) isAdmin(u identity.User) bool { return m.Match(u) }

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
