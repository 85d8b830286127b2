package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// OIDC keeps the OpenID provider's flow state (package oidcop): auth
// requests and their codes, grants (token families) with their refresh
// token and access tokens, and device authorizations. Everything expires by
// TTL. The caller chooses ids and passes hashes of secrets, never the
// secrets themselves: a Redis dump yields no usable code, token or device
// code.
//
// Keys (after the prefix); a key's hash tag is the part in braces, so that
// one operation touches one slot:
//
//	oidc:ar:{<id>}            hash: an auth request (d: data, code: code hash,
//	                          used: 1 once its code was redeemed)
//	oidc:g:{<grant>}          hash: a grant (token family): client, subject,
//	                          user snapshot, scopes, auth time, absolute end,
//	                          cur: hash of the current refresh token,
//	                          o:<hash>: refresh tokens rotated away
//	oidc:at:{<grant>}:<id>    string: an access token (its expiry, unix)
//	oidc:sub:<subject>        set: the grants of a subject (end_session)
//	oidc:dev:{<hash>}         hash: a device authorization (RFC 8628); once
//	                          approved: sub, u (user), at (auth time), amr
//	oidc:uc:<user code>       string: the device hash of a user code
//
// An access token is valid while its own key and its grant's key both
// exist: deleting the grant revokes every access token of the family at
// once (code reuse, refresh token reuse, revocation of a refresh token).
type OIDC struct{ store *Store }

// NewOIDC returns the OIDC state store on st.
func NewOIDC(st *Store) *OIDC { return &OIDC{store: st} }

// Results of OIDC operations (test with errors.Is); ErrNotFound and
// ErrUnavailable as elsewhere in the package.
var (
	// ErrReused: an authorization code or a refresh token presented again
	// after it was used. The grant it belongs to has been deleted.
	ErrReused = errors.New("already used")
	// ErrDuplicate: the user code is taken (retry with another).
	ErrDuplicate = errors.New("duplicate")
	// ErrDecided: the device authorization was already approved or denied.
	ErrDecided = errors.New("already decided")
	// ErrExpired: the device authorization's lifetime is over.
	ErrExpired = errors.New("expired")
)

const maxOIDCID = 128

func checkID(what, id string) error {
	if id == "" || len(id) > maxOIDCID || strings.ContainsAny(id, "{}: \r\n") {
		return fmt.Errorf("store: oidc: %s: %w", what, ErrNotFound)
	}
	return nil
}

func (o *OIDC) arKey(id string) string      { return o.store.Key("oidc:ar:{" + id + "}") }
func (o *OIDC) grantKey(id string) string   { return o.store.Key("oidc:g:{" + id + "}") }
func (o *OIDC) atKey(g, id string) string   { return o.store.Key("oidc:at:{" + g + "}:" + id) }
func (o *OIDC) subKey(sub string) string    { return o.store.Key("oidc:sub:" + sub) }
func (o *OIDC) devKey(h string) string      { return o.store.Key("oidc:dev:{" + h + "}") }
func (o *OIDC) userCodeKey(c string) string { return o.store.Key("oidc:uc:" + c) }

// ---- auth requests and codes ----

// PutAuthRequest stores a new auth request for ttl.
func (o *OIDC) PutAuthRequest(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := checkID("auth request", id); err != nil {
		return err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	k := o.arKey(id)
	_, err := o.store.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "d", data)
		p.Expire(ctx, k, ttl)
		return nil
	})
	return Unavailable("store: oidc auth request", err)
}

// AuthRequest returns the data of an auth request (ErrNotFound when
// unknown or expired).
func (o *OIDC) AuthRequest(ctx context.Context, id string) ([]byte, error) {
	if err := checkID("auth request", id); err != nil {
		return nil, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	d, err := o.store.client.HGet(ctx, o.arKey(id), "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: oidc auth request: %w", ErrNotFound)
	}
	return d, Unavailable("store: oidc auth request", err)
}

