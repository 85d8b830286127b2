package mfa

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
)

// The TOTP check, measured (docs/benchmarks.md, "Multi-factor sign-in"):
//
//	go test -run '^$' -bench 'MatchStep' ./internal/mfa/
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench 'MatchStep|VerifyTOTP' -benchtime 20000x ./internal/mfa/
//
// The codes are generated with pquerna/otp's totp.GenerateCodeCustom: they
// are the inputs of a benchmark; that the check is right is tested against
// oathtool (store_test.go, ui_test.go).

// benchTOTPSecret is a 160-bit secret (base32: 32 characters).
var benchTOTPSecret = bytes.Repeat([]byte{0x5a, 0xc3, 0x11, 0x7e}, secretSize/4)

// benchTOTPAt is the middle of a time step.
var benchTOTPAt = time.Unix(1796551200+15, 0).UTC()

func benchTOTPCode(b *testing.B, secret []byte, at time.Time) string {
	b.Helper()
	code, err := totp.GenerateCodeCustom(b32.EncodeToString(secret), at,
		totp.ValidateOpts{Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.Fatal(err)
	}
	return code
}

// BenchmarkMatchStep is the code check alone (no Redis): the current step
// (one HMAC-SHA-1), the step after it (checked last of the three: three
// HMACs), and a wrong code (three HMACs, no match).
func BenchmarkMatchStep(b *testing.B) {
	cur := benchTOTPCode(b, benchTOTPSecret, benchTOTPAt)
	next := benchTOTPCode(b, benchTOTPSecret, benchTOTPAt.Add(Period))
	prev := benchTOTPCode(b, benchTOTPSecret, benchTOTPAt.Add(-Period))
	wrong := "000000" // a code of none of the three steps
	for i := 1; wrong == cur || wrong == next || wrong == prev; i++ {
		wrong = fmt.Sprintf("%06d", i)
	}
	for _, bc := range []struct {
		name, code string
		ok         bool
	}{{"current", cur, true}, {"next_step", next, true}, {"wrong", wrong, false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := matchStep(benchTOTPSecret, bc.code, benchTOTPAt); ok != bc.ok {
					b.Fatalf("matchStep(%s) = %v", bc.name, ok)
				}
			}
		})
	}
}

// benchClock is an injected clock a benchmark moves.
type benchClock struct{ ns atomic.Int64 }

func (c *benchClock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// BenchmarkVerifyTOTP is Factors.VerifyTOTP against the real redis-server:
// HGETALL of the user's credentials, AES-GCM open of the secret, the code
// check, and one script that sets the (user, step) replay mark (SET NX)
// and records the last use. Each (user, step) is accepted once, so every
// iteration moves the Factors' clock one Period on and gives the code of
// that step. "serial" is one caller (the latency of a check: two round
// trips); "parallel" is 32 callers, each with a user and a Factors (and so
// a clock) of its own on one store (throughput: ns/op is wall time per
// check, all callers together).
func BenchmarkVerifyTOTP(b *testing.B) {
	testenv.Require(b, "REDIS_ADDR")
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, KeySize)
	secret := b32.EncodeToString(benchTOTPSecret)
	// caller is one user checking codes, with its own clock.
	type caller struct {
		f   *Factors
		clk *benchClock
		id  string
	}
	setup := func(b *testing.B, n int) []caller {
		st := storetest.Open(b, "mfa-bench")
		out := make([]caller, n)
		for i := range out {
			c := caller{clk: &benchClock{}, id: fmt.Sprintf("bench-user-%d", i)}
			c.clk.ns.Store(benchTOTPAt.UnixNano())
			var err error
			if c.f, err = New(st, key, c.clk.now, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := c.f.ImportTOTP(ctx, c.id, "bench", secret); err != nil {
				b.Fatal(err)
			}
			out[i] = c
		}
		b.Cleanup(func() {
			for _, c := range out {
				_, _ = c.f.Reset(ctx, c.id)
			}
		})
		return out
	}
	// codes[j] is the code of the j-th step after benchTOTPAt's: the one a
	// caller gives at its j-th check, its clock moved on j Periods.
	codes := func(b *testing.B) []string {
		out := make([]string, b.N+1)
		for j := range out {
			out[j] = benchTOTPCode(b, benchTOTPSecret, benchTOTPAt.Add(time.Duration(j)*Period))
		}
		return out
	}
	check := func(c caller, j int, code string) error {
		c.clk.ns.Store(benchTOTPAt.Add(time.Duration(j) * Period).UnixNano())
		_, err := c.f.VerifyTOTP(ctx, c.id, code)
		return err
	}

	b.Run("serial", func(b *testing.B) {
		c := setup(b, 1)[0]
		cs := codes(b)
		b.ReportAllocs()
		b.ResetTimer()
		for j := 1; j <= b.N; j++ {
			if err := check(c, j, cs[j]); err != nil {
				b.Fatalf("check %d: %v", j, err)
			}
		}
	})

	// redis-ping is one round trip to the same Redis (as in
	// BenchmarkWebAuthnFinishLogin): the yardstick of the machine at the
	// moment (figures move 3-4x with the load of a shared machine).
	b.Run("redis-ping", func(b *testing.B) {
		rdb := storetest.Open(b, "mfa-bench").Client()
		for b.Loop() {
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("parallel", func(b *testing.B) {
		const clients = 32
		b.SetParallelism((clients + 1) / 2) // RunParallel starts parallelism × GOMAXPROCS goroutines
		callers := setup(b, (clients+1)/2*runtime.GOMAXPROCS(0))
		cs := codes(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c := callers[next.Add(1)-1]
			for j := 1; pb.Next(); j++ {
				if err := check(c, j, cs[j]); err != nil {
					b.Errorf("%s check %d: %v", c.id, j, err)
					return
				}
			}
		})
	})
}
