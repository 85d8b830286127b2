package samlidp

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

//go:embed templates
var templateFS embed.FS

// Templates implements web.Templater: the auto-submitting response page.
func (i *IdP) Templates() (fs.FS, template.FuncMap) {
	sub, _ := fs.Sub(templateFS, "templates")
	return sub, nil
}

// handlePostJS serves the script that submits the response form (no inline
// script: the Content-Security-Policy forbids it).
func handlePostJS(c *gin.Context) {
	b, _ := templateFS.ReadFile("templates/post.js")
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
}

// Public messages of the error pages (no internal detail; the request ID
// ties them to the log line).
const (
	msgUnknownSP     = "This application is not registered with Warden, so Warden will not sign you in to it. Ask its administrator to register it."
	msgUnknownACS    = "The application asked for the answer at an address that its registration does not list. Nothing was sent."
	msgSignature     = "The sign-in request's signature is missing or does not verify against the application's registered keys."
	msgReplay        = "This sign-in request was already used. Go back to the application and start the sign-in again."
	msgStale         = "This sign-in request is too old, or comes from the future (a clock is wrong). Go back to the application and start the sign-in again."
	msgMalformed     = "The sign-in request is not a valid SAML request."
	msgDTD           = "The sign-in request contains an XML document type declaration, which Warden does not accept."
	msgTooLarge      = "The sign-in request is larger than Warden accepts."
	msgRelayState    = "The sign-in request carries an invalid RelayState."
	msgNoRequest     = "There is no SAML request here. Start the sign-in from the application."
	msgPendingGone   = "This sign-in has expired or was already completed. Go back to the application and start the sign-in again."
	msgUnsupported   = "The sign-in request asks for something Warden does not support."
	msgDestination   = "The sign-in request was addressed to another server."
	msgResponseFails = "Warden could not make the answer for this application."
)

// pageError is a failure with the status and public text to show.
type pageError struct {
	status int
	public string
	err    error
}

func (e *pageError) Error() string {
	if e.err == nil {
		return e.public
	}
	return e.err.Error()
}
func (e *pageError) Unwrap() error { return e.err }

func bad(public string, err error) *pageError {
	return &pageError{status: http.StatusBadRequest, public: public, err: err}
}

// fail answers err with web.Fail: a pageError with its text, a store
// outage with 503, anything else with 500.
func (i *IdP) fail(c *gin.Context, err error) {
	var pe *pageError
	var tl *TooLargeError
	switch {
	case errors.As(err, &tl):
		web.Fail(c, http.StatusUnprocessableEntity, strings.ToUpper(tl.Error()[:1])+tl.Error()[1:]+".", err)
	case errors.As(err, &pe):
		web.Fail(c, pe.status, pe.public, err)
	case errors.Is(err, store.ErrUnavailable):
		web.Fail(c, http.StatusServiceUnavailable, "", err)
	default:
		web.Fail(c, http.StatusInternalServerError, msgResponseFails, err)
	}
}

type ginKey struct{}

// ginContext returns the gin.Context that served r (put there by the SSO
// handlers, for crewjam's SessionProvider and AssertionMaker).
func ginContext(r *http.Request) *gin.Context {
	if r == nil {
		return nil
	}
	c, _ := r.Context().Value(ginKey{}).(*gin.Context)
	return c
}

