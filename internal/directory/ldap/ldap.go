// Package ldap implements directory.Directory for OpenLDAP, Active Directory
// and other RFC 4511 servers with go-ldap/v3.
//
// One sign-in costs one service-bound search (the user's entry, memberOf
// included) and one user bind, each on a pooled connection; nested groups
// cost more searches only where the server cannot compute them (group_source
// memberof against the OpenLDAP memberof overlay, or search).
//
// Security invariants, each in one place:
//   - the login name is escaped once, with ldap.EscapeFilter, where the
//     filter is built from the template (findUser); group filters escape the
//     DN the same way (groups.go);
//   - names that are empty, longer than 256 bytes, not UTF-8 or carry NUL,
//     and empty passwords, are refused before any LDAP traffic (an empty
//     password would be an unauthenticated bind, RFC 4513 section 5.1.2);
//   - an unknown user costs a bind too (against a DN that does not exist),
//     and reads exactly like a wrong password;
//   - a search that finds more than one entry is an error, never a choice;
//   - an outage is identity.ErrDirectoryUnavailable, never a rejection;
//   - passwords are never logged; bind failures are logged at debug with the
//     result code only.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/directory"
	"github.com/wardenidp/warden/internal/identity"
)

// MaxUsernameLen is the longest login name (in bytes) sent to the directory.
const MaxUsernameLen = 256

// Observer receives one call per LDAP operation, so that the caller can
// export metrics without this package importing a metrics library.
//
// op is one of "dial", "service_bind", "search", "bind" (a user bind),
// "dummy_bind" (the bind for an unknown user), "password_change" (passwd.go),
// "health". server is the URL.
// For "bind", err is nil on success, an identity rejection sentinel, or an
// error wrapping identity.ErrDirectoryUnavailable; "password_change" is
// alike, with identity.ErrPasswordPolicy and ErrPasswordChangeUnsupported
// errors for refusals; for the others it is the raw error.
// Implementations must be safe for concurrent use and fast.
type Observer interface {
	ObserveOp(op, server string, d time.Duration, err error)
}

// Option configures a Directory.
type Option func(*Directory)

// WithLogger sets the logger (default: slog.Default()'s handler is not used;
// logs are discarded).
func WithLogger(l *slog.Logger) Option {
	return func(d *Directory) {
		if l != nil {
			d.log = l
		}
	}
}

// WithClock sets the clock used for backoff and idle ages (default
// time.Now). Network deadlines always use the real time.
func WithClock(now func() time.Time) Option {
	return func(d *Directory) {
		if now != nil {
			d.now = now
		}
	}
}

// WithObserver sets the metrics hook.
func WithObserver(o Observer) Option {
	return func(d *Directory) { d.obs = o }
}

// Directory is an LDAP directory.Directory. It is safe for concurrent use.
type Directory struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	obs       Observer
	servers   []*server
	userAttrs []string
	dummyDN   string
	idIsGUID  bool
	ppolicy   bool
	// anyUser is anyUserFilter(), built once: LookupID runs at every
	// hand-off.
	anyUser string

	// bindCost is a moving average (nanoseconds) of user binds rejected as
	// invalid credentials; an unknown user's dummy bind is padded up to it.
	bindCost atomic.Int64

	groupCache groupCache
	dns        *dnCache
	dom        domainCache // Active Directory: NetBIOS name and UPN suffixes (domain.go)

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
	// spawnMu orders background goroutines (probers) against Close: none is
	// started once Close has begun waiting for them.
	spawnMu  sync.Mutex
	spawnOff bool
}

var _ directory.Directory = (*Directory)(nil)

// The outward errors of Authenticate for a wrong password, an unknown user,
// an unusable name and an empty password: one value, so they read alike.
var errInvalid = fmt.Errorf("ldap: authenticate: %w", identity.ErrInvalidCredentials)

// errNoSuchUser is internal: findUser found no entry.
var errNoSuchUser = errors.New("no such user")

