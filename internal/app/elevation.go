package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// elevationSweep is how often each replica looks for undecided requests
// past their deadline (each expiry is recorded once among replicas).
const elevationSweep = 15 * time.Second

// buildElevation makes the elevation service: requests and decisions in
// Redis, webhooks off the request path, and the sweeper that expires
// undecided requests (stopped with ctx). The returned closer drains the
// webhook queue.
func buildElevation(ctx context.Context, o Options, st *store.Store, holder *rolemap.Holder, auditTo audit.Logger,
	log *slog.Logger, reg prometheus.Registerer) (*elevation.Service, func(), error) {
	cfg := o.Elevation
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("app: elevation: %w", err)
	}
	var notifier *elevation.Notifier
	closer := func() {}
	if len(cfg.Webhooks) > 0 {
		var err error
		notifier, err = elevation.NewNotifier(cfg.Webhooks, elevation.NotifierOptions{Audit: auditTo, Logger: log, Metrics: reg, Now: o.Now})
		if err != nil {
			return nil, nil, fmt.Errorf("app: elevation: %w", err)
		}
		closer = func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			notifier.Close(cctx)
		}
	}
	limiter, err := store.NewNamedLimiter(st, "elev", cfg.Limits, o.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("app: elevation: %w", err)
	}
	o.MFA.SetDefaults()
	o.SAML.SetDefaults()
	svc, err := elevation.New(elevation.Deps{
		Config:                cfg,
		Store:                 store.NewElevations(st, o.Now),
		Rules:                 holder,
		Notifier:              notifier,
		Limiter:               limiter,
		Audit:                 auditTo,
		Logger:                log,
		Metrics:               reg,
		Now:                   o.Now,
		StepUpMaxAge:          o.MFA.StepUpMaxAge,
		DefaultSessionSeconds: o.SAML.AWS.DefaultSessionSeconds,
		PublicURL:             o.Server.PublicURL,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	go svc.Run(ctx, elevationSweep)
	return svc, closer, nil
}

// elevationUI makes the elevation pages and JSON API: the CLI's Bearer
// tokens are resolved by the OpenID provider (with how the token's
// sign-in authenticated, its second factor's time included), and every
// user is looked up afresh in the directory.
func elevationUI(svc *elevation.Service, op *oidcop.Provider, acc *access.Access, admins identity.GroupMatcher,
	log *slog.Logger, now func() time.Time) (*elevation.UI, error) {
	return elevation.NewUI(elevation.UIDeps{
		Service: svc,
		Token: func(ctx context.Context, token string) (identity.User, identity.Authn, error) {
			ai, err := op.VerifyAccessToken(ctx, token)
			if err != nil {
				return identity.User{}, identity.Authn{}, err
			}
			authn := identity.AuthnFromAMR(ai.AMR, ai.AuthTime)
			if authn.MFA() {
				authn.FactorTime = ai.FactorTime
			}
			return identity.User{ID: ai.UserID, Username: ai.Username}, authn, nil
		},
		Users: func(ctx context.Context, u identity.User, via string) (identity.User, error) {
			return acc.Check(ctx, u, access.Request{Via: via, RequestID: web.RequestID(ctx)})
		},
		IsAdmin: admins.Match,
		Logger:  log,
		Clock:   now,
	})
}
