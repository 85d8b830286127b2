package oidcop

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
	devicetemplates "github.com/wardenidp/warden/templates/device"
)

// The device verification pages (RFC 8628 §3.3): the user, signed in,
// types the user code the device shows (or opens verification_uri_complete,
// which only pre-fills it), sees what asks for access (client, IP address
// and time of the request, scopes) and approves or denies it explicitly.
//
//	GET  /device          the code form; ?user_code= pre-fills it, nothing more
//	POST /device          look the code up; the confirmation page
//	POST /device/approve  approve (the code in a hidden field, looked up again)
//	POST /device/deny     deny
//
// Every route requires a signed-in session (anonymous: the sign-in page,
// which comes back with the code kept). Before the confirmation page and
// before approving, a user who has a second factor is asked for it
// (web.RequireFactor with IfEnrolled), coming back to the pre-filled form:
// the CLI's grant records how the approving session authenticated (amr,
// auth_time), and carries MFA whenever the user can give it, so that roles
// that demand it work without a second sign-in.
//
// The POST routes are CSRF-checked by
// internal/web's Mount middleware, so a cross-site form cannot approve; a
// GET never changes anything, so a link alone cannot approve (RFC 8628
// §5.4, remote phishing).
//
// Wrong codes (unknown or expired) are counted per session and per client
// IP (store.DeviceLimiter); past the limit every code is refused with 429
// and Retry-After until the window ends, right or wrong (RFC 8628 §5.1:
// the user code has ~34 bits, so guessing must be bounded). Codes of the
// wrong shape cannot match any code and are refused without counting.
//
// Audit: device.approve, device.deny, device.code_wrong (result
// unknown_code, expired or rate_limited). The user code is logged (it is
// short-lived and useless without the user's approval); the device code
// never reaches these pages.

// deviceBackend is what the pages need of the provider.
type deviceBackend interface {
	DeviceRequest(ctx context.Context, userCode string) (DeviceRequest, error)
	ApproveDevice(ctx context.Context, userCode string, user identity.User, authn identity.Authn) error
	DenyDevice(ctx context.Context, userCode string) error
}

// DeviceCodeLimiter counts wrong user codes (store.DeviceLimiter).
type DeviceCodeLimiter interface {
	Check(ctx context.Context, sessionKey, ip string) (store.Decision, error)
	Fail(ctx context.Context, sessionKey, ip string) error
}

// DeviceUIDeps are the collaborators of the device pages.
type DeviceUIDeps struct {
	Limiter DeviceCodeLimiter // required
	Audit   audit.Logger      // nil: audit.Discard
	Logger  *slog.Logger      // nil: discard
	Clock   func() time.Time  // nil: time.Now
}

// DeviceUI serves the device verification pages. It is a web.Mount and a
// web.Templater.
type DeviceUI struct {
	// stepUp is how recent the factor must be for scope elevate
	// (SetStepUpMaxAge; default 5 minutes).
	stepUp  time.Duration
	backend deviceBackend
	limiter DeviceCodeLimiter
	audit   audit.Logger
	log     *slog.Logger
	now     func() time.Time
}

// DeviceUI returns the device verification pages of p, to mount next to
// p (a web.Mount and web.Templater of its own). The wrong-code counters
// live in st under limits (defaulted here).
func (p *Provider) DeviceUI(st *store.Store, limits store.DeviceLimitConfig) (*DeviceUI, error) {
	if st == nil {
		return nil, errors.New("oidcop: device pages: no store")
	}
	limits.SetDefaults()
	lim, err := store.NewDeviceLimiter(st, limits, p.now)
	if err != nil {
		return nil, fmt.Errorf("oidcop: device pages: %w", err)
	}
	return newDeviceUI(p, DeviceUIDeps{Limiter: lim, Audit: p.audit, Logger: p.log, Clock: p.now})
}

