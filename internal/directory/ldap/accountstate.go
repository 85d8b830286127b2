package ldap

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// Attributes that tell an account's state without a bind. Lookup reads them
// so that a user who was disabled or locked after signing in loses access at
// the next token exchange, not at the next sign-in.
const (
	attrUserAccountControl = "userAccountControl"                 // AD: 0x2 ACCOUNTDISABLE
	attrUACComputed        = "msDS-User-Account-Control-Computed" // AD: 0x10 LOCKOUT, 0x800000 PASSWORD_EXPIRED (constructed; also on Samba)
	attrAccountExpires     = "accountExpires"                     // AD: 100 ns intervals since 1601-01-01 UTC; 0 and 2^63-1 mean never
	attrPwdLastSet         = "pwdLastSet"                         // AD: 0 = must change at next logon
	attrPwdAccountLocked   = "pwdAccountLockedTime"               // OpenLDAP ppolicy (operational: asked for by name)
	attrPwdReset           = "pwdReset"                           // OpenLDAP ppolicy: must change the password
)

const (
	uacAccountDisable   = 0x2
	uacLockout          = 0x10
	uacPasswordExpired  = 0x800000
	adNeverExpires      = 1<<63 - 1
	adEpochToUnix100ns  = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	ppolicyPermanentLck = "000001010000Z"
)

// stateAttrs are the attributes accountState needs for the directory type.
func stateAttrs(typ string) []string {
	switch typ {
	case TypeActiveDirectory:
		return []string{attrUserAccountControl, attrUACComputed, attrAccountExpires, attrPwdLastSet}
	case TypeOpenLDAP:
		return []string{attrPwdAccountLocked, attrPwdReset}
	}
	return nil
}

// accountState reads the account state from a user entry: nil for an
// active account, or the identity sentinel a bind would have answered.
//
// Active Directory: disabled (userAccountControl), locked and password
// expired (msDS-User-Account-Control-Computed, which accounts for the
// lockout duration; with pwdLastSet 0 it means "must change at next
// logon"), account expired (accountExpires). OpenLDAP ppolicy:
// pwdAccountLockedTime present means locked (ppolicy removes a timed-out
// lock only at the next bind, so a lock that has run out still reads as
// locked here until the user signs in again), pwdReset means the password
// must be changed. Password expiry by age is not computed on OpenLDAP (it
// needs the policy's pwdMaxAge); a bind reports it.
func accountState(e *goldap.Entry, typ string, now time.Time) error {
	switch typ {
	case TypeActiveDirectory:
		uac, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue(attrUserAccountControl), 10, 64)
		computed, _ := strconv.ParseInt(e.GetEqualFoldAttributeValue(attrUACComputed), 10, 64)
		switch {
		case uac&uacAccountDisable != 0:
			return identity.ErrAccountDisabled
		case computed&uacLockout != 0:
			return identity.ErrAccountLocked
		}
		if v := e.GetEqualFoldAttributeValue(attrAccountExpires); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && n != 0 && n != adNeverExpires {
				if expires := time.Unix(0, 0).Add(time.Duration(n-adEpochToUnix100ns) * 100); !now.Before(expires) {
					return identity.ErrAccountExpired
				}
			}
		}
		if computed&uacPasswordExpired != 0 {
			if e.GetEqualFoldAttributeValue(attrPwdLastSet) == "0" {
				return identity.ErrMustChangePassword // "must change at next logon"
			}
			return identity.ErrPasswordExpired
		}
	case TypeOpenLDAP:
		if e.GetEqualFoldAttributeValue(attrPwdAccountLocked) != "" {
			return identity.ErrAccountLocked
		}
		if strings.EqualFold(e.GetEqualFoldAttributeValue(attrPwdReset), "TRUE") {
			return identity.ErrMustChangePassword
		}
	}
	return nil
}

// accountError wraps a state for Lookup's callers.
func accountError(err error) error { return fmt.Errorf("ldap: lookup: %w", err) }
