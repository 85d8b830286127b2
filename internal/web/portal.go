package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// The portal: the home page lists the AWS roles the signed-in user holds,
// grouped by account, and /aws/console signs the user in to the AWS console
// in one of them (an IdP-initiated SAML response, DESIGN.md flow 1).
//
// The role a request names is always resolved against the user's grants as
// the rules give them now (Portal.Grants, evaluated from the session user's
// groups and attributes): rules may have changed since sign-in, and a role
// taken away must not be reachable through an old page or a bookmark.

// Portal is what the portal pages need of the SAML identity provider and the
// rules engine (internal/app adapts samlidp and the rolemap Holder to it).
type Portal interface {
	// Grants returns the roles user holds under the current rules.
	Grants(ctx context.Context, user identity.User) (rolemap.Result, error)
	// Console makes the IdP-initiated SAML response that signs user in to
	// the AWS console in grant (a grant of Grants' result), going to
	// relayState (an AWS console URL, or "" for the console home); authn
	// is how the user signed in (the assertion states it). A refusal the
	// user can act on wraps one of ErrBadDestination, ErrResponseTooLarge
	// or ErrUnusableUser; any other error is internal.
	Console(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, relayState string) (ConsolePost, error)
}

// ConsolePartitioner is a Portal that signs in to the console of one AWS
// partition only ("aws", "aws-us-gov", "aws-cn"): roles of the others are
// listed without a Console button, and /aws/console refuses them with
// ErrOtherPartition before calling Console.
type ConsolePartitioner interface {
	ConsolePartition() string
}

// ConsolePost is an HTTP-POST binding message (SAML bindings §3.5): the
// browser POSTs SAMLResponse and RelayState to URL (the AWS ACS).
type ConsolePost struct {
	URL, SAMLResponse, RelayState string
}

// Refusals of Portal.Console, shown to the user with their own text.
var (
	// ErrBadDestination: the destination (RelayState) is not an AWS console
	// URL of the role's partition. Answered 400.
	ErrBadDestination = errors.New("destination is not an AWS console URL")
	// ErrResponseTooLarge: the signed response would exceed what AWS STS
	// accepts (100,000 base64 characters; aws-federation-rules.md item 20).
	ErrResponseTooLarge = errors.New("saml response too large for AWS")
	// ErrUnusableUser: the user's directory data cannot make a valid
	// assertion (e.g. no usable RoleSessionName, item 11). Answered 422.
	ErrUnusableUser = errors.New("user data cannot make a valid assertion")
	// ErrOtherPartition: the role is in an AWS partition this Warden does
	// not sign in to (ConsolePartitioner). Answered 422.
	ErrOtherPartition = errors.New("role is in another AWS partition")
	// ErrNeedsFactor: the sign-in does not satisfy the role's MFA
	// requirement (the handler asks for the factor first, so this is a
	// second line of defence). Answered 403.
	ErrNeedsFactor = errors.New("role needs a stronger sign-in")
)

// Input bounds of /aws/console: a role ARN is at most 2048 bytes
// (awsfed.MaxARNLength); a console URL well under 4 KiB.
const (
	maxRoleParam        = 2048
	maxDestinationParam = 4096
)

// portalView is the home page's AWS section.
type portalView struct {
	Accounts []accountView
	Roles    int
	Error    bool // the roles could not be listed (Grants failed)
	// Eligible are the roles the user may request for a time
	// (rolemap.Result.Eligible), grouped like Accounts.
	Eligible []eligibleAccountView
}

// ElevationPath is the page that requests an elevation (served by the
// elevation Mount): ?role=<ARN> ticks a role.
const ElevationPath = "/elevations/new"

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

// consolePartition is the Portal's partition, or "" (any).
func (s *Server) consolePartition() string {
	if cp, ok := s.portal.(ConsolePartitioner); ok {
		return cp.ConsolePartition()
	}
	return ""
}

