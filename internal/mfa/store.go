package mfa

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// PendingTTL is how long an enrollment waits for its first correct code.
const PendingTTL = 10 * time.Minute

// maxName bounds a credential's name (it comes from the user).
const maxName = 64

// Credential is a confirmed TOTP authenticator of a user, without its
// secret.
type Credential struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// storedTOTP is a credential as stored: Secret is sealed (see seal) under
// the user ID and the credential ID.
type storedTOTP struct {
	Credential
	Secret string `json:"secret"`
}

// pendingTOTP is an enrollment waiting for confirmation; Secret is sealed
// under the user ID and the enrollment ID (the future credential ID).
type pendingTOTP struct {
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

func (f *Factors) totpKey(userID string) string { return f.store.Key("user:{" + userID + "}:mfa:totp") }
func (f *Factors) pendingKey(userID, id string) string {
	return f.store.Key("user:{" + userID + "}:mfa:totp:pending:" + id)
}
func (f *Factors) usedKey(userID string, step int64) string {
	return f.store.Key("user:{" + userID + "}:mfa:totp:used:" + strconv.FormatInt(step, 10))
}
func (f *Factors) recoveryKey(userID string) string {
	return f.store.Key("user:{" + userID + "}:mfa:rc")
}
func (f *Factors) saltKey(userID string) string {
	return f.store.Key("user:{" + userID + "}:mfa:rc:salt")
}

// confirmScript turns a pending enrollment into a credential once: only
// the caller whose DEL removed the pending key writes the credential.
// KEYS: pending, credentials hash; ARGV: credential ID, JSON.
var confirmScript = redis.NewScript(`
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return 1
end
return 0`)

// useScript marks a time step of a user used (SET NX, with its TTL) and,
// when the mark is new, records the credential's last use, only if the
// credential still exists, so that a verification racing a deletion does
// not bring the credential back: the replay mark and the last use in one
// round trip. Both keys carry the user's hash tag (one Cluster slot).
// KEYS: used mark, credentials hash; ARGV: the mark's TTL in ms,
// credential ID, JSON. Returns 0 when the step was already used.
var useScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return 1`)

// BeginTOTP makes a new TOTP secret for userID (account and issuer go into
// the otpauth URL) and keeps it, encrypted, as a pending enrollment for
// PendingTTL. The returned Enrollment is shown to the user once.
func (f *Factors) BeginTOTP(ctx context.Context, userID, issuer, account string) (Enrollment, error) {
	if err := checkUserID(userID); err != nil {
		return Enrollment{}, err
	}
	e, err := newTOTPEnrollment(f.random, issuer, account)
	if err != nil {
		return Enrollment{}, err
	}
	if e.ID, err = newID(f.random); err != nil {
		return Enrollment{}, err
	}
	secret, err := b32.DecodeString(e.Secret)
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: begin totp: %w", err)
	}
	sealed, err := f.seal(userID, e.ID, secret)
	if err != nil {
		return Enrollment{}, err
	}
	now := f.now()
	data, err := json.Marshal(pendingTOTP{Secret: sealed, CreatedAt: now})
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: begin totp: %w", err)
	}
	if err := f.store.Client().Set(ctx, f.pendingKey(userID, e.ID), data, PendingTTL).Err(); err != nil {
		return Enrollment{}, store.Unavailable("mfa: begin totp", err)
	}
	e.ExpiresAt = now.Add(PendingTTL)
	return e, nil
}

// ConfirmTOTP checks code against the pending enrollment enrollmentID of
// userID and, when it matches, makes the enrollment a credential called
// name (same ID). The code counts as used (ErrReplayed if its step already
// was). A wrong code leaves the enrollment pending (ErrWrongCode); an
// unknown or expired one is ErrNoCredential.
func (f *Factors) ConfirmTOTP(ctx context.Context, userID, enrollmentID, name, code string) (Credential, error) {
	if err := checkUserID(userID); err != nil {
		return Credential{}, err
	}
	if name == "" || len(name) > maxName || !utf8.ValidString(name) {
		return Credential{}, fmt.Errorf("mfa: confirm totp: name must be 1..%d bytes of UTF-8", maxName)
	}
	c := f.store.Client()
	pkey := f.pendingKey(userID, enrollmentID)
	data, err := c.Get(ctx, pkey).Bytes()
	if errors.Is(err, redis.Nil) {
		return Credential{}, fmt.Errorf("mfa: confirm totp: %w", ErrNoCredential)
	}
	if err != nil {
		return Credential{}, store.Unavailable("mfa: confirm totp", err)
	}
	var p pendingTOTP
	if err := json.Unmarshal(data, &p); err != nil {
		return Credential{}, fmt.Errorf("mfa: confirm totp: stored enrollment: %w", err)
	}
	secret, err := f.open(userID, enrollmentID, p.Secret)
	if err != nil {
		return Credential{}, fmt.Errorf("mfa: confirm totp: %w", err)
	}
	now := f.now()
	if err := f.check(ctx, userID, secret, code, now); err != nil {
		return Credential{}, fmt.Errorf("mfa: confirm totp: %w", err)
	}
	cred := Credential{ID: enrollmentID, Name: name, CreatedAt: now, LastUsedAt: now}
	// The secret is sealed under the same (user, ID) pair, so the pending
	// ciphertext carries over as it is.
	out, err := json.Marshal(storedTOTP{Credential: cred, Secret: p.Secret})
	if err != nil {
		return Credential{}, fmt.Errorf("mfa: confirm totp: %w", err)
	}
	n, err := confirmScript.Run(ctx, c, []string{pkey, f.totpKey(userID)}, enrollmentID, out).Int()
	if err != nil {
		return Credential{}, store.Unavailable("mfa: confirm totp", err)
	}
	if n != 1 {
		// Another replica confirmed it (or it expired) meanwhile.
		return Credential{}, fmt.Errorf("mfa: confirm totp: %w", ErrNoCredential)
	}
	return cred, nil
}

// check matches code against secret at now and, when it matches, marks its
// time step used for userID (SET NX): ErrWrongCode, ErrReplayed, or an
// outage.
func (f *Factors) check(ctx context.Context, userID string, secret []byte, code string, now time.Time) error {
	code, ok := normalizeTOTP(code)
	if !ok {
		return ErrWrongCode
	}
	step, ok := matchStep(secret, code, now)
	if !ok {
		return ErrWrongCode
	}
	return f.markUsed(ctx, userID, step)
}

// markUsed records that a code of step was accepted for userID; ErrReplayed
// if one already was.
func (f *Factors) markUsed(ctx context.Context, userID string, step int64) error {
	fresh, err := f.store.Client().SetNX(ctx, f.usedKey(userID, step), "1", usedTTL).Result()
	if err != nil {
		return store.Unavailable("mark used", err)
	}
	if !fresh {
		return ErrReplayed
	}
	return nil
}

// VerifyTOTP checks code against every TOTP credential of userID and
// returns the one it matched, with LastUsedAt updated. The code is then
// used up: it, and any other code of its time step, is refused for this
// user from now on (ErrReplayed). ErrNoCredential: the user has no TOTP
// credential.
func (f *Factors) VerifyTOTP(ctx context.Context, userID, code string) (Credential, error) {
	if err := checkUserID(userID); err != nil {
		return Credential{}, err
	}
	creds, err := f.loadTOTP(ctx, userID)
	if err != nil {
		return Credential{}, fmt.Errorf("mfa: verify totp: %w", err)
	}
	if len(creds) == 0 {
		return Credential{}, fmt.Errorf("mfa: verify totp: %w", ErrNoCredential)
	}
	norm, ok := normalizeTOTP(code)
	if !ok {
		return Credential{}, fmt.Errorf("mfa: verify totp: %w", ErrWrongCode)
	}
	now := f.now()
	var openErr error
	for _, sc := range creds {
		secret, err := f.open(userID, sc.ID, sc.Secret)
		if err != nil {
			openErr = fmt.Errorf("mfa: verify totp: credential %s: %w", sc.ID, err)
			continue
		}
		step, ok := matchStep(secret, norm, now)
		if !ok {
			continue
		}
		sc.LastUsedAt = now
		if resealed, ok, err := f.reseal(userID, sc.ID, sc.Secret, secret); err != nil {
			return Credential{}, err
		} else if ok {
			sc.Secret = resealed // under the current key (a rotation)
		}
		out, err := json.Marshal(sc)
		if err != nil {
			return Credential{}, fmt.Errorf("mfa: verify totp: %w", err)
		}
		// The step is used up and the last use recorded at once.
		fresh, err := useScript.Run(ctx, f.store.Client(), []string{f.usedKey(userID, step), f.totpKey(userID)},
			usedTTL.Milliseconds(), sc.ID, out).Int()
		if err != nil {
			return Credential{}, store.Unavailable("mfa: verify totp", err)
		}
		if fresh != 1 {
			return Credential{}, fmt.Errorf("mfa: verify totp: %w", ErrReplayed)
		}
		return sc.Credential, nil
	}
	if openErr != nil {
		// A secret that does not decrypt (wrong key, tampered data) is a
		// failure to report, not a wrong code.
		return Credential{}, openErr
	}
	return Credential{}, fmt.Errorf("mfa: verify totp: %w", ErrWrongCode)
}

// loadTOTP returns the stored credentials of userID, oldest first.
func (f *Factors) loadTOTP(ctx context.Context, userID string) ([]storedTOTP, error) {
	m, err := f.store.Client().HGetAll(ctx, f.totpKey(userID)).Result()
	if err != nil {
		return nil, store.Unavailable("load", err)
	}
	out := make([]storedTOTP, 0, len(m))
	for id, v := range m {
		var sc storedTOTP
		if err := json.Unmarshal([]byte(v), &sc); err != nil {
			return nil, fmt.Errorf("stored credential %s: %w", id, err)
		}
		sc.ID = id // the field name is authoritative (it is in the AAD)
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b storedTOTP) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// ListTOTP returns the TOTP credentials of userID, oldest first, without
// their secrets.
func (f *Factors) ListTOTP(ctx context.Context, userID string) ([]Credential, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	creds, err := f.loadTOTP(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("mfa: list totp: %w", err)
	}
	out := make([]Credential, len(creds))
	for i, sc := range creds {
		out[i] = sc.Credential
	}
	return out, nil
}

// DeleteTOTP removes the credential credID of userID (ErrNoCredential if
// there is none).
func (f *Factors) DeleteTOTP(ctx context.Context, userID, credID string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	n, err := f.store.Client().HDel(ctx, f.totpKey(userID), credID).Result()
	if err != nil {
		return store.Unavailable("mfa: delete totp", err)
	}
	if n == 0 {
		return fmt.Errorf("mfa: delete totp: %w", ErrNoCredential)
	}
	return nil
}

// RegenerateRecoveryCodes replaces every recovery code of userID with
// RecoveryCodes fresh ones, returned (formatted xxxxx-xxxxx) to be shown
// once; only their salted hashes are stored. The old codes stop working
// at once (one MULTI/EXEC: a concurrent use sees the old set or the new).
func (f *Factors) RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	codes, err := newRecoveryCodes(f.random)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, saltSize)
	if _, err := io.ReadFull(f.random, salt); err != nil {
		return nil, fmt.Errorf("mfa: random: %w", err)
	}
	hashes := make([]any, len(codes))
	for i, c := range codes {
		norm, _ := normalizeRecovery(c)
		hashes[i] = hashRecovery(salt, norm)
	}
	rk, sk := f.recoveryKey(userID), f.saltKey(userID)
	_, err = f.store.Client().TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, rk)
		p.Set(ctx, sk, salt, 0)
		p.SAdd(ctx, rk, hashes...)
		return nil
	})
	if err != nil {
		return nil, store.Unavailable("mfa: regenerate recovery codes", err)
	}
	return codes, nil
}

// UseRecoveryCode accepts code once for userID: SREM removes its hash, so
// of any number of concurrent uses exactly one succeeds. A wrong, malformed
// or already used code is ErrWrongCode; a user without recovery codes
// ErrNoCredential.
func (f *Factors) UseRecoveryCode(ctx context.Context, userID, code string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	c := f.store.Client()
	salt, err := c.Get(ctx, f.saltKey(userID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("mfa: use recovery code: %w", ErrNoCredential)
	}
	if err != nil {
		return store.Unavailable("mfa: use recovery code", err)
	}
	norm, ok := normalizeRecovery(code)
	if !ok {
		return fmt.Errorf("mfa: use recovery code: %w", ErrWrongCode)
	}
	// A regeneration between the GET and the SREM changes the set and the
	// salt together; the hash under the old salt then matches nothing, so
	// an old code is refused, as it should be.
	n, err := c.SRem(ctx, f.recoveryKey(userID), hashRecovery(salt, norm)).Result()
	if err != nil {
		return store.Unavailable("mfa: use recovery code", err)
	}
	if n != 1 {
		return fmt.Errorf("mfa: use recovery code: %w", ErrWrongCode)
	}
	return nil
}

// RecoveryCodesLeft returns how many unused recovery codes userID has.
func (f *Factors) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	if err := checkUserID(userID); err != nil {
		return 0, err
	}
	n, err := f.store.Client().SCard(ctx, f.recoveryKey(userID)).Result()
	if err != nil {
		return 0, store.Unavailable("mfa: recovery codes left", err)
	}
	return int(n), nil
}
