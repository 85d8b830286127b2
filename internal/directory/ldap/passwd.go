package ldap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// Password changes: a user whose password has expired or must be changed
// sets a new one at sign-in. It is always a change (the user proves the
// current password, the directory applies its password policy), never an
// administrator's reset.
//
// Active Directory (MS-ADTS 3.1.1.3.1.5.2, "unicodePwd" change): one modify
// of the user's entry that deletes the current password and adds the new
// one, each quoted and UTF-16LE encoded. AD refuses a bind with an expired
// or must-change password (data 532, 773), so the user cannot make it
// themself; the service account makes it on a connection of the search
// pool. That needs no privilege: every account holds the Change Password
// control access right on every user object (granted to Everyone by the
// default security descriptor), and AD checks the deleted value against the
// current password before anything else, then the password policy. AD
// takes password modifies only over an encrypted connection, so every
// server must be ldaps:// or start_tls.
//
// OpenLDAP (and type custom): a bind as the user with the current password
// and the password policy control, then, on the same connection, the
// Password Modify extended operation (RFC 3062) with the current and new
// password and the control again. After pwdReset the ppolicy overlay
// accepts the bind and restricts the connection to exactly that operation.
// A password that has expired for good (no grace logins left) cannot be
// bound with, hence not be changed by its owner: CanChangePassword says no,
// and ChangePassword returns identity.ErrPasswordChangeUnsupported. Within
// grace logins (pwdGraceAuthNLimit) the bind succeeds and the sign-in goes
// through without a change.

// passwordModifyOID names the Password Modify extended operation (RFC 3062).
const passwordModifyOID = "1.3.6.1.4.1.4203.1.11.1"

// Behera password policy error values that answer a password change
// (draft-behera-ldap-password-policy-10, section 6.2).
const (
	ppolicyPasswordModNotAllowed = 3
	ppolicyMustSupplyOldPassword = 4
	ppolicyInsufficientQuality   = 5
	ppolicyPasswordTooShort      = 6
	ppolicyPasswordTooYoung      = 7
	ppolicyPasswordInHistory     = 8
)

// adErrCode is the Win32 error code that opens Active Directory's (and
// Samba's) diagnostic message of a failed modify: "0000052D: Constraint
// violation - ..." or "00000056: AtrErr: DSID-03190F80, ...".
var adErrCode = regexp.MustCompile(`^\s*([0-9A-Fa-f]{8}):`)

// Win32 error codes of a refused unicodePwd change.
const (
	adInvalidPassword     = "00000056" // ERROR_INVALID_PASSWORD: the deleted value is not the current password
	adPasswordRestriction = "0000052d" // ERROR_PASSWORD_RESTRICTION: length, complexity, history, minimum age
)

// errChangeInvalid is ChangePassword's one answer for a wrong current
// password, an unknown user and an unusable name, so that they read alike.
var errChangeInvalid = fmt.Errorf("ldap: change password: %w", identity.ErrInvalidCredentials)

// CanChangePassword reports whether ChangePassword can help a user whose
// sign-in the directory refused with reason (identity.ErrPasswordExpired
// or identity.ErrMustChangePassword). It asks no server.
//
// Active Directory: both, when every server is reached over TLS. OpenLDAP
// and custom: only a password that must be changed (pwdReset); a bind with
// an expired password fails, so its owner cannot change it.
func (d *Directory) CanChangePassword(reason error) bool {
	if d.cfg.Type == TypeActiveDirectory {
		return d.encrypted() &&
			(errors.Is(reason, identity.ErrPasswordExpired) || errors.Is(reason, identity.ErrMustChangePassword))
	}
	return errors.Is(reason, identity.ErrMustChangePassword)
}

// encrypted reports whether every server is reached over TLS.
func (d *Directory) encrypted() bool {
	for _, s := range d.servers {
		if !s.ldaps && !s.startTLS {
			return false
		}
	}
	return true
}

