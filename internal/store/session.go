package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
)

// Session is a signed-in browser. It is stored in Redis under the SHA-256 of
// the cookie token, so a Redis dump yields no usable cookie.
type Session struct {
	// Key is the hex SHA-256 of the cookie token: an identifier safe to
	// show to admins and to log. The token itself is never stored.
	Key       string        `json:"key"`
	User      identity.User `json:"user"`
	CreatedAt time.Time     `json:"created_at"`
	LastSeen  time.Time     `json:"last_seen"`
	// ExpiresAt is the absolute end (CreatedAt + AbsoluteLifetime).
	ExpiresAt time.Time `json:"expires_at"`
	ClientIP  string    `json:"client_ip"`
	UserAgent string    `json:"user_agent"`
}

// SessionMeta is what the web layer knows about the browser at sign-in.
type SessionMeta struct {
	ClientIP  string
	UserAgent string
}

const (
	tokenBytes = 32
	// tokenLen is the length of a token: 32 bytes in unpadded base64url.
	tokenLen = 43
	// maxRefreshInterval bounds how often Get writes LastSeen back.
	maxRefreshInterval = time.Minute
	// maxUserAgent bounds the stored User-Agent (it comes from the client).
	maxUserAgent = 512
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// Sessions stores sign-in sessions in Redis.
//
// Keys: prefix+"sess:"+hex(SHA-256(token)) holds the JSON Session, with a
// TTL of min(idle timeout, time to the absolute end); prefix+"user:{ID}:sess"
// is a set of the session keys of user ID (hash tag on the user ID), whose
// TTL is the absolute lifetime, renewed at each sign-in, so it outlives every
// session it lists.
type Sessions struct {
	store   *Store
	cfg     SessionConfig
	now     func() time.Time
	random  io.Reader
	refresh time.Duration
}

// NewSessions returns the session store. now and random are the clock and
// the source of token randomness (nil: time.Now and crypto/rand); tests
// inject both. Expiry is decided by now, not only by Redis TTLs, so an
// injected clock is obeyed.
func NewSessions(st *Store, cfg SessionConfig, now func() time.Time, random io.Reader) (*Sessions, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: session config: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = rand.Reader
	}
	return &Sessions{
		store:   st,
		cfg:     cfg,
		now:     now,
		random:  random,
		refresh: min(maxRefreshInterval, cfg.IdleTimeout/4),
	}, nil
}

func (s *Sessions) sessionKey(hexKey string) string { return s.store.Key("sess:" + hexKey) }

func (s *Sessions) userKey(userID string) string {
	return s.store.Key("user:{" + userID + "}:sess")
}

// keyOf returns hex(SHA-256(token)), or false when token does not have the
// shape of a token this package issues (43 characters of base64url that
// decode, canonically, to 32 bytes).
func keyOf(token string) (string, bool) {
	if len(token) != tokenLen {
		return "", false
	}
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil || len(raw) != tokenBytes {
		return "", false
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:]), true
}

