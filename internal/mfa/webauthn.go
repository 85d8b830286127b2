package mfa

// WebAuthn (passkeys and security keys) as a second factor: the registration
// and authentication ceremonies of W3C Web Authentication Level 3 (§7.1
// "Registering a New Credential", §7.2 "Verifying an Authentication
// Assertion"), verified by github.com/go-webauthn/webauthn, and the storage
// of the resulting credentials. No HTTP here: the pages hand the options
// JSON to navigator.credentials.create/get (after
// PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON
// of its "publicKey" member) and post the JSON of the resulting
// PublicKeyCredential (its toJSON()) back to Finish*.
//
// Contracts:
//
//   - Ceremonies. Begin* returns the options and a ceremony ID; the
//     ceremony's state (go-webauthn's SessionData: the challenge, the user
//     handle, the allowed credentials) is kept in Redis for CeremonyTTL,
//     sealed like credentials (AES-256-GCM, additional data binding it to
//     its kind, user and ID, so a Redis writer can neither read nor forge
//     one). Finish* takes it with GETDEL: of any number of Finish calls with
//     one ceremony ID, at most one sees it. An unknown, used, expired (by
//     the injected clock, whatever Redis says) or other-kind ceremony is
//     ErrCeremony. A response too large or not parseable is refused
//     (ErrBadResponse) before Redis is asked, and leaves the ceremony in
//     place; any other Finish consumes it, whatever the outcome.
//   - Options: attestation "none"; user verification "preferred"; resident
//     key "preferred" (passkeys where the authenticator can); no
//     authenticatorAttachment, so platform authenticators and roaming
//     security keys both work; credProps requested (Discoverable);
//     excludeCredentials lists the user's credentials at registration,
//     allowCredentials at login. The user handle is the directory ID
//     (identity.User.ID: entryUUID or objectGUID, never the username; 1-64
//     bytes), so that a later usernameless passkey sign-in can find the
//     user with Directory.LookupID.
//   - Results and failures are apart, as for TOTP: ErrBadResponse (a
//     response that is too large, malformed, or does not verify: origin,
//     RP ID hash, challenge, type, signature, flags, a credential that is
//     not this user's), ErrCloned, ErrCeremony, ErrNoCredential,
//     ErrTooMany and ErrBadName are results; a Redis outage wraps
//     store.ErrUnavailable; a stored credential that does not decrypt is a
//     failure of its own (neither a result nor an outage).
//   - Signature counter (§7.2, the signCount step; §6.1.1): an assertion
//     whose counter does not exceed the stored one (unless both are 0:
//     authenticators without a counter) is refused with ErrCloned; the stored counter is
//     not changed and the credential stays, for the caller to audit and the
//     user or an admin to remove. A successful assertion stores the new
//     counter, the backup state, uvInitialized and the time of use, with a
//     compare-and-set, so two concurrent assertions with the same counter
//     cannot both pass.
//   - At most MaxWebAuthnCredentials per user (ErrTooMany, checked at Begin
//     and atomically at Finish), each with a name of at most 64 bytes of
//     UTF-8 without control characters (a default when empty).
//   - The credential record (public key, counter, raw attestation) is
//     stored only sealed, bound to the user ID and the credential ID, and
//     sealed again under the current key at every sign-in (so a key
//     rotation completes as credentials are used); the listing (names,
//     dates, attachment, transports, backup flags) is in the clear and
//     holds no key material. Credentials are durable (no TTL).
//   - Nothing secret goes into errors (challenges, keys and signatures are
//     public anyway, but are not copied into error text by this file).
//
// Keys (hash tag on the user ID, as for the other factors):
//
//	user:{ID}:mfa:webauthn            hash: credential ID (base64url) -> JSON stored credential
//	user:{ID}:mfa:webauthn:reg:CID    sealed registration ceremony, TTL CeremonyTTL
//	user:{ID}:mfa:webauthn:login:CID  sealed login ceremony, TTL CeremonyTTL

