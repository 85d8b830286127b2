package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

func TestRedisConfigDefaults(t *testing.T) {
	var c store.RedisConfig
	c.SetDefaults()
	if c.Mode != "standalone" || c.KeyPrefix != "warden:" || c.DialTimeout != 2*time.Second ||
		c.ReadTimeout != time.Second || c.WriteTimeout != time.Second || c.PoolSize != 32 ||
		c.WaitReplicas != 0 || c.WaitTimeout != 100*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
	c = store.RedisConfig{Mode: "cluster", KeyPrefix: "x:", PoolSize: 4}
	c.SetDefaults()
	if c.Mode != "cluster" || c.KeyPrefix != "x:" || c.PoolSize != 4 {
		t.Fatalf("defaults overwrote set values: %+v", c)
	}
}

func TestRedisConfigValidate(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(mut func(*store.RedisConfig)) store.RedisConfig {
		c := store.RedisConfig{Addrs: []string{"127.0.0.1:6379"}}
		c.SetDefaults()
		mut(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  store.RedisConfig
		want []string // each must start one line of the joined error
	}{
		{"ok", base(func(*store.RedisConfig) {}), nil},
		{"ok_sentinel", base(func(c *store.RedisConfig) {
			c.Mode, c.MasterName, c.Addrs = "sentinel", "mymaster", []string{"a:26379", "b:26379"}
		}), nil},
		{"ok_cluster", base(func(c *store.RedisConfig) { c.Mode, c.Addrs = "cluster", []string{"a:1", "b:2", "c:3"} }), nil},
		{"no_addrs", base(func(c *store.RedisConfig) { c.Addrs = nil }), []string{"addrs: at least one address required"}},
		{"bad_mode", base(func(c *store.RedisConfig) { c.Mode = "ring" }), []string{"mode: must be one of standalone, sentinel, cluster"}},
		{"empty_mode", store.RedisConfig{Addrs: []string{"a:1"}, KeyPrefix: "w:", DialTimeout: 1, ReadTimeout: 1, WriteTimeout: 1, PoolSize: 1, WaitTimeout: 1}, []string{"mode: "}},
		{"sentinel_without_master", base(func(c *store.RedisConfig) { c.Mode = "sentinel" }), []string{"master_name: required when mode is sentinel"}},
		{"master_outside_sentinel", base(func(c *store.RedisConfig) { c.MasterName = "m" }), []string{"master_name: only used"}},
		{"bad_addrs", base(func(c *store.RedisConfig) {
			c.Mode, c.Addrs = "cluster", []string{"nohost", ":6379", "h:0", "h:99999", "h:x"}
		}),
			[]string{"addrs[0]: ", "addrs[1]: ", "addrs[2]: ", "addrs[3]: ", "addrs[4]: "}},
		{"standalone_two", base(func(c *store.RedisConfig) { c.Addrs = []string{"a:1", "b:2"} }), []string{"addrs: standalone mode takes exactly one"}},
		{"cluster_db", base(func(c *store.RedisConfig) { c.Mode, c.DB = "cluster", 2 }), []string{"db: must be 0 in cluster mode"}},
		{"negative_db", base(func(c *store.RedisConfig) { c.DB = -1 }), []string{"db: must not be negative"}},
		{"ok_wait", base(func(c *store.RedisConfig) { c.WaitReplicas = 1 }), nil},
		{"negative_wait_replicas", base(func(c *store.RedisConfig) { c.WaitReplicas = -1 }), []string{"wait_replicas: must not be negative"}},
		{"wait_timeout_not_below_read", base(func(c *store.RedisConfig) { c.WaitReplicas, c.WaitTimeout = 1, time.Second }),
			[]string{"wait_timeout: must be shorter than read_timeout"}},
		{"negative_wait_timeout", base(func(c *store.RedisConfig) { c.WaitTimeout = -time.Millisecond }), []string{"wait_timeout: must be positive"}},
		{"username_without_password", base(func(c *store.RedisConfig) { c.Username = "warden" }), []string{"password: required when username"}},
		{"prefix_brace", base(func(c *store.RedisConfig) { c.KeyPrefix = "{w}:" }), []string{"key_prefix: must not contain braces"}},
		{"timeouts", base(func(c *store.RedisConfig) { c.DialTimeout, c.ReadTimeout, c.WriteTimeout, c.PoolSize = -1, -1, -1, -1 }),
			[]string{"dial_timeout: must be positive", "read_timeout: must be positive", "write_timeout: must be positive", "pool_size: must be at least 1"}},
		{"tls_off_but_set", base(func(c *store.RedisConfig) { c.TLS.CAFile = garbage }), []string{"tls.ca_file: set but tls.enabled is false"}},
		{"tls_ca_missing", base(func(c *store.RedisConfig) { c.TLS.Enabled, c.TLS.CAFile = true, filepath.Join(dir, "nope.pem") }), []string{"tls.ca_file: read: "}},
		{"tls_ca_garbage", base(func(c *store.RedisConfig) { c.TLS.Enabled, c.TLS.CAFile = true, garbage }), []string{"tls.ca_file: no PEM certificate"}},
		{"tls_cert_without_key", base(func(c *store.RedisConfig) { c.TLS.Enabled, c.TLS.CertFile = true, garbage }), []string{"tls.key_file: required"}},
		{"tls_bad_pair", base(func(c *store.RedisConfig) { c.TLS.Enabled, c.TLS.CertFile, c.TLS.KeyFile = true, garbage, garbage }), []string{"tls.cert_file: cannot load key pair"}},
		{"everything_at_once", store.RedisConfig{Mode: "sentinel", DB: -3}, []string{
			"addrs: at least one", "master_name: required", "db: must not be negative",
			"dial_timeout:", "read_timeout:", "write_timeout:", "pool_size:", "wait_timeout:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(c.want), err)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Fatalf("error %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestSessionAndLimitConfig(t *testing.T) {
	var s store.SessionConfig
	s.SetDefaults()
	if s.AbsoluteLifetime != 12*time.Hour || s.IdleTimeout != time.Hour || s.MaxPerUser != 50 || s.Validate() != nil {
		t.Fatalf("session defaults: %+v", s)
	}
	var l store.LimitConfig
	l.SetDefaults()
	if l.MaxFailuresPerUser != 5 || l.MaxFailuresPerIP != 50 || l.Window != 15*time.Minute || l.Validate() != nil {
		t.Fatalf("limit defaults: %+v", l)
	}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"idle_over_absolute", store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: 2 * time.Hour}.Validate(), "idle_timeout: must not exceed absolute_lifetime"},
		{"session_zero", store.SessionConfig{}.Validate(), "absolute_lifetime: must be positive\nidle_timeout: must be positive"},
		{"max_per_user_negative", store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: time.Hour, MaxPerUser: -1}.Validate(),
			"max_per_user: must be 1-1000, or 0 for the default (50); got -1"},
		{"max_per_user_too_many", store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: time.Hour, MaxPerUser: 1001}.Validate(),
			"max_per_user: must be 1-1000, or 0 for the default (50); got 1001"},
		{"limit_zero", store.LimitConfig{}.Validate(), "max_failures_per_user: must be at least 1\nmax_failures_per_ip: must be at least 1\nwindow: must be at least 1s"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.HasPrefix(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, c.err, c.want)
		}
	}
	if _, err := store.NewSessions(nil, store.SessionConfig{}, nil, nil); err == nil {
		t.Error("NewSessions accepted an invalid config")
	}
	for _, n := range []int{0, 1, 1000} { // 0: the default
		if err := (store.SessionConfig{AbsoluteLifetime: time.Hour, IdleTimeout: time.Hour, MaxPerUser: n}).Validate(); err != nil {
			t.Errorf("max_per_user %d: %v", n, err)
		}
	}
	if _, err := store.NewLimiter(nil, store.LimitConfig{}, nil); err == nil {
		t.Error("NewLimiter accepted an invalid config")
	}
}

func TestNormalization(t *testing.T) {
	for in, want := range map[string]string{
		"Alice":                "alice",
		"  ALICE  ":            "alice",
		"Ju\u0308rgen":         "jürgen",
		"JÜRGEN":               "jürgen",
		"straße":               "strasse",
		"pat  o'connor":        "pat o'connor",
		"ＡＬＩＣＥ":                "alice", // full-width (NFKC)
		"Pat O'Connor, Jr. (*": "pat o'connor, jr. (*",
	} {
		if got := store.NormalizeUsername(in); got != want {
			t.Errorf("NormalizeUsername(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		" 192.0.2.1 ":             "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:DB8:1:2::9":         "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"":                        "invalid",
		"not-an-ip":               "invalid",
		"192.0.2.1:443":           "invalid",
		"2001:db8::1/64":          "invalid",
		"999.1.1.1":               "invalid",
		"2001:db8:ffff:ffff::abc": "2001:db8:ffff:ffff::/64",
	} {
		if got := store.IPBucket(in); got != want {
			t.Errorf("IPBucket(%q) = %q, want %q", in, got, want)
		}
	}
}
