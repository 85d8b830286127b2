package mfa_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wardenidp/warden/internal/mfa"
)

var codeShape = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)

func TestRecoveryCodes(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	rdb := st.Client()
	f := newFactors(t, st, &clock{now: t0}, testKey(1))

	err := f.UseRecoveryCode(ctx, "u-1", "abcde-fghjk")
	wantErr(t, err, mfa.ErrNoCredential, "use before any were made")
	if n, err := f.RecoveryCodesLeft(ctx, "u-1"); err != nil || n != 0 {
		t.Fatalf("left before: %d, %v", n, err)
	}

	codes, err := f.RegenerateRecoveryCodes(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != mfa.RecoveryCodes {
		t.Fatalf("%d codes", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !codeShape.MatchString(c) {
			t.Errorf("code %q has the wrong shape", c)
		}
		if seen[c] {
			t.Errorf("duplicate code")
		}
		seen[c] = true
	}
	if n, err := f.RecoveryCodesLeft(ctx, "u-1"); err != nil || n != 10 {
		t.Fatalf("left: %d, %v", n, err)
	}
	// Stored hashed only, durably.
	for _, c := range codes {
		assertNotStored(t, st, strings.ReplaceAll(c, "-", ""))
		assertNotStored(t, st, c)
	}
	for _, k := range []string{st.Key("user:{u-1}:mfa:rc"), st.Key("user:{u-1}:mfa:rc:salt")} {
		if ttl := rdb.TTL(ctx, k).Val(); ttl != -1 {
			t.Errorf("%s TTL %v, want none", k, ttl)
		}
	}

	// Malformed and wrong codes.
	for _, c := range []string{"", "abcde", "abcde-fghjk-", "uuuuu-uuuuu", "abcde-fghj!"} {
		wantErr(t, f.UseRecoveryCode(ctx, "u-1", c), mfa.ErrWrongCode, "malformed "+c)
	}

	// Each code once; typed sloppily (upper case, no dash, O for 0, I/L
	// for 1) still counts.
	for i, c := range codes {
		typed := c
		switch i % 3 {
		case 1:
			typed = strings.ToUpper(strings.ReplaceAll(c, "-", ""))
		case 2:
			typed = strings.NewReplacer("0", "O", "1", "l").Replace(" " + c + " ")
		}
		if err := f.UseRecoveryCode(ctx, "u-1", typed); err != nil {
			t.Fatalf("code %d (typed %d): %v", i, i%3, err)
		}
		wantErr(t, f.UseRecoveryCode(ctx, "u-1", c), mfa.ErrWrongCode, "second use")
		if n, err := f.RecoveryCodesLeft(ctx, "u-1"); err != nil || n != 9-i {
			t.Fatalf("left after %d: %d, %v", i+1, n, err)
		}
	}
	// Codes belong to their user.
	other, err := f.RegenerateRecoveryCodes(ctx, "u-2")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.UseRecoveryCode(ctx, "u-3", other[0]), mfa.ErrNoCredential, "other user's code")
	if _, err := f.RegenerateRecoveryCodes(ctx, "u-3"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.UseRecoveryCode(ctx, "u-3", other[0]), mfa.ErrWrongCode, "other user's code")
}

func TestRecoveryRegenerate(t *testing.T) {
	ctx := context.Background()
	f := newFactors(t, openRedis(t), &clock{now: t0}, testKey(1))
	old, err := f.RegenerateRecoveryCodes(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.UseRecoveryCode(ctx, "u-1", old[0]); err != nil {
		t.Fatal(err)
	}
	fresh, err := f.RegenerateRecoveryCodes(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.RecoveryCodesLeft(ctx, "u-1"); err != nil || n != 10 {
		t.Fatalf("left after regenerate: %d, %v", n, err)
	}
	for _, c := range old[1:] {
		wantErr(t, f.UseRecoveryCode(ctx, "u-1", c), mfa.ErrWrongCode, "old code after regenerate")
	}
	for _, c := range fresh {
		if err := f.UseRecoveryCode(ctx, "u-1", c); err != nil {
			t.Fatalf("fresh code: %v", err)
		}
	}
}

// TestRecoveryConcurrentUse: 8 replicas using one code at once: exactly
// one succeeds.
func TestRecoveryConcurrentUse(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	f := newFactors(t, st, &clock{now: t0}, testKey(1))
	codes, err := f.RegenerateRecoveryCodes(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		code := codes[round]
		var wg sync.WaitGroup
		errs := make([]error, 8)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, err := mfa.New(st, testKey(1), nil, nil)
				if err != nil {
					errs[i] = err
					return
				}
				<-start
				errs[i] = g.UseRecoveryCode(ctx, "u-1", code)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, mfa.ErrWrongCode):
				t.Errorf("concurrent use: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d of 8 concurrent uses succeeded, want 1", round, ok)
		}
	}
	if n, err := f.RecoveryCodesLeft(ctx, "u-1"); err != nil || n != 5 {
		t.Errorf("left: %d, %v", n, err)
	}
}
