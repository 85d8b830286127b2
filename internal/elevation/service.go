package elevation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Refusals (errors.Is); each is a 4xx for the one who asked. Store
// refusals (store.ErrSelfApproval, store.ErrAlreadyDecided,
// store.ErrPastDeadline, store.ErrNotActive, store.ErrNotFound) pass
// through wrapped.
var (
	ErrInvalid     = errors.New("elevation: invalid request")
	ErrNotEligible = errors.New("elevation: role not eligible")
	ErrNotApprover = errors.New("elevation: not an approver of this request")
	ErrStepUp      = errors.New("elevation: a fresh second factor is needed")
	ErrForbidden   = errors.New("elevation: not yours")
	ErrRateLimited = errors.New("elevation: too many requests")
)

// Invalid is an ErrInvalid with the sentence to show.
type Invalid struct{ Msg string }

func (e *Invalid) Error() string        { return "elevation: " + e.Msg }
func (e *Invalid) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error { return &Invalid{Msg: fmt.Sprintf(format, args...)} }

// Limiter counts requests per user and client IP (store.Limiter).
type Limiter interface {
	Check(ctx context.Context, key, ip string) (store.Decision, error)
	Fail(ctx context.Context, key, ip string) error
}

// Deps are the collaborators of a Service.
type Deps struct {
	Config Config // defaults applied by New
	Store  *store.Elevations
	Rules  *rolemap.Holder
	// Notifier sends webhooks; nil: none.
	Notifier *Notifier
	Limiter  Limiter // nil: no limit
	Audit    audit.Logger
	Logger   *slog.Logger
	Metrics  prometheus.Registerer // nil: not registered
	Now      func() time.Time
	// StepUpMaxAge is how recent the second factor must be (mfa.step_up_max_age).
	StepUpMaxAge time.Duration
	// DefaultSessionSeconds is the SessionDuration of a role whose rule
	// sets none (saml.aws.default_session_seconds).
	DefaultSessionSeconds int
	// PublicURL links webhooks to the request's page.
	PublicURL string
}

// Service is time-boxed elevation.
type Service struct {
	cfg     Config
	st      *store.Elevations
	rules   *rolemap.Holder
	notify  *Notifier
	limiter Limiter
	audit   audit.Logger
	log     *slog.Logger
	now     func() time.Time
	stepUp  time.Duration
	defSecs int
	public  string
	total   *prometheus.CounterVec
}

// New returns the service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Rules == nil {
		return nil, errors.New("elevation: Store and Rules are required")
	}
	d.Config.SetDefaults()
	if err := d.Config.Validate(); err != nil {
		return nil, err
	}
	if d.Audit == nil {
		d.Audit = audit.Discard{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.StepUpMaxAge <= 0 {
		d.StepUpMaxAge = 5 * time.Minute
	}
	if d.DefaultSessionSeconds <= 0 {
		d.DefaultSessionSeconds = 3600
	}
	s := &Service{cfg: d.Config, st: d.Store, rules: d.Rules, notify: d.Notifier, limiter: d.Limiter, audit: d.Audit,
		log: d.Logger, now: d.Now, stepUp: d.StepUpMaxAge, defSecs: d.DefaultSessionSeconds,
		public: strings.TrimSuffix(d.PublicURL, "/"),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_elevations_total",
			Help: "Elevation steps by result: requested, approved, denied, expired, ended, refused (a request or decision refused as invalid or not allowed).",
		}, []string{"result"})}
	for _, r := range []string{"requested", "approved", "denied", "expired", "ended", "refused"} {
		s.total.WithLabelValues(r)
	}
	if d.Metrics != nil {
		if err := d.Metrics.Register(s.total); err != nil {
			return nil, fmt.Errorf("elevation: metrics: %w", err)
		}
	}
	return s, nil
}

// Config returns the configuration in use (defaults applied).
func (s *Service) Config() Config { return s.cfg }

// StepUpMaxAge is how recent a second factor must be to request or decide.
func (s *Service) StepUpMaxAge() time.Duration { return s.stepUp }

// Fresh reports whether authn has a second factor given within the step-up age.
func (s *Service) Fresh(authn identity.Authn) bool {
	return authn.MFA() && !authn.FactorTime.IsZero() && s.now().Sub(authn.FactorTime) <= s.stepUp
}

// Eligible returns the roles user may request under the current rules.
func (s *Service) Eligible(user identity.User) []rolemap.Grant {
	return s.rules.Load().Evaluate(rolemap.InputFromUser(user)).Eligible
}

