package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/portal"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
)

// portalBackend adapts the rules Holder and the SAML IdP to portal.Backend,
// so that the portal package does not import samlidp.
type portalBackend struct {
	rules      *rolemap.Holder
	idp        *samlidp.IdP
	partition  string // the AWS partition console sign-in goes to
	elevations *elevation.Service
}

var (
	_ portal.Backend            = portalBackend{}
	_ portal.ConsolePartitioner = portalBackend{}
)

// Grants evaluates the current rules for the user: the session's groups
// and attributes, the rules as they are now (watchRules keeps the Holder at
// the stored version on every replica), plus the eligible roles an active
// elevation grants now (their SessionSeconds capped at the time left).
func (p portalBackend) Grants(ctx context.Context, u identity.User) (rolemap.Result, error) {
	res := p.rules.Load().Evaluate(rolemap.InputFromUser(u))
	if p.elevations != nil {
		if err := p.elevations.Apply(ctx, u, &res); err != nil {
			return rolemap.Result{}, err
		}
	}
	return res, nil
}

// Console makes the one-role IdP-initiated response and translates the
// IdP's refusals into the portal's.
func (p portalBackend) Console(ctx context.Context, u identity.User, authn identity.Authn, g rolemap.Grant, relayState string) (portal.ConsolePost, error) {
	post, err := p.idp.AWSConsoleAuthn(ctx, u, authn, g, relayState)
	if err != nil {
		return portal.ConsolePost{}, portalError(err)
	}
	return portal.ConsolePost{URL: post.URL, SAMLResponse: post.SAMLResponse, RelayState: post.RelayState}, nil
}

// stsResponse is the Access keys panel's signer (accesskeys.Signer): the
// one-role response for STS that the CLI's token exchange gets, with the
// IdP's refusals translated into the portal's.
func (p portalBackend) stsResponse(ctx context.Context, u identity.User, authn identity.Authn, g rolemap.Grant, res rolemap.Result) (string, error) {
	a, err := p.idp.STSResponseFor(ctx, "access-keys", u, authn, g, res)
	if err != nil {
		return "", portalError(err)
	}
	return a.Response, nil
}

// portalError wraps the IdP's refusals in the portal's.
func portalError(err error) error {
	switch {
	case errors.Is(err, samlidp.ErrBadRelayState):
		return fmt.Errorf("%w: %w", portal.ErrBadDestination, err)
	case errors.Is(err, samlidp.ErrTooLarge):
		return fmt.Errorf("%w: %w", portal.ErrResponseTooLarge, err)
	case errors.Is(err, samlidp.ErrInsufficientAuthn):
		return fmt.Errorf("%w: %w", portal.ErrNeedsFactor, err)
	case errors.Is(err, samlidp.ErrSessionName):
		return fmt.Errorf("%w: %w", portal.ErrUnusableUser, err)
	}
	return err
}

// ConsolePartition implements portal.ConsolePartitioner.
func (p portalBackend) ConsolePartition() string { return p.partition }
