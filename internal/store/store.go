// Package store keeps Warden's state in Redis: sign-in sessions, failed
// sign-in and device-code counters, shared secrets, the versioned mapping
// rules and the audit stream (durable: run Redis with AOF), OIDC grants,
// codes, tokens and device authorizations, and the SAML replay cache and
// paused AuthnRequests.
//
// One redis.UniversalClient serves standalone Redis, Sentinel and Cluster.
// Every key starts with RedisConfig.KeyPrefix. Keys that one operation
// touches together share a hash tag ("{...}") where the data allows it, so
// that Redis Cluster can run the operation on one node; where it does not
// (a session key is found from the cookie alone, its user index from the
// user), the operation uses a plain pipeline, which go-redis's ClusterClient
// splits by slot, and is written so that a partial write is harmless.
//
// Errors: every failure to talk to Redis (refused, timed out, closed, an
// error reply) is wrapped with ErrUnavailable, so that callers answer 503
// and never mistake an outage for a rejection. ErrNotFound means Redis
// answered and the thing is not there (or has ended). A caller's cancelled
// or expired context also gives ErrUnavailable, with context.Canceled or
// context.DeadlineExceeded in the chain too.
//
// go-redis retries a command whose reply was lost (up to twice), so a
// counter may, rarely, count one failure twice; everything else here is
// written to be safe to repeat.
package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	// ErrUnavailable wraps every failure to reach or use Redis.
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotFound means the session (or other object) does not exist or has
	// ended. It is a result, not a failure.
	ErrNotFound = errors.New("not found")
)

// Unavailable wraps a Redis error as "op: store unavailable: err", keeping
// both ErrUnavailable and err in the chain. It returns nil for nil. Later
// packages that use Store.Client directly wrap with it too.
func Unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Store is a connection to Redis shared by every component that keeps
// state. It is safe for concurrent use.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	cluster   bool
	opTimeout time.Duration
	logger    *slog.Logger
	random    io.Reader
	slots     slotMap // Cluster only: which master serves which slot (see newToken)
	// waitReplicas and waitTimeout: redis.wait_replicas and wait_timeout
	// (see awaitReplicas).
	waitReplicas int
	waitTimeout  time.Duration
}

// Open connects to Redis as cfg says (after applying defaults and
// validating it), pings it within the dial and read timeouts, and warns in
// the log when the server runs without AOF persistence: mapping rules and
// the audit stream kept here in later steps are durable data. An
// unreachable Redis is an error wrapping ErrUnavailable.
func Open(ctx context.Context, cfg RedisConfig, logger *slog.Logger) (*Store, error) {
	return open(ctx, cfg, logger, true)
}

func open(ctx context.Context, cfg RedisConfig, logger *slog.Logger, checkAOF bool) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: config: %w", err)
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		client:  client,
		prefix:  cfg.KeyPrefix,
		cluster: cfg.Mode == ModeCluster,
		// One operation may dial, write and read, each within its own
		// timeout; the whole never takes longer than their sum (plus a
		// retry's backoff), so a dead Redis never hangs a request.
		opTimeout:    cfg.DialTimeout + cfg.WriteTimeout + cfg.ReadTimeout,
		logger:       logger,
		random:       rand.Reader,
		waitReplicas: cfg.WaitReplicas,
		waitTimeout:  cfg.WaitTimeout,
	}
	if err := s.Ping(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("store: open %s %v: %w", cfg.Mode, cfg.Addrs, err)
	}
	if checkAOF {
		s.warnWithoutAOF(ctx)
	}
	logger.Info("redis connected", "mode", cfg.Mode, "addrs", cfg.Addrs, "tls", cfg.TLS.Enabled, "key_prefix", cfg.KeyPrefix)
	return s, nil
}

// newClient builds the client for cfg.Mode explicitly (rather than letting
// redis.NewUniversalClient guess from the number of addresses).
func newClient(cfg RedisConfig) (redis.UniversalClient, error) {
	var tlsConfig *tls.Config
	if cfg.TLS.Enabled {
		tlsConfig = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         cfg.TLS.ServerName,
			InsecureSkipVerify: cfg.TLS.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, validated
		}
		if cfg.TLS.CAFile != "" {
			pool, err := loadCAPool(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("store: tls.ca_file: %w", err)
			}
			tlsConfig.RootCAs = pool
		}
		if cfg.TLS.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("store: tls.cert_file: %w", err)
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
	}
	// Dial twice at most, retry a failed command twice at most: a dead
	// Redis must fail a request within the timeouts, not after a minute.
	const dialerRetries, maxRetries = 2, 2
	// Maintenance push notifications are a Redis Enterprise/Cloud feature;
	// "auto" would probe for them on every connection.
	maint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// One set of options, turned into the client of the configured mode
	// (go-redis's UniversalOptions conversions), so that every mode gets the
	// same timeouts, retries and TLS.
	u := &redis.UniversalOptions{
		Addrs:                    cfg.Addrs,
		MasterName:               cfg.MasterName,
		SentinelPassword:         cfg.SentinelPassword,
		Username:                 cfg.Username,
		Password:                 cfg.Password,
		DB:                       cfg.DB,
		DialTimeout:              cfg.DialTimeout,
		DialerRetries:            dialerRetries,
		ReadTimeout:              cfg.ReadTimeout,
		WriteTimeout:             cfg.WriteTimeout,
		ContextTimeoutEnabled:    true,
		MaxRetries:               maxRetries,
		PoolSize:                 cfg.PoolSize,
		TLSConfig:                tlsConfig,
		MaintNotificationsConfig: maint,
	}
	switch cfg.Mode {
	case ModeSentinel:
		return redis.NewFailoverClient(u.Failover()), nil
	case ModeCluster:
		return redis.NewClusterClient(u.Cluster()), nil
	default:
		return redis.NewClient(u.Simple()), nil
	}
}

