package store

import (
	"cmp"
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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/identity"
)

// Session is a signed-in browser. It is stored in Redis under a hash of
// the cookie token, so a Redis dump yields no usable cookie; the stored
// form is in session_codec.go (the JSON names below are those of older
// Wardens' sessions, still read).
type Session struct {
	// Key is the first 16 bytes of the SHA-256 of the cookie token, in hex
	// (all 32 bytes for a session made by a Warden before that): an
	// identifier safe to show to admins and to log. The token itself is
	// never stored.
	Key       string        `json:"key"`
	User      identity.User `json:"user"`
	CreatedAt time.Time     `json:"created_at"`
	LastSeen  time.Time     `json:"last_seen"`
	// ExpiresAt is the absolute end (CreatedAt + AbsoluteLifetime).
	ExpiresAt time.Time `json:"expires_at"`
	ClientIP  string    `json:"client_ip"`
	UserAgent string    `json:"user_agent"`
	// CheckedAt is when User was last looked up in the directory (the
	// sign-in, or the latest re-check); zero in sessions written before
	// re-checks existed, which count from CreatedAt.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// Authn is how the user signed in (zero in sessions written before it
	// existed: a password alone).
	Authn identity.Authn `json:"authn,omitzero"`
	// Pending is set while the sign-in is not finished: PendingFactor (the
	// second factor is due) or PendingEnroll (a factor must be set up
	// first). Such a session reaches only the pages that finish it.
	Pending string `json:"pending,omitempty"`
}

// SignIn is how the user signed in: Authn, or for a session written before
// sessions recorded it, a password alone checked when the session was made.
func (s Session) SignIn() identity.Authn {
	if s.Authn.Method == "" {
		return identity.PasswordOnly(s.CreatedAt)
	}
	return s.Authn
}

// Values of Session.Pending.
const (
	PendingFactor = "factor"
	PendingEnroll = "enroll"
)

// Checked returns when the session's user was last looked up.
func (s Session) Checked() time.Time {
	if s.CheckedAt.IsZero() {
		return s.CreatedAt
	}
	return s.CheckedAt
}

// SessionMeta is what the web layer knows about the browser at sign-in.
type SessionMeta struct {
	ClientIP  string
	UserAgent string
	Authn     identity.Authn
	Pending   string
	// NotAfter, when set and earlier than the configured absolute
	// lifetime allows, is the session's absolute end: a session that
	// replaces another (after a second factor) ends when the first would.
	NotAfter time.Time
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
// Keys: prefix+"sess:"+Key holds the Session (encodeSession), with a TTL
// of min(idle timeout, time to the absolute end); a session made before
// keys were shortened is at prefix+"sess:"+hex(SHA-256(token)), which Get
// and Delete try when the short key is missing;
// prefix+"user:{ID}:sessions" is the index of the sessions of user ID (hash
// tag on the user ID), a sorted set of their keys scored by creation (Unix
// ms), whose TTL is the absolute lifetime, renewed at each sign-in, so it
// outlives every session it lists (it orders the user's sessions for the
// limit per user, see CreateAndEvict; Wardens before the limit kept a plain
// set, prefix+"user:{ID}:sess", which is read and emptied into the sorted
// set, see legacyUserKey); prefix+"sessions:{s:X}" for X in 0-f is the index of all
// sessions (see ListAll) in 16 shards, each a sorted set of session keys
// (hex) scored by their absolute end in Unix milliseconds; a session is in
// the shard named by the first hex digit of its key. Both indexes hold the
// Key (32 hex digits; 64 for a session made before keys were shortened):
// short members keep each entry at about 50 bytes while a sorted set is
// compact (listpack, up to 128 members). The shards have
// different hash tags, so in Redis Cluster they are spread over the masters
// and no single key is written by every sign-in: losing one master fails
// only the sign-ins whose keys live there. The index has no TTL: members
// leave it on sign-out and revoke, and ListAll prunes the expired and the
// vanished ones. (Before the shards, the index was the single key
// prefix+"sessions"; ListAll still reads and prunes it, see legacyIndexKey.)
type Sessions struct {
	store   *Store
	cfg     SessionConfig
	now     func() time.Time
	random  io.Reader
	refresh time.Duration
	max     int  // live sessions per user (cfg.MaxPerUser, 0 meaning the default)
	json    bool // cfg.Format json: new sessions as older Wardens wrote them
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
		max:     cfg.maxPerUser(),
		json:    cfg.Format == SessionFormatJSON,
	}, nil
}

