package web

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sign-in outcomes: the values of warden_login_total{outcome}.
const (
	outcomeSuccess              = "success"
	outcomeInvalidCredentials   = "invalid_credentials"
	outcomeLocked               = "locked"
	outcomePasswordExpired      = "password_expired"
	outcomeMustChange           = "must_change"
	outcomeDisabled             = "disabled"
	outcomeAccountExpired       = "account_expired"
	outcomeRateLimited          = "rate_limited"
	outcomeCSRF                 = "csrf"
	outcomeDirectoryUnavailable = "directory_unavailable"
	outcomeStoreUnavailable     = "store_unavailable"
)

var allOutcomes = []string{
	outcomeSuccess, outcomeInvalidCredentials, outcomeLocked, outcomePasswordExpired,
	outcomeMustChange, outcomeDisabled, outcomeAccountExpired, outcomeRateLimited,
	outcomeCSRF, outcomeDirectoryUnavailable, outcomeStoreUnavailable,
}

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	logins        *prometheus.CounterVec
	loginDuration *prometheus.HistogramVec
	csrf          *prometheus.CounterVec
	logSkipped    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern (failed sign-ins include the padding).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_login_total",
			Help: "Sign-in attempts by outcome.",
		}, []string{"outcome"}),
		loginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_login_duration_seconds",
			Help:    "Time to decide a sign-in (limiter, directory, session), before any padding, by outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		csrf: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_csrf_rejected_total",
			Help: "POST requests refused by the CSRF checks, by route.",
		}, []string{"route"}),
		logSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_access_log_skipped_total",
			Help: "Successful requests left out of the access log by server.access_log sampling.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.logins, m.loginDuration, m.csrf, m.logSkipped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("web: register metrics: %w", err)
		}
	}
	for _, o := range allOutcomes {
		m.logins.WithLabelValues(o) // export zeros, so rates work from the start
	}
	return m, nil
}

func (m *metrics) observeHTTP(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) observeLogin(outcome string, d time.Duration) {
	m.logins.WithLabelValues(outcome).Inc()
	m.loginDuration.WithLabelValues(outcome).Observe(d.Seconds())
}
