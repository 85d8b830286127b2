package credcache_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/cli/credcache"
)

// TestCredentialProcessJSON: the exact bytes AWS's credential_process
// readers take, also for strings that json escapes and times that are not
// UTC.
func TestCredentialProcessJSON(t *testing.T) {
	for _, tc := range []struct {
		c    credcache.Creds
		want string
	}{
		{credcache.Creds{AccessKeyID: "ASIA1", SecretAccessKey: "s/k+1", SessionToken: "t==", Expiration: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), AccountID: "111122223333"},
			`{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s/k+1","SessionToken":"t==","Expiration":"2030-01-02T03:04:05Z","AccountId":"111122223333"}` + "\n"},
		{credcache.Creds{AccessKeyID: "ASIA2", SecretAccessKey: "sk", SessionToken: "st", Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", -5*3600))},
			`{"Version":1,"AccessKeyId":"ASIA2","SecretAccessKey":"sk","SessionToken":"st","Expiration":"2030-01-02T08:04:05Z"}` + "\n"},
		{credcache.Creds{AccessKeyID: "a<b>&c\"d"},
			`{"Version":1,"AccessKeyId":"a\u003cb\u003e\u0026c\"d","SecretAccessKey":"","SessionToken":"","Expiration":"0001-01-01T00:00:00Z"}` + "\n"},
	} {
		if got := string(credcache.CredentialProcessJSON(tc.c)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

const (
	roleA = "arn:aws:iam::111122223333:role/A"
	roleB = "arn:aws:iam::111122223333:role/B"
	keyA  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	keyB  = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLookup: an index entry answers only for its own command line and
// config file, from a credentials file of its own role and STS path with
// more than 15 minutes left; every other case is a miss.
func TestLookup(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	args := []string{"--role", roleA}
	config := []byte("idp_url: https://idp.example.com\nvia: saml\n")
	credsA := credcache.Creds{RoleARN: roleA, Via: "saml", AccessKeyID: "ASIAA", SecretAccessKey: "skA", SessionToken: "stA",
		Expiration: now.Add(time.Hour), AccountID: "111122223333"}
	credsB := credsA
	credsB.RoleARN, credsB.AccessKeyID = roleB, "ASIAB"

	type setup struct {
		args   []string // Lookup's
		config []byte   // the config file's content; nil: none
		entry  credcache.Entry
		creds  map[string]credcache.Creds // by key
		now    time.Time
	}
	good := func() setup {
		cfgPath := filepath.Join("CONFIG", "config.yaml")
		return setup{args: args, config: config, now: now,
			entry: credcache.Entry{Version: credcache.IndexVersion, Args: args, ConfigPath: cfgPath, Config: config,
				Key: keyA, RoleARN: roleA, Via: "saml"},
			creds: map[string]credcache.Creds{keyA: credsA, keyB: credsB}}
	}
	for _, tc := range []struct {
		name   string
		change func(*setup)
		hit    bool
	}{
		{"the entry's own", func(*setup) {}, true},
		{"16 minutes left", func(s *setup) { s.now = credsA.Expiration.Add(-16 * time.Minute) }, true},
		{"15 minutes left", func(s *setup) { s.now = credsA.Expiration.Add(-15 * time.Minute) }, false},
		{"other arguments", func(s *setup) { s.args = []string{"--role", roleB} }, false},
		{"one more argument", func(s *setup) { s.args = append(append([]string{}, args...), "--help") }, false},
		{"entry of other arguments at this path", func(s *setup) { s.entry.Args = []string{"--role", roleB} }, false},
		{"config changed", func(s *setup) { s.config = []byte("idp_url: https://idp.example.com\nvia: web-identity\n") }, false},
		{"config gone", func(s *setup) { s.config = nil }, false},
		{"entry for another config file", func(s *setup) { s.entry.ConfigPath = "/elsewhere/config.yaml" }, false},
		{"credentials of another role under the key", func(s *setup) { s.creds[keyA] = credsB }, false},
		{"entry naming another role's file", func(s *setup) { s.entry.Key = keyB }, false},
		{"credentials of another STS path", func(s *setup) {
			c := credsA
			c.Via = "web-identity"
			s.creds[keyA] = c
		}, false},
		{"credentials gone", func(s *setup) { delete(s.creds, keyA) }, false},
		{"older index version", func(s *setup) { s.entry.Version = credcache.IndexVersion - 1 }, false},
		// --duration: the entry's asked length against the credentials' minted one.
		{"asked 1h, minted 1h", func(s *setup) { s.entry.Seconds, s.creds[keyA] = 3600, minted(credsA, 3600) }, true},
		{"asked 1h, minted 62m", func(s *setup) { s.entry.Seconds, s.creds[keyA] = 3600, minted(credsA, 3720) }, true},
		{"asked 4h, minted 1h", func(s *setup) { s.entry.Seconds, s.creds[keyA] = 4*3600, minted(credsA, 3600) }, false},
		{"asked 1h, minted 4h", func(s *setup) { s.entry.Seconds, s.creds[keyA] = 3600, minted(credsA, 4*3600) }, false},
		{"asked 1h, minted for an unknown length", func(s *setup) { s.entry.Seconds = 3600 }, false},
		{"nothing asked, minted 4h", func(s *setup) { s.creds[keyA] = minted(credsA, 4*3600) }, true},
		{"--refresh", func(s *setup) {
			s.args = append(append([]string{}, args...), "--refresh")
			s.entry.Args = s.args
		}, false},
		{"--refresh=true", func(s *setup) {
			s.args = append([]string{"--refresh=true"}, args...)
			s.entry.Args = s.args
		}, false},
		{"key outside the cache", func(s *setup) {
			s.entry.Key = "../../" + keyA[6:] // 64 characters, not hex
			s.creds[s.entry.Key] = credsA
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cacheDir, configDir := filepath.Join(dir, "cache"), filepath.Join(dir, "CONFIG")
			s := good()
			s.entry.ConfigPath = credcache.ConfigPath(configDir)
			tc.change(&s)
			if s.config != nil {
				if err := os.MkdirAll(configDir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(credcache.ConfigPath(configDir), s.config, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// The entry lies where Lookup looks for s.args.
			writeJSON(t, credcache.EntryPath(cacheDir, credcache.ConfigPath(configDir), s.args), s.entry)
			for k, c := range s.creds {
				writeJSON(t, credcache.CredsPath(cacheDir, k), c)
			}
			out, err := credcache.Lookup(cacheDir, configDir, s.args, s.now)
			if !tc.hit {
				if err == nil {
					t.Fatalf("hit: %s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := credcache.CredentialProcessJSON(credsA); string(out) != string(want) {
				t.Errorf("got %s, want %s", out, want)
			}
		})
	}
}

// minted is c as minted for a session of seconds.
func minted(c credcache.Creds, seconds int) credcache.Creds {
	c.Seconds = seconds
	return c
}

// TestSameSeconds: within a tenth of the asked length, never for unknown.
func TestSameSeconds(t *testing.T) {
	for _, tc := range []struct {
		minted, asked int
		same          bool
	}{
		{3600, 3600, true}, {3960, 3600, true}, {3240, 3600, true}, {3961, 3600, false}, {3239, 3600, false},
		{3600, 4 * 3600, false}, {4 * 3600, 3600, false}, {0, 3600, false}, {3600, 0, false},
	} {
		if got := credcache.SameSeconds(tc.minted, tc.asked); got != tc.same {
			t.Errorf("SameSeconds(%d, %d) = %v", tc.minted, tc.asked, got)
		}
	}
}

// TestLookupMissing: without an index or directories Lookup misses.
func TestLookupMissing(t *testing.T) {
	dir := t.TempDir()
	for _, d := range [][2]string{{dir, dir}, {"", dir}, {dir, ""}} {
		if _, err := credcache.Lookup(d[0], d[1], []string{"--role", roleA}, time.Now()); !errors.Is(err, credcache.ErrMiss) {
			t.Errorf("Lookup(%q, %q): %v, want ErrMiss", d[0], d[1], err)
		}
	}
	// An index entry that does not parse is a miss too.
	p := credcache.EntryPath(dir, credcache.ConfigPath(dir), nil)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := credcache.Lookup(dir, dir, nil, time.Now()); !errors.Is(err, credcache.ErrMiss) {
		t.Errorf("broken entry: %v", err)
	}
}

// TestEntryPathSeparatesArguments: the hash sees argument boundaries.
func TestEntryPathSeparatesArguments(t *testing.T) {
	a := credcache.EntryPath("c", "p", []string{"--role", "x"})
	for _, other := range [][]string{{"--rolex"}, {"--role", "x", ""}, {"--rol", "ex"}} {
		if b := credcache.EntryPath("c", "p", other); a == b {
			t.Errorf("%v and [--role x] share %s", other, a)
		}
	}
	if !strings.HasPrefix(a, filepath.Join("c", "creds", "index")+string(filepath.Separator)) {
		t.Errorf("EntryPath %s: want it under c/creds/index", a)
	}
}