// newDeviceUI builds the pages on backend.
func newDeviceUI(backend deviceBackend, deps DeviceUIDeps) (*DeviceUI, error) {
	if backend == nil {
		return nil, errors.New("oidcop: device pages: no backend")
	}
	if deps.Limiter == nil {
		return nil, errors.New("oidcop: device pages: DeviceUIDeps.Limiter is required")
	}
	u := &DeviceUI{backend: backend, limiter: deps.Limiter, audit: deps.Audit, log: deps.Logger, now: deps.Clock, stepUp: 5 * time.Minute}
	if u.audit == nil {
		u.audit = audit.Discard{}
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	return u, nil
}

// Routes implements web.Mount.
func (u *DeviceUI) Routes() []web.Route {
	const formBody = 4 << 10 // a code and a CSRF token
	return []web.Route{
		{Method: http.MethodGet, Path: "/device", Handler: u.handleForm},
		{Method: http.MethodPost, Path: "/device", Handler: u.handleLookup, MaxBody: formBody},
		// Fresh: the approval is given by the user as the directory has
		// them now (a disabled user approves nothing).
		{Method: http.MethodPost, Path: "/device/approve", Handler: u.handleDecide(true), MaxBody: formBody, Fresh: true},
		{Method: http.MethodPost, Path: "/device/deny", Handler: u.handleDecide(false), MaxBody: formBody},
	}
}

// Templates implements web.Templater: the device pages.
func (u *DeviceUI) Templates() (fs.FS, template.FuncMap) { return devicetemplates.FS, nil }

// Page names (templates/device).
const (
	pageDeviceForm    = "device.html"
	pageDeviceConfirm = "device_confirm.html"
	pageDeviceDone    = "device_done.html"
	pageDeviceLimited = "device_limited.html"
)

// maxTypedCode bounds what is echoed back into the form (a code is 9 characters).
const maxTypedCode = 32

// Public messages of the form.
const (
	msgCodeShape   = "That is not a valid code."
	hintCodeShape  = "A code has 8 letters, like BCDF-GHJK (no vowels, no digits)."
	msgCodeUnknown = "That code is not valid, or it has expired."
	hintCodeRetry  = "Check the code on your device. If it has expired, start again on the device to get a new one."
	msgCodeDecided = "This request was already approved or denied."
	hintCodeAgain  = "To connect the device again, start again on the device to get a new code."
)

type deviceFormData struct {
	Code        string
	Error, Hint string
	Notice      string
}

type scopeText struct{ Text, Raw string }

type deviceConfirmData struct {
	Code                 string // XXXX-XXXX
	ClientID, ClientName string
	ClientIP             string
	YourIP               string
	SameIP               bool
	Created, CreatedISO  string
	Ago, ExpiresIn       string
	Scopes               []scopeText
}

type deviceDoneData struct {
	Approved   bool
	ClientName string
}

type deviceLimitedData struct{ Wait string }

// typedCode is what the user typed, cut to maxTypedCode bytes at a rune
// boundary (only echoed back into the form, escaped by html/template).
func typedCode(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxTypedCode {
		return s
	}
	return strings.ToValidUTF8(s[:maxTypedCode], "")
}

// session returns the signed-in session, or sends the browser to sign in
// with next = /device?user_code=code (the code is kept; a POST cannot be
// replayed after sign-in, so the user lands on the pre-filled form).
func (u *DeviceUI) session(c *gin.Context, code string) (store.Session, bool) {
	sess, ok := web.CurrentSession(c)
	if ok {
		return sess, true
	}
	if c.Request.Method != http.MethodGet {
		next := &url.URL{Path: "/device"}
		if code != "" {
			next.RawQuery = url.Values{"user_code": {code}}.Encode()
		}
		r := c.Request.Clone(c.Request.Context())
		r.URL = next
		r.RequestURI = next.RequestURI()
		c.Request = r
	}
	web.RedirectToLogin(c)
	return store.Session{}, false
}

// handleForm is GET /device: the code form, pre-filled from ?user_code=.
// It never looks the code up and never approves.
func (u *DeviceUI) handleForm(c *gin.Context) {
	raw := typedCode(c.Query("user_code"))
	code := raw
	if n, ok := NormalizeUserCode(raw); ok {
		code = FormatUserCode(n)
	}
	if _, ok := u.session(c, code); !ok {
		return
	}
	data := deviceFormData{Code: code}
	if code != "" {
		data.Notice = "Check that this is the code your device shows, then continue."
	}
	web.Render(c, http.StatusOK, pageDeviceForm, data)
}

// handleLookup is POST /device: the confirmation page for a known code.
func (u *DeviceUI) handleLookup(c *gin.Context) {
	raw := typedCode(c.PostForm("user_code"))
	code, valid := NormalizeUserCode(raw)
	keep := raw
	if valid {
		keep = FormatUserCode(code)
	}
	sess, ok := u.session(c, keep)
	if !ok {
		return
	}
	if !valid {
		web.Render(c, http.StatusOK, pageDeviceForm, deviceFormData{Code: raw, Error: msgCodeShape, Hint: hintCodeShape})
		return
	}
	req, ok := u.lookup(c, sess, code)
	if !ok {
		return
	}
	if !web.RequireFactor(c, u.approvalNeed(req), resumeURL(code)) {
		return
	}
	web.Render(c, http.StatusOK, pageDeviceConfirm, u.confirmData(c, req, code))
}

// SetStepUpMaxAge sets how recent the second factor of an approval for
// scope elevate must be (mfa.step_up_max_age).
func (u *DeviceUI) SetStepUpMaxAge(d time.Duration) {
	if d > 0 {
		u.stepUp = d
	}
}

// approvalNeed is what approving a device demands of the session: the
// second factor, of a user who has one; for a sign-in that may request
// an elevation (scope elevate), a second factor given within the step-up
// age, from every user.
func (u *DeviceUI) approvalNeed(req DeviceRequest) web.FactorNeed {
	if slices.Contains(req.Scopes, ScopeElevate) {
		return web.FactorNeed{MFA: true, MaxAge: u.stepUp}
	}
	return web.FactorNeed{MFA: true, IfEnrolled: true}
}

// resumeURL is where the second-factor page comes back to: the code form,
// pre-filled (a POST cannot be resumed; the user continues from there).
func resumeURL(code string) string {
	return (&url.URL{Path: "/device", RawQuery: url.Values{"user_code": {FormatUserCode(code)}}.Encode()}).RequestURI()
}

// handleDecide is POST /device/approve (approve) and /device/deny.
func (u *DeviceUI) handleDecide(approve bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw := typedCode(c.PostForm("user_code"))
		code, valid := NormalizeUserCode(raw)
		keep := raw
		if valid {
			keep = FormatUserCode(code)
		}
		sess, ok := u.session(c, keep)
		if !ok {
			return
		}
		if !valid {
			web.Render(c, http.StatusBadRequest, pageDeviceForm, deviceFormData{Code: raw, Error: msgCodeShape, Hint: hintCodeShape})
			return
		}
		req, ok := u.lookup(c, sess, code)
		if !ok {
			return
		}
		var err error
		action := "device.deny"
		if approve {
			if !web.RequireFactor(c, u.approvalNeed(req), resumeURL(code)) {
				return
			}
			action = "device.approve"
			err = u.backend.ApproveDevice(c.Request.Context(), code, sess.User, sess.SignIn())
		} else {
			err = u.backend.DenyDevice(c.Request.Context(), code)
		}
		if err != nil {
			if u.rejected(c, sess, code, err) {
				return
			}
			web.Fail(c, http.StatusServiceUnavailable, "", fmt.Errorf("oidcop: %s: %w", action, err))
			return
		}
		detail := map[string]string{"client_id": req.ClientID, "request_ip": req.ClientIP, "scopes": strings.Join(req.Scopes, " ")}
		if approve {
			detail["method"] = sess.SignIn().Method
		}
		u.record(c, sess, action, code, "success", detail)
		web.Render(c, http.StatusOK, pageDeviceDone, deviceDoneData{Approved: approve, ClientName: clientName(req)})
	}
}

