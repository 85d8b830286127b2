package oidcop

// Role-scoped tokens for the CLI: the token-exchange grant (RFC 8693) of
// the token endpoint. See Exchanger.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenidp/warden/internal/access"
	"io"
	"log/slog"
	"mime"
	"net"
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
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Token-exchange identifiers (RFC 8693 §2.1, §3).
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeSAML2         = "urn:ietf:params:oauth:token-type:saml2"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// ClaimAWSSourceIdentity is the claim AWS STS reads a web-identity
// token's source identity from (aws-federation-rules.md item 36; the tags
// are TagsClaim, item 35).
const ClaimAWSSourceIdentity = "https://aws.amazon.com/source_identity"

// Limits of the exchange request. A request above them is invalid_request
// (never read whole, never a 500).
const (
	maxExchangeBody     = 16 << 10 // bytes of form body
	maxSubjectToken     = 4096     // bytes; AWS itself takes web-identity tokens up to 20,000
	maxTokenTypeParam   = 128
	maxScopeParam       = 1024
	maxClientIDParam    = 256
	maxWebIdentityLife  = 5 * time.Minute // the brief's, and item 18's, bound
	maxSAMLExpiresIn    = 300             // seconds: STS refuses a response 5 min after issuance (item 18)
	defaultWebIdentLife = 5 * time.Minute
)

// ExchangeSubject is what the exchange needs of a verified access token
// (the Provider's AccessInfo).
type ExchangeSubject struct {
	Username, UserID, ClientID string
	Scopes                     []string
	Expiry                     time.Time
	TokenID                    string // audited
	// AMR and AuthTime are how and when the user authenticated for the
	// token's grant: a role that demands a second factor is exchanged only
	// for a grant whose sign-in gave one.
	AMR      []string
	AuthTime time.Time
	// Workload is set for a workload's access token (client_credentials):
	// the workload's ID; WorkloadMethod how it authenticated
	// (WorkloadAuthKey, WorkloadAuthSecret). Username is then
	// "workload:<ID>" and UserID empty.
	Workload, WorkloadMethod string
}

// accessVerifier verifies the subject token: an access token that this
// OP issued, unexpired and not revoked. Any other token is an error; an
// outage of the token store wraps store.ErrUnavailable.
type accessVerifier interface {
	verifyForExchange(ctx context.Context, token string) (ExchangeSubject, error)
}

// AccessVerifierFunc adapts a function to the subject-token verifier.
type AccessVerifierFunc func(ctx context.Context, token string) (ExchangeSubject, error)

func (f AccessVerifierFunc) verifyForExchange(ctx context.Context, token string) (ExchangeSubject, error) {
	return f(ctx, token)
}

// jwtSigner signs claims as a JWT with oidc.signing_algorithm, the current
// key of that ring and its kid (Provider.SignJWT).
type jwtSigner interface {
	SignJWT(claims any) (string, error)
}

// subjecter gives a user's opaque, stable sub (Provider.Subject).
type subjecter interface {
	Subject(user identity.User) string
}

// userLookup is the fresh directory lookup of every exchange
// (directory.Directory.Lookup).
type userLookup interface {
	Lookup(ctx context.Context, username string) (identity.User, error)
}

