package oidcop

import (
	"context"
	"errors"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// RevokeUser ends every token family of u at every client (refresh tokens
// and the access tokens minted from them) and takes back the device codes
// approved for u but not yet redeemed (the CLI's next poll gets
// access_denied). internal/access calls it as part of revoking a user's
// access; it records no audit event of its own.
func (p *Provider) RevokeUser(ctx context.Context, u identity.User) (grants, devices int, err error) {
	return revokeUser(ctx, p.st, p.subKey, u)
}

// GrantRevoker is RevokeUser without a running provider, for operator
// commands (wardend users revoke): the token store and the subject key
// (store.SharedSecret(ctx, "oidc-sub", 32)) are all it needs.
type GrantRevoker struct {
	st     *store.OIDC
	subKey []byte
}

// NewGrantRevoker returns a GrantRevoker on st.
func NewGrantRevoker(st *store.Store, subjectKey []byte) *GrantRevoker {
	return &GrantRevoker{st: store.NewOIDC(st), subKey: append([]byte(nil), subjectKey...)}
}

// RevokeUser is Provider.RevokeUser.
func (r *GrantRevoker) RevokeUser(ctx context.Context, u identity.User) (grants, devices int, err error) {
	return revokeUser(ctx, r.st, r.subKey, u)
}

func revokeUser(ctx context.Context, st *store.OIDC, key []byte, u identity.User) (int, int, error) {
	if u.ID == "" {
		return 0, 0, errors.New("oidcop: revoke user: no ID")
	}
	return st.RevokeSubject(ctx, subjectOf(key, u))
}
