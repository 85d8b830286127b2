package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Decision is the limiter's answer before a sign-in attempt.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the exceeded window ends (the counter
	// key's PTTL); zero when Allowed. HTTP Retry-After takes whole seconds:
	// round up.
	RetryAfter time.Duration
	// Failures reports whether the first counter (the user's) holds
	// failures in this window (or could not be read): when false, a
	// success has nothing to reset (Succeed can be skipped).
	Failures bool
}

// Limiter counts failed sign-ins per username and per client IP in fixed
// windows of LimitConfig.Window, aligned on the injected clock (window n
// covers [n·Window, (n+1)·Window) since the Unix epoch).
//
// Keys: prefix+"limit:user:"+hex(SHA-256(normalized username))+":"+n and
// prefix+"limit:ip:"+IP bucket+":"+n, each expiring at the end of its
// window. Usernames are hashed so that Redis holds no typed usernames (a
// failed sign-in is often a password typed into the username field); the
// hash is unkeyed, so a dictionary of likely usernames can still be tested
// against it. The limiter never asks the directory, so an unknown username
// is counted exactly like a known one.
//
// Check and Fail are separate calls, so concurrent attempts that all pass
// Check before any Fail can exceed the limit by the number of such
// concurrent attempts.
type Limiter struct {
	store *Store
	cfg   LimitConfig
	now   func() time.Time
	ns    string // key namespace after "limit:" ("" for sign-ins)
}

