package identity

import (
	"slices"
	"time"
)

// Methods of authentication, as named in the config (mfa.methods), the
// mapping rules (mfa_methods), the audit log and the WardenAuth session tag.
const (
	MethodPassword = "password" // the directory password alone
	MethodTOTP     = "totp"     // password, then a TOTP code (RFC 6238)
	MethodWebAuthn = "webauthn" // password, then a WebAuthn assertion (passkey or security key)
	MethodRecovery = "recovery" // password, then a single-use recovery code
)

// SecondFactors are the methods that are a second factor, strongest first.
var SecondFactors = []string{MethodWebAuthn, MethodTOTP, MethodRecovery}

// IsSecondFactor reports whether m names a second factor.
func IsSecondFactor(m string) bool { return slices.Contains(SecondFactors, m) }

// Authentication context class references: SAML AuthnContextClassRef and
// the OIDC acr claim.
const (
	// ACRPassword: SAML 2.0's PasswordProtectedTransport (a password over TLS).
	ACRPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	// ACRMFA: the REFEDS multi-factor authentication profile.
	ACRMFA = "https://refeds.org/profile/mfa"
)

// Authn is how and when a user proved who they are in one sign-in. It
// travels with the browser session and with every OIDC grant made from it.
type Authn struct {
	// Method is MethodPassword, or the second factor used last.
	Method string `json:"method"`
	// Time is when the password was checked (OIDC auth_time).
	Time time.Time `json:"time"`
	// FactorTime is when the second factor was given; zero for a password
	// alone.
	FactorTime time.Time `json:"factor_time,omitzero"`
	// UserVerified: the WebAuthn authenticator verified the user (PIN or
	// biometrics), so the key alone is two factors.
	UserVerified bool `json:"uv,omitempty"`
}

// PasswordOnly returns the Authn of a password checked at t.
func PasswordOnly(t time.Time) Authn { return Authn{Method: MethodPassword, Time: t.UTC()} }

// MFA reports whether a second factor was given.
func (a Authn) MFA() bool { return IsSecondFactor(a.Method) }

// Satisfies reports whether this sign-in is strong enough for a role that
// requires MFA (requireMFA) and, when methods is not empty, one of those
// methods. allowed is the deployment's list of methods that count
// (mfa.methods); nil allows every second factor.
func (a Authn) Satisfies(requireMFA bool, methods, allowed []string) bool {
	if !requireMFA && len(methods) == 0 {
		return true
	}
	if !a.MFA() {
		return false
	}
	if allowed != nil && !slices.Contains(allowed, a.Method) {
		return false
	}
	return len(methods) == 0 || slices.Contains(methods, a.Method)
}

// AMR returns the RFC 8176 authentication method references.
func (a Authn) AMR() []string {
	switch a.Method {
	case MethodTOTP:
		return []string{"pwd", "otp", "mfa"}
	case MethodWebAuthn:
		if a.UserVerified {
			return []string{"pwd", "hwk", "user", "mfa"}
		}
		return []string{"pwd", "hwk", "mfa"}
	case MethodRecovery:
		return []string{"pwd", "mfa"}
	default:
		return []string{"pwd"}
	}
}

// ACR returns the authentication context class reference.
func (a Authn) ACR() string {
	if a.MFA() {
		return ACRMFA
	}
	return ACRPassword
}

// AuthnFromAMR rebuilds an Authn from stored amr values (OIDC grants keep
// amr and auth_time only): the method is recovered from the values that
// AMR writes.
func AuthnFromAMR(amr []string, t time.Time) Authn {
	a := Authn{Method: MethodPassword, Time: t.UTC()}
	switch {
	case slices.Contains(amr, "hwk"):
		a.Method, a.UserVerified = MethodWebAuthn, slices.Contains(amr, "user")
	case slices.Contains(amr, "otp"):
		a.Method = MethodTOTP
	case slices.Contains(amr, "mfa"):
		a.Method = MethodRecovery
	}
	return a
}
