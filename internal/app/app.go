// Package app wires wardend together: it builds every component from its own
// config, starts the HTTP server, and stops everything in order. Only
// cmd/wardend calls it; it receives the component configs, not the config
// file (DESIGN.md: nothing imports config but cmd/wardend).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/accesskeys"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/portal"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Options is everything Run needs. The component configs arrive defaulted
// and validated (cmd/wardend does that with internal/config).
type Options struct {
	Server      web.Config
	Directory   ldap.Config
	Redis       store.RedisConfig
	Session     store.SessionConfig
	LoginLimits store.LimitConfig
	Admin       admin.Config
	// Keys configures the signing key ring (data_dir/keys); zero values
	// take the defaults.
	Keys keys.Config
	// SAML configures the SAML identity provider (the AWS preset and other
	// service providers); zero values take the defaults.
	SAML samlidp.Config
	// OIDC configures the OpenID provider (issuer, clients, lifetimes);
	// zero values take the defaults (issuer = Server.PublicURL).
	OIDC oidcop.Config
	// MFA configures second factors (policy, methods, encryption key);
	// zero values take the defaults (nobody must, every method counts,
	// the key in DataDir/mfa.key).
	MFA mfa.Config
	// Elevation configures time-boxed elevation (request timeout, session
	// tags, webhooks); zero values take the defaults.
	Elevation elevation.Config
	// AccessKeys configures the portal's Access keys panel
	// (portal.access_keys); zero values take the defaults (on, the
	// regional STS endpoint of each role's partition).
	AccessKeys accesskeys.Config
	// AuditMaxLen bounds the audit stream in Redis (0: store.DefaultAuditMaxLen).
	AuditMaxLen int64
	// DataDir holds generated keys (DataDir/keys).
	DataDir string
	// Dev, when non-nil, runs dev mode: in-process directory and Redis; the
	// Directory and Redis configs are ignored.
	Dev *DevOptions
	// Logger receives everything; nil discards.
	Logger *slog.Logger
	// Banner receives the human-readable start message (dev mode: URL and
	// demo logins). Nil: os.Stdout.
	Banner io.Writer
	// Listener, when set, is served instead of listening on Server.Listen
	// (tests and benchmarks).
	Listener net.Listener
	// Started, when set, is called once the server accepts connections,
	// with its address.
	Started func(addr net.Addr)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Routes, when set, receives the HTTP route table once it is built
	// (tests sweep every route).
	Routes func([]web.RouteInfo)
}

// DevOptions configures dev mode.
type DevOptions struct {
	// LDIF is the dev directory's content (config/dev-directory.ldif, built
	// into the binary); LDIFPath, when set, is read instead.
	LDIF     []byte
	LDIFPath string
	// Rules seed the rule set when admin.rules_file is unset
	// (config/mappings.example.yaml, built into the binary).
	Rules []byte
	// AllowNonLoopback lets dev mode serve on a non-loopback address.
	AllowNonLoopback bool
}