// ChangePassword changes the password of the user who signs in as username
// from oldPassword to newPassword (see the comment at the top of this file
// for how). The directory checks the old password and its password policy.
//
// It returns nil when the password was changed, or:
//   - identity.ErrInvalidCredentials for a wrong old password, an unknown
//     user (after a dummy bind, so both take alike long) or an unusable name;
//   - an identity.ErrPasswordPolicy error (*identity.PasswordPolicyError)
//     when the directory refused the new password;
//   - identity.ErrPasswordChangeUnsupported when the directory does not
//     let the user change it here (and, for Active Directory, when a server
//     is not reached over TLS: no request is sent then);
//   - another identity rejection the bind reported (OpenLDAP: locked);
//   - an error wrapping identity.ErrDirectoryUnavailable for an outage. A
//     change whose answer did not come within Timeout is not retried on
//     another server: its outcome is unknown.
//
// Passwords are never logged.
func (d *Directory) ChangePassword(ctx context.Context, username, oldPassword, newPassword string) error {
	if p := usernameProblem(username); p != "" || oldPassword == "" {
		if p == "" {
			p = "empty password"
		}
		d.log.DebugContext(ctx, "ldap password change refused before any request", "reason", p)
		return errChangeInvalid
	}
	if p := newPasswordProblem(newPassword); p != "" {
		return fmt.Errorf("ldap: change password: %w",
			&identity.PasswordPolicyError{Reason: identity.PolicyUnspecified, Detail: p})
	}
	if d.cfg.Type == TypeActiveDirectory && !d.encrypted() {
		return fmt.Errorf("ldap: change password: Active Directory takes password changes only over ldaps:// or start_tls: %w",
			identity.ErrPasswordChangeUnsupported)
	}
	name, ok, err := d.loginName(ctx, username)
	if err != nil {
		return err
	}
	var entry *goldap.Entry
	if ok {
		entry, err = d.findUser(ctx, name)
	} else {
		err = errNoSuchUser
	}
	if errors.Is(err, errNoSuchUser) {
		d.dummyBind(ctx, oldPassword)
		return errChangeInvalid
	}
	if err != nil {
		return err
	}
	if d.cfg.Type == TypeActiveDirectory {
		return d.changeAD(ctx, entry.DN, oldPassword, newPassword)
	}
	return d.changePasswordModify(ctx, entry.DN, oldPassword, newPassword)
}

// newPasswordProblem says why a new password cannot be sent at all, or "".
func newPasswordProblem(pw string) string {
	switch {
	case pw == "":
		return "empty new password"
	case !utf8.ValidString(pw):
		return "new password not UTF-8"
	case strings.IndexByte(pw, 0) >= 0:
		return "new password contains NUL"
	}
	return ""
}

// changeAD makes the unicodePwd change as the service account.
func (d *Directory) changeAD(ctx context.Context, dn, oldPassword, newPassword string) error {
	req := goldap.NewModifyRequest(dn, nil)
	req.Delete("unicodePwd", []string{adPassword(oldPassword)})
	req.Add("unicodePwd", []string{adPassword(newPassword)})
	var outcome error
	err := d.doOnce(ctx, kindSearch, "password change", func(c *conn, srv string) error {
		start := time.Now()
		err := c.l.Modify(req)
		if err != nil && isConnError(err) {
			d.observe("password_change", srv, time.Since(start), err)
			return err
		}
		var code int
		var sub string
		outcome, code, sub = adChangeOutcome(err)
		d.observe("password_change", srv, time.Since(start), outcome)
		if outcome != nil {
			d.log.DebugContext(ctx, "ldap password change refused", "server", srv, "result", code, "detail", sub)
		}
		return nil
	})
	if err != nil {
		return unavailable("password change", err)
	}
	return changeResult(outcome)
}

// adPassword encodes a password for unicodePwd: in double quotes, UTF-16LE
// (MS-ADTS 3.1.1.3.1.5.1).
func adPassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return string(b)
}

