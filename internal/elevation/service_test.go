package elevation_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
	"github.com/wardenidp/warden/internal/testenv"
)

const (
	adminProd  = "arn:aws:iam::111122223333:role/Admin"
	adminStage = "arn:aws:iam::444455556666:role/Admin"
	breakGlass = "arn:aws:iam::111122223333:role/BreakGlass"
	viewOnly   = "arn:aws:iam::111122223333:role/ViewOnly"
)

// testRules: ops may request Admin in prod and staging (approved by
// secops, a ticket as the reason, at most 2h of a 4h session), and
// BreakGlass on their own (self-service, 1h); everyone in ops holds
// ViewOnly standing.
const testRules = `
accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
  - {id: "444455556666", name: staging, saml_provider: warden}
grants:
  - id: ops-admin
    group: ops
    roles:
      - {arn: "arn:aws:iam::111122223333:role/Admin", max_session_seconds: 14400, access: eligible, max_duration: 2h, approvers: secops, require_reason: true, reason_pattern: "^INC-[0-9]+"}
      - {arn: "arn:aws:iam::444455556666:role/Admin", access: eligible, approvers: secops}
      - {arn: "arn:aws:iam::111122223333:role/BreakGlass", access: eligible}
      - {arn: "arn:aws:iam::111122223333:role/ViewOnly"}
`

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) fresh() identity.Authn {
	return identity.Authn{Method: identity.MethodTOTP, Time: c.Now(), FactorTime: c.Now()}
}
func user(id string, groups ...string) identity.User {
	u := identity.User{ID: "u-" + id, Username: id}
	for _, g := range groups {
		u.Groups = append(u.Groups, identity.Group{Name: g, DN: "cn=" + g + ",ou=groups,dc=example,dc=org"})
	}
	return u
}

type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}
func (r *recorder) actions() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Action+":"+e.Result)
	}
	return strings.Join(out, " ")
}

