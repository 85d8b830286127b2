// Package access owns "a user's access" (DESIGN.md, flow 5): one operation
// that ends all of it (browser sessions, OIDC token families with their
// access tokens, approved device codes not yet redeemed) with one audit
// event naming the cause, and the fresh directory look-up that every
// hand-off to AWS, every device approval, every admin change and every
// re-check of a browser session goes through.
//
// A look-up that finds the user gone (deleted, or the username now naming
// another entry) or refused (disabled, locked, expired, password expired,
// must change password) revokes everything at once and returns the
// directory's answer, so that callers branch with identity.IsGone. A look-up
// that cannot be made (directory or Redis outage) returns an error wrapping
// identity.ErrDirectoryUnavailable or store.ErrUnavailable and revokes
// nothing: an outage is never a refusal.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
)

// Cause says why access was revoked; it is the audit event's detail.
type Cause string

// Causes of a revocation.
const (
	CauseAdmin    Cause = "admin"    // an admin in the UI or API
	CauseOperator Cause = "operator" // wardend users revoke
	// The directory, at a fresh look-up:
	CauseDeleted         Cause = "directory.deleted"  // no entry with the user's ID (or name)
	CauseReplaced        Cause = "directory.replaced" // the username names another entry now
	CauseDisabled        Cause = "directory.disabled"
	CauseLocked          Cause = "directory.locked"
	CauseExpired         Cause = "directory.account_expired"
	CausePasswordExpired Cause = "directory.password_expired"
	CauseMustChange      Cause = "directory.must_change_password"
	CauseRejected        Cause = "directory.rejected" // any other refusal
)

// Directory looks users up without a password (directory.Directory).
type Directory interface {
	Lookup(ctx context.Context, username string) (identity.User, error)
}

// IDLookup is the optional look-up by stable ID (entryUUID / objectGUID),
// which survives renames. Without it the user is looked up by username and
// must still have the same ID.
type IDLookup interface {
	LookupID(ctx context.Context, id string) (identity.User, error)
}

// SessionRevoker ends every browser session of a user (store.Sessions).
type SessionRevoker interface {
	RevokeUser(ctx context.Context, userID string) (int, error)
}

// GrantRevoker ends every OIDC token family of a user and takes back the
// device codes approved for them but not yet redeemed (oidcop.Provider).
type GrantRevoker interface {
	RevokeUser(ctx context.Context, u identity.User) (grants, devices int, err error)
}

// Deps are the collaborators of Access.
type Deps struct {
	Directory Directory      // required
	Sessions  SessionRevoker // required
	// Grants may be set later with SetGrants (the OIDC provider is built
	// after Access, since it checks users through it); nil: no OIDC.
	Grants GrantRevoker
	Audit  audit.Logger // nil: discard
	Logger *slog.Logger // nil: discard
	// Observer, when set, counts the revocations it records (metrics).
	Observer Observer
}

// Observer is told the cause of every revocation that is recorded.
type Observer interface {
	Revoked(cause Cause)
}

// Access is the one owner of a user's access.
type Access struct {
	dir        Directory
	sessions   SessionRevoker
	grants     GrantRevoker
	elevations ElevationEnder
	audit      audit.Logger
	log        *slog.Logger
	obs        Observer

	// Requests of one gone user that arrive together share one revocation
	// (and so one audit event): user ID -> the revocation in flight.
	mu       sync.Mutex
	inFlight map[string]*revocation
}

type revocation struct {
	done chan struct{}
	res  Result
	err  error
}

