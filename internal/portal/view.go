package portal

import (
	"cmp"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// handleHome is the home page: the AWS roles the signed-in user holds now,
// those the user may request, and who the user is.
func (p *UI) handleHome(c *gin.Context) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		web.RedirectToLogin(c)
		return
	}
	ctx := c.Request.Context()
	var v *portalView
	res, err := p.backend.Grants(ctx, sess.User)
	if err != nil {
		// The rest of the page is still useful: say so, log the detail.
		p.log.LogAttrs(ctx, slog.LevelWarn, "portal: grants", slog.String("err", err.Error()))
		v = &portalView{Error: true}
	} else {
		v = buildPortal(res.Grants, p.origin, p.consolePartition())
		v.addEligible(res.Eligible, res.Grants)
		if p.keys != nil {
			for _, a := range v.Accounts {
				for k := range a.Roles {
					if r := &a.Roles[k]; !r.Elsewhere {
						r.Keys = keysLink(r.ARN)
					}
				}
			}
		}
	}
	web.Render(c, http.StatusOK, pageHome, v)
}

// portalView is the home page's AWS section.
type portalView struct {
	Accounts []accountView
	Roles    int
	Error    bool // the roles could not be listed (Grants failed)
	// Eligible are the roles the user may request for a time
	// (rolemap.Result.Eligible), grouped like Accounts.
	Eligible []eligibleAccountView
}

type eligibleAccountView struct {
	Name, ID, Partition string
	Roles               []eligibleRoleView
}

// eligibleRoleView is one role the user may request.
type eligibleRoleView struct {
	Name, Path, ARN string
	Max             string // the longest elevation: "1 h", "90 min"
	Approvers       string // "" for self-service
	Reason          bool   // a reason is required
	Request         string // the request form with this role ticked
	ActiveUntil     string // "14:05 UTC" while an elevation grants it
	ActiveEnds      string // the end, in full
}

type accountView struct {
	Name, ID, Partition string
	Roles               []roleView
}

type roleView struct {
	Name      string // the role name (its IAM path, if any, in Path)
	Path      string
	ARN       string
	Session   string // "1 h", "8 h", "90 min"; "" when AWS's default applies
	DeepLink  string // /aws/console?role=<account>/<role>
	Search    string // lowercase text the search box matches
	Partition string
	Elsewhere bool // in another partition than the console sign-in's: no Console button
	MFA       bool // the role asks for a second factor
	Passkey   bool // ... and only a passkey or security key counts
	// Elevated is "14:05 UTC" when an active elevation grants the role
	// (it is eligible, not standing); ElevatedEnds is the end in full.
	Elevated, ElevatedEnds string
	// Keys is its Access keys panel ("" without the panel).
	Keys string
}

// buildPortal groups grants by account, accounts sorted by name (then ID),
// roles by name (then ARN).
// consolePartition is "" when every partition can be signed in to.
func buildPortal(grants []rolemap.Grant, publicURL, consolePartition string) *portalView {
	p := &portalView{Roles: len(grants)}
	byID := map[string]int{}
	for _, g := range grants {
		i, ok := byID[g.AccountID]
		if !ok {
			i = len(p.Accounts)
			byID[g.AccountID] = i
			p.Accounts = append(p.Accounts, accountView{Name: g.AccountName, ID: g.AccountID, Partition: g.Partition})
		}
		path := ""
		if a, err := awsfed.ParseRoleARN(g.RoleARN); err == nil && a.Path != "/" {
			path = a.Path
		}
		acct := g.AccountName
		if acct == "" {
			acct = g.AccountID
		}
		link := consoleLink(acct, g.RoleName)
		p.Accounts[i].Roles = append(p.Accounts[i].Roles, roleView{
			Name: g.RoleName, Path: path, ARN: g.RoleARN, Session: sessionText(g.SessionSeconds),
			DeepLink: publicURL + link, Partition: g.Partition,
			MFA: g.RequireMFA || len(g.MFAMethods) > 0, Passkey: len(g.MFAMethods) == 1 && g.MFAMethods[0] == identity.MethodWebAuthn,
			Elsewhere: otherPartition(consolePartition, g),
			// the ARN holds the account ID, the path and the role name
			Search: strings.ToLower(g.AccountName + " " + g.RoleARN),
		})
		if g.Elevation != nil {
			r := &p.Accounts[i].Roles[len(p.Accounts[i].Roles)-1]
			r.Elevated, r.ElevatedEnds = clockText(g.Elevation.EndsAt), g.Elevation.EndsAt.UTC().Format("2006-01-02 15:04 UTC")
		}
	}
	slices.SortFunc(p.Accounts, func(a, b accountView) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	for _, a := range p.Accounts {
		slices.SortFunc(a.Roles, func(x, y roleView) int {
			return cmp.Or(cmp.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)), cmp.Compare(x.ARN, y.ARN))
		})
	}
	return p
}