// adChangeOutcome classifies Active Directory's answer to a unicodePwd
// change (err is nil or an LDAP result, never a connection error). code
// and sub (the Win32 code) are for logs.
//
// Checked against Samba AD 4.17: a wrong current password is 19 with
// 00000056, whatever the new one; a new password that is too short, not
// complex enough or in the history is 19 with 0000052D (Windows says no
// more than that; Samba's text names the rule, but only Samba's).
func adChangeOutcome(err error) (outcome error, code int, sub string) {
	if err == nil {
		return nil, 0, ""
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return unavailable("password change", err), -1, ""
	}
	code = int(le.ResultCode)
	msg := ""
	if le.Err != nil {
		msg = le.Err.Error()
	}
	if m := adErrCode.FindStringSubmatch(msg); m != nil {
		sub = strings.ToLower(m[1])
	}
	switch le.ResultCode {
	case goldap.LDAPResultConstraintViolation:
		if sub == adInvalidPassword {
			return identity.ErrInvalidCredentials, code, sub
		}
		// 0000052D, or a code we do not know: the new password is refused.
		return &identity.PasswordPolicyError{Reason: identity.PolicyUnspecified, Detail: msg}, code, sub
	case goldap.LDAPResultNoSuchObject, goldap.LDAPResultInvalidCredentials:
		// The entry went away since the search.
		return identity.ErrInvalidCredentials, code, sub
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultStrongAuthRequired, goldap.LDAPResultConfidentialityRequired:
		// 50: the account may not change its password ("User cannot
		// change password" is a deny of Change Password); 53/8/13: the
		// connection is not encrypted (no TLS).
		return fmt.Errorf("%w (result %d: %s)", identity.ErrPasswordChangeUnsupported, code, msg), code, sub
	}
	return unavailable("password change", err), code, sub
}

// changePasswordModify binds as the user and runs the Password Modify
// extended operation on the same connection, both with the password policy
// control.
func (d *Directory) changePasswordModify(ctx context.Context, dn, oldPassword, newPassword string) error {
	var outcome error
	err := d.doOnce(ctx, kindBind, "password change", func(c *conn, srv string) error {
		start := time.Now()
		res, err := c.l.SimpleBind(&goldap.SimpleBindRequest{Username: dn, Password: oldPassword,
			Controls: []goldap.Control{goldap.NewControlBeheraPasswordPolicy()}})
		if err != nil && isConnError(err) {
			d.observe("bind", srv, time.Since(start), err)
			return err
		}
		took := time.Since(start)
		bound, code, sub := bindOutcome(res, err)
		d.observe("bind", srv, took, bound)
		switch {
		case bound == nil, errors.Is(bound, identity.ErrMustChangePassword):
			// Bound; after pwdReset restricted to changing the password.
		case errors.Is(bound, identity.ErrPasswordExpired):
			outcome = fmt.Errorf("%w: the password has expired and the directory allows no bind with it (no grace logins left)",
				identity.ErrPasswordChangeUnsupported)
			return nil
		default:
			if errors.Is(bound, identity.ErrInvalidCredentials) {
				d.recordBindCost(took)
			}
			d.log.DebugContext(ctx, "ldap password change: bind rejected", "server", srv, "result", code, "detail", sub)
			outcome = bound
			return nil
		}
		start = time.Now()
		_, err = c.l.Extended(passwordModifyRequest(dn, oldPassword, newPassword))
		if err != nil && isConnError(err) {
			d.observe("password_change", srv, time.Since(start), err)
			return err
		}
		outcome, code, sub = passwordModifyOutcome(err)
		d.observe("password_change", srv, time.Since(start), outcome)
		if outcome != nil {
			d.log.DebugContext(ctx, "ldap password change refused", "server", srv, "result", code, "detail", sub)
		}
		return nil
	})
	if err != nil {
		return unavailable("password change", err)
	}
	return changeResult(outcome)
}

// passwordModifyRequest is the RFC 3062 request with the password policy
// control (go-ldap's PasswordModify sends no controls, and drops the
// response controls of a refusal, which carry the reason):
//
//	PasswdModifyRequestValue ::= SEQUENCE {
//	  userIdentity [0] OCTET STRING OPTIONAL
//	  oldPasswd    [1] OCTET STRING OPTIONAL
//	  newPasswd    [2] OCTET STRING OPTIONAL }
func passwordModifyRequest(dn, oldPassword, newPassword string) *goldap.ExtendedRequest {
	v := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "PasswdModifyRequestValue")
	v.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, dn, "userIdentity"))
	v.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, oldPassword, "oldPasswd"))
	v.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 2, newPassword, "newPasswd"))
	req := goldap.NewExtendedRequest(passwordModifyOID, v)
	req.Controls = []goldap.Control{goldap.NewControlBeheraPasswordPolicy()}
	return req
}