// warnWithoutAOF logs a warning when CONFIG GET appendonly says "no".
// Errors are ignored: managed Redis services often forbid CONFIG.
func (s *Store) warnWithoutAOF(ctx context.Context) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	v, err := s.client.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		s.logger.Debug("redis: cannot read appendonly setting", "err", err)
		return
	}
	if v["appendonly"] == "no" {
		s.logger.Warn("redis runs without AOF persistence (appendonly no): " +
			"mapping rules and the audit stream are durable data and would be lost on restart; " +
			"set appendonly yes in production")
	}
}

// OpenEmbedded starts an in-process Redis (miniredis) on a loopback port and
// returns a Store on it, built by the same client code as Open, and a
// function that stops both. FOR DEV MODE ONLY: the data lives in memory and
// is lost at exit, and miniredis is a Redis imitation, so a test that passes
// against it proves nothing about real Redis. A background ticker advances
// miniredis's TTLs with the wall clock (miniredis does not expire keys by
// itself).
func OpenEmbedded(ctx context.Context, logger *slog.Logger) (*Store, func(), error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, fmt.Errorf("store: start embedded redis: %w", err)
	}
	cfg := RedisConfig{Addrs: []string{m.Addr()}}
	s, err := open(ctx, cfg, logger, false)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	logger.Warn("DEV MODE: embedded in-memory Redis; every session and rule is lost at exit", "addr", m.Addr())
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			close(stop)
			<-done
			_ = s.Close()
			m.Close()
		})
	}
	return s, cleanup, nil
}

// Ping checks that Redis answers, within the store's operation timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	if s.cluster {
		// A cluster is usable only if every master answers.
		if cc, ok := s.client.(*redis.ClusterClient); ok {
			return Unavailable("store: ping", cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				return c.Ping(ctx).Err()
			}))
		}
	}
	return Unavailable("store: ping", s.client.Ping(ctx).Err())
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.client.Close() }

// Client returns the underlying client for later packages of Warden. Their
// keys must start with Key(...), and their errors be wrapped with
// Unavailable.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Key returns the configured prefix followed by suffix.
func (s *Store) Key(suffix string) string { return s.prefix + suffix }

// op bounds one store operation by the sum of the dial, write and read
// timeouts (the caller's deadline wins when it is sooner).
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opTimeout)
}

var secretName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// SharedSecret returns the secret called name, size bytes long, creating
// it on first use with SET NX so that every replica of wardend gets the
// same value (the CSRF key, for instance): when several replicas race, one
// write wins and all read it back. The secret never expires. Anyone who can
// read Redis or a dump of it (RDB, AOF) can read the secret: protect Redis
// access and its backups accordingly.
func (s *Store) SharedSecret(ctx context.Context, name string, size int) ([]byte, error) {
	if !secretName.MatchString(name) {
		return nil, fmt.Errorf("store: shared secret: invalid name %q", name)
	}
	if size < 16 || size > 1024 {
		return nil, fmt.Errorf("store: shared secret %s: size %d not in 16..1024", name, size)
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	key := s.Key("secret:" + name)
	v, err := s.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		fresh := make([]byte, size)
		if _, err := io.ReadFull(s.random, fresh); err != nil {
			return nil, fmt.Errorf("store: shared secret %s: random: %w", name, err)
		}
		if err := s.client.SetNX(ctx, key, fresh, 0).Err(); err != nil {
			return nil, Unavailable("store: shared secret "+name, err)
		}
		// Read back whatever won the race (ours or another replica's).
		v, err = s.client.Get(ctx, key).Bytes()
	}
	if err != nil {
		return nil, Unavailable("store: shared secret "+name, err)
	}
	if len(v) != size {
		return nil, fmt.Errorf("store: shared secret %s: stored value has %d bytes, want %d", name, len(v), size)
	}
	return v, nil
}

// RedisLog adapts a slog.Logger to go-redis's logger, which is a package
// global of go-redis (it prints pool dial failures and the like to stderr by
// default). Only main should install it, once: redis.SetLogger(store.RedisLog{L: logger}).
type RedisLog struct{ L *slog.Logger }

// Printf logs one go-redis message as a warning.
func (r RedisLog) Printf(_ context.Context, format string, v ...any) {
	r.L.Warn(fmt.Sprintf(format, v...), "component", "go-redis")
}