// consoleLink is the deep link of a role: /aws/console?role=<account>/<role>.
// '/' needs no escaping in a query (RFC 3986 3.4); keeping it makes the link
// readable.
func consoleLink(account, role string) string {
	return "/aws/console?role=" + strings.ReplaceAll(url.QueryEscape(account+"/"+role), "%2F", "/")
}

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

// resolveRole finds the grant that ref names among grants. ref is a role
// ARN (exact), or "<account>/<role>" where <account> is the account's name
// (compared case-insensitively: names are unique that way) or its 12-digit
// ID, and <role> the role name, optionally with its IAM path
// ("team/ops/Deploy"). IAM role names are unique per account
// case-insensitively, so the role name is compared that way too.
func resolveRole(grants []rolemap.Grant, ref string) (rolemap.Grant, bool) {
	if strings.HasPrefix(ref, "arn:") {
		for _, g := range grants {
			if g.RoleARN == ref {
				return g, true
			}
		}
		return rolemap.Grant{}, false
	}
	acct, role, ok := strings.Cut(ref, "/")
	if !ok || acct == "" || role == "" {
		return rolemap.Grant{}, false
	}
	for _, g := range grants {
		if g.AccountID != acct && !strings.EqualFold(g.AccountName, acct) {
			continue
		}
		if strings.EqualFold(g.RoleName, role) {
			return g, true
		}
		if a, err := awsfed.ParseRoleARN(g.RoleARN); err == nil && strings.EqualFold(strings.TrimPrefix(a.Path, "/")+a.Name, role) {
			return g, true
		}
	}
	return rolemap.Grant{}, false
}

// consolePage is the data of saml_post.html and console_confirm.html.
type consolePage struct {
	Post        ConsolePost
	AccountName string
	AccountID   string
	RoleName    string
	RoleARN     string
	Destination string
}

// handleConsole serves GET and POST /aws/console.
//
// POST is what the portal's Console buttons send: CSRF-checked like every
// form. GET serves bookmarks and shared deep links (IdP-initiated links are
// GETs in Okta and ADFS too). A GET cannot be CSRF-checked, and need not be:
// its only effect is a SAML response, for a role the signed-in user holds
// now, that the user's own browser posts to the AWS ACS (never to an address
// the request chose), with a RelayState that must be an AWS console URL. The
// page cannot be framed (frame-ancestors 'none') nor read across origins, so
// another site learns nothing from it. What another site could still do is
// switch the user's AWS console session to another role of theirs; so a GET
// that the browser marks as coming from another site (Sec-Fetch-Site
// cross-site or same-site) is not posted on automatically: it gets a
// confirmation page whose Continue button is an ordinary CSRF-checked POST.
// Bookmarks and typed URLs (Sec-Fetch-Site none), links within Warden
// (same-origin) and clients that send no Sec-Fetch-Site (as Go's
// CrossOriginProtection treats them) go straight on.
func (s *Server) handleConsole(c *gin.Context) {
	post := c.Request.Method == http.MethodPost
	var roleRef, dest string
	if post {
		if !s.parseForm(c) {
			return
		}
		roleRef, dest = c.Request.PostForm.Get("role"), c.Request.PostForm.Get("destination")
	} else {
		q := c.Request.URL.Query()
		roleRef, dest = q.Get("role"), q.Get("destination")
	}
	s.console(c, roleRef, dest, post)
}

