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

// guidBytes is the inverse of guidString: the 16 raw bytes of the objectGUID
// that s (a UUID in any form uuid.Parse takes) renders.
func guidBytes(s string) ([]byte, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a GUID: %w", err)
	}
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = u[3], u[2], u[1], u[0]
	b[4], b[5] = u[5], u[4]
	b[6], b[7] = u[7], u[6]
	copy(b[8:], u[8:])
	return b, nil
}

// escapeBinary escapes every byte of a binary value for an LDAP filter
// (RFC 4515 section 3: \xx), as needed for an objectGUID.
func escapeBinary(b []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '\\', hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
