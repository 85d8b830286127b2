// Package portal is the user's portal, a web.Mount: the home page lists the
// AWS roles the signed-in user holds, grouped by account, and the roles the
// user may request for a time; /aws/console signs the user in to the AWS
// console in one of them (an IdP-initiated SAML response, DESIGN.md flow 1).
//
// The role a request names is always resolved against the user's grants as
// the rules give them now (Backend.Grants, evaluated from the session
// user's groups and attributes): rules may have changed since sign-in, and
// a role taken away must not be reachable through an old page or a
// bookmark.
//
// internal/web serves the pages (sessions, CSRF, second factors, the
// layout); internal/app adapts the SAML IdP and the rules to Backend. The
// pages are templates/home.html, saml_post.html and console_confirm.html
// (templates.Portal).
package portal

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
	"github.com/wardenidp/warden/templates"
)

// Backend is what the portal needs of the SAML identity provider and the
// rules engine (internal/app adapts samlidp and the rolemap Holder to it).
type Backend interface {
	// Grants returns the roles user holds under the current rules.
	Grants(ctx context.Context, user identity.User) (rolemap.Result, error)
	// Console makes the IdP-initiated SAML response that signs user in to
	// the AWS console in grant (a grant of Grants' result), going to
	// relayState (an AWS console URL, or "" for the console home); authn
	// is how the user signed in (the assertion states it). A refusal the
	// user can act on wraps one of ErrBadDestination, ErrResponseTooLarge,
	// ErrNeedsFactor or ErrUnusableUser; any other error is internal.
	Console(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, relayState string) (ConsolePost, error)
}

// ConsolePartitioner is a Backend that signs in to the console of one AWS
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

// Refusals of Backend.Console, shown to the user with their own text.
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
	// not sign in to (ConsolePartitioner). Answered 422. It is
	// awsfed.ErrOtherPartition, which samlidp and oidcop test for as well.
	ErrOtherPartition = awsfed.ErrOtherPartition
	// ErrNeedsFactor: the sign-in does not satisfy the role's MFA
	// requirement (the handler asks for the factor first, so this is a
	// second line of defence). Answered 403.
	ErrNeedsFactor = errors.New("role needs a stronger sign-in")
)

// ElevationPath is the page that requests an elevation (served by the
// elevation Mount): ?role=<ARN> ticks a role.
const ElevationPath = "/elevations/new"

// ConsolePath serves the console sign-in: GET for bookmarks and deep links,
// POST from the portal's buttons.
const ConsolePath = "/aws/console"

// Page names (templates.Portal).
const (
	pageHome    = "home.html"
	pagePost    = "saml_post.html"
	pageConfirm = "console_confirm.html"
)

// Deps are the collaborators of the portal.
type Deps struct {
	Backend Backend // required
	// PublicURL is Warden's public URL (server.public_url): the deep links
	// the home page offers start with its scheme and host. Required.
	PublicURL string
	Audit     audit.Logger // nil: audit.Discard
	Logger    *slog.Logger // nil: discard
	// Keys mints the Access keys panel's credentials; nil: no panel.
	Keys KeyMinter
}

// UI serves the portal's pages. It is a web.Mount (with templates) that
// serves the home page, and a web.NextAnswerer: a sign-in whose next page
// is a console link is answered with that link's page. One UI serves one
// web.Server (it caches pages rendered by it).
type UI struct {
	backend Backend
	origin  string // scheme://host of PublicURL
	audit   audit.Logger
	log     *slog.Logger
	frames  postFrames // saml_post.html cut at its values (postpage.go)
	keys    KeyMinter  // nil: no Access keys panel
}

var (
	_ web.Mount        = (*UI)(nil)
	_ web.Templater    = (*UI)(nil)
	_ web.NextAnswerer = (*UI)(nil)
)

// New returns the portal.
func New(d Deps) (*UI, error) {
	if d.Backend == nil {
		return nil, errors.New("portal: Backend is required")
	}
	u, err := url.Parse(d.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("portal: public URL %q is not an http(s) URL", d.PublicURL)
	}
	p := &UI{backend: d.Backend, origin: u.Scheme + "://" + u.Host, audit: d.Audit, log: d.Logger, keys: d.Keys}
	if p.audit == nil {
		p.audit = audit.Discard{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = web.RequestLogger(p.log)
	return p, nil
}

// Routes implements web.Mount. The console routes are Fresh: a hand-off
// to AWS goes to the user as the directory has them now. The home page is
// not (the session's periodic re-check applies); it only lists.
func (p *UI) Routes() []web.Route {
	rs := []web.Route{
		{Method: http.MethodGet, Path: "/", Handler: p.handleHome},
		// handleConsole says why the GET is safe.
		{Method: http.MethodGet, Path: ConsolePath, Handler: p.handleConsole, Fresh: true},
		{Method: http.MethodPost, Path: ConsolePath, Handler: p.handleConsole, Fresh: true},
	}
	if p.keys != nil {
		// The GET only shows the form; the POST (CSRF-checked) makes keys.
		rs = append(rs, web.Route{Method: http.MethodGet, Path: KeysPath, Handler: p.handleKeys, Fresh: true},
			web.Route{Method: http.MethodPost, Path: KeysPath, Handler: p.handleKeys, Fresh: true})
	}
	return rs
}

// Templates implements web.Templater.
func (p *UI) Templates() (fs.FS, template.FuncMap) { return templates.Portal, nil }

// AnswerNext implements web.NextAnswerer: a console link (a bookmark of a
// role, or a link that met the sign-in page), GET /aws/console?role=…
// [&destination=…], is answered with its SAML post page now, as the GET
// that the redirect would cause is answered, for the user the sign-in
// just read from the directory. It saves the browser a round trip and the
// server a session read and a second directory look-up.
func (p *UI) AnswerNext(c *gin.Context, next string) bool {
	path, query, _ := strings.Cut(next, "?")
	if path != ConsolePath {
		return false
	}
	q, err := url.ParseQuery(query)
	if err != nil || q.Get("role") == "" {
		return false
	}
	p.console(c, q.Get("role"), q.Get("destination"), false)
	return true
}

// consolePartition is the Backend's partition, or "" (any).
func (p *UI) consolePartition() string {
	if cp, ok := p.backend.(ConsolePartitioner); ok {
		return cp.ConsolePartition()
	}
	return ""
}