// console is handleConsole after the request's parameters are read: the
// session (fresh from the directory), then the role and the response. A
// sign-in whose next page is a console link comes here directly with the
// session it made (signedIn).
func (s *Server) console(c *gin.Context, roleRef, dest string, post bool) {
	st := state(c)
	sess, token, err := st.signedIn, st.token, error(nil)
	if sess == nil {
		var fresh store.Session
		fresh, token, err = s.freshSession(c, "console")
		sess = &fresh
	}
	if err != nil {
		if post && (errors.Is(err, errNoSession) || errors.Is(err, store.ErrNotFound)) {
			// The session ended while the page was open: sign in, then
			// come back to the same role as a GET.
			c.Redirect(http.StatusSeeOther, loginURL(consoleQuery(roleRef, dest)))
			c.Abort()
			return
		}
		s.sessionFailure(c, err)
		return
	}
	if post {
		if err := s.checkCSRF(c, token); err != nil {
			s.csrfRejected(c, err, "/")
			return
		}
	}
	if roleRef == "" || len(roleRef) > maxRoleParam || len(dest) > maxDestinationParam {
		s.renderErrorPage(c, http.StatusBadRequest, "Bad request",
			"The link does not name a role Warden can read. Pick the role on the portal page.", "/")
		return
	}
	ctx := c.Request.Context()
	user := sess.User
	ev := audit.Event{Actor: user.Username, Action: "aws.console", ClientIP: st.clientIP, RequestID: st.id}
	res, err := s.portal.Grants(ctx, user)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "portal: grants", slog.String("err", err.Error()))
		s.renderError(c, http.StatusServiceUnavailable)
		return
	}
	grant, ok := resolveRole(res.Grants, roleRef)
	if !ok {
		ev.Object, ev.Result = audit.Clip(roleRef, 256), "denied"
		if el, eligible := resolveRole(res.Eligible, roleRef); eligible {
			// A bookmark of a role the user may request: say how.
			ev.Object, ev.Result = el.RoleARN, "not_elevated"
			s.audit.Record(ctx, ev)
			msg := "You may request this role for a limited time, but you do not hold it now. Request it from the portal (Roles you may request)."
			if el.Elevation != nil {
				msg = "Your elevation of this role ends at " + el.Elevation.EndsAt.UTC().Format("15:04 UTC") +
					", sooner than the shortest AWS session (15 minutes). Request it again from the portal."
			}
			s.renderErrorPage(c, http.StatusForbidden, "Not elevated", msg, "/")
			return
		}
		s.audit.Record(ctx, ev)
		s.renderErrorPage(c, http.StatusForbidden, "Not your role",
			"You do not hold this role (or it does not exist). The portal lists the roles you hold now.", "/")
		return
	}
	ev.Object = grant.RoleARN
	if otherPartition(s.consolePartition(), grant) {
		s.consoleFailed(c, ev, fmt.Errorf("portal: role partition %q: %w", grant.Partition, ErrOtherPartition))
		return
	}
	// A role that asks for more than this sign-in gave: the second factor
	// first, then back here (a GET that resumes with the same role).
	if !s.requireFactor(c, *sess, FactorNeed{MFA: grant.RequireMFA, Methods: grant.MFAMethods}, consoleQuery(roleRef, dest)) {
		ev.Result = "step_up"
		s.audit.Record(ctx, ev)
		return
	}
	page := consolePage{AccountName: grant.AccountName, AccountID: grant.AccountID, RoleName: grant.RoleName,
		RoleARN: grant.RoleARN, Destination: dest}
	if !post && crossSiteNavigation(c.Request) {
		csrf, err := s.ensureCSRF(c, token)
		if err != nil {
			s.fail(c, http.StatusInternalServerError, err)
			return
		}
		s.render(c, http.StatusOK, "console_confirm.html", view{User: &user, CSRF: csrf, Console: &page})
		return
	}
	p, err := s.portal.Console(ctx, user, sess.SignIn(), grant, dest)
	if err != nil {
		s.consoleFailed(c, ev, err)
		return
	}
	if err := AllowFormAction(c, p.URL); err != nil {
		s.consoleFailed(c, ev, err)
		return
	}
	ev.Result = "success"
	ev.Detail = map[string]string{"account": grant.AccountID, "acs": p.URL}
	if dest != "" {
		ev.Detail["destination"] = audit.Clip(dest, 512)
	}
	s.audit.Record(ctx, ev)
	page.Post = p
	c.Header("Cache-Control", "no-store") // a bearer assertion: never cached
	s.renderPost(c, view{User: &user, Console: &page})
}

