package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Elevation requests (time-boxed roles) in Redis. This is the state only:
// the rules that make a role eligible, the pages, the CLI and the
// notifications are built on it elsewhere.
//
// Keys:
//
//	elev:{ID}           hash: "req" (the request, JSON, never changed),
//	                    deadline_ms and start_ms (for the script), and
//	                    the decision fields (state, decider, comment,
//	                    decided_at, starts_at, ends_at, ended_by, ended_at;
//	                    times in Unix milliseconds); TTL ElevationRetention
//	                    after the request's decision deadline or end
//	user:{UID}:elev     sorted set of the user's request IDs by creation
//	user:{UID}:elev:on  hash of the user's approved, unfinished elevations:
//	                    ID -> JSON of what a hand-off needs (roles, window,
//	                    reason), so that Active is one small read; written
//	                    after the approval, removed before an early end
//	elev:pending        sorted set of undecided request IDs by deadline
//
// A decision is one Lua script on the request's key: of two approvers
// acting at once exactly one decides, nobody decides their own request,
// and a request past its deadline is expired, not decided.

// States of an elevation.
const (
	ElevationPending  = "pending"
	ElevationApproved = "approved" // active from starts_at to ends_at
	ElevationDenied   = "denied"
	ElevationExpired  = "expired" // not decided in time
	ElevationEnded    = "ended"   // ended early
)

// ElevationRetention is how long a request stays readable after it can no
// longer change (its history; the audit log keeps it for good).
const ElevationRetention = 30 * 24 * time.Hour

// Results of elevation operations (errors.Is); ErrNotFound and
// ErrUnavailable as elsewhere.
var (
	ErrAlreadyDecided = errors.New("elevation: already decided")
	ErrSelfApproval   = errors.New("elevation: nobody decides their own request")
	ErrPastDeadline   = errors.New("elevation: the request expired undecided")
	ErrNotActive      = errors.New("elevation: not approved, or already over")
)

// ElevationRequest is what a user asks for.
type ElevationRequest struct {
	ID       string   `json:"id"`
	UserID   string   `json:"user_id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"` // role ARNs (one role in several accounts)
	// Duration of the window, in whole seconds.
	Seconds  int       `json:"seconds"`
	Reason   string    `json:"reason"`
	ClientIP string    `json:"client_ip,omitempty"`
	Created  time.Time `json:"created"`
	// StartAt is the earliest start (a planned change); zero: at approval.
	StartAt time.Time `json:"start_at,omitzero"`
	// Deadline is when an undecided request expires.
	Deadline time.Time `json:"deadline"`
	// Approvers are the groups (names or DNs) whose members may decide;
	// a decider must be in every one. Empty: self-service.
	Approvers []string `json:"approvers,omitempty"`
	// MaxSeconds is the longest window the rules allowed at request time.
	MaxSeconds int `json:"max_seconds,omitempty"`
}