var updateAR = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'd') == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'code') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
return 1`)

// UpdateAuthRequest replaces the data of an auth request that has no code
// yet (ErrNotFound otherwise), keeping its TTL.
func (o *OIDC) UpdateAuthRequest(ctx context.Context, id string, data []byte) error {
	if err := checkID("auth request", id); err != nil {
		return err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	n, err := updateAR.Run(ctx, o.store.client, []string{o.arKey(id)}, data).Int()
	if err != nil {
		return Unavailable("store: oidc auth request", err)
	}
	if n != 1 {
		return fmt.Errorf("store: oidc auth request: %w", ErrNotFound)
	}
	return nil
}

var saveCode = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'd') == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'code') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'code', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// SaveCode binds the hash of the authorization code to an auth request
// and makes the request live for ttl (the code's lifetime, during which a
// second redemption is recognised as reuse). One code per request.
func (o *OIDC) SaveCode(ctx context.Context, id, codeHash string, ttl time.Duration) error {
	if err := checkID("auth request", id); err != nil {
		return err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	n, err := saveCode.Run(ctx, o.store.client, []string{o.arKey(id)}, codeHash, ttl.Milliseconds()).Int()
	if err != nil {
		return Unavailable("store: oidc code", err)
	}
	if n != 1 {
		return fmt.Errorf("store: oidc code: %w", ErrNotFound)
	}
	return nil
}

var redeemCode = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'd', 'code', 'used')
if not f[1] or not f[2] or f[2] ~= ARGV[1] then return {0} end
if f[3] then return {2, f[1]} end
redis.call('HSET', KEYS[1], 'used', '1')
return {1, f[1]}`)

