package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// poolKind tells the two pools of a server apart.
type poolKind int

const (
	// kindSearch connections are bound as the service account once, when
	// they are dialled, and only ever search (and, for Active Directory,
	// carry the password changes the service account makes for users:
	// passwd.go).
	kindSearch poolKind = iota
	// kindBind connections carry user binds. A bind changes the identity of
	// the connection, so they never search for anyone (the health check's
	// root DSE read excepted). Keeping them apart from the search pool costs
	// no extra round trip per sign-in, where re-binding as the service
	// account after every user bind would cost one.
	kindBind
)

func (k poolKind) String() string {
	if k == kindSearch {
		return "search"
	}
	return "bind"
}

// A server that fails (no answer within Timeout, refused dial, TLS or
// service-bind failure) is marked down. While it is down, requests skip it
// and go to the next URL; only when every server is down are the down ones
// tried anyway (in order), so that an outage of all of them ends with the
// first request that gets an answer. A background prober re-checks a down
// server after 2s, 4s, 8s, ... up to 30s (dial, service bind, root DSE read,
// bounded by Timeout) and marks it up when it answers: a hung server is never
// re-tried on the request path while another server is healthy.
const (
	backoffMin = 2 * time.Second
	backoffMax = 30 * time.Second
)

// longAgo is a deadline in the past: it makes every blocked read or write
// on a connection return at once.
var longAgo = time.Unix(1, 0)

// serverError marks a failure of the server rather than an answer from it
// (dial, TLS, service bind): the request moves on to the next URL.
type serverError struct{ err error }

func (e *serverError) Error() string { return e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

// timeoutError: an operation ran into its deadline (Timeout, or the
// per-attempt deadline) without an answer. Such a server is treated as
// hung: the connection is not retried on the same server, and the server is
// marked down.
type timeoutError struct {
	err     error
	timeout time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer within %s: %v", e.timeout, e.err)
}
func (e *timeoutError) Unwrap() error { return e.err }

// isTimeout reports whether err says an operation ran into its deadline.
func isTimeout(err error) bool {
	var te *timeoutError
	if errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isServerFailure reports whether err says the server (or the path to it)
// failed, as opposed to an LDAP answer.
func isServerFailure(err error) bool {
	var se *serverError
	return errors.As(err, &se) || isConnError(err) || isTimeout(err)
}

// server is one of Config.URLs with its two pools and its up/down state.
type server struct {
	url      string
	hostport string
	ldaps    bool
	startTLS bool
	tls      *tls.Config
	pools    [2]*pool

	down    atomic.Bool
	mu      sync.Mutex
	downSig chan struct{} // closed when the server is marked down; replaced when marked up
	probing bool          // a prober goroutine runs for this server
}

func newServer(d *Directory, raw string, base *tls.Config) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	s := &server{url: raw, ldaps: u.Scheme == "ldaps", startTLS: u.Scheme == "ldap" && d.cfg.StartTLS,
		downSig: make(chan struct{})}
	port := u.Port()
	if port == "" {
		port = "389"
		if s.ldaps {
			port = "636"
		}
	}
	s.hostport = net.JoinHostPort(u.Hostname(), port)
	if s.ldaps || s.startTLS {
		s.tls = base.Clone()
		if s.tls.ServerName == "" {
			s.tls.ServerName = u.Hostname()
		}
	}
	for k := range s.pools {
		s.pools[k] = &pool{d: d, srv: s, kind: poolKind(k), sem: make(chan struct{}, d.cfg.PoolSize)}
	}
	return s, nil
}

// isDown reports whether the server is marked down (skipped while another
// server is up).
func (s *server) isDown() bool { return s.down.Load() }

// downSignal returns a channel that is closed when the server is marked
// down, or nil (never ready) when it is down already.
func (s *server) downSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down.Load() {
		return nil
	}
	return s.downSig
}

// markUp marks the server up; it reports whether it was down. The prober
// passes endProbe, so that it ends in the same step (a markDown right after
// then starts a new one).
func (s *server) markUp(endProbe bool) bool {
	if !s.down.Load() && !endProbe {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if endProbe {
		s.probing = false
	}
	if !s.down.Load() {
		return false
	}
	s.down.Store(false)
	s.downSig = make(chan struct{})
	return true
}

// probeDone reports whether the prober may end because the server is up
// (a request or Ping found it answering); if so it ends in the same step.
func (s *server) probeDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down.Load() {
		return false
	}
	s.probing = false
	return true
}

// markDown marks the server down, wakes the requests waiting for one of its
// connections, drops its idle connections (they lead to a server that just
// failed) and starts the background prober. It reports whether the server
// was up until now.
func (s *server) markDown(d *Directory) bool {
	s.mu.Lock()
	if s.down.Load() {
		s.mu.Unlock()
		return false
	}
	s.down.Store(true)
	close(s.downSig)
	start := !s.probing
	s.probing = true
	s.mu.Unlock()
	for _, p := range s.pools {
		go p.closeAll()
	}
	if start && !d.spawn(func() { d.probeLoop(s) }) {
		s.mu.Lock()
		s.probing = false
		s.mu.Unlock()
	}
	return true
}

