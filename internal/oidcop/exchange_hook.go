package oidcop

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
)

// InstallTokenExchange builds the Exchanger on p and makes it p's handler
// of the token-exchange grant (SetTokenExchange): the subject token is
// verified by p.VerifyAccessToken, the sub is p.Subject, the web-identity
// token is signed by p.SignJWT, and the issuer is p.Issuer() unless cfg
// says otherwise. The client is authenticated first by
// p.AuthenticateClient (and must be allowed the grant); the subject token
// must have been issued to that client. deps.Directory and deps.Rules
// default to p's; deps.SAML is the SAML IdP (nil, or an IdP without the
// AWS preset: the saml2 type is refused with invalid_request).
//
// Wiring (internal/app):
//
//	_, err := oidcProvider.InstallTokenExchange(
//		oidcop.ExchangeConfig{STSAudience: cfg.OIDC.STSAudience,
//			AuthnTag: cfg.MFA.Tag(), MFAMethods: cfg.MFA.Methods},
//		oidcop.ExchangeDeps{SAML: idp, Audit: auditTo, Logger: log, Clock: o.Now})
func (p *Provider) InstallTokenExchange(cfg ExchangeConfig, deps ExchangeDeps) (*Exchanger, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = p.Issuer()
	}
	deps.Access = AccessVerifierFunc(func(ctx context.Context, token string) (ExchangeSubject, error) {
		if sub, ok, err := p.verifyWorkloadToken(token); ok {
			return sub, err
		}
		ai, err := p.VerifyAccessToken(ctx, token)
		switch {
		case errors.Is(err, ErrInvalidToken):
			return ExchangeSubject{}, err
		case err != nil && !errors.Is(err, store.ErrUnavailable):
			return ExchangeSubject{}, fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		case err != nil:
			return ExchangeSubject{}, err
		}
		return ExchangeSubject{Username: ai.Username, UserID: ai.UserID, ClientID: ai.ClientID, Scopes: ai.Scopes,
			Expiry: ai.Expiry, TokenID: ai.TokenID, AMR: ai.AMR, AuthTime: ai.AuthTime}, nil
	})
	deps.Subjects, deps.Signer = p, p
	deps.workloadGate, deps.workloadCount = p.wl.allow, p.wl.count
	if deps.Users == nil && p.users != nil {
		deps.Users = p.users
	}

	if deps.Rules == nil {
		deps.Rules = p.rules
	}
	if deps.Elevations == nil && p.elevations != nil {
		deps.Elevations = p.elevations
	}
	if idp, ok := deps.SAML.(*samlidp.IdP); ok && idp == nil {
		deps.SAML = nil // a nil *IdP in the interface would be called
	}
	x, err := NewExchanger(cfg, deps)
	if err != nil {
		return nil, err
	}
	p.SetTokenExchange(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.PostForm.Get("subject_token"), workloadTokenPrefix) {
			// A workload's access token stands for the workload, which
			// authenticated to get it; a client_id, when sent, must be
			// the token's (issueWorkload).
			x.serveClient(c, "")
			return
		}
		clientID, ok := p.AuthenticateClient(c, GrantTypeTokenExchange)
		if !ok {
			return
		}
		x.serveClient(c, clientID)
	})
	return x, nil
}
