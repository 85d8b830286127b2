package store

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Global indexes of elevation requests for the admin pages (the requests
// themselves are in elevation.go; a user's own are indexed there):
//
//	elev:recent   sorted set of request IDs by creation (ms), the newest
//	              RecentElevations kept
//	elev:active   sorted set of approved request IDs by the end of their
//	              window (ms); entries past their end are pruned by Track,
//	              those ended early by the readers (no TTL: a planned
//	              window may end months ahead)
//
// Track adds a request to them; it is called after a request is stored
// and after it is approved. Both are best effort, like the other indexes:
// a request missing from them is still valid, only not listed here.

// RecentElevations is how many requests elev:recent keeps.
const RecentElevations = 2000

func (s *Elevations) recentKey() string { return s.store.Key("elev:recent") }
func (s *Elevations) activeKey() string { return s.store.Key("elev:active") }

// Track records e in the global indexes: every request in the recent
// list, an approved one also among the active ones until its window ends.
func (s *Elevations) Track(ctx context.Context, e Elevation) error {
	if !validElevationID(e.ID) {
		return nil
	}
	pipe := s.store.client.Pipeline()
	pipe.ZAdd(ctx, s.recentKey(), redis.Z{Score: float64(e.Created.UnixMilli()), Member: e.ID})
	pipe.ZRemRangeByRank(ctx, s.recentKey(), 0, -RecentElevations-1)
	pipe.PExpire(ctx, s.recentKey(), ElevationRetention)
	if e.State == ElevationApproved && !e.EndsAt.IsZero() {
		pipe.ZAdd(ctx, s.activeKey(), redis.Z{Score: float64(e.EndsAt.UnixMilli()), Member: e.ID})
	}
	pipe.ZRemRangeByScore(ctx, s.activeKey(), "-inf", "("+strconv.FormatInt(s.now().UnixMilli(), 10))
	if _, err := pipe.Exec(ctx); err != nil {
		return Unavailable("store: index elevation", err)
	}
	return nil
}

// Recent returns the latest requests of every user, newest first (at
// most limit; those whose record is gone are skipped).
func (s *Elevations) Recent(ctx context.Context, limit int64) ([]Elevation, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.store.client.ZRevRange(ctx, s.recentKey(), 0, limit-1).Result()
	if err != nil {
		return nil, Unavailable("store: recent elevations", err)
	}
	return s.load(ctx, ids, s.recentKey())
}

// Approved returns the approved elevations whose window has not ended:
// active now, or planned to start later (StartsAt after now), soonest end
// first, at most limit. Ended ones leave the index as they are read.
func (s *Elevations) Approved(ctx context.Context, limit int64) ([]Elevation, error) {
	if limit <= 0 {
		return nil, nil
	}
	now := s.now()
	ids, err := s.store.client.ZRangeByScore(ctx, s.activeKey(), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf", Count: limit}).Result()
	if err != nil {
		return nil, Unavailable("store: active elevations", err)
	}
	es, err := s.load(ctx, ids, s.activeKey())
	if err != nil {
		return nil, err
	}
	out := es[:0]
	var over []any
	for _, e := range es {
		if e.State == ElevationApproved && now.Before(e.EndsAt) {
			out = append(out, e)
		} else {
			over = append(over, e.ID)
		}
	}
	if len(over) > 0 {
		s.store.client.ZRem(ctx, s.activeKey(), over...) // best effort
	}
	return out, nil
}
