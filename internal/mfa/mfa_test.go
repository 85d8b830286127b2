package mfa_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
)

// t0 is the middle of a time step (step 59885040).
var t0 = time.Unix(1796551200+15, 0).UTC()

// clock is an injected clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, mfa.KeySize) }

// openRedis opens a store on the real Redis of the test environment
// (skips without it; fails under CI=true).
func openRedis(t *testing.T) *store.Store {
	t.Helper()
	testenv.Require(t, "REDIS_ADDR")
	return storetest.Open(t, "mfa")
}

func newFactors(t *testing.T, st *store.Store, clk *clock, key []byte) *mfa.Factors {
	t.Helper()
	f, err := mfa.New(st, key, clk.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// oathCode computes the TOTP code of secret at at with Debian's oathtool,
// an implementation independent of the one under test.
func oathCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	bin := testenv.Binary(t, "oathtool")
	out, err := exec.Command(bin, "--totp=SHA1", "--digits=6", "--time-step-size=30s", "-b",
		"--now", "@"+strconv.FormatInt(at.Unix(), 10), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if len(code) != 6 {
		t.Fatalf("oathtool printed %q", code)
	}
	return code
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestNewRejectsBadKey(t *testing.T) {
	st := openRedis(t)
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := mfa.New(st, make([]byte, n), nil, nil); err == nil {
			t.Errorf("key of %d bytes accepted", n)
		}
	}
	if _, err := mfa.New(nil, testKey(1), nil, nil); err == nil {
		t.Error("nil store accepted")
	}
}

func TestInvalidUserID(t *testing.T) {
	ctx := context.Background()
	f := newFactors(t, openRedis(t), &clock{now: t0}, testKey(1))
	for _, id := range []string{"", "a{b", "a}b"} {
		if _, err := f.BeginTOTP(ctx, id, "Warden", "alice"); err == nil {
			t.Errorf("BeginTOTP accepted user ID %q", id)
		}
		if _, err := f.RegenerateRecoveryCodes(ctx, id); err == nil {
			t.Errorf("RegenerateRecoveryCodes accepted user ID %q", id)
		}
	}
}

const outageTimeout = 300 * time.Millisecond

// TestOutage kills this test's own redis-server and checks that every
// operation fails with store.ErrUnavailable, never with a result (wrong
// code, no credential). (How long a failure takes is bounded by the
// store's timeouts; it is not asserted here: wall-clock checks fail on a
// busy machine.)
func TestOutage(t *testing.T) {
	ctx := context.Background()
	srv := testenv.OwnRedis(t)
	st, err := store.Open(ctx, store.RedisConfig{
		Addrs: []string{srv.Addr}, KeyPrefix: "mfa-outage:",
		DialTimeout: outageTimeout, ReadTimeout: outageTimeout, WriteTimeout: outageTimeout,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(1))

	e, err := f.BeginTOTP(ctx, "u-1", "Warden", "alice")
	if err != nil {
		t.Fatal(err)
	}
	pending, err := f.BeginTOTP(ctx, "u-1", "Warden", "alice")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := f.ConfirmTOTP(ctx, "u-1", e.ID, "phone", oathCode(t, e.Secret, t0))
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.RegenerateRecoveryCodes(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(mfa.Period))
	next := oathCode(t, e.Secret, clk.Now())

	srv.Kill()

	ops := []struct {
		name string
		op   func() error
	}{
		{"BeginTOTP", func() error { _, err := f.BeginTOTP(ctx, "u-1", "Warden", "alice"); return err }},
		{"ConfirmTOTP", func() error {
			_, err := f.ConfirmTOTP(ctx, "u-1", pending.ID, "tablet", oathCode(t, pending.Secret, clk.Now()))
			return err
		}},
		{"VerifyTOTP", func() error { _, err := f.VerifyTOTP(ctx, "u-1", next); return err }},
		{"ListTOTP", func() error { _, err := f.ListTOTP(ctx, "u-1"); return err }},
		{"DeleteTOTP", func() error { return f.DeleteTOTP(ctx, "u-1", cred.ID) }},
		{"RegenerateRecoveryCodes", func() error { _, err := f.RegenerateRecoveryCodes(ctx, "u-1"); return err }},
		{"UseRecoveryCode", func() error { return f.UseRecoveryCode(ctx, "u-1", codes[0]) }},
		{"RecoveryCodesLeft", func() error { _, err := f.RecoveryCodesLeft(ctx, "u-1"); return err }},
	}
	for _, o := range ops {
		err := o.op()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: got %v, want store.ErrUnavailable", o.name, err)
		}
		for _, res := range []error{mfa.ErrWrongCode, mfa.ErrReplayed, mfa.ErrNoCredential} {
			if errors.Is(err, res) {
				t.Errorf("%s: an outage reads as %v", o.name, res)
			}
		}
	}
}