func validHexKey(k string) bool {
	if len(k) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(k) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Create starts a session for user and returns the cookie token (32
// random bytes, unpadded base64url) and the session. The token is returned
// only when every write succeeded.
func (s *Sessions) Create(ctx context.Context, user identity.User, meta SessionMeta) (string, Session, error) {
	if user.ID == "" {
		return "", Session{}, errors.New("store: create session: user has no ID")
	}
	raw := make([]byte, tokenBytes)
	if _, err := io.ReadFull(s.random, raw); err != nil {
		return "", Session{}, fmt.Errorf("store: create session: random: %w", err)
	}
	token := tokenEncoding.EncodeToString(raw)
	hexKey, _ := keyOf(token)
	now := s.now()
	sess := Session{
		Key:       hexKey,
		User:      user,
		CreatedAt: now,
		LastSeen:  now,
		ExpiresAt: now.Add(s.cfg.AbsoluteLifetime),
		ClientIP:  meta.ClientIP,
		UserAgent: truncate(meta.UserAgent, maxUserAgent),
	}
	val, err := json.Marshal(sess)
	if err != nil {
		return "", Session{}, fmt.Errorf("store: create session: encode: %w", err)
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	// The session key and the user index cannot share a hash tag (Get finds
	// the session from the token alone), so this is a plain pipeline, not
	// MULTI: go-redis's ClusterClient splits it by slot and may run the parts
	// on different nodes. A partial write is harmless: the token is handed
	// out only if all succeeded, so an orphan session key is unreachable
	// and expires, and a dangling index entry is pruned by ListUser.
	// SET NX: a collision of 256 random bits means a broken random source.
	pipe := s.store.client.Pipeline()
	pipe.SAdd(ctx, s.userKey(user.ID), hexKey)
	pipe.PExpire(ctx, s.userKey(user.ID), s.cfg.AbsoluteLifetime)
	set := pipe.SetArgs(ctx, s.sessionKey(hexKey), val, redis.SetArgs{Mode: "NX", TTL: min(s.cfg.IdleTimeout, s.cfg.AbsoluteLifetime)})
	_, err = pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) && errors.Is(set.Err(), redis.Nil) {
		// NX refused. go-redis retries a command whose reply was lost, so
		// the key may hold our own write; anything else is a collision.
		got, gerr := s.store.client.Get(ctx, s.sessionKey(hexKey)).Bytes()
		if gerr != nil && !errors.Is(gerr, redis.Nil) {
			return "", Session{}, Unavailable("store: create session", gerr)
		}
		if string(got) != string(val) {
			return "", Session{}, errors.New("store: create session: key exists (random source broken?)")
		}
		err = nil
	}
	if err != nil {
		return "", Session{}, Unavailable("store: create session", err)
	}
	return token, sess, nil
}

// Get returns the session of token. A token of the wrong shape, an unknown
// or ended session gives ErrNotFound; a token of the wrong shape never
// reaches Redis.
//
// The absolute end and the idle timeout are checked against the injected
// clock. To avoid a write per request, LastSeen (and the key's TTL) is
// written back only when the stored LastSeen is at least the refresh
// interval old: one minute, or a quarter of the idle timeout if that is
// shorter. Idle expiry is therefore measured from the last recorded use and
// can come up to one refresh interval early. The write-back uses SET XX, so
// a session deleted meanwhile (sign-out, revoke) is never brought back.
func (s *Sessions) Get(ctx context.Context, token string) (Session, error) {
	hexKey, ok := keyOf(token)
	if !ok {
		return Session{}, fmt.Errorf("store: get session: malformed token: %w", ErrNotFound)
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	key := s.sessionKey(hexKey)
	val, err := s.store.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Session{}, fmt.Errorf("store: get session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, Unavailable("store: get session", err)
	}
	var sess Session
	if err := json.Unmarshal(val, &sess); err != nil || sess.Key != hexKey {
		// Not ours or corrupt: end it rather than fail every request.
		s.store.logger.Warn("store: dropping undecodable session", "session", hexKey)
		if err := s.delete(ctx, hexKey, ""); err != nil {
			return Session{}, err
		}
		return Session{}, fmt.Errorf("store: get session: undecodable: %w", ErrNotFound)
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.cfg.IdleTimeout {
		if err := s.delete(ctx, hexKey, sess.User.ID); err != nil {
			return Session{}, err
		}
		return Session{}, fmt.Errorf("store: get session: ended: %w", ErrNotFound)
	}
	if now.Sub(sess.LastSeen) < s.refresh {
		return sess, nil
	}
	sess.LastSeen = now
	val, err = json.Marshal(sess)
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: encode: %w", err)
	}
	ttl := min(s.cfg.IdleTimeout, sess.ExpiresAt.Sub(now))
	err = s.store.client.SetArgs(ctx, key, val, redis.SetArgs{Mode: "XX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return Session{}, fmt.Errorf("store: get session: deleted meanwhile: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, Unavailable("store: refresh session", err)
	}
	return sess, nil
}

// Delete ends the session of token (sign-out). Deleting a session that does
// not exist, or a malformed token, is not an error.
func (s *Sessions) Delete(ctx context.Context, token string) error {
	hexKey, ok := keyOf(token)
	if !ok {
		return nil
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	err := s.deleteFetched(ctx, hexKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// DeleteByKey ends the session whose Key is hexKey (admin revoke). It
// returns ErrNotFound when there is no such session.
func (s *Sessions) DeleteByKey(ctx context.Context, hexKey string) error {
	if !validHexKey(hexKey) {
		return fmt.Errorf("store: delete session: malformed key: %w", ErrNotFound)
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	return s.deleteFetched(ctx, hexKey)
}

// deleteFetched deletes the session with GETDEL (so the read and the delete
// are one step) and then removes it from its user's index.
func (s *Sessions) deleteFetched(ctx context.Context, hexKey string) error {
	val, err := s.store.client.GetDel(ctx, s.sessionKey(hexKey)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: delete session: %w", ErrNotFound)
	}
	if err != nil {
		return Unavailable("store: delete session", err)
	}
	var sess Session
	if json.Unmarshal(val, &sess) != nil || sess.User.ID == "" {
		return nil // nothing to unindex; a stale index entry is pruned later
	}
	return Unavailable("store: delete session", s.store.client.SRem(ctx, s.userKey(sess.User.ID), hexKey).Err())
}

// delete removes the session key and (when userID is known) its index
// entry, in a plain pipeline (two slots; see Create).
func (s *Sessions) delete(ctx context.Context, hexKey, userID string) error {
	pipe := s.store.client.Pipeline()
	pipe.Del(ctx, s.sessionKey(hexKey))
	if userID != "" {
		pipe.SRem(ctx, s.userKey(userID), hexKey)
	}
	_, err := pipe.Exec(ctx)
	return Unavailable("store: delete session", err)
}

// ListUser returns the live sessions of userID, oldest first. Index
// entries whose session has gone (expired by TTL, or ended by the clock)
// are removed as it goes.
func (s *Sessions) ListUser(ctx context.Context, userID string) ([]Session, error) {
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	keys, err := s.store.client.SMembers(ctx, s.userKey(userID)).Result()
	if err != nil {
		return nil, Unavailable("store: list sessions", err)
	}
	sessions, dead, err := s.load(ctx, keys)
	if err != nil {
		return nil, err
	}
	if len(dead) > 0 {
		pipe := s.store.client.Pipeline()
		for _, k := range dead {
			pipe.Del(ctx, s.sessionKey(k))
		}
		pipe.SRem(ctx, s.userKey(userID), toAny(dead)...)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, Unavailable("store: prune sessions", err)
		}
	}
	slices.SortFunc(sessions, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return sessions, nil
}

// load fetches the sessions of hexKeys with one GET each in a pipeline (not
// MGET: in Cluster the keys live in different slots). It returns the live
// sessions and the keys that are missing, undecodable or ended by the clock.
func (s *Sessions) load(ctx context.Context, hexKeys []string) (live []Session, dead []string, err error) {
	if len(hexKeys) == 0 {
		return nil, nil, nil
	}
	pipe := s.store.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(hexKeys))
	for i, k := range hexKeys {
		cmds[i] = pipe.Get(ctx, s.sessionKey(k))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, Unavailable("store: load sessions", err)
	}
	now := s.now()
	for i, c := range cmds {
		val, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			dead = append(dead, hexKeys[i])
			continue
		}
		if err != nil {
			return nil, nil, Unavailable("store: load sessions", err)
		}
		var sess Session
		if json.Unmarshal(val, &sess) != nil || !now.Before(sess.ExpiresAt) ||
			now.Sub(sess.LastSeen) >= s.cfg.IdleTimeout {
			dead = append(dead, hexKeys[i])
			continue
		}
		live = append(live, sess)
	}
	return live, dead, nil
}

// RevokeUser ends every session of userID and returns how many it ended.
// It removes from the index only the keys it read, so a session created at
// the same moment stays listed (and revocable).
func (s *Sessions) RevokeUser(ctx context.Context, userID string) (int, error) {
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	keys, err := s.store.client.SMembers(ctx, s.userKey(userID)).Result()
	if err != nil {
		return 0, Unavailable("store: revoke sessions", err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	// Plain pipeline: the session keys and the index are in different slots.
	pipe := s.store.client.Pipeline()
	dels := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		dels[i] = pipe.Del(ctx, s.sessionKey(k))
	}
	pipe.SRem(ctx, s.userKey(userID), toAny(keys)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, Unavailable("store: revoke sessions", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// ListAll returns a page of live sessions of all users for the admin
// pages, with SCAN: start with cursor 0, pass the returned cursor back, stop
// when it is 0. count is a hint of the page size, as for SCAN; a page may
// be empty while the cursor is not 0. With Redis Cluster, SCAN is per node:
// ListAll then scans every master fully in one call and returns cursor 0.
func (s *Sessions) ListAll(ctx context.Context, cursor uint64, count int64) ([]Session, uint64, error) {
	if count <= 0 {
		count = 100
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	match := s.sessionKey("*")
	var keys []string
	next := uint64(0)
	if cc, ok := s.store.client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			it := c.Scan(ctx, 0, match, count).Iterator()
			var found []string
			for it.Next(ctx) {
				found = append(found, it.Val())
			}
			if it.Err() != nil {
				return it.Err()
			}
			mu.Lock()
			keys = append(keys, found...)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, 0, Unavailable("store: scan sessions", err)
		}
	} else {
		var err error
		keys, next, err = s.store.client.Scan(ctx, cursor, match, count).Result()
		if err != nil {
			return nil, 0, Unavailable("store: scan sessions", err)
		}
	}
	hexKeys := make([]string, 0, len(keys))
	for _, k := range keys {
		h := strings.TrimPrefix(k, s.sessionKey(""))
		if validHexKey(h) {
			hexKeys = append(hexKeys, h)
		}
	}
	live, _, err := s.load(ctx, hexKeys)
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(live, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return live, next, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
