package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/accesskeys"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// KeysPath serves the Access keys panel of a role: GET shows the form,
// POST makes the keys.
const KeysPath = "/aws/keys"

const pageKeys = "access_keys.html"

// KeyMinter makes short-term credentials for a role (accesskeys.Service).
type KeyMinter interface {
	// Choices are the session lengths offered for grant, in seconds.
	Choices(grant rolemap.Grant) []int
	// DefaultChoice is the length selected first.
	DefaultChoice(grant rolemap.Grant) int
	// Mint signs a response for grant and exchanges it at STS. Refusals:
	// accesskeys.ErrDuration, ErrNeedsFactor (the role needs a second
	// factor the sign-in lacks), ErrUnusableUser, ErrResponseTooLarge,
	// ErrOtherPartition, accesskeys.ErrSTS (AWS refused or was not
	// reached).
	Mint(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result,
		seconds int, clientIP, requestID string) (accesskeys.Keys, error)
}

// keysView is the data of access_keys.html.
type keysView struct {
	RoleName, AccountName, AccountID, RoleARN string
	ElevatedUntil                             string
	Choices                                   []choiceView
	// after POST
	Keys    []accesskeys.Form
	Expires string // "14:05 UTC"
	Length  string // "1 h"
	Again   string // the form again
}

type choiceView struct {
	Seconds  int
	Label    string
	Selected bool
}

// keysLink is the panel of the role ref (account/role or an ARN).
func keysLink(ref string) string { return KeysPath + "?role=" + url.QueryEscape(ref) }

// handleKeys serves GET and POST /aws/keys. The role is resolved against
// the user's grants now (the route is Fresh), like a console click; a role
// that needs a second factor asks for it first. The keys are in the POST's
// answer only, which is never cached, and nowhere else: not logged, not
// audited (the access key ID is, which names the session in CloudTrail).
func (p *UI) handleKeys(c *gin.Context) {
	post := c.Request.Method == http.MethodPost
	var roleRef string
	if post {
		roleRef = c.Request.PostForm.Get("role") // the server parsed the form for its CSRF check
	} else {
		roleRef = c.Query("role")
	}
	sess, ok := web.CurrentSession(c)
	if !ok {
		if post {
			web.RedirectToLoginNext(c, keysLink(roleRef))
			return
		}
		web.RedirectToLogin(c)
		return
	}
	if roleRef == "" || len(roleRef) > maxRoleParam {
		web.FailPage(c, http.StatusBadRequest, "Bad request",
			"The link does not name a role Warden can read. Pick the role on the portal page.", "/", nil)
		return
	}
	ctx := c.Request.Context()
	user := sess.User
	res, err := p.backend.Grants(ctx, user)
	if err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "portal: grants", slog.String("err", err.Error()))
		web.Fail(c, http.StatusServiceUnavailable, "", nil)
		return
	}
	grant, ok := resolveRole(res.Grants, roleRef)
	if !ok {
		msg := "You do not hold this role (or it does not exist). The portal lists the roles you hold now."
		if _, eligible := resolveRole(res.Eligible, roleRef); eligible {
			msg = "You may request this role for a limited time, but you do not hold it now. Request it from the portal (Roles you may request)."
		}
		web.FailPage(c, http.StatusForbidden, "Not your role", msg, "/", nil)
		return
	}
	if otherPartition(p.consolePartition(), grant) {
		web.FailPage(c, http.StatusUnprocessableEntity, "Not from here",
			"This role is in an AWS partition (such as GovCloud or China) that this Warden does not sign in to. Use the warden command line with --via web-identity, or the sign-in your admin set up for that partition.", "/", nil)
		return
	}
	if !web.RequireFactor(c, web.FactorNeed{MFA: grant.RequireMFA, Methods: grant.MFAMethods}, keysLink(roleRef)) {
		return
	}
	v := &keysView{RoleName: grant.RoleName, AccountName: grant.AccountName, AccountID: grant.AccountID, RoleARN: grant.RoleARN}
	if grant.Elevation != nil {
		v.ElevatedUntil = clockText(grant.Elevation.EndsAt)
	}
	def := p.keys.DefaultChoice(grant)
	for _, s := range p.keys.Choices(grant) {
		v.Choices = append(v.Choices, choiceView{Seconds: s, Label: sessionText(s), Selected: s == def})
	}
	if !post {
		web.Render(c, http.StatusOK, pageKeys, v)
		return
	}
	secs, err := strconv.Atoi(c.Request.PostForm.Get("duration"))
	if err != nil {
		web.FailPage(c, http.StatusBadRequest, "Bad request", "Pick how long the keys should work from the list.", keysLink(roleRef), nil)
		return
	}
	keys, err := p.keys.Mint(ctx, user, sess.SignIn(), grant, res, secs, web.ClientIP(c), web.RequestID(ctx))
	if err != nil {
		p.keysFailed(c, roleRef, err)
		return
	}
	c.Header("Cache-Control", "no-store") // credentials: never cached
	v.Keys, v.Expires, v.Length, v.Again = keys.Forms(), clockText(keys.Expiration), sessionText(keys.Seconds), keysLink(roleRef)
	if keys.Expiration.IsZero() {
		v.Expires = clockText(time.Now().Add(time.Duration(keys.Seconds) * time.Second))
	}
	web.Render(c, http.StatusOK, pageKeys, v)
}

// keysFailed answers a refused or failed Mint (audited by it).
func (p *UI) keysFailed(c *gin.Context, roleRef string, err error) {
	ctx := c.Request.Context()
	status, heading, msg := http.StatusInternalServerError, "", ""
	switch {
	case errors.Is(err, accesskeys.ErrDuration):
		status, heading, msg = http.StatusBadRequest, "Not that long", "This role does not allow keys for that long. Pick a time from the list."
	case errors.Is(err, ErrNeedsFactor):
		status, heading, msg = http.StatusForbidden, "A second factor is needed", "This role needs a sign-in with a second factor. Sign out and sign in again, then confirm with your second factor."
	case errors.Is(err, ErrUnusableUser):
		status, heading, msg = http.StatusUnprocessableEntity, "Your account cannot sign in to AWS", "Your directory account lacks what AWS needs (such as a usable session name). Ask your admin; the request ID below helps them find the reason."
	case errors.Is(err, ErrResponseTooLarge):
		status, heading, msg = http.StatusUnprocessableEntity, "Too much to send to AWS", "The sign-in response for this role would be larger than AWS accepts. Ask your admin to reduce the session tags of your account."
	case errors.Is(err, ErrOtherPartition):
		status, heading, msg = http.StatusUnprocessableEntity, "Not from here", "This role is in an AWS partition that this Warden does not sign in to."
	case errors.Is(err, accesskeys.ErrSTS):
		status, heading, msg = http.StatusBadGateway, "AWS gave no keys", "AWS STS refused the request or could not be reached. Try again in a minute; if it keeps failing, tell your admin the request ID below (the role's trust policy may not accept Warden's sign-in)."
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	p.log.LogAttrs(ctx, level, "access keys refused", slog.Int("status", status), slog.String("err", err.Error()))
	if heading == "" {
		web.Fail(c, status, "", fmt.Errorf("portal: access keys: %w", err))
		return
	}
	web.FailPage(c, status, heading, msg, keysLink(roleRef), nil)
}