// Input is a request as the user gave it.
type Input struct {
	Roles    []string // role ARNs
	Seconds  int
	Reason   string
	StartAt  time.Time // zero: at approval
	ClientIP string
}

// Request checks in against the user's eligible roles (evaluated from
// user, a fresh directory look-up) and stores it. A request for roles
// that name no approvers is approved at once (self-service). authn must
// carry a second factor from the last StepUpMaxAge.
func (s *Service) Request(ctx context.Context, user identity.User, authn identity.Authn, in Input) (store.Elevation, error) {
	e, err := s.request(ctx, user, authn, in)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		s.total.WithLabelValues("refused").Inc()
		s.record(ctx, user.Username, "elevation.request", "", refusal(err), in.ClientIP, map[string]string{
			"roles": strings.Join(clip(in.Roles, 5), " "), "seconds": strconv.Itoa(in.Seconds), "error": publicMessage(err)})
	}
	return e, err
}

func (s *Service) request(ctx context.Context, user identity.User, authn identity.Authn, in Input) (store.Elevation, error) {
	if !s.Fresh(authn) {
		return store.Elevation{}, ErrStepUp
	}
	now := s.now().UTC()
	roles, err := cleanRoles(in.Roles)
	if err != nil {
		return store.Elevation{}, err
	}
	eligible := s.Eligible(user)
	var approvers []string
	maxSecs := 0
	for _, arn := range roles {
		i := slices.IndexFunc(eligible, func(g rolemap.Grant) bool { return g.RoleARN == arn })
		if i < 0 {
			return store.Elevation{}, fmt.Errorf("%w: %s", ErrNotEligible, arn)
		}
		el := eligible[i].Eligible
		if maxSecs == 0 || el.MaxSeconds < maxSecs {
			maxSecs = el.MaxSeconds
		}
		if el.Approvers != "" && !slices.Contains(approvers, el.Approvers) {
			approvers = append(approvers, el.Approvers)
		}
		if err := el.CheckReason(strings.TrimSpace(in.Reason)); err != nil {
			return store.Elevation{}, invalid("reason for %s: %v", arn, err)
		}
	}
	reason, err := cleanText("reason", in.Reason)
	if err != nil {
		return store.Elevation{}, err
	}
	switch {
	case in.Seconds < MinSeconds:
		return store.Elevation{}, invalid("the duration must be at least 15 minutes (AWS sessions last at least that long)")
	case in.Seconds > maxSecs:
		return store.Elevation{}, invalid("the duration %s is over the maximum of %s for these roles", human(in.Seconds), human(maxSecs))
	}
	start := in.StartAt.UTC()
	if !start.IsZero() {
		switch {
		case start.Before(now.Add(-time.Minute)):
			return store.Elevation{}, invalid("the start time %s is in the past", start.Format(time.RFC3339))
		case start.After(now.Add(s.cfg.MaxStartDelay)):
			return store.Elevation{}, invalid("the start time is more than %s ahead", s.cfg.MaxStartDelay)
		case !start.After(now):
			start = time.Time{}
		}
	}
	if s.limiter != nil {
		d, err := s.limiter.Check(ctx, user.ID, in.ClientIP)
		if err != nil {
			return store.Elevation{}, err
		}
		if !d.Allowed {
			return store.Elevation{}, ErrRateLimited
		}
		if err := s.limiter.Fail(ctx, user.ID, in.ClientIP); err != nil {
			return store.Elevation{}, err
		}
	}
	deadline := now.Add(s.cfg.RequestTimeout)
	if start.After(deadline) {
		deadline = start
	}
	e, err := s.st.Create(ctx, store.ElevationRequest{UserID: user.ID, Username: user.Username, Roles: roles,
		Seconds: in.Seconds, Reason: reason, ClientIP: in.ClientIP, Created: now, StartAt: start, Deadline: deadline,
		Approvers: approvers, MaxSeconds: maxSecs})
	if err != nil {
		return store.Elevation{}, err
	}
	s.Track(ctx, e)
	s.total.WithLabelValues("requested").Inc()
	s.record(ctx, user.Username, "elevation.request", e.ID, "success", in.ClientIP, map[string]string{
		"roles": strings.Join(clip(roles, 5), " "), "seconds": strconv.Itoa(e.Seconds), "reason": audit.Clip(reason, 200),
		"approvers": strings.Join(approvers, "; "), "method": authn.Method})
	s.send(EventRequested, e, user.Username)
	if len(approvers) > 0 {
		return e, nil
	}
	// Self-service: the step-up above was the check; Warden decides.
	d, err := s.st.Decide(ctx, e.ID, "self-service", user.Username+" (self-service)", true, "")
	if err != nil {
		return e, err
	}
	s.Track(ctx, d)
	s.decided(ctx, d, user.Username, in.ClientIP)
	return d, nil
}

