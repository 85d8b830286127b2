// Package samlidp is Warden's SAML 2.0 identity provider, glue around
// github.com/crewjam/saml:
//
//   - /saml/metadata: the IdP metadata (entityID, SSO endpoints for the
//     HTTP-Redirect and HTTP-POST bindings, one signing KeyDescriptor per
//     published key), ready for `aws iam create-saml-provider` (item 22 of
//     aws-federation-rules.md);
//   - /saml/sso: SP-initiated sign-in (saml-bindings-2.0-os §3.4, §3.5):
//     the AuthnRequest is bounded, checked for DTDs, parsed and validated
//     by crewjam (issuer known, signature when present or required, ACS
//     from metadata only), checked for age and replay, then answered for
//     the signed-in user, or paused (store.SAMLPending) across sign-in and
//     resumed at /saml/continue/<id>;
//   - AWSConsoleAuthn: IdP-initiated, one-role responses for the portal.
//
// How the user signed in travels in every assertion (authn.go, DESIGN.md
// flow 6): AuthnInstant is the password's time, AuthnContextClassRef
// PasswordProtectedTransport or the REFEDS MFA profile, and AWS responses
// carry the authentication session tag (Deps.AuthnTag, WardenAuth) naming
// the method. A role that demands a second factor (rolemap.Grant
// RequireMFA, MFAMethods) is never signed for a sign-in without it: an
// SP-initiated AWS request is paused and the browser sent through the
// second factor (web.RequireFactor), back to /saml/continue/<id>; the
// builders refuse it (ErrInsufficientAuthn).
//
// Service providers: the AWS sign-in preset of the configured partition
// and region (an SP metadata we write ourselves, like AWS's own
// saml-metadata.xml), and generic SPs from their metadata (file or URL,
// refreshed, last good copy kept). Each has its AssertionMaker: the AWS one
// follows aws-federation-rules.md section A; the generic one sends
// username, email, display name and groups under configured names.
//
// Signing (signer.go): the Assertion always, the Response too where
// configured; RSA-SHA256, exclusive C14N, enveloped signatures. The
// signing context of the current key and the metadata bytes are built once
// and rebuilt only when the key ring changes.
//
// Every bad input gets an error page with the request ID (web.Fail), never
// a response to an address the SP's metadata does not list.
package samlidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// KeyRing is what the IdP needs of the signing keys (keys.Ring).
type KeyRing interface {
	// Current signs now.
	Current() keys.Signer
	// Published are every key in the metadata: current first, then the
	// next key, then recently retired ones.
	Published() []keys.Signer
}

// ReplayCache remembers request IDs (store.SAMLReplay): Seen reports
// whether id is new, and remembers it for ttl.
type ReplayCache interface {
	Seen(ctx context.Context, id string, ttl time.Duration) (first bool, err error)
}

// PendingStore keeps paused AuthnRequests across the sign-in redirect
// (store.SAMLPending). Take deletes; an unknown id is store.ErrNotFound.
type PendingStore interface {
	Put(ctx context.Context, data []byte, ttl time.Duration) (string, error)
	Take(ctx context.Context, id string) ([]byte, error)
}

// Deps are the IdP's collaborators.
type Deps struct {
	Keys    KeyRing          // required
	Rules   *rolemap.Holder  // required when the AWS preset is on
	Replay  ReplayCache      // required
	Pending PendingStore     // required
	Audit   audit.Logger     // nil: audit.Discard
	Logger  *slog.Logger     // nil: discard
	Clock   func() time.Time // nil: time.Now
	Rand    io.Reader        // nil: crypto/rand (response and assertion IDs)
	// PublicURL is the server's public base URL (web.Config.PublicURL):
	// the SSO endpoint is PublicURL + "/saml/sso".
	PublicURL string
	// NameIDKey keys the persistent NameID HMAC; at least 32 bytes, the
	// same on every replica (store.SharedSecret(ctx, "saml-nameid", 32)).
	NameIDKey []byte
	// HTTPClient fetches SP metadata URLs (nil: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// AuthnTag is the session tag key (mfa.Config.Tag(): WardenAuth by
	// default) sent as a PrincipalTag with the method the user signed in
	// with (password, totp, webauthn, recovery) in every AWS response; ""
	// sends none. It must be a valid tag key (item 14).
	AuthnTag string
	// MFAMethods are the second factors that count (mfa.Config.Methods);
	// nil: every second factor. A role whose RequireMFA / MFAMethods the
	// sign-in does not satisfy with them is never signed.
	MFAMethods []string
	// Elevations grants the roles of active elevations (elevation.Service);
	// nil: none are granted.
	Elevations Elevations
}

