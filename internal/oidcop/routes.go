package oidcop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Bounds on the OAuth endpoints' input (RFC 6749 leaves them to us).
const (
	maxFormBody = 16 << 10 // bytes of a token, revoke, introspect, ... request
	maxParam    = 4096     // bytes of one parameter value
)

// Routes is the OP's route table (web.Mount). Every OAuth endpoint is
// CrossSite (called by clients from anywhere, no cookies, no CSRF token)
// and API (errors as JSON); /oauth/callback is the one browser step that
// reads the Warden session, and is a GET.
func (p *Provider) Routes() []web.Route {
	zh := p.serveOP
	api := func(method, path string, h gin.HandlerFunc) web.Route {
		return web.Route{Method: method, Path: path, Handler: h, CrossSite: true, API: true, MaxBody: maxFormBody}
	}
	return []web.Route{
		api(http.MethodGet, oidc.DiscoveryEndpoint, p.discovery),
		api(http.MethodOptions, oidc.DiscoveryEndpoint, zh),
		api(http.MethodGet, "/oauth/keys", p.jwks),
		api(http.MethodOptions, "/oauth/keys", zh),
		{Method: http.MethodGet, Path: "/oauth/authorize", Handler: p.authorize},
		{Method: http.MethodGet, Path: "/oauth/callback", Handler: p.callback},
		api(http.MethodPost, "/oauth/token", p.token),
		api(http.MethodOptions, "/oauth/token", zh),
		api(http.MethodPost, "/oauth/device_authorization", p.checkedForm(zh)),
		api(http.MethodGet, "/oauth/userinfo", p.userinfo),
		api(http.MethodPost, "/oauth/userinfo", p.checkedForm(p.userinfo)),
		api(http.MethodOptions, "/oauth/userinfo", zh),
		api(http.MethodPost, "/oauth/revoke", p.checkedForm(zh)),
		api(http.MethodOptions, "/oauth/revoke", zh),
		api(http.MethodPost, "/oauth/introspect", p.checkedForm(p.introspect)),
		// The GET's query is checked like a form: zitadel turns a query
		// it cannot parse (";", bad escapes) into a 500.
		{Method: http.MethodGet, Path: "/oauth/end_session", Handler: p.checkedForm(zh), CrossSite: true},
		{Method: http.MethodPost, Path: "/oauth/end_session", Handler: p.checkedForm(zh), CrossSite: true, MaxBody: maxFormBody},
	}
}

// scratch is per-request state shared between the gin handlers and the
// storage methods zitadel calls during the same request.
type scratch struct {
	clientIP, requestID string
	// device is the approved device authorization being redeemed (set by
	// the poll pre-check, read by GetDeviceAuthorizatonState and the token
	// creation).
	device *approvedDevice
	// unavailable is set by storage methods that could not reach Redis or
	// the directory: the response is then replaced by a 503.
	unavailable error
	// refreshEnds is the absolute end of the refresh token the response
	// carries (set when one is issued or rotated): the response says it as
	// refresh_token_expires_in (withRefreshExpiry).
	refreshEnds time.Time
}

type scratchKey struct{}

func scratchOf(ctx context.Context) *scratch {
	sc, _ := ctx.Value(scratchKey{}).(*scratch)
	return sc
}

// outage records an infrastructure failure for the response (503) and
// returns an oidc error that zitadel can carry without leaking detail. The
// error wraps err (as its parent, never sent to the client), so that a
// caller outside zitadel's request handling, which has no scratch (the
// token exchange's VerifyAccessToken), still sees the outage through
// errors.Is and does not take it for an invalid token.
func outage(ctx context.Context, err error) error {
	if sc := scratchOf(ctx); sc != nil && sc.unavailable == nil {
		sc.unavailable = err
	}
	if !errors.Is(err, store.ErrUnavailable) && !isDirectoryDown(err) {
		err = store.Unavailable("oidcop", err) // a raw client error: make the outage explicit
	}
	return oidc.ErrServerError().WithDescription("temporarily unavailable").WithParent(err)
}

// isOutage reports whether err is a Redis or directory failure: anything
// store.IsUnavailable counts (deadlines, pool timeouts, refused or timed
// out connections included), a cancelled request, or the directory down.
func isOutage(err error) bool {
	return store.IsUnavailable(err) || errors.Is(err, context.Canceled) || isDirectoryDown(err)
}

// withScratch returns the request with a scratch and the issuer in its
// context.
func (p *Provider) withScratch(c *gin.Context) (*http.Request, *scratch) {
	sc := &scratch{clientIP: web.ClientIP(c), requestID: web.RequestID(c.Request.Context())}
	ctx := context.WithValue(c.Request.Context(), scratchKey{}, sc)
	ctx = op.ContextWithIssuer(ctx, p.issuer)
	return c.Request.WithContext(ctx), sc
}

