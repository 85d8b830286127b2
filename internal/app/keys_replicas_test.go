package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// redisKeysOptions are openLDAPOptions with a key prefix of the test's own
// and the key ring sealed in Redis (keys.store redis) under a new key.
func redisKeysOptions(t *testing.T) Options {
	o := openLDAPOptions(t)
	o.Redis.KeyPrefix += fmt.Sprintf("%d:", time.Now().UnixNano())
	kek := filepath.Join(t.TempDir(), "keys.kek")
	if err := os.WriteFile(kek, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Keys = keys.Config{Store: keys.StoreRedis, EncryptionKeyFile: kek}
	return o
}

// TestReplicasShareKeysInRedis: three wardend replicas, each with a data
// directory of its own (no shared disk), keys.store redis. They publish and
// sign with one ring; a rotation and a promotion made with `wardend keys`
// (keys.RotateStore / PromoteStore, as the command does) reach all three.
func TestReplicasShareKeysInRedis(t *testing.T) {
	o := redisKeysOptions(t)
	var bases, dataDirs []string
	for range 3 {
		r := o
		r.DataDir = t.TempDir()
		dataDirs = append(dataDirs, r.DataDir)
		bases = append(bases, startApp(t, r))
	}
	for _, d := range dataDirs {
		if _, err := os.Stat(filepath.Join(d, "keys")); !os.IsNotExist(err) {
			t.Fatalf("a key directory in %s: %v", d, err)
		}
	}
	kids := func(base string) []string {
		resp, err := http.Get(base + "/oauth/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &set); err != nil {
			t.Fatalf("%s/oauth/keys: %v: %s", base, err, b)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	// all replicas publish want (current first), within the deadline
	converge := func(what string, want []string) {
		t.Helper()
		start, guard := time.Now(), testenv.HangGuard(t)
		for _, base := range bases {
			for {
				got := kids(base)
				if strings.Join(got, " ") == strings.Join(want, " ") {
					break
				}
				// a hang guard, not a figure: replicas poll every 500ms
				if time.Now().After(guard) {
					t.Fatalf("%s: %s publishes %v, want %v", what, base, got, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		t.Logf("%s: all %d replicas after %s", what, len(bases), time.Since(start).Round(time.Millisecond))
	}
	first := kids(bases[0])
	if len(first) != 1 {
		t.Fatalf("first start: %v", first)
	}
	converge("first start", first)

	st, err := store.Open(context.Background(), o.Redis, o.Logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks, err := KeyStore(o.Keys, "", st)
	if err != nil {
		t.Fatal(err)
	}
	next, err := keys.RotateStore(context.Background(), ks, o.Keys, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	converge("rotate", []string{first[0], next.ID})
	if _, err := keys.PromoteStore(context.Background(), ks, o.Keys, keys.Options{}); err != nil {
		t.Fatal(err)
	}
	converge("promote", []string{next.ID, first[0]})

	// a replica started now, with an empty data directory, joins the ring
	r := o
	r.DataDir = t.TempDir()
	if got := kids(startApp(t, r)); strings.Join(got, " ") != next.ID+" "+first[0] {
		t.Fatalf("a new replica publishes %v", got)
	}
}
