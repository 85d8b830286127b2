package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/store/storetest"
)

// flakyRules is store.Rules whose Current fails while failing is set: the
// read after a change notification that hits a Redis hiccup.
type flakyRules struct {
	*store.Rules
	failing atomic.Bool
	failed  atomic.Int32
}

func (f *flakyRules) Current(ctx context.Context) (store.RuleVersion, []byte, error) {
	if f.failing.Load() {
		f.failed.Add(1)
		return store.RuleVersion{}, nil, store.Unavailable("test: current", errors.New("injected failure"))
	}
	return f.Rules.Current(ctx)
}

// TestWatchRulesRetriesFailedRead: a new version whose read fails after
// the notification is not skipped until the next save: the replica reports
// itself behind (warden_rules_behind 1) and retries until it loads it.
func TestWatchRulesRetriesFailedRead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.Open(t, "warden-watchretry")
	rules := &flakyRules{Rules: store.NewRules(st, nil)}
	holder := &rolemap.Holder{}
	g := &rulesGauges{behind: prometheus.NewGauge(prometheus.GaugeOpts{Name: "b"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "l"})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchRulesMetered(ctx, rules, holder, testLogger(t), g)
	}()
	defer func() { cancel(); <-done }()

	accounts := func() int {
		e := holder.Load()
		if e == nil {
			return 0
		}
		return len(e.RuleSet().Accounts)
	}
	// The first (empty) version loads.
	waitFor(t, 5*time.Second, func() bool { return holder.Load() != nil })

	doc, err := canonicalRules("example", devconfig.ExampleRules, []string{"department"})
	if err != nil {
		t.Fatal(err)
	}
	rules.failing.Store(true)
	v, err := rules.Save(ctx, 0, doc, store.ChangeMeta{Author: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The notification arrives, the read fails: behind, old rules in force,
	// and the read is tried again (not once and forgotten).
	waitFor(t, 5*time.Second, func() bool { return gaugeValue(g.behind) == 1 && rules.failed.Load() >= 2 })
	if accounts() != 0 {
		t.Fatal("rules changed while every read failed")
	}
	// Redis answers again: the same version loads without another save.
	rules.failing.Store(false)
	waitFor(t, 10*time.Second, func() bool { return accounts() > 0 })
	waitFor(t, 5*time.Second, func() bool { return gaugeValue(g.behind) == 0 })
	if got := gaugeValue(g.loaded); got != float64(v.Version) {
		t.Fatalf("loaded version gauge %v, want %d", got, v.Version)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
