package oidcop

// Workload clients (rolemap.Workload): the client_credentials grant of the
// token endpoint, with private_key_jwt (RFC 7523) or a client secret, and
// the workload access tokens the token exchange turns into role-scoped
// web-identity tokens (exchange.go, issueWorkload).

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// GrantTypeClientCredentials is the client_credentials grant (RFC 6749 §4.4).
const GrantTypeClientCredentials = "client_credentials"

// Workload authentication methods, as audited and sent in the
// authentication session tag of a workload's web-identity token.
const (
	WorkloadAuthKey    = "private_key_jwt"
	WorkloadAuthSecret = "client_secret"
)

// WorkloadConfig is the oidc.workloads block.
type WorkloadConfig struct {
	// TokenLifetime is how long a workload access token may be exchanged
	// (default 5m; 1m..1h). Removing or disabling the workload stops its
	// tokens at once all the same: every exchange reads the rules.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// RateLimit bounds the token requests (client_credentials and
	// exchanges) of each workload on each replica.
	RateLimit WorkloadRateLimit `yaml:"rate_limit"`
	// JWKSCacheTTL is how long a workload's jwks_url document is used
	// before it is fetched again (default 5m; 30s..24h). An assertion
	// with an unknown kid fetches it again at once, at most every 30 s.
	JWKSCacheTTL time.Duration `yaml:"jwks_cache_ttl"`
}

// WorkloadRateLimit is a token bucket per workload and replica.
type WorkloadRateLimit struct {
	PerSecond float64 `yaml:"per_second"` // default 20; 0.01..100000
	Burst     int     `yaml:"burst"`      // default 2×per_second (at least 1); 1..1000000
}

func (c *WorkloadConfig) setDefaults() {
	if c.TokenLifetime == 0 {
		c.TokenLifetime = 5 * time.Minute
	}
	if c.RateLimit.PerSecond == 0 {
		c.RateLimit.PerSecond = 20
	}
	if c.RateLimit.Burst == 0 {
		c.RateLimit.Burst = max(1, int(math.Ceil(2*c.RateLimit.PerSecond)))
	}
	if c.JWKSCacheTTL == 0 {
		c.JWKSCacheTTL = 5 * time.Minute
	}
}

func (c WorkloadConfig) problems(add func(path, format string, args ...any)) {
	if c.TokenLifetime < time.Minute || c.TokenLifetime > time.Hour {
		add("workloads.token_lifetime", "%s not in 1m0s..1h0m0s", c.TokenLifetime)
	}
	if r := c.RateLimit.PerSecond; !(r >= 0.01 && r <= 100000) {
		add("workloads.rate_limit.per_second", "must be 0.01..100000, got %v", r)
	}
	if b := c.RateLimit.Burst; b < 1 || b > 1_000_000 {
		add("workloads.rate_limit.burst", "must be 1..1000000, got %d", b)
	}
	if c.JWKSCacheTTL < 30*time.Second || c.JWKSCacheTTL > 24*time.Hour {
		add("workloads.jwks_cache_ttl", "%s not in 30s..24h0m0s", c.JWKSCacheTTL)
	}
}

// workloads is the provider's workload half: token sealing, rate
// limits, the jti cache, jwks_url documents and metrics.
type workloads struct {
	cfg     WorkloadConfig
	aead    cipher.AEAD
	jtis    JTICache
	fetcher *jwksFetcher
	tokens  *prometheus.CounterVec

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newWorkloads(cfg WorkloadConfig, sealKey []byte, jtis JTICache, log *slog.Logger, now func() time.Time) (*workloads, error) {
	block, err := aes.NewCipher(sealKey[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &workloads{
		cfg: cfg, aead: aead, jtis: jtis, limiters: map[string]*rate.Limiter{},
		fetcher: newJWKSFetcher(cfg.JWKSCacheTTL, log, now),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_workload_tokens_total",
			Help: "Workload token requests by workload (client ID, or \"unknown\"), step (access_token: client_credentials; web_identity: the exchange) and result.",
		}, []string{"client", "step", "result"}),
	}, nil
}

// RegisterMetrics registers the workload metrics (warden_workload_tokens_total).
func (p *Provider) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(p.wl.tokens); err != nil {
		return fmt.Errorf("oidcop: register metrics: %w", err)
	}
	return nil
}