// bufWriter holds zitadel's response so that it can be replaced (503 on an
// outage, a fixed body for any 5xx).
type bufWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *bufWriter) Header() http.Header { return w.h }
func (w *bufWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *bufWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

// serveOP runs zitadel's handler for the request.
func (p *Provider) serveOP(c *gin.Context) {
	r, sc := p.withScratch(c)
	p.runOP(c, r, sc, func(w http.ResponseWriter, r *http.Request) { p.op.ServeHTTP(w, r) })
}

// userinfo is zitadel's userinfo endpoint, with a token that is not (or no
// longer) valid answered as RFC 6750 §3.1 says: 401 invalid_token with a
// WWW-Authenticate challenge (zitadel says 403 for a revoked one).
func (p *Provider) userinfo(c *gin.Context) {
	r, sc := p.withScratch(c)
	p.runOP(c, r, sc, func(w http.ResponseWriter, r *http.Request) {
		bw := &bufWriter{h: http.Header{}}
		p.op.ServeHTTP(bw, r)
		if bw.status == http.StatusForbidden || bw.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"invalid, expired or revoked access token"}`))
			return
		}
		for k, v := range bw.h {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// introspect admits confidential clients only (RFC 7662 §2.1: the
// endpoint requires authorization); zitadel answers the rest.
func (p *Provider) introspect(c *gin.Context) {
	cl, e := p.clientFromRequest(c.Request)
	switch {
	case e != nil:
		TokenError(c, string(e.ErrorType), e.Description)
		return
	case cl.public:
		TokenError(c, "invalid_client", "introspection is for confidential clients")
		return
	}
	p.serveOP(c)
}

// runOP runs fn with a buffered writer and writes its response, unless an
// outage happened (503 temporarily_unavailable) or fn answered 5xx (a
// fixed server_error body: zitadel may put internal error text in it).
func (p *Provider) runOP(c *gin.Context, r *http.Request, sc *scratch, fn http.HandlerFunc) {
	bw := &bufWriter{h: http.Header{}}
	fn(bw, r)
	if c.Writer.Written() {
		return // fn answered through gin (pageErrors)
	}
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	if sc.unavailable != nil {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "oidc: request failed: dependency unavailable",
			slog.String("path", c.Request.URL.Path), slog.String("err", sc.unavailable.Error()), slog.String("request_id", sc.requestID))
		oauthError(c, http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; try again shortly.")
		return
	}
	if bw.status >= 500 {
		p.log.LogAttrs(r.Context(), slog.LevelError, "oidc: internal error",
			slog.String("path", c.Request.URL.Path), slog.String("body", truncate(bw.body.String(), 512)), slog.String("request_id", sc.requestID))
		oauthError(c, http.StatusInternalServerError, "server_error", "Internal error (request "+sc.requestID+").")
		return
	}
	for k, v := range bw.h {
		c.Writer.Header()[k] = v
	}
	if bw.h.Get("Cache-Control") == "" {
		c.Header("Cache-Control", "no-store")
	}
	c.Status(bw.status)
	body := bw.body.Bytes()
	if bw.status == http.StatusOK && !sc.refreshEnds.IsZero() {
		body = withRefreshExpiry(body, sc.refreshEnds.Sub(p.now()))
	}
	_, _ = c.Writer.Write(body)
	c.Abort()
}

// withRefreshExpiry adds refresh_token_expires_in (seconds; the name
// several providers use, with refresh_expires_in) to a token response that
// carries a refresh token, so that a client can tell its user how long the
// sign-in lasts without another request. Anything else is left as it is.
func withRefreshExpiry(body []byte, left time.Duration) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m["refresh_token"] == nil || m["refresh_token_expires_in"] != nil {
		return body
	}
	m["refresh_token_expires_in"] = json.RawMessage(strconv.FormatInt(int64(max(left, 0)/time.Second), 10))
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// oauthError answers an RFC 6749 §5.2 error.
func oauthError(c *gin.Context, status int, code, desc string) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Basic realm="warden"`)
	}
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	c.AbortWithStatusJSON(status, body)
}

// TokenError answers a token-endpoint error (RFC 6749 §5.2, RFC 8693 §2.2.2)
// for the token-exchange handler: 400, or 401 for invalid_client, 503 for
// temporarily_unavailable. desc must hold no secret and no internal text.
func TokenError(c *gin.Context, code, desc string) {
	status := http.StatusBadRequest
	switch code {
	case "invalid_client":
		status = http.StatusUnauthorized
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	case "server_error":
		status = http.StatusInternalServerError
	}
	oauthError(c, status, code, desc)
}