// samlSTS makes a one-role SAML response for AssumeRoleWithSAML
// (samlidp.IdP.STSResponse).
type samlSTS interface {
	STSResponse(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (samlidp.STSAssertion, error)
}

// ExchangeConfig configures the exchange.
type ExchangeConfig struct {
	// Issuer is the iss of the web-identity token, exactly the OP's issuer
	// (item 28).
	Issuer string
	// STSAudience is the aud of the web-identity token and the only
	// audience accepted for it (oidc.sts_audience; default
	// awsfed.DefaultSTSAudience).
	STSAudience string
	// WebIdentityLifetime is how long the web-identity token is valid
	// (default and maximum 5 minutes).
	WebIdentityLifetime time.Duration
	// AuthnTag is the session tag key (mfa.Config.Tag(): WardenAuth by
	// default) whose value, in the web-identity token's tags, is the method
	// the user signed in with (password, totp, webauthn, recovery); ""
	// sends none. A valid tag key other than WardenRole and WardenAccount.
	AuthnTag string
	// MFAMethods are the second factors that count (mfa.Config.Methods);
	// nil: every second factor. A role's RequireMFA / MFAMethods is
	// checked against the grant's sign-in with them.
	MFAMethods []string
}

// ExchangeDeps are the exchange's collaborators. Access, Subjects,
// Signer, Directory and Rules are required (Provider.InstallTokenExchange
// fills in the first three); SAML nil makes the saml2 type unavailable
// (the AWS preset is off).
type ExchangeDeps struct {
	Access    accessVerifier
	Subjects  subjecter
	Signer    jwtSigner
	Directory userLookup
	// Users is the fresh look-up that also revokes all access of a user
	// the directory no longer lets in (InstallTokenExchange fills it from
	// the provider's). Without it, Directory is looked up and nothing is
	// revoked.
	Users UserChecker
	Rules *rolemap.Holder
	// Elevations grants the roles of active elevations (elevation.Service;
	// InstallTokenExchange fills it from the provider's); nil: none.
	Elevations Elevations
	SAML       samlSTS
	Audit      audit.Logger     // nil: audit.Discard
	Logger     *slog.Logger     // nil: discard
	Clock      func() time.Time // nil: time.Now
	Rand       io.Reader        // nil: crypto/rand (jti)

	// workloadGate and workloadCount are the provider's per-workload rate
	// limit and metrics (InstallTokenExchange); nil: none.
	workloadGate  func(id string, now time.Time) (bool, time.Duration)
	workloadCount func(id, step, result string)
}

// Exchanger answers the token-exchange grant of the token endpoint
// (RFC 8693): a subject token (an access token of this OP) and one role
// ARN as the resource give a token for exactly that role:
//
//   - requested_token_type urn:ietf:params:oauth:token-type:saml2 (the
//     default when absent): a signed SAML Response (base64) for
//     AssumeRoleWithSAML, from samlidp.STSResponse; token_type "N_A"
//     (RFC 8693 §2.2.1: not an OAuth access token), expires_in ≤ 300;
//   - urn:ietf:params:oauth:token-type:id_token: an ID token (RS256 or ES256) for
//     AssumeRoleWithWebIdentity, aud the STS audience, valid at most 5
//     minutes, whose session tags name the role and its account
//     (awsfed.TagRole, awsfed.TagAccount) besides the user's tag rules.
//
// Every exchange looks the user up in the directory afresh and evaluates
// the current rules: a user removed from a group, or gone, loses the role
// at the next exchange.
//
// A role that demands a second factor (rolemap.Grant RequireMFA,
// MFAMethods) is exchanged only for a subject token whose grant's sign-in
// satisfies it (identity.AuthnFromAMR of the grant's amr and auth_time);
// otherwise the answer is RFC 9470's insufficient_user_authentication
// (400), with acr_values naming identity.ACRMFA and, for a role that
// accepts only some methods, mfa_methods (space-separated identity.Method*
// names; a Warden extension) — the CLI tells the user to run
// `warden login --mfa`. The method used travels to AWS: the SAML
// response's AuthnContextClassRef and authentication tag, and the
// web-identity token's amr, acr, auth_time and authentication tag
// (ExchangeConfig.AuthnTag).
//
// Errors (JSON, RFC 6749 §5.2 and RFC 8693 §2.2.2, with request_id):
// a malformed, oversized or duplicated parameter, an unsupported token
// type, and an invalid, expired, revoked or foreign subject token are
// invalid_request (RFC 8693 §2.2.2 names invalid_request for an invalid
// subject token, not invalid_grant); a user who is gone or no longer the
// token's user is invalid_grant (the grant behind the token is void,
// RFC 6749 §5.2); a resource that is not a role ARN, a role the user does
// not hold, or an audience other than the STS audience is invalid_target
// (RFC 8693 §2.2.2); a directory or store outage is 503
// temporarily_unavailable. Nothing is a 500.
type Exchanger struct {
	cfg  ExchangeConfig
	deps ExchangeDeps
}

// NewExchanger checks deps and fills in defaults.
func NewExchanger(cfg ExchangeConfig, deps ExchangeDeps) (*Exchanger, error) {
	if deps.Users == nil && deps.Directory != nil {
		deps.Users = directoryChecker{deps.Directory}
	}
	switch {
	case deps.Access == nil, deps.Subjects == nil, deps.Signer == nil, deps.Directory == nil && deps.Users == nil, deps.Rules == nil:
		return nil, errors.New("oidcop: exchange: Access, Subjects, Signer, Users (or Directory) and Rules are required")
	case cfg.Issuer == "":
		return nil, errors.New("oidcop: exchange: Issuer is required")
	case cfg.WebIdentityLifetime < 0 || cfg.WebIdentityLifetime > maxWebIdentityLife:
		return nil, fmt.Errorf("oidcop: exchange: web-identity token lifetime %v is not within 0..%v", cfg.WebIdentityLifetime, maxWebIdentityLife)
	case strings.EqualFold(cfg.AuthnTag, awsfed.TagRole) || strings.EqualFold(cfg.AuthnTag, awsfed.TagAccount):
		return nil, fmt.Errorf("oidcop: exchange: the authentication tag %q is one of Warden's own tags", cfg.AuthnTag)
	}
	if cfg.AuthnTag != "" {
		if err := awsfed.ValidTagKey(cfg.AuthnTag); err != nil {
			return nil, fmt.Errorf("oidcop: exchange: authentication tag: %w", err)
		}
	}
	cfg.MFAMethods = slices.Clone(cfg.MFAMethods)
	if cfg.STSAudience == "" {
		cfg.STSAudience = awsfed.DefaultSTSAudience
	}
	if cfg.WebIdentityLifetime == 0 {
		cfg.WebIdentityLifetime = defaultWebIdentLife
	}
	if deps.Audit == nil {
		deps.Audit = audit.Discard{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	return &Exchanger{cfg: cfg, deps: deps}, nil
}

// ExchangeResponse is the success response (RFC 8693 §2.2.1).
type ExchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	// MaxSessionSeconds, for a workload, is the role's
	// max_session_seconds in the rules (a Warden extension; RFC 8693 §2.2.1
	// allows more members): the longest session it should ask STS for.
	MaxSessionSeconds int `json:"max_session_seconds,omitempty"`
}

// exchangeError is an OAuth error response: status, code and a fixed
// public description; err is the private detail, logged only.
type exchangeError struct {
	status      int
	code, desc  string
	err         error
	auditResult string            // non-empty: audit the refusal with this result
	extra       map[string]string // more members of the JSON answer
	retryAfter  int               // seconds, for a 429
}

func (e *exchangeError) Error() string { return e.code + ": " + e.desc }

func badRequest(desc string) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func badTarget(desc string) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_target", desc: desc}
}

func unavailable(err error) *exchangeError {
	return &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		desc: "the service is temporarily unavailable; try again", err: err}
}