// passwordModifyOutcome classifies the answer to a Password Modify request
// made right after a successful bind with the same old password (err is
// nil or an LDAP result, never a connection error). code and sub (the
// ppolicy error) are for logs.
//
// Checked against slapd 2.5 with ppolicy: too short, in history (the
// current password included), too young and failed quality checks are 19
// with the control's error 6, 8, 7 and 5; pwdAllowUserChange FALSE is 50
// with error 3; an unknown extended operation is 2 (protocolError), and
// the embedded dev directory answers 53.
func passwordModifyOutcome(err error) (outcome error, code int, sub string) {
	if err == nil {
		return nil, 0, ""
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return unavailable("password change", err), -1, ""
	}
	code = int(le.ResultCode)
	msg := ""
	if le.Err != nil {
		msg = le.Err.Error()
	}
	if pp := policyControl(le.Packet); pp != nil && pp.Error >= 0 {
		sub = "ppolicy:" + pp.ErrorString
		policy := func(r identity.PasswordPolicyReason) error {
			return &identity.PasswordPolicyError{Reason: r, Detail: msg}
		}
		switch pp.Error {
		case ppolicyPasswordTooShort:
			return policy(identity.PolicyTooShort), code, sub
		case ppolicyPasswordInHistory:
			return policy(identity.PolicyInHistory), code, sub
		case ppolicyPasswordTooYoung:
			return policy(identity.PolicyTooYoung), code, sub
		case ppolicyInsufficientQuality:
			return policy(identity.PolicyQuality), code, sub
		case ppolicyAccountLocked:
			return identity.ErrAccountLocked, code, sub
		case ppolicyPasswordModNotAllowed, ppolicyMustSupplyOldPassword, ppolicyPasswordExpired:
			return fmt.Errorf("%w (result %d: %s)", identity.ErrPasswordChangeUnsupported, code, msg), code, sub
		}
	}
	switch le.ResultCode {
	case goldap.LDAPResultConstraintViolation:
		return &identity.PasswordPolicyError{Reason: identity.PolicyUnspecified, Detail: msg}, code, sub
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultProtocolError, goldap.LDAPResultUnavailableCriticalExtension,
		goldap.LDAPResultStrongAuthRequired, goldap.LDAPResultConfidentialityRequired:
		// 50: the ACL does not let users write their own password; 53:
		// after a bind with the same password, "unwilling to verify the
		// old password" cannot be a wrong one, so the server will not do
		// it; 2/12: the operation is not implemented; 8/13: TLS needed.
		return fmt.Errorf("%w (result %d: %s)", identity.ErrPasswordChangeUnsupported, code, msg), code, sub
	}
	return unavailable("password change", err), code, sub
}

// policyControl finds the password policy response control in an LDAP
// response envelope (the controls are its third element, RFC 4511 4.1.1).
func policyControl(p *ber.Packet) *goldap.ControlBeheraPasswordPolicy {
	if p == nil || len(p.Children) < 3 {
		return nil
	}
	for _, child := range p.Children[2].Children {
		c, err := goldap.DecodeControl(child)
		if err != nil {
			continue
		}
		if pp, ok := c.(*goldap.ControlBeheraPasswordPolicy); ok {
			return pp
		}
	}
	return nil
}

// changeResult wraps an outcome for ChangePassword's callers: one value for
// every invalid-credentials answer, the operation prefix on the others.
func changeResult(outcome error) error {
	switch {
	case outcome == nil:
		return nil
	case errors.Is(outcome, identity.ErrInvalidCredentials):
		return errChangeInvalid
	case errors.Is(outcome, identity.ErrDirectoryUnavailable):
		return outcome
	default:
		return fmt.Errorf("ldap: change password: %w", outcome)
	}
}