// Run starts wardend and blocks until ctx is cancelled (graceful shutdown)
// or a component fails.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Banner == nil {
		o.Banner = os.Stdout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	var demo []DemoUser
	var st *store.Store
	if o.Dev != nil {
		if err := checkDevListen(o); err != nil {
			return err
		}
		log.Warn("DEV MODE: in-process directory with demo users and known passwords, in-process Redis that forgets everything on exit, generated keys; never use dev mode in production")
		dd, err := startDevDirectory(ctx, o.Dev, log)
		if err != nil {
			return err
		}
		closers = append(closers, func() { _ = dd.close() })
		o.Directory = dd.config
		demo = dd.users
		s, stop, err := store.OpenEmbedded(ctx, log)
		if err != nil {
			return fmt.Errorf("app: dev redis: %w", err)
		}
		closers = append(closers, stop)
		st = s
	} else {
		s, err := store.Open(ctx, o.Redis, log)
		if err != nil {
			return fmt.Errorf("app: redis: %w", err)
		}
		closers = append(closers, func() { _ = s.Close() })
		st = s
	}

	// The key ring: created on first start, followed on every replica.
	o.Keys.SetDefaults()
	keyStore, err := KeyStore(o.Keys, o.DataDir, st)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	ring, err := keys.OpenStore(ctx, keyStore, o.Keys, keys.Options{Now: o.Now})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	cur := ring.Current()
	log.Info("signing key", "kid", cur.ID, "fingerprint_sha256", cur.Fingerprint(), "published", len(ring.Published()), "store", ring.Where())
	go ring.Watch(ctx, log)
	// The ES256 ring of OIDC tokens: made at the first start that signs
	// with it, else followed (published once `wardend keys rotate -alg
	// ES256` made it).
	tokenKeys, err := openTokenKeys(ctx, keyStore, o.Keys, o.OIDC.SigningAlgorithm, ring, o.Now, log)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(reg)
	st.Client().AddHook(m.redisHook())

	dir, err := ldap.New(o.Directory, ldap.WithLogger(log), ldap.WithObserver(m), ldap.WithClock(o.Now))
	if err != nil {
		return fmt.Errorf("app: directory: %w", err)
	}
	closers = append(closers, func() { _ = dir.Close() })
	m.watchPools(reg, dir)
	// One probe of every server at start (Ping: all at once, within
	// directory.timeout): a wrong CA, server name or service password shows
	// here, not at the first sign-in. wardend still starts; /readyz reports
	// the directory as failing until a server answers.
	if err := dir.Ping(ctx); err != nil {
		log.Error("directory unreachable at start-up", "error", err.Error())
	}

	sessions, err := store.NewSessions(st, o.Session, o.Now, nil)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	limiter, err := store.NewLimiter(st, o.LoginLimits, o.Now)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	csrfKey, err := sharedSecret(ctx, st, "csrf", log)
	if err != nil {
		return err
	}

	// Audit events go to the log and to the Redis stream the admin UI reads;
	// when Redis is down they are still in the log.
	maxLen := o.AuditMaxLen
	if maxLen == 0 {
		maxLen = store.DefaultAuditMaxLen
	}
	auditStream := store.NewAuditStream(st, maxLen)
	// Appended in batches by one writer, off the request path; the log
	// gets every event synchronously. Stopped (queue written) before the
	// store closes.
	closers = append(closers, auditStream.Background())
	auditTo := audit.Multi(audit.NewSlog(log, nil), auditStream)

	rules := store.NewRules(st, o.Now)
	var builtinRules []byte
	if o.Dev != nil {
		builtinRules = o.Dev.Rules
	}
	if err := seedRules(ctx, rules, o.Admin, builtinRules, o.Directory.Attributes.Extra, log); err != nil {
		return err
	}
	// The compiled rules the portal, the SAML IdP (and in step 4 the token
	// exchange) evaluate against, kept current on every replica. The admin
	// UI compiles the stored version itself.
	holder := &rolemap.Holder{}
	go watchRulesMetered(ctx, rules, holder, log, m.rules)

	// Time-boxed elevation: eligible roles granted for a window after a
	// request and, where the rules say so, an approver's decision.
	elev, closeElev, err := buildElevation(ctx, o, st, holder, auditTo, log, reg)
	if err != nil {
		return err
	}
	closers = append(closers, closeElev)

	// The SAML IdP: metadata, SP-initiated SSO and, for the portal,
	// IdP-initiated AWS console sign-in.
	nameIDKey, err := sharedSecret(ctx, st, "saml-nameid", log)
	if err != nil {
		return err
	}
	o.SAML.SetDefaults()
	o.MFA.SetDefaults()
	idp, err := samlidp.New(o.SAML, samlidp.Deps{
		AuthnTag:   o.MFA.Tag(),
		MFAMethods: o.MFA.Methods,
		Keys:       ring,
		Rules:      holder,
		Replay:     store.NewSAMLReplay(st),
		Pending:    store.NewSAMLPending(st, nil),
		Audit:      auditTo,
		Logger:     log,
		Clock:      o.Now,
		PublicURL:  o.Server.PublicURL,
		NameIDKey:  nameIDKey,
		Elevations: elev,
	})
	if err != nil {
		return fmt.Errorf("app: saml: %w", err)
	}
	closers = append(closers, idp.Close)
	// The one owner of a user's access: the fresh look-up of every
	// hand-off, privileged act and session re-check, and the revocation
	// of everything a user holds (sessions, token families, device codes).
	acc, err := access.New(access.Deps{Directory: dir, Sessions: sessions, Audit: auditTo, Logger: log, Observer: m})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}

	// The OpenID provider: code flow with PKCE, refresh rotation, device
	// authorization, userinfo, revocation, introspection, end_session.
	o.OIDC.SetDefaults()
	subKey, err := sharedSecret(ctx, st, "oidc-sub", log)
	if err != nil {
		return err
	}
	oidcProvider, err := oidcop.New(o.OIDC, oidcop.Deps{
		Keys:       tokenKeys,
		Store:      st,
		Directory:  dir,
		Users:      acc,
		Rules:      holder,
		Audit:      auditTo,
		Logger:     log,
		Clock:      o.Now,
		PublicURL:  o.Server.PublicURL,
		SubjectKey: subKey,
	})
	if err != nil {
		return fmt.Errorf("app: oidc: %w", err)
	}
	if err := oidcProvider.RegisterMetrics(reg); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	acc.SetGrants(oidcProvider)
	oidcProvider.SetElevations(elev)
	acc.SetElevations(elev)
	deviceUI, err := oidcProvider.DeviceUI(st, o.OIDC.DeviceLimits)
	if err != nil {
		return fmt.Errorf("app: oidc device pages: %w", err)
	}
	deviceUI.SetStepUpMaxAge(o.MFA.StepUpMaxAge)
	// Role-scoped tokens for the CLI (RFC 8693 at /oauth/token): a one-role
	// SAML response for AssumeRoleWithSAML, or a web-identity token.
	exchangeDeps := oidcop.ExchangeDeps{Audit: auditTo, Logger: log, Clock: o.Now}
	if o.SAML.AWS.On() {
		exchangeDeps.SAML = idp
	}
	if _, err := oidcProvider.InstallTokenExchange(oidcop.ExchangeConfig{STSAudience: o.OIDC.STSAudience,
		AuthnTag: o.MFA.Tag(), MFAMethods: o.MFA.Methods}, exchangeDeps); err != nil {
		return fmt.Errorf("app: token exchange: %w", err)
	}

	adm, err := admin.New(o.Admin, admin.Deps{
		Directory: dir,
		Rules:     rules,
		Sessions:  sessions,
		Access:    acc,
		Audit:     auditTo,
		AuditLog:  auditStream,
		Logger:    log,
		Clock:     o.Now,

		FetchedAttributes: append([]string{}, o.Directory.Attributes.Extra...),
	})
	if err != nil {
		return fmt.Errorf("app: admin: %w", err)
	}
	adm.SetAWSSetup(awsfed.SetupOptions{
		MetadataURL:   strings.TrimSuffix(o.Server.PublicURL, "/") + "/saml/metadata",
		SAML:          o.SAML.AWS.On(),
		SAMLPartition: o.SAML.AWS.Partition,
		SAMLRegion:    o.SAML.AWS.Region,
		Issuer:        oidcProvider.Issuer(),
		STSAudience:   o.OIDC.STSAudience,
		MFASessionTag: o.MFA.SessionTag,
		MFAMethods:    o.MFA.Methods,

		DefaultSessionSeconds: o.SAML.AWS.DefaultSessionSeconds,
	})

	// Second factors: TOTP, WebAuthn, recovery codes, who must use them,
	// and their pages (the step after the password, step-up, set-up,
	// /account/security, the admin view of a user's factors).
	mfaPolicy, mfaUI, err := buildMFA(ctx, o, st, dir, auditTo, log)
	if err != nil {
		return err
	}

	elevUI, err := elevationUI(elev, oidcProvider, acc, identity.NewGroupMatcher(o.Admin.Groups), log, o.Now)
	if err != nil {
		return fmt.Errorf("app: elevation pages: %w", err)
	}

	// The portal: the home page's AWS roles and /aws/console (without the
	// AWS preset, the home page is the server's own account page).
	mounts := []web.Mount{adm, idp, oidcProvider, deviceUI, mfaUI, elevUI}
	if o.SAML.AWS.On() {
		backend := portalBackend{rules: holder, idp: idp, partition: o.SAML.AWS.Partition, elevations: elev}
		var keys portal.KeyMinter
		if o.AccessKeys.On() {
			svc, err := accesskeys.New(o.AccessKeys, accesskeys.Deps{Signer: accesskeys.SignerFunc(backend.stsResponse), Audit: auditTo,
				DefaultSessionSeconds: o.SAML.AWS.DefaultSessionSeconds})
			if err != nil {
				return fmt.Errorf("app: %w", err)
			}
			keys = svc
		}
		portalUI, err := portal.New(portal.Deps{
			Backend:   backend,
			PublicURL: o.Server.PublicURL,
			Audit:     auditTo,
			Logger:    log,
			Keys:      keys,
		})
		if err != nil {
			return fmt.Errorf("app: portal: %w", err)
		}
		mounts = append(mounts, portalUI)
	}

	srv, err := web.New(o.Server, web.Deps{
		Directory: dir,
		Sessions:  sessions,
		Limiter:   limiter,
		CSRFKey:   csrfKey,
		Health: []web.HealthCheck{
			{Name: "redis", Check: st.Ping},
			{Name: "directory", Check: dir.Ping},
		},
		Logger:   log,
		Registry: reg,
		Gatherer: reg,
		Audit:    auditTo,
		Mounts:   mounts,

		SecondFactor: mfaPolicy,
		Clock:        appClock{now: o.Now},

		Users:           acc,
		RecheckInterval: o.Directory.RecheckInterval,
	})
	if err != nil {
		return fmt.Errorf("app: web: %w", err)
	}
	if o.Routes != nil {
		o.Routes(srv.Routes())
	}

	ln := o.Listener
	if ln == nil {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", o.Server.Listen)
		if err != nil {
			return fmt.Errorf("app: listen on %s: %w", o.Server.Listen, err)
		}
	}
	log.Info("wardend ready", "addr", ln.Addr().String(), "public_url", o.Server.PublicURL,
		"dev", o.Dev != nil, "startup_ms", time.Since(start).Milliseconds())
	if o.Dev != nil {
		printDevBanner(o.Banner, o.Server.PublicURL, demo, o.MFA)
	}
	if o.Started != nil {
		o.Started(ln.Addr())
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// sharedSecret fetches a secret every replica shares; a Redis that does not
// answer at start is retried briefly so that wardend and Redis can start
// together (docker compose, Kubernetes).
func sharedSecret(ctx context.Context, st *store.Store, name string, log *slog.Logger) ([]byte, error) {
	var last error
	for i := 0; i < 5; i++ {
		key, err := st.SharedSecret(ctx, name, 32)
		if err == nil {
			return key, nil
		}
		last = err
		log.Warn("redis not ready, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(i+1) * 500 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("app: %s secret: %w", name, last)
}

func checkDevListen(o Options) error {
	if o.Dev.AllowNonLoopback || o.Listener != nil {
		return nil
	}
	host, _, err := net.SplitHostPort(o.Server.Listen)
	if err != nil {
		return fmt.Errorf("app: listen address %q: %w", o.Server.Listen, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("app: dev mode refuses to listen on %q: its demo users have known passwords; use a loopback address such as 127.0.0.1:8080, or set dev.allow_non_loopback (flag -dev-allow-remote) if you really mean it", o.Server.Listen)
	}
	return nil
}

// appClock is the web layer's clock on Options.Now (nil: the system
// clock), so that sessions, second factors and the pages agree on the time.
type appClock struct{ now func() time.Time }

func (c appClock) Now() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

func (appClock) Sleep(ctx context.Context, d time.Duration) { web.SystemClock{}.Sleep(ctx, d) }

// openTokenKeys opens the ES256 ring beside rsa's (made when alg is ES256,
// else only loaded: empty until made), watches it, and signs OIDC tokens
// with the ring of alg.
func openTokenKeys(ctx context.Context, st keys.Store, cfg keys.Config, alg string, rsa *keys.Ring, now func() time.Time, log *slog.Logger) (*keys.TokenKeys, error) {
	if alg == "" {
		alg = keys.AlgRS256
	}
	ecStore, err := keys.ForAlg(st, keys.AlgES256)
	if err != nil {
		return nil, err
	}
	open := keys.LoadStore
	if alg == keys.AlgES256 {
		open = keys.OpenStore
	}
	ec, err := open(ctx, ecStore, cfg, keys.Options{Now: now})
	if err != nil {
		return nil, err
	}
	go ec.Watch(ctx, log)
	tk, err := keys.NewTokenKeys(alg, rsa, ec)
	if err != nil {
		return nil, err
	}
	cur := tk.Current()
	log.Info("token signing key", "alg", cur.Alg, "kid", cur.ID, "published", len(tk.Published()), "es256_store", ec.Where())
	return tk, nil
}

// KeyStore is where the signing keys are kept by cfg (defaulted): keys.dir
// (default <dataDir>/keys), or Redis under the store's key prefix, sealed
// with the key of keys.encryption_key_file; a ring already in the directory
// is copied into Redis on first start. wardend keys uses it too.
func KeyStore(cfg keys.Config, dataDir string, st *store.Store) (keys.Store, error) {
	dir := cfg.Dir
	if dir == "" {
		dir = filepath.Join(dataDir, "keys")
	}
	if cfg.Store != keys.StoreRedis {
		return keys.Dir(dir), nil
	}
	kek, err := keys.LoadAESKey(cfg.EncryptionKeyFile, false, nil)
	if err != nil {
		return nil, fmt.Errorf("keys.encryption_key_file: %w", err)
	}
	var prev [][]byte
	for i, p := range cfg.PreviousEncryptionKeyFiles {
		k, err := keys.LoadAESKey(p, false, nil)
		if err != nil {
			return nil, fmt.Errorf("keys.previous_encryption_key_files[%d]: %w", i, err)
		}
		prev = append(prev, k)
	}
	return keys.NewRedisStore(st.Client(), st.Key("keys:ring"), kek, prev, keys.Dir(dir))
}