func newService(t testing.TB, rules string) (*elevation.Service, *clock, *rolemap.Holder, *recorder) {
	t.Helper()
	testenv.Require(t, "REDIS_ADDR")
	st := storetest.Open(t, "elev")
	rs, err := rolemap.ParseYAML([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	h := &rolemap.Holder{}
	h.Store(eng)
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	rec := &recorder{}
	svc, err := elevation.New(elevation.Deps{Store: store.NewElevations(st, clk.Now), Rules: h, Audit: rec, Now: clk.Now,
		DefaultSessionSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	return svc, clk, h, rec
}

func TestRequestApproveApply(t *testing.T) {
	svc, clk, h, rec := newService(t, testRules)
	ctx := t.Context()
	bob, sam, otherOps := user("bob", "ops"), user("sam", "secops"), user("olga", "ops")

	// Eligible roles are not granted before an elevation.
	res := rolemap.Result{}
	if err := applyTo(ctx, svc, h, bob, &res); err != nil {
		t.Fatal(err)
	}
	if has(res.Grants, adminProd) || !has(res.Eligible, adminProd) || !has(res.Grants, viewOnly) {
		t.Fatalf("before: grants %v eligible %v", arns(res.Grants), arns(res.Eligible))
	}

	e, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{adminProd, adminStage}, Seconds: 3600,
		Reason: "INC-4711 disk full", ClientIP: "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if e.State != store.ElevationPending || len(e.Approvers) != 1 || e.Approvers[0] != "secops" {
		t.Fatalf("request %+v", e)
	}
	// The requester cannot approve, nor can a colleague outside secops.
	if _, err := svc.Decide(ctx, bob, clk.fresh(), e.ID, true, "", ""); !errors.Is(err, store.ErrSelfApproval) {
		t.Errorf("self approval: %v", err)
	}
	if _, err := svc.Decide(ctx, otherOps, clk.fresh(), e.ID, true, "", ""); !errors.Is(err, elevation.ErrNotApprover) {
		t.Errorf("approval by a non-approver: %v", err)
	}
	// An approver without a fresh factor is sent to step up.
	stale := identity.Authn{Method: identity.MethodTOTP, Time: clk.Now().Add(-time.Hour), FactorTime: clk.Now().Add(-time.Hour)}
	if _, err := svc.Decide(ctx, sam, stale, e.ID, true, "", ""); !errors.Is(err, elevation.ErrStepUp) {
		t.Errorf("stale factor: %v", err)
	}
	if todo, err := svc.ToDecide(ctx, sam); err != nil || len(todo) != 1 || todo[0].ID != e.ID {
		t.Fatalf("to decide for sam: %v %v", todo, err)
	}
	if todo, _ := svc.ToDecide(ctx, otherOps); len(todo) != 0 {
		t.Errorf("olga may decide %v", todo)
	}
	e, err = svc.Decide(ctx, sam, clk.fresh(), e.ID, true, "go ahead", "192.0.2.9")
	if err != nil || e.State != store.ElevationApproved {
		t.Fatalf("approve: %+v %v", e, err)
	}

	// Active: both roles granted, the session capped at the time left.
	clk.Add(20 * time.Minute)
	res = rolemap.Result{}
	if err := applyTo(ctx, svc, h, bob, &res); err != nil {
		t.Fatal(err)
	}
	for _, arn := range []string{adminProd, adminStage} {
		g, ok := find(res.Grants, arn)
		if !ok || g.Elevation == nil || g.Elevation.ID != e.ID {
			t.Fatalf("%s not granted by the elevation: %+v", arn, res.Grants)
		}
		if g.SessionSeconds != 40*60 {
			t.Errorf("%s SessionSeconds %d, want 2400 (the time left)", arn, g.SessionSeconds)
		}
	}
	tags := svc.Tags(res.Grants)
	if len(tags) != 2 || tags[0].Key != elevation.DefaultIDTag || tags[0].Value != e.ID ||
		tags[1].Key != elevation.DefaultReasonTag || tags[1].Value != "INC-4711 disk full" {
		t.Errorf("tags %+v", tags)
	}
	// Less than 15 minutes left: no AWS session could end in time.
	clk.Add(30 * time.Minute)
	res = rolemap.Result{}
	_ = applyTo(ctx, svc, h, bob, &res)
	if has(res.Grants, adminProd) {
		t.Error("granted with 10 minutes left")
	}
	if g, _ := find(res.Eligible, adminProd); g.Elevation == nil || g.Elevation.ID != e.ID {
		t.Errorf("the eligible entry does not name the ending elevation: %+v", g)
	}
	// The user leaves ops: the elevation ends at the next hand-off.
	clk.Add(-30 * time.Minute)
	gone := user("bob", "staff")
	res = rolemap.Result{}
	_ = applyTo(ctx, svc, h, gone, &res)
	if has(res.Grants, adminProd) {
		t.Error("granted after losing the group")
	}
	// (Evaluate gives no eligible roles, so nothing is read: the
	// elevation ends when a look-up with other eligible roles sees it,
	// or by an admin.)
	if got, err := svc.End(ctx, user("root", "admins"), true, e.ID, ""); err != nil || got.State != store.ElevationEnded ||
		got.EndedBy != "root (admin)" {
		t.Fatalf("admin end: %+v %v", got, err)
	}
	res = rolemap.Result{}
	_ = applyTo(ctx, svc, h, bob, &res)
	if has(res.Grants, adminProd) {
		t.Error("granted after the end")
	}
	want := "elevation.decide:self_approval elevation.decide:not_approver elevation.decide:step_up_required"
	if got := rec.actions(); !strings.Contains(got, "elevation.request:success") || !strings.Contains(got, want) ||
		!strings.Contains(got, "elevation.approved:success") || !strings.Contains(got, "elevation.end:success") {
		t.Errorf("audit: %s", got)
	}
}

func TestSelfServiceAndDirectoryLoss(t *testing.T) {
	svc, clk, _, _ := newService(t, testRules)
	ctx := t.Context()
	bob := user("bob", "ops")
	e, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{breakGlass}, Seconds: 1800})
	if err != nil || e.State != store.ElevationApproved || !strings.Contains(e.Decider, "self-service") {
		t.Fatalf("self-service: %+v %v", e, err)
	}
	// Eligible for other roles still, but not for BreakGlass: the
	// elevation whose roles are all gone ends ("directory").
	narrowed := strings.Replace(testRules, `      - {arn: "arn:aws:iam::111122223333:role/BreakGlass", access: eligible}`+"\n", "", 1)
	rs, err := rolemap.ParseYAML([]byte(narrowed))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	res := eng.Evaluate(rolemap.InputFromUser(bob))
	if err := svc.Apply(ctx, bob, &res); err != nil {
		t.Fatal(err)
	}
	if has(res.Grants, breakGlass) {
		t.Fatal("BreakGlass granted without eligibility")
	}
	got, err := svc.Get(ctx, e.ID)
	if err != nil || got.State != store.ElevationEnded || got.EndedBy != "directory" {
		t.Fatalf("after losing eligibility: %+v %v", got, err)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	svc, clk, _, _ := newService(t, testRules)
	ctx := t.Context()
	bob := user("bob", "ops")
	cases := []struct {
		name string
		in   elevation.Input
		want error
	}{
		{"over the maximum", elevation.Input{Roles: []string{adminProd}, Seconds: 3 * 3600, Reason: "INC-1"}, elevation.ErrInvalid},
		{"under 15 minutes", elevation.Input{Roles: []string{adminProd}, Seconds: 600, Reason: "INC-1"}, elevation.ErrInvalid},
		{"reason not a ticket", elevation.Input{Roles: []string{adminProd}, Seconds: 3600, Reason: "because"}, elevation.ErrInvalid},
		{"no reason", elevation.Input{Roles: []string{adminProd}, Seconds: 3600}, elevation.ErrInvalid},
		{"standing role", elevation.Input{Roles: []string{viewOnly}, Seconds: 3600}, elevation.ErrNotEligible},
		{"unknown role", elevation.Input{Roles: []string{"arn:aws:iam::111122223333:role/Nope"}, Seconds: 3600}, elevation.ErrNotEligible},
		{"no role", elevation.Input{Seconds: 3600}, elevation.ErrInvalid},
		{"start in the past", elevation.Input{Roles: []string{breakGlass}, Seconds: 3600, StartAt: clk.Now().Add(-time.Hour)}, elevation.ErrInvalid},
		{"start too far", elevation.Input{Roles: []string{breakGlass}, Seconds: 3600, StartAt: clk.Now().Add(30 * 24 * time.Hour)}, elevation.ErrInvalid},
		{"control characters", elevation.Input{Roles: []string{breakGlass}, Seconds: 3600, Reason: "a\nb"}, elevation.ErrInvalid},
	}
	for _, c := range cases {
		if _, err := svc.Request(ctx, bob, clk.fresh(), c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else if msg := elevation.PublicMessage(err); msg == "" || strings.Contains(msg, "elevation:") {
			t.Errorf("%s: public message %q", c.name, msg)
		}
	}
	// Without a fresh factor.
	if _, err := svc.Request(ctx, bob, identity.PasswordOnly(clk.Now()), elevation.Input{Roles: []string{breakGlass}, Seconds: 900}); !errors.Is(err, elevation.ErrStepUp) {
		t.Errorf("password only: %v", err)
	}
	mine, err := svc.Mine(ctx, bob, 50)
	if err != nil || len(mine) != 0 {
		t.Fatalf("stored after refusals: %v %v", mine, err)
	}
	// Someone else's request: as if unknown.
	e, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{adminStage}, Seconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.End(ctx, user("eve", "ops"), false, e.ID, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ending another user's request: %v", err)
	}
}

func TestConcurrentDecisionsAndExpiry(t *testing.T) {
	svc, clk, _, rec := newService(t, testRules)
	ctx := t.Context()
	bob := user("bob", "ops")
	e, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{adminStage}, Seconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	approvers := []identity.User{user("sam", "secops"), user("sue", "secops"), user("sid", "secops"), user("sol", "secops")}
	var wg sync.WaitGroup
	errs := make([]error, len(approvers))
	for i, a := range approvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.Decide(ctx, a, clk.fresh(), e.ID, i%2 == 0, "", "")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyDecided):
			t.Fatalf("concurrent decision: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d decisions, want 1", won)
	}

	// Expiry with the injected clock: one sweep records it once.
	late, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{adminStage}, Seconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(elevation.DefaultRequestTimeout + time.Second)
	svc.Sweep(ctx)
	svc.Sweep(ctx)
	got, err := svc.Get(ctx, late.ID)
	if err != nil || got.State != store.ElevationExpired {
		t.Fatalf("after the deadline: %+v %v", got, err)
	}
	if n := strings.Count(rec.actions(), "elevation.expire:success"); n != 1 {
		t.Errorf("expiry recorded %d times", n)
	}
	if _, err := svc.Decide(ctx, approvers[0], clk.fresh(), late.ID, true, "", ""); err == nil {
		t.Error("an expired request was approved")
	}
}

func applyTo(ctx context.Context, svc *elevation.Service, h *rolemap.Holder, u identity.User, res *rolemap.Result) error {
	*res = h.Load().Evaluate(rolemap.InputFromUser(u))
	return svc.Apply(ctx, u, res)
}

func has(gs []rolemap.Grant, arn string) bool { _, ok := find(gs, arn); return ok }

func find(gs []rolemap.Grant, arn string) (rolemap.Grant, bool) {
	for _, g := range gs {
		if g.RoleARN == arn {
			return g, true
		}
	}
	return rolemap.Grant{}, false
}

func arns(gs []rolemap.Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.RoleARN)
	}
	return out
}

// EndAll is what ending all of a user's access does to elevations: the
// active one ends, the pending one is withdrawn, the past ones stay.
func TestEndAll(t *testing.T) {
	svc, clk, h, _ := newService(t, testRules)
	ctx := t.Context()
	bob := user("bob", "ops")
	active, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{breakGlass}, Seconds: 1800})
	if err != nil {
		t.Fatal(err)
	}
	pending, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{adminStage}, Seconds: 1800})
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.EndAll(ctx, bob, "directory.disabled")
	if err != nil || n != 2 {
		t.Fatalf("EndAll: %d %v", n, err)
	}
	for _, id := range []string{active.ID, pending.ID} {
		if e, _ := svc.Get(ctx, id); e.State != store.ElevationEnded || e.EndedBy != "directory.disabled" {
			t.Errorf("%s: %s by %q", id, e.State, e.EndedBy)
		}
	}
	res := rolemap.Result{}
	_ = applyTo(ctx, svc, h, bob, &res)
	if has(res.Grants, breakGlass) {
		t.Error("granted after EndAll")
	}
	if n, err := svc.EndAll(ctx, bob, "admin"); err != nil || n != 0 {
		t.Errorf("second EndAll: %d %v", n, err)
	}
}
