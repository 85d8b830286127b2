package mfa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// webauthnKey is the hash of a user's WebAuthn credentials (webauthn.go).
func (f *Factors) webauthnKey(userID string) string {
	return f.store.Key("user:{" + userID + "}:mfa:webauthn")
}

// graceKey remembers when a user who must use MFA was first asked to set
// one up (Config.EnrollGrace).
func (f *Factors) graceKey(userID string) string {
	return f.store.Key("user:{" + userID + "}:mfa:grace")
}

// Counts is how many factors of each kind a user has.
type Counts struct {
	TOTP, WebAuthn, Recovery int
}

// Count returns the user's factor counts in one round trip.
func (f *Factors) Count(ctx context.Context, userID string) (Counts, error) {
	if err := checkUserID(userID); err != nil {
		return Counts{}, err
	}
	pipe := f.store.Client().Pipeline()
	t := pipe.HLen(ctx, f.totpKey(userID))
	w := pipe.HLen(ctx, f.webauthnKey(userID))
	r := pipe.SCard(ctx, f.recoveryKey(userID))
	if _, err := pipe.Exec(ctx); err != nil {
		return Counts{}, store.Unavailable("mfa: count factors", err)
	}
	return Counts{TOTP: int(t.Val()), WebAuthn: int(w.Val()), Recovery: int(r.Val())}, nil
}

// RenameTOTP renames the TOTP credential credID of userID.
func (f *Factors) RenameTOTP(ctx context.Context, userID, credID, name string) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	name, err := credentialName(name, "Authenticator app")
	if err != nil {
		return err
	}
	c := f.store.Client()
	key := f.totpKey(userID)
	// WATCH: a concurrent use (LastUsedAt) or delete is not overwritten.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		raw, err := tx.HGet(ctx, key, credID).Bytes()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("mfa: rename totp: %w", ErrNoCredential)
		}
		if err != nil {
			return store.Unavailable("mfa: rename totp", err)
		}
		var sc storedTOTP
		if err := json.Unmarshal(raw, &sc); err != nil {
			return fmt.Errorf("mfa: rename totp: stored credential: %w", err)
		}
		sc.Name = name
		val, err := json.Marshal(sc)
		if err != nil {
			return fmt.Errorf("mfa: rename totp: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, credID, val)
			return nil
		})
		if err != nil && !errors.Is(err, redis.TxFailedErr) {
			return store.Unavailable("mfa: rename totp", err)
		}
		return err
	}, key)
	if errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("mfa: rename totp: changed meanwhile, try again: %w", ErrNoCredential)
	}
	return err
}

// Reset removes every factor of userID: TOTP, WebAuthn, recovery codes,
// pending enrolments are left to expire. It returns the counts removed.
func (f *Factors) Reset(ctx context.Context, userID string) (Counts, error) {
	n, err := f.Count(ctx, userID)
	if err != nil {
		return Counts{}, err
	}
	_, err = f.store.Client().TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, f.totpKey(userID), f.webauthnKey(userID), f.recoveryKey(userID),
			f.saltKey(userID), f.graceKey(userID))
		return nil
	})
	if err != nil {
		return Counts{}, store.Unavailable("mfa: reset factors", err)
	}
	return n, nil
}