// New validates cfg (call ApplyPreset and SetDefaults first) and returns a
// Directory. It does not connect: connections are opened on first use, so a
// directory that is down at start-up does not stop the caller from starting.
func New(cfg Config, opts ...Option) (*Directory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldap: config: %w", err)
	}
	if cfg.UserBaseDN == "" {
		cfg.UserBaseDN = cfg.BaseDN
	}
	if cfg.GroupBaseDN == "" {
		cfg.GroupBaseDN = cfg.BaseDN
	}
	d := &Directory{
		cfg:  cfg,
		log:  slog.New(slog.DiscardHandler),
		now:  time.Now,
		stop: make(chan struct{}),
		dns:  newDNCache(),
	}
	for _, o := range opts {
		o(d)
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.ServerName,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // operator's explicit choice; check-config warns
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: ca_file: no PEM certificate in %s", cfg.CAFile)
		}
	}
	for _, u := range cfg.URLs {
		s, err := newServer(d, u, tc)
		if err != nil {
			return nil, fmt.Errorf("ldap: %s: %w", u, err)
		}
		d.servers = append(d.servers, s)
	}
	d.idIsGUID = strings.EqualFold(cfg.Attributes.ID, "objectGUID")
	d.ppolicy = cfg.Type != TypeActiveDirectory
	// A DN under the user base that names nobody: the dummy bind for unknown
	// users goes there, so that they cost a bind like everyone else.
	d.dummyDN = "cn=warden-no-such-user-7f3a9c," + cfg.UserBaseDN
	d.userAttrs = d.buildUserAttrs()
	d.anyUser = d.anyUserFilter()

	d.wg.Add(1)
	go d.healthLoop()
	return d, nil
}

func (d *Directory) buildUserAttrs() []string {
	a := d.cfg.Attributes
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[strings.ToLower(s)] {
			seen[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	add(a.Username)
	add(a.DisplayName)
	add("cn")
	add(a.Email)
	add(a.ID)
	if d.cfg.GroupSource != GroupSourceSearch {
		// memberOf comes with the user's entry: no extra round trip for the
		// direct groups (memberof), or for telling direct ones (in_chain).
		add("memberOf")
	}
	for _, e := range a.Extra {
		add(e)
	}
	for _, s := range stateAttrs(d.cfg.Type) {
		add(s)
	}
	return out
}

func (d *Directory) observe(op, server string, dur time.Duration, err error) {
	if d.obs != nil {
		d.obs.ObserveOp(op, server, dur, err)
	}
}

// usernameProblem says why a login name must not be sent to the directory,
// or "" when it may.
func usernameProblem(username string) string {
	switch {
	case username == "":
		return "empty username"
	case len(username) > MaxUsernameLen:
		return "username too long"
	case !utf8.ValidString(username):
		return "username not UTF-8"
	case strings.IndexByte(username, 0) >= 0:
		return "username contains NUL"
	}
	return ""
}

// Authenticate implements directory.Directory.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (identity.User, error) {
	if p := usernameProblem(username); p != "" {
		d.log.DebugContext(ctx, "ldap authenticate refused before any request", "reason", p)
		return identity.User{}, errInvalid
	}
	if password == "" {
		// RFC 4513 section 5.1.2: a simple bind with a name and an empty
		// password is an unauthenticated bind, which many servers answer
		// with success. Never send one.
		d.log.DebugContext(ctx, "ldap authenticate refused before any request", "reason", "empty password")
		return identity.User{}, errInvalid
	}
	// DOMAIN\user of another domain is an unknown user (domain.go).
	name, ok, err := d.loginName(ctx, username)
	if err != nil {
		return identity.User{}, err
	}
	var entry *goldap.Entry
	if ok {
		entry, err = d.findUser(ctx, name)
	} else {
		err = errNoSuchUser
	}
	if errors.Is(err, errNoSuchUser) {
		d.dummyBind(ctx, password)
		return identity.User{}, errInvalid
	}
	if err != nil {
		return identity.User{}, err
	}
	if err := d.userBind(ctx, entry.DN, password); err != nil {
		return identity.User{}, err
	}
	return d.buildUser(ctx, entry, name)
}

// Lookup implements directory.Directory.
func (d *Directory) Lookup(ctx context.Context, username string) (identity.User, error) {
	if usernameProblem(username) != "" {
		return identity.User{}, fmt.Errorf("ldap: lookup: %w", identity.ErrUserNotFound)
	}
	name, ok, err := d.loginName(ctx, username)
	if err != nil {
		return identity.User{}, err
	}
	if !ok {
		return identity.User{}, fmt.Errorf("ldap: lookup: %w", identity.ErrUserNotFound)
	}
	entry, err := d.findUser(ctx, name)
	if errors.Is(err, errNoSuchUser) {
		return identity.User{}, fmt.Errorf("ldap: lookup: %w", identity.ErrUserNotFound)
	}
	if err != nil {
		return identity.User{}, err
	}
	if err := accountState(entry, d.cfg.Type, d.now()); err != nil {
		return identity.User{}, accountError(err)
	}
	return d.buildUser(ctx, entry, name)
}

// Ping implements directory.Directory: a service-bound read of the root DSE
// on every server that is up, all at once (on every server when none is
// up; the background prober looks after the others); it succeeds as soon
// as one answers and cancels the rest. So it never waits for a hung server
// while another one answers, and never longer than Timeout (or ctx) in all.
// A server marked down that answers is marked up.
func (d *Directory) Ping(ctx context.Context) error {
	if d.closed.Load() {
		return unavailable("ping", errors.New("directory closed"))
	}
	var servers []*server
	for _, s := range d.servers {
		if !s.isDown() {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		servers = d.servers
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			wasDown := s.isDown()
			err := d.attempt(ctx, s, kindSearch, func(c *conn, srv string) error {
				start := time.Now()
				_, err := c.l.Search(rootDSERequest())
				d.observe("search", srv, time.Since(start), err)
				return err
			})
			if err == nil && wasDown && s.markUp(false) {
				d.log.Info("ldap server up again", "server", s.url)
			}
			results <- err
		}()
	}
	var errs []error
	for range servers {
		err := <-results
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return unavailable("ping", errors.Join(errs...))
}

// Close closes every pooled connection and stops the health checks and
// probers.
func (d *Directory) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.spawnMu.Lock()
	d.spawnOff = true
	d.spawnMu.Unlock()
	close(d.stop)
	d.wg.Wait()
	for _, s := range d.servers {
		for _, p := range s.pools {
			p.closeAll()
		}
	}
	return nil
}

// spawn runs fn in a goroutine that Close waits for; false once Close began.
func (d *Directory) spawn(fn func()) bool {
	d.spawnMu.Lock()
	defer d.spawnMu.Unlock()
	if d.spawnOff {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		fn()
	}()
	return true
}

// attempt runs fn on one server, within Timeout for everything (waiting for
// a pooled connection, dial, TLS, service bind, the operation), so that one
// hung server costs a request at most Timeout before it moves on. Running
// into that deadline (ctx itself still live) is a timeoutError.
func (d *Directory) attempt(ctx context.Context, s *server, kind poolKind, fn func(c *conn, server string) error) error {
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	err := s.pools[kind].run(actx, s.downSignal(), func(c *conn) error { return fn(c, s.url) })
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		var te *timeoutError
		if !errors.As(err, &te) {
			err = &timeoutError{err: err, timeout: d.cfg.Timeout}
		}
	}
	return err
}

