package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrConflict means the rule set changed since the version the caller
	// expected: someone else saved meanwhile. The caller reloads and retries
	// (or shows the other change to the user).
	ErrConflict = errors.New("stale version")
	// ErrTooLarge means a document is above MaxRulesDoc.
	ErrTooLarge = errors.New("too large")
)

// MaxRulesDoc bounds a rule-set document: 8 MiB, several times a
// 10,000-rule set.
const MaxRulesDoc = 8 << 20

// MaxChangeText bounds each ChangeMeta field, in bytes (they are shown in
// the UI). A longer one makes Save fail with ErrTooLarge: callers check a
// user's comment against it first, to give a precise message.
const MaxChangeText = 1024

// ChangeMeta says who makes a change, from where and why.
type ChangeMeta struct{ Author, ClientIP, RequestID, Comment string }

// RuleVersion describes one saved version of the rule set.
type RuleVersion struct {
	Version   int64     `json:"version"`
	Author    string    `json:"author"`
	ClientIP  string    `json:"client_ip"`
	RequestID string    `json:"request_id"`
	Comment   string    `json:"comment,omitempty"`
	Time      time.Time `json:"time"`
	// Diff is the unified line diff (diff -u format, labels "v<N-1>" and
	// "v<N>") of the document against the previous version's.
	Diff string `json:"diff"`
	// RestoredFrom is the version whose document this one copied (Restore).
	RestoredFrom int64 `json:"restored_from,omitempty"`
}

// Rules keeps the mapping rule set in Redis as numbered versions: every
// change makes version N+1 with who, when, from where and a diff, and an
// edit against a stale version is refused (ErrConflict), so two admins
// editing at once never lose an update. The document is opaque bytes here
// (rolemap's YAML); parsing and validation are the caller's.
//
// Keys, all with the hash tag {r} so that one Lua script may touch them
// together on Redis Cluster:
//
//	prefix+"rules:{r}:head"     hash: version, meta (RuleVersion JSON), doc of the current version
//	prefix+"rules:{r}:doc:<N>"  string: the document of version N
//	prefix+"rules:{r}:history"  sorted set: RuleVersion JSON scored by version
//
// Every change is one script that compares the current version with the
// expected one and, only if they match, writes version N+1 to all three
// and publishes N+1 on prefix+"rules:changed". Versions are durable data:
// they have no TTL and are kept forever (a version is about the size of
// the document; 1,000 edits of a 1 MB set take 1 GB, so prune by hand if
// that ever matters). Run Redis with AOF persistence (appendonly yes), or
// a restart loses the rules and their history.
type Rules struct {
	store   *Store
	now     func() time.Time
	head    string
	history string
	channel string
	// poll is how often Watch reads the current version besides pub/sub.
	poll time.Duration
}

// NewRules returns the rule-set store; now is the clock (nil: time.Now).
func NewRules(st *Store, now func() time.Time) *Rules {
	if now == nil {
		now = time.Now
	}
	return &Rules{
		store:   st,
		now:     now,
		head:    st.Key("rules:{r}:head"),
		history: st.Key("rules:{r}:history"),
		channel: st.Key("rules:changed"),
		poll:    500 * time.Millisecond,
	}
}

func (r *Rules) docKey(version int64) string {
	return r.store.Key("rules:{r}:doc:" + strconv.FormatInt(version, 10))
}

// saveScript writes version ARGV[2] if the current version is ARGV[1].
// KEYS: head, history, doc key of the new version. ARGV: expected version,
// new version, RuleVersion JSON, document, channel. Returns {1, new} on
// success, {0, current} on a version mismatch.
var saveScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if cur ~= tonumber(ARGV[1]) then
  return {0, cur}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('rules: version ' .. ARGV[2] .. ' exists already beyond the current version ' .. cur)