func (w *workloads) count(client, step, result string) {
	w.tokens.WithLabelValues(client, step, result).Inc()
}

// allow takes a token of the workload's bucket; when refused, it says
// how long until the next one. Buckets exist only for workloads the
// rules know, so their number is bounded by the rules.
func (w *workloads) allow(id string, now time.Time) (bool, time.Duration) {
	w.mu.Lock()
	l, ok := w.limiters[id]
	if !ok {
		if len(w.limiters) > rolemap.MaxWorkloads {
			clear(w.limiters) // workloads removed from the rules over time
		}
		l = rate.NewLimiter(rate.Limit(w.cfg.RateLimit.PerSecond), w.cfg.RateLimit.Burst)
		w.limiters[id] = l
	}
	w.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Workload access tokens are sealed, not stored: "wl1." and the
// base64url of nonce ‖ AES-256-GCM(id \x00 exp \x00 jti \x00 method \x00
// kid), under a key derived from the subject key (the same on every
// replica). Revocation needs no list: every exchange reads the rules.
const workloadTokenPrefix = "wl1."

type workloadToken struct {
	ID, JTI, Method, KeyID string
	Expiry                 time.Time
}

func (w *workloads) seal(t workloadToken, rnd io.Reader) (string, error) {
	nonce := make([]byte, w.aead.NonceSize(), w.aead.NonceSize()+128)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return "", err
	}
	plain := strings.Join([]string{t.ID, strconv.FormatInt(t.Expiry.Unix(), 10), t.JTI, t.Method, t.KeyID}, "\x00")
	out := w.aead.Seal(nonce, nonce, []byte(plain), []byte(workloadTokenPrefix))
	return workloadTokenPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the token's contents; ok is false for anything that is not
// a workload token of this server (a user's access token included).
func (w *workloads) open(token string) (workloadToken, bool) {
	rest, ok := strings.CutPrefix(token, workloadTokenPrefix)
	if !ok || len(rest) > 1024 {
		return workloadToken{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) < w.aead.NonceSize() {
		return workloadToken{}, false
	}
	plain, err := w.aead.Open(nil, raw[:w.aead.NonceSize()], raw[w.aead.NonceSize():], []byte(workloadTokenPrefix))
	if err != nil {
		return workloadToken{}, false
	}
	f := strings.Split(string(plain), "\x00")
	if len(f) != 5 {
		return workloadToken{}, false
	}
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return workloadToken{}, false
	}
	return workloadToken{ID: f[0], Expiry: time.Unix(exp, 0), JTI: f[2], Method: f[3], KeyID: f[4]}, true
}

// workloadError answers a client_credentials refusal: JSON with the
// request ID; 401 invalid_client carries WWW-Authenticate.
func workloadError(c *gin.Context, status int, code, desc string) {
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="warden"`)
	}
	c.AbortWithStatusJSON(status, map[string]string{"error": code, "error_description": desc, "request_id": web.RequestID(c.Request.Context())})
}

// clientCredentials answers grant_type=client_credentials for workloads.
func (p *Provider) clientCredentials(c *gin.Context) {
	r := c.Request
	ctx := r.Context()
	now := p.now()
	form := r.PostForm
	ev := audit.Event{Actor: "anonymous", Action: "workload.token", ClientIP: web.ClientIP(c), RequestID: web.RequestID(ctx), Time: now,
		Detail: map[string]string{}}
	label := "unknown"
	refuse := func(status int, code, desc, result string, err error) {
		ev.Result = result
		if err != nil {
			p.log.LogAttrs(ctx, slog.LevelInfo, "workload token refused", slog.String("client_id", ev.Object),
				slog.String("result", result), slog.String("err", err.Error()), slog.String("request_id", ev.RequestID))
		}
		p.wl.count(label, "access_token", result)
		if ev.Object != "" {
			p.record(ctx, ev)
		}
		workloadError(c, status, code, desc)
	}

	// Which client, and how it authenticates: exactly one method.
	assertionType, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	basicID, basicSecret, basic := r.BasicAuth()
	id, secret := form.Get("client_id"), form.Get("client_secret")
	methods := 0
	for _, used := range []bool{assertion != "" || assertionType != "", basic, secret != ""} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0:
		refuse(http.StatusUnauthorized, "invalid_client", "client authentication missing: send a client_assertion (private_key_jwt) or the client secret", "no_credentials", nil)
		return
	case methods > 1:
		refuse(http.StatusBadRequest, "invalid_request", "use one client authentication method", "several_methods", nil)
		return
	}
	method := WorkloadAuthKey
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded first.
		var err1, err2 error
		basicID, err1 = url.QueryUnescape(basicID)
		basicSecret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			refuse(http.StatusUnauthorized, "invalid_client", "the Basic credentials are not form-urlencoded", "malformed", nil)
			return
		}
		if id != "" && id != basicID {
			refuse(http.StatusBadRequest, "invalid_request", "client_id differs from the Basic user name", "malformed", nil)
			return
		}
		id, secret = basicID, basicSecret
	}
	if secret != "" {
		method = WorkloadAuthSecret
	} else {
		if assertionType != AssertionType {
			refuse(http.StatusUnauthorized, "invalid_client", "client_assertion_type must be "+AssertionType, "malformed", nil)
			return
		}
		if id == "" {
			id = unverifiedIssuer(assertion)
		}
	}
	if id == "" {
		refuse(http.StatusUnauthorized, "invalid_client", "client_id missing (and the assertion names no issuer)", "malformed", nil)
		return
	}
	eng := p.rules.Load()
	wl, known := eng.Workload(id)
	if !known {
		refuse(http.StatusUnauthorized, "invalid_client", "unknown client", "unknown_client", nil)
		return
	}
	label, ev.Actor, ev.Object = id, rolemap.WorkloadSubjectPref+id, id
	ev.Detail["method"] = method
	if wl.Disabled {
		refuse(http.StatusUnauthorized, "invalid_client", "this workload is disabled", "disabled", nil)
		return
	}
	tok := workloadToken{ID: id, Method: method, Expiry: now.Add(p.cfg.Workloads.TokenLifetime)}
	if method == WorkloadAuthSecret {
		sum := sha256.Sum256([]byte(secret))
		if !wl.HasSecret || len(secret) < rolemap.MinWorkloadSecret || subtle.ConstantTimeCompare(sum[:], wl.SecretHash[:]) != 1 {
			refuse(http.StatusUnauthorized, "invalid_client", "client authentication failed", "bad_secret", nil)
			return
		}
		jti, err := p.randomID(12)
		if err != nil {
			refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable; try again", "unavailable", err)
			return
		}
		tok.JTI = jti
	} else {
		keys, err := p.workloadKeys(ctx, wl, assertion)
		if err != nil {
			refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the workload's published keys (jwks_url) could not be read; try again", "jwks_unavailable", err)
			return
		}
		claims, err := VerifyClientAssertion(ctx, assertion, id, keys, []string{p.issuer + "/oauth/token", p.issuer}, now, p.wl.jtis)
		switch {
		case errors.Is(err, ErrBadAssertion):
			refuse(http.StatusUnauthorized, "invalid_client", "the client assertion was refused: "+strings.TrimPrefix(err.Error(), ErrBadAssertion.Error()+": "), "bad_assertion", err)
			return
		case err != nil:
			refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable; try again", "unavailable", err)
			return
		}
		tok.JTI, tok.KeyID = claims.ID, claims.KeyID
		ev.Detail["kid"] = claims.KeyID
	}
	// The limit counts authenticated requests only: someone who merely
	// knows a workload's ID cannot use up its bucket.
	if ok, wait := p.wl.allow(id, now); !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		c.Header("Retry-After", strconv.Itoa(secs))
		refuse(http.StatusTooManyRequests, "slow_down", fmt.Sprintf("too many token requests for this workload; retry in %d s", secs), "rate_limited", nil)
		return
	}
	sealed, err := p.wl.seal(tok, p.rand)
	if err != nil {
		refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the service is temporarily unavailable; try again", "unavailable", err)
		return
	}
	ev.Result = "success"
	ev.Detail["token_id"] = tok.JTI
	p.record(ctx, ev)
	p.wl.count(id, "access_token", "success")
	h := c.Writer.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	c.Status(http.StatusOK)
	_ = json.NewEncoder(c.Writer).Encode(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}{sealed, "Bearer", int64(p.cfg.Workloads.TokenLifetime / time.Second)})
	c.Abort()
}

// workloadKeys are the keys the assertion of wl may verify with: the
// inline ones, or the jwks_url document (fetched again when the
// assertion's kid is not in it).
func (p *Provider) workloadKeys(ctx context.Context, wl *rolemap.CompiledWorkload, assertion string) ([]jose.JSONWebKey, error) {
	if wl.JWKSURL == "" {
		return wl.Keys, nil
	}
	return p.wl.fetcher.keys(ctx, wl.JWKSURL, assertionKid(assertion))
}

// unverifiedIssuer reads the iss of a JWT without verifying it: only to
// find the client whose keys then verify it.
func unverifiedIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > maxAssertionBytes {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil || len(c.Iss) > 64 {
		return ""
	}
	return c.Iss
}

// assertionKid is the kid of a JWT's header, unverified ("" if none).
func assertionKid(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > 2048 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

// verifyWorkloadToken resolves a workload access token for the exchange:
// ok false when token is not one.
func (p *Provider) verifyWorkloadToken(token string) (ExchangeSubject, bool, error) {
	t, ok := p.wl.open(token)
	if !ok {
		return ExchangeSubject{}, false, nil
	}
	if !p.now().Before(t.Expiry) {
		return ExchangeSubject{}, true, fmt.Errorf("oidcop: workload token of %s expired: %w", t.ID, ErrInvalidToken)
	}
	amr := []string{}
	if t.Method == WorkloadAuthKey {
		amr = []string{"pop"}
	}
	return ExchangeSubject{Workload: t.ID, WorkloadMethod: t.Method, ClientID: t.ID, Username: rolemap.WorkloadSubjectPref + t.ID,
		Expiry: t.Expiry, TokenID: t.JTI, AMR: amr}, true, nil
}

// jwksFetcher caches the jwks_url documents of workloads.
type jwksFetcher struct {
	ttl    time.Duration
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	mu      sync.Mutex // one fetch at a time per URL
	keys    []jose.JSONWebKey
	fetched time.Time // of keys; zero: never fetched
	tried   time.Time // last fetch attempt
}

const (
	jwksMaxBytes     = 64 << 10
	jwksRefetchEvery = 30 * time.Second // at least this between fetches for unknown kids and failures
	jwksTimeout      = 5 * time.Second
)

func newJWKSFetcher(ttl time.Duration, log *slog.Logger, now func() time.Time) *jwksFetcher {
	return &jwksFetcher{ttl: ttl, log: log, now: now, entries: map[string]*jwksEntry{},
		client: &http.Client{Timeout: jwksTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed") // the URL in the rules is the one trusted
		}}}
}

// keys returns the document's keys, fetching it when it is older than
// the TTL, or when kid is not in it (at most every jwksRefetchEvery). The
// last good copy is kept when a fetch fails.
func (f *jwksFetcher) keys(ctx context.Context, u, kid string) ([]jose.JSONWebKey, error) {
	f.mu.Lock()
	e := f.entries[u]
	if e == nil {
		if len(f.entries) > rolemap.MaxWorkloads {
			clear(f.entries)
		}
		e = &jwksEntry{}
		f.entries[u] = e
	}
	f.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := f.now()
	stale := e.fetched.IsZero() || now.Sub(e.fetched) >= f.ttl
	unknown := kid != "" && !hasKid(e.keys, kid)
	if (stale || unknown) && (e.fetched.IsZero() || now.Sub(e.tried) >= jwksRefetchEvery) {
		e.tried = now
		keys, err := f.fetch(ctx, u)
		switch {
		case err == nil:
			e.keys, e.fetched = keys, now
		case e.fetched.IsZero():
			return nil, err
		default:
			f.log.Warn("workload jwks_url: fetch failed; the last good copy is used", "url", u, "err", err)
		}
	}
	return e.keys, nil
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

func (f *jwksFetcher) fetch(ctx context.Context, u string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks_url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_url: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks_url: %w", err)
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("jwks_url: document larger than %d bytes", jwksMaxBytes)
	}
	keys, problems := rolemap.ParseJWKS(body)
	for _, pr := range problems {
		f.log.Warn("workload jwks_url: key left out", "url", u, "problem", pr)
	}
	if keys == nil && len(problems) > 0 {
		return nil, fmt.Errorf("jwks_url: no usable key (%s)", problems[0])
	}
	return keys, nil
}

// issueWorkload is the exchange of a workload's access token for a
// role-scoped web-identity token: the workload must still be in the rules
// and enabled, within its rate limit, and hold the role.
func (x *Exchanger) issueWorkload(req exchangeRequest, sub ExchangeSubject, ev *audit.Event) (resp *ExchangeResponse, xerr *exchangeError) {
	id := sub.Workload
	ev.Actor = rolemap.WorkloadSubjectPref + id
	ev.Detail["client_id"] = id
	ev.Detail["method"] = sub.WorkloadMethod
	if sub.TokenID != "" {
		ev.Detail["subject_token_id"] = sub.TokenID
	}
	defer func() {
		if x.deps.workloadCount == nil {
			return
		}
		switch {
		case xerr == nil:
			x.deps.workloadCount(id, "web_identity", "success")
		case xerr.auditResult != "":
			x.deps.workloadCount(id, "web_identity", xerr.auditResult)
		default:
			x.deps.workloadCount(id, "web_identity", xerr.code)
		}
	}()
	if req.clientID != "" && req.clientID != id {
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_request", auditResult: "wrong_client",
			desc: "the subject_token was issued to another client"}
	}
	wl, ok := x.deps.Rules.Load().Workload(id)
	if !ok || wl.Disabled {
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_grant", auditResult: "workload_revoked",
			desc: "this workload was removed from the rules or disabled: its tokens no longer work"}
	}
	if x.deps.workloadGate != nil {
		if ok, wait := x.deps.workloadGate(id, x.deps.Clock()); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			return nil, &exchangeError{status: http.StatusTooManyRequests, code: "slow_down", auditResult: "rate_limited", retryAfter: secs,
				desc: fmt.Sprintf("too many token requests for this workload; retry in %d s", secs)}
		}
	}
	if req.requestedType != TokenTypeIDToken && !req.typeDefaulted {
		return nil, badRequest("a workload gets web-identity tokens only: requested_token_type must be " + TokenTypeIDToken)
	}
	grant, ok := wl.Grant(req.roleARN)
	if !ok {
		return nil, &exchangeError{status: http.StatusBadRequest, code: "invalid_target", auditResult: "denied",
			desc: "this workload does not have this role"}
	}
	now := x.deps.Clock()
	exp := now.Add(x.cfg.WebIdentityLifetime)
	tags := AWSTags{PrincipalTags: make(map[string][]string, 4+len(wl.Tags))}
	tags.PrincipalTags[awsfed.TagRole] = []string{grant.RoleName}
	tags.PrincipalTags[awsfed.TagAccount] = []string{grant.AccountID}
	tags.PrincipalTags[rolemap.TagWorkload] = []string{id}
	if x.cfg.AuthnTag != "" {
		tags.PrincipalTags[x.cfg.AuthnTag] = []string{sub.WorkloadMethod}
	}
	for _, t := range wl.Tags {
		if strings.EqualFold(t.Key, x.cfg.AuthnTag) {
			continue // the rules cannot claim an authentication
		}
		tags.PrincipalTags[t.Key] = []string{t.Value}
	}
	c := webIdentityClaims{
		Issuer:    x.cfg.Issuer,
		Subject:   rolemap.WorkloadSubjectPref + id,
		Audience:  x.cfg.STSAudience,
		Expiry:    exp.Unix(),
		IssuedAt:  now.Unix(),
		NotBefore: now.Unix(),
		ID:        x.randomID(16),
		AMR:       sub.AMR,
		Tags:      tags,
	}
	tok, err := x.deps.Signer.SignJWT(c)
	if err != nil {
		return nil, unavailable(fmt.Errorf("sign web-identity token: %w", err))
	}
	ev.Detail["jti"] = c.ID
	ev.Detail["requested_token_type"] = TokenTypeIDToken
	return &ExchangeResponse{AccessToken: tok, IssuedTokenType: TokenTypeIDToken, TokenType: "N_A", ExpiresIn: c.Expiry - c.IssuedAt,
		MaxSessionSeconds: grant.SessionSeconds}, nil
}
