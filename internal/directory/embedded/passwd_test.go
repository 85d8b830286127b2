package embedded_test

import (
	"errors"
	"testing"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
)

// TestEmbeddedChangePassword: the embedded directory serves no writes (its
// LDAP library, gldap, does not pass the Password Modify request's value
// to handlers), so a change is refused as unsupported, after the bind has
// checked the old password, and never reads as a wrong password or an
// outage. The sign-in page then sends the user elsewhere.
func TestEmbeddedChangePassword(t *testing.T) {
	srv := start(t)
	d, err := ldap.New(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx := t.Context()
	if err := d.ChangePassword(ctx, "mustchange", "warden-dev", "New-dev-password-1"); !errors.Is(err, identity.ErrPasswordChangeUnsupported) {
		t.Fatalf("got %v, want ErrPasswordChangeUnsupported", err)
	}
	if err := d.ChangePassword(ctx, "mustchange", "wrong", "New-dev-password-1"); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("wrong old password: %v, want invalid credentials", err)
	}
	if _, err := d.Authenticate(ctx, "mustchange", "warden-dev"); !errors.Is(err, identity.ErrMustChangePassword) {
		t.Fatalf("Authenticate after the refused change: %v", err)
	}
}