import (
	"bytes"
	"cmp"
	"context"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

const (
	// CeremonyTTL is how long a begun ceremony waits for its Finish.
	CeremonyTTL = 5 * time.Minute
	// clientTimeout is the timeout the browser is given: shorter than
	// CeremonyTTL, so that what the authenticator signs at the end of the
	// browser's window still finds its ceremony.
	clientTimeout = CeremonyTTL - time.Minute
	// MaxWebAuthnCredentials bounds the WebAuthn credentials of one user.
	MaxWebAuthnCredentials = 20
	// MaxResponseSize bounds the response JSON given to Finish*. Real
	// responses are a few KiB (a packed attestation with a certificate
	// chain stays well under 16 KiB).
	MaxResponseSize = 64 << 10
	// casAttempts bounds the compare-and-set retries of one update.
	casAttempts = 5
)

var (
	// ErrCeremony: the ceremony ID is unknown, already used, expired, of
	// the other kind, or another user's.
	ErrCeremony = errors.New("mfa: no such webauthn ceremony (unknown, used or expired)")
	// ErrBadResponse: the authenticator response is too large, malformed,
	// or does not verify (origin, RP ID, challenge, signature, flags, a
	// credential the user does not own). A result, not a failure.
	ErrBadResponse = errors.New("mfa: webauthn response refused")
	// ErrCloned: the assertion verified, but the authenticator's signature
	// counter did not increase: the credential may have been cloned. The
	// sign-in is refused; the credential is left as it was.
	ErrCloned = errors.New("mfa: webauthn signature counter did not increase (possibly cloned authenticator)")
	// ErrTooMany: the user already has MaxWebAuthnCredentials credentials.
	ErrTooMany = errors.New("mfa: too many webauthn credentials")
)

// WebAuthnConfig is the relying party. The caller derives it from
// server.public_url: RPID its host (a registrable domain or "localhost",
// never an IP address), Origins its scheme://host[:port].
type WebAuthnConfig struct {
	// RPID is the relying party ID (WebAuthn §5.1.2): a domain that every
	// origin is, or is a subdomain of.
	RPID string
	// RPName is the name authenticators show ("Warden").
	RPName string
	// Origins are the origins the pages are served from: https, or http
	// on localhost only (a secure context for browsers).
	Origins []string
}

// WebAuthnUser is the user of a ceremony.
type WebAuthnUser struct {
	// ID is the stable directory ID (identity.User.ID); it is the user
	// handle given to authenticators, so at most 64 bytes.
	ID string
	// Name is the account name authenticators show (the username);
	// DisplayName the person's name. Empty: ID and Name respectively.
	Name, DisplayName string
}

// WebAuthnCredential is a registered credential as listed: no key
// material, no counter.
type WebAuthnCredential struct {
	// ID is the credential ID in unpadded base64url (the "id" of the
	// PublicKeyCredential).
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Attachment is how the authenticator was attached at registration:
	// "platform" (built into the device), "cross-platform" (a security
	// key, or a phone over hybrid), or "" when the browser did not say.
	Attachment string `json:"attachment,omitempty"`
	// Platform: Attachment is "platform".
	Platform bool `json:"platform,omitempty"`
	// Transports are the authenticator's transports as the browser
	// reported them ("usb", "nfc", "ble", "hybrid", "internal").
	Transports []string `json:"transports,omitempty"`
	// BackupEligible: the credential can be synced (a multi-device
	// passkey); BackupState: it is backed up now.
	BackupEligible bool `json:"backup_eligible,omitempty"`
	BackupState    bool `json:"backup_state,omitempty"`
	// UserVerified is the credential's uvInitialized: its authenticator
	// verified the user (PIN, biometrics) at registration. Whether a given
	// sign-in did is FinishLogin's second result.
	UserVerified bool `json:"user_verified,omitempty"`
	// Discoverable is the credProps "rk" output: a passkey that can sign
	// in without a username; nil when the browser did not say.
	Discoverable *bool `json:"discoverable,omitempty"`
	// AAGUID names the authenticator model, when it gave one (many give
	// zeros under "none" attestation, then it is empty).
	AAGUID string `json:"aaguid,omitempty"`
}

// storedWebAuthn is a credential as stored: Credential is go-webauthn's
// credential record (MessagePack) sealed under the user and credential IDs.
type storedWebAuthn struct {
	WebAuthnCredential
	Credential string `json:"credential"`
}

// ceremonyRecord is what a ceremony key holds, sealed.
type ceremonyRecord struct {
	Session   webauthn.SessionData `json:"session"`
	ExpiresAt time.Time            `json:"expires_at"`
}

// Ceremony kinds: part of the key and of the additional data.
const (
	kindRegister = "reg"
	kindLogin    = "login"
)

// WebAuthn runs WebAuthn ceremonies for one relying party and keeps the
// credentials in the Factors' Redis. It is safe for concurrent use.
type WebAuthn struct {
	f  *Factors
	rp *webauthn.WebAuthn
}

// WebAuthn returns the WebAuthn ceremonies of the relying party cfg, on
// this factor store (its Redis, key, clock and randomness).
func (f *Factors) WebAuthn(cfg WebAuthnConfig) (*WebAuthn, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("mfa: webauthn config: %w", err)
	}
	rp, err := webauthn.New(&webauthn.Config{
		RPID:                  cfg.RPID,
		RPDisplayName:         cfg.RPName,
		RPOrigins:             slices.Clone(cfg.Origins),
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		// Expiry is ours (ExpiresAt, by the injected clock, and the
		// Redis TTL); the library's own check would use time.Now.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: clientTimeout, TimeoutUVD: clientTimeout},
			Registration: webauthn.TimeoutConfig{Timeout: clientTimeout, TimeoutUVD: clientTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: webauthn config: %w", err)
	}
	return &WebAuthn{f: f, rp: rp}, nil
}

// validate checks the relying party: an RP ID, a name, and origins that
// are secure contexts on the RP ID's domain.
func (c WebAuthnConfig) validate() error {
	var errs []error
	rpid := c.RPID
	if err := protocol.ValidateRPID(rpid); err != nil || rpid != strings.ToLower(rpid) || strings.Contains(rpid, ":") {
		errs = append(errs, fmt.Errorf("rp id %q is not a lower-case domain name", rpid))
	}
	if c.RPName == "" {
		errs = append(errs, errors.New("rp name is empty"))
	}
	if len(c.Origins) == 0 {
		errs = append(errs, errors.New("no origins"))
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("origin %q is not scheme://host[:port]", o))
			continue
		}
		host := u.Hostname()
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && host == "localhost":
		default:
			errs = append(errs, fmt.Errorf("origin %q: must be https (or http on localhost)", o))
			continue
		}
		if host != rpid && !strings.HasSuffix(host, "."+rpid) {
			errs = append(errs, fmt.Errorf("origin %q is not on the rp id %q or a subdomain of it", o, rpid))
		}
	}
	return errors.Join(errs...)
}

