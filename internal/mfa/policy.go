package mfa

import (
	"context"
	"slices"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Policy is the mfa block applied: who must give a second factor, which
// factors count. It implements the web layer's SecondFactor.
type Policy struct {
	cfg    Config
	groups identity.GroupMatcher
	f      *Factors
}

// NewPolicy returns the policy of cfg (defaults applied, validated) over f.
func NewPolicy(cfg Config, f *Factors) *Policy {
	return &Policy{cfg: cfg, groups: identity.NewGroupMatcher(cfg.Groups), f: f}
}

// Config returns the policy's configuration.
func (p *Policy) Config() Config { return p.cfg }

// Required reports whether u must give a second factor at every sign-in.
func (p *Policy) Required(u identity.User) bool {
	switch p.cfg.Required {
	case RequiredAll:
		return true
	case RequiredGroups:
		return p.groups.Match(u)
	default:
		return false
	}
}

// Methods are the second factors that count.
func (p *Policy) Methods() []string { return p.cfg.Methods }

// Allows reports whether method counts.
func (p *Policy) Allows(method string) bool { return slices.Contains(p.cfg.Methods, method) }

// usable counts the factors that count and can be used to sign in
// (recovery codes alone are a fallback, not a factor one enrolls).
func (p *Policy) usable(n Counts) int {
	k := 0
	if p.Allows(identity.MethodTOTP) {
		k += n.TOTP
	}
	if p.Allows(identity.MethodWebAuthn) {
		k += n.WebAuthn
	}
	return k
}

// Enrolled reports whether the user has a factor that counts.
func (p *Policy) Enrolled(ctx context.Context, userID string) (bool, error) {
	n, err := p.f.Count(ctx, userID)
	if err != nil {
		return false, err
	}
	return p.usable(n) > 0, nil
}

// AfterPassword implements the web layer's SecondFactor: a user who must
// use MFA gives the factor (store.PendingFactor) or, without one, sets one
// up (store.PendingEnroll). Others go on with the password alone; a role
// that requires more asks for it at hand-off (step-up).
func (p *Policy) AfterPassword(ctx context.Context, u identity.User) (string, error) {
	if !p.Required(u) {
		return "", nil
	}
	n, err := p.f.Count(ctx, u.ID)
	if err != nil {
		return "", err
	}
	if p.usable(n) > 0 {
		if h := web.FactorHintOf(ctx); h != nil {
			h.V = countsHint{userID: u.ID, n: n} // for the code page of this request
		}
		return store.PendingFactor, nil
	}
	return store.PendingEnroll, nil
}

// GraceLeft is how long u may still postpone setting up a factor (0: not
// at all). The period counts from the first time u was asked.
func (p *Policy) GraceLeft(ctx context.Context, u identity.User, now time.Time) (time.Duration, error) {
	if p.cfg.EnrollGrace <= 0 {
		return 0, nil
	}
	start, err := p.f.GraceStart(ctx, u.ID, p.cfg.EnrollGrace+400*24*time.Hour) // never restarts within a year
	if err != nil {
		return 0, err
	}
	return max(start.Add(p.cfg.EnrollGrace).Sub(now), 0), nil
}

// CanRemove reports whether u may remove one factor of the kind given,
// with counts n: a user who must use MFA keeps at least one usable factor.
func (p *Policy) CanRemove(u identity.User, n Counts, method string) bool {
	if !p.Required(u) {
		return true
	}
	after := n
	switch method {
	case identity.MethodTOTP:
		after.TOTP--
	case identity.MethodWebAuthn:
		after.WebAuthn--
	}
	return p.usable(after) > 0
}

// countsHint is the factor count AfterPassword read, left for the code
// page that answers the same sign-in (web.FactorHint).
type countsHint struct {
	userID string
	n      Counts
}