// Elevation is a request with its decision.
type Elevation struct {
	ElevationRequest
	State     string    `json:"state"`
	Decider   string    `json:"decider,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	StartsAt  time.Time `json:"starts_at,omitzero"` // approved: the window
	EndsAt    time.Time `json:"ends_at,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// ActiveAt reports whether the elevation grants its roles at t.
func (e Elevation) ActiveAt(t time.Time) bool {
	return e.State == ElevationApproved && !t.Before(e.StartsAt) && t.Before(e.EndsAt)
}

// Elevations stores elevation requests.
type Elevations struct {
	store *Store
	now   func() time.Time
}

// NewElevations returns the elevation store on st; now is the clock (nil:
// time.Now).
func NewElevations(st *Store, now func() time.Time) *Elevations {
	if now == nil {
		now = time.Now
	}
	return &Elevations{store: st, now: now}
}

func (s *Elevations) key(id string) string         { return s.store.Key("elev:{" + id + "}") }
func (s *Elevations) userKey(userID string) string { return s.store.Key("user:{" + userID + "}:elev") }
func (s *Elevations) pendingKey() string           { return s.store.Key("elev:pending") }
func (s *Elevations) userActiveKey(userID string) string {
	return s.store.Key("user:{" + userID + "}:elev:on")
}

// activeEntry is one field of the active index.
type activeEntry struct {
	Roles  []string `json:"r"`
	Starts int64    `json:"s"` // Unix ms
	Ends   int64    `json:"e"`
	Reason string   `json:"why,omitempty"`
	User   string   `json:"u,omitempty"`
}

// indexActive adds an approved elevation to its user's active index, the
// key living until an hour past the latest window. Retried: an approval
// whose index write fails grants nothing (the safe side) until it lands.
var indexActiveScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[3])
if ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1`)

func (s *Elevations) indexActive(ctx context.Context, e Elevation) error {
	raw, err := json.Marshal(activeEntry{Roles: e.Roles, Starts: e.StartsAt.UnixMilli(), Ends: e.EndsAt.UnixMilli(),
		Reason: e.Reason, User: e.Username})
	if err != nil {
		return err
	}
	keep := e.EndsAt.Sub(s.now()) + time.Hour
	for attempt := 0; ; attempt++ {
		err = indexActiveScript.Run(ctx, s.store.client, []string{s.userActiveKey(e.UserID)}, e.ID, raw, keep.Milliseconds()).Err()
		if err == nil || attempt == 2 || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
}

// Create stores r as a pending request with a new ID, which it returns.
func (s *Elevations) Create(ctx context.Context, r ElevationRequest) (Elevation, error) {
	if r.UserID == "" || len(r.Roles) == 0 || r.Seconds <= 0 || r.Deadline.IsZero() {
		return Elevation{}, errors.New("store: create elevation: user, roles, duration and deadline are required")
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return Elevation{}, fmt.Errorf("store: create elevation: %w", err)
	}
	r.ID = hex.EncodeToString(b)
	if r.Created.IsZero() {
		r.Created = s.now().UTC()
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return Elevation{}, fmt.Errorf("store: create elevation: %w", err)
	}
	ttl := r.Deadline.Sub(s.now()) + ElevationRetention
	pipe := s.store.client.TxPipeline()
	start := int64(0)
	if !r.StartAt.IsZero() {
		start = r.StartAt.UnixMilli()
	}
	// deadline_ms and start_ms: the times the decision script compares.
	pipe.HSet(ctx, s.key(r.ID), "req", raw, "state", ElevationPending,
		"deadline_ms", r.Deadline.UnixMilli(), "start_ms", start)
	pipe.PExpire(ctx, s.key(r.ID), ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return Elevation{}, Unavailable("store: create elevation", err)
	}
	// The indexes are on other slots (Cluster): a plain pipeline; an entry
	// whose request is gone is skipped and pruned by the readers.
	idx := s.store.client.Pipeline()
	idx.ZAdd(ctx, s.userKey(r.UserID), redis.Z{Score: float64(r.Created.UnixMilli()), Member: r.ID})
	idx.PExpire(ctx, s.userKey(r.UserID), ttl)
	idx.ZAdd(ctx, s.pendingKey(), redis.Z{Score: float64(r.Deadline.UnixMilli()), Member: r.ID})
	if _, err := idx.Exec(ctx); err != nil {
		return Elevation{}, Unavailable("store: create elevation", err)
	}
	return Elevation{ElevationRequest: r, State: ElevationPending}, nil
}

var elevationFields = []string{"req", "state", "decider", "comment", "decided_at", "starts_at", "ends_at", "ended_by", "ended_at"}

// Get returns the elevation id (ErrNotFound when unknown or gone). A
// pending request past its deadline reads as expired.
func (s *Elevations) Get(ctx context.Context, id string) (Elevation, error) {
	if !validElevationID(id) {
		return Elevation{}, fmt.Errorf("store: get elevation: %w", ErrNotFound)
	}
	args := make([]string, len(elevationFields))
	copy(args, elevationFields)
	v, err := s.store.client.HMGet(ctx, s.key(id), args...).Result()
	if err != nil {
		return Elevation{}, Unavailable("store: get elevation", err)
	}
	return s.parse(v)
}

func validElevationID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (s *Elevations) parse(v []any) (Elevation, error) {
	str := func(i int) string { x, _ := v[i].(string); return x }
	ms := func(i int) time.Time {
		n, err := strconv.ParseInt(str(i), 10, 64)
		if err != nil || n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(n).UTC()
	}
	if str(0) == "" {
		return Elevation{}, fmt.Errorf("store: elevation: %w", ErrNotFound)
	}
	var e Elevation
	if err := json.Unmarshal([]byte(str(0)), &e.ElevationRequest); err != nil {
		return Elevation{}, fmt.Errorf("store: elevation: stored request: %w", err)
	}
	e.State, e.Decider, e.Comment = str(1), str(2), str(3)
	e.DecidedAt, e.StartsAt, e.EndsAt = ms(4), ms(5), ms(6)
	e.EndedBy, e.EndedAt = str(7), ms(8)
	if e.State == ElevationPending && !s.now().Before(e.Deadline) {
		e.State = ElevationExpired
	}
	return e, nil
}

// decideScript decides a pending request once.
// KEYS: the request; ARGV: now (ms), decider's user ID, new state,
// decider's name, comment, retention (ms) after the window's end.
var decideScript = redis.NewScript(`
local req = redis.call('HGET', KEYS[1], 'req')
if not req then return 'notfound' end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'pending' then return 'decided' end
local r = cjson.decode(req)
local now = tonumber(ARGV[1])
if r['user_id'] == ARGV[2] then return 'self' end
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline_ms') or '0')
if deadline > 0 and now >= deadline then
  redis.call('HSET', KEYS[1], 'state', 'expired')
  return 'expired'
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'decider', ARGV[4], 'comment', ARGV[5], 'decided_at', ARGV[1])
if ARGV[3] == 'approved' then
  local start = now
  local sa = tonumber(redis.call('HGET', KEYS[1], 'start_ms') or '0')
  if sa > start then start = sa end
  local ends = start + 1000 * tonumber(r['seconds'])
  redis.call('HSET', KEYS[1], 'starts_at', tostring(start), 'ends_at', tostring(ends))
  redis.call('PEXPIREAT', KEYS[1], ends + tonumber(ARGV[6]))