// checkForm parses a urlencoded body (within the route's limit) and
// refuses repeated or oversized parameters (RFC 6749 §3.1, §3.2: "MUST NOT
// be included more than once").
func checkForm(c *gin.Context) bool {
	if err := c.Request.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			oauthError(c, http.StatusRequestEntityTooLarge, "invalid_request", "request too large")
			return false
		}
		oauthError(c, http.StatusBadRequest, "invalid_request", "malformed request body")
		return false
	}
	for k, vs := range c.Request.Form {
		if len(vs) > 1 {
			oauthError(c, http.StatusBadRequest, "invalid_request", "parameter "+safeName(k)+" repeated")
			return false
		}
		if len(vs[0]) > maxParam || len(k) > 128 {
			oauthError(c, http.StatusBadRequest, "invalid_request", "parameter "+safeName(k)+" too long")
			return false
		}
	}
	// Client assertions authenticate workloads (client_credentials) only.
	if (c.Request.Form.Get("client_assertion") != "" || c.Request.Form.Get("client_assertion_type") != "") &&
		c.Request.PostForm.Get("grant_type") != GrantTypeClientCredentials {
		oauthError(c, http.StatusUnauthorized, "invalid_client", "client assertions are not supported")
		return false
	}
	return true
}

// safeName echoes a parameter name only if it is short and plain.
func safeName(k string) string {
	if len(k) > 40 {
		return "(name too long)"
	}
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "(unprintable name)"
		}
	}
	return k
}

func (p *Provider) checkedForm(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if checkForm(c) {
			h(c)
		}
	}
}

// token is the token endpoint: grant types are dispatched here, so that
// only the supported ones reach zitadel, device polls are answered in one
// Redis round trip, and the token exchange goes to its own handler.
func (p *Provider) token(c *gin.Context) {
	if !checkForm(c) {
		return
	}
	switch gt := c.Request.PostForm.Get("grant_type"); gt {
	case string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken):
		p.serveOP(c)
	case string(oidc.GrantTypeDeviceCode):
		p.devicePoll(c)
	case GrantTypeClientCredentials:
		p.clientCredentials(c)
	case string(oidc.GrantTypeTokenExchange):
		h := p.tokenExchange.Load()
		if h == nil {
			oauthError(c, http.StatusBadRequest, "unsupported_grant_type", "token exchange is not enabled")
			return
		}
		(*h)(c)
	case "":
		oauthError(c, http.StatusBadRequest, "invalid_request", "grant_type missing")
	default:
		oauthError(c, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
	}
}

// SetTokenExchange installs the handler of the token-exchange grant
// (RFC 8693) of the token endpoint. It receives the request with its form
// parsed and checked (no repeated or oversized parameter, no client
// assertion); it authenticates the client with AuthenticateClient and
// answers errors with TokenError. Call it before serving.
func (p *Provider) SetTokenExchange(h gin.HandlerFunc) { p.tokenExchange.Store(&h) }

// authorize is zitadel's authorization endpoint behind a size check of
// the query (the state and nonce come back in redirects and tokens).
func (p *Provider) authorize(c *gin.Context) {
	q := c.Request.URL.Query()
	if q.Get("client_id") == "" || q.Get("redirect_uri") == "" {
		web.Fail(c, http.StatusBadRequest, "The sign-in request from the application lacks its client_id or redirect_uri.", nil)
		return
	}
	for k, vs := range q {
		if len(vs) > 1 || len(vs[0]) > maxParam || len(k) > 128 {
			web.Fail(c, http.StatusBadRequest, "The sign-in request from the application is malformed (a parameter is repeated or too long).", nil)
			return
		}
	}
	r, sc := p.withScratch(c)
	p.runOP(c, r, sc, pageErrors(c, func(w http.ResponseWriter, r *http.Request) { p.op.ServeHTTP(w, r) }))
}

// pageErrors runs fn for a browser page (authorize, callback): an error
// zitadel cannot send back to the client's redirect URI comes as a
// text/plain 4xx, sometimes with internal text in it ("ErrorType=...
// Parent=schema: ..."); it becomes the Warden error page instead, with
// zitadel's text in the log only. Everything else passes through.
func pageErrors(c *gin.Context, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		bw := &bufWriter{h: http.Header{}}
		fn(bw, r)
		if bw.status >= 400 && bw.status < 500 && strings.HasPrefix(bw.h.Get("Content-Type"), "text/plain") {
			web.Fail(c, bw.status, "The sign-in request from the application is not valid. Go back to the application and try again.",
				fmt.Errorf("oidcop: %s: %s", r.URL.Path, truncate(strings.TrimSpace(bw.body.String()), 512)))
			return
		}
		for k, v := range bw.h {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	}
}

