package identity

import (
	"errors"
	"fmt"
)

// Outcomes of a password change (a directory's ChangePassword) besides the
// rejections above: ErrInvalidCredentials for a wrong current password or
// an unknown user, ErrDirectoryUnavailable for an outage.
var (
	// ErrPasswordPolicy means the directory refused the new password by its
	// password policy (too short, used before, too soon after the last
	// change, not complex enough). The current password was right. A
	// *PasswordPolicyError carries the reason when the directory named one.
	ErrPasswordPolicy = errors.New("new password refused by the password policy")
	// ErrPasswordChangeUnsupported means the directory does not let this
	// user change their own password through Warden: the server does not
	// implement the operation or refuses it for the account (an OpenLDAP
	// password that has expired with no grace logins left, an AD account
	// that may not change its password), or Warden's connection to Active
	// Directory is not encrypted. The user has to change it elsewhere.
	ErrPasswordChangeUnsupported = errors.New("password change not supported")
)

// PasswordPolicyReason is why a directory refused a new password, as far
// as it said. Active Directory never says (its sub-code 0000052D covers
// every rule); OpenLDAP's password policy control does
// (draft-behera-ldap-password-policy-10, section 6.2).
type PasswordPolicyReason int

// Reasons, from the ppolicy control's error values.
const (
	PolicyUnspecified PasswordPolicyReason = iota // the directory gave no reason
	PolicyTooShort                                // passwordTooShort (6)
	PolicyInHistory                               // passwordInHistory (8): one of the last passwords
	PolicyTooYoung                                // passwordTooYoung (7): changed too recently
	PolicyQuality                                 // insufficientPasswordQuality (5)
)

func (r PasswordPolicyReason) String() string {
	switch r {
	case PolicyTooShort:
		return "too short"
	case PolicyInHistory:
		return "in history"
	case PolicyTooYoung:
		return "too young"
	case PolicyQuality:
		return "insufficient quality"
	}
	return "unspecified"
}

// PasswordPolicyError is ErrPasswordPolicy with the reason. Detail is the
// server's own diagnostic text, for logs only: it is not meant for users
// (it may name internal codes).
type PasswordPolicyError struct {
	Reason PasswordPolicyReason
	Detail string
}

func (e *PasswordPolicyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s (%s)", ErrPasswordPolicy, e.Reason)
	}
	return fmt.Sprintf("%s (%s): %s", ErrPasswordPolicy, e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrPasswordPolicy) true.
func (e *PasswordPolicyError) Unwrap() error { return ErrPasswordPolicy }