end
return 'ok'`)

// Decide approves or denies the pending request id for decider (userID
// and name): ErrAlreadyDecided, ErrSelfApproval, ErrPastDeadline, or
// ErrNotFound. Of concurrent decisions exactly one succeeds.
func (s *Elevations) Decide(ctx context.Context, id, deciderID, decider string, approve bool, comment string) (Elevation, error) {
	if !validElevationID(id) {
		return Elevation{}, fmt.Errorf("store: decide elevation: %w", ErrNotFound)
	}
	state := ElevationDenied
	if approve {
		state = ElevationApproved
	}
	res, err := decideScript.Run(ctx, s.store.client, []string{s.key(id)},
		s.now().UnixMilli(), deciderID, state, decider, comment, ElevationRetention.Milliseconds()).Text()
	if err != nil {
		return Elevation{}, Unavailable("store: decide elevation", err)
	}
	switch res {
	case "notfound":
		return Elevation{}, fmt.Errorf("store: decide elevation: %w", ErrNotFound)
	case "decided":
		return Elevation{}, fmt.Errorf("store: decide elevation: %w", ErrAlreadyDecided)
	case "self":
		return Elevation{}, fmt.Errorf("store: decide elevation: %w", ErrSelfApproval)
	case "expired":
		s.store.client.ZRem(ctx, s.pendingKey(), id)
		return Elevation{}, fmt.Errorf("store: decide elevation: %w", ErrPastDeadline)
	}
	// One round trip: out of the pending index (best effort: readers skip
	// decided ones) and the decided request read back.
	pipe := s.store.client.Pipeline()
	pipe.ZRem(ctx, s.pendingKey(), id)
	get := pipe.HMGet(ctx, s.key(id), elevationFields...)
	if _, err := pipe.Exec(ctx); err != nil && get.Err() != nil {
		return Elevation{}, Unavailable("store: decide elevation", get.Err())
	}
	e, err := s.parse(get.Val())
	if err != nil {
		return Elevation{}, err
	}
	if e.State == ElevationApproved {
		if err := s.indexActive(ctx, e); err != nil {
			return e, Unavailable("store: decide elevation: approved, but not yet active", err)
		}
	}
	return e, nil
}

// endScript ends an approved elevation early, or cancels a pending
// request. KEYS: the request; ARGV: now (ms), who.
var endScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[1], 'state')
local now = tonumber(ARGV[1])
if state == 'pending' then
  local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline_ms') or '0')
  if deadline > 0 and now >= deadline then return 0 end
elseif state == 'approved' then
  local ends = tonumber(redis.call('HGET', KEYS[1], 'ends_at') or '0')
  if now >= ends then return 0 end
else
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'ended', 'ended_by', ARGV[2], 'ended_at', ARGV[1])
return 1`)

// End ends the approved elevation id now, or cancels it while pending (by
// names who: the user, an admin, or "directory"); ErrNotActive when it is
// neither pending nor approved and unfinished.
func (s *Elevations) End(ctx context.Context, id, by string) (Elevation, error) {
	if !validElevationID(id) {
		return Elevation{}, fmt.Errorf("store: end elevation: %w", ErrNotFound)
	}
	e, err := s.Get(ctx, id)
	if err != nil {
		return Elevation{}, err
	}
	// Out of the active index first: from here on no hand-off grants it,
	// whatever happens next.
	if err := s.store.client.HDel(ctx, s.userActiveKey(e.UserID), id).Err(); err != nil {
		return Elevation{}, Unavailable("store: end elevation", err)
	}
	n, err := endScript.Run(ctx, s.store.client, []string{s.key(id)}, s.now().UnixMilli(), by).Int()
	if err != nil {
		return Elevation{}, Unavailable("store: end elevation", err)
	}
	if n == 0 {
		if _, gerr := s.Get(ctx, id); gerr != nil {
			return Elevation{}, gerr
		}
		return Elevation{}, fmt.Errorf("store: end elevation: %w", ErrNotActive)
	}
	s.store.client.ZRem(ctx, s.pendingKey(), id) // best effort: readers skip ended ones
	return s.Get(ctx, id)
}

