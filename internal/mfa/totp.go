package mfa

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

const (
	// Period is the TOTP time step (RFC 6238 section 4.1, X = 30 s).
	Period = 30 * time.Second
	// Skew is how many steps either side of the current one are accepted
	// (RFC 6238 section 5.2).
	Skew = 1
	// Digits is the length of a TOTP code.
	Digits = 6
	// secretSize is the length of a TOTP secret: 160 bits, the length of
	// the HMAC-SHA-1 output (RFC 4226 section 4, R6).
	secretSize = 20
	// qrSize is the width and height of the enrollment QR code, in pixels.
	qrSize = 256
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Enrollment is a TOTP secret being set up: shown once to the user (QR
// code, or the secret to type in), confirmed by a first correct code. Its
// String and LogValue hide the secret, so that logging one leaks nothing.
type Enrollment struct {
	// ID names the pending enrollment (BeginTOTP sets it; it becomes the
	// credential's ID on confirmation). Empty from NewTOTPEnrollment.
	ID string
	// Secret is the shared secret in unpadded base32 (RFC 4648).
	Secret string
	// URL is the otpauth://totp/ URL (Google Authenticator's Key Uri Format).
	URL string
	// QRCodePNG is URL as a QR code, a PNG image.
	QRCodePNG []byte
	// ExpiresAt is when the pending enrollment ends unless confirmed
	// (BeginTOTP sets it).
	ExpiresAt time.Time
}

// String hides the secret.
func (e Enrollment) String() string { return "mfa.Enrollment{ID:" + e.ID + "}" }

// GoString hides the secret (%#v).
func (e Enrollment) GoString() string { return e.String() }

// LogValue hides the secret.
func (e Enrollment) LogValue() slog.Value { return slog.GroupValue(slog.String("id", e.ID)) }

// NewTOTPEnrollment makes a new random TOTP secret (from crypto/rand) for
// account at issuer, with its otpauth URL and QR code: SHA-1, 6 digits,
// 30 seconds. issuer and account must be non-empty and without ':'.
func NewTOTPEnrollment(issuer, account string) (Enrollment, error) {
	return newTOTPEnrollment(rand.Reader, issuer, account)
}

func newTOTPEnrollment(random io.Reader, issuer, account string) (Enrollment, error) {
	if issuer == "" || account == "" || strings.Contains(issuer, ":") || strings.Contains(account, ":") {
		return Enrollment{}, errors.New("mfa: totp enrollment: issuer and account must be non-empty and without ':'")
	}
	secret := make([]byte, secretSize)
	if _, err := io.ReadFull(random, secret); err != nil {
		return Enrollment{}, fmt.Errorf("mfa: random: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		Secret:      secret,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: totp enrollment: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: totp enrollment: qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, fmt.Errorf("mfa: totp enrollment: png: %w", err)
	}
	return Enrollment{Secret: key.Secret(), URL: key.URL(), QRCodePNG: buf.Bytes()}, nil
}

// normalizeTOTP strips the spaces apps show in a code ("123 456") and
// reports whether what is left is Digits ASCII digits.
func normalizeTOTP(code string) (string, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != Digits {
		return "", false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// stepOf returns the RFC 6238 time step counter T of t.
func stepOf(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// matchStep returns the time step, among the current one and Skew either
// side (current first), whose code is code, comparing in constant time
// (hotp.ValidateCustom).
func matchStep(secret []byte, code string, now time.Time) (int64, bool) {
	s := b32.EncodeToString(secret)
	cur := stepOf(now)
	steps := []int64{cur}
	for i := int64(1); i <= Skew; i++ {
		steps = append(steps, cur-i, cur+i)
	}
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for _, st := range steps {
		if st < 0 {
			continue
		}
		if ok, err := hotp.ValidateCustom(code, uint64(st), s, opts); err == nil && ok {
			return st, true
		}
	}
	return 0, false
}

// usedTTL is how long a used step stays marked: a step's codes are
// accepted from the start of step-Skew to the end of step+Skew, so a mark
// set at any point of that window must live 2*Skew+1 periods; one period
// more absorbs clock differences between replicas and Redis.
const usedTTL = (2*Skew + 2) * Period