// RedeemCode marks the code of an auth request used and returns the
// request's data. A wrong or unknown code is ErrNotFound; a code redeemed
// before is ErrReused, with the data (so that the caller can revoke what
// the first redemption issued).
func (o *OIDC) RedeemCode(ctx context.Context, id, codeHash string) ([]byte, error) {
	if err := checkID("auth request", id); err != nil {
		return nil, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	res, err := redeemCode.Run(ctx, o.store.client, []string{o.arKey(id)}, codeHash).Slice()
	if err != nil {
		return nil, Unavailable("store: oidc code", err)
	}
	switch res[0].(int64) {
	case 1:
		return []byte(res[1].(string)), nil
	case 2:
		return []byte(res[1].(string)), fmt.Errorf("store: oidc code: %w", ErrReused)
	}
	return nil, fmt.Errorf("store: oidc code: %w", ErrNotFound)
}

var deleteAR = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'used') == 1 then return 0 end
return redis.call('DEL', KEYS[1])`)

// DeleteAuthRequest deletes an auth request, except one whose code was
// redeemed: that stays until its TTL ends, to recognise reuse.
func (o *OIDC) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := checkID("auth request", id); err != nil {
		return nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	return Unavailable("store: oidc auth request", deleteAR.Run(ctx, o.store.client, []string{o.arKey(id)}).Err())
}

// ---- grants (token families) ----

// OIDCGrant is one token family: what a sign-in (code or device) granted
// one client, and every token issued from it.
type OIDCGrant struct {
	ID       string
	ClientID string
	Subject  string
	// User is the caller's snapshot of the user (JSON), refreshed at each
	// rotation.
	User     []byte
	Scopes   []string
	AMR      []string
	AuthTime time.Time
	// FactorTime is when the sign-in gave its second factor (zero: none).
	FactorTime time.Time
	// Expires is the family's absolute end: no refresh token outlives it.
	Expires time.Time
}

func grantFields(g OIDCGrant) []any {
	return []any{"c", g.ClientID, "sub", g.Subject, "u", g.User, "s", strings.Join(g.Scopes, " "),
		"amr", strings.Join(g.AMR, " "), "at", g.AuthTime.Unix(), "exp", g.Expires.Unix(), "ft", unixOrZero(g.FactorTime)}
}

var grantFieldNames = []any{"c", "sub", "u", "s", "amr", "at", "exp", "ft"}

// unixOrZero is t in Unix seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func parseGrant(id string, v []any) (OIDCGrant, bool) {
	if len(v) < 7 || v[0] == nil {
		return OIDCGrant{}, false
	}
	for len(v) < 8 { // "ft" came later
		v = append(v, nil)
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	return OIDCGrant{
		ID: id, ClientID: str(0), Subject: str(1), User: []byte(str(2)),
		Scopes: strings.Fields(str(3)), AMR: strings.Fields(str(4)),
		AuthTime: time.Unix(num(5), 0).UTC(), Expires: time.Unix(num(6), 0).UTC(),
		FactorTime: factorTime(num(7)),
	}, true
}

func factorTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// ttlFor is the grant key's TTL: the idle timeout, but never past the
// absolute end (and at least one second).
func ttlFor(expires, now time.Time, idle time.Duration) time.Duration {
	ttl := expires.Sub(now)
	if idle > 0 && idle < ttl {
		ttl = idle
	}
	return max(ttl, time.Second)
}

// CreateGrant stores a new grant with its first access token (accessID,
// living accessTTL) and, when refreshHash is not empty, its first refresh
// token. The grant lives idle (renewed at each rotation) but never past
// g.Expires; without a refresh token it lives as long as the access token.
func (o *OIDC) CreateGrant(ctx context.Context, g OIDCGrant, refreshHash, accessID string, accessTTL, idle time.Duration, now time.Time) error {
	if err := checkID("grant", g.ID); err != nil {
		return err
	}
	ttl := accessTTL
	if refreshHash != "" {
		ttl = max(ttlFor(g.Expires, now, idle), accessTTL)
	}
	fields := grantFields(g)
	if refreshHash != "" {
		fields = append(fields, "cur", refreshHash)
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	k := o.grantKey(g.ID)
	_, err := o.store.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields...)
		p.PExpire(ctx, k, ttl)
		p.Set(ctx, o.atKey(g.ID, accessID), now.Add(accessTTL).Unix(), accessTTL)
		return nil
	})
	if err != nil {
		return Unavailable("store: oidc grant", err)
	}
	if err := o.store.awaitReplicas(ctx, "store: oidc grant", k); err != nil { // redis.wait_replicas
		return err
	}
	// The subject index (another slot) serves end_session only; a failure
	// here leaves a working grant that end_session cannot find.
	sk := o.subKey(g.Subject)
	_, err = o.store.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, sk, g.ID)
		p.Expire(ctx, sk, max(time.Until(g.Expires), ttl, time.Minute))
		return nil
	})
	return Unavailable("store: oidc grant index", err)
}

var grantByRefresh = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'cur', 'c', 'sub', 'u', 's', 'amr', 'at', 'exp', 'ft')
if not f[2] then return {0} end
if f[1] and f[1] == ARGV[1] then return {1, f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]} end
if redis.call('HEXISTS', KEYS[1], 'o:' .. ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  return {2, f[2], f[3]}
end
return {0}`)

// GrantByRefresh returns the grant whose current refresh token has hash.
// ErrNotFound for an unknown grant or token; ErrReused for a refresh token
// rotated away before: the grant is then deleted (every token of the
// family dies), and the returned grant carries its ClientID and Subject.
func (o *OIDC) GrantByRefresh(ctx context.Context, grantID, hash string) (OIDCGrant, error) {
	if err := checkID("grant", grantID); err != nil {
		return OIDCGrant{}, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	res, err := grantByRefresh.Run(ctx, o.store.client, []string{o.grantKey(grantID)}, hash).Slice()
	if err != nil {
		return OIDCGrant{}, Unavailable("store: oidc refresh", err)
	}
	switch res[0].(int64) {
	case 1:
		g, _ := parseGrant(grantID, res[1:])
		return g, nil
	case 2:
		c, _ := res[1].(string)
		s, _ := res[2].(string)
		return OIDCGrant{ID: grantID, ClientID: c, Subject: s}, fmt.Errorf("store: oidc refresh: %w", ErrReused)
	}
	return OIDCGrant{}, fmt.Errorf("store: oidc refresh: %w", ErrNotFound)
}

var rotate = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'cur')
if not cur then return 0 end
if cur ~= ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], 'o:' .. ARGV[1]) == 1 then
    redis.call('DEL', KEYS[1])
    return 2
  end
  return 0