// lookup checks the limits, then looks code up. On false the answer is sent.
func (u *DeviceUI) lookup(c *gin.Context, sess store.Session, code string) (DeviceRequest, bool) {
	ctx := c.Request.Context()
	ip := web.ClientIP(c)
	d, err := u.limiter.Check(ctx, sess.Key, ip)
	if err != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", err)
		return DeviceRequest{}, false
	}
	if !d.Allowed {
		secs := int((d.RetryAfter + time.Second - 1) / time.Second)
		secs = max(secs, 1)
		u.record(c, sess, "device.code_wrong", code, "rate_limited", nil)
		c.Header("Retry-After", strconv.Itoa(secs))
		web.Render(c, http.StatusTooManyRequests, pageDeviceLimited, deviceLimitedData{Wait: waitText(secs)})
		return DeviceRequest{}, false
	}
	req, err := u.backend.DeviceRequest(ctx, code)
	if err != nil {
		if !u.rejected(c, sess, code, err) {
			web.Fail(c, http.StatusServiceUnavailable, "", fmt.Errorf("oidcop: device lookup: %w", err))
		}
		return DeviceRequest{}, false
	}
	return req, true
}

// rejected answers the rejections of a code (unknown, expired: counted;
// already decided) with the form and reports true; false for a failure.
func (u *DeviceUI) rejected(c *gin.Context, sess store.Session, code string, err error) bool {
	var result string
	switch {
	case errors.Is(err, ErrUnknownCode):
		result = "unknown_code"
	case errors.Is(err, ErrExpired):
		result = "expired"
	case errors.Is(err, ErrAlreadyDecided):
		web.Render(c, http.StatusConflict, pageDeviceForm, deviceFormData{Error: msgCodeDecided, Hint: hintCodeAgain})
		return true
	default:
		return false
	}
	if ferr := u.limiter.Fail(c.Request.Context(), sess.Key, web.ClientIP(c)); ferr != nil {
		web.Fail(c, http.StatusServiceUnavailable, "", ferr)
		return true
	}
	u.record(c, sess, "device.code_wrong", code, result, nil)
	web.Render(c, http.StatusOK, pageDeviceForm, deviceFormData{Code: FormatUserCode(code), Error: msgCodeUnknown, Hint: hintCodeRetry})
	return true
}