end
redis.call('SET', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'meta', ARGV[3], 'doc', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[2])
return {1, tonumber(ARGV[2])}`)

// Current returns the current version and its document: version 0 and a
// nil document when nothing was saved yet.
func (r *Rules) Current(ctx context.Context) (RuleVersion, []byte, error) {
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	vals, err := r.store.client.HMGet(ctx, r.head, "meta", "doc").Result()
	if err != nil {
		return RuleVersion{}, nil, Unavailable("store: current rules", err)
	}
	if vals[0] == nil {
		return RuleVersion{}, nil, nil
	}
	meta, _ := vals[0].(string)
	doc, _ := vals[1].(string)
	var v RuleVersion
	if err := json.Unmarshal([]byte(meta), &v); err != nil {
		return RuleVersion{}, nil, fmt.Errorf("store: current rules: decode version: %w", err)
	}
	return v, []byte(doc), nil
}

// version returns the current version number (0: none).
func (r *Rules) version(ctx context.Context) (int64, error) {
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	v, err := r.store.client.HGet(ctx, r.head, "version").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, Unavailable("store: rules version", err)
	}
	return v, nil
}

// Get returns version and its document; ErrNotFound if there is no such
// version.
func (r *Rules) Get(ctx context.Context, version int64) (RuleVersion, []byte, error) {
	if version <= 0 {
		return RuleVersion{}, nil, fmt.Errorf("store: rules version %d: %w", version, ErrNotFound)
	}
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	n := strconv.FormatInt(version, 10)
	pipe := r.store.client.Pipeline() // one slot: one node
	docCmd := pipe.Get(ctx, r.docKey(version))
	metaCmd := pipe.ZRangeByScore(ctx, r.history, &redis.ZRangeBy{Min: n, Max: n, Count: 1})
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return RuleVersion{}, nil, Unavailable("store: get rules version", err)
	}
	doc, err := docCmd.Bytes()
	if errors.Is(err, redis.Nil) || len(metaCmd.Val()) == 0 {
		return RuleVersion{}, nil, fmt.Errorf("store: rules version %d: %w", version, ErrNotFound)
	}
	if err != nil {
		return RuleVersion{}, nil, Unavailable("store: get rules version", err)
	}
	var v RuleVersion
	if err := json.Unmarshal([]byte(metaCmd.Val()[0]), &v); err != nil {
		return RuleVersion{}, nil, fmt.Errorf("store: rules version %d: decode: %w", version, err)
	}
	return v, doc, nil
}

// History returns up to limit versions older than before (0: from the
// newest), newest first. limit is clamped to 1..1000 (0: 50). The page
// after this one starts before the last version returned.
func (r *Rules) History(ctx context.Context, before int64, limit int) ([]RuleVersion, error) {
	switch {
	case limit <= 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	hi := "+inf"
	if before > 0 {
		hi = "(" + strconv.FormatInt(before, 10)
	}
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	metas, err := r.store.client.ZRevRangeByScore(ctx, r.history, &redis.ZRangeBy{Min: "-inf", Max: hi, Count: int64(limit)}).Result()
	if err != nil {
		return nil, Unavailable("store: rules history", err)
	}
	out := make([]RuleVersion, 0, len(metas))
	for _, m := range metas {
		var v RuleVersion
		if err := json.Unmarshal([]byte(m), &v); err != nil {
			return nil, fmt.Errorf("store: rules history: decode: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Save stores doc as the next version if the current version is expected
// (0: nothing saved yet), else it returns ErrConflict and changes nothing.
// A doc identical to the current document makes no new version: Save
// returns the current version and no error, whatever expected is (the
// state the caller asked for stands; this also makes a retried Save
// harmless). The diff is computed against the current document read
// before the write; the script's version check guarantees that this is
// still the previous version when the write happens.
func (r *Rules) Save(ctx context.Context, expected int64, doc []byte, m ChangeMeta) (RuleVersion, error) {
	v, _, err := r.save(ctx, "store: save rules", expected, doc, m, 0)
	return v, err
}

// Restore makes a new version whose document is that of version (same
// conflict and no-change rules as Save), with RestoredFrom set.
func (r *Rules) Restore(ctx context.Context, expected, version int64, m ChangeMeta) (RuleVersion, error) {
	_, doc, err := r.Get(ctx, version)
	if err != nil {
		return RuleVersion{}, fmt.Errorf("store: restore rules: %w", err)
	}
	v, _, err := r.save(ctx, "store: restore rules", expected, doc, m, version)
	return v, err
}

// SeedIfEmpty saves doc as version 1 if no version exists yet, and tells
// whether it did; otherwise it returns the current version untouched.
// Several replicas starting at once seed exactly once.
func (r *Rules) SeedIfEmpty(ctx context.Context, doc []byte, m ChangeMeta) (RuleVersion, bool, error) {
	v, created, err := r.save(ctx, "store: seed rules", 0, doc, m, 0)
	if err == nil {
		return v, created, nil
	}
	if !errors.Is(err, ErrConflict) {
		return RuleVersion{}, false, err
	}
	cur, _, err := r.Current(ctx)
	if err != nil {
		return RuleVersion{}, false, fmt.Errorf("store: seed rules: %w", err)
	}
	return cur, false, nil
}

// Replace saves doc as the next version whatever the current version is
// (read-only mode: the file is the source of truth). It retries on
// concurrent changes, so the diff is always against the version it
// replaced; a doc identical to the current one makes no new version.
func (r *Rules) Replace(ctx context.Context, doc []byte, m ChangeMeta) (RuleVersion, error) {
	const attempts = 20
	var err error
	for range attempts {
		var cur int64
		cur, err = r.version(ctx)
		if err != nil {
			return RuleVersion{}, fmt.Errorf("store: replace rules: %w", err)
		}
		var v RuleVersion
		v, _, err = r.save(ctx, "store: replace rules", cur, doc, m, 0)
		if !errors.Is(err, ErrConflict) {
			return v, err
		}
	}
	return RuleVersion{}, err
}

func checkMeta(m ChangeMeta) error {
	for _, f := range []struct{ name, v string }{
		{"author", m.Author}, {"client IP", m.ClientIP}, {"request ID", m.RequestID}, {"comment", m.Comment},
	} {
		if len(f.v) > MaxChangeText {
			return fmt.Errorf("%s is %d bytes, more than %d: %w", f.name, len(f.v), MaxChangeText, ErrTooLarge)
		}
	}
	return nil
}

// save is Save; created tells whether it made a new version.
func (r *Rules) save(ctx context.Context, op string, expected int64, doc []byte, m ChangeMeta, restoredFrom int64) (_ RuleVersion, created bool, _ error) {
	if len(doc) > MaxRulesDoc {
		return RuleVersion{}, false, fmt.Errorf("%s: document is %d bytes, the limit is %d: %w", op, len(doc), MaxRulesDoc, ErrTooLarge)
	}
	if err := checkMeta(m); err != nil {
		return RuleVersion{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if expected < 0 {
		return RuleVersion{}, false, fmt.Errorf("%s: expected version %d: %w", op, expected, ErrConflict)
	}
	cur, curDoc, err := r.Current(ctx)
	if err != nil {
		return RuleVersion{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if cur.Version > 0 && bytes.Equal(curDoc, doc) {
		return cur, false, nil
	}
	if cur.Version != expected {
		return RuleVersion{}, false, fmt.Errorf("%s: expected version %d, current is %d: %w", op, expected, cur.Version, ErrConflict)
	}
	next := expected + 1
	v := RuleVersion{
		Version:      next,
		Author:       m.Author,
		ClientIP:     m.ClientIP,
		RequestID:    m.RequestID,
		Comment:      m.Comment,
		Time:         r.now().UTC(),
		Diff:         unifiedDiff("v"+strconv.FormatInt(expected, 10), "v"+strconv.FormatInt(next, 10), curDoc, doc),
		RestoredFrom: restoredFrom,
	}
	meta, err := json.Marshal(v)
	if err != nil {
		return RuleVersion{}, false, fmt.Errorf("%s: encode: %w", op, err)
	}
	ctx, cancel := r.store.op(ctx)
	defer cancel()
	res, err := saveScript.Run(ctx, r.store.client,
		[]string{r.head, r.history, r.docKey(next)},
		expected, next, meta, doc, r.channel).Int64Slice()
	if err != nil {
		return RuleVersion{}, false, Unavailable(op, err)
	}
	if len(res) != 2 {
		return RuleVersion{}, false, fmt.Errorf("%s: unexpected script reply %v", op, res)
	}
	if res[0] == 1 {
		return v, true, nil
	}
	// Someone else saved between our read and the script, or go-redis
	// retried our script after losing its reply. In the latter case (and
	// whenever the document now there is ours) the change stands.
	now, nowDoc, err := r.Current(ctx)
	if err == nil && now.Version > 0 && bytes.Equal(nowDoc, doc) {
		got, _ := json.Marshal(now)
		return now, bytes.Equal(got, meta), nil // identical meta: our own write
	}
	return RuleVersion{}, false, fmt.Errorf("%s: expected version %d, current is %d: %w", op, expected, res[1], ErrConflict)
}

// Watch calls fn with the current version when it starts (0: none yet),
// then whenever the current version changes, on any replica, until ctx
// ends. Changes arrive by Redis pub/sub within milliseconds; since
// pub/sub drops messages while the subscriber reconnects, Watch also
// reads the version every half second, so every replica sees a change
// within a second. fn runs on Watch's goroutine, one call at a time, and
// receives the newest version: intermediate versions may be skipped. When
// Redis is down, Watch retries with a growing pause (up to 5 s) and logs
// the outage once, and its recovery.
func (r *Rules) Watch(ctx context.Context, fn func(version int64)) {
	r.WatchLoad(ctx, func(v int64) error { fn(v); return nil })
}

// WatchLoad is Watch for a fn that can fail to load the version it is
// given (its Current failed): a version counts as seen only once fn
// returns nil. Until then WatchLoad calls fn again with the newest version,
// with the same growing pause (up to 5 s) as during an outage, and logs a
// warning once ("behind") and an info when caught up, so that a replica
// never keeps old rules silently until the next save.
func (r *Rules) WatchLoad(ctx context.Context, fn func(version int64) error) {
	const maxBackoff = 5 * time.Second
	log := r.store.logger
	ps := r.store.client.Subscribe(ctx, r.channel)
	defer ps.Close()

	last := int64(-1)
	var lastPoll time.Time
	backoff := time.Duration(0)
	failing := false
	behind := false // fn failed for the newest version
	fail := func(err error) {
		if !failing {
			log.Warn("rules watch: redis unavailable; retrying", "err", err)
			failing = true
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), maxBackoff)
	}
	check := func() {
		lastPoll = time.Now()
		v, err := r.version(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			return
		}
		if failing {
			log.Info("rules watch: redis available again")
			failing = false
		}
		if v != last {
			if err := fn(v); err != nil {
				if !behind && ctx.Err() == nil {
					log.Warn("rules watch: behind: version not loaded; retrying", "version", v, "err", err)
				}
				behind = true
				backoff = min(max(2*backoff, 250*time.Millisecond), maxBackoff)
				return
			}
			if behind {
				log.Info("rules watch: caught up", "version", v)
				behind = false
			}
			last = v
		}
		backoff = 0
	}
	check()
	for ctx.Err() == nil {
		if backoff > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			check()
			if backoff > 0 {
				continue
			}
		}
		wait := max(r.poll-time.Since(lastPoll), time.Millisecond)
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if ctx.Err() != nil {
			return
		}
		var nerr interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &nerr) && nerr.Timeout():
			check()
		case err != nil:
			// The subscription's connection failed; go-redis reconnects
			// and subscribes again on the next receive.
			fail(err)
		default:
			switch msg.(type) {
			case *redis.Message, *redis.Subscription:
				// A change, or a (re)subscription after which messages
				// may have been missed: read the version.
				check()
			default:
				if time.Since(lastPoll) >= r.poll {
					check()
				}
			}
		}
	}
}