// GraceStart returns when userID was first asked to set up a factor,
// recording now if never (the grace period counts from there). The mark
// lives ttl (the grace period plus a margin) and goes with Reset.
func (f *Factors) GraceStart(ctx context.Context, userID string, ttl time.Duration) (time.Time, error) {
	if err := checkUserID(userID); err != nil {
		return time.Time{}, err
	}
	now := f.now().UTC()
	c := f.store.Client()
	ok, err := c.SetNX(ctx, f.graceKey(userID), now.Unix(), ttl).Result()
	if err != nil {
		return time.Time{}, store.Unavailable("mfa: grace start", err)
	}
	if ok {
		return now, nil
	}
	sec, err := c.Get(ctx, f.graceKey(userID)).Int64()
	if errors.Is(err, redis.Nil) { // expired between the two calls
		return now, nil
	}
	if err != nil {
		return time.Time{}, store.Unavailable("mfa: grace start", err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// ErrBadName: a credential name that is too long, not UTF-8, or holds
// control characters (a result: the user retypes it).
var ErrBadName = errors.New("mfa: a name has at most 64 characters, without control characters")

// credentialName trims name and checks it; an empty one becomes def.
func credentialName(name, def string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return def, nil
	}
	if len(name) > maxName || !utf8.ValidString(name) {
		return "", ErrBadName
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", ErrBadName
		}
	}
	return name, nil
}

// CredentialName is credentialName for callers outside the package: the
// name to store for what the user typed, or ErrBadName.
func CredentialName(name, def string) (string, error) { return credentialName(name, def) }

// ResumeTOTP returns the pending enrollment enrollmentID of userID again
// (its secret, URL and QR code), e.g. to show it once more after a wrong
// first code; ErrNoCredential when it is gone or expired.
func (f *Factors) ResumeTOTP(ctx context.Context, userID, enrollmentID, issuer, account string) (Enrollment, error) {
	if err := checkUserID(userID); err != nil {
		return Enrollment{}, err
	}
	pkey := f.pendingKey(userID, enrollmentID)
	c := f.store.Client()
	pipe := c.Pipeline()
	get := pipe.Get(ctx, pkey)
	ttl := pipe.PTTL(ctx, pkey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Enrollment{}, store.Unavailable("mfa: resume totp", err)
	}
	data, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return Enrollment{}, fmt.Errorf("mfa: resume totp: %w", ErrNoCredential)
	}
	var p pendingTOTP
	if err := json.Unmarshal(data, &p); err != nil {
		return Enrollment{}, fmt.Errorf("mfa: resume totp: stored enrollment: %w", err)
	}
	secret, err := f.open(userID, enrollmentID, p.Secret)
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: resume totp: %w", err)
	}
	e, err := newTOTPEnrollment(bytes.NewReader(secret), issuer, account)
	if err != nil {
		return Enrollment{}, err
	}
	e.ID, e.ExpiresAt = enrollmentID, f.now().Add(ttl.Val())
	return e, nil
}

// ImportTOTP stores a TOTP credential with a given secret (unpadded
// base32) for userID, unless the user already has one called name. It is
// for dev mode's demo factor, whose secret is printed at start; a real
// factor is always made by BeginTOTP and confirmed with a code.
func (f *Factors) ImportTOTP(ctx context.Context, userID, name, secretB32 string) (Credential, error) {
	if err := checkUserID(userID); err != nil {
		return Credential{}, err
	}
	secret, err := b32.DecodeString(strings.ToUpper(strings.TrimSpace(secretB32)))
	if err != nil || len(secret) < 10 {
		return Credential{}, errors.New("mfa: import totp: the secret must be base32 of at least 80 bits")
	}
	have, err := f.ListTOTP(ctx, userID)
	if err != nil {
		return Credential{}, err
	}
	for _, c := range have {
		if c.Name == name {
			return c, nil
		}
	}
	id, err := newID(f.random)
	if err != nil {
		return Credential{}, err
	}
	sealed, err := f.seal(userID, id, secret)
	if err != nil {
		return Credential{}, err
	}
	cred := Credential{ID: id, Name: name, CreatedAt: f.now().UTC()}
	val, err := json.Marshal(storedTOTP{Credential: cred, Secret: sealed})
	if err != nil {
		return Credential{}, fmt.Errorf("mfa: import totp: %w", err)
	}
	if err := f.store.Client().HSet(ctx, f.totpKey(userID), id, val).Err(); err != nil {
		return Credential{}, store.Unavailable("mfa: import totp", err)
	}
	return cred, nil
}