end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'o:' .. ARGV[1], '1', 'u', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
return 1`)

// Rotate replaces the grant's current refresh token (oldHash) by newHash,
// stores the fresh user snapshot and a new access token, atomically. A
// refresh token that is no longer current is ErrReused (and the grant is
// deleted: two racing uses of one refresh token end the family);
// ErrNotFound when the grant is gone.
func (o *OIDC) Rotate(ctx context.Context, g OIDCGrant, oldHash, newHash string, accessID string, accessTTL, idle time.Duration, now time.Time) error {
	if err := checkID("grant", g.ID); err != nil {
		return err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	ttl := max(ttlFor(g.Expires, now, idle), accessTTL)
	n, err := rotate.Run(ctx, o.store.client, []string{o.grantKey(g.ID), o.atKey(g.ID, accessID)},
		oldHash, newHash, g.User, ttl.Milliseconds(), now.Add(accessTTL).Unix(), accessTTL.Milliseconds()).Int()
	if err != nil {
		return Unavailable("store: oidc rotate", err)
	}
	switch n {
	case 1:
		// redis.wait_replicas: a rotation lost in a failover would make the
		// old refresh token current again.
		return o.store.awaitReplicas(ctx, "store: oidc rotate", o.grantKey(g.ID))
	case 2:
		return fmt.Errorf("store: oidc rotate: %w", ErrReused)
	}
	return fmt.Errorf("store: oidc rotate: %w", ErrNotFound)
}

var accessToken = redis.NewScript(`
local exp = redis.call('GET', KEYS[2])
if not exp then return {0} end
local f = redis.call('HMGET', KEYS[1], 'c', 'sub', 'u', 's', 'amr', 'at', 'exp', 'ft')
if not f[1] then return {0} end
return {1, exp, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}`)

// AccessToken returns the grant of a live access token and the token's
// expiry (one round trip). ErrNotFound when the token or its grant is gone.
func (o *OIDC) AccessToken(ctx context.Context, grantID, accessID string) (OIDCGrant, time.Time, error) {
	if err := checkID("grant", grantID); err != nil {
		return OIDCGrant{}, time.Time{}, err
	}
	if err := checkID("access token", accessID); err != nil {
		return OIDCGrant{}, time.Time{}, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	res, err := accessToken.Run(ctx, o.store.client, []string{o.grantKey(grantID), o.atKey(grantID, accessID)}).Slice()
	if err != nil {
		return OIDCGrant{}, time.Time{}, Unavailable("store: oidc access token", err)
	}
	if res[0].(int64) != 1 {
		return OIDCGrant{}, time.Time{}, fmt.Errorf("store: oidc access token: %w", ErrNotFound)
	}
	es, _ := res[1].(string)
	exp, _ := strconv.ParseInt(es, 10, 64)
	g, _ := parseGrant(grantID, res[2:])
	return g, time.Unix(exp, 0).UTC(), nil
}

// Grant returns a grant (ErrNotFound when gone).
func (o *OIDC) Grant(ctx context.Context, grantID string) (OIDCGrant, error) {
	if err := checkID("grant", grantID); err != nil {
		return OIDCGrant{}, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	v, err := o.store.client.HMGet(ctx, o.grantKey(grantID), "c", "sub", "u", "s", "amr", "at", "exp", "ft").Result()
	if err != nil {
		return OIDCGrant{}, Unavailable("store: oidc grant", err)
	}
	g, ok := parseGrant(grantID, v)
	if !ok {
		return OIDCGrant{}, fmt.Errorf("store: oidc grant: %w", ErrNotFound)
	}
	return g, nil
}

// RevokeAccessToken deletes one access token.
func (o *OIDC) RevokeAccessToken(ctx context.Context, grantID, accessID string) error {
	if checkID("grant", grantID) != nil || checkID("access token", accessID) != nil {
		return nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	return Unavailable("store: oidc revoke", o.store.client.Del(ctx, o.atKey(grantID, accessID)).Err())
}

// RevokeGrant deletes a grant: its refresh token and every access token of
// the family stop working at once. It reports whether the grant existed.
func (o *OIDC) RevokeGrant(ctx context.Context, grantID string) (bool, error) {
	if checkID("grant", grantID) != nil {
		return false, nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	n, err := o.store.client.Del(ctx, o.grantKey(grantID)).Result()
	return n > 0, Unavailable("store: oidc revoke", err)
}

// GrantsOfSubject lists the grant ids recorded for a subject (some may have
// ended).
func (o *OIDC) GrantsOfSubject(ctx context.Context, subject string) ([]string, error) {
	if checkID("subject", subject) != nil {
		return nil, nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	ids, err := o.store.client.SMembers(ctx, o.subKey(subject)).Result()
	return ids, Unavailable("store: oidc grants", err)
}

// devMember prefixes the approved device authorizations (by device-code
// hash) in a subject's index, beside its grant IDs.
const devMember = "d:"

// devIndexTTL: a subject index that lists an approved device code lives at
// least this long (device codes live minutes).
const devIndexTTL = time.Hour

var takeBackDevice = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'st')
if st == 'approved' then
  redis.call('HSET', KEYS[1], 'st', 'denied')
  return 1
end
return 0`)