// do runs fn on a connection of the given kind, trying the servers in order:
// first those that are up, then (only if none of those could answer) the
// ones marked down. An LDAP answer, good or bad, ends the loop; a server
// failure marks the server down and moves on to the next one. When no
// server answered, the error wraps identity.ErrDirectoryUnavailable and
// says what each server did.
func (d *Directory) do(ctx context.Context, kind poolKind, op string, fn func(c *conn, server string) error) error {
	return d.doServers(ctx, kind, op, false, fn)
}

// doOnce is do for an operation that must not run twice (a password
// change): once fn has been called and its try ran into the deadline, the
// server may have carried it out, so no other server is asked and the
// error says the outcome is unknown. Failures before fn was called (dial,
// TLS, service bind, waiting for a connection) move on as in do.
func (d *Directory) doOnce(ctx context.Context, kind poolKind, op string, fn func(c *conn, server string) error) error {
	return d.doServers(ctx, kind, op, true, fn)
}

func (d *Directory) doServers(ctx context.Context, kind poolKind, op string, once bool, fn func(c *conn, server string) error) error {
	if d.closed.Load() {
		return unavailable(op, errors.New("directory closed"))
	}
	sent := false
	if once {
		inner := fn
		fn = func(c *conn, server string) error {
			sent = true
			return inner(c, server)
		}
	}
	var errs []error
	for pass := 0; pass < 2; pass++ {
		for _, s := range d.servers {
			if s.isDown() != (pass == 1) {
				continue
			}
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
				return unavailable(op, errors.Join(errs...))
			}
			sent = false
			err := d.attempt(ctx, s, kind, fn)
			if once && sent && err != nil && isTimeout(err) {
				if ctx.Err() == nil && s.markDown(d) {
					d.log.WarnContext(ctx, "ldap server marked down", "server", s.url, "op", op,
						"error", err.Error())
				}
				return unavailable(op, fmt.Errorf("outcome unknown, not retried on another server: %w", err))
			}
			if err == nil || !isServerFailure(err) {
				if pass == 1 && s.markUp(false) {
					d.log.InfoContext(ctx, "ldap server up again", "server", s.url)
				}
				return err
			}
			// The caller's own deadline or cancellation is not the server's
			// fault.
			if ctx.Err() == nil && s.markDown(d) {
				d.log.WarnContext(ctx, "ldap server marked down", "server", s.url, "op", op,
					"error", err.Error())
			}
			errs = append(errs, err)
		}
	}
	return unavailable(op, errors.Join(errs...))
}