// ListUser returns the user's requests, newest first (at most limit).
func (s *Elevations) ListUser(ctx context.Context, userID string, limit int64) ([]Elevation, error) {
	ids, err := s.store.client.ZRevRange(ctx, s.userKey(userID), 0, limit-1).Result()
	if err != nil {
		return nil, Unavailable("store: list elevations", err)
	}
	return s.load(ctx, ids, s.userKey(userID))
}

// Active returns the user's elevations that grant their roles now, in
// one read of the user's active index (ID, Username, Roles, Reason,
// StartsAt, EndsAt and State are set). Finished entries are pruned.
func (s *Elevations) Active(ctx context.Context, userID string) ([]Elevation, error) {
	m, err := s.store.client.HGetAll(ctx, s.userActiveKey(userID)).Result()
	if err != nil {
		return nil, Unavailable("store: active elevations", err)
	}
	now := s.now()
	var out []Elevation
	var stale []string
	for id, raw := range m {
		var a activeEntry
		if json.Unmarshal([]byte(raw), &a) != nil {
			stale = append(stale, id)
			continue
		}
		e := Elevation{ElevationRequest: ElevationRequest{ID: id, UserID: userID, Username: a.User, Roles: a.Roles, Reason: a.Reason},
			State: ElevationApproved, StartsAt: time.UnixMilli(a.Starts).UTC(), EndsAt: time.UnixMilli(a.Ends).UTC()}
		switch {
		case !now.Before(e.EndsAt):
			stale = append(stale, id)
		case e.ActiveAt(now):
			out = append(out, e)
		}
	}
	if len(stale) > 0 {
		s.store.client.HDel(ctx, s.userActiveKey(userID), stale...)
	}
	slices.SortFunc(out, func(a, b Elevation) int { return a.EndsAt.Compare(b.EndsAt) })
	return out, nil
}

// Pending returns the undecided requests, soonest deadline first.
func (s *Elevations) Pending(ctx context.Context, limit int64) ([]Elevation, error) {
	now := s.now().UnixMilli()
	ids, err := s.store.client.ZRangeByScore(ctx, s.pendingKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(now, 10), Max: "+inf", Count: limit}).Result()
	if err != nil {
		return nil, Unavailable("store: pending elevations", err)
	}
	es, err := s.load(ctx, ids, s.pendingKey())
	if err != nil {
		return nil, err
	}
	out := es[:0]
	for _, e := range es {
		if e.State == ElevationPending {
			out = append(out, e)
		}
	}
	return out, nil
}

// load reads the requests ids (in order); gone ones are removed from index.
func (s *Elevations) load(ctx context.Context, ids []string, index string) ([]Elevation, error) {
	pipe := s.store.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.key(id), elevationFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, Unavailable("store: load elevations", err)
	}
	var out []Elevation
	var gone []any
	for i, c := range cmds {
		e, err := s.parse(c.Val())
		if errors.Is(err, ErrNotFound) {
			gone = append(gone, ids[i])
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(gone) > 0 {
		s.store.client.ZRem(ctx, index, gone...)
	}
	return out, nil
}

// expireScript marks a pending request past its deadline expired, once.
// KEYS: the request; ARGV: now (ms). 1 when this call expired it.
var expireScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline_ms') or '0')
if deadline == 0 or tonumber(ARGV[1]) < deadline then return 0 end
redis.call('HSET', KEYS[1], 'state', 'expired', 'decided_at', ARGV[1])
return 1`)

// ExpireDue marks the pending requests whose deadline has passed expired
// and returns those this call expired (each exactly once among replicas
// running it at the same time), at most limit.
func (s *Elevations) ExpireDue(ctx context.Context, limit int64) ([]Elevation, error) {
	now := s.now().UnixMilli()
	ids, err := s.store.client.ZRangeByScore(ctx, s.pendingKey(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now, 10), Count: limit}).Result()
	if err != nil {
		return nil, Unavailable("store: expire elevations", err)
	}
	var out []Elevation
	for _, id := range ids {
		n, err := expireScript.Run(ctx, s.store.client, []string{s.key(id)}, now).Int()
		if err != nil {
			return out, Unavailable("store: expire elevations", err)
		}
		s.store.client.ZRem(ctx, s.pendingKey(), id)
		if n == 1 {
			if e, err := s.Get(ctx, id); err == nil {
				out = append(out, e)
			}
		}
	}
	return out, nil
}
