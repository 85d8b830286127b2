// Package directory defines what Warden needs of a user directory. The LDAP
// implementation (OpenLDAP and Active Directory) lives in directory/ldap, the
// dev-mode in-process directory in directory/embedded, and the behaviour suite
// that every implementation passes in directory/directorytest.
package directory

import (
	"context"

	"github.com/wardenidp/warden/internal/identity"
)

// Directory checks passwords and looks users up.
//
// Authenticate returns the user on success. A rejection is one of the
// identity sentinels (ErrInvalidCredentials for a wrong password, an unknown
// user and an empty password alike; ErrAccountLocked, ErrPasswordExpired, ...).
// Any other failure wraps identity.ErrDirectoryUnavailable.
type Directory interface {
	Authenticate(ctx context.Context, username, password string) (identity.User, error)
	// Lookup finds a user without a password (for "who gets what" and for
	// re-evaluating grants at every token exchange): identity.ErrUserNotFound
	// when there is none, and the account-state sentinel (ErrAccountLocked,
	// ErrAccountDisabled, ErrAccountExpired, ...) when the entry alone shows
	// that a bind would be refused, so that a user locked or disabled after
	// signing in loses access at the next lookup.
	Lookup(ctx context.Context, username string) (identity.User, error)
	// LookupID finds a user by the stable ID (identity.User.ID: entryUUID,
	// objectGUID) that an earlier sign-in returned, so that a user renamed
	// since is still found, under the new name. Its answers are Lookup's:
	// identity.ErrUserNotFound when no user has that ID, the account-state
	// sentinel when the entry shows that a bind would be refused.
	LookupID(ctx context.Context, id string) (identity.User, error)
	// Ping succeeds when at least one server answers a service-bound query.
	Ping(ctx context.Context) error
	Close() error
}
