package elevation_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// BenchmarkRequestDecide measures the server's work for a request (rules
// evaluated, the input checked, the request stored, audit and metrics) and
// for an approver's decision (the request read, the approver's groups
// matched, the one-decision script) against the real redis-server, one
// after the other, and reports each step's latency percentiles.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench RequestDecide -benchtime 2000x ./internal/elevation/
func BenchmarkRequestDecide(b *testing.B) {
	svc, clk, _, _ := newService(b, testRules)
	ctx := b.Context()
	sam := user("sam", "secops")
	var reqT, decT []time.Duration
	b.ResetTimer()
	for i := range b.N {
		// a user of their own per iteration, so that the request limit
		// (20 per user an hour) does not count across iterations
		u := user(fmt.Sprintf("bench-%d", i), "ops")
		t0 := time.Now()
		e, err := svc.Request(ctx, u, clk.fresh(), elevation.Input{Roles: []string{adminProd, adminStage}, Seconds: 3600,
			Reason: "INC-1 benchmark", ClientIP: "192.0.2.1"})
		t1 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		d, err := svc.Decide(ctx, sam, clk.fresh(), e.ID, true, "ok", "192.0.2.2")
		t2 := time.Now()
		if err != nil || d.State != store.ElevationApproved {
			b.Fatalf("decide: %v %v", d.State, err)
		}
		reqT, decT = append(reqT, t1.Sub(t0)), append(decT, t2.Sub(t1))
	}
	b.StopTimer()
	report(b, "request", reqT)
	report(b, "decide", decT)
}

// BenchmarkApply compares what a hand-off pays for elevation: a user with
// no eligible role (no Redis round trip) and a user with an active
// elevation (the user's requests read and the grant added).
//
//	go test -run '^$' -bench Apply -benchtime 5000x ./internal/elevation/
func BenchmarkApply(b *testing.B) {
	svc, clk, h, _ := newService(b, testRules)
	ctx := b.Context()
	bob := user("bob", "ops")
	e, err := svc.Request(ctx, bob, clk.fresh(), elevation.Input{Roles: []string{breakGlass}, Seconds: 1800})
	if err != nil || e.State != store.ElevationApproved {
		b.Fatalf("self-service: %v %v", e.State, err)
	}
	for _, c := range []struct {
		name string
		u    identity.User
		want bool
	}{{"standing-only", user("dana", "staff"), false}, {"elevated", bob, true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				res := h.Load().Evaluate(rolemap.InputFromUser(c.u))
				if err := svc.Apply(ctx, c.u, &res); err != nil {
					b.Fatal(err)
				}
				if has(res.Grants, breakGlass) != c.want {
					b.Fatal("unexpected grants")
				}
			}
		})
	}
}

func report(b *testing.B, name string, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
}
