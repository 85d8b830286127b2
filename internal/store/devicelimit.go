package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DeviceLimitConfig bounds the wrong user codes typed on the device
// verification page (RFC 8628 §5.1: the user code is short, so guessing it
// must be rate-limited). Keys are relative to the block that holds it.
type DeviceLimitConfig struct {
	// MaxPerSession is how many wrong codes one signed-in session may type
	// in a window.
	MaxPerSession int `yaml:"max_wrong_per_session"`
	// MaxPerIP is how many wrong codes one client IP (IPBucket) may type in
	// a window, across sessions.
	MaxPerIP int           `yaml:"max_wrong_per_ip"`
	Window   time.Duration `yaml:"window"`
}

// SetDefaults sets 5 wrong codes per session and 20 per client IP in 10
// minutes.
func (c *DeviceLimitConfig) SetDefaults() {
	if c.MaxPerSession == 0 {
		c.MaxPerSession = 5
	}
	if c.MaxPerIP == 0 {
		c.MaxPerIP = 20
	}
	if c.Window == 0 {
		c.Window = 10 * time.Minute
	}
}

// Validate reports every problem at once.
func (c DeviceLimitConfig) Validate() error {
	var errs []error
	if c.MaxPerSession < 1 {
		errs = append(errs, errors.New("max_wrong_per_session: must be at least 1"))
	}
	if c.MaxPerIP < 1 {
		errs = append(errs, errors.New("max_wrong_per_ip: must be at least 1"))
	}
	if c.Window < time.Second {
		errs = append(errs, errors.New("window: must be at least 1s"))
	}
	return errors.Join(errs...)
}

// DeviceLimiter counts wrong user codes per session and per client IP in
// fixed windows of DeviceLimitConfig.Window aligned on the injected clock
// (window n covers [n·Window, (n+1)·Window) since the Unix epoch), like
// Limiter does for sign-ins.
//
// Keys: prefix+"limit:device:sess:"+session key+":"+n and
// prefix+"limit:device:ip:"+IPBucket(ip)+":"+n, each expiring at the end of
// its window. The session key is Session.Key (already a hash of the
// cookie); the typed codes are never stored.
//
// Check and Fail are separate calls: concurrent attempts that all pass
// Check before any Fail can exceed the limit by their number.
type DeviceLimiter struct {
	store *Store
	cfg   DeviceLimitConfig
	now   func() time.Time
}

// NewDeviceLimiter returns the limiter; now is the clock (nil: time.Now).
func NewDeviceLimiter(st *Store, cfg DeviceLimitConfig, now func() time.Time) (*DeviceLimiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: device code limits config: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &DeviceLimiter{store: st, cfg: cfg, now: now}, nil
}

// maxSessionKey bounds the session key put into a key name (Session.Key is
// 64 hex characters).
const maxSessionKey = 128

func (l *DeviceLimiter) keys(sessionKey, ip string) (sessKey, ipKey string, left time.Duration, err error) {
	if sessionKey == "" || len(sessionKey) > maxSessionKey {
		return "", "", 0, fmt.Errorf("store: device code limits: session key of %d bytes not in 1..%d", len(sessionKey), maxSessionKey)
	}
	now := l.now()
	w := l.cfg.Window.Nanoseconds()
	n := now.UnixNano() / w
	left = time.Duration((n+1)*w - now.UnixNano())
	suffix := ":" + strconv.FormatInt(n, 10)
	return l.store.Key("limit:device:sess:" + sessionKey + suffix),
		l.store.Key("limit:device:ip:" + IPBucket(ip) + suffix), left, nil
}

// Check tells whether the session sessionKey at ip may try a user code:
// not once the session or the IP has typed its maximum of wrong codes in
// this window. RetryAfter is then the time to the end of the window.
func (l *DeviceLimiter) Check(ctx context.Context, sessionKey, ip string) (Decision, error) {
	sessKey, ipKey, left, err := l.keys(sessionKey, ip)
	if err != nil {
		return Decision{}, err
	}
	return checkWindow(ctx, l.store, "store: check device code limits", left,
		windowCounter{sessKey, l.cfg.MaxPerSession}, windowCounter{ipKey, l.cfg.MaxPerIP})
}

// Fail counts one wrong code for the session and for the IP.
func (l *DeviceLimiter) Fail(ctx context.Context, sessionKey, ip string) error {
	sessKey, ipKey, left, err := l.keys(sessionKey, ip)
	if err != nil {
		return err
	}
	return countWindow(ctx, l.store, "store: count wrong device code", left, sessKey, ipKey)
}
