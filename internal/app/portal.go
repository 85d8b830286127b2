package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/web"
)

// portal adapts the rules Holder and the SAML IdP to web.Portal, so that the
// web package does not import samlidp.
type portal struct {
	rules      *rolemap.Holder
	idp        *samlidp.IdP
	partition  string // the AWS partition console sign-in goes to
	elevations *elevation.Service
}

var (
	_ web.Portal             = portal{}
	_ web.ConsolePartitioner = portal{}
)

// Grants evaluates the current rules for the user: the session's groups
// and attributes, the rules as they are now (watchRules keeps the Holder at
// the stored version on every replica), plus the eligible roles an active
// elevation grants now (their SessionSeconds capped at the time left).
func (p portal) Grants(ctx context.Context, u identity.User) (rolemap.Result, error) {
	res := p.rules.Load().Evaluate(rolemap.InputFromUser(u))
	if p.elevations != nil {
		if err := p.elevations.Apply(ctx, u, &res); err != nil {
			return rolemap.Result{}, err
		}
	}
	return res, nil
}

// Console makes the one-role IdP-initiated response and translates the
// IdP's refusals into the web package's.
func (p portal) Console(ctx context.Context, u identity.User, authn identity.Authn, g rolemap.Grant, relayState string) (web.ConsolePost, error) {
	post, err := p.idp.AWSConsoleAuthn(ctx, u, authn, g, relayState)
	switch {
	case err == nil:
		return web.ConsolePost{URL: post.URL, SAMLResponse: post.SAMLResponse, RelayState: post.RelayState}, nil
	case errors.Is(err, samlidp.ErrBadRelayState):
		return web.ConsolePost{}, fmt.Errorf("%w: %w", web.ErrBadDestination, err)
	case errors.Is(err, samlidp.ErrTooLarge):
		return web.ConsolePost{}, fmt.Errorf("%w: %w", web.ErrResponseTooLarge, err)
	case errors.Is(err, samlidp.ErrInsufficientAuthn):
		return web.ConsolePost{}, fmt.Errorf("%w: %w", web.ErrNeedsFactor, err)
	case errors.Is(err, samlidp.ErrSessionName):
		return web.ConsolePost{}, fmt.Errorf("%w: %w", web.ErrUnusableUser, err)
	}
	return web.ConsolePost{}, err
}

// ConsolePartition implements web.ConsolePartitioner.
func (p portal) ConsolePartition() string { return p.partition }