// Elevations turns a user's active elevations into grants and names them
// in session tags (elevation.Service).
type Elevations interface {
	// Apply adds the eligible roles of res that an active elevation grants
	// now to res.Grants, SessionSeconds capped at the time left.
	Apply(ctx context.Context, user identity.User, res *rolemap.Result) error
	// Tags are the session tags naming the elevations behind grants.
	Tags(grants []rolemap.Grant) []rolemap.Tag
}

// IdP is the SAML identity provider. It is a web.Mount.
type IdP struct {
	cfg       Config
	entityID  string
	ssoURL    string
	keys      KeyRing
	rules     *rolemap.Holder
	replay    ReplayCache
	pending   PendingStore
	audit     audit.Logger
	log       *slog.Logger
	now       func() time.Time
	rand      io.Reader
	nameIDKey []byte

	authnTagKey string   // Deps.AuthnTag
	mfaMethods  []string // Deps.MFAMethods
	elevations  Elevations

	saml  *saml.IdentityProvider // validates AuthnRequests
	sps   *registry
	aws   *awsSP // nil when the preset is off
	sig   atomic.Pointer[signerState]
	meta  atomic.Pointer[metadataState]
	close context.CancelFunc

	etreeOnly bool // tests: buildResponse without the direct writer
}

// Errors of AWSConsole and ValidRelayState.
var (
	// ErrTooLarge: the base64 response would exceed AWS's 100,000
	// characters (item 20). Its text says how many roles and what to do.
	ErrTooLarge = errors.New("saml response too large")
	// ErrBadRelayState: a RelayState that is not an AWS console URL of the
	// partition.
	ErrBadRelayState = errors.New("relay state is not an AWS console URL")
	// ErrAWSDisabled: AWSConsole called while the AWS preset is off.
	ErrAWSDisabled = errors.New("aws service provider disabled")
	// ErrSessionName: the RoleSessionName source has fewer than 2 usable
	// characters.
	ErrSessionName = errors.New("no usable role session name")
)

