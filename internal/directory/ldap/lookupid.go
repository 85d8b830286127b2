package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/wardenidp/warden/internal/identity"
)

// LookupID implements directory.Directory: it finds the user whose stable ID
// (identity.User.ID, Attributes.ID) is id, so that a user renamed since
// (sAMAccountName or uid changed, same entry) is still found, under the new
// name. The entry must still match user_filter (with any login name). The
// answers are Lookup's: identity.ErrUserNotFound when there is no such
// user (or id cannot be an ID), the account-state sentinel when the entry
// shows that a bind would be refused.
//
// objectGUID is matched as its 16 raw bytes, each escaped (\xx); entryUUID
// in its canonical lowercase form; any other ID attribute as the escaped
// string.
func (d *Directory) LookupID(ctx context.Context, id string) (identity.User, error) {
	notFound := fmt.Errorf("ldap: lookup id: %w", identity.ErrUserNotFound)
	clause, ok := d.idFilter(id)
	if !ok {
		return identity.User{}, notFound
	}
	entry, err := d.searchUser(ctx, "(&"+clause+d.anyUser+")")
	if errors.Is(err, errNoSuchUser) {
		return identity.User{}, notFound
	}
	if err != nil {
		return identity.User{}, err
	}
	if err := accountState(entry, d.cfg.Type, d.now()); err != nil {
		return identity.User{}, accountError(err)
	}
	return d.buildUser(ctx, entry, "")
}

// idFilter returns the filter clause that matches id, or false when id
// cannot be an ID of this directory.
func (d *Directory) idFilter(id string) (string, bool) {
	if usernameProblem(id) != "" {
		return "", false
	}
	attr := d.cfg.Attributes.ID
	switch {
	case d.idIsGUID:
		b, err := guidBytes(id)
		if err != nil {
			return "", false
		}
		return "(" + attr + "=" + escapeBinary(b) + ")", true
	case strings.EqualFold(attr, "entryUUID"):
		u, err := uuid.Parse(id)
		if err != nil {
			return "", false
		}
		return "(" + attr + "=" + u.String() + ")", true
	}
	// The ID is escaped here, once, where the filter is built.
	return "(" + attr + "=" + goldap.EscapeFilter(id) + ")", true
}

// anyUserFilter is user_filter matching any login name ({username} = *), so
// that LookupID finds only entries that could sign in; "(objectClass=*)"
// when the template does not make a valid filter that way.
func (d *Directory) anyUserFilter() string {
	f := expandTemplate(d.cfg.UserFilter, "*", "")
	if _, err := goldap.CompileFilter(f); err != nil {
		return "(objectClass=*)"
	}
	return f
}