// exchangeRequest is a parsed request.
type exchangeRequest struct {
	subjectToken, requestedType, clientID string
	role                                  awsfed.RoleARN
	roleARN                               string
	// typeDefaulted: requested_token_type was absent (SAML2 for users;
	// workloads get id_token).
	typeDefaulted bool
}

// Handle is a gin handler of the grant that does not authenticate the
// client: a client_id parameter, when sent, must be the subject token's
// client. Provider.InstallTokenExchange authenticates the client first.
func (x *Exchanger) Handle(c *gin.Context) {
	x.serve(c.Writer, c.Request, web.ClientIP(c), "")
	c.Abort()
}

// serveClient answers for the authenticated client clientID.
func (x *Exchanger) serveClient(c *gin.Context, clientID string) {
	x.serve(c.Writer, c.Request, web.ClientIP(c), clientID)
	c.Abort()
}

// ServeHTTP answers an exchange request that did not come through the web
// server's middleware (the client IP is the TCP peer).
func (x *Exchanger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	x.serve(w, r, host, "")
}

// serve answers one request; authClient is the authenticated client, or
// "" when the caller did not authenticate it.
func (x *Exchanger) serve(w http.ResponseWriter, r *http.Request, clientIP, authClient string) {
	ctx := r.Context()
	reqID := web.RequestID(ctx)
	if reqID == "" {
		reqID = x.randomID(12)
	}
	resp, xerr := x.exchange(ctx, r, clientIP, reqID, authClient)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")
	if xerr != nil {
		level := slog.LevelInfo
		if xerr.status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("error", xerr.code), slog.String("request_id", reqID)}
		if xerr.err != nil {
			attrs = append(attrs, slog.String("err", xerr.err.Error()))
		}
		x.deps.Logger.LogAttrs(ctx, level, "token exchange refused", attrs...)
		if xerr.status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", `Basic realm="warden"`)
		}
		if xerr.retryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(xerr.retryAfter))
		}
		w.WriteHeader(xerr.status)
		body := map[string]string{"error": xerr.code, "error_description": xerr.desc, "request_id": reqID}
		for k, v := range xerr.extra {
			body[k] = v
		}
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
}

