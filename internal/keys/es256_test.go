package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestES256RingBesideRSA: the ES256 ring lives beside the RSA ring in the
// same directory without changing a byte of it, is empty until made, and
// rotates and promotes as the RSA ring does; TokenKeys publishes both.
func TestES256RingBesideRSA(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	ctx := context.Background()
	rsaRing := mustOpen(t, dir, clk)
	rsaManifest, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	ecStore, err := ForAlg(Dir(dir), AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ForAlg(Dir(dir), "HS256"); err == nil {
		t.Fatal("ForAlg accepted HS256")
	}

	// not made yet: LoadStore is empty, and signing with it is refused
	lazy, err := LoadStore(ctx, ecStore, Config{}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if lazy.Current().Private() != nil || len(lazy.Published()) != 0 || string(lazy.JWKS()) != `{"keys":[]}` {
		t.Fatalf("empty ring: current %v, published %s, jwks %s", lazy.Current().ID, ids(lazy.Published()), lazy.JWKS())
	}
	if _, err := NewTokenKeys(AlgES256, rsaRing, lazy); err == nil {
		t.Fatal("NewTokenKeys signs with an empty ES256 ring")
	}
	if _, err := ListStore(ctx, ecStore); !errors.Is(err, ErrNoRing) {
		t.Fatalf("ListStore of no ES256 ring: %v", err)
	}

	ec, err := OpenStore(ctx, ecStore, Config{}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cur := ec.Current()
	if cur.Alg != AlgES256 || cur.EC == nil || cur.Key != nil || cur.Bits() != 256 || ec.Alg() != AlgES256 {
		t.Fatalf("ES256 current key: alg %s, bits %d", cur.Alg, cur.Bits())
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest-es256.json")); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, manifestFile)); !bytes.Equal(after, rsaManifest) {
		t.Fatal("making the ES256 ring changed manifest.json")
	}
	// the lazy ring takes it in at its next reload
	if changed, err := lazy.reload(ctx); !changed || err != nil || lazy.Current().ID != cur.ID {
		t.Fatalf("reload: %v %v %s", changed, err, lazy.Current().ID)
	}
	// an RSA rotation keeps the ES256 files, and the reverse
	if _, err := Rotate(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := Promote(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	next, err := RotateStore(ctx, ecStore, Config{}, Options{Now: clk.Now})
	if err != nil || next.Alg != AlgES256 {
		t.Fatalf("rotate ES256: %v %s", err, next.Alg)
	}
	if _, err := RotateStore(ctx, ecStore, Config{}, Options{Now: clk.Now}); !errors.Is(err, ErrNextExists) {
		t.Fatalf("second rotate: %v", err)
	}
	clk.Add(time.Minute)
	if p, err := PromoteStore(ctx, ecStore, Config{}, Options{Now: clk.Now}); err != nil || p.ID != next.ID {
		t.Fatalf("promote ES256: %v", err)
	}
	if _, err := rsaRing.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if ec.Current().ID != next.ID || len(ec.Published()) != 2 || len(rsaRing.Published()) != 2 {
		t.Fatalf("after rotations: ES256 %s, RSA %s", ids(ec.All()), ids(rsaRing.All()))
	}
	for _, r := range []*Ring{rsaRing, ec} {
		for _, s := range r.All() {
			for _, f := range []string{"key-" + s.ID + ".pem", "cert-" + s.ID + ".pem"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s ring lost %s: %v", r.Alg(), f, err)
				}
			}
		}
	}

	// TokenKeys: the chosen ring signs, both are published with their alg
	for _, alg := range []string{AlgRS256, AlgES256} {
		tk, err := NewTokenKeys(alg, rsaRing, ec)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Alg() != alg || tk.Current().Alg != alg {
			t.Fatalf("%s: signs with %s", alg, tk.Current().Alg)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(tk.JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 4 || len(tk.Published()) != 4 {
			t.Fatalf("JWKS has %d keys, want 4: %s", len(set.Keys), tk.JWKS())
		}
		for _, k := range set.Keys {
			_, isEC := k.Key.(*ecdsa.PublicKey)
			if k.Use != "sig" || (k.Algorithm == AlgES256) != isEC || (k.Algorithm != AlgES256 && k.Algorithm != AlgRS256) {
				t.Fatalf("JWK %s: alg %s use %s key %T", k.KeyID, k.Algorithm, k.Use, k.Key)
			}
			if tp, err := k.Thumbprint(crypto.SHA256); err != nil || base64.RawURLEncoding.EncodeToString(tp) != k.KeyID {
				t.Fatalf("JWK %s: kid is not the RFC 7638 thumbprint (%v)", k.KeyID, err)
			}
		}
	}
	if _, err := NewTokenKeys("PS256", rsaRing, ec); err == nil {
		t.Fatal("NewTokenKeys accepted PS256")
	}
	if _, err := NewTokenKeys(AlgRS256, ec, nil); err == nil {
		t.Fatal("NewTokenKeys took the ES256 ring as the RSA one")
	}
}

// TestES256RingRejectsRSAKey: a manifest-es256.json naming an RSA key (or
// manifest.json naming an EC key) does not load.
func TestES256RingRejectsRSAKey(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	mustOpen(t, dir, clk)
	raw, _ := os.ReadFile(filepath.Join(dir, manifestFile))
	if err := os.WriteFile(filepath.Join(dir, "manifest-es256.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	ecStore, _ := ForAlg(Dir(dir), AlgES256)
	if _, err := OpenStore(context.Background(), ecStore, Config{}, Options{}); err == nil || !strings.Contains(err.Error(), "RS256 key, not ES256") {
		t.Fatalf("an RSA key in the ES256 ring: %v", err)
	}

	dir2 := t.TempDir()
	ec2, _ := ForAlg(Dir(dir2), AlgES256)
	if _, err := OpenStore(context.Background(), ec2, Config{}, Options{}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir2, "manifest-es256.json"))
	os.WriteFile(filepath.Join(dir2, manifestFile), raw, 0o600)
	if _, err := Open(dir2, Config{}, Options{}); err == nil || !strings.Contains(err.Error(), "ES256 key, not RS256") {
		t.Fatalf("an EC key in the RSA ring: %v", err)
	}
}

// TestES256RedisReplicas: replicas that follow an ES256 ring not yet made
// in Redis take it in when one process makes it, and follow its rotation
// and promotion; the RSA ring's Redis value is untouched throughout.
func TestES256RedisReplicas(t *testing.T) {
	c, key := testRedis(t)
	t.Cleanup(func() { c.Del(context.Background(), key+":es256") })
	ctx := context.Background()
	clk := newClock()
	cfg := Config{Store: StoreRedis, EncryptionKeyFile: "-"}
	rsaRing := openRedis(t, redisStore(t, c, key, kek(3)), clk)
	rsaSealed := mustGet(t, c, key)
	ecStore := func() Store {
		s, err := ForAlg(redisStore(t, c, key, kek(3)), AlgES256)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := ecStore().String(); got != "redis key "+key+":es256" {
		t.Fatalf("ES256 store %q", got)
	}
	const n = 4
	replicas := make([]*Ring, n)
	for i := range replicas {
		r, err := LoadStore(ctx, ecStore(), cfg, Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = r
	}
	// an empty ring's reload must not "restore" a missing ring
	for _, r := range replicas {
		if changed, err := r.reload(ctx); changed || err != nil {
			t.Fatalf("reload of no ring: %v %v", changed, err)
		}
	}
	if n, _ := c.Exists(ctx, key+":es256").Result(); n != 0 {
		t.Fatal("a reload of an empty ring wrote to Redis")
	}
	// several processes make it at once: one ring wins
	made := make([]*Ring, 3)
	var wg sync.WaitGroup
	for i := range made {
		wg.Go(func() {
			r, err := OpenStore(ctx, ecStore(), cfg, Options{Now: clk.Now})
			if err != nil {
				t.Error(err)
				return
			}
			made[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	first := made[0].Current()
	if first.Alg != AlgES256 || made[1].Current().ID != first.ID || made[2].Current().ID != first.ID {
		t.Fatalf("concurrent creation: %s %s %s", first.ID, made[1].Current().ID, made[2].Current().ID)
	}
	if raw := mustGet(t, c, key+":es256"); bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte(first.ID)) {
		t.Fatal("the ES256 ring is in Redis in the clear")
	}
	follow := func(wantCur string, wantPub int) {
		t.Helper()
		for i, r := range replicas {
			if _, err := r.reload(ctx); err != nil {
				t.Fatal(err)
			}
			if r.Current().ID != wantCur || len(r.Published()) != wantPub {
				t.Fatalf("replica %d: current %s (want %s), published %s", i, r.Current().ID, wantCur, ids(r.Published()))
			}
		}
	}
	follow(first.ID, 1)
	next, err := RotateStore(ctx, ecStore(), cfg, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	follow(first.ID, 2)
	clk.Add(time.Minute)
	if _, err := PromoteStore(ctx, ecStore(), cfg, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	follow(next.ID, 2)
	clk.Add(DefaultPublishPrevious)
	follow(next.ID, 1)
	if !bytes.Equal(mustGet(t, c, key), rsaSealed) || rsaRing.Current().Alg != AlgRS256 {
		t.Fatal("the ES256 ring's changes touched the RSA ring in Redis")
	}
	// a ring copied from the directory keeps its ES256 key too
	dir := t.TempDir()
	dirEC, _ := ForAlg(Dir(dir), AlgES256)
	src, err := OpenStore(ctx, dirEC, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, key2 := testRedis(t)
	t.Cleanup(func() { c.Del(context.Background(), key2+":es256") })
	rs, err := NewRedisStore(c, key2, kek(3), nil, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	imported, err := OpenStore(ctx, rs.withAlg(AlgES256), cfg, Options{})
	if err != nil || imported.Current().ID != src.Current().ID {
		t.Fatalf("import: %v", err)
	}
}