// RevokeSubject ends every token family of subject (refresh tokens and the
// access tokens minted from them stop working at once) and turns its
// approved but not yet redeemed device authorizations into denied ones (the
// CLI's next poll gets access_denied). It returns how many grants and
// device authorizations it ended. Only the index members it read are
// removed, so a grant made at the same moment stays findable.
func (o *OIDC) RevokeSubject(ctx context.Context, subject string) (grants, devices int, err error) {
	if checkID("subject", subject) != nil {
		return 0, 0, nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	sk := o.subKey(subject)
	members, err := o.store.client.SMembers(ctx, sk).Result()
	if err != nil {
		return 0, 0, Unavailable("store: oidc revoke subject", err)
	}
	if len(members) == 0 {
		return 0, 0, nil
	}
	// Grants and device codes each live in their own slot: a plain
	// pipeline (go-redis splits it by node in Cluster).
	pipe := o.store.client.Pipeline()
	gdel := make([]*redis.IntCmd, 0, len(members))
	ddel := make([]*redis.Cmd, 0)
	for _, m := range members {
		if h, ok := strings.CutPrefix(m, devMember); ok {
			if checkID("device", h) == nil {
				ddel = append(ddel, takeBackDevice.Eval(ctx, pipe, []string{o.devKey(h)}))
			}
			continue
		}
		if checkID("grant", m) == nil {
			gdel = append(gdel, pipe.Del(ctx, o.grantKey(m)))
		}
	}
	pipe.SRem(ctx, sk, toAny(members)...)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, Unavailable("store: oidc revoke subject", err)
	}
	for _, c := range gdel {
		grants += int(c.Val())
	}
	for _, c := range ddel {
		if n, _ := c.Int(); n == 1 {
			devices++
		}
	}
	return grants, devices, nil
}

// ---- device authorizations (RFC 8628) ----

// Device states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceRedeemed = "redeemed" // approved, and its tokens issued
)

// OIDCDevice is one device authorization.
type OIDCDevice struct {
	ClientID string
	Scopes   []string
	ClientIP string
	UserCode string // normalized, no dash
	Created  time.Time
	Expires  time.Time
	Interval time.Duration
	State    string
	// Set at approval: who approved, and how and when they authenticated
	// (the approving session's auth_time and RFC 8176 amr, for the grant).
	Subject  string
	User     []byte
	AuthTime time.Time
	AMR      []string
	// FactorTime is when the approving session gave its second factor
	// (zero: none).
	FactorTime time.Time
}