func (u *DeviceUI) record(c *gin.Context, sess store.Session, action, code, result string, detail map[string]string) {
	u.audit.Record(c.Request.Context(), audit.Event{Time: u.now(), Actor: sess.User.Username, Action: action,
		Object: FormatUserCode(code), Result: result, ClientIP: web.ClientIP(c),
		RequestID: web.RequestID(c.Request.Context()), Detail: detail})
}

func clientName(req DeviceRequest) string {
	if req.ClientName != "" {
		return req.ClientName
	}
	return req.ClientID
}

func (u *DeviceUI) confirmData(c *gin.Context, req DeviceRequest, code string) deviceConfirmData {
	now := u.now()
	you := web.ClientIP(c)
	d := deviceConfirmData{
		Code: FormatUserCode(code), ClientID: req.ClientID, ClientName: clientName(req),
		ClientIP: req.ClientIP, YourIP: you, SameIP: req.ClientIP != "" && req.ClientIP == you,
		Created:    req.Created.UTC().Format("2 Jan 2006, 15:04:05 MST"),
		CreatedISO: req.Created.UTC().Format(time.RFC3339),
		Ago:        agoText(now.Sub(req.Created)),
		ExpiresIn:  "in " + durationText(req.Expires.Sub(now)),
		Scopes:     scopeTexts(req.Scopes),
	}
	if d.ClientIP == "" {
		d.ClientIP = "unknown"
	}
	return d
}

// scopeWords says in plain words what each known scope lets the client do.
var scopeWords = map[string]string{
	"openid":         "Confirm who you are (your Warden identity)",
	"profile":        "See your name",
	"email":          "See your email address",
	"groups":         "See the groups you belong to",
	"roles":          "See the AWS roles you can use",
	"offline_access": "Stay signed in without asking you again, until the session ends",
}

// scopeTexts lists the scopes in the order asked, each once, in plain
// words; an unknown scope is shown as "Other access" with its name.
func scopeTexts(scopes []string) []scopeText {
	var out []scopeText
	seen := map[string]bool{}
	for _, s := range scopes {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if w, ok := scopeWords[s]; ok {
			out = append(out, scopeText{Text: w})
		} else {
			out = append(out, scopeText{Text: "Other access:", Raw: s})
		}
	}
	if len(out) == 0 {
		out = append(out, scopeText{Text: "Confirm who you are (your Warden identity)"})
	}
	return out
}

func agoText(d time.Duration) string {
	if d < 5*time.Second {
		return "just now"
	}
	return durationText(d) + " ago"
}

// durationText writes d as "N seconds", "N minutes" or "N hours".
func durationText(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d < time.Minute:
		return plural(int((d+time.Second-1)/time.Second), "second")
	case d < time.Hour:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	default:
		return plural(int((d+time.Hour-1)/time.Hour), "hour")
	}
}

func waitText(secs int) string { return durationText(time.Duration(secs) * time.Second) }

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