// exchange does the work; it returns exactly one of its results.
func (x *Exchanger) exchange(ctx context.Context, r *http.Request, clientIP, reqID, authClient string) (*ExchangeResponse, *exchangeError) {
	req, xerr := x.parse(r)
	if xerr != nil {
		return nil, xerr
	}
	if authClient != "" {
		req.clientID = authClient
	}
	ev := audit.Event{Actor: "anonymous", Action: "token.exchange", Object: req.roleARN, ClientIP: clientIP, RequestID: reqID,
		Detail: map[string]string{"requested_token_type": req.requestedType}}
	resp, xerr := x.issue(ctx, req, &ev)
	switch {
	case xerr == nil:
		ev.Result = "success"
	case xerr.auditResult != "":
		ev.Result = xerr.auditResult
	default:
		return nil, xerr
	}
	x.deps.Audit.Record(ctx, ev)
	return resp, xerr
}

func (x *Exchanger) issue(ctx context.Context, req exchangeRequest, ev *audit.Event) (*ExchangeResponse, *exchangeError) {
	sub, err := x.deps.Access.verifyForExchange(ctx, req.subjectToken)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, unavailable(err)
		}
		xe := badRequest("subject_token is not a valid access token of this server (expired, revoked or foreign)")
		xe.err, xe.auditResult = err, "invalid_subject_token"
		return nil, xe
	}
	if sub.Workload != "" {
		return x.issueWorkload(req, sub, ev)
	}
	ev.Actor = sub.Username
	ev.Detail["client_id"] = sub.ClientID
	if sub.TokenID != "" {
		ev.Detail["subject_token_id"] = sub.TokenID
	}
	if req.clientID != "" && req.clientID != sub.ClientID {
		// RFC 8693 §2.2.2: a subject token unacceptable by policy is
		// invalid_request; the client itself may be authentic.
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_request", auditResult: "wrong_client",
			desc: "the subject_token was issued to another client",
			err:  fmt.Errorf("client %q, token's client %q", req.clientID, sub.ClientID)}
	}
	user, err := x.deps.Users.Check(ctx, identity.User{ID: sub.UserID, Username: sub.Username},
		access.Request{Via: "token_exchange", RequestID: ev.RequestID, ClientIP: ev.ClientIP})
	switch {
	case identity.IsGone(err):
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_grant", auditResult: "user_rejected",
			desc: "the user of the subject_token can no longer be signed in; sign in again", err: err}
	case err != nil:
		return nil, unavailable(err)
	}
	res := x.deps.Rules.Load().Evaluate(rolemap.InputFromUser(user))
	if x.deps.Elevations != nil {
		if err := x.deps.Elevations.Apply(ctx, user, &res); err != nil {
			return nil, unavailable(err)
		}
	}
	var grant *rolemap.Grant
	for k := range res.Grants {
		if res.Grants[k].RoleARN == req.roleARN {
			grant = &res.Grants[k]
			break
		}
	}
	if grant == nil {
		if k := slices.IndexFunc(res.Eligible, func(g rolemap.Grant) bool { return g.RoleARN == req.roleARN }); k >= 0 {
			xe := &exchangeError{status: http.StatusBadRequest, code: "invalid_target", auditResult: "not_elevated",
				desc:  "this role is eligible, not standing: request an elevation first (warden elevate), or wait for its approval",
				extra: map[string]string{"eligible": "true"}}
			if el := res.Eligible[k].Elevation; el != nil {
				xe.auditResult = "elevation_ending"
				xe.desc = "your elevation of this role ends at " + el.EndsAt.UTC().Format("15:04 UTC") +
					", sooner than the shortest AWS session (15 minutes): request a new elevation"
			}
			return nil, xe
		}
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_target", auditResult: "denied",
			desc: "you do not hold this role (or no longer do)"}
	}
	if grant.Elevation != nil {
		ev.Detail["elevation"] = grant.Elevation.ID
	}
	authn := identity.AuthnFromAMR(sub.AMR, sub.AuthTime)
	ev.Detail["method"] = authn.Method
	if !authn.Satisfies(grant.RequireMFA, grant.MFAMethods, x.cfg.MFAMethods) {
		return nil, insufficientAuthn(*grant, authn)
	}
	switch req.requestedType {
	case TokenTypeSAML2:
		return x.issueSAML(ctx, user, authn, *grant, res, ev)
	default:
		if grant.Elevation != nil {
			// AWS bounds a web-identity session only by the caller's
			// DurationSeconds; a SAML assertion's SessionDuration binds it,
			// so that the session ends with the elevation.
			return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_target", auditResult: "elevated_web_identity",
				desc:  "an elevated role is issued only as a SAML assertion, whose session ends with the elevation: use --via saml",
				extra: map[string]string{"elevated": "true"}}
		}
		return x.issueWebIdentity(user, authn, req.role, res, ev)
	}
}

