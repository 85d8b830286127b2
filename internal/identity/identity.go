// Package identity holds the user as Warden sees it after a directory lookup,
// and the sentinel errors every directory implementation returns.
//
// Callers branch with errors.Is; implementations wrap these sentinels with %w
// and add private detail (server, result code) that is logged, never shown.
package identity

import "errors"

// User is a person found in the directory.
type User struct {
	// ID is stable for the life of the directory entry and survives renames:
	// entryUUID on OpenLDAP, objectGUID on Active Directory (as a canonical
	// UUID string). It is never the username.
	ID string `json:"id"`
	// Username is the login name as the directory spells it (canonical form),
	// which may differ in case from what the user typed.
	Username    string `json:"username"`
	DN          string `json:"dn"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
	// Groups holds every group the user is in, nested ones included, sorted
	// by DN, without duplicates.
	Groups []Group `json:"groups,omitempty"`
	// Attributes holds the extra attributes the directory was asked for
	// (attribute name, lowercased, to values).
	Attributes map[string][]string `json:"attributes,omitempty"`
}

// Group is one directory group of a user.
type Group struct {
	DN string `json:"dn"`
	// Name is what grant rules with a bare name, pattern rules and admin
	// groups match: the group's domain-unique sAMAccountName in Active
	// Directory, the CN (first RDN value) of DN elsewhere; empty when the
	// directory gave no name (then only rules naming DN match).
	Name string `json:"name"`
	// Direct is true when the user is a member of this group itself, false
	// when membership comes only through another group (nesting). When the
	// directory cannot tell (memberOf computed transitively), it is true.
	Direct bool `json:"direct"`
}

// GroupNames returns the Name of every group, in the order of u.Groups.
func (u User) GroupNames() []string {
	out := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		out[i] = g.Name
	}
	return out
}

// Rejections: the directory answered, and the answer is no. These are results,
// not failures; an anonymous caller must not be able to tell ErrInvalidCredentials
// for an unknown user from one for a wrong password.
var (
	ErrInvalidCredentials = errors.New("invalid credentials")
	ErrAccountLocked      = errors.New("account locked")
	ErrPasswordExpired    = errors.New("password expired")
	ErrMustChangePassword = errors.New("password must be changed")
	ErrAccountDisabled    = errors.New("account disabled")
	ErrAccountExpired     = errors.New("account expired")
	// ErrUserNotFound is returned by lookups (never by Authenticate, which
	// answers ErrInvalidCredentials for unknown users).
	ErrUserNotFound = errors.New("user not found")
)

// ErrDirectoryUnavailable means no directory server could answer (down,
// unreachable, timed out, TLS failure, service bind refused, unexpected result).
// It is never a rejection of the user's password.
var ErrDirectoryUnavailable = errors.New("directory unavailable")

// IsRejection reports whether err is a definitive "no" from the directory
// about the user's credentials or account state.
func IsRejection(err error) bool {
	for _, e := range []error{ErrInvalidCredentials, ErrAccountLocked, ErrPasswordExpired,
		ErrMustChangePassword, ErrAccountDisabled, ErrAccountExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// IsGone reports whether err says that the user can no longer be signed
// in: the directory does not know them (ErrUserNotFound) or refuses them
// (IsRejection). Every access of such a user ends.
func IsGone(err error) bool {
	return errors.Is(err, ErrUserNotFound) || IsRejection(err)
}