// requestHead is what Warden reads of an AuthnRequest before crewjam does.
type requestHead struct {
	XMLName      xml.Name
	ID           string    `xml:"ID,attr"`
	IssueInstant time.Time `xml:"IssueInstant,attr"`
	Issuer       string    `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	Signature    *struct{} `xml:"http://www.w3.org/2000/09/xmldsig# Signature"`
}

// readRequest extracts the AuthnRequest XML and RelayState of either
// binding, within the size limits, without trusting anything yet.
func readRequest(r *http.Request) (xmlBytes []byte, relay string, err error) {
	var b64 string
	switch r.Method {
	case http.MethodGet:
		if len(r.URL.RawQuery) > maxQuery {
			return nil, "", &pageError{status: http.StatusRequestEntityTooLarge, public: msgTooLarge, err: errTooLargeInput}
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, "", bad(msgMalformed, fmt.Errorf("query: %w", err))
		}
		if len(q["SAMLRequest"]) > 1 || len(q["RelayState"]) > 1 {
			return nil, "", bad(msgMalformed, errors.New("repeated query parameter"))
		}
		b64, relay = q.Get("SAMLRequest"), q.Get("RelayState")
	default:
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, "", &pageError{status: http.StatusRequestEntityTooLarge, public: msgTooLarge, err: err}
			}
			return nil, "", bad(msgMalformed, fmt.Errorf("form: %w", err))
		}
		if len(r.PostForm["SAMLRequest"]) > 1 || len(r.PostForm["RelayState"]) > 1 {
			return nil, "", bad(msgMalformed, errors.New("repeated form field"))
		}
		b64, relay = r.PostForm.Get("SAMLRequest"), r.PostForm.Get("RelayState")
	}
	if b64 == "" {
		return nil, "", bad(msgNoRequest, errors.New("no SAMLRequest"))
	}
	if base64.StdEncoding.DecodedLen(len(b64)) > maxRequestXML+3 && r.Method != http.MethodGet {
		return nil, "", &pageError{status: http.StatusRequestEntityTooLarge, public: msgTooLarge, err: errTooLargeInput}
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", bad(msgMalformed, fmt.Errorf("base64: %w", err))
	}
	if r.Method == http.MethodGet {
		if raw, err = inflate(raw, maxRequestXML); err != nil {
			if errors.Is(err, errTooLargeInput) {
				return nil, "", &pageError{status: http.StatusRequestEntityTooLarge, public: msgTooLarge, err: err}
			}
			return nil, "", bad(msgMalformed, err)
		}
	} else if len(raw) > maxRequestXML {
		return nil, "", &pageError{status: http.StatusRequestEntityTooLarge, public: msgTooLarge, err: errTooLargeInput}
	}
	if err := checkRelayState(relay); err != nil {
		return nil, "", bad(msgRelayState, err)
	}
	return raw, relay, nil
}

// checkRelayState accepts up to maxRelayState bytes of printable ASCII.
func checkRelayState(s string) error {
	if len(s) > maxRelayState {
		return fmt.Errorf("relay state of %d bytes", len(s))
	}
	for k := 0; k < len(s); k++ {
		if c := s[k]; c < 0x20 || c >= 0x7f {
			return errors.New("relay state holds a control or non-ASCII byte")
		}
	}
	return nil
}

// parseRequest runs every check on an AuthnRequest: size, DTD, age,
// crewjam's validation (issuer is a known SP, signature verified when
// present and required when the SP's metadata says AuthnRequestsSigned,
// Destination, version, ACS URL or index from the SP's metadata only),
// Warden's RequireSignedRequests, and the replay cache.
func (i *IdP) parseRequest(c *gin.Context) (*saml.IdpAuthnRequest, *spEntry, error) {
	raw, _, err := readRequest(c.Request)
	if err != nil {
		return nil, nil, err
	}
	if err := checkXML(raw); err != nil {
		if errors.Is(err, errDTD) {
			return nil, nil, bad(msgDTD, err)
		}
		return nil, nil, bad(msgMalformed, err)
	}
	var head requestHead
	if err := xml.Unmarshal(raw, &head); err != nil {
		return nil, nil, bad(msgMalformed, fmt.Errorf("authn request: %w", err))
	}
	if head.XMLName.Space != "urn:oasis:names:tc:SAML:2.0:protocol" || head.XMLName.Local != "AuthnRequest" {
		return nil, nil, bad(msgMalformed, fmt.Errorf("root element {%s}%s, want samlp:AuthnRequest", head.XMLName.Space, head.XMLName.Local))
	}
	now := i.now()
	switch {
	case head.IssueInstant.IsZero():
		return nil, nil, bad(msgMalformed, errors.New("authn request has no IssueInstant"))
	case head.IssueInstant.Before(now.Add(-i.cfg.RequestMaxAge)):
		return nil, nil, bad(msgStale, fmt.Errorf("authn request %q issued %s, older than %s", head.ID, head.IssueInstant.UTC().Format(time.RFC3339), i.cfg.RequestMaxAge))
	case head.IssueInstant.After(now.Add(RequestMaxSkew)):
		return nil, nil, bad(msgStale, fmt.Errorf("authn request %q issued %s, in the future", head.ID, head.IssueInstant.UTC().Format(time.RFC3339)))
	}
	req, err := saml.NewIdpAuthnRequest(i.saml, c.Request)
	if err != nil {
		return nil, nil, classify(err)
	}
	// Warden enforces the age window above (RequestMaxAge); crewjam's own
	// fixed window (MaxIssueDelay, a package variable) is evaluated at the
	// request's IssueInstant so that it never refuses what Warden's accepts.
	req.Now = head.IssueInstant
	err = req.Validate()
	req.Now = now
	if err != nil {
		return nil, nil, classify(err)
	}
	e, ok := i.sps.lookup(req.ServiceProviderMetadata.EntityID)
	if !ok {
		return nil, nil, bad(msgUnknownSP, errors.New("service provider vanished"))
	}
	if e.cfg != nil && e.cfg.RequireSignedRequests && head.Signature == nil && !requestSigned(c.Request) {
		return nil, nil, bad(msgSignature, fmt.Errorf("unsigned authn request from %s, which must sign", e.name))
	}
	// One request is answered once (item 3 of the issue; SAML profiles
	// §4.1.4.5): its issuer and ID are remembered for the whole window in
	// which it would be accepted.
	sum := sha256.Sum256([]byte(req.ServiceProviderMetadata.EntityID + "\x00" + req.Request.ID))
	first, err := i.replay.Seen(c.Request.Context(), hex.EncodeToString(sum[:]), i.cfg.RequestMaxAge+RequestMaxSkew)
	if err != nil {
		return nil, nil, err
	}
	if !first {
		return nil, nil, bad(msgReplay, fmt.Errorf("authn request %q from %s replayed", req.Request.ID, e.name))
	}
	return req, e, nil
}

// requestSigned reports whether the request carried a signature of its
// binding (crewjam has verified any signature the request carried; an
// enveloped XML signature is seen in requestHead).
func requestSigned(r *http.Request) bool {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		return q.Get("Signature") != "" && q.Get("SigAlg") != ""
	}
	return r.PostForm.Get("Signature") != "" && r.PostForm.Get("SigAlg") != ""
}

// classify maps crewjam's validation errors to pages.
func classify(err error) error {
	switch {
	case errors.Is(err, saml.ErrUnknownServiceProvider):
		return bad(msgUnknownSP, err)
	case errors.Is(err, saml.ErrUnknownAssertionConsumerService):
		return bad(msgUnknownACS, err)
	case errors.Is(err, saml.ErrInvalidSignature), errors.Is(err, saml.ErrUntrustedCertificate),
		errors.Is(err, saml.ErrCertificateNotValidNow), errors.Is(err, saml.ErrInvalidCertificate):
		return bad(msgSignature, err)
	case errors.Is(err, saml.ErrExpired), errors.Is(err, saml.ErrNotYetValid):
		return bad(msgStale, err)
	case errors.Is(err, saml.ErrDestinationMismatch):
		return bad(msgDestination, err)
	case errors.Is(err, saml.ErrUnsupported):
		return bad(msgUnsupported, err)
	case errors.Is(err, saml.ErrMalformedMessage), errors.Is(err, saml.ErrMissingElement):
		return bad(msgMalformed, err)
	}
	// Any other validation failure is about the request, not the server.
	return bad(msgMalformed, err)
}

// handleSSO serves /saml/sso (GET: HTTP-Redirect binding, POST: HTTP-POST
// binding).
func (i *IdP) handleSSO(c *gin.Context) {
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), ginKey{}, c))
	req, e, err := i.parseRequest(c)
	if err != nil {
		i.auditRequest(c, "", err)
		i.fail(c, err)
		return
	}
	session := i.saml.SessionProvider.GetSession(c.Writer, c.Request, req)
	if session == nil {
		return // paused for sign-in (or failed): the response is written
	}
	if !i.requireFactor(c, e, pendingOf(req)) {
		return // paused for the second factor (or failed): the response is written
	}
	i.answer(c, req, e, session)
}

// requireFactor checks the signed-in session against the roles an AWS
// response would carry (DESIGN.md flow 6): when a role demands a second
// factor the session lacks, the request is paused again (p, marked
// FactorAsked) and the browser goes through the second-factor page
// (web.RequireFactor), which comes back to /saml/continue/<id>. It reports
// whether to answer now. A request already sent through the factor once
// is answered with the roles the sign-in satisfies (MakeAssertion leaves
// the others out), so that a factor that cannot satisfy every role ends
// in an answer or a clear page, never in a loop. Generic SPs demand
// nothing.
func (i *IdP) requireFactor(c *gin.Context, e *spEntry, p pendingRequest) bool {
	if e.aws == nil || p.FactorAsked {
		return true
	}
	sess, ok := web.CurrentSession(c)
	if !ok {
		return true // MakeAssertion refuses
	}
	need, ok := i.factorNeed(sess.SignIn(), i.awsGrants(c.Request.Context(), sess.User, e.aws.partition).Grants)
	if !ok {
		return true
	}
	p.FactorAsked = true
	ctx := c.Request.Context()
	data, err := json.Marshal(p)
	if err != nil {
		i.fail(c, err)
		return false
	}
	id, err := i.pending.Put(ctx, data, store.DefaultSAMLPendingTTL)
	if err != nil {
		i.fail(c, err)
		return false
	}
	if web.RequireFactor(c, need, "/saml/continue/"+id) {
		// The web layer counts the sign-in as enough (the same methods
		// should count on both sides): answer now; the paused copy is
		// not needed.
		if _, err := i.pending.Take(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			i.log.LogAttrs(ctx, slog.LevelWarn, "saml: drop paused request", slog.String("err", err.Error()))
		}
		return true
	}
	i.audit.Record(ctx, audit.Event{Actor: sess.User.Username, Action: "saml.sso", Object: e.name, Result: "factor_required",
		ClientIP: web.ClientIP(c), RequestID: web.RequestID(ctx), Detail: map[string]string{"method": sess.SignIn().Method}})
	return false
}

// pendingRequest is a validated AuthnRequest paused across sign-in or the
// second factor.
type pendingRequest struct {
	SP          string `json:"sp"` // entity ID
	RequestID   string `json:"request_id"`
	RelayState  string `json:"relay_state,omitempty"`
	ACSLocation string `json:"acs_location"`
	ACSBinding  string `json:"acs_binding"`
	ACSIndex    int    `json:"acs_index"`
	// FactorAsked: the browser was sent through the second factor for
	// this request already (requireFactor asks once).
	FactorAsked bool `json:"factor_asked,omitempty"`
}

// pendingOf is the pausable form of a validated request.
func pendingOf(req *saml.IdpAuthnRequest) pendingRequest {
	return pendingRequest{
		SP: req.ServiceProviderMetadata.EntityID, RequestID: req.Request.ID, RelayState: req.RelayState,
		ACSLocation: req.ACSEndpoint.Location, ACSBinding: req.ACSEndpoint.Binding, ACSIndex: req.ACSEndpoint.Index,
	}
}

// sessionProvider is crewjam's SessionProvider on Warden's web session:
// a signed-in browser gets its session; any other is sent to sign in, with
// the validated request kept in the pending store and resumed at
// /saml/continue/<id>.
type sessionProvider struct{ i *IdP }

// GetSession implements saml.SessionProvider.
func (p sessionProvider) GetSession(w http.ResponseWriter, r *http.Request, req *saml.IdpAuthnRequest) *saml.Session {
	c := ginContext(r)
	if c == nil {
		http.Error(w, "not served through the web server", http.StatusInternalServerError)
		return nil
	}
	if sess, ok := web.CurrentSession(c); ok {
		return samlSession(sess)
	}
	data, err := json.Marshal(pendingOf(req))
	if err != nil {
		p.i.fail(c, err)
		return nil
	}
	id, err := p.i.pending.Put(r.Context(), data, store.DefaultSAMLPendingTTL)
	if err != nil {
		p.i.fail(c, err)
		return nil
	}
	// Through /saml/continue (a same-site GET) rather than straight to the
	// sign-in page: a browser that is signed in but did not send its
	// SameSite=Lax cookie on the SP's cross-site POST sends it there.
	c.Redirect(http.StatusSeeOther, "/saml/continue/"+id)
	c.Abort()
	return nil
}

func samlSession(s store.Session) *saml.Session {
	return &saml.Session{
		ID: s.Key, CreateTime: s.CreatedAt, ExpireTime: s.ExpiresAt, Index: s.Key,
		UserName: s.User.Username, UserEmail: s.User.Email, UserCommonName: s.User.DisplayName,
		Groups: s.User.GroupNames(),
	}
}

// handleContinue resumes a paused request once the browser is signed in.
func (i *IdP) handleContinue(c *gin.Context) {
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), ginKey{}, c))
	sess, ok := web.CurrentSession(c)
	if !ok {
		web.RedirectToLogin(c) // back here afterwards; the request stays pending
		return
	}
	id := c.Param("id")
	if len(id) > 64 {
		i.fail(c, bad(msgPendingGone, errors.New("pending id too long")))
		return
	}
	data, err := i.pending.Take(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		i.fail(c, bad(msgPendingGone, err))
		return
	}
	if err != nil {
		i.fail(c, err)
		return
	}
	var p pendingRequest
	if err := json.Unmarshal(data, &p); err != nil {
		i.fail(c, fmt.Errorf("samlidp: pending request: %w", err))
		return
	}
	e, ok := i.sps.lookup(p.SP)
	if !ok {
		i.fail(c, bad(msgUnknownSP, fmt.Errorf("service provider %q gone while signing in", p.SP)))
		return
	}
	req := &saml.IdpAuthnRequest{
		IDP: i.saml, HTTPRequest: c.Request, RelayState: p.RelayState, Now: i.now(),
		Request:                 saml.AuthnRequest{ID: p.RequestID},
		ServiceProviderMetadata: e.metadata(),
	}
	// The ACS must still be in the SP's (possibly refreshed) metadata.
	for k := range req.ServiceProviderMetadata.SPSSODescriptors {
		d := &req.ServiceProviderMetadata.SPSSODescriptors[k]
		for n := range d.AssertionConsumerServices {
			ep := d.AssertionConsumerServices[n]
			if ep.Location == p.ACSLocation && ep.Binding == p.ACSBinding && ep.Index == p.ACSIndex {
				dc := *d
				req.SPSSODescriptor, req.ACSEndpoint = &dc, &ep
			}
		}
	}
	if req.ACSEndpoint == nil {
		i.fail(c, bad(msgUnknownACS, fmt.Errorf("acs %s no longer in the metadata of %s", p.ACSLocation, e.name)))
		return
	}
	if !i.requireFactor(c, e, p) {
		return
	}
	i.answer(c, req, e, samlSession(sess))
}

// answer makes, signs and sends the response for a validated request.
func (i *IdP) answer(c *gin.Context, req *saml.IdpAuthnRequest, e *spEntry, session *saml.Session) {
	if req.ACSEndpoint.Binding != saml.HTTPPostBinding {
		i.fail(c, bad(msgUnsupported, fmt.Errorf("acs binding %s", req.ACSEndpoint.Binding)))
		return
	}
	if err := i.saml.AssertionMaker.MakeAssertion(req, session); err != nil {
		i.auditRequest(c, e.name, err)
		i.fail(c, err)
		return
	}
	now := i.now().UTC()
	resp, err := i.buildResponse(req.Assertion, req.ACSEndpoint.Location, req.Request.ID, e.signResponse(), now)
	if err != nil {
		i.fail(c, err)
		return
	}
	if e.aws != nil && len(resp.Base64) > MaxResponseBase64 {
		err := &TooLargeError{Roles: len(req.Assertion.AttributeStatements[0].Attributes[0].Values), Length: len(resp.Base64)}
		i.auditRequest(c, e.name, err)
		i.fail(c, err)
		return
	}
	i.auditRequest(c, e.name, nil)
	i.renderPost(c, Post{URL: req.ACSEndpoint.Location, SAMLResponse: resp.Base64, RelayState: req.RelayState}, e)
}

// postPage is the data of samlidp_post.html.
type postPage struct {
	Post
	Host string
}

// renderPost renders the auto-submitting form. The page's
// Content-Security-Policy lets the form go to the ACS (the server-wide
// policy says form-action 'self'), and, since browsers apply form-action
// to the redirects that follow, to the AWS console for AWS, or to any
// https site for a generic SP.
func (i *IdP) renderPost(c *gin.Context, p Post, e *spEntry) {
	u, err := url.Parse(p.URL)
	if err != nil {
		i.fail(c, err)
		return
	}
	targets := "'self' " + u.Scheme + "://" + u.Host
	if e.aws != nil {
		pt, _ := awsfed.LookupPartition(e.aws.partition)
		targets += " https://" + pt.SigninHost + " https://*." + pt.SigninHost + " https://" + pt.ConsoleHost + " https://*." + pt.ConsoleHost
	} else {
		targets += " https:"
	}
	c.Header("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"object-src 'none'; frame-ancestors 'none'; form-action "+targets+"; base-uri 'none'")
	web.Render(c, http.StatusOK, "samlidp_post.html", postPage{Post: p, Host: u.Host})
}

// auditRequest records the outcome of an SP-initiated request.
func (i *IdP) auditRequest(c *gin.Context, sp string, err error) {
	actor := "anonymous"
	if s, ok := web.CurrentSession(c); ok {
		actor = s.User.Username
	}
	ev := audit.Event{Actor: actor, Action: "saml.sso", Object: sp, Result: "success", ClientIP: web.ClientIP(c),
		RequestID: web.RequestID(c.Request.Context())}
	if err != nil {
		ev.Result = "refused"
		var pe *pageError
		if errors.As(err, &pe) {
			ev.Detail = map[string]string{"status": strconv.Itoa(pe.status)}
		}
		switch {
		case errors.Is(err, ErrTooLarge):
			ev.Result = "too_large"
		case errors.Is(err, ErrInsufficientAuthn):
			ev.Result = "insufficient_authentication"
		}
		i.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "saml: request refused", slog.String("sp", sp), slog.String("err", err.Error()))
	}
	i.audit.Record(c.Request.Context(), ev)
}