// clockText is the time of day of t, in UTC: "14:05 UTC".
func clockText(t time.Time) string { return t.UTC().Format("15:04") + " UTC" }

// addEligible adds the roles the user may request (Result.Eligible) to p,
// grouped by account like the standing roles; grants tells which of them
// an active elevation grants now.
func (p *portalView) addEligible(eligible, grants []rolemap.Grant) {
	byID := map[string]int{}
	for _, g := range eligible {
		i, ok := byID[g.AccountID]
		if !ok {
			i = len(p.Eligible)
			byID[g.AccountID] = i
			p.Eligible = append(p.Eligible, eligibleAccountView{Name: g.AccountName, ID: g.AccountID, Partition: g.Partition})
		}
		path := ""
		if a, err := awsfed.ParseRoleARN(g.RoleARN); err == nil && a.Path != "/" {
			path = a.Path
		}
		r := eligibleRoleView{Name: g.RoleName, Path: path, ARN: g.RoleARN,
			Request: ElevationPath + "?role=" + url.QueryEscape(g.RoleARN)}
		if el := g.Eligible; el != nil {
			r.Max, r.Approvers, r.Reason = sessionText(el.MaxSeconds), el.Approvers, el.RequireReason || el.ReasonPattern != ""
		}
		for _, s := range grants {
			if s.RoleARN == g.RoleARN && s.Elevation != nil {
				r.ActiveUntil, r.ActiveEnds = clockText(s.Elevation.EndsAt), s.Elevation.EndsAt.UTC().Format("2006-01-02 15:04 UTC")
			}
		}
		p.Eligible[i].Roles = append(p.Eligible[i].Roles, r)
	}
	slices.SortFunc(p.Eligible, func(a, b eligibleAccountView) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	for _, a := range p.Eligible {
		slices.SortFunc(a.Roles, func(x, y eligibleRoleView) int {
			return cmp.Or(cmp.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)), cmp.Compare(x.ARN, y.ARN))
		})
	}
}

// otherPartition reports whether g cannot be signed in to from here.
func otherPartition(consolePartition string, g rolemap.Grant) bool {
	p := g.Partition
	if p == "" {
		p = "aws"
	}
	return consolePartition != "" && p != consolePartition
}

// consoleLink is the deep link of a role: /aws/console?role=<account>/<role>.
// '/' needs no escaping in a query (RFC 3986 3.4); keeping it makes the link
// readable.
func consoleLink(account, role string) string {
	return ConsolePath + "?role=" + strings.ReplaceAll(url.QueryEscape(account+"/"+role), "%2F", "/")
}

// sessionText is a session length as the page shows it: "1 h", "90 min";
// "" for none.
func sessionText(secs int) string {
	switch {
	case secs <= 0:
		return ""
	case secs%3600 == 0:
		return strconv.Itoa(secs/3600) + " h"
	default:
		return strconv.Itoa((secs+59)/60) + " min"
	}
}
