package mfa_test

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"image/png"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/mfa"
)

func TestNewTOTPEnrollment(t *testing.T) {
	e, err := mfa.NewTOTPEnrollment("Warden", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(secret) != 20 {
		t.Fatalf("secret %d bytes, err %v; want 20 bytes of base32", len(secret), err)
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Warden:alice@example.org" {
		t.Errorf("URL %s://%s%s", u.Scheme, u.Host, u.Path)
	}
	for k, want := range map[string]string{"secret": e.Secret, "issuer": "Warden", "algorithm": "SHA1", "digits": "6", "period": "30"} {
		if got := q.Get(k); got != want {
			t.Errorf("URL %s = %q, want %q", k, got, want)
		}
	}
	img, err := png.Decode(bytes.NewReader(e.QRCodePNG))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("QR code is %v", b)
	}
	// The secret never shows when an Enrollment is printed or logged.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("enrolled", "enrollment", e)
	for _, s := range []string{fmt.Sprint(e), fmt.Sprintf("%v %+v %#v %s", e, e, e, e), buf.String()} {
		if strings.Contains(s, e.Secret) {
			t.Errorf("secret printed: %s", s)
		}
	}

	e2, err := mfa.NewTOTPEnrollment("Warden", "alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if e2.Secret == e.Secret {
		t.Error("two enrollments share a secret")
	}
}

func TestNewTOTPEnrollmentRejects(t *testing.T) {
	for _, c := range [][2]string{{"", "alice"}, {"Warden", ""}, {"War:den", "alice"}, {"Warden", "al:ice"}} {
		if _, err := mfa.NewTOTPEnrollment(c[0], c[1]); err == nil {
			t.Errorf("issuer %q account %q accepted", c[0], c[1])
		}
	}
}
