package mfa_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
)

// enroll begins and confirms a TOTP credential for user at the clock's
// time, with a code from oathtool; it returns the secret and credential.
func enroll(t *testing.T, f *mfa.Factors, clk *clock, user, name string) (string, mfa.Credential) {
	t.Helper()
	ctx := context.Background()
	e, err := f.BeginTOTP(ctx, user, "Warden", user)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := f.ConfirmTOTP(ctx, user, e.ID, name, oathCode(t, e.Secret, clk.Now()))
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	return e.Secret, cred
}

func TestTOTPFlow(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(1))
	rdb := st.Client()

	e, err := f.BeginTOTP(ctx, "u-1", "Warden", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !e.ExpiresAt.Equal(t0.Add(mfa.PendingTTL)) {
		t.Errorf("ExpiresAt %v", e.ExpiresAt)
	}
	pkey := st.Key("user:{u-1}:mfa:totp:pending:" + e.ID)
	if ttl := rdb.PTTL(ctx, pkey).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("pending enrollment TTL %v, want 10m", ttl)
	}
	// Nothing verifies before confirmation.
	_, err = f.VerifyTOTP(ctx, "u-1", oathCode(t, e.Secret, t0))
	wantErr(t, err, mfa.ErrNoCredential, "verify before confirm")

	// A wrong code leaves the enrollment pending.
	good := oathCode(t, e.Secret, t0)
	// wrong: good with its last digit changed, avoiding the codes of the
	// steps around t0 (±1 step is accepted).
	accepted := map[string]bool{good: true,
		oathCode(t, e.Secret, t0.Add(-mfa.Period)): true, oathCode(t, e.Secret, t0.Add(mfa.Period)): true}
	wrong := good
	for d := byte(1); accepted[wrong]; d++ {
		wrong = good[:len(good)-1] + string('0'+(good[len(good)-1]-'0'+d)%10)
	}
	_, err = f.ConfirmTOTP(ctx, "u-1", e.ID, "phone", wrong)
	wantErr(t, err, mfa.ErrWrongCode, "confirm with a wrong code")
	_, err = f.ConfirmTOTP(ctx, "u-1", "no-such-enrollment", "phone", good)
	wantErr(t, err, mfa.ErrNoCredential, "confirm unknown enrollment")
	if _, err := f.ConfirmTOTP(ctx, "u-1", e.ID, "", good); err == nil {
		t.Error("empty name accepted")
	}

	cred, err := f.ConfirmTOTP(ctx, "u-1", e.ID, "phone", good)
	if err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if cred.ID != e.ID || cred.Name != "phone" || !cred.CreatedAt.Equal(t0) {
		t.Errorf("credential %+v", cred)
	}
	if n := rdb.Exists(ctx, pkey).Val(); n != 0 {
		t.Error("pending enrollment left after confirmation")
	}
	_, err = f.ConfirmTOTP(ctx, "u-1", e.ID, "phone", good)
	wantErr(t, err, mfa.ErrNoCredential, "confirm twice")

	// The confirming code is used up, as is its whole step.
	_, err = f.VerifyTOTP(ctx, "u-1", good)
	wantErr(t, err, mfa.ErrReplayed, "replay of the confirming code")

	// Next step: accepted once, then refused as a replay.
	clk.Set(t0.Add(mfa.Period))
	code := oathCode(t, e.Secret, clk.Now())
	got, err := f.VerifyTOTP(ctx, "u-1", code[:3]+" "+code[3:])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got.ID != cred.ID || !got.LastUsedAt.Equal(clk.Now()) {
		t.Errorf("verified %+v", got)
	}
	_, err = f.VerifyTOTP(ctx, "u-1", code)
	wantErr(t, err, mfa.ErrReplayed, "replay")
	list, err := f.ListTOTP(ctx, "u-1")
	if err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(clk.Now()) || list[0].Name != "phone" {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// ±1 step accepted, ±2 refused, each step once.
	now := t0.Add(10 * mfa.Period)
	clk.Set(now)
	for _, c := range []struct {
		off  int
		want error
	}{{-2, mfa.ErrWrongCode}, {2, mfa.ErrWrongCode}, {-1, nil}, {1, nil}, {0, nil}, {-1, mfa.ErrReplayed}, {0, mfa.ErrReplayed}, {1, mfa.ErrReplayed}} {
		_, err := f.VerifyTOTP(ctx, "u-1", oathCode(t, e.Secret, now.Add(time.Duration(c.off)*mfa.Period)))
		if !errors.Is(err, c.want) {
			t.Errorf("code %+d steps off: got %v, want %v", c.off, err, c.want)
		}
	}
	// One step later the then-next step is now current: still used.
	clk.Set(now.Add(mfa.Period))
	_, err = f.VerifyTOTP(ctx, "u-1", oathCode(t, e.Secret, now.Add(mfa.Period)))
	wantErr(t, err, mfa.ErrReplayed, "step used as next step, then current")

	// Replay marks expire once their step cannot be accepted any more.
	ttl := rdb.PTTL(ctx, st.Key("user:{u-1}:mfa:totp:used:"+strconv.FormatInt(now.Unix()/30, 10))).Val()
	if ttl <= 90*time.Second || ttl > 120*time.Second {
		t.Errorf("replay mark TTL %v", ttl)
	}
	// Factors are durable.
	if ttl := rdb.TTL(ctx, st.Key("user:{u-1}:mfa:totp")).Val(); ttl != -1 {
		t.Errorf("credentials TTL %v, want none", ttl)
	}
	for _, c := range []string{"12345", "1234567", "abcdef", ""} {
		_, err := f.VerifyTOTP(ctx, "u-1", c)
		wantErr(t, err, mfa.ErrWrongCode, "malformed code "+c)
	}

	// The secret is stored only encrypted.
	assertNotStored(t, st, e.Secret)

	// Delete.
	wantErr(t, f.DeleteTOTP(ctx, "u-1", "nope"), mfa.ErrNoCredential, "delete unknown")
	if err := f.DeleteTOTP(ctx, "u-1", cred.ID); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(100 * mfa.Period))
	_, err = f.VerifyTOTP(ctx, "u-1", oathCode(t, e.Secret, clk.Now()))
	wantErr(t, err, mfa.ErrNoCredential, "verify after delete")
}