// probeLoop re-checks a down server in the background, with backoff, until
// it answers (then it is marked up) or the directory is closed. Requests
// never wait for these probes.
func (d *Directory) probeLoop(s *server) {
	for n := 0; ; n++ {
		t := time.NewTimer(backoff(n))
		select {
		case <-d.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if s.probeDone() {
			return // a request found it answering meanwhile
		}
		err := d.probe(s)
		if err == nil {
			if s.markUp(true) {
				d.log.Info("ldap server up again", "server", s.url)
			}
			return
		}
		d.log.Debug("ldap server still down", "server", s.url, "next_probe", backoff(n+1).String(),
			"error", err.Error())
	}
}

// probe dials a fresh service-bound connection to s and reads the root DSE,
// within Timeout; Close cuts it short.
func (d *Directory) probe(s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	p := s.pools[kindSearch]
	c, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer p.discard(c)
	start := time.Now()
	err = c.run(ctx, d.cfg.Timeout, func(c *conn) error {
		_, err := c.l.Search(rootDSERequest())
		return err
	})
	d.observe("health", s.url, time.Since(start), err)
	return err
}

// findUser runs the service-bound search for the user. It returns
// errNoSuchUser for no entry, and an ErrDirectoryUnavailable error for more
// than one (an ambiguous filter is a configuration problem, and picking one
// entry could sign in the wrong person).
func (d *Directory) findUser(ctx context.Context, username string) (*goldap.Entry, error) {
	// The one place the login name enters a filter: escaped here, once.
	return d.searchUser(ctx, expandTemplate(d.cfg.UserFilter, goldap.EscapeFilter(username), ""))
}

// searchUser is findUser's search with a filter already built (findUser,
// LookupID), with its answers.
func (d *Directory) searchUser(ctx context.Context, filter string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(d.cfg.UserBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, 0, false, filter, d.userAttrs, nil)
	var entries []*goldap.Entry
	err := d.do(ctx, kindSearch, "search user", func(c *conn, srv string) error {
		start := time.Now()
		res, err := c.l.Search(req)
		d.observe("search", srv, time.Since(start), err)
		if err != nil && goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
			err = nil // two entries and a size limit: ambiguous, reported below
		}
		if err != nil {
			return err
		}
		// Referrals (Samba AD returns one for CN=Configuration) were not
		// asked for and are ignored; only entries count.
		entries = res.Entries
		return nil
	})
	if err != nil {
		return nil, unavailable("search user", err)
	}
	switch len(entries) {
	case 0:
		return nil, errNoSuchUser
	case 1:
		return entries[0], nil
	default:
		return nil, unavailable("search user", fmt.Errorf("ambiguous: the user filter matches %d or more entries", len(entries)))
	}
}

// userBind checks the password with a bind as dn on a connection of the
// bind pool, asking for the password policy response control (OpenLDAP
// ppolicy, draft-behera-ldap-password-policy-10).
func (d *Directory) userBind(ctx context.Context, dn, password string) error {
	var outcome error
	err := d.do(ctx, kindBind, "bind", func(c *conn, srv string) error {
		req := &goldap.SimpleBindRequest{Username: dn, Password: password}
		if d.ppolicy {
			req.Controls = []goldap.Control{goldap.NewControlBeheraPasswordPolicy()}
		}
		start := time.Now()
		res, err := c.l.SimpleBind(req)
		if err != nil && isConnError(err) {
			d.observe("bind", srv, time.Since(start), err)
			return err // let do() try the next server
		}
		took := time.Since(start)
		var code int
		var sub string
		outcome, code, sub = bindOutcome(res, err)
		d.observe("bind", srv, took, outcome)
		if errors.Is(outcome, identity.ErrInvalidCredentials) {
			d.recordBindCost(took)
		}
		if outcome != nil {
			d.log.DebugContext(ctx, "ldap bind rejected", "server", srv, "result", code, "detail", sub)
		}
		return nil
	})
	if err != nil {
		return unavailable("bind", err)
	}
	switch {
	case outcome == nil:
		return nil
	case errors.Is(outcome, identity.ErrInvalidCredentials):
		return errInvalid
	case identity.IsRejection(outcome):
		return fmt.Errorf("ldap: authenticate: %w", outcome)
	default:
		return outcome
	}
}