// ErrorInsufficientAuthn is RFC 9470's error code for a request whose
// authentication is not strong enough (§3).
const ErrorInsufficientAuthn = "insufficient_user_authentication"

// insufficientAuthn is the refusal of a role whose MFA requirement the
// grant's sign-in does not satisfy: RFC 9470 insufficient_user_authentication,
// acr_values the REFEDS MFA profile, and mfa_methods when the role names
// the methods it accepts.
func insufficientAuthn(g rolemap.Grant, authn identity.Authn) *exchangeError {
	xe := &exchangeError{status: http.StatusBadRequest, code: ErrorInsufficientAuthn, auditResult: "insufficient_authentication",
		desc:  "this role needs a sign-in with " + methodWords(g.MFAMethods) + ": sign in again and give it when asked",
		err:   fmt.Errorf("role %s: require_mfa %v, mfa_methods %v; the grant's sign-in used %s", g.RoleARN, g.RequireMFA, g.MFAMethods, authn.Method),
		extra: map[string]string{"acr_values": identity.ACRMFA}}
	if len(g.MFAMethods) > 0 {
		xe.extra["mfa_methods"] = strings.Join(g.MFAMethods, " ")
	}
	return xe
}

// methodWords names what a role accepts, for people: "a second factor",
// "a passkey", "a passkey or an authenticator app code".
func methodWords(methods []string) string {
	if len(methods) == 0 {
		return "a second factor"
	}
	words := make([]string, 0, len(methods))
	for _, m := range methods {
		switch m {
		case identity.MethodWebAuthn:
			words = append(words, "a passkey")
		case identity.MethodTOTP:
			words = append(words, "an authenticator app code")
		case identity.MethodRecovery:
			words = append(words, "a recovery code")
		default:
			words = append(words, m)
		}
	}
	return strings.Join(words, " or ")
}

func (x *Exchanger) issueSAML(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result, ev *audit.Event) (*ExchangeResponse, *exchangeError) {
	if x.deps.SAML == nil {
		return nil, badRequest("SAML tokens are not available: the AWS SAML service provider is off")
	}
	a, err := x.deps.SAML.STSResponse(ctx, user, authn, grant, res)
	switch {
	case errors.Is(err, samlidp.ErrInsufficientAuthn):
		// The IdP counts fewer methods than the exchange (both should be
		// mfa.methods): refused all the same.
		xe := insufficientAuthn(grant, authn)
		xe.err = err
		return nil, xe
	case errors.Is(err, awsfed.ErrOtherPartition):
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_target", auditResult: "other_partition", err: err,
			desc: "this role is in an AWS partition that Warden's SAML sign-in is not configured for; request an id_token instead"}
	case errors.Is(err, samlidp.ErrSessionName):
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_grant", auditResult: "no_session_name", err: err,
			desc: "your account has no usable AWS role session name; ask an administrator"}
	case errors.Is(err, samlidp.ErrAWSDisabled):
		return nil, badRequest("SAML tokens are not available: the AWS SAML service provider is off")
	case err != nil:
		return nil, unavailable(err)
	}
	ev.Detail["assertion_id"] = a.ID
	in := int64(a.Expires.Sub(x.deps.Clock()) / time.Second)
	in = max(min(in, maxSAMLExpiresIn), 1)
	return &ExchangeResponse{AccessToken: a.Response, IssuedTokenType: TokenTypeSAML2, TokenType: "N_A", ExpiresIn: in}, nil
}