// TestTOTPSeveralCredentials: a code of any credential verifies and names
// that credential; the step is then used for the user as a whole.
func TestTOTPSeveralCredentials(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(1))
	s1, c1 := enroll(t, f, clk, "u-1", "phone")
	clk.Set(t0.Add(5 * mfa.Period))
	s2, c2 := enroll(t, f, clk, "u-1", "tablet")

	clk.Set(t0.Add(20 * mfa.Period))
	got, err := f.VerifyTOTP(ctx, "u-1", oathCode(t, s2, clk.Now()))
	if err != nil || got.ID != c2.ID {
		t.Fatalf("tablet: %+v, %v", got, err)
	}
	_, err = f.VerifyTOTP(ctx, "u-1", oathCode(t, s1, clk.Now()))
	wantErr(t, err, mfa.ErrReplayed, "other credential, same step")
	clk.Set(t0.Add(30 * mfa.Period))
	got, err = f.VerifyTOTP(ctx, "u-1", oathCode(t, s1, clk.Now()))
	if err != nil || got.ID != c1.ID {
		t.Fatalf("phone: %+v, %v", got, err)
	}
	list, err := f.ListTOTP(ctx, "u-1")
	if err != nil || len(list) != 2 || list[0].ID != c1.ID || list[1].ID != c2.ID {
		t.Fatalf("list %+v, %v", list, err)
	}
	// Another user's credentials are not this user's.
	_, err = f.VerifyTOTP(ctx, "u-2", oathCode(t, s1, t0.Add(31*mfa.Period)))
	wantErr(t, err, mfa.ErrNoCredential, "other user")
}

// TestTOTPConcurrentReplay: 8 replicas verifying one code at once accept
// it exactly once.
func TestTOTPConcurrentReplay(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(1))
	secret, _ := enroll(t, f, clk, "u-1", "phone")
	clk.Set(t0.Add(mfa.Period))
	code := oathCode(t, secret, clk.Now())
	var wg sync.WaitGroup
	errs := make([]error, 8)
	start := make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine is its own replica: its own Factors on the
			// same Redis.
			g, err := mfa.New(st, testKey(1), clk.Now, nil)
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			_, errs[i] = g.VerifyTOTP(ctx, "u-1", code)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, mfa.ErrReplayed):
			t.Errorf("concurrent verify: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of 8 concurrent verifications succeeded, want 1", ok)
	}
}

// TestTOTPCiphertextBound: a stored secret copied to another user, or to
// another credential ID, or read under another key, does not decrypt, and
// that is a failure, not a wrong code.
func TestTOTPCiphertextBound(t *testing.T) {
	ctx := context.Background()
	st := openRedis(t)
	rdb := st.Client()
	clk := &clock{now: t0}
	f := newFactors(t, st, clk, testKey(1))
	secret, cred := enroll(t, f, clk, "u-1", "phone")
	stored, err := rdb.HGet(ctx, st.Key("user:{u-1}:mfa:totp"), cred.ID).Result()
	if err != nil {
		t.Fatal(err)
	}

	// Another encryption key.
	other := newFactors(t, st, clk, testKey(2))
	clk.Set(t0.Add(5 * mfa.Period))
	if _, err := other.VerifyTOTP(ctx, "u-1", oathCode(t, secret, clk.Now())); err == nil || errors.Is(err, mfa.ErrWrongCode) {
		t.Errorf("another key: got %v, want a decryption failure", err)
	}
	// The right user and key work.
	clk.Set(t0.Add(6 * mfa.Period))
	if _, err := f.VerifyTOTP(ctx, "u-1", oathCode(t, secret, clk.Now())); err != nil {
		t.Errorf("owner: %v", err)
	}

	// Copied to another user (same credential ID), and moved to another
	// credential ID of the same user.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HSet(ctx, st.Key("user:{u-2}:mfa:totp"), cred.ID, stored).Err())
	must(rdb.HDel(ctx, st.Key("user:{u-1}:mfa:totp"), cred.ID).Err())
	must(rdb.HSet(ctx, st.Key("user:{u-1}:mfa:totp"), "other-id", stored).Err())
	for i, user := range []string{"u-2", "u-1"} {
		clk.Set(t0.Add(time.Duration(10+i) * mfa.Period))
		_, err := f.VerifyTOTP(ctx, user, oathCode(t, secret, clk.Now()))
		if err == nil || errors.Is(err, mfa.ErrWrongCode) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: copied ciphertext: got %v, want a decryption failure", user, err)
		}
	}
}

// assertNotStored checks that no value under the store's prefix contains s.
func assertNotStored(t *testing.T, st *store.Store, s string) {
	t.Helper()
	ctx := context.Background()
	rdb := st.Client()
	keys, err := rdb.Keys(ctx, st.Key("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys stored")
	}
	for _, k := range keys {
		var vals []string
		switch rdb.Type(ctx, k).Val() {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			vals = rdb.HVals(ctx, k).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		}
		for _, v := range vals {
			if strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
				t.Errorf("key %s holds a secret in the clear", k)
			}
		}
	}
}