// Decide approves or denies request id as decider, who must be in every
// approver group of the request (as the directory says now), not be its
// requester, and have a fresh second factor.
func (s *Service) Decide(ctx context.Context, decider identity.User, authn identity.Authn, id string, approve bool, comment, clientIP string) (store.Elevation, error) {
	e, err := s.decide(ctx, decider, authn, id, approve, comment)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		s.total.WithLabelValues("refused").Inc()
		s.record(ctx, decider.Username, "elevation.decide", id, refusal(err), clientIP, map[string]string{
			"approve": strconv.FormatBool(approve), "error": publicMessage(err)})
		return e, err
	}
	if err == nil {
		if e.State == store.ElevationApproved {
			s.Track(ctx, e)
		}
		s.decided(ctx, e, decider.Username, clientIP)
	}
	return e, err
}

func (s *Service) decide(ctx context.Context, decider identity.User, authn identity.Authn, id string, approve bool, comment string) (store.Elevation, error) {
	if !s.Fresh(authn) {
		return store.Elevation{}, ErrStepUp
	}
	comment, err := cleanText("comment", comment)
	if err != nil {
		return store.Elevation{}, err
	}
	e, err := s.st.Get(ctx, id)
	if err != nil {
		return store.Elevation{}, err
	}
	if e.UserID == decider.ID {
		return store.Elevation{}, fmt.Errorf("%w", store.ErrSelfApproval)
	}
	if !s.MayDecide(decider, e) {
		return store.Elevation{}, ErrNotApprover
	}
	return s.st.Decide(ctx, id, decider.ID, decider.Username, approve, comment)
}

// MayDecide reports whether user is an approver of e (in every one of its
// approver groups; a self-service request has none).
func (s *Service) MayDecide(user identity.User, e store.Elevation) bool {
	if len(e.Approvers) == 0 || user.ID == e.UserID {
		return false
	}
	for _, g := range e.Approvers {
		if !identity.NewGroupMatcher([]string{g}).Match(user) {
			return false
		}
	}
	return true
}

func (s *Service) decided(ctx context.Context, e store.Elevation, actor, clientIP string) {
	result, ev := "denied", EventDenied
	if e.State == store.ElevationApproved {
		result, ev = "approved", EventApproved
	}
	s.total.WithLabelValues(result).Inc()
	detail := map[string]string{"requester": e.Username, "roles": strings.Join(clip(e.Roles, 5), " "), "comment": audit.Clip(e.Comment, 200)}
	if e.State == store.ElevationApproved {
		detail["starts_at"], detail["ends_at"] = e.StartsAt.Format(time.RFC3339), e.EndsAt.Format(time.RFC3339)
	}
	s.record(ctx, actor, "elevation."+result, e.ID, "success", clientIP, detail)
	s.send(ev, e, actor)
}

// End ends elevation id early. by is the user asking: the requester, or
// an admin (admin true). A pending request of the user's own is cancelled
// the same way (it reads as ended).
func (s *Service) End(ctx context.Context, by identity.User, admin bool, id, clientIP string) (store.Elevation, error) {
	e, err := s.st.Get(ctx, id)
	if err != nil {
		return store.Elevation{}, err
	}
	if e.UserID != by.ID && !admin {
		return store.Elevation{}, fmt.Errorf("%w", store.ErrNotFound) // someone else's: as if unknown
	}
	who := by.Username
	if admin && e.UserID != by.ID {
		who += " (admin)"
	}
	return s.end(ctx, e.ID, who, clientIP)
}

func (s *Service) end(ctx context.Context, id, who, clientIP string) (store.Elevation, error) {
	e, err := s.st.End(ctx, id, who)
	if err != nil {
		return store.Elevation{}, err
	}
	s.total.WithLabelValues("ended").Inc()
	s.record(ctx, who, "elevation.end", e.ID, "success", clientIP, map[string]string{
		"requester": e.Username, "roles": strings.Join(clip(e.Roles, 5), " ")})
	s.send(EventEnded, e, who)
	return e, nil
}

