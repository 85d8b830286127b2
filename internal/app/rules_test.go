package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// TestSeedRules runs against the real Redis: a rules file seeds an empty
// store once; in read-only mode it replaces what is stored; an invalid file
// refuses to start.
func TestSeedRules(t *testing.T) {
	env := testenv.Require(t, "REDIS_ADDR")
	ctx := context.Background()
	cfg := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	cfg.SetDefaults()
	cfg.KeyPrefix = fmt.Sprintf("warden-seedtest-%d:", time.Now().UnixNano())
	st, err := store.Open(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer st.Close()
		keys, _ := st.Client().Keys(ctx, cfg.KeyPrefix+"*").Result()
		if len(keys) > 0 {
			st.Client().Del(ctx, keys...)
		}
	})
	rules := store.NewRules(st, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "mappings.yaml")
	if err := os.WriteFile(file, devconfig.ExampleRules, 0o600); err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)

	if err := seedRules(ctx, rules, admin.Config{RulesFile: file}, nil, []string{"department"}, log); err != nil {
		t.Fatal(err)
	}
	v1, doc1, err := rules.Current(ctx)
	if err != nil || v1.Version != 1 || !strings.Contains(string(doc1), "developers") {
		t.Fatalf("after seeding: version %d, err %v", v1.Version, err)
	}
	// an admin edits; a restart with the same file must not undo it
	edited := strings.Replace(string(doc1), "developers", "developers-renamed", 1)
	if _, err := rules.Save(ctx, 1, []byte(edited), store.ChangeMeta{Author: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := seedRules(ctx, rules, admin.Config{RulesFile: file}, nil, []string{"department"}, log); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := rules.Current(ctx); v.Version != 2 {
		t.Fatalf("seeding a non-empty store changed it: version %d", v.Version)
	}
	// read-only: the file wins
	if err := seedRules(ctx, rules, admin.Config{RulesFile: file, RulesReadOnly: true}, nil, []string{"department"}, log); err != nil {
		t.Fatal(err)
	}
	v3, doc3, _ := rules.Current(ctx)
	if v3.Version != 3 || string(doc3) != string(doc1) {
		t.Fatalf("read-only start: version %d, doc equal to the file: %v", v3.Version, string(doc3) == string(doc1))
	}
	// again: nothing changes
	if err := seedRules(ctx, rules, admin.Config{RulesFile: file, RulesReadOnly: true}, nil, []string{"department"}, log); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := rules.Current(ctx); v.Version != 3 {
		t.Fatalf("an unchanged file made a new version: %d", v.Version)
	}
	// an invalid file stops the start and names the problem
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("accounts:\n  - id: \"12\"\n    name: x\n    saml_provider: p\n"), 0o600)
	err = seedRules(ctx, rules, admin.Config{RulesFile: bad, RulesReadOnly: true}, nil, []string{"department"}, log)
	if err == nil || !strings.Contains(err.Error(), "accounts[0].id") {
		t.Fatalf("invalid file: %v", err)
	}
	if v, _, _ := rules.Current(ctx); v.Version != 3 {
		t.Fatal("an invalid file changed the stored rules")
	}
	if err := seedRules(ctx, rules, admin.Config{RulesFile: filepath.Join(dir, "missing.yaml")}, nil, []string{"department"}, log); err == nil {
		t.Fatal("a missing rules file must stop the start")
	}
}

// TestWatchRules: a version saved by any replica reaches the holder; a
// version that does not compile leaves the previous engine. How soon ("within
// a second") is measured by BenchmarkRulesWatch (internal/store), not
// asserted here: the 10 s below only bounds the wait, as a wall-clock
// limit near the figure fails on a loaded machine.
func TestWatchRules(t *testing.T) {
	env := testenv.Require(t, "REDIS_ADDR")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, Password: os.Getenv("REDIS_PASSWORD")}
	cfg.SetDefaults()
	cfg.KeyPrefix = fmt.Sprintf("warden-watchtest-%d:", time.Now().UnixNano())
	st, err := store.Open(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer st.Close()
		keys, _ := st.Client().Keys(context.Background(), cfg.KeyPrefix+"*").Result()
		if len(keys) > 0 {
			st.Client().Del(context.Background(), keys...)
		}
	})
	rules := store.NewRules(st, nil)
	holder := &rolemap.Holder{}
	go watchRules(ctx, rules, holder, testLogger(t))

	doc, err := canonicalRules("example", devconfig.ExampleRules, []string{"department"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Save(ctx, 0, doc, store.ChangeMeta{Author: "test"}); err != nil {
		t.Fatal(err)
	}
	accounts := func() int { return len(holder.Load().RuleSet().Accounts) }
	waitFor(t, 10*time.Second, func() bool { return accounts() > 0 })

	if _, err := rules.Save(ctx, 1, []byte("accounts: [{id: \"1\"}]\n"), store.ChangeMeta{Author: "test"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if accounts() == 0 {
		t.Fatal("an invalid stored version replaced the working rules")
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