// backoff is the wait before the n-th probe (n from 0): 2s, 4s, ... 30s.
func backoff(n int) time.Duration {
	b := backoffMin
	for i := 0; i < n && b < backoffMax; i++ {
		b *= 2
	}
	return min(b, backoffMax)
}

// conn is one pooled LDAP connection.
type conn struct {
	l         *goldap.Conn
	nc        net.Conn // the transport, for deadlines (the TLS conn for ldaps://, TCP otherwise)
	idleSince time.Time
	dead      bool // a deadline or cancellation may have cut it: never reuse
}

func (c *conn) close() {
	_ = c.l.Close()
}

// run calls fn with the connection under a deadline: the earlier of now +
// timeout and the context's deadline. Cancelling ctx cuts the connection
// short (its deadline is moved to the past), so a blocked read returns.
func (c *conn) run(ctx context.Context, timeout time.Duration, fn func(*conn) error) error {
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.nc.SetDeadline(deadline)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(longAgo) })
	}
	err := fn(c)
	if stop != nil && !stop() {
		c.dead = true
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if err != nil && ctx.Err() == nil && !time.Now().Before(deadline) && isConnError(err) {
		// The deadline cut the connection: go-ldap reports that as a
		// closed connection (the net timeout turned into text), so tell it
		// by the clock. A hung server ends here (SIGSTOP, a stuck backend).
		c.dead = true
		err = &timeoutError{err: err, timeout: timeout}
	}
	if !c.dead {
		_ = c.nc.SetDeadline(time.Time{})
	}
	return err
}

// pool holds up to Config.PoolSize connections to one server. A slot in sem
// is held while a connection is in use; idle connections wait in a LIFO
// stack, so the hot ones stay hot and the rest age towards the health check.
type pool struct {
	d    *Directory
	srv  *server
	kind poolKind
	sem  chan struct{}

	mu   sync.Mutex
	idle []*conn
	open atomic.Int64

	dials, dialErrors, waits atomic.Uint64
}

// acquire takes a slot, waiting at most Config.Timeout (and ctx). When
// abort closes (the server was marked down meanwhile), it gives up at once,
// so that the request moves on to the next server.
func (p *pool) acquire(ctx context.Context, abort <-chan struct{}) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	default:
	}
	p.waits.Add(1)
	t := time.NewTimer(p.d.cfg.Timeout)
	defer t.Stop()
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &serverError{fmt.Errorf("waiting for a %s connection to %s: %w", p.kind, p.srv.url, ctx.Err())}
	case <-abort:
		return &serverError{fmt.Errorf("waiting for a %s connection to %s: server marked down", p.kind, p.srv.url)}
	case <-t.C:
		return &serverError{fmt.Errorf("waiting for a %s connection to %s: all %d in use for %s",
			p.kind, p.srv.url, cap(p.sem), p.d.cfg.Timeout)}
	}
}

func (p *pool) release() { <-p.sem }

func (p *pool) popIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if !c.l.IsClosing() {
			return c
		}
		p.open.Add(-1)
		go c.close()
	}
	return nil
}

func (p *pool) pushIdle(c *conn) {
	if c.dead || c.l.IsClosing() || p.d.closed.Load() {
		p.discard(c)
		return
	}
	c.idleSince = p.d.now()
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *pool) discard(c *conn) {
	p.open.Add(-1)
	c.close()
}

// run runs fn on a connection of this pool. A pooled connection that fails
// at the connection level without running into its deadline (stale after a
// server restart or an idle timeout) is replaced by a fresh one and fn is
// tried once more; a fresh connection that fails, or any connection that
// times out, is the server's failure (a hung server is not asked twice).
// abort: see acquire.
func (p *pool) run(ctx context.Context, abort <-chan struct{}, fn func(*conn) error) error {
	if err := p.acquire(ctx, abort); err != nil {
		return err
	}
	defer p.release()
	c := p.popIdle()
	reused := c != nil
	if c == nil {
		var err error
		if c, err = p.dial(ctx); err != nil {
			return err
		}
	}
	err := c.run(ctx, p.d.cfg.Timeout, fn)
	if err != nil && isConnError(err) {
		p.discard(c)
		if !reused || ctx.Err() != nil || isTimeout(err) {
			return err
		}
		if c, err = p.dial(ctx); err != nil {
			return err
		}
		if err = c.run(ctx, p.d.cfg.Timeout, fn); err != nil && isConnError(err) {
			p.discard(c)
			return err
		}
	}
	p.pushIdle(c)
	return err
}