// keyOf is the Key of the session of token: the short one, or with
// session.format json the 64-digit one older Wardens look up.
func (s *Sessions) keyOf(token string) string {
	short, legacy, _ := keysOf(token)
	if s.json {
		return legacy
	}
	return short
}

// encode is the stored value of sess: compact, or with session.format
// json the JSON older Wardens read.
func (s *Sessions) encode(sess Session) []byte {
	if s.json {
		if b, err := json.Marshal(sess); err == nil {
			return b
		}
	}
	return encodeSession(sess)
}

func (s *Sessions) sessionKey(hexKey string) string { return s.store.Key("sess:" + hexKey) }

// indexShards is the number of shards of the index of all sessions.
const indexShards = 16

// indexKey returns the index shard of the session hexKey: the one named by
// its first hex digit (the key is a SHA-256, so the shards fill evenly).
func (s *Sessions) indexKey(hexKey string) string {
	d := "0"
	if hexKey != "" {
		d = hexKey[:1]
	}
	return s.indexShard(d)
}

// indexShard returns the key of the index shard d (one hex digit).
func (s *Sessions) indexShard(d string) string {
	return s.store.Key("sessions:{s:" + d + "}")
}

// indexKeys returns the keys of every index shard, in shard order.
func (s *Sessions) indexKeys() []string {
	out := make([]string, indexShards)
	for i := range indexShards {
		out[i] = s.indexShard(strconv.FormatInt(int64(i), 16))
	}
	return out
}

// legacyIndexKey is the unsharded index of older Wardens. Nothing adds to
// it any more; ListAll still lists and prunes its members, so sessions
// created before an upgrade stay visible until they end (it empties itself
// within one absolute lifetime).
func (s *Sessions) legacyIndexKey() string { return s.store.Key("sessions") }

// zremByShard queues one ZREM per index shard for hexKeys.
func (s *Sessions) zremByShard(ctx context.Context, pipe redis.Pipeliner, hexKeys []string) {
	byShard := map[string][]any{}
	for _, k := range hexKeys {
		ik := s.indexKey(k)
		byShard[ik] = append(byShard[ik], k)
	}
	for ik, ks := range byShard {
		pipe.ZRem(ctx, ik, ks...)
	}
}

// nameKey maps a username (normalized) to the directory ID of the user who
// last signed in with it, so that an operator can revoke a user the
// directory no longer knows by name (UserIDByName).
func (s *Sessions) nameKey(username string) string {
	return s.store.Key("uname:" + NormalizeUsername(username))
}

// UserNameTTL: how long the name-to-ID mapping outlives a user's last
// sign-in; longer than any session or OIDC grant that sign-in can start.
const UserNameTTL = 31 * 24 * time.Hour

// UserIDByName returns the directory ID of the user who last signed in
// as username (ErrNotFound when nobody did within UserNameTTL).
func (s *Sessions) UserIDByName(ctx context.Context, username string) (string, error) {
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	id, err := s.store.client.Get(ctx, s.nameKey(username)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("store: user by name: %w", ErrNotFound)
	}
	if err != nil {
		return "", Unavailable("store: user by name", err)
	}
	return id, nil
}

