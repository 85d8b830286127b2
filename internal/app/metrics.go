package app

import (
	"context"
	"errors"
	"github.com/wardenidp/warden/internal/access"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
)

// metrics exports what the directory and Redis layers report; the HTTP and
// sign-in metrics belong to internal/web.
type metrics struct {
	ldapOps     *prometheus.HistogramVec
	redisErrors *prometheus.CounterVec
	rules       *rulesGauges
	revocations *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ldapOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warden_ldap_operation_duration_seconds",
			Help:    "LDAP operations by kind and outcome (ok, rejected, error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "outcome"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_redis_errors_total",
			Help: "Redis commands that failed, by kind (network, reply).",
		}, []string{"kind"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_access_revocations_total",
			Help: "Revocations of all of a user's access, by cause (admin, operator, directory.deleted, directory.disabled, ...); a directory revocation that found nothing left to end is not counted.",
		}, []string{"cause"}),
	}
	m.rules = &rulesGauges{
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_rules_behind",
			Help: "1 while this replica does not serve the newest stored mapping rules (reading them failed and is retried, or they do not compile), else 0.",
		}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_rules_loaded_version",
			Help: "The version of the mapping rules this replica serves (0: none stored).",
		}),
	}
	reg.MustRegister(m.ldapOps, m.redisErrors, m.rules.behind, m.rules.loaded, m.revocations)
	return m
}

// ObserveOp implements ldap.Observer. The server URL is left out of the
// labels: it can carry many values and the logs name it.
func (m *metrics) ObserveOp(op, _ string, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case identity.IsRejection(err), errors.Is(err, identity.ErrPasswordPolicy),
		errors.Is(err, identity.ErrPasswordChangeUnsupported):
		outcome = "rejected"
	default:
		outcome = "error"
	}
	m.ldapOps.WithLabelValues(op, outcome).Observe(d.Seconds())
}

// watchPools exports the directory's connection pools as gauges read at
// scrape time.
func (m *metrics) watchPools(reg prometheus.Registerer, dir *ldap.Directory) {
	reg.MustRegister(poolCollector{dir: dir})
}

type poolCollector struct{ dir *ldap.Directory }

var (
	poolOpenDesc  = prometheus.NewDesc("warden_ldap_pool_connections", "Open pooled LDAP connections by state.", []string{"server", "pool", "state"}, nil)
	poolUpDesc    = prometheus.NewDesc("warden_ldap_server_up", "1 when the server is in use, 0 while it backs off after a failure.", []string{"server"}, nil)
	poolDialDesc  = prometheus.NewDesc("warden_ldap_dials_total", "Connections dialled, by result.", []string{"server", "pool", "result"}, nil)
	poolWaitsDesc = prometheus.NewDesc("warden_ldap_pool_waits_total", "Requests that found every pooled connection busy.", []string{"server", "pool"}, nil)
)

func (p poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolOpenDesc
	ch <- poolUpDesc
	ch <- poolDialDesc
	ch <- poolWaitsDesc
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, s := range p.dir.PoolStats() {
		ch <- prometheus.MustNewConstMetric(poolOpenDesc, prometheus.GaugeValue, float64(s.Idle), s.Server, s.Pool, "idle")
		ch <- prometheus.MustNewConstMetric(poolOpenDesc, prometheus.GaugeValue, float64(s.InUse), s.Server, s.Pool, "in_use")
		ch <- prometheus.MustNewConstMetric(poolDialDesc, prometheus.CounterValue, float64(s.Dials-s.DialErrors), s.Server, s.Pool, "ok")
		ch <- prometheus.MustNewConstMetric(poolDialDesc, prometheus.CounterValue, float64(s.DialErrors), s.Server, s.Pool, "error")
		ch <- prometheus.MustNewConstMetric(poolWaitsDesc, prometheus.CounterValue, float64(s.Waits), s.Server, s.Pool)
		if !seen[s.Server] {
			seen[s.Server] = true
			up := 0.0
			if s.Up {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(poolUpDesc, prometheus.GaugeValue, up, s.Server)
		}
	}
}

// redisHook counts failed Redis commands. redis.Nil (a missing key) is an
// answer, not a failure.
func (m *metrics) redisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.m.redisErrors.WithLabelValues("dial").Inc()
		}
		return c, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(err)
		return err
	}
}

func (h redisHook) count(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		h.m.redisErrors.WithLabelValues("reply").Inc()
		return
	}
	h.m.redisErrors.WithLabelValues("network").Inc()
}

// Revoked implements the access package's Observer.
func (m *metrics) Revoked(cause access.Cause) { m.revocations.WithLabelValues(string(cause)).Inc() }