// PutDevice stores a device authorization under the hash of its device
// code, and its user code, for ttl (longer than the lifetime, so that a
// late poll gets expired_token rather than an unknown code). A user code
// that is taken is ErrDuplicate.
func (o *OIDC) PutDevice(ctx context.Context, deviceHash string, d OIDCDevice, ttl time.Duration) error {
	if err := checkID("device", deviceHash); err != nil {
		return err
	}
	if err := checkID("user code", d.UserCode); err != nil {
		return err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	ok, err := o.store.client.SetNX(ctx, o.userCodeKey(d.UserCode), deviceHash, ttl).Result()
	if err != nil {
		return Unavailable("store: oidc device", err)
	}
	if !ok {
		return fmt.Errorf("store: oidc device: user code: %w", ErrDuplicate)
	}
	k := o.devKey(deviceHash)
	_, err = o.store.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "c", d.ClientID, "s", strings.Join(d.Scopes, " "), "ip", d.ClientIP, "uc", d.UserCode,
			"cr", d.Created.UnixMilli(), "exp", d.Expires.UnixMilli(), "iv", int64(d.Interval/time.Second), "st", DevicePending)
		p.PExpire(ctx, k, ttl)
		return nil
	})
	return Unavailable("store: oidc device", err)
}

var devFields = []string{"c", "s", "ip", "uc", "cr", "exp", "iv", "st", "sub", "u", "at", "amr", "ft"}