// minPad: shorter gaps are below the network's noise and below what a
// timer sleeps accurately (a sleep of 50 µs takes about 1 ms here).
const minPad = time.Millisecond

// recordBindCost folds one rejected user bind into the moving average
// (weight 1/8).
func (d *Directory) recordBindCost(took time.Duration) {
	for {
		old := d.bindCost.Load()
		nw := int64(took)
		if old != 0 {
			nw = old - old/8 + int64(took)/8
		}
		if d.bindCost.CompareAndSwap(old, nw) {
			return
		}
	}
}

// dummyBind binds as a DN that does not exist, with the password given, so
// that an unknown user takes as long as a wrong password. Its result is
// ignored.
//
// A bind to a missing DN can be much cheaper than a real one: Samba AD
// answers it in about 0.2 ms where a wrong password costs about 4 ms (hash
// check, bad-password count update). So the dummy bind is padded with a
// sleep up to the moving average of binds rejected as invalid credentials
// (bindCost; successful binds are slower on Samba and do not count), capped
// at Timeout, which makes an unknown user and a wrong password take alike
// long on every server once the first wrong password has been seen.
func (d *Directory) dummyBind(ctx context.Context, password string) {
	start := time.Now()
	defer func() {
		pad := min(time.Duration(d.bindCost.Load()), d.cfg.Timeout) - time.Since(start)
		if pad < minPad {
			return
		}
		t := time.NewTimer(pad)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}()
	_ = d.do(ctx, kindBind, "dummy bind", func(c *conn, srv string) error {
		req := &goldap.SimpleBindRequest{Username: d.dummyDN, Password: password}
		if d.ppolicy {
			req.Controls = []goldap.Control{goldap.NewControlBeheraPasswordPolicy()}
		}
		start := time.Now()
		_, err := c.l.SimpleBind(req)
		d.observe("dummy_bind", srv, time.Since(start), err)
		if isConnError(err) {
			return err
		}
		return nil
	})
}

// buildUser turns the user's entry into an identity.User, groups included.
func (d *Directory) buildUser(ctx context.Context, e *goldap.Entry, typed string) (identity.User, error) {
	a := d.cfg.Attributes
	u := identity.User{
		DN:       e.DN,
		Username: e.GetEqualFoldAttributeValue(a.Username),
		Email:    e.GetEqualFoldAttributeValue(a.Email),
	}
	if u.Username == "" {
		u.Username = typed
	}
	if a.DisplayName != "" {
		u.DisplayName = e.GetEqualFoldAttributeValue(a.DisplayName)
	}
	if u.DisplayName == "" {
		u.DisplayName = e.GetEqualFoldAttributeValue("cn")
	}
	if d.idIsGUID {
		raw := e.GetEqualFoldRawAttributeValue(a.ID)
		id, err := guidString(raw)
		if err != nil {
			return identity.User{}, unavailable("user id", fmt.Errorf("%s of %s: %w", a.ID, e.DN, err))
		}
		u.ID = id
	} else {
		u.ID = e.GetEqualFoldAttributeValue(a.ID)
	}
	if u.ID == "" {
		return identity.User{}, unavailable("user id", fmt.Errorf("%s has no %s (the stable ID attribute)", e.DN, a.ID))
	}
	if len(a.Extra) > 0 {
		u.Attributes = make(map[string][]string, len(a.Extra))
		for _, x := range a.Extra {
			if v := e.GetEqualFoldAttributeValues(x); len(v) > 0 {
				u.Attributes[strings.ToLower(x)] = v
			}
		}
	}
	groups, err := d.groups(ctx, e, typed)
	if err != nil {
		return identity.User{}, err
	}
	u.Groups = groups
	return u, nil
}

// healthLoop checks idle connections every HealthCheckInterval.
func (d *Directory) healthLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.HealthCheckInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			// Every pool at once: a hung server must not hold up the
			// checks of the others.
			var wg sync.WaitGroup
			for _, s := range d.servers {
				for _, p := range s.pools {
					wg.Go(func() { p.healthCheck(ctx, d.cfg.HealthCheckInterval) })
				}
			}
			wg.Wait()
		}
	}
}