// Rechecked stores the result of a fresh directory look-up in the session
// of token: user (same ID) and CheckedAt = now. The session keeps its TTL;
// a session ended meanwhile stays ended (ErrNotFound).
func (s *Sessions) Rechecked(ctx context.Context, token string, sess Session, user identity.User) (Session, error) {
	key, legacy, ok := keysOf(token)
	if !ok || (sess.Key != key && sess.Key != legacy) {
		return Session{}, fmt.Errorf("store: recheck session: %w", ErrNotFound)
	}
	if user.ID != sess.User.ID {
		return Session{}, errors.New("store: recheck session: another user")
	}
	sess.User, sess.CheckedAt = user, s.now().Truncate(time.Millisecond)
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	err := s.store.client.SetArgs(ctx, s.sessionKey(sess.Key), s.encode(sess), redis.SetArgs{Mode: "XX", KeepTTL: true}).Err()
	if errors.Is(err, redis.Nil) {
		return Session{}, fmt.Errorf("store: recheck session: deleted meanwhile: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, Unavailable("store: recheck session", err)
	}
	return sess, nil
}

// userKey is the index of the sessions of userID: a sorted set of their
// hex keys scored by creation (Unix ms).
func (s *Sessions) userKey(userID string) string {
	return s.store.Key("user:{" + userID + "}:sessions")
}

// legacyUserKey is the index of the sessions of userID that Wardens before
// the limit per user kept: a plain set of hex keys, in the slot of userKey
// (same hash tag). Nothing adds to it any more but such a Warden during a
// rolling upgrade; each sign-in of the user moves its members into userKey
// (see indexScript), and ListUser and RevokeUser read both, so a session
// listed in either is found. It expires with the last session it lists.
func (s *Sessions) legacyUserKey(userID string) string {
	return s.store.Key("user:{" + userID + "}:sess")
}

// unindexUser queues the removal of hexKeys from both indexes of userID.
func (s *Sessions) unindexUser(ctx context.Context, pipe redis.Pipeliner, userID string, hexKeys ...string) {
	if userID == "" || len(hexKeys) == 0 {
		return
	}
	members := toAny(hexKeys)
	pipe.ZRem(ctx, s.userKey(userID), members...)
	pipe.SRem(ctx, s.legacyUserKey(userID), members...)
}

// keyLen is the length of a session's Key: 16 bytes in hex. 128 bits of
// a hash of 256 random bits: no two sessions share one, and a Key does not
// lead back to its token.
const keyLen = 32

// keysOf returns the Key of the session of token (the first 16 bytes of
// its SHA-256, in hex) and its legacy Key (all 32), or false when token
// does not have the shape of a token this package issues (43 characters of
// base64url that decode, canonically, to 32 bytes).
func keysOf(token string) (key, legacy string, ok bool) {
	if len(token) != tokenLen {
		return "", "", false
	}
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil || len(raw) != tokenBytes {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(token))
	legacy = hex.EncodeToString(sum[:])
	return legacy[:keyLen], legacy, true
}

// validHexKey reports whether k has the shape of a Key: 32 lower-case hex
// digits, or 64 for a legacy one.
func validHexKey(k string) bool {
	if len(k) != keyLen && len(k) != 2*sha256.Size {
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
// only when every write succeeded. It keeps the user within the limit per
// user as CreateAndEvict does, without saying how many sessions it ended:
// a caller that audits uses CreateAndEvict.
func (s *Sessions) Create(ctx context.Context, user identity.User, meta SessionMeta) (string, Session, error) {
	token, sess, _, err := s.create(ctx, user, meta, nil)
	return token, sess, err
}

// CreateAndEvict is Create that also returns how many of the user's other
// sessions it ended to keep the user within the limit per user
// (SessionConfig.MaxPerUser), for the caller's audit: when the new session
// leaves the user with more live sessions than the limit, the oldest (by
// creation) end so that exactly the limit remain, the new one among them.
// Sessions that have ended (idle, absolute end, deleted) do not count.
// Which sessions ended is not returned: their keys are not for logs.
//
// While the user's index holds at most the limit this costs no round trip
// (the count comes back with the creation's own); past it, two more: the
// user's newest sessions are read (as many as the limit, plus a few), then
// the older ones are deleted. Failing to end them is logged, not an error:
// the sign-in stands, and the user's next sign-in ends them.
//
// Concurrent sign-ins of one user: each one's index update is atomic (a
// script on the user's index) and sees every sign-in before it, and each
// keeps the newest of what it saw, so once all have finished at most the
// limit remain (with an ordering by creation that no two sign-ins see
// differently, none of the newest is ended); meanwhile the user may hold
// the limit plus the number of sign-ins in progress. In Cluster, a session
// key that newToken could not place with the user's index may be written
// after the index entry: a sign-in that finds such an entry without its
// key (created within createGrace) counts it as live and leaves it alone,
// so the bound is the same.
func (s *Sessions) CreateAndEvict(ctx context.Context, user identity.User, meta SessionMeta) (string, Session, int, error) {
	return s.create(ctx, user, meta, nil)
}

// Replace is Create of a session that takes the place of old (after a
// second factor: same user, a new token), with the old one deleted in the
// same pipeline: one round trip instead of a Create and a Delete. A failure
// to delete the old session is only logged (it has been replaced in the
// browser, and ends by its own TTL).
func (s *Sessions) Replace(ctx context.Context, old Session, user identity.User, meta SessionMeta) (string, Session, error) {
	token, sess, _, err := s.create(ctx, user, meta, &old)
	return token, sess, err
}

// ReplaceAndEvict is Replace that returns how many sessions it ended to
// keep the user within the limit, as CreateAndEvict. The replaced session
// does not count: it leaves the user's index in the same step as the new
// one enters it.
func (s *Sessions) ReplaceAndEvict(ctx context.Context, old Session, user identity.User, meta SessionMeta) (string, Session, int, error) {
	return s.create(ctx, user, meta, &old)
}

func (s *Sessions) create(ctx context.Context, user identity.User, meta SessionMeta, old *Session) (string, Session, int, error) {
	if user.ID == "" {
		return "", Session{}, 0, errors.New("store: create session: user has no ID")
	}
	token, hexKey, err := s.newToken(ctx, user.ID) // placed in Cluster: see newToken
	if err != nil {
		return "", Session{}, 0, err
	}
	// Stored times have millisecond precision: the session returned is the
	// one Get will read.
	now := s.now().Truncate(time.Millisecond)
	sess := Session{
		Key:       hexKey,
		User:      user,
		CreatedAt: now,
		LastSeen:  now,
		ExpiresAt: now.Add(s.cfg.AbsoluteLifetime),
		CheckedAt: now,
		ClientIP:  meta.ClientIP,
		UserAgent: truncate(meta.UserAgent, maxUserAgent),
		Authn:     meta.Authn,
		Pending:   meta.Pending,
	}
	if !meta.NotAfter.IsZero() && meta.NotAfter.Before(sess.ExpiresAt) {
		sess.ExpiresAt = meta.NotAfter.Truncate(time.Millisecond)
	}
	sess.Authn.Time = sess.Authn.Time.Truncate(time.Millisecond)
	sess.Authn.FactorTime = sess.Authn.FactorTime.Truncate(time.Millisecond)
	val := s.encode(sess)
	parent := ctx
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	// The session key and the user index cannot share a hash tag (Get finds
	// the session from the token alone), so this is a plain pipeline, not
	// MULTI: go-redis's ClusterClient splits it by slot and may run the parts
	// on different nodes. A partial write is harmless: the token is handed
	// out only if all succeeded, so an orphan session key is unreachable
	// and expires, and a dangling index entry is pruned by ListUser or
	// ListAll. The index writes come after the SET, so that (on one
	// connection) a concurrent ListAll, ListUser or eviction never sees the
	// member before the key; in Cluster the parts may run on different
	// nodes in any order (see newToken), which is why those leave a
	// just-created member whose key they cannot see alone.
	// SET NX: a collision of 256 random bits means a broken random source.
	// The name index (UserIDByName, for operators) rides along but is not
	// part of the sign-in: its own slot may be on a master that is down
	// (Cluster) without failing the sign-in.
	// The user's index is written by indexScript, atomically: it also drops
	// the replaced session and counts the user's sessions (see
	// CreateAndEvict).
	pipe := s.store.client.Pipeline()
	name := pipe.Set(ctx, s.nameKey(user.Username), user.ID, UserNameTTL)
	set := pipe.SetArgs(ctx, s.sessionKey(hexKey), val, redis.SetArgs{Mode: "NX",
		TTL: max(min(s.cfg.IdleTimeout, sess.ExpiresAt.Sub(now)), time.Second)})
	replaced := ""
	if old != nil && validHexKey(old.Key) && old.User.ID == user.ID {
		replaced = old.Key
	}
	index := indexScript.Eval(ctx, pipe, []string{s.userKey(user.ID), s.legacyUserKey(user.ID)},
		hexKey, now.UnixMilli(), s.cfg.AbsoluteLifetime.Milliseconds(), s.max, replaced)
	zadd := pipe.ZAdd(ctx, s.indexKey(hexKey), redis.Z{Score: float64(sess.ExpiresAt.UnixMilli()), Member: hexKey})
	var oldDel *redis.IntCmd
	if old != nil && validHexKey(old.Key) {
		oldDel = pipe.Del(ctx, s.sessionKey(old.Key))
		pipe.ZRem(ctx, s.indexKey(old.Key), old.Key)
		if replaced == "" {
			s.unindexUser(ctx, pipe, old.User.ID, old.Key)
		}
	}
	_, _ = pipe.Exec(ctx)
	if oldDel != nil && oldDel.Err() != nil {
		s.store.logger.Warn("store: replaced session not deleted (it ends by its TTL)", "err", oldDel.Err().Error())
	}
	if nerr := name.Err(); nerr != nil {
		s.store.logger.Warn("store: name index not written (wardend users revoke will need -id for this user)",
			"user", user.Username, "err", nerr.Error())
	}
	err = errors.Join(index.Err(), zadd.Err())
	if err == nil {
		err = set.Err()
	}
	if errors.Is(err, redis.Nil) {
		// NX refused. go-redis retries a command whose reply was lost, so
		// the key may hold our own write; anything else is a collision.
		got, gerr := s.store.client.Get(ctx, s.sessionKey(hexKey)).Bytes()
		if gerr != nil && !errors.Is(gerr, redis.Nil) {
			return "", Session{}, 0, Unavailable("store: create session", gerr)
		}
		if string(got) != string(val) {
			return "", Session{}, 0, errors.New("store: create session: key exists (random source broken?)")
		}
		err = nil
	}
	if err != nil {
		return "", Session{}, 0, Unavailable("store: create session", err)
	}
	// redis.wait_replicas: the session must survive a failover before the
	// token is handed out (else the sign-in is a 503, see awaitReplicas).
	if err := s.store.awaitReplicas(ctx, "store: create session", s.sessionKey(hexKey)); err != nil {
		return "", Session{}, 0, err
	}
	evicted := 0
	if over, members := overLimit(index); over {
		evicted = s.evict(parent, user.ID, hexKey, members)
	}
	return token, sess, evicted, nil
}

// Get returns the session of token. A token of the wrong shape, an unknown
// or ended session gives ErrNotFound; a token of the wrong shape never
// reaches Redis. A token without a session costs two reads: the key of a
// session made before keys were shortened is tried too.
//
// The absolute end and the idle timeout are checked against the injected
// clock. To avoid a write per request, LastSeen (and the key's TTL) is
// written back only when the stored LastSeen is at least the refresh
// interval old: one minute, or a quarter of the idle timeout if that is
// shorter. Idle expiry is therefore measured from the last recorded use and
// can come up to one refresh interval early. The write-back uses SET XX, so
// a session deleted meanwhile (sign-out, revoke) is never brought back.
func (s *Sessions) Get(ctx context.Context, token string) (Session, error) {
	short, legacy, ok := keysOf(token)
	if !ok {
		return Session{}, fmt.Errorf("store: get session: malformed token: %w", ErrNotFound)
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	hexKey := short
	val, err := s.store.client.Get(ctx, s.sessionKey(hexKey)).Bytes()
	if errors.Is(err, redis.Nil) {
		// A session made before keys were shortened, or none.
		hexKey = legacy
		val, err = s.store.client.Get(ctx, s.sessionKey(hexKey)).Bytes()
	}
	if errors.Is(err, redis.Nil) {
		return Session{}, fmt.Errorf("store: get session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, Unavailable("store: get session", err)
	}
	key := s.sessionKey(hexKey)
	sess, err := decodeSession(val, hexKey)
	if err != nil {
		// Not ours or corrupt: end it rather than fail every request.
		s.store.logger.Warn("store: dropping undecodable session", "session", hexKey, "err", err.Error())
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
	sess.LastSeen = now.Truncate(time.Millisecond)
	ttl := min(s.cfg.IdleTimeout, sess.ExpiresAt.Sub(now))
	err = s.store.client.SetArgs(ctx, key, s.encode(sess), redis.SetArgs{Mode: "XX", TTL: ttl}).Err()
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
	short, legacy, ok := keysOf(token)
	if !ok {
		return nil
	}
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	err := s.deleteFetched(ctx, short)
	if errors.Is(err, ErrNotFound) {
		err = s.deleteFetched(ctx, legacy)
	}
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
// are one step) and then removes it from the index of all sessions and from
// its user's index.
func (s *Sessions) deleteFetched(ctx context.Context, hexKey string) error {
	val, err := s.store.client.GetDel(ctx, s.sessionKey(hexKey)).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: delete session: %w", ErrNotFound)
	}
	if err != nil {
		return Unavailable("store: delete session", err)
	}
	pipe := s.store.client.Pipeline()
	pipe.ZRem(ctx, s.indexKey(hexKey), hexKey)
	if sess, err := decodeSession(val, hexKey); err == nil {
		// Else there is no user index to clean; a stale entry is pruned later.
		s.unindexUser(ctx, pipe, sess.User.ID, hexKey)
	}
	_, err = pipe.Exec(ctx)
	return Unavailable("store: delete session", err)
}

// delete removes the session key, its entry in the index of all sessions
// and (when userID is known) its user index entry, in a plain pipeline
// (several slots; see Create).
func (s *Sessions) delete(ctx context.Context, hexKey, userID string) error {
	pipe := s.store.client.Pipeline()
	pipe.Del(ctx, s.sessionKey(hexKey))
	pipe.ZRem(ctx, s.indexKey(hexKey), hexKey)
	s.unindexUser(ctx, pipe, userID, hexKey)
	_, err := pipe.Exec(ctx)
	return Unavailable("store: delete session", err)
}

// ListUser returns the live sessions of userID, oldest first. Index
// entries whose session has gone (expired by TTL, or ended by the clock)
// are removed as it goes.
func (s *Sessions) ListUser(ctx context.Context, userID string) ([]Session, error) {
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	members, err := s.userMembers(ctx, userID, "store: list sessions")
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = m.key
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
		s.unindexUser(ctx, pipe, userID, dead...)
		s.zremByShard(ctx, pipe, dead)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, Unavailable("store: prune sessions", err)
		}
	}
	slices.SortFunc(sessions, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return sessions, nil
}

// userMember is an entry of a user's index: a session key and its
// creation in Unix ms (0 for an entry of the legacy index, which has none).
type userMember struct {
	key     string
	created int64
}

// userMembers reads both indexes of userID (one slot: one round trip),
// each key once.
func (s *Sessions) userMembers(ctx context.Context, userID, op string) ([]userMember, error) {
	pipe := s.store.client.Pipeline()
	zs := pipe.ZRangeWithScores(ctx, s.userKey(userID), 0, -1)
	legacy := pipe.SMembers(ctx, s.legacyUserKey(userID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable(op, err)
	}
	if err := errors.Join(zs.Err(), legacy.Err()); err != nil {
		return nil, Unavailable(op, err)
	}
	seen := make(map[string]bool, len(zs.Val()))
	out := make([]userMember, 0, len(zs.Val())+len(legacy.Val()))
	for _, z := range zs.Val() {
		k, _ := z.Member.(string)
		seen[k] = true
		out = append(out, userMember{key: k, created: int64(z.Score)})
	}
	for _, k := range legacy.Val() {
		if !seen[k] {
			out = append(out, userMember{key: k})
		}
	}
	return out, nil
}

// load fetches the sessions of hexKeys (see fetch). It returns the live
// sessions and the keys that are missing, undecodable or ended by the clock.
func (s *Sessions) load(ctx context.Context, hexKeys []string) (live []Session, dead []string, err error) {
	if len(hexKeys) == 0 {
		return nil, nil, nil
	}
	vals, err := s.fetch(ctx, hexKeys)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	for i, val := range vals {
		if val == nil {
			dead = append(dead, hexKeys[i])
			continue
		}
		sess, err := decodeSession(val, hexKeys[i])
		if err != nil || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.cfg.IdleTimeout {
			dead = append(dead, hexKeys[i])
			continue
		}
		live = append(live, sess)
	}
	return live, dead, nil
}

// fetch reads the sessions of hexKeys: nil where a key is missing. One
// MGET on a single node; in Cluster, where the keys live in different
// slots, one GET each in a pipeline.
func (s *Sessions) fetch(ctx context.Context, hexKeys []string) ([][]byte, error) {
	out := make([][]byte, len(hexKeys))
	if !s.store.cluster {
		keys := make([]string, len(hexKeys))
		for i, k := range hexKeys {
			keys[i] = s.sessionKey(k)
		}
		vals, err := s.store.client.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, Unavailable("store: load sessions", err)
		}
		for i, v := range vals {
			if str, ok := v.(string); ok {
				out[i] = []byte(str)
			}
		}
		return out, nil
	}
	pipe := s.store.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(hexKeys))
	for i, k := range hexKeys {
		cmds[i] = pipe.Get(ctx, s.sessionKey(k))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable("store: load sessions", err)
	}
	for i, c := range cmds {
		val, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, Unavailable("store: load sessions", err)
		}
		out[i] = val
	}
	return out, nil
}

// RevokeUser ends every session of userID and returns how many it ended.
// It removes from the index only the keys it read, so a session created at
// the same moment stays listed (and revocable).
func (s *Sessions) RevokeUser(ctx context.Context, userID string) (int, error) {
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	members, err := s.userMembers(ctx, userID, "store: revoke sessions")
	if err != nil {
		return 0, err
	}
	if len(members) == 0 {
		return 0, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = m.key
	}
	// Plain pipeline: the session keys and the index are in different slots.
	pipe := s.store.client.Pipeline()
	dels := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		dels[i] = pipe.Del(ctx, s.sessionKey(k))
	}
	s.unindexUser(ctx, pipe, userID, keys...)
	s.zremByShard(ctx, pipe, keys)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, Unavailable("store: revoke sessions", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// maxListAll bounds the page size of ListAll.
const maxListAll = 5000

// Cursor layout of ListAll: the score (absolute end, Unix ms) of the last
// session returned, in the top cursorScoreBits bits (enough until 2109),
// and the first cursorTieBits bits of its key, which order sessions of the
// same score (Redis orders equal scores by member). A score of zero never
// occurs (it is 1970), so 0 is free to mean "start" and "done".
const (
	cursorTieBits   = 22
	cursorScoreBits = 64 - cursorTieBits
	// createGrace is how long after its creation a member whose session
	// key ListAll cannot see is left in the index: in Cluster, Create's
	// ZADD and SET run on different nodes in no set order.
	createGrace = 10 * time.Second
)

// ListAll returns a page of live sessions of all users for the admin
// pages, oldest first (by absolute end, which is creation order while the
// absolute lifetime is unchanged), from the index shards (see Sessions),
// merged: it reads the index and the sessions it returns, never the
// keyspace. It needs every shard, so in Cluster it fails while any master
// is down. Start
// with cursor 0, pass the returned cursor back, stop when it is 0. count
// (at most 5000; <= 0 means 100) is the number of index entries read: a
// page holds fewer sessions when some of them have ended, and may be empty
// while the cursor is not 0.
//
// The cursor is opaque: not an offset but the position of the last session
// returned (its absolute end and the first 22 bits of its key), so
// sessions that end or are deleted meanwhile do not shift the pages: a walk
// returns each session that lives throughout it exactly once, and a session
// created during the walk is listed when the walk reaches the end. The one
// exception: of two sessions created in the same millisecond whose keys
// share their first 22 bits (a chance of 1 in 4 million per such pair), the
// second is skipped if a page ends on the first.
//
// Each call removes from the index the entries past their absolute end
// (one ZREMRANGEBYSCORE per shard) and those of its page whose session has gone
// (idle timeout by TTL, or ended by the clock), deleting the latter's keys
// as ListUser does.
//
// Sessions created before any index existed (by a Warden older than it) are
// not in it and do not appear here; they still end by their TTLs (within
// one absolute lifetime of the upgrade), and ListUser (hence the admin
// filter by user), RevokeUser and Get still see them. There is no backfill:
// a one-time SCAN would need a guard and resumption across replicas, for a
// gap that closes by itself.
func (s *Sessions) ListAll(ctx context.Context, cursor uint64, count int64) ([]Session, uint64, error) {
	if count <= 0 {
		count = 100
	}
	count = min(count, maxListAll)
	ctx, cancel := s.store.op(ctx)
	defer cancel()
	now := s.now()
	nowMS := now.UnixMilli()
	startMS, startTie := int64(cursor>>cursorTieBits), cursor&(1<<cursorTieBits-1)
	// Every shard (and the legacy index) gives its first count members
	// after the cursor; the page is the first count of their merge in
	// (score, member) order, which is the order Redis keeps within each
	// shard, so the cursor means the same position in every shard.
	type shardRead struct {
		key      string
		tie, rng *redis.ZSliceCmd
	}
	indexes := append(s.indexKeys(), s.legacyIndexKey())
	reads := make([]shardRead, len(indexes))
	pipe := s.store.client.Pipeline()
	for i, index := range indexes {
		reads[i].key = index
		pipe.ZRemRangeByScore(ctx, index, "-inf", strconv.FormatInt(nowMS, 10))
		after := "(" + strconv.FormatInt(nowMS, 10) // live: absolute end after now
		if cursor != 0 && startMS > nowMS {
			// The rest of the last page's score, then what follows it.
			sc := strconv.FormatInt(startMS, 10)
			reads[i].tie = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: index, Start: sc, Stop: sc,
				ByScore: true, Count: maxListAll})
			after = "(" + sc
		}
		reads[i].rng = pipe.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: index, Start: after, Stop: "+inf",
			ByScore: true, Count: count})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, Unavailable("store: list sessions", err)
	}
	type member struct {
		redis.Z
		index string
	}
	var members []member
	seen := map[string]bool{}
	for _, r := range reads {
		var zs []redis.Z
		if r.tie != nil {
			for _, m := range r.tie.Val() {
				if k, _ := m.Member.(string); tieBits(k) > startTie {
					zs = append(zs, m)
				}
			}
		}
		for _, m := range append(zs, r.rng.Val()...) {
			k := fmt.Sprint(m.Member)
			if seen[k] {
				continue // in the legacy index and a shard: list it once
			}
			seen[k] = true
			members = append(members, member{Z: m, index: r.key})
		}
	}
	slices.SortFunc(members, func(a, b member) int {
		if a.Score != b.Score {
			return cmp.Compare(a.Score, b.Score)
		}
		return strings.Compare(fmt.Sprint(a.Member), fmt.Sprint(b.Member))
	})
	if int64(len(members)) > count {
		members = members[:count]
	}
	hexKeys := make([]string, 0, len(members))
	gone := map[string][]any{} // members to remove, by index key
	for _, m := range members {
		if k, ok := m.Member.(string); ok && validHexKey(k) {
			hexKeys = append(hexKeys, k)
		} else {
			gone[m.index] = append(gone[m.index], m.Member) // not a session key: never ours
		}
	}
	live, dead, err := s.load(ctx, hexKeys)
	if err != nil {
		return nil, 0, err
	}
	// Prune the dead, except a member created within createGrace whose key
	// may not have been written yet (see Create).
	fresh := float64(now.Add(s.cfg.AbsoluteLifetime - createGrace).UnixMilli())
	if len(dead) > 0 || len(gone) > 0 {
		isDead := make(map[string]bool, len(dead))
		for _, k := range dead {
			isDead[k] = true
		}
		pipe := s.store.client.Pipeline()
		for _, m := range members {
			if k, _ := m.Member.(string); isDead[k] && m.Score <= fresh {
				gone[m.index] = append(gone[m.index], k)
				pipe.Del(ctx, s.sessionKey(k))
			}
		}
		if len(gone) > 0 {
			for index, rem := range gone {
				pipe.ZRem(ctx, index, rem...)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return nil, 0, Unavailable("store: prune sessions", err)
			}
		}
	}
	if int64(len(members)) < count {
		return live, 0, nil // the end of the index
	}
	last := members[len(members)-1]
	lastMS := int64(last.Score)
	if lastMS <= 0 || lastMS >= 1<<cursorScoreBits {
		return nil, 0, fmt.Errorf("store: list sessions: absolute end %d out of range", lastMS)
	}
	k, _ := last.Member.(string)
	return live, uint64(lastMS)<<cursorTieBits | tieBits(k), nil
}

// tieBits is the first cursorTieBits bits of a hex session key (0 for
// anything else): equal scores sort by member, so they sort by these too.
func tieBits(hexKey string) uint64 {
	const digits = (cursorTieBits + 3) / 4
	if len(hexKey) < digits {
		return 0
	}
	v, err := strconv.ParseUint(hexKey[:digits], 16, 64)
	if err != nil {
		return 0
	}
	return v >> (4*digits - cursorTieBits)
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