func parseDevice(v []any) (OIDCDevice, bool) {
	if len(v) < len(devFields) || v[0] == nil {
		return OIDCDevice{}, false
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	num := func(i int) int64 { n, _ := strconv.ParseInt(str(i), 10, 64); return n }
	d := OIDCDevice{
		ClientID: str(0), Scopes: strings.Fields(str(1)), ClientIP: str(2), UserCode: str(3),
		Created: time.UnixMilli(num(4)).UTC(), Expires: time.UnixMilli(num(5)).UTC(),
		Interval: time.Duration(num(6)) * time.Second, State: str(7), Subject: str(8),
	}
	if u := str(9); u != "" {
		d.User = []byte(u)
	}
	if at := num(10); at != 0 {
		d.AuthTime = time.Unix(at, 0).UTC()
	}
	d.AMR = strings.Fields(str(11))
	if ft := num(12); ft != 0 {
		d.FactorTime = time.Unix(ft, 0).UTC()
	}
	return d, true
}

// DeviceByUserCode returns a device authorization by its (normalized) user
// code; ErrNotFound when unknown or gone.
func (o *OIDC) DeviceByUserCode(ctx context.Context, userCode string) (string, OIDCDevice, error) {
	if err := checkID("user code", userCode); err != nil {
		return "", OIDCDevice{}, err
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	h, err := o.store.client.Get(ctx, o.userCodeKey(userCode)).Result()
	if errors.Is(err, redis.Nil) {
		return "", OIDCDevice{}, fmt.Errorf("store: oidc device: %w", ErrNotFound)
	}
	if err != nil {
		return "", OIDCDevice{}, Unavailable("store: oidc device", err)
	}
	args := make([]string, len(devFields))
	copy(args, devFields)
	v, err := o.store.client.HMGet(ctx, o.devKey(h), args...).Result()
	if err != nil {
		return "", OIDCDevice{}, Unavailable("store: oidc device", err)
	}
	d, ok := parseDevice(v)
	if !ok {
		return "", OIDCDevice{}, fmt.Errorf("store: oidc device: %w", ErrNotFound)
	}
	return h, d, nil
}

var decide = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'st', 'exp')
if not f[1] then return 0 end
if f[1] ~= 'pending' then return 2 end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return 3 end
if ARGV[2] == 'approved' then
  redis.call('HSET', KEYS[1], 'st', 'approved', 'sub', ARGV[3], 'u', ARGV[4], 'at', ARGV[5], 'amr', ARGV[6], 'ft', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'st', 'denied')
end
return 1`)

// DecideDevice approves (with the user's subject, snapshot, sign-in time,
// second-factor time (zero: none) and amr: how the approving session
// authenticated) or denies a pending
// device authorization. ErrNotFound, ErrDecided (already approved or
// denied), ErrExpired.
func (o *OIDC) DecideDevice(ctx context.Context, deviceHash string, approve bool, subject string, user []byte, authTime, factorTime time.Time, amr []string, now time.Time) error {
	if err := checkID("device", deviceHash); err != nil {
		return err
	}
	state := DeviceDenied
	if approve {
		state = DeviceApproved
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	n, err := decide.Run(ctx, o.store.client, []string{o.devKey(deviceHash)}, now.UnixMilli(), state, subject, user, authTime.Unix(),
		strings.Join(amr, " "), unixOrZero(factorTime)).Int()
	if err != nil {
		return Unavailable("store: oidc device", err)
	}
	switch n {
	case 1:
		if !approve {
			return nil
		}
		// The subject index lists the approved authorization until it is
		// redeemed, so that RevokeSubject can take it back (another slot:
		// a failure here leaves an approval that a revocation cannot see
		// for the few seconds until the CLI's next poll; say so).
		sk := o.subKey(subject)
		_, err := o.store.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, sk, devMember+deviceHash)
			p.Expire(ctx, sk, devIndexTTL)
			return nil
		})
		return Unavailable("store: oidc device index", err)
	case 2:
		return fmt.Errorf("store: oidc device: %w", ErrDecided)
	case 3:
		return fmt.Errorf("store: oidc device: %w", ErrExpired)
	}
	return fmt.Errorf("store: oidc device: %w", ErrNotFound)
}

// Poll outcomes (RFC 8628 §3.5).
const (
	PollUnknown  = "unknown"  // no such device code (for this client): invalid_grant
	PollExpired  = "expired"  // expired_token
	PollDenied   = "denied"   // access_denied
	PollRedeemed = "redeemed" // tokens already issued: invalid_grant
	PollSlowDown = "slow_down"
	PollPending  = "authorization_pending"
	PollApproved = "approved" // issue the tokens now (the state is now redeemed)
)

// PollResult is the answer to one poll.
type PollResult struct {
	Status string
	// Interval is the polling interval from now on (grown by 5 s at each
	// slow_down).
	Interval time.Duration
	// Device is set for PollApproved.
	Device OIDCDevice
}

var poll = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'c', 'exp', 'iv', 'lp', 'st')
if not f[1] or f[1] ~= ARGV[1] then return {'unknown'} end
local now = tonumber(ARGV[2])
if f[5] == 'redeemed' then return {'redeemed'} end
if now >= tonumber(f[2]) then return {'expired'} end
if f[5] == 'denied' then return {'denied'} end
local iv = tonumber(f[3])
if f[4] and now - tonumber(f[4]) < iv * 1000 then
  iv = iv + 5
  redis.call('HSET', KEYS[1], 'iv', iv, 'lp', ARGV[2])
  return {'slow_down', iv}
end
if f[5] ~= 'approved' then
  redis.call('HSET', KEYS[1], 'lp', ARGV[2])
  return {'authorization_pending', iv}
end
redis.call('HSET', KEYS[1], 'lp', ARGV[2], 'st', 'redeemed')
local d = redis.call('HMGET', KEYS[1], 'c', 's', 'ip', 'uc', 'cr', 'exp', 'iv', 'st', 'sub', 'u', 'at', 'amr', 'ft')
table.insert(d, 1, iv)
table.insert(d, 1, 'approved')
return d`)

// PollDevice answers one token-endpoint poll of clientID for a device
// code (by hash) in one round trip: it records the poll time, grows the
// interval by 5 s when the client polls faster than it (slow_down), and
// hands out an approved authorization exactly once.
func (o *OIDC) PollDevice(ctx context.Context, deviceHash, clientID string, now time.Time) (PollResult, error) {
	if checkID("device", deviceHash) != nil {
		return PollResult{Status: PollUnknown}, nil
	}
	ctx, cancel := o.store.op(ctx)
	defer cancel()
	res, err := poll.Run(ctx, o.store.client, []string{o.devKey(deviceHash)}, clientID, now.UnixMilli()).Slice()
	if err != nil {
		return PollResult{}, Unavailable("store: oidc device poll", err)
	}
	r := PollResult{Status: res[0].(string)}
	if len(res) > 1 {
		iv, _ := res[1].(int64)
		r.Interval = time.Duration(iv) * time.Second
	}
	if r.Status == PollApproved {
		d, ok := parseDevice(res[2:])
		if !ok {
			return PollResult{Status: PollUnknown}, nil
		}
		r.Device = d
	}
	return r, nil
}