// consoleFailed answers a refused or failed Portal.Console, audited.
func (s *Server) consoleFailed(c *gin.Context, ev audit.Event, err error) {
	ctx := c.Request.Context()
	status, heading, msg := http.StatusInternalServerError, "", ""
	switch {
	case errors.Is(err, ErrBadDestination):
		status, ev.Result = http.StatusBadRequest, "bad_destination"
		heading, msg = "Not an AWS console address", "The destination of this link is not an AWS console URL, so Warden will not send you there."
	case errors.Is(err, ErrResponseTooLarge):
		status, ev.Result = http.StatusUnprocessableEntity, "too_large"
		heading, msg = "Too much to send to AWS", "The sign-in response for this role would be larger than AWS accepts. Ask your admin to reduce the session tags of your account."
	case errors.Is(err, ErrOtherPartition):
		status, ev.Result = http.StatusUnprocessableEntity, "other_partition"
		heading, msg = "Not signed in from here", "This role is in an AWS partition (such as GovCloud or China) that this Warden does not sign in to. Use the sign-in your admin set up for that partition."
	case errors.Is(err, ErrNeedsFactor):
		status, ev.Result = http.StatusForbidden, "insufficient_authentication"
		heading, msg = "A second factor is needed", "This role needs a sign-in with a second factor. Sign out and sign in again, then confirm with your second factor."
	case errors.Is(err, ErrUnusableUser):
		status, ev.Result = http.StatusUnprocessableEntity, "unusable_user"
		heading, msg = "Your account cannot sign in to AWS", "Your directory account lacks what AWS needs (such as a usable session name). Ask your admin; the request ID below helps them find the reason."
	default:
		ev.Result = "error"
	}
	s.audit.Record(ctx, ev)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "aws console sign-in refused", slog.Int("status", status),
		slog.String("role", ev.Object), slog.String("err", err.Error()))
	if heading == "" {
		s.renderError(c, status)
		return
	}
	s.renderErrorPage(c, status, heading, msg, "/")
}

// crossSiteNavigation reports whether the browser marks the request as
// started by another site (Fetch Metadata, W3C: Sec-Fetch-Site).
func crossSiteNavigation(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return false
	}
	return true
}

// consoleQuery is the GET form of a console request (for the return after
// sign-in).
func consoleQuery(role, dest string) string {
	if role == "" || len(role) > maxRoleParam || len(dest) > maxDestinationParam {
		return "/"
	}
	q := "/aws/console?role=" + url.QueryEscape(role)
	if dest != "" {
		q += "&destination=" + url.QueryEscape(dest)
	}
	return q
}

// AllowFormAction widens the Content-Security-Policy of this response so
// that its page may submit a form to target (an http(s) URL: a SAML ACS).
// Every page's policy allows forms to this origin only (form-action 'self');
// a page of the SAML HTTP-POST binding posts elsewhere. Call it before
// rendering. An unusable target is an error (answer 500: it came from
// configuration or metadata, not from the user).
func AllowFormAction(c *gin.Context, target string) error {
	sources, err := formActionSources(target)
	if err != nil {
		return err
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"form-action 'self'", "form-action 'self' "+sources, 1))
	return nil
}

// formActionSources are the CSP form-action sources the SAML POST page
// needs: the ACS origin and, when the ACS is an AWS sign-in host, the
// console hosts of its partition: AWS answers the POST with redirects into
// the console, and CSP Level 3 (form-action) applies to the redirects of a
// form submission too.
func formActionSources(acs string) (string, error) {
	u, err := url.Parse(acs)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("portal: acs url %q is not an http(s) URL", acs)
	}
	out := u.Scheme + "://" + u.Host
	host := strings.ToLower(u.Hostname())
	for _, id := range awsfed.PartitionIDs() {
		p, _ := awsfed.LookupPartition(id)
		if host == p.SigninHost || strings.HasSuffix(host, "."+p.SigninHost) {
			out += " https://" + p.ConsoleHost + " https://*." + p.ConsoleHost + " https://*." + p.SigninHost
		}
	}
	return out, nil
}