// discovery serves the OpenID provider metadata, trimmed to what Warden
// does: only the code flow, the grants it serves, S256 only.
func (p *Provider) discovery(c *gin.Context) {
	r, _ := p.withScratch(c)
	d := op.CreateDiscoveryConfig(r.Context(), p.op, p.op.Storage())
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{"query"}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode, oidc.GrantTypeClientCredentials}
	if p.tokenExchange.Load() != nil {
		d.GrantTypesSupported = append(d.GrantTypesSupported, oidc.GrantTypeTokenExchange)
	}
	d.CheckSessionIframe = ""
	// acr: how the user signed in (identity.Authn.ACR), in every ID token.
	d.ACRValuesSupported = []string{identity.ACRPassword, identity.ACRMFA}
	d.RequestObjectSigningAlgValuesSupported = nil
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone, oidc.AuthMethodPrivateKeyJWT}
	d.TokenEndpointAuthSigningAlgValuesSupported = []string{"RS256", "ES256"}
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.RevocationEndpointAuthSigningAlgValuesSupported = nil
	b, err := json.Marshal(d)
	if err != nil {
		web.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", b)
}

// jwks serves the ring's JWK Set (current, next and recently retired keys,
// each with kid = RFC 7638 thumbprint and its certificate).
func (p *Provider) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", p.keys.JWKS())
}

// callback completes an auth request for the signed-in user (the client's
// LoginURL): without a session it sends the browser to /login, which comes
// back here; with prompt=none it answers login_required to the client.
//
// prompt=login and max_age (OIDC Core §3.1.2.1): when the client asked for
// a fresh sign-in (prompt=login; zitadel turns it into max_age=0) or the
// session's password was checked longer than max_age seconds ago, and the
// session's sign-in is not newer than the auth request, the browser goes
// to /login (a fresh password), which comes back here; then a user who has
// a second factor gives it afresh (after the request). A sign-in newer than
// the request is accepted whatever its age, so that the round trip ends.
func (p *Provider) callback(c *gin.Context) {
	id := c.Query("id")
	if id == "" || len(id) > 64 {
		web.Fail(c, http.StatusBadRequest, "This sign-in link is not valid. Go back to the application and sign in again.", nil)
		return
	}
	r, sc := p.withScratch(c)
	ctx := r.Context()
	ar, err := p.loadAuthRequest(ctx, id)
	if err != nil {
		if isOutage(err) {
			web.Fail(c, http.StatusServiceUnavailable, "", err)
			return
		}
		web.Fail(c, http.StatusBadRequest, "This sign-in request has expired or was already used. Go back to the application and sign in again.", err)
		return
	}
	sess, ok := web.CurrentSession(c)
	var authn identity.Authn
	if ok {
		authn = sess.SignIn()
	}
	if !ok || ar.needsFreshSignIn(authn, p.now()) {
		if ar.hasPrompt(oidc.PromptNone) {
			p.runOP(c, r, sc, pageErrors(c, func(w http.ResponseWriter, r *http.Request) {
				op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired(), p.op)
			}))
			return
		}
		if ok {
			p.record(ctx, audit.Event{Actor: sess.User.Username, Action: "oidc.authorize", Object: ar.ClientID, Result: "reauthenticate",
				Detail: map[string]string{"auth_time": authn.Time.Format(time.RFC3339), "prompt": strings.Join(ar.Prompt, " ")}})
		}
		web.RedirectToLogin(c)
		return
	}
	// A fresh sign-in asked for by the client is a fresh second factor too,
	// for a user who has one: given after the request was made.
	if ar.hasPrompt(oidc.PromptLogin) || ar.MaxAge != nil {
		need := web.FactorNeed{MFA: true, IfEnrolled: true, MaxAge: p.now().Sub(ar.Created) + time.Second}
		if !web.RequireFactor(c, need, c.Request.URL.RequestURI()) {
			return
		}
	}
	if err := p.completeAuthRequest(ctx, ar, sess, authn); err != nil {
		if isOutage(err) {
			web.Fail(c, http.StatusServiceUnavailable, "", err)
			return
		}
		web.Fail(c, http.StatusBadRequest, "This sign-in request was already used. Go back to the application and sign in again.", err)
		return
	}
	p.record(ctx, audit.Event{Actor: sess.User.Username, Action: "oidc.authorize", Object: ar.ClientID, Result: "success",
		Detail: map[string]string{"scopes": strings.Join(ar.Scopes, " "), "method": authn.Method}})
	p.runOP(c, r, sc, pageErrors(c, func(w http.ResponseWriter, r *http.Request) { op.AuthResponse(ar, p.op, w, r) }))
}

// needsFreshSignIn reports whether a session that signed in as authn must
// sign in again for this request: prompt=login or max_age exceeded, and
// the sign-in is not newer than the request.
func (a *authRequest) needsFreshSignIn(authn identity.Authn, now time.Time) bool {
	stale := a.hasPrompt(oidc.PromptLogin) ||
		a.MaxAge != nil && now.Sub(authn.Time) > time.Duration(*a.MaxAge)*time.Second
	return stale && !authn.Time.After(a.Created)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
