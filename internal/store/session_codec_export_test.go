package store

// DecodeStoredSession decodes the value of the session key of hexKey, in
// either stored form (tests that read Redis directly).
func DecodeStoredSession(val []byte, hexKey string) (Session, error) {
	return decodeSession(val, hexKey)
}