// EndAll ends the user's active and planned elevations and withdraws
// their pending requests (access.Access, when all of a user's access
// ends: by names the cause, e.g. an admin or "directory.disabled"). It
// returns how many it ended.
func (s *Service) EndAll(ctx context.Context, user identity.User, by string) (int, error) {
	all, err := s.st.ListUser(ctx, user.ID, 200)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range all {
		if e.State != store.ElevationPending && !(e.State == store.ElevationApproved && s.now().Before(e.EndsAt)) {
			continue
		}
		if _, err := s.end(ctx, e.ID, by, ""); err != nil {
			if !errors.Is(err, store.ErrNotActive) {
				errs = append(errs, err)
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Get returns elevation id.
func (s *Service) Get(ctx context.Context, id string) (store.Elevation, error) {
	return s.st.Get(ctx, id)
}

// Mine returns the user's requests, newest first.
func (s *Service) Mine(ctx context.Context, user identity.User, limit int64) ([]store.Elevation, error) {
	return s.st.ListUser(ctx, user.ID, limit)
}

// ToDecide returns the pending requests user may decide.
func (s *Service) ToDecide(ctx context.Context, user identity.User) ([]store.Elevation, error) {
	all, err := s.st.Pending(ctx, 500)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e store.Elevation) bool { return !s.MayDecide(user, e) }), nil
}

// Pending returns every undecided request (admins).
func (s *Service) Pending(ctx context.Context) ([]store.Elevation, error) {
	return s.st.Pending(ctx, 500)
}

// Apply adds to res.Grants the eligible roles (res.Eligible, evaluated
// from a fresh look-up of user) that an active elevation grants now, each
// with Grant.Elevation set and SessionSeconds capped at the time left, so
// that the AWS session ends with the window. A window with less than 15
// minutes left grants nothing (AWS sessions last at least that long): its
// roles stay in res.Eligible, with Elevation set to say why. An
// active elevation none of whose roles the user is eligible for any more
// is ended ("directory"). Without eligible roles it does nothing (no Redis
// round trip).
func (s *Service) Apply(ctx context.Context, user identity.User, res *rolemap.Result) error {
	if len(res.Eligible) == 0 || user.ID == "" {
		return nil
	}
	active, err := s.st.Active(ctx, user.ID)
	if err != nil || len(active) == 0 {
		return err
	}
	now := s.now()
	added := false
	for _, e := range active {
		left := int(e.EndsAt.Sub(now) / time.Second)
		held := 0
		for _, arn := range e.Roles {
			i := slices.IndexFunc(res.Eligible, func(g rolemap.Grant) bool { return g.RoleARN == arn })
			if i < 0 {
				if slices.ContainsFunc(res.Grants, func(g rolemap.Grant) bool { return g.RoleARN == arn }) {
					held++ // standing now
				}
				continue
			}
			held++
			if slices.ContainsFunc(res.Grants, func(g rolemap.Grant) bool { return g.RoleARN == arn }) {
				continue
			}
			if left < MinSeconds {
				// Too little time for an AWS session: not granted; the
				// eligible entry names the ending elevation, so that the
				// refusal can say why.
				res.Eligible[i].Elevation = &rolemap.Elevated{ID: e.ID, EndsAt: e.EndsAt, Reason: e.Reason}
				continue
			}
			g := res.Eligible[i]
			secs := g.SessionSeconds
			if secs == 0 {
				secs = s.defSecs
			}
			g.SessionSeconds = min(secs, left)
			g.Elevation = &rolemap.Elevated{ID: e.ID, EndsAt: e.EndsAt, Reason: e.Reason}
			res.Grants = append(res.Grants, g)
			added = true
		}
		if held == 0 {
			if _, err := s.end(ctx, e.ID, "directory", ""); err != nil && !errors.Is(err, store.ErrNotActive) {
				s.log.Warn("elevation: ending an elevation whose roles the user lost failed", "elevation", e.ID, "err", err)
			}
		}
	}
	if added {
		slices.SortFunc(res.Grants, func(a, b rolemap.Grant) int {
			return cmp.Or(strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.RoleARN, b.RoleARN))
		})
	}
	return nil
}

// Tags are the session tags that name the elevations behind grants (the
// IDs of distinct requests, space-separated; the reason when they share
// one), none when no grant is elevated.
func (s *Service) Tags(grants []rolemap.Grant) []rolemap.Tag {
	var ids, reasons []string
	for _, g := range grants {
		if g.Elevation == nil || slices.Contains(ids, g.Elevation.ID) {
			continue
		}
		ids = append(ids, g.Elevation.ID)
		if r := SafeTagValue(g.Elevation.Reason); r != "" && !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	var tags []rolemap.Tag
	if s.cfg.IDTag != "-" {
		v := strings.Join(ids, " ")
		if len(v) > 256 {
			v = strings.TrimSpace(v[:256])
		}
		tags = append(tags, rolemap.Tag{Key: s.cfg.IDTag, Value: v})
	}
	if s.cfg.ReasonTag != "-" && len(reasons) == 1 {
		tags = append(tags, rolemap.Tag{Key: s.cfg.ReasonTag, Value: reasons[0]})
	}
	return tags
}

// Run expires undecided requests past their deadline until ctx ends,
// checking every interval; each expiry is recorded and sent once among
// all replicas.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep expires what is due now.
func (s *Service) Sweep(ctx context.Context) {
	es, err := s.st.ExpireDue(ctx, 100)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("elevation: expiring undecided requests failed", "err", err)
	}
	for _, e := range es {
		s.total.WithLabelValues("expired").Inc()
		s.record(ctx, "warden", "elevation.expire", e.ID, "success", "", map[string]string{
			"requester": e.Username, "roles": strings.Join(clip(e.Roles, 5), " ")})
		s.send(EventExpired, e, "warden")
	}
}

func (s *Service) send(typ string, e store.Elevation, actor string) {
	if s.notify == nil {
		return
	}
	link := ""
	if s.public != "" {
		link = s.public + "/elevations/" + e.ID
	}
	s.notify.Notify(Event{Type: typ, Elevation: e, Actor: actor, Time: s.now().UTC(), Link: link})
}

func (s *Service) record(ctx context.Context, actor, action, object, result, clientIP string, detail map[string]string) {
	for k, v := range detail {
		if v == "" {
			delete(detail, k)
		}
	}
	s.audit.Record(ctx, audit.Event{Time: s.now().UTC(), Actor: actor, Action: action, Object: object, Result: result,
		ClientIP: clientIP, RequestID: web.RequestID(ctx), Detail: detail})
}

// refusal names an error for the audit log's result.
func refusal(err error) string {
	switch {
	case errors.Is(err, ErrStepUp):
		return "step_up_required"
	case errors.Is(err, ErrNotEligible):
		return "not_eligible"
	case errors.Is(err, ErrNotApprover):
		return "not_approver"
	case errors.Is(err, store.ErrSelfApproval):
		return "self_approval"
	case errors.Is(err, store.ErrAlreadyDecided):
		return "already_decided"
	case errors.Is(err, store.ErrPastDeadline):
		return "expired"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return "error"
}

// publicMessage is the sentence to show for a refusal.
func publicMessage(err error) string {
	var inv *Invalid
	switch {
	case errors.As(err, &inv):
		return inv.Msg
	case errors.Is(err, ErrStepUp):
		return "confirm it is you with your second factor first"
	case errors.Is(err, ErrNotEligible):
		return "you are not eligible for " + strings.TrimPrefix(err.Error(), ErrNotEligible.Error()+": ") + " (or no longer are)"
	case errors.Is(err, ErrNotApprover):
		return "you are not an approver of this request"
	case errors.Is(err, store.ErrSelfApproval):
		return "nobody decides their own request"
	case errors.Is(err, store.ErrAlreadyDecided):
		return "the request was already decided"
	case errors.Is(err, store.ErrPastDeadline):
		return "the request expired undecided"
	case errors.Is(err, store.ErrNotActive):
		return "the elevation is not active (not approved, or already over)"
	case errors.Is(err, store.ErrNotFound):
		return "no such request"
	case errors.Is(err, ErrRateLimited):
		return "too many requests; try again later"
	}
	return "the request could not be completed"
}

// PublicMessage is the sentence for people that err (of this package or
// the store) stands for.
func PublicMessage(err error) string { return publicMessage(err) }

func cleanRoles(in []string) ([]string, error) {
	var out []string
	for _, r := range in {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if len(r) > 2048 {
			return nil, invalid("a role ARN is too long")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	switch {
	case len(out) == 0:
		return nil, invalid("name at least one role")
	case len(out) > MaxRoles:
		return nil, invalid("at most %d roles per request", MaxRoles)
	}
	return out, nil
}

// cleanText trims a reason or comment and refuses control characters and
// overlong text.
func cleanText(what, s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := len([]rune(s)); n > MaxReason {
		return "", invalid("the %s is %d characters; at most %d", what, n, MaxReason)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0 {
		return "", invalid("the %s has control characters; write it on one line", what)
	}
	return s, nil
}

func human(secs int) string {
	d := time.Duration(secs) * time.Second
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strings.TrimSuffix(d.String(), "0s")
}

func clip(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("(+%d)", len(s)-n))
}