// waUser adapts a WebAuthnUser to go-webauthn.
type waUser struct {
	u     WebAuthnUser
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte                         { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string                       { return cmp.Or(w.u.Name, w.u.ID) }
func (w waUser) WebAuthnDisplayName() string                { return cmp.Or(w.u.DisplayName, w.u.Name, w.u.ID) }
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// checkWebAuthnUser: a valid user ID that fits a user handle (1-64 bytes).
func checkWebAuthnUser(u WebAuthnUser) error {
	if err := checkUserID(u.ID); err != nil {
		return err
	}
	if len(u.ID) > protocol.MaximumUserHandleLength {
		return fmt.Errorf("mfa: user ID longer than %d bytes cannot be a webauthn user handle", protocol.MaximumUserHandleLength)
	}
	return nil
}

// credKey is the user's credentials hash (Factors.webauthnKey, which
// Count and Reset use too).
func (w *WebAuthn) credKey(userID string) string { return w.f.webauthnKey(userID) }

func (w *WebAuthn) ceremonyKey(kind, userID, id string) string {
	return w.f.store.Key("user:{" + userID + "}:mfa:webauthn:" + kind + ":" + id)
}

// credAAD binds a sealed credential record to its user and credential ID
// (a label of its own: a TOTP ciphertext never opens as one, nor back).
func credAAD(userID, credID string) []byte {
	return []byte("warden/mfa/webauthn/v1\x00" + userID + "\x00" + credID)
}

// ceremonyAAD binds a sealed ceremony to its kind, user and ID.
func ceremonyAAD(kind, userID, id string) []byte {
	return []byte("warden/mfa/webauthn/ceremony/v1\x00" + kind + "\x00" + userID + "\x00" + id)
}

// sealWith encrypts plaintext under additional data ad: base64(nonce ||
// ciphertext), as seal does for TOTP secrets.
func (f *Factors) sealWith(ad, plaintext []byte) (string, error) {
	nonce := make([]byte, f.aead.NonceSize())
	if _, err := io.ReadFull(f.random, nonce); err != nil {
		return "", fmt.Errorf("mfa: random: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(f.aead.Seal(nonce, nonce, plaintext, ad)), nil
}

// openWith decrypts what sealWith returned for the same ad, under the
// current key or a previous one (errDecrypt). Credentials are sealed
// again, under the current key, at every successful sign-in, so a key
// rotation completes as they are used.
func (f *Factors) openWith(ad []byte, sealed string) ([]byte, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	n := f.aead.NonceSize()
	if err != nil || len(raw) < n+f.aead.Overhead() {
		return nil, errDecrypt
	}
	for _, a := range append([]cipher.AEAD{f.aead}, f.old...) {
		if out, err := a.Open(nil, raw[:n], raw[n:], ad); err == nil {
			return out, nil
		}
	}
	return nil, errDecrypt
}

// checkCeremonyID accepts what newID makes (16 bytes in base64url).
func checkCeremonyID(id string) bool {
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == 16
}

// cleanName trims name and checks it: at most maxName bytes of UTF-8,
// no control characters (C0, C1, line and paragraph separators, the bidi
// embeddings, overrides and isolates that can disguise a name). Empty
// stays empty; the caller decides whether that is allowed.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if len(name) > maxName || !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: at most %d bytes of UTF-8", ErrBadName, maxName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) ||
			r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return "", fmt.Errorf("%w: control characters", ErrBadName)
		}
	}
	return name, nil
}

// badResponse wraps a refusal of the response with its (public) reason.
func badResponse(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrBadResponse, err)
}

