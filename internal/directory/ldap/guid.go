package ldap

import (
	"fmt"

	"github.com/google/uuid"
)

// guidString renders an Active Directory objectGUID (16 raw bytes) as a
// canonical lowercase UUID string. AD stores the GUID as the Windows GUID
// structure (MS-DTYP 2.3.4): Data1 (4 bytes), Data2 (2) and Data3 (2) are
// little-endian, Data4 (8) is a byte array. The string form reverses the
// first three fields, so that it matches what AD's own tools print
// (Get-ADUser ... ObjectGUID) and what LDAP_SERVER_EXTENDED_DN shows.
func guidString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("objectGUID has %d bytes, want 16", len(b))
	}
	var u [16]byte
	u[0], u[1], u[2], u[3] = b[3], b[2], b[1], b[0]
	u[4], u[5] = b[5], b[4]
	u[6], u[7] = b[7], b[6]
	copy(u[8:], b[8:])
	return uuid.UUID(u).String(), nil
}
