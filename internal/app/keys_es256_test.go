package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestReplicasES256InRedis: three RS256 replicas with the ring in Redis
// take in the ES256 ring when `wardend keys rotate -alg ES256` makes it
// (keys.OpenStore on the ES256 store, as the command does), follow its
// rotation and promotion, and a replica started with
// oidc.signing_algorithm ES256 signs with its current key while
// publishing the same keys.
func TestReplicasES256InRedis(t *testing.T) {
	o := redisKeysOptions(t)
	var bases []string
	for range 3 {
		r := o
		r.DataDir = t.TempDir()
		bases = append(bases, startApp(t, r))
	}
	type jwk struct{ Kid, Alg string }
	get := func(base string) ([]jwk, []string) {
		var set struct{ Keys []jwk }
		var disc struct {
			Algs []string `json:"id_token_signing_alg_values_supported"`
		}
		for path, v := range map[string]any{"/oauth/keys": &set, "/.well-known/openid-configuration": &disc} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s%s: %v: %s", base, path, err, b)
			}
		}
		return set.Keys, disc.Algs
	}
	converge := func(what string, want []jwk, wantAlgs []string) {
		t.Helper()
		start, guard := time.Now(), testenv.HangGuard(t)
		for _, base := range bases {
			for {
				got, algs := get(base)
				if slices.Equal(got, want) && slices.Equal(algs, wantAlgs) {
					break
				}
				// a hang guard, not a figure: replicas poll every 500ms
				if time.Now().After(guard) {
					t.Fatalf("%s: %s publishes %v (%v), want %v (%v)", what, base, got, algs, want, wantAlgs)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		t.Logf("%s: all %d replicas after %s", what, len(bases), time.Since(start).Round(time.Millisecond))
	}
	rsa, _ := get(bases[0])
	if len(rsa) != 1 || rsa[0].Alg != "RS256" {
		t.Fatalf("first start: %v", rsa)
	}
	converge("first start", rsa, []string{"RS256"})

	st, err := store.Open(context.Background(), o.Redis, o.Logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rsStore, err := KeyStore(o.Keys, "", st)
	if err != nil {
		t.Fatal(err)
	}
	ecStore, err := keys.ForAlg(rsStore, keys.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := keys.OpenStore(context.Background(), ecStore, o.Keys, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := jwk{ec.Current().ID, "ES256"}
	converge("ES256 ring made", []jwk{rsa[0], first}, []string{"RS256", "ES256"})
	next, err := keys.RotateStore(context.Background(), ecStore, o.Keys, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	converge("rotate -alg ES256", []jwk{rsa[0], first, {next.ID, "ES256"}}, []string{"RS256", "ES256"})
	if _, err := keys.PromoteStore(context.Background(), ecStore, o.Keys, keys.Options{}); err != nil {
		t.Fatal(err)
	}
	want := []jwk{rsa[0], {next.ID, "ES256"}, first}
	converge("promote -alg ES256", want, []string{"RS256", "ES256"})

	// the switch: a replica signing ES256 joins with the same keys
	r := o
	r.DataDir = t.TempDir()
	r.OIDC.SigningAlgorithm = keys.AlgES256
	es := startApp(t, r)
	got, algs := get(es)
	if !slices.Equal(got, want) || !slices.Equal(algs, []string{"ES256", "RS256"}) {
		t.Fatalf("the ES256 replica publishes %v, announces %v", got, algs)
	}
}