// New builds the IdP: it validates cfg (after defaults), builds the AWS
// preset, loads every generic SP's metadata (an SP whose metadata cannot
// be loaded at start is an error: a typo should not wait for the first
// user), and starts the refresh of metadata URLs (stopped by Close).
func New(cfg Config, deps Deps) (*IdP, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("samlidp: config: %w", err)
	}
	switch {
	case deps.Keys == nil:
		return nil, errors.New("samlidp: Deps.Keys is required")
	case deps.Replay == nil:
		return nil, errors.New("samlidp: Deps.Replay is required")
	case deps.Pending == nil:
		return nil, errors.New("samlidp: Deps.Pending is required")
	case len(deps.NameIDKey) < 32:
		return nil, errors.New("samlidp: Deps.NameIDKey must have at least 32 bytes")
	case deps.Rules == nil && cfg.AWS.On():
		return nil, errors.New("samlidp: Deps.Rules is required when the AWS service provider is on")
	}
	if deps.AuthnTag != "" {
		if err := awsfed.ValidTagKey(deps.AuthnTag); err != nil {
			return nil, fmt.Errorf("samlidp: Deps.AuthnTag: %w", err)
		}
	}
	pub, err := url.Parse(strings.TrimRight(deps.PublicURL, "/"))
	if err != nil || (pub.Scheme != "https" && pub.Scheme != "http") || pub.Host == "" {
		return nil, fmt.Errorf("samlidp: Deps.PublicURL %q is not an http(s) URL", deps.PublicURL)
	}
	i := &IdP{
		cfg:       cfg,
		entityID:  cfg.EntityID,
		ssoURL:    pub.String() + "/saml/sso",
		keys:      deps.Keys,
		rules:     deps.Rules,
		replay:    deps.Replay,
		pending:   deps.Pending,
		audit:     deps.Audit,
		log:       deps.Logger,
		now:       deps.Clock,
		rand:      deps.Rand,
		nameIDKey: append([]byte(nil), deps.NameIDKey...),

		authnTagKey: deps.AuthnTag,
		mfaMethods:  slices.Clone(deps.MFAMethods),
		elevations:  deps.Elevations,
	}
	if i.entityID == "" {
		i.entityID = pub.String() + "/saml/metadata"
	}
	if i.audit == nil {
		i.audit = audit.Discard{}
	}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	cur := deps.Keys.Current()
	if cur.Key == nil || cur.Cert == nil {
		return nil, errors.New("samlidp: the key ring has no current key")
	}
	if cfg.AWS.On() {
		if i.aws, err = newAWSSP(cfg.AWS); err != nil {
			return nil, fmt.Errorf("samlidp: aws: %w", err)
		}
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if i.sps, err = newRegistry(cfg.ServiceProviders, i.aws, client, i.log, i.now); err != nil {
		return nil, fmt.Errorf("samlidp: %w", err)
	}
	entityURL, _ := url.Parse(i.entityID) // validated
	ssoURL, _ := url.Parse(i.ssoURL)
	i.saml = &saml.IdentityProvider{
		Key:                     cur.Key,
		Certificate:             cur.Cert,
		MetadataURL:             *entityURL,
		SSOURL:                  *ssoURL,
		ServiceProviderProvider: i.sps,
		SessionProvider:         sessionProvider{i},
		AssertionMaker:          assertionMaker{i},
		SignatureMethod:         dsig.RSASHA256SignatureMethod,
		Clock:                   dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: i.now}),
		Logger:                  slogPrinter{i.log},
	}
	if _, err := i.signingContext(); err != nil {
		return nil, fmt.Errorf("samlidp: %w", err)
	}
	if _, err := i.metadata(); err != nil {
		return nil, fmt.Errorf("samlidp: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	i.close = cancel
	i.sps.startRefresh(ctx)
	return i, nil
}

// evaluate gives the user's grants and tags under the current rules.
func (i *IdP) evaluate(u identity.User) rolemap.Result {
	return i.rules.Load().Evaluate(rolemap.InputFromUser(u))
}

// Close stops the metadata refresh.
func (i *IdP) Close() {
	if i.close != nil {
		i.close()
	}
}

// EntityID is the IdP's entity ID (the Issuer of its responses).
func (i *IdP) EntityID() string { return i.entityID }

// Routes implements web.Mount.
func (i *IdP) Routes() []web.Route {
	return []web.Route{
		{Method: http.MethodGet, Path: "/saml/metadata", Handler: i.handleMetadata},
		// Fresh: every response is signed for the user as the directory
		// has them now (web.Route.Fresh).
		{Method: http.MethodGet, Path: "/saml/sso", Handler: i.handleSSO, Fresh: true},
		// The HTTP-POST binding is a cross-site form POST by design.
		{Method: http.MethodPost, Path: "/saml/sso", Handler: i.handleSSO, MaxBody: maxPostBody, CrossSite: true, Fresh: true},
		{Method: http.MethodGet, Path: "/saml/continue/:id", Handler: i.handleContinue, Fresh: true},
		{Method: http.MethodGet, Path: "/saml/post.js", Handler: handlePostJS},
	}
}

// ValidRelayState checks that url is an AWS console URL of the partition
// (https, the partition's console host or <sub>.<console host>, no user
// info, no port): the only RelayState Warden sends to AWS sign-in, which
// redirects the browser there after sign-in.
func ValidRelayState(partition, url string) error {
	if err := awsfed.ValidConsoleURL(partition, url); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRelayState, err)
	}
	return nil
}
