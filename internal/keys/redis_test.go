package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/testenv"
)

// testRedis is the real Redis of deploy/testenv and a key of this test's
// own, deleted at the end.
func testRedis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	env := testenv.Require(t, "REDIS_ADDR")
	c := redis.NewClient(&redis.Options{Addr: env["REDIS_ADDR"], Password: os.Getenv("REDIS_PASSWORD")})
	key := fmt.Sprintf("keystest:%d:keys:ring", rand.Uint64())
	t.Cleanup(func() {
		c.Del(context.Background(), key)
		c.Close()
	})
	return c, key
}

func kek(b byte) []byte { return bytes.Repeat([]byte{b}, AESKeySize) }

func redisStore(t testing.TB, c redis.UniversalClient, key string, k []byte, prev ...[]byte) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(c, key, k, prev, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openRedis(t testing.TB, s Store, clk *clock) *Ring {
	t.Helper()
	r, err := OpenStore(context.Background(), s, Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// TestRedisRing: replicas without a shared disk create one ring, follow a
// rotation and a promotion, and Redis never holds a key in the clear.
func TestRedisRing(t *testing.T) {
	c, key := testRedis(t)
	ctx := context.Background()
	clk := newClock()
	a := openRedis(t, redisStore(t, c, key, kek(1)), clk)
	b := openRedis(t, redisStore(t, c, key, kek(1)), clk)
	if a.Current().ID != b.Current().ID || len(a.All()) != 1 {
		t.Fatalf("replicas disagree: %s / %s", ids(a.All()), ids(b.All()))
	}
	if !strings.HasPrefix(a.Where(), "redis key ") {
		t.Fatalf("Where = %q", a.Where())
	}
	raw, err := c.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"PRIVATE KEY", "CERTIFICATE", "manifest", a.Current().ID} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Fatalf("Redis holds %q in the clear", clear)
		}
	}

	first := a.Current().ID
	next, err := RotateStore(ctx, redisStore(t, c, key, kek(1)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RotateStore(ctx, redisStore(t, c, key, kek(1)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{}); !errors.Is(err, ErrNextExists) {
		t.Fatalf("second rotate: %v", err)
	}
	for _, r := range []*Ring{a, b} {
		if changed, err := r.reload(ctx); err != nil || !changed {
			t.Fatalf("reload after rotate: %v %v", changed, err)
		}
		if n, ok := r.Next(); !ok || n.ID != next.ID || r.Current().ID != first {
			t.Fatalf("after rotate: %s", ids(r.All()))
		}
		if changed, err := r.reload(ctx); err != nil || changed {
			t.Fatalf("a reload of the same ring changed it: %v %v", changed, err)
		}
	}
	cur, err := PromoteStore(ctx, redisStore(t, c, key, kek(1)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{Now: clk.Now})
	if err != nil || cur.ID != next.ID {
		t.Fatalf("promote: %v %v", cur.ID, err)
	}
	for _, r := range []*Ring{a, b} {
		if _, err := r.reload(ctx); err != nil {
			t.Fatal(err)
		}
		if r.Current().ID != next.ID || len(r.Published()) != 2 {
			t.Fatalf("after promote: %s", ids(r.Published()))
		}
	}
	// the previous key leaves the ring, its files with it, after PublishPrevious
	clk.Add(721 * time.Hour)
	if _, err := RotateStore(ctx, redisStore(t, c, key, kek(1)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := PromoteStore(ctx, redisStore(t, c, key, kek(1)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	bd, _, err := redisStore(t, c, key, kek(1)).open(mustGet(t, c, key))
	if err != nil {
		t.Fatal(err)
	}
	if len(bd.Files) != 4 || bd.Files["key-"+first+".pem"] != nil {
		t.Fatalf("sealed ring files: %d, first key kept: %v", len(bd.Files), bd.Files["key-"+first+".pem"] != nil)
	}
}

func mustGet(t testing.TB, c redis.UniversalClient, key string) []byte {
	t.Helper()
	b, err := c.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRedisConcurrent: replicas starting together make one key; operators
// rotating together make one next key.
func TestRedisConcurrent(t *testing.T) {
	c, key := testRedis(t)
	const n = 6
	rings := make([]*Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rings[i], errs[i] = OpenStore(context.Background(), redisStore(t, c, key, kek(2)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if rings[i].Current().ID != rings[0].Current().ID {
			t.Fatalf("replica %d has %s, replica 0 %s", i, rings[i].Current().ID, rings[0].Current().ID)
		}
	}
	ok := 0
	for i := range n {
		wg.Go(func() {
			_, errs[i] = RotateStore(context.Background(), redisStore(t, c, key, kek(2)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrNextExists):
			t.Fatal(err)
		}
	}
	all, err := ListStore(context.Background(), redisStore(t, c, key, kek(2)))
	if ok != 1 || err != nil || len(all) != 2 {
		t.Fatalf("%d rotations succeeded, ring %s, %v", ok, ids(all), err)
	}
}

// TestRedisEncryptionKeys: a wrong key opens nothing and changes nothing; a
// previous key opens, and the ring is sealed again under the new key.
func TestRedisEncryptionKeys(t *testing.T) {
	c, key := testRedis(t)
	ctx := context.Background()
	clk := newClock()
	r := openRedis(t, redisStore(t, c, key, kek(3)), clk)
	before := mustGet(t, c, key)

	_, err := OpenStore(ctx, redisStore(t, c, key, kek(4)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{})
	if !errors.Is(err, ErrSealed) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := RotateStore(ctx, redisStore(t, c, key, kek(4)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{}); !errors.Is(err, ErrSealed) {
		t.Fatalf("rotate with a wrong key: %v", err)
	}
	if !bytes.Equal(before, mustGet(t, c, key)) {
		t.Fatal("a wrong key changed the stored ring")
	}

	// new key 5, previous key 3
	r2 := openRedis(t, redisStore(t, c, key, kek(5), kek(3)), clk)
	if r2.Current().ID != r.Current().ID {
		t.Fatal("the ring changed with the encryption key")
	}
	if _, _, err := redisStore(t, c, key, kek(5)).open(mustGet(t, c, key)); err != nil {
		t.Fatalf("not sealed again under the new key: %v", err)
	}
	if _, err := OpenStore(ctx, redisStore(t, c, key, kek(3)), Config{Store: StoreRedis, EncryptionKeyFile: "-"}, Options{}); !errors.Is(err, ErrSealed) {
		t.Fatalf("the retired key still opens the ring: %v", err)
	}

	if _, err := NewRedisStore(c, key, []byte("short"), nil, nil); err == nil {
		t.Fatal("a short key accepted")
	}
}

// TestRedisTamperAndLoss: an altered ring is refused (the last good one
// stays); a ring Redis lost is put back from a replica's copy, never
// replaced by a new key.
func TestRedisTamperAndLoss(t *testing.T) {
	c, key := testRedis(t)
	ctx := context.Background()
	r := openRedis(t, redisStore(t, c, key, kek(6)), newClock())
	good := mustGet(t, c, key)

	bad := bytes.Clone(good)
	bad[len(bad)-5] ^= 1
	c.Set(ctx, key, bad, 0)
	if _, err := r.reload(ctx); !errors.Is(err, ErrSealed) {
		t.Fatalf("altered ring: %v", err)
	}
	c.Set(ctx, key, []byte("not a ring"), 0)
	if _, err := r.reload(ctx); err == nil || !strings.Contains(err.Error(), "not a sealed key ring") {
		t.Fatalf("garbage: %v", err)
	}
	if len(r.All()) != 1 {
		t.Fatal("ring lost")
	}

	c.Set(ctx, key, good, 0)
	c.Del(ctx, key)
	if _, err := r.reload(ctx); err == nil || !strings.Contains(err.Error(), "restored from this replica's copy") {
		t.Fatalf("lost ring: %v", err)
	}
	if !bytes.Equal(mustGet(t, c, key), good) {
		t.Fatal("not restored")
	}
	if changed, err := r.reload(ctx); err != nil || changed {
		t.Fatalf("after restore: %v %v", changed, err)
	}
}

// TestRedisImport: an install moving from a key directory to Redis keeps its
// keys (the ones IAM trusts).
func TestRedisImport(t *testing.T) {
	c, key := testRedis(t)
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "keys")
	fr := mustOpen(t, dir, clk)
	if _, err := Rotate(dir, Config{}, Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	s, err := NewRedisStore(c, key, kek(7), nil, Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	r := openRedis(t, s, clk)
	files, _ := List(dir)
	if r.Current().ID != fr.Current().ID || ids(r.All()) != ids(files) {
		t.Fatalf("imported %s, directory %s", ids(r.All()), ids(files))
	}
}

// BenchmarkRedisPoll is what each replica pays every reload_interval: one
// GET of the sealed ring and a comparison.
func BenchmarkRedisPoll(b *testing.B) {
	c, key := testRedis(b)
	r := openRedis(b, redisStore(b, c, key, kek(8)), newClock())
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(mustGet(b, c, key))), "bytes/ring")
}