// webIdentityClaims are the claims of the role-scoped web-identity token
// (aws-federation-rules.md section C): integer times (item 30), no azp
// (item 32), exp at most 5 minutes ahead (item 33), the opaque sub (item
// 34), tags in AWS's shape (item 35); how the user signed in for the
// grant: amr (RFC 8176), acr and auth_time (OIDC Core §2; amr is also a
// trust-policy key for some providers, item 37), and the authentication
// tag among the tags.
type webIdentityClaims struct {
	Issuer         string   `json:"iss"`
	Subject        string   `json:"sub"`
	Audience       string   `json:"aud"`
	Expiry         int64    `json:"exp"`
	IssuedAt       int64    `json:"iat"`
	NotBefore      int64    `json:"nbf"`
	ID             string   `json:"jti"`
	AuthTime       int64    `json:"auth_time,omitempty"`
	AMR            []string `json:"amr,omitempty"`
	ACR            string   `json:"acr,omitempty"`
	Tags           AWSTags  `json:"https://aws.amazon.com/tags"`
	SourceIdentity string   `json:"https://aws.amazon.com/source_identity,omitempty"`
}

func (x *Exchanger) issueWebIdentity(user identity.User, authn identity.Authn, role awsfed.RoleARN, res rolemap.Result, ev *audit.Event) (*ExchangeResponse, *exchangeError) {
	now := x.deps.Clock()
	exp := now.Add(x.cfg.WebIdentityLifetime)
	tags := x.sessionTags(user, authn, role, res)
	c := webIdentityClaims{
		Issuer:         x.cfg.Issuer,
		Subject:        x.deps.Subjects.Subject(user),
		Audience:       x.cfg.STSAudience,
		Expiry:         exp.Unix(),
		IssuedAt:       now.Unix(),
		NotBefore:      now.Unix(),
		ID:             x.randomID(16),
		AMR:            authn.AMR(),
		ACR:            authn.ACR(),
		Tags:           tags,
		SourceIdentity: res.SourceIdentity,
	}
	if !authn.Time.IsZero() {
		c.AuthTime = authn.Time.Unix()
	}
	tok, err := x.deps.Signer.SignJWT(c)
	if err != nil {
		return nil, unavailable(fmt.Errorf("sign web-identity token: %w", err))
	}
	ev.Detail["jti"] = c.ID
	return &ExchangeResponse{AccessToken: tok, IssuedTokenType: TokenTypeIDToken, TokenType: "N_A",
		ExpiresIn: c.Expiry - c.IssuedAt}, nil
}

// sessionTags are WardenRole, WardenAccount and the authentication tag
// (ExchangeConfig.AuthnTag, the method; not transitive, as in the SAML
// response), then the user's tag rules (rolemap already applied the limits
// of item 14 to them). A rule tag whose key equals one of Warden's,
// regardless of case (AWS compares keys so), or one past AWS's 50 tags is
// left out and logged, never renamed: Warden's tags win, so that a rule
// can never claim a second factor that was not given.
func (x *Exchanger) sessionTags(user identity.User, authn identity.Authn, role awsfed.RoleARN, res rolemap.Result) AWSTags {
	t := AWSTags{PrincipalTags: map[string][]string{
		awsfed.TagRole:    {role.Name},
		awsfed.TagAccount: {role.Account},
	}}
	own := func(k string) bool {
		return strings.EqualFold(k, awsfed.TagRole) || strings.EqualFold(k, awsfed.TagAccount) ||
			x.cfg.AuthnTag != "" && strings.EqualFold(k, x.cfg.AuthnTag)
	}
	if x.cfg.AuthnTag != "" {
		t.PrincipalTags[x.cfg.AuthnTag] = []string{authn.Method}
	}
	for _, tag := range res.Tags {
		reason := ""
		switch {
		case own(tag.Key):
			reason = "the key is Warden's own"
		case len(t.PrincipalTags) >= awsfed.MaxSessionTags:
			reason = "AWS accepts at most 50 session tags"
		}
		if reason != "" {
			x.deps.Logger.Warn("token exchange: session tag left out", "user", user.Username, "key", tag.Key, "reason", reason)
			continue
		}
		t.PrincipalTags[tag.Key] = []string{tag.Value}
		if tag.Transitive {
			t.TransitiveTagKeys = append(t.TransitiveTagKeys, tag.Key)
		}
	}
	return t
}

