package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The limit per user (SessionConfig.MaxPerUser): see CreateAndEvict.

// legacyMovedPerSignIn bounds how many members of a user's legacy index
// (see legacyUserKey) one sign-in moves into the sorted set, so that the
// script stays short for a user who held thousands of sessions.
const legacyMovedPerSignIn = 512

// indexScript adds a new session to its user's index, atomically on the
// index's slot (both keys share the user's hash tag).
//
// KEYS[1] the user's index (sorted set by creation), KEYS[2] its legacy
// set. ARGV[1] the new session's key, ARGV[2] its creation (Unix ms),
// ARGV[3] the index's TTL (ms), ARGV[4] the limit per user, ARGV[5] the key
// of the session it replaces, or "".
//
// It removes the replaced session, moves up to legacyMovedPerSignIn
// members of the legacy set in with score 0 (created before any new one;
// among themselves in no particular order), adds the new session, renews
// the TTL, and returns {n}, n the number of members, or, when n is above
// the limit, {n, members}: every member with its score, newest first
// (ZREVRANGE WITHSCORES). The members include ended sessions the index
// has not lost yet; the caller tells them apart (see evict).
var indexScript = redis.NewScript(`
if ARGV[5] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[5])
  redis.call('SREM', KEYS[2], ARGV[5])
end
local moved = redis.call('SPOP', KEYS[2], ` + strconv.Itoa(legacyMovedPerSignIn) + `)
for i = 1, #moved do
  redis.call('ZADD', KEYS[1], 'NX', 0, moved[i])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n <= tonumber(ARGV[4]) then
  return {n}
end
return {n, redis.call('ZREVRANGE', KEYS[1], 0, -1, 'WITHSCORES')}`)

// overLimit reads indexScript's reply: whether the index holds more
// members than the limit, and then the members, newest first. A reply it
// cannot read counts as not over (the next sign-in tries again).
func overLimit(cmd *redis.Cmd) (bool, []userMember) {
	reply, err := cmd.Slice()
	if err != nil || len(reply) < 2 {
		return false, nil
	}
	flat, ok := reply[1].([]any)
	if !ok {
		return false, nil
	}
	members := make([]userMember, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		sc, _ := flat[i+1].(string)
		score, err := strconv.ParseFloat(sc, 64)
		if err != nil {
			continue
		}
		members = append(members, userMember{key: k, created: int64(score)})
	}
	return true, members
}

// evictReadSlack is how many members past the limit evict reads in its
// first read: enough for a few ended sessions among the newest, and for
// the oldest live one, so that the sessions it ends were seen alive.
const evictReadSlack = 4