// New returns Access.
func New(d Deps) (*Access, error) {
	if d.Directory == nil || d.Sessions == nil {
		return nil, errors.New("access: Deps.Directory and Deps.Sessions are required")
	}
	if d.Audit == nil {
		d.Audit = audit.Discard{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Access{dir: d.Directory, sessions: d.Sessions, grants: d.Grants, audit: d.Audit, log: d.Logger, obs: d.Observer,
		inFlight: map[string]*revocation{}}, nil
}

// SetGrants sets the OIDC side; call it before serving.
func (a *Access) SetGrants(g GrantRevoker) { a.grants = g }

// ElevationEnder ends a user's active elevations and withdraws their
// pending requests (elevation.Service), returning how many.
type ElevationEnder interface {
	EndAll(ctx context.Context, u identity.User, by string) (int, error)
}

// SetElevations sets the elevations to end with the rest; call it before
// serving.
func (a *Access) SetElevations(e ElevationEnder) { a.elevations = e }

// Result counts what a revocation ended.
type Result struct {
	Sessions   int `json:"sessions"`
	Grants     int `json:"grants"`
	Devices    int `json:"device_codes"`
	Elevations int `json:"elevations"`
}

// Total is the number of things ended.
func (r Result) Total() int { return r.Sessions + r.Grants + r.Devices + r.Elevations }

// Request says who revokes and from where, for the audit event.
type Request struct {
	Actor     string // the admin's username, "operator", or "directory"
	ClientIP  string
	RequestID string
	// Via is the path that found the user gone (a directory cause only):
	// "session" (a browser request's periodic re-check), the route of a
	// hand-off or admin change ("/aws/console", "/saml/sso",
	// "/device/approve", "/admin/api/accounts", ...), "token_exchange",
	// "refresh".
	Via string
}

// Revoke ends all access of u (u.ID is required; u.Username is for the
// audit record) and records one audit event "access.revoke" naming cause.
// Sessions go first, then the OIDC grants; every part is attempted, and
// the first failure is returned (wrapping store.ErrUnavailable) with what
// was ended so far. An event with nothing to end is recorded for an
// admin's or operator's revocation, not for a directory one (many
// requests of a deleted user may find it gone at the same moment; the
// first ends everything and records it).
func (a *Access) Revoke(ctx context.Context, u identity.User, cause Cause, req Request) (Result, error) {
	if u.ID == "" {
		return Result{}, errors.New("access: revoke: user has no ID")
	}
	var res Result
	var errs []error
	n, err := a.sessions.RevokeUser(ctx, u.ID)
	res.Sessions = n
	if err != nil {
		errs = append(errs, fmt.Errorf("sessions: %w", err))
	}
	if a.grants != nil {
		g, d, err := a.grants.RevokeUser(ctx, u)
		res.Grants, res.Devices = g, d
		if err != nil {
			errs = append(errs, fmt.Errorf("oidc grants: %w", err))
		}
	}
	if a.elevations != nil {
		by := req.Actor
		if by == "" {
			by = string(cause)
		}
		n, err := a.elevations.EndAll(ctx, u, by)
		res.Elevations = n
		if err != nil {
			errs = append(errs, fmt.Errorf("elevations: %w", err))
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		err = fmt.Errorf("access: revoke: %w", err)
	}
	directoryCause := cause != CauseAdmin && cause != CauseOperator
	if res.Total() > 0 || err != nil || !directoryCause {
		ev := audit.Event{Actor: req.Actor, Action: "access.revoke", Object: u.Username, Result: "success",
			ClientIP: req.ClientIP, RequestID: req.RequestID,
			Detail: map[string]string{
				"cause":    string(cause),
				"user_id":  u.ID,
				"sessions": strconv.Itoa(res.Sessions),
				"grants":   strconv.Itoa(res.Grants),
				"devices":  strconv.Itoa(res.Devices),
			}}
		if res.Elevations > 0 {
			ev.Detail["elevations"] = strconv.Itoa(res.Elevations)
		}
		if ev.Object == "" {
			ev.Object = u.ID
		}
		if req.Via != "" {
			ev.Detail["via"] = req.Via
		}
		if err != nil {
			ev.Result = "error"
		}
		a.audit.Record(ctx, ev)
		if a.obs != nil {
			a.obs.Revoked(cause)
		}
	}
	return res, err
}

// Check looks u up afresh (by ID when the directory can, else by username
// with the same ID required) and returns the user as the directory has
// them now: groups, attributes, and the username after a rename.
//
// When the directory no longer knows the user, or refuses them (disabled,
// locked, expired, must change password), all their access is revoked
// (cause from the answer) and the directory's answer is returned:
// identity.IsGone(err) is true. An outage returns an error that wraps
// identity.ErrDirectoryUnavailable (or the store's outage, when the
// revocation itself failed) and revokes nothing.
func (a *Access) Check(ctx context.Context, u identity.User, req Request) (identity.User, error) {
	fresh, err := a.lookup(ctx, u)
	if err == nil {
		return fresh, nil
	}
	if !identity.IsGone(err) {
		return identity.User{}, err
	}
	if u.ID == "" {
		return identity.User{}, err
	}
	cause := causeOf(err)
	if req.Actor == "" {
		req.Actor = "directory"
	}
	res, rerr := a.revokeOnce(ctx, u, cause, req)
	if rerr != nil {
		// The user is gone but what they hold could not all be ended:
		// the caller must not hand anything out, and must not say "gone"
		// either (the next request retries the revocation).
		return identity.User{}, rerr
	}
	if res.Total() > 0 {
		a.log.LogAttrs(ctx, slog.LevelInfo, "access revoked by the directory",
			slog.String("user", u.Username), slog.String("cause", string(cause)), slog.String("via", req.Via))
	}
	return identity.User{}, err
}

// revokeOnce is Revoke for a user the directory found gone: requests of
// that user arriving while a revocation of theirs is in flight wait for it
// and share its outcome, so that it is recorded once. (Replicas do not
// share this: two replicas finding the same user gone at the same moment
// each record what they ended.)
func (a *Access) revokeOnce(ctx context.Context, u identity.User, cause Cause, req Request) (Result, error) {
	a.mu.Lock()
	if r, ok := a.inFlight[u.ID]; ok {
		a.mu.Unlock()
		select {
		case <-r.done:
			return r.res, r.err
		case <-ctx.Done():
			return Result{}, fmt.Errorf("access: revoke: %w", ctx.Err())
		}
	}
	r := &revocation{done: make(chan struct{})}
	a.inFlight[u.ID] = r
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.inFlight, u.ID)
		a.mu.Unlock()
		close(r.done)
	}()
	// The revocation is not the leader's request's to cancel: it finishes
	// for everyone waiting on it.
	r.res, r.err = a.Revoke(context.WithoutCancel(ctx), u, cause, req)
	return r.res, r.err
}

// lookup finds u's entry now. A different entry under u's username is
// identity.ErrUserNotFound (the user u is gone) with CauseReplaced.
func (a *Access) lookup(ctx context.Context, u identity.User) (identity.User, error) {
	if il, ok := a.dir.(IDLookup); ok && u.ID != "" {
		return il.LookupID(ctx, u.ID)
	}
	fresh, err := a.dir.Lookup(ctx, u.Username)
	if err == nil && u.ID != "" && fresh.ID != u.ID {
		return identity.User{}, &replacedError{}
	}
	return fresh, err
}

type replacedError struct{}

func (*replacedError) Error() string { return "the username names another directory entry now" }
func (*replacedError) Unwrap() error { return identity.ErrUserNotFound }

func causeOf(err error) Cause {
	var re *replacedError
	switch {
	case errors.As(err, &re):
		return CauseReplaced
	case errors.Is(err, identity.ErrUserNotFound):
		return CauseDeleted
	case errors.Is(err, identity.ErrAccountDisabled):
		return CauseDisabled
	case errors.Is(err, identity.ErrAccountLocked):
		return CauseLocked
	case errors.Is(err, identity.ErrAccountExpired):
		return CauseExpired
	case errors.Is(err, identity.ErrPasswordExpired):
		return CausePasswordExpired
	case errors.Is(err, identity.ErrMustChangePassword):
		return CauseMustChange
	}
	return CauseRejected
}