// dial opens a connection: TCP within DialTimeout, TLS (ldaps:// or
// StartTLS), and for the search pool the service bind.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	d, s := p.d, p.srv
	start := time.Now()
	p.dials.Add(1)
	c, err := p.dialConn(ctx)
	d.observe("dial", s.url, time.Since(start), err)
	if err != nil {
		p.dialErrors.Add(1)
		return nil, &serverError{err}
	}
	if p.kind == kindSearch {
		start = time.Now()
		err = c.run(ctx, d.cfg.Timeout, func(c *conn) error {
			_, err := c.l.SimpleBind(&goldap.SimpleBindRequest{Username: d.cfg.BindDN, Password: d.cfg.BindPassword})
			return err
		})
		d.observe("service_bind", s.url, time.Since(start), err)
		if err != nil {
			c.close()
			if !isConnError(err) {
				// An answer, but the wrong one: the service account is
				// misconfigured, locked or expired. Operators must see it.
				d.log.Error("ldap service bind refused", "server", s.url, "bind_dn", d.cfg.BindDN,
					"result", resultCode(err), "error", err.Error())
			}
			return nil, &serverError{&stepError{step: StepServiceBind, err: fmt.Errorf("service bind to %s as %s: %w", s.url, d.cfg.BindDN, err)}}
		}
	}
	p.open.Add(1)
	return c, nil
}

func (p *pool) dialConn(ctx context.Context) (*conn, error) {
	d, s := p.d, p.srv
	dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	var nd net.Dialer
	raw, err := nd.DialContext(dctx, "tcp", s.hostport)
	if err != nil {
		return nil, &stepError{step: StepDial, err: fmt.Errorf("dial %s: %w", s.url, err)}
	}
	nc := raw
	if s.ldaps {
		tc := tls.Client(raw, s.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			return nil, &stepError{step: StepTLS, err: fmt.Errorf("tls handshake with %s: %w", s.url, err)}
		}
		nc = tc
	}
	l := goldap.NewConn(nc, s.ldaps)
	l.Start()
	c := &conn{l: l, nc: nc}
	if s.startTLS {
		// StartTLS (RFC 4511 section 4.14) before any bind. go-ldap runs the
		// handshake on the same socket, so the TCP deadline bounds it too.
		dl, _ := dctx.Deadline()
		_ = raw.SetDeadline(dl)
		if err := l.StartTLS(s.tls); err != nil {
			_ = l.Close()
			return nil, &stepError{step: StepStartTLS, err: fmt.Errorf("starttls with %s: %w", s.url, err)}
		}
		_ = raw.SetDeadline(time.Time{})
	}
	return c, nil
}

// healthCheck reads the root DSE on every idle connection that has been idle
// for at least the check interval, all at once (a hung server costs one
// Timeout per round, not one per connection), and closes those that do not
// answer. A check that runs into its deadline marks the server down (the
// prober takes over; requests go elsewhere). Busy connections are not
// checked (they are in use, hence alive), nor are those of a down server.
func (p *pool) healthCheck(ctx context.Context, interval time.Duration) {
	if p.srv.isDown() {
		return
	}
	now := p.d.now()
	p.mu.Lock()
	var check []*conn
	keep := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.idleSince) >= interval {
			check = append(check, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	var wg sync.WaitGroup
	var hung atomic.Pointer[error]
	for _, c := range check {
		wg.Go(func() {
			start := time.Now()
			err := c.run(ctx, p.d.cfg.Timeout, func(c *conn) error {
				_, err := c.l.Search(rootDSERequest())
				return err
			})
			p.d.observe("health", p.srv.url, time.Since(start), err)
			if err != nil {
				p.d.log.Debug("ldap idle connection failed its health check", "server", p.srv.url,
					"pool", p.kind.String(), "error", err.Error())
				p.discard(c)
				if isTimeout(err) && ctx.Err() == nil {
					hung.Store(&err)
				}
				return
			}
			p.pushIdle(c)
		})
	}
	wg.Wait()
	if e := hung.Load(); e != nil && p.srv.markDown(p.d) {
		p.d.log.Warn("ldap server marked down", "server", p.srv.url, "op", "health check",
			"error", (*e).Error())
	}
}

func (p *pool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}

func rootDSERequest() *goldap.SearchRequest {
	return goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
}

// PoolStats describes one connection pool, for metrics.
type PoolStats struct {
	Server string // the URL
	Pool   string // "search" (service-bound) or "bind" (user binds)
	Max    int    // Config.PoolSize
	Open   int    // connections open (in use + idle)
	Idle   int
	InUse  int
	// Up is false while the server is marked down after a failure.
	Up bool
	// Counters since New.
	Dials      uint64
	DialErrors uint64
	Waits      uint64 // requests that found every connection in use and waited
}

// PoolStats returns a snapshot of every pool, in URL order, search pool
// first.
func (d *Directory) PoolStats() []PoolStats {
	out := make([]PoolStats, 0, 2*len(d.servers))
	for _, s := range d.servers {
		for _, p := range s.pools {
			p.mu.Lock()
			idle := len(p.idle)
			p.mu.Unlock()
			out = append(out, PoolStats{
				Server: s.url, Pool: p.kind.String(), Max: cap(p.sem),
				Open: int(p.open.Load()), Idle: idle, InUse: len(p.sem),
				Up:    !s.isDown(),
				Dials: p.dials.Load(), DialErrors: p.dialErrors.Load(), Waits: p.waits.Load(),
			})
		}
	}
	return out
}