// errTooLarge is the reason for a response over MaxResponseSize.
var errTooLarge = fmt.Errorf("response larger than %d bytes", MaxResponseSize)

// loadRaw returns the stored credentials of userID as Redis gave them:
// credential ID -> JSON.
func (w *WebAuthn) loadRaw(ctx context.Context, userID string) (map[string]string, error) {
	m, err := w.f.store.Client().HGetAll(ctx, w.credKey(userID)).Result()
	if err != nil {
		return nil, store.Unavailable("load", err)
	}
	return m, nil
}

// parseStored decodes one stored credential; id (the hash field) is
// authoritative, as it is in the additional data.
func parseStored(id, v string) (storedWebAuthn, error) {
	var sc storedWebAuthn
	if err := json.Unmarshal([]byte(v), &sc); err != nil {
		return storedWebAuthn{}, fmt.Errorf("stored credential %s: %w", id, err)
	}
	sc.ID = id
	return sc, nil
}

// parseAll decodes every stored credential, oldest first.
func parseAll(m map[string]string) ([]storedWebAuthn, error) {
	out := make([]storedWebAuthn, 0, len(m))
	for id, v := range m {
		sc, err := parseStored(id, v)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b storedWebAuthn) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// descriptors lists stored credentials for excludeCredentials and
// allowCredentials: their IDs and transports (no decryption needed).
func descriptors(scs []storedWebAuthn) ([]protocol.CredentialDescriptor, []webauthn.Credential, error) {
	ds := make([]protocol.CredentialDescriptor, len(scs))
	stubs := make([]webauthn.Credential, len(scs))
	for i, sc := range scs {
		raw, err := base64.RawURLEncoding.DecodeString(sc.ID)
		if err != nil || len(raw) == 0 {
			return nil, nil, fmt.Errorf("stored credential ID %q is not base64url", sc.ID)
		}
		ts := make([]protocol.AuthenticatorTransport, len(sc.Transports))
		for j, t := range sc.Transports {
			ts[j] = protocol.AuthenticatorTransport(t)
		}
		stubs[i] = webauthn.Credential{ID: raw, Transport: ts}
		ds[i] = stubs[i].Descriptor()
	}
	return ds, stubs, nil
}

// openCredential decrypts the credential record of sc.
func (w *WebAuthn) openCredential(userID string, sc storedWebAuthn) (webauthn.Credential, error) {
	blob, err := w.f.openWith(credAAD(userID, sc.ID), sc.Credential)
	if err != nil {
		return webauthn.Credential{}, fmt.Errorf("credential %s: %w", sc.ID, err)
	}
	var c webauthn.Credential
	if _, err := c.UnmarshalMsg(blob); err != nil {
		return webauthn.Credential{}, fmt.Errorf("credential %s: %w", sc.ID, err)
	}
	return c, nil
}

// marshalStored seals c into sc and returns the JSON to store.
func (w *WebAuthn) marshalStored(userID string, sc storedWebAuthn, c *webauthn.Credential) (string, error) {
	blob, err := c.MarshalMsg(nil)
	if err != nil {
		return "", err
	}
	if sc.Credential, err = w.f.sealWith(credAAD(userID, sc.ID), blob); err != nil {
		return "", err
	}
	out, err := json.Marshal(sc)
	return string(out), err
}

// beginCeremony seals and stores the session of a new ceremony.
func (w *WebAuthn) beginCeremony(ctx context.Context, kind, userID string, s *webauthn.SessionData) (string, error) {
	id, err := newID(w.f.random)
	if err != nil {
		return "", err
	}
	rec, err := json.Marshal(ceremonyRecord{Session: *s, ExpiresAt: w.f.now().Add(CeremonyTTL)})
	if err != nil {
		return "", err
	}
	sealed, err := w.f.sealWith(ceremonyAAD(kind, userID, id), rec)
	if err != nil {
		return "", err
	}
	if err := w.f.store.Client().Set(ctx, w.ceremonyKey(kind, userID, id), sealed, CeremonyTTL).Err(); err != nil {
		return "", store.Unavailable("store ceremony", err)
	}
	return id, nil
}

// openCeremony decrypts a ceremony taken from Redis and checks that it has
// not expired by the injected clock.
func (w *WebAuthn) openCeremony(kind, userID, id, sealed string) (webauthn.SessionData, error) {
	plain, err := w.f.openWith(ceremonyAAD(kind, userID, id), sealed)
	if err != nil {
		return webauthn.SessionData{}, fmt.Errorf("ceremony: %w", err)
	}
	var rec ceremonyRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("ceremony: %w", err)
	}
	if !w.f.now().Before(rec.ExpiresAt) {
		return webauthn.SessionData{}, ErrCeremony
	}
	return rec.Session, nil
}

