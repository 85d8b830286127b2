package oidcop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// ErrInvalidToken: an access token that is malformed, not Warden's,
// expired or revoked. A Redis outage wraps store.ErrUnavailable instead.
var ErrInvalidToken = errors.New("invalid access token")

// AccessInfo is what a live access token stands for.
type AccessInfo struct {
	Subject  string // the opaque sub
	Username string // the directory login name (at sign-in or last refresh)
	UserID   string // the directory's stable ID
	ClientID string
	Scopes   []string
	Expiry   time.Time
	// TokenID identifies the token ("<grant>.<id>"), for audit.
	TokenID string
	// AMR and AuthTime are how and when the user authenticated for the
	// token's grant (RFC 8176 amr; identity.AuthnFromAMR rebuilds the
	// method).
	AMR      []string
	AuthTime time.Time
	// FactorTime is when that sign-in gave its second factor (zero: none).
	FactorTime time.Time
}

// VerifyAccessToken resolves an access token issued by this provider (one
// Redis round trip): ErrInvalidToken when it is malformed, foreign,
// expired or revoked (its own revocation, or its family's after code or
// refresh-token reuse, revocation or end_session).
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (AccessInfo, error) {
	if token == "" || len(token) > 1024 {
		return AccessInfo{}, fmt.Errorf("oidcop: %w", ErrInvalidToken)
	}
	plain, err := p.op.Crypto().Decrypt(token)
	if err != nil {
		return AccessInfo{}, fmt.Errorf("oidcop: %w", ErrInvalidToken)
	}
	tokenID, subject, ok := strings.Cut(plain, ":")
	if !ok {
		return AccessInfo{}, fmt.Errorf("oidcop: %w", ErrInvalidToken)
	}
	g, u, exp, err := p.accessToken(ctx, tokenID, subject)
	if err != nil {
		if sc := scratchOf(ctx); sc != nil && sc.unavailable != nil {
			return AccessInfo{}, fmt.Errorf("oidcop: %w", sc.unavailable)
		}
		if errors.Is(err, store.ErrUnavailable) {
			return AccessInfo{}, fmt.Errorf("oidcop: %w", err)
		}
		return AccessInfo{}, fmt.Errorf("oidcop: %w", ErrInvalidToken)
	}
	return AccessInfo{Subject: g.Subject, Username: u.Username, UserID: u.ID, ClientID: g.ClientID,
		Scopes: g.Scopes, Expiry: exp, TokenID: tokenID, AMR: g.AMR, AuthTime: g.AuthTime, FactorTime: g.FactorTime}, nil
}