// incrScript counts one failure and, if the key has no expiry yet, sets it
// to end with the window (atomically, so a counter never outlives it).
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n`)

// NewLimiter returns the limiter; now is the clock (nil: time.Now).
func NewLimiter(st *Store, cfg LimitConfig, now func() time.Time) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: login limits config: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: st, cfg: cfg, now: now}, nil
}

// NewNamedLimiter is NewLimiter with counters of their own, under
// "limit:"+name+":": the same algorithm for another kind of attempt
// (wrong second-factor codes), never mixed with the sign-in counters.
func NewNamedLimiter(st *Store, name string, cfg LimitConfig, now func() time.Time) (*Limiter, error) {
	if name == "" || strings.ContainsAny(name, ":{}") {
		return nil, fmt.Errorf("store: limiter name %q: want a non-empty name without ':', '{', '}'", name)
	}
	l, err := NewLimiter(st, cfg, now)
	if err != nil {
		return nil, err
	}
	l.ns = name + ":"
	return l, nil
}

// NormalizeUsername folds the ways of writing one login name into one: it
// applies Unicode NFKC and case folding and collapses white space, roughly
// as LDAP's caseIgnoreMatch (RFC 4518 string preparation) compares values.
// Two spellings the directory takes for the same account thus share one
// counter; merging a few distinct names only makes the limit stricter.
func NormalizeUsername(username string) string {
	s := norm.NFKC.String(username)
	s = cases.Fold().String(s)
	s = strings.Join(strings.Fields(s), " ")
	return norm.NFKC.String(s)
}

// IPBucket returns the counter bucket of a client IP: the address for
// IPv4 (IPv4-mapped IPv6 included), the /64 prefix for IPv6 (one host
// usually holds a whole /64), and "invalid" for anything unparseable.
func IPBucket(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// keys returns the user and IP counter keys of the current window and the
// time left in it by the clock.
func (l *Limiter) keys(username, ip string) (userKey, ipKey string, left time.Duration) {
	now := l.now()
	w := l.cfg.Window.Nanoseconds()
	n := now.UnixNano() / w
	left = time.Duration((n+1)*w - now.UnixNano())
	sum := sha256.Sum256([]byte(NormalizeUsername(username)))
	suffix := ":" + strconv.FormatInt(n, 10)
	return l.store.Key("limit:" + l.ns + "user:" + hex.EncodeToString(sum[:]) + suffix),
		l.store.Key("limit:" + l.ns + "ip:" + IPBucket(ip) + suffix), left
}

// Check tells whether a sign-in attempt for username from ip may go ahead:
// not if the username or the IP has MaxFailures… failures in this window.
func (l *Limiter) Check(ctx context.Context, username, ip string) (Decision, error) {
	userKey, ipKey, left := l.keys(username, ip)
	return checkWindow(ctx, l.store, "store: check login limits", left,
		windowCounter{userKey, l.cfg.MaxFailuresPerUser}, windowCounter{ipKey, l.cfg.MaxFailuresPerIP})
}

// Fail counts one failed sign-in for username and for ip.
func (l *Limiter) Fail(ctx context.Context, username, ip string) error {
	userKey, ipKey, left := l.keys(username, ip)
	return countWindow(ctx, l.store, "store: count failed sign-in", left, userKey, ipKey)
}

// windowCounter is one fixed-window counter key and its limit.
type windowCounter struct {
	key string
	max int
}

// checkWindow reads the counters (one plain pipeline: the keys are in
// different slots) and refuses when any has reached its limit, with
// RetryAfter the longest remaining window. left is the time to the end of
// the current window by the injected clock.
//
// In Redis Cluster the counters live on different masters. When some of
// them cannot be read (their master is down) and at least one can, the
// decision rests on the readable ones and a warning names the op: losing
// one master then fails only the attempts whose own state lives there,
// not every attempt whose IP or username counter happens to. When no
// counter can be read the store is unavailable.
func checkWindow(ctx context.Context, st *Store, op string, left time.Duration, counters ...windowCounter) (Decision, error) {
	ctx, cancel := st.op(ctx)
	defer cancel()
	pipe := st.client.Pipeline()
	counts := make([]*redis.StringCmd, len(counters))
	ttls := make([]*redis.DurationCmd, len(counters))
	for i, c := range counters {
		counts[i], ttls[i] = pipe.Get(ctx, c.key), pipe.PTTL(ctx, c.key)
	}
	var firstErr error
	unread := 0
	if _, err := pipe.Exec(ctx); err != nil {
		// Exec reports the first command's error, which may be a mere
		// redis.Nil (no counter) while another command failed.
		for i := range counters {
			if cerr := cmp.Or(counts[i].Err(), ttls[i].Err()); cerr != nil && !errors.Is(cerr, redis.Nil) {
				unread++
				firstErr = cmp.Or(firstErr, cerr)
			}
		}
		if unread == len(counters) {
			return Decision{}, Unavailable(op, firstErr)
		}
	}
	if unread > 0 {
		st.logger.WarnContext(ctx, "store: some rate-limit counters unreadable; deciding on the others",
			"op", op, "unreadable", unread, "err", firstErr)
	}
	d := Decision{Allowed: true}
	for i, c := range counters {
		n, err := counts[i].Int()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if i == 0 {
			d.Failures = true
		}
		if cerr := cmp.Or(counts[i].Err(), ttls[i].Err()); cerr != nil && !errors.Is(cerr, redis.Nil) {
			continue // unreadable: its master is down (see above)
		}
		if err != nil {
			return Decision{}, Unavailable(op, err)
		}
		if n < c.max {
			continue
		}
		d.Allowed = false
		wait := ttls[i].Val()
		if wait <= 0 { // -1 no expiry, -2 gone meanwhile: trust the clock
			wait = left
		}
		d.RetryAfter = max(d.RetryAfter, wait)
	}
	return d, nil
}

// countWindow adds one to each counter, each expiring at the end of the
// window: a plain pipeline of scripts, each atomic on its own key.
func countWindow(ctx context.Context, st *Store, op string, left time.Duration, keys ...string) error {
	ctx, cancel := st.op(ctx)
	defer cancel()
	ms := max(left.Milliseconds(), 1)
	pipe := st.client.Pipeline()
	for _, k := range keys {
		incrScript.Eval(ctx, pipe, []string{k}, ms)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return Unavailable(op, err)
	}
	return nil
}

// Succeed resets the username's counter after a successful sign-in. The
// IP counter is kept: one good password must not wipe out an IP's failures
// against other accounts.
func (l *Limiter) Succeed(ctx context.Context, username string) error {
	userKey, _, _ := l.keys(username, "")
	ctx, cancel := l.store.op(ctx)
	defer cancel()
	return Unavailable("store: reset login limit", l.store.client.Del(ctx, userKey).Err())
}