// parse reads the form strictly: urlencoded, bounded, each parameter at
// most once (RFC 6749 §3.2), within its size; unknown parameters are
// ignored (RFC 6749 §3.2). Tokens in the query string are refused.
func (x *Exchanger) parse(r *http.Request) (exchangeRequest, *exchangeError) {
	form, xerr := readForm(r)
	if xerr != nil {
		return exchangeRequest{}, xerr
	}
	one := func(name string, limit int) (string, *exchangeError) {
		v := form[name]
		switch {
		case len(v) > 1:
			return "", badRequest("the parameter " + name + " is repeated")
		case len(v) == 0:
			return "", nil
		case len(v[0]) > limit:
			return "", badRequest(fmt.Sprintf("the parameter %s is longer than %d bytes", name, limit))
		}
		return v[0], nil
	}
	var p struct{ grant, token, tokenType, requested, resource, audience, scope, clientID, actor string }
	for _, f := range []struct {
		name  string
		limit int
		dst   *string
	}{
		{"grant_type", maxTokenTypeParam, &p.grant},
		{"subject_token", maxSubjectToken, &p.token},
		{"subject_token_type", maxTokenTypeParam, &p.tokenType},
		{"requested_token_type", maxTokenTypeParam, &p.requested},
		{"resource", awsfed.MaxARNLength, &p.resource},
		{"audience", awsfed.MaxARNLength, &p.audience},
		{"scope", maxScopeParam, &p.scope},
		{"client_id", maxClientIDParam, &p.clientID},
		{"actor_token", maxSubjectToken, &p.actor},
	} {
		v, xerr := one(f.name, f.limit)
		if xerr != nil {
			return exchangeRequest{}, xerr
		}
		*f.dst = v
	}
	switch {
	case p.grant != GrantTypeTokenExchange:
		return exchangeRequest{}, &exchangeError{status: http.StatusBadRequest, code: "unsupported_grant_type",
			desc: "grant_type must be " + GrantTypeTokenExchange}
	case p.token == "":
		return exchangeRequest{}, badRequest("subject_token is required")
	case p.tokenType != TokenTypeAccessToken:
		return exchangeRequest{}, badRequest("subject_token_type must be " + TokenTypeAccessToken)
	case p.actor != "" || len(form["actor_token_type"]) > 0:
		return exchangeRequest{}, badRequest("delegation (actor_token) is not supported")
	}
	req := exchangeRequest{subjectToken: p.token, requestedType: p.requested, clientID: p.clientID}
	switch p.requested {
	case "":
		req.requestedType, req.typeDefaulted = TokenTypeSAML2, true
	case TokenTypeSAML2, TokenTypeIDToken:
	default:
		return exchangeRequest{}, badRequest("requested_token_type must be " + TokenTypeSAML2 + " or " + TokenTypeIDToken)
	}
	// The role: the resource; or the audience when there is no resource
	// and it is not the STS audience.
	roleText, aud := p.resource, p.audience
	if roleText == "" && aud != "" && aud != x.cfg.STSAudience {
		roleText, aud = aud, ""
	}
	switch {
	case roleText == "":
		return exchangeRequest{}, badRequest("resource is required: the ARN of the role")
	case aud != "" && (req.requestedType != TokenTypeIDToken || aud != x.cfg.STSAudience):
		return exchangeRequest{}, badTarget("audience must be the STS audience " + x.cfg.STSAudience + " (with requested_token_type id_token), or absent")
	}
	role, err := awsfed.ParseRoleARN(roleText)
	if err != nil {
		xe := badTarget("resource is not an IAM role ARN (arn:<partition>:iam::<account>:role/<name>): " + strings.TrimPrefix(err.Error(), awsfed.ErrInvalidARN.Error()+": "))
		xe.err = err
		return exchangeRequest{}, xe
	}
	req.role, req.roleARN = role, roleText
	return req, nil
}

func readForm(r *http.Request) (url.Values, *exchangeError) {
	if q := r.URL.Query(); q.Has("subject_token") || q.Has("actor_token") {
		return nil, badRequest("tokens are not accepted in the URL; send them in the form body")
	}
	if r.PostForm != nil { // parsed already by the token endpoint
		return r.PostForm, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxExchangeBody+1))
	if err != nil {
		xe := badRequest("the request body could not be read")
		xe.err = err
		return nil, xe
	}
	if len(body) > maxExchangeBody {
		return nil, badRequest(fmt.Sprintf("the request body is larger than %d bytes", maxExchangeBody))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("the form body is not valid urlencoded data")
	}
	return form, nil
}

func (x *Exchanger) randomID(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(x.deps.Rand, b); err != nil {
		// crypto/rand does not fail on supported platforms; a test
		// reader that runs dry gives a fixed ID rather than a 500.
		return "exchange"
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
