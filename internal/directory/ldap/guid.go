package ldap

import (
	"encoding/hex"
	"fmt"
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
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:]), nil
}