// evict ends the oldest sessions of userID beyond the limit and returns
// how many live sessions it ended. members is the user's index, newest
// first (from indexScript), newKey the session just created, which is
// always kept and counts toward the limit.
//
// Members created within the idle timeout count as live without a read;
// past them it reads the sessions newest first, in slices, until it has
// found s.max-1 live ones besides newKey: those stay; every older member ends
// (the live ones are counted) without being read, except the members
// created within createGrace, which are read first: a key not written yet
// is left alone (see Create). Ended members (gone, or ended by the clock)
// leave the index and do not count, wherever they are. A just-created
// member whose key is not written yet is kept and counted among the
// s.max-1: it is live as soon as its sign-in finishes.
//
// Failures are logged, not returned: the sign-in has succeeded, and the
// next sign-in of the user ends what this one could not.
func (s *Sessions) evict(parent context.Context, userID, newKey string, members []userMember) int {
	ctx, cancel := s.store.op(parent)
	defer cancel()
	now := s.now()
	fresh := now.Add(-createGrace).UnixMilli()
	others := make([]userMember, 0, len(members))
	var dead []string // leave the index (and their keys, if any, go)
	for _, m := range members {
		switch {
		case m.key == newKey:
		case !validHexKey(m.key):
			dead = append(dead, m.key) // never ours
		default:
			others = append(others, m)
		}
	}
	keep := s.max - 1
	kept := 0
	var seenLive []string // read and alive, past the newest: they end
	var blind []string    // not read: they end (counted if they existed)
	i := 0
	classify := func(batch []userMember, keepSome bool) error {
		keys := make([]string, len(batch))
		for j, m := range batch {
			keys[j] = m.key
		}
		vals, err := s.fetch(ctx, keys)
		if err != nil {
			return err
		}
		for j, val := range vals {
			m := batch[j]
			switch {
			case val == nil && m.created > fresh:
				// Created moments ago, key not written yet: leave it.
				if keepSome && kept < keep {
					kept++
				}
			case !s.liveAt(val, now):
				dead = append(dead, m.key)
			case keepSome && kept < keep:
				kept++
			default:
				seenLive = append(seenLive, m.key)
			}
		}
		return nil
	}
	// Sessions created within the idle timeout are live unless signed out
	// or revoked, which take them out of the index too (or their absolute
	// end has passed, which the score says): kept without a read. A key
	// gone some other way only makes an older session end in its place.
	// This is what keeps a sign-in at the limit from reading s.max values.
	idleFloor := now.Add(-s.cfg.IdleTimeout).UnixMilli()
	absFloor := now.Add(-s.cfg.AbsoluteLifetime).UnixMilli()
	for i < len(others) && kept < keep && others[i].created > idleFloor && others[i].created > absFloor {
		kept++
		i++
	}
	for i < len(others) && kept < keep {
		n := min(len(others)-i, keep-kept+evictReadSlack)
		if err := classify(others[i:i+n], true); err != nil {
			s.store.logger.Warn("store: sessions over max_per_user not ended (the next sign-in retries)", "err", err.Error())
			return 0
		}
		i += n
	}
	var recent []userMember
	for _, m := range others[i:] {
		if m.created > fresh {
			recent = append(recent, m)
		} else {
			blind = append(blind, m.key)
		}
	}
	if len(recent) > 0 {
		if err := classify(recent, false); err != nil {
			s.store.logger.Warn("store: sessions over max_per_user not ended (the next sign-in retries)", "err", err.Error())
			return 0
		}
	}
	if len(seenLive)+len(blind)+len(dead) == 0 {
		return 0
	}
	pipe := s.store.client.Pipeline()
	var ended []*redis.IntCmd
	for _, k := range append(seenLive, blind...) {
		ended = append(ended, pipe.Del(ctx, s.sessionKey(k)))
	}
	for _, k := range dead {
		if validHexKey(k) {
			pipe.Del(ctx, s.sessionKey(k)) // ended by the clock: its key may still be there
		}
	}
	gone := append(append(append([]string(nil), seenLive...), blind...), dead...)
	pipe.ZRem(ctx, s.userKey(userID), toAny(gone)...)
	s.zremByShard(ctx, pipe, gone)
	_, err := pipe.Exec(ctx)
	n := 0
	for _, d := range ended {
		// 1: it existed and this sign-in ended it (not a concurrent one).
		n += int(d.Val())
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		s.store.logger.Warn("store: sessions over max_per_user not all ended (the next sign-in retries)",
			"ended", n, "err", err.Error())
	}
	return n
}

// liveAt reports whether the stored session val lives at now, as Get
// decides it (absolute end, idle timeout); nil or undecodable is not.
func (s *Sessions) liveAt(val []byte, now time.Time) bool {
	lastSeen, expiresAt, ok := storedTimes(val)
	return ok && now.Before(expiresAt) && now.Sub(lastSeen) < s.cfg.IdleTimeout
}

// sessionTimes is the part of a stored Session that decides whether it
// lives.
type sessionTimes struct {
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
}

var (
	lastSeenField  = []byte(`"last_seen":"`)
	expiresAtField = []byte(`"expires_at":"`)
)

// storedTimesJSON is storedTimes for a session stored as JSON by an
// older Warden.
//
// A sign-in past the limit reads up to the limit's worth of sessions, and
// the JSON decoder takes about 7 µs for one (most of it on the user's
// groups, which it must scan even to skip them): 50 of them would cost a
// sign-in more than the rest of it. So the two fields are looked up
// directly: in what json.Marshal writes for a Session, the byte sequence
// "last_seen":" can only be that key followed by its value (a quote inside
// a string is escaped, so no string holds it), and the value is an RFC 3339
// time up to the next quote. When either name is not there exactly once (a
// directory attribute of that name, a change of format) or its value does
// not parse, the decoder decides.
func storedTimesJSON(val []byte) (lastSeen, expiresAt time.Time, ok bool) {
	lastSeen, ok1 := timeField(val, lastSeenField)
	expiresAt, ok2 := timeField(val, expiresAtField)
	if ok1 && ok2 {
		return lastSeen, expiresAt, true
	}
	var t sessionTimes
	if json.Unmarshal(val, &t) != nil {
		return time.Time{}, time.Time{}, false
	}
	return t.LastSeen, t.ExpiresAt, true
}

// timeField returns the time after the only occurrence of name (see
// storedTimesJSON), or false.
func timeField(val, name []byte) (time.Time, bool) {
	i := bytes.Index(val, name)
	if i < 0 {
		return time.Time{}, false
	}
	rest := val[i+len(name):]
	if bytes.Contains(rest, name) {
		return time.Time{}, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}
