package ldap

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// adDataCode finds the sub-code Active Directory (and Samba) put in the
// diagnostic message of a failed bind: "80090308: LdapErr: DSID-0C09042A,
// comment: AcceptSecurityContext error, data 52e, v3839".
var adDataCode = regexp.MustCompile(`\bdata ([0-9a-fA-F]{1,8})\b`)

// adBindErrors maps AD's bind sub-codes (Win32 error codes, in hex) to the
// identity sentinels. See MS-ADTS 3.1.1.3.1.1 and the Win32 error list:
//
//	525 ERROR_NO_SUCH_USER            -> invalid credentials (AD itself says 52e for most)
//	52e ERROR_LOGON_FAILURE           -> invalid credentials
//	530 ERROR_INVALID_LOGON_HOURS     -> disabled (the account may not sign in now)
//	531 ERROR_INVALID_WORKSTATION     -> disabled (the account may not sign in from here)
//	532 ERROR_PASSWORD_EXPIRED        -> password expired
//	533 ERROR_ACCOUNT_DISABLED        -> disabled
//	701 ERROR_ACCOUNT_EXPIRED         -> account expired
//	773 ERROR_PASSWORD_MUST_CHANGE    -> must change password
//	775 ERROR_ACCOUNT_LOCKED_OUT      -> locked
//
// 530 and 531 are mapped to ErrAccountDisabled on purpose: the password was
// right but the account may not be used under the current circumstances, and
// the user must ask an administrator, exactly as for a disabled account.
var adBindErrors = map[string]error{
	"525": identity.ErrInvalidCredentials,
	"52e": identity.ErrInvalidCredentials,
	"530": identity.ErrAccountDisabled,
	"531": identity.ErrAccountDisabled,
	"532": identity.ErrPasswordExpired,
	"533": identity.ErrAccountDisabled,
	"701": identity.ErrAccountExpired,
	"773": identity.ErrMustChangePassword,
	"775": identity.ErrAccountLocked,
}

// Behera password policy response error values
// (draft-behera-ldap-password-policy-10, section 6.2).
const (
	ppolicyPasswordExpired  = 0
	ppolicyAccountLocked    = 1
	ppolicyChangeAfterReset = 2
)

// bindOutcome classifies the result of a user bind.
//
// The returned error is nil on success, one of the identity rejection
// sentinels for a definitive "no", or an error wrapping
// identity.ErrDirectoryUnavailable. code is the LDAP result code (0 on
// success, -1 when there was no LDAP result at all) and sub the AD data
// code or ppolicy error, for logs.
func bindOutcome(res *goldap.SimpleBindResult, err error) (outcome error, code int, sub string) {
	// The password policy control comes with the bind response, successful or
	// not (OpenLDAP ppolicy: a locked account binds with 49 and says why only
	// in the control; after pwdReset the bind succeeds and the control says
	// changeAfterReset).
	if res != nil {
		for _, c := range res.Controls {
			pp, ok := c.(*goldap.ControlBeheraPasswordPolicy)
			if !ok {
				continue
			}
			switch pp.Error {
			case ppolicyPasswordExpired:
				return identity.ErrPasswordExpired, resultCode(err), "ppolicy:passwordExpired"
			case ppolicyAccountLocked:
				return identity.ErrAccountLocked, resultCode(err), "ppolicy:accountLocked"
			case ppolicyChangeAfterReset:
				return identity.ErrMustChangePassword, resultCode(err), "ppolicy:changeAfterReset"
			}
		}
	}
	if err == nil {
		return nil, 0, ""
	}
	var le *goldap.Error
	if !errors.As(err, &le) || isConnError(err) {
		return unavailable("bind", err), resultCode(err), ""
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		if m := adDataCode.FindStringSubmatch(le.Error()); m != nil {
			sub := strings.ToLower(m[1])
			if e, ok := adBindErrors[sub]; ok {
				return e, int(le.ResultCode), sub
			}
			return identity.ErrInvalidCredentials, int(le.ResultCode), sub
		}
		return identity.ErrInvalidCredentials, int(le.ResultCode), ""
	case goldap.LDAPResultInappropriateAuthentication:
		// RFC 4513 5.1.2: the server refuses an unauthenticated bind. We never
		// send one, but a server may treat an odd password alike.
		return identity.ErrInvalidCredentials, int(le.ResultCode), ""
	default:
		// 51 busy, 52 unavailable, 53 unwilling to perform (including AD's
		// "strong auth required" on plain LDAP), 80 other, ...
		return unavailable("bind", err), int(le.ResultCode), ""
	}
}

// resultCode returns the LDAP result code in err, 0 for nil, -1 when err
// carries none.
func resultCode(err error) int {
	if err == nil {
		return 0
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		return int(le.ResultCode)
	}
	return -1
}

// isConnError reports whether err means the connection (not the request)
// failed: network errors, timeouts, a closed connection, or a server that
// says it is busy or unavailable. Such a connection is discarded and the
// request may go to another server.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var le *goldap.Error
	if !errors.As(err, &le) {
		return true // not an LDAP result at all
	}
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.LDAPResultServerDown, goldap.LDAPResultTimeout, goldap.ErrorUnexpectedResponse, goldap.ErrorMalformedPacket,
		goldap.LDAPResultBusy, goldap.LDAPResultUnavailable,
		goldap.LDAPResultConnectError:
		return true
	}
	return false
}

// unavailable wraps err as identity.ErrDirectoryUnavailable with an operation
// prefix. The original error stays in the chain (errors.As works on it).
func unavailable(op string, err error) error {
	if errors.Is(err, identity.ErrDirectoryUnavailable) {
		return err
	}
	return fmt.Errorf("ldap: %s: %w: %w", op, identity.ErrDirectoryUnavailable, err)
}
