package mfa_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// softAuthn is a minimal software authenticator and client for tests:
// one ES256 (ECDSA P-256) credential, "none" attestation, and the client
// side of WebAuthn (clientDataJSON, the PublicKeyCredential JSON that the
// browser's toJSON() gives). It is written from the specification
// (WebAuthn Level 3 §6.1 authenticator data, §6.5.4 attestation object,
// §5.8.1 client data; RFC 9052/9053 COSE_Key), independently of
// go-webauthn, which is under test.
//
// Its knobs model a misbehaving client or authenticator: Origin is what
// the client puts into clientDataJSON; RPIDForHash, when set, replaces
// the RP ID whose hash goes into the authenticator data; Counter is the
// signature counter (Get adds one first, unless NoCounter: then it is
// always 0, as for many passkey providers).
type softAuthn struct {
	Origin      string
	RPIDForHash string
	Counter     uint32
	NoCounter   bool
	UV          bool   // the UV flag (user verified)
	BE, BS      bool   // backup eligible, backup state
	Attachment  string // "platform", "cross-platform" or ""
	Resident    bool   // answers credProps with rk

	key        *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte // from the registration options
}

func newSoftAuthn(t testing.TB, origin string) *softAuthn {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &softAuthn{Origin: origin, UV: true, Attachment: "platform", Resident: true, key: key, credID: id}
}

// clone is a copy of the authenticator with the same key and credential
// and its own counter, from now on: what an attacker who copied it has.
func (a *softAuthn) clone() *softAuthn {
	c := *a
	return &c
}

// ID is the credential ID as the API names it (base64url).
func (a *softAuthn) ID() string { return b64(a.credID) }

// X is the x coordinate of the public key: 32 bytes that must never be
// stored in the clear.
func (a *softAuthn) X() []byte { return a.key.X.FillBytes(make([]byte, 32)) }

// coseKey is the credential public key as a COSE_Key (RFC 9053 §7.1.1:
// kty EC2, alg ES256, crv P-256, x, y), CTAP2 canonical CBOR.
func (a *softAuthn) coseKey(t testing.TB) []byte {
	t.Helper()
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := em.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: a.X(), -3: a.key.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var b64 = base64.RawURLEncoding.EncodeToString

// options is what the tests read of creation and request options.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		Exclude                []descriptor `json:"excludeCredentials"`
		Allow                  []descriptor `json:"allowCredentials"`
		Attestation            string       `json:"attestation"`
		UserVerification       string       `json:"userVerification"`
		Timeout                int          `json:"timeout"`
		AuthenticatorSelection struct {
			Attachment       string `json:"authenticatorAttachment"`
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Extensions map[string]any `json:"extensions"`
	} `json:"publicKey"`
}

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func parseOptions(t testing.TB, opts []byte) options {
	t.Helper()
	var o options
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatalf("options: %v\n%s", err, opts)
	}
	return o
}

func ids(ds []descriptor) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

// clientData is the client data JSON (§5.8.1) of a ceremony.
func (a *softAuthn) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// authData is the authenticator data (§6.1): rpIdHash, flags, counter,
// then the attested credential data when attested.
func (a *softAuthn) authData(t testing.TB, rpID string, attested bool) []byte {
	t.Helper()
	if a.RPIDForHash != "" {
		rpID = a.RPIDForHash
	}
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // UP
	if a.UV {
		flags |= 0x04
	}
	if a.BE {
		flags |= 0x08
	}
	if a.BS {
		flags |= 0x10
	}
	if attested {
		flags |= 0x40
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.Counter)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: zeros, as under "none"
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.credID)))
		out = append(out, a.credID...)
		out = append(out, a.coseKey(t)...)
	}
	return out
}

// create answers creation options as navigator.credentials.create would,
// with a "none" attestation: the registration response JSON.
func (a *softAuthn) create(t testing.TB, optionsJSON []byte) []byte {
	t.Helper()
	o := parseOptions(t, optionsJSON).PublicKey
	uh, err := base64.RawURLEncoding.DecodeString(o.User.ID)
	if err != nil {
		t.Fatalf("user.id: %v", err)
	}
	a.userHandle = uh
	cd := a.clientData("webauthn.create", o.Challenge)
	ad := a.authData(t, o.RP.ID, true)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]any{}
	if _, ok := o.Extensions["credProps"]; ok {
		ext["credProps"] = map[string]any{"rk": a.Resident}
	}
	resp := map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64(cd),
			"attestationObject": b64(att),
			"transports":        []string{"internal", "hybrid"},
		},
		"clientExtensionResults": ext,
	}
	if a.Attachment != "" {
		resp["authenticatorAttachment"] = a.Attachment
	}
	out, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// get answers request options as navigator.credentials.get would: an
// assertion by this credential (whether or not allowCredentials lists it),
// signed over authenticatorData || SHA-256(clientDataJSON) (§6.3.3).
func (a *softAuthn) get(t testing.TB, optionsJSON []byte) []byte {
	t.Helper()
	o := parseOptions(t, optionsJSON).PublicKey
	if a.NoCounter {
		a.Counter = 0
	} else {
		a.Counter++
	}
	cd := a.clientData("webauthn.get", o.Challenge)
	ad := a.authData(t, o.RPID, false)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(slices.Clone(ad), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	resp := map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64(cd),
			"authenticatorData": b64(ad),
			"signature":         b64(sig),
			"userHandle":        b64(a.userHandle),
		},
		"clientExtensionResults": map[string]any{},
	}
	if a.Attachment != "" {
		resp["authenticatorAttachment"] = a.Attachment
	}
	out, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