// addScript stores a new credential unless it is already there (-1) or
// the user has ARGV[3] credentials already (-2). KEYS: credentials hash;
// ARGV: credential ID, JSON, cap.
var addScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return -1 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -2 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)

// casScript replaces a credential only if it is still what the caller
// read. KEYS: credentials hash; ARGV: credential ID, old JSON, new JSON.
var casScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0`)

// BeginRegistration starts registering a new credential for u. It
// returns the PublicKeyCredentialCreationOptions as go-webauthn's
// protocol.CredentialCreation marshals them ({"publicKey": {...}}), for
// navigator.credentials.create, and the ceremony ID to give to
// FinishRegistration within CeremonyTTL. ErrTooMany when u already has
// MaxWebAuthnCredentials.
func (w *WebAuthn) BeginRegistration(ctx context.Context, u WebAuthnUser) ([]byte, string, error) {
	const op = "mfa: begin webauthn registration"
	if err := checkWebAuthnUser(u); err != nil {
		return nil, "", err
	}
	m, err := w.loadRaw(ctx, u.ID)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if len(m) >= MaxWebAuthnCredentials {
		return nil, "", fmt.Errorf("%s: %w", op, ErrTooMany)
	}
	scs, err := parseAll(m)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	exclude, _, err := descriptors(scs)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	creation, session, err := w.rp.BeginRegistration(waUser{u: u},
		webauthn.WithExclusions(exclude),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	id, err := w.beginCeremony(ctx, kindRegister, u.ID, session)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	return opts, id, nil
}

// FinishRegistration verifies the registration response (the JSON of the
// PublicKeyCredential that navigator.credentials.create returned) against
// the ceremony ceremonyID of u and stores the new credential under name
// (empty: "Passkey" for a platform or syncable authenticator, "Security
// key" otherwise). An invalid name is refused before anything else
// (ErrBadName), and leaves the ceremony in place.
func (w *WebAuthn) FinishRegistration(ctx context.Context, u WebAuthnUser, ceremonyID, name string, response []byte) (WebAuthnCredential, error) {
	const op = "mfa: finish webauthn registration"
	if err := checkWebAuthnUser(u); err != nil {
		return WebAuthnCredential{}, err
	}
	name, err := cleanName(name)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(response) > MaxResponseSize {
		return WebAuthnCredential{}, badResponse(op, errTooLarge)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return WebAuthnCredential{}, badResponse(op, err)
	}
	if !checkCeremonyID(ceremonyID) {
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, ErrCeremony)
	}
	sealed, err := w.f.store.Client().GetDel(ctx, w.ceremonyKey(kindRegister, u.ID, ceremonyID)).Result()
	if errors.Is(err, redis.Nil) {
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, ErrCeremony)
	}
	if err != nil {
		return WebAuthnCredential{}, store.Unavailable(op, err)
	}
	session, err := w.openCeremony(kindRegister, u.ID, ceremonyID, sealed)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, err)
	}
	cred, err := w.rp.CreateCredential(waUser{u: u}, session, parsed)
	if err != nil {
		return WebAuthnCredential{}, badResponse(op, err)
	}

	now := w.f.now()
	meta := WebAuthnCredential{
		ID:             base64.RawURLEncoding.EncodeToString(cred.ID),
		Name:           name,
		CreatedAt:      now,
		Attachment:     string(cred.Authenticator.Attachment),
		Platform:       cred.Authenticator.Attachment == protocol.Platform,
		BackupEligible: cred.Flags.BackupEligible,
		BackupState:    cred.Flags.BackupState,
		UserVerified:   cred.Flags.UserVerified,
		Discoverable:   cred.Extensions.RK,
	}
	for _, t := range cred.Transport {
		meta.Transports = append(meta.Transports, string(t))
	}
	if a, err := uuid.FromBytes(cred.Authenticator.AAGUID); err == nil && a != uuid.Nil {
		meta.AAGUID = a.String()
	}
	if meta.Name == "" {
		meta.Name = "Security key"
		if meta.BackupEligible || cred.Authenticator.Attachment == protocol.Platform {
			meta.Name = "Passkey"
		}
	}
	data, err := w.marshalStored(u.ID, storedWebAuthn{WebAuthnCredential: meta}, cred)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, err)
	}
	n, err := addScript.Run(ctx, w.f.store.Client(), []string{w.credKey(u.ID)}, meta.ID, data, MaxWebAuthnCredentials).Int()
	if err != nil {
		return WebAuthnCredential{}, store.Unavailable(op, err)
	}
	switch n {
	case -1:
		// excludeCredentials makes browsers refuse this; only a client
		// that ignores it gets here.
		return WebAuthnCredential{}, badResponse(op, errors.New("credential already registered"))
	case -2:
		return WebAuthnCredential{}, fmt.Errorf("%s: %w", op, ErrTooMany)
	}
	return meta, nil
}

// BeginLogin starts an assertion by one of u's credentials (a second
// factor after the password: allowCredentials lists them all). It
// returns the PublicKeyCredentialRequestOptions as go-webauthn's
// protocol.CredentialAssertion marshals them ({"publicKey": {...}}), for
// navigator.credentials.get, and the ceremony ID for FinishLogin.
// ErrNoCredential when u has no WebAuthn credential.
func (w *WebAuthn) BeginLogin(ctx context.Context, u WebAuthnUser) ([]byte, string, error) {
	const op = "mfa: begin webauthn login"
	if err := checkWebAuthnUser(u); err != nil {
		return nil, "", err
	}
	m, err := w.loadRaw(ctx, u.ID)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if len(m) == 0 {
		return nil, "", fmt.Errorf("%s: %w", op, ErrNoCredential)
	}
	scs, err := parseAll(m)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	_, stubs, err := descriptors(scs)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	assertion, session, err := w.rp.BeginLogin(waUser{u: u, creds: stubs})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	id, err := w.beginCeremony(ctx, kindLogin, u.ID, session)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	return opts, id, nil
}

// FinishLogin verifies the assertion response (the JSON of the
// PublicKeyCredential that navigator.credentials.get returned) against
// the ceremony ceremonyID of u. On success it returns the credential used
// (LastUsedAt now) and whether the authenticator verified the user in this
// assertion (the UV flag: PIN or biometrics, so the key alone is two
// factors). ErrCloned (the counter did not increase) also returns the
// credential, for the audit. ErrNoCredential: u has no credential left.
func (w *WebAuthn) FinishLogin(ctx context.Context, u WebAuthnUser, ceremonyID string, response []byte) (WebAuthnCredential, bool, error) {
	const op = "mfa: finish webauthn login"
	if err := checkWebAuthnUser(u); err != nil {
		return WebAuthnCredential{}, false, err
	}
	if len(response) > MaxResponseSize {
		return WebAuthnCredential{}, false, badResponse(op, errTooLarge)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return WebAuthnCredential{}, false, badResponse(op, err)
	}
	if !checkCeremonyID(ceremonyID) {
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, ErrCeremony)
	}

	// One round trip: take the ceremony, read the credentials.
	c := w.f.store.Client()
	var take *redis.StringCmd
	var all *redis.MapStringStringCmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		take = p.GetDel(ctx, w.ceremonyKey(kindLogin, u.ID, ceremonyID))
		all = p.HGetAll(ctx, w.credKey(u.ID))
		return nil
	})
	sealed, err := take.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return WebAuthnCredential{}, false, store.Unavailable(op, err)
	}
	m, merr := all.Result()
	if merr != nil {
		return WebAuthnCredential{}, false, store.Unavailable(op, merr)
	}
	if err != nil { // redis.Nil
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, ErrCeremony)
	}
	session, err := w.openCeremony(kindLogin, u.ID, ceremonyID, sealed)
	if err != nil {
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if len(m) == 0 {
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, ErrNoCredential)
	}

	credID := base64.RawURLEncoding.EncodeToString(parsed.RawID)
	raw, ok := m[credID]
	if !ok || !slices.ContainsFunc(session.AllowedCredentialIDs, func(id []byte) bool { return bytes.Equal(id, parsed.RawID) }) {
		return WebAuthnCredential{}, false, badResponse(op, errors.New("credential not registered to this user"))
	}
	sc, err := parseStored(credID, raw)
	if err != nil {
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
	}
	cred, err := w.openCredential(u.ID, sc)
	if err != nil {
		return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
	}
	// The user as go-webauthn sees it: the credential used in full, the
	// others by ID; allowCredentials narrowed to those still registered
	// (one may have been deleted since BeginLogin).
	creds := []webauthn.Credential{cred}
	allowed := [][]byte{cred.ID}
	for id := range m {
		if id == credID {
			continue
		}
		if b, err := base64.RawURLEncoding.DecodeString(id); err == nil {
			creds = append(creds, webauthn.Credential{ID: b})
			if slices.ContainsFunc(session.AllowedCredentialIDs, func(a []byte) bool { return bytes.Equal(a, b) }) {
				allowed = append(allowed, b)
			}
		}
	}
	session.AllowedCredentialIDs = allowed
	if _, err := w.rp.ValidateLogin(waUser{u: u, creds: creds}, session, parsed); err != nil {
		return WebAuthnCredential{}, false, badResponse(op, err)
	}

	// §7.2's signCount and credential-record steps, on the record as
	// stored now: the counter must grow; then counter, flags and time of
	// use are written back, only if the record did not change meanwhile
	// (else re-read and re-check).
	ad := parsed.Response.AuthenticatorData
	now := w.f.now()
	for range casAttempts {
		next := cred
		next.Authenticator.UpdateCounter(ad.Counter)
		if next.Authenticator.CloneWarning {
			return sc.WebAuthnCredential, false, fmt.Errorf("%s: credential %s: %w", op, credID, ErrCloned)
		}
		next.Flags = cred.Flags.Update(ad.Flags)
		nsc := sc
		nsc.LastUsedAt = now
		nsc.BackupState = next.Flags.BackupState
		nsc.UserVerified = next.Flags.UserVerified
		data, err := w.marshalStored(u.ID, nsc, &next)
		if err != nil {
			return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
		}
		n, err := casScript.Run(ctx, c, []string{w.credKey(u.ID)}, credID, raw, data).Int()
		if err != nil {
			return WebAuthnCredential{}, false, store.Unavailable(op, err)
		}
		if n == 1 {
			return nsc.WebAuthnCredential, ad.Flags.HasUserVerified(), nil
		}
		// Changed meanwhile (another sign-in, a rename) or deleted.
		raw, err = c.HGet(ctx, w.credKey(u.ID), credID).Result()
		if errors.Is(err, redis.Nil) {
			return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, ErrNoCredential)
		}
		if err != nil {
			return WebAuthnCredential{}, false, store.Unavailable(op, err)
		}
		if sc, err = parseStored(credID, raw); err != nil {
			return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
		}
		if cred, err = w.openCredential(u.ID, sc); err != nil {
			return WebAuthnCredential{}, false, fmt.Errorf("%s: %w", op, err)
		}
	}
	return WebAuthnCredential{}, false, fmt.Errorf("%s: credential %s changed %d times during the update", op, credID, casAttempts)
}

// List returns the WebAuthn credentials of userID, oldest first, without
// key material.
func (w *WebAuthn) List(ctx context.Context, userID string) ([]WebAuthnCredential, error) {
	const op = "mfa: list webauthn"
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	m, err := w.loadRaw(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	scs, err := parseAll(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]WebAuthnCredential, len(scs))
	for i, sc := range scs {
		out[i] = sc.WebAuthnCredential
	}
	return out, nil
}

// Rename names the credential credID of userID (ErrBadName for an
// empty or invalid name, ErrNoCredential when there is no such
// credential).
func (w *WebAuthn) Rename(ctx context.Context, userID, credID, name string) error {
	const op = "mfa: rename webauthn"
	if err := checkUserID(userID); err != nil {
		return err
	}
	name, err := cleanName(name)
	if err == nil && name == "" {
		err = fmt.Errorf("%w: empty", ErrBadName)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	c := w.f.store.Client()
	key := w.credKey(userID)
	for range casAttempts {
		raw, err := c.HGet(ctx, key, credID).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%s: %w", op, ErrNoCredential)
		}
		if err != nil {
			return store.Unavailable(op, err)
		}
		var doc map[string]json.RawMessage // keep every stored field as it is
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			return fmt.Errorf("%s: stored credential %s: %w", op, credID, err)
		}
		if doc["name"], err = json.Marshal(name); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		next, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		n, err := casScript.Run(ctx, c, []string{key}, credID, raw, next).Int()
		if err != nil {
			return store.Unavailable(op, err)
		}
		if n == 1 {
			return nil
		}
	}
	return fmt.Errorf("%s: credential %s changed %d times during the update", op, credID, casAttempts)
}

// Delete removes the credential credID of userID (ErrNoCredential if
// there is none). A ceremony begun before still lists it; its assertion
// is then refused.
func (w *WebAuthn) Delete(ctx context.Context, userID, credID string) error {
	const op = "mfa: delete webauthn"
	if err := checkUserID(userID); err != nil {
		return err
	}
	n, err := w.f.store.Client().HDel(ctx, w.credKey(userID), credID).Result()
	if err != nil {
		return store.Unavailable(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNoCredential)
	}
	return nil
}
