package web

import (
	"sync"
	"time"
)

// AccessLogConfig (server.access_log) bounds the access log under load.
// Every request that did not succeed (status 400 and above) and every slow
// one is logged; of the successful ones, SuccessesPerSecond are logged each
// second and, beyond that, one in ThenOneIn. A logged line says how many
// successful requests were left out before it ("skipped"), and
// warden_access_log_skipped_total counts them. Audit events are not
// affected: they are never sampled.
type AccessLogConfig struct {
	// SuccessesPerSecond logged in full each second (default 50); -1 logs
	// every request.
	SuccessesPerSecond int `yaml:"successes_per_second"`
	// ThenOneIn: beyond that, one successful request in this many is
	// logged (default 100).
	ThenOneIn int `yaml:"then_one_in"`
	// Slow requests are always logged (default 1s).
	Slow time.Duration `yaml:"slow"`
}

// Defaults of AccessLogConfig.
const (
	DefaultAccessLogPerSecond = 50
	DefaultAccessLogOneIn     = 100
	DefaultAccessLogSlow      = time.Second
)

func (c *AccessLogConfig) setDefaults() {
	if c.SuccessesPerSecond == 0 {
		c.SuccessesPerSecond = DefaultAccessLogPerSecond
	}
	if c.ThenOneIn == 0 {
		c.ThenOneIn = DefaultAccessLogOneIn
	}
	if c.Slow == 0 {
		c.Slow = DefaultAccessLogSlow
	}
}

func (c *AccessLogConfig) validate(add func(key, format string, args ...any)) {
	if c.SuccessesPerSecond < -1 {
		add("access_log.successes_per_second", "must be -1 (log every request) or positive (got %d)", c.SuccessesPerSecond)
	}
	if c.ThenOneIn < 1 {
		add("access_log.then_one_in", "must be at least 1 (got %d)", c.ThenOneIn)
	}
	if c.Slow < 0 {
		add("access_log.slow", "must not be negative")
	}
}

// sampler decides which successful requests are logged: the first
// perSecond of each wall-clock second, then one in oneIn.
type sampler struct {
	perSecond, oneIn int64
	mu               sync.Mutex
	second           int64 // unix second of the window
	n                int64 // successful requests seen in it
	skipped          int64 // left out since the last logged one
}

func newSampler(c AccessLogConfig) *sampler {
	return &sampler{perSecond: int64(c.SuccessesPerSecond), oneIn: int64(c.ThenOneIn)}
}

// keep reports whether a successful request at now is logged, and if so how
// many were skipped before it.
func (s *sampler) keep(now time.Time) (bool, int64) {
	if s.perSecond < 0 {
		return true, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.second {
		s.second, s.n = sec, 0
	}
	s.n++
	if s.n <= s.perSecond || (s.n-s.perSecond)%s.oneIn == 0 {
		skipped := s.skipped
		s.skipped = 0
		return true, skipped
	}
	s.skipped++
	return false, 0
}
