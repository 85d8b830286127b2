package portal

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

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

// Input bounds of /aws/console: a role ARN is at most 2048 bytes
// (awsfed.MaxARNLength); a console URL well under 4 KiB.
const (
	maxRoleParam        = 2048
	maxDestinationParam = 4096
)

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
// form (by the server, before this handler). GET serves bookmarks and
// shared deep links (IdP-initiated links are GETs in Okta and ADFS too). A
// GET cannot be CSRF-checked, and need not be: its only effect is a SAML
// response, for a role the signed-in user holds now, that the user's own
// browser posts to the AWS ACS (never to an address the request chose),
// with a RelayState that must be an AWS console URL. The page cannot be
// framed (frame-ancestors 'none') nor read across origins, so another site
// learns nothing from it. What another site could still do is switch the
// user's AWS console session to another role of theirs; so a GET that the
// browser marks as coming from another site (Sec-Fetch-Site cross-site or
// same-site) is not posted on automatically: it gets a confirmation page
// whose Continue button is an ordinary CSRF-checked POST. Bookmarks and
// typed URLs (Sec-Fetch-Site none), links within Warden (same-origin) and
// clients that send no Sec-Fetch-Site (as Go's CrossOriginProtection
// treats them) go straight on.
func (p *UI) handleConsole(c *gin.Context) {
	post := c.Request.Method == http.MethodPost
	var roleRef, dest string
	if post {
		// the server parsed the form for its CSRF check
		roleRef, dest = c.Request.PostForm.Get("role"), c.Request.PostForm.Get("destination")
	} else {
		q := c.Request.URL.Query()
		roleRef, dest = q.Get("role"), q.Get("destination")
	}
	p.console(c, roleRef, dest, post)
}

// console is handleConsole after the request's parameters are read: the
// session (looked up afresh in the directory: the route is Fresh; or the
// one a sign-in just made, AnswerNext), then the role and the response.
func (p *UI) console(c *gin.Context, roleRef, dest string, post bool) {
	sess, ok := web.CurrentSession(c)
	if !ok {
		if post {
			// The session ended while the page was open: sign in, then
			// come back to the same role as a GET.
			web.RedirectToLoginNext(c, consoleQuery(roleRef, dest))
			return
		}
		web.RedirectToLogin(c)
		return
	}
	if roleRef == "" || len(roleRef) > maxRoleParam || len(dest) > maxDestinationParam {
		web.FailPage(c, http.StatusBadRequest, "Bad request",
			"The link does not name a role Warden can read. Pick the role on the portal page.", "/", nil)
		return
	}
	ctx := c.Request.Context()
	user := sess.User
	ev := audit.Event{Actor: user.Username, Action: "aws.console", ClientIP: web.ClientIP(c), RequestID: web.RequestID(ctx)}
	res, err := p.backend.Grants(ctx, user)
	if err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "portal: grants", slog.String("err", err.Error()))
		web.Fail(c, http.StatusServiceUnavailable, "", nil)
		return
	}
	grant, ok := resolveRole(res.Grants, roleRef)
	if !ok {
		ev.Object, ev.Result = audit.Clip(roleRef, 256), "denied"
		if el, eligible := resolveRole(res.Eligible, roleRef); eligible {
			// A bookmark of a role the user may request: say how.
			ev.Object, ev.Result = el.RoleARN, "not_elevated"
			p.audit.Record(ctx, ev)
			msg := "You may request this role for a limited time, but you do not hold it now. Request it from the portal (Roles you may request)."
			if el.Elevation != nil {
				msg = "Your elevation of this role ends at " + el.Elevation.EndsAt.UTC().Format("15:04 UTC") +
					", sooner than the shortest AWS session (15 minutes). Request it again from the portal."
			}
			web.FailPage(c, http.StatusForbidden, "Not elevated", msg, "/", nil)
			return
		}
		p.audit.Record(ctx, ev)
		web.FailPage(c, http.StatusForbidden, "Not your role",
			"You do not hold this role (or it does not exist). The portal lists the roles you hold now.", "/", nil)
		return
	}
	ev.Object = grant.RoleARN
	if otherPartition(p.consolePartition(), grant) {
		p.consoleFailed(c, ev, fmt.Errorf("portal: role partition %q: %w", grant.Partition, ErrOtherPartition))
		return
	}
	// A role that asks for more than this sign-in gave: the second factor
	// first, then back here (a GET that resumes with the same role).
	if !web.RequireFactor(c, web.FactorNeed{MFA: grant.RequireMFA, Methods: grant.MFAMethods}, consoleQuery(roleRef, dest)) {
		ev.Result = "step_up"
		p.audit.Record(ctx, ev)
		return
	}
	page := consolePage{AccountName: grant.AccountName, AccountID: grant.AccountID, RoleName: grant.RoleName,
		RoleARN: grant.RoleARN, Destination: dest}
	if !post && crossSiteNavigation(c.Request) {
		web.RenderCard(c, http.StatusOK, pageConfirm, &page)
		return
	}
	resp, err := p.backend.Console(ctx, user, sess.SignIn(), grant, dest)
	if err != nil {
		p.consoleFailed(c, ev, err)
		return
	}
	sources, err := formActionSources(resp.URL)
	if err == nil {
		err = web.AllowFormAction(c, sources...)
	}
	if err != nil {
		p.consoleFailed(c, ev, err)
		return
	}
	ev.Result = "success"
	ev.Detail = map[string]string{"account": grant.AccountID, "acs": resp.URL}
	if dest != "" {
		ev.Detail["destination"] = audit.Clip(dest, 512)
	}
	p.audit.Record(ctx, ev)
	page.Post = resp
	c.Header("Cache-Control", "no-store") // a bearer assertion: never cached
	p.renderPost(c, user, &page)
}

// consoleFailed answers a refused or failed Backend.Console, audited.
func (p *UI) consoleFailed(c *gin.Context, ev audit.Event, err error) {
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
	p.audit.Record(ctx, ev)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	p.log.LogAttrs(ctx, level, "aws console sign-in refused", slog.Int("status", status),
		slog.String("role", ev.Object), slog.String("err", err.Error()))
	if heading == "" {
		web.Fail(c, status, "", nil)
		return
	}
	web.FailPage(c, status, heading, msg, "/", nil)
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
// sign-in or a second factor).
func consoleQuery(role, dest string) string {
	if role == "" || len(role) > maxRoleParam || len(dest) > maxDestinationParam {
		return "/"
	}
	q := ConsolePath + "?role=" + url.QueryEscape(role)
	if dest != "" {
		q += "&destination=" + url.QueryEscape(dest)
	}
	return q
}

// formActionSources are the CSP form-action sources the SAML POST page
// needs: the ACS origin and, when the ACS is an AWS sign-in host, the
// console hosts of its partition: AWS answers the POST with redirects into
// the console, and CSP Level 3 (form-action) applies to the redirects of a
// form submission too. An unusable ACS is an error (answered 500: it came
// from configuration or metadata, not from the user).
func formActionSources(acs string) ([]string, error) {
	u, err := url.Parse(acs)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("portal: acs url %q is not an http(s) URL", acs)
	}
	out := []string{u.Scheme + "://" + u.Host}
	host := strings.ToLower(u.Hostname())
	for _, id := range awsfed.PartitionIDs() {
		p, _ := awsfed.LookupPartition(id)
		if host == p.SigninHost || strings.HasSuffix(host, "."+p.SigninHost) {
			out = append(out, "https://"+p.ConsoleHost, "https://*."+p.ConsoleHost, "https://*."+p.SigninHost)
		}
	}
	return out, nil
}
