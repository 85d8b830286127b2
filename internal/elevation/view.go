package elevation

import (
	"context"
	"time"

	"github.com/wardenidp/warden/internal/store"
)

// Additions to Service for the pages and the JSON API (ui.go, api.go).

// Track adds e (just requested, or just approved) to the global indexes
// behind the admin page's "active" and "history" lists (best effort: a
// failure is logged, the elevation itself is stored already). Request
// and Decide call it.
func (s *Service) Track(ctx context.Context, e store.Elevation) {
	if err := s.st.Track(ctx, e); err != nil {
		s.log.Warn("elevation: indexing a request for the admin pages failed", "elevation", e.ID, "err", err)
	}
}

// Approved returns every approved elevation whose window has not ended
// (active now or planned), soonest end first (admins).
func (s *Service) Approved(ctx context.Context, limit int64) ([]store.Elevation, error) {
	return s.st.Approved(ctx, limit)
}

// Recent returns the latest requests of all users, newest first (admins).
func (s *Service) Recent(ctx context.Context, limit int64) ([]store.Elevation, error) {
	return s.st.Recent(ctx, limit)
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }
