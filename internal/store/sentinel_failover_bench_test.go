package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// The load of BenchmarkSentinelFailover: failoverWorkers goroutines, each
// pausing failoverPause between sign-ins (at most 800 sign-ins/s).
const (
	failoverWorkers = 8
	failoverPause   = 10 * time.Millisecond
	failoverMaster  = "wmaster"
	// failoverShareOver: failed-% counts the sign-ins started this long
	// after the master went, so that runs compare.
	failoverShareOver = 10 * time.Second
)

// BenchmarkSentinelFailover measures a Redis Sentinel failover as Warden
// sees it. Each iteration starts a master, two replicas and three
// Sentinels (quorum 2) of its own, opens a Store in sentinel mode with
// redis.wait_replicas 1 and the default timeouts (dial 2s, read and write
// 1s, wait 100ms), creates 50 sessions and waits until both replicas have
// them, then runs sign-ins' store operations as the web login does
// (limiter Check, then Sessions.Create, each sign-in with its own user and
// client IP) from 8 goroutines, each pausing 10 ms between sign-ins. After
// 2 s it takes the master away and goes on until a sign-in started after
// that has succeeded, and 3 s more (10 s after the master went at least).
//
// kill SIGKILLs the master (the kernel then refuses its port at once);
// stop SIGSTOPs it (its port accepts, nothing answers: a hung or
// unreachable host). The suffix is down-after-milliseconds; failover-timeout
// is 3000 in every case.
//
// Metrics, in ms from the moment the master went: ms-sdown, ms-odown,
// ms-promoted, ms-switch (the first +sdown, +odown, +promoted-slave and
// +switch-master event of any Sentinel); ms-first-check (the end of the
// first successful limiter Check, reads only, started after the master
// went); ms-unavailable (the end of the first successful sign-in started
// after it: a cookie issued by the new master, WAIT included);
// ms-last-fail (the end of the last failed sign-in). The sign-ins in
// flight when the master went count as after it. failed-ops: the
// sign-ins after that failed (each with ErrUnavailable: anything else
// fails the benchmark); failed-% their share of those started in the
// first 10 s; failed-before the failures before it (WAIT timeouts on a
// loaded machine). ms-win-p50/p99/max: latency of the sign-ins up to the
// first success; ms-base-p99 that of the sign-ins before. lost-sessions:
// sessions whose Create had returned (so a replica had acknowledged
// them) that the new master lacks; the 50 made before the load, which
// both replicas had, must all be there. masters-after: how many of the
// two replicas are masters at the end (2: two Sentinels each ran a
// failover).
//
// Figures: docs/benchmarks.md, "Redis Sentinel: the master killed".
//
//	go test -run '^$' -bench SentinelFailover -benchtime 1x -count 3 ./internal/store/
//
// (go-redis logs every refused dial on stderr, as "redis: ..." lines.)
func BenchmarkSentinelFailover(b *testing.B) {
	if testing.Short() {
		b.Skip("starts six redis-server processes and waits for failovers")
	}
	for _, c := range []struct {
		name      string
		stop      bool
		downAfter time.Duration
	}{
		{"kill_down1000", false, time.Second},
		{"kill_down2000", false, 2 * time.Second},
		{"stop_down1000", true, time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			var sum failoverResult
			for range b.N {
				r := runFailover(b, c.stop, c.downAfter, 3*time.Second)
				sum.add(r)
			}
			sum.report(b)
		})
	}
}

// failoverResult is one failover's figures (or their sum over b.N).
type failoverResult struct {
	sdown, odown, promoted, switched, firstCheck, unavailable, lastFail time.Duration
	failed, failedBefore, sharedOps, sharedFailed                       int
	winP50, winP99, winMax, baseP99                                     time.Duration
	lost, masters                                                       int
	n                                                                   int
}

func (r *failoverResult) add(o failoverResult) {
	r.sdown += o.sdown
	r.odown += o.odown
	r.promoted += o.promoted
	r.switched += o.switched
	r.firstCheck += o.firstCheck
	r.unavailable += o.unavailable
	r.lastFail += o.lastFail
	r.failed += o.failed
	r.failedBefore += o.failedBefore
	r.sharedOps += o.sharedOps
	r.sharedFailed += o.sharedFailed
	r.winP50 += o.winP50
	r.winP99 += o.winP99
	r.winMax += o.winMax
	r.baseP99 += o.baseP99
	r.lost += o.lost
	r.masters += o.masters
	r.n++
}

// report reports the mean over the failovers added.
func (r failoverResult) report(b *testing.B) {
	n := float64(max(r.n, 1))
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)/n*10) / 10 }
	b.ReportMetric(0, "ns/op") // the iteration's time is mostly starting servers
	b.ReportMetric(ms(r.sdown), "ms-sdown")
	b.ReportMetric(ms(r.odown), "ms-odown")
	b.ReportMetric(ms(r.promoted), "ms-promoted")
	b.ReportMetric(ms(r.switched), "ms-switch")
	b.ReportMetric(ms(r.firstCheck), "ms-first-check")
	b.ReportMetric(ms(r.unavailable), "ms-unavailable")
	b.ReportMetric(ms(r.lastFail), "ms-last-fail")
	b.ReportMetric(float64(r.failed)/n, "failed-ops")
	b.ReportMetric(float64(r.failedBefore)/n, "failed-before")
	if r.sharedOps > 0 {
		b.ReportMetric(math.Round(1000*float64(r.sharedFailed)/float64(r.sharedOps))/10, "failed-%")
	}
	b.ReportMetric(ms(r.winP50), "ms-win-p50")
	b.ReportMetric(ms(r.winP99), "ms-win-p99")
	b.ReportMetric(ms(r.winMax), "ms-win-max")
	b.ReportMetric(ms(r.baseP99), "ms-base-p99")
	b.ReportMetric(float64(r.lost)/n, "lost-sessions")
	b.ReportMetric(float64(r.masters)/n, "masters-after")
}

// signInRecord is one sign-in of the load, its times relative to the
// start of the load.
type signInRecord struct {
	start, end time.Duration
	checked    time.Duration // end of the limiter Check (reads only) when it succeeded, else 0
	ok         bool          // the sign-in succeeded (Create: writes, then WAIT)
	token      string
	err        string // why it failed
}

// runFailover runs one failover as BenchmarkSentinelFailover describes and
// returns its figures.
func runFailover(b *testing.B, stop bool, downAfter, failoverTimeout time.Duration) failoverResult {
	b.Helper()
	ctx := context.Background()
	g := startSentinelGroup(b, downAfter, failoverTimeout)
	st, err := store.Open(ctx, store.RedisConfig{Mode: store.ModeSentinel, Addrs: g.sentinels,
		MasterName: failoverMaster, KeyPrefix: uniquePrefix(), WaitReplicas: 1}, testLogger(b))
	mustf(b, err, "open in sentinel mode")
	b.Cleanup(func() { _ = st.Close() })
	clk := newClock()
	sessions := newSessions(b, st, clk)
	limiter, err := store.NewLimiter(st, store.LimitConfig{MaxFailuresPerUser: 5, MaxFailuresPerIP: 50, Window: time.Minute}, clk.Now)
	mustf(b, err, "limiter")

	// Sessions of users signed in earlier, on both replicas.
	before := make([]string, 50)
	for i := range before {
		before[i], _, err = sessions.Create(ctx, user(fmt.Sprintf("pre-%d", i), "pre"), store.SessionMeta{})
		mustf(b, err, "create before the failover")
	}
	for _, r := range g.replicas {
		waitReplicated(b, g.master, r)
	}
	events := watchSentinels(b, g.sentinels)

	t0 := time.Now()
	var goneAt atomic.Int64 // since t0; MaxInt64 while the master is up
	goneAt.Store(math.MaxInt64)
	recovered := make(chan struct{})
	var recoveredOnce sync.Once
	var quit atomic.Bool
	recs := make([][]signInRecord, failoverWorkers)
	var wg sync.WaitGroup
	for w := range failoverWorkers {
		wg.Go(func() {
			for i := 0; !quit.Load(); i++ {
				name := fmt.Sprintf("fo-%d-%d", w, i)
				ip := fmt.Sprintf("10.%d.%d.%d", w, i/256%256, i%256)
				start := time.Since(t0)
				d, err := limiter.Check(ctx, name, ip)
				if err == nil && !d.Allowed {
					b.Errorf("sign-in %s refused by the limiter", name)
					return
				}
				var checked time.Duration
				if err == nil {
					checked = time.Since(t0)
				}
				var token string
				if err == nil {
					token, _, err = sessions.Create(ctx, user("id-"+name, name), store.SessionMeta{ClientIP: ip})
				}
				end := time.Since(t0)
				if err != nil && !errors.Is(err, store.ErrUnavailable) {
					b.Errorf("sign-in %s: %v, want ErrUnavailable", name, err)
					return
				}
				rec := signInRecord{start: start, end: end, checked: checked, ok: err == nil, token: token}
				if err != nil {
					rec.err = err.Error()
				}
				recs[w] = append(recs[w], rec)
				if err == nil && int64(start) >= goneAt.Load() {
					recoveredOnce.Do(func() { close(recovered) })
				}
				time.Sleep(failoverPause)
			}
		})
	}
	finish := func() {
		quit.Store(true)
		wg.Wait()
	}

	time.Sleep(2 * time.Second)
	if stop {
		mustf(b, g.master.cmd.Process.Signal(syscall.SIGSTOP), "SIGSTOP the master")
	} else {
		g.master.kill()
	}
	gone := time.Since(t0)
	goneAt.Store(int64(gone))
	select {
	case <-recovered:
	case <-time.After(60 * time.Second):
		finish()
		b.Fatalf("no sign-in succeeded within 60 s of the master going; Sentinel events: %v", events.since(t0, gone))
	}
	time.Sleep(max(3*time.Second, gone+failoverShareOver-time.Since(t0)))
	finish()
	if b.Failed() {
		b.FailNow()
	}

	var r failoverResult
	ev := events.since(t0, gone)
	r.sdown, r.odown, r.promoted, r.switched = ev["+sdown"], ev["+odown"], ev["+promoted-slave"], ev["+switch-master"]
	r.unavailable, r.firstCheck = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	var window, base []time.Duration
	all := slices.Concat(recs...)
	for _, s := range all {
		if s.start >= gone && s.ok {
			r.unavailable = min(r.unavailable, s.end-gone)
		}
		if s.start >= gone && s.checked > 0 {
			r.firstCheck = min(r.firstCheck, s.checked-gone)
		}
	}
	// The sign-ins in flight when the master went count as affected: in
	// the stop case they are the ones that wait longest.
	var late []string // failures that ended after the first success
	for _, s := range all {
		affected := s.end > gone
		switch {
		case !affected && s.start >= time.Second: // after a second of warm-up
			base = append(base, s.end-s.start)
		case affected && s.start-gone <= r.unavailable:
			window = append(window, s.end-s.start)
		}
		if !affected {
			if !s.ok {
				r.failedBefore++
			}
			continue
		}
		if !s.ok {
			r.failed++
			r.lastFail = max(r.lastFail, s.end-gone)
			if s.end-gone > r.unavailable && len(late) < 5 {
				late = append(late, fmt.Sprintf("%v..%v: %s", (s.start-gone).Round(time.Millisecond), (s.end-gone).Round(time.Millisecond), s.err))
			}
		}
		if s.start-gone < failoverShareOver {
			r.sharedOps++
			if !s.ok {
				r.sharedFailed++
			}
		}
	}
	r.winP50, r.winP99, r.winMax = percentile(window, 0.50), percentile(window, 0.99), percentile(window, 1)
	r.baseP99 = percentile(base, 0.99)

	// Every session made before the load must be on the new master; a
	// session the load made is lost if the promoted replica lacked it.
	for i, tok := range before {
		if _, err := sessions.Get(ctx, tok); err != nil {
			b.Fatalf("session %d made before the failover: %v", i, err)
		}
	}
	made := 0
	for _, s := range all {
		if !s.ok {
			continue
		}
		made++
		_, err := sessions.Get(ctx, s.token)
		switch {
		case errors.Is(err, store.ErrNotFound):
			r.lost++
		case err != nil:
			b.Fatalf("reading the load's sessions after the failover: %v", err)
		}
	}
	// One master at the end, else two Sentinels each ran a failover.
	for _, rs := range g.replicas {
		c := redis.NewClient(&redis.Options{Addr: rs.addr()})
		info, err := c.Info(ctx, "replication").Result()
		_ = c.Close()
		mustf(b, err, "INFO replication of %s", rs.addr())
		if strings.Contains(info, "role:master") {
			r.masters++
		}
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average %s", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	b.Logf("%d sign-ins (%d succeeded), %d failed after the master went; sdown %v, odown %v, elected %v, promoted %v, switch %v, other replica reconfigured %v; first check %v, first sign-in %v; lost %d",
		len(all), made, r.failed, r.sdown, r.odown, ev["+elected-leader"], r.promoted, r.switched, ev["+slave-reconf-done"],
		r.firstCheck.Round(time.Millisecond), r.unavailable.Round(time.Millisecond), r.lost)
	for _, l := range late {
		b.Logf("failed after the first success: %s", l)
	}
	if r.masters != 1 { // which Sentinel failed over what, and when
		for _, l := range g.logs {
			data, _ := os.ReadFile(l)
			for line := range strings.Lines(string(data)) {
				if strings.Contains(line, "master wmaster") || strings.Contains(line, "+switch-master") {
					b.Logf("%s: %s", filepath.Base(filepath.Dir(l)), strings.TrimSpace(line))
				}
			}
		}
	}
	return r
}

// percentile returns the q-quantile of ds (nearest rank; 0 when empty).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// sentinelGroup is a master, its replicas and the Sentinels that watch it
// as failoverMaster, all started by a benchmark.
type sentinelGroup struct {
	master    *redisServer
	replicas  []*redisServer
	sentinels []string
	logs      []string // the Sentinels' log files
}

// replicaNAcked matches a master's INFO replication once its replica n is
// online and has acknowledged an offset (replicaAcked for any n).
func replicaNAcked(n int) *regexp.Regexp {
	return regexp.MustCompile(`slave` + strconv.Itoa(n) + `:[^\r\n]*state=online,offset=[1-9]`)
}

// startSentinelGroup starts a master, two replicas and three Sentinels
// (quorum 2) with the given down-after-milliseconds and failover-timeout,
// and waits until every Sentinel knows both replicas and the two other
// Sentinels (they learn of each other through the master, every 2 s).
func startSentinelGroup(b testing.TB, downAfter, failoverTimeout time.Duration) *sentinelGroup {
	b.Helper()
	ctx := context.Background()
	g := &sentinelGroup{master: startRedis(b, freePort(b, false))}
	for range 2 {
		g.replicas = append(g.replicas, startRedis(b, freePort(b, false), "--replicaof", "127.0.0.1", strconv.Itoa(g.master.port)))
	}
	mc := redis.NewClient(&redis.Options{Addr: g.master.addr()})
	defer mc.Close()
	waitFor(b, 30*time.Second, "both replicas acknowledging", func() bool {
		info, err := mc.Info(ctx, "replication").Result()
		return err == nil && replicaNAcked(0).MatchString(info) && replicaNAcked(1).MatchString(info)
	})

	for range 3 {
		addr, log := startSentinel(b, g.master.port, downAfter, failoverTimeout)
		g.sentinels, g.logs = append(g.sentinels, addr), append(g.logs, log)
	}
	for _, a := range g.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a})
		waitFor(b, 30*time.Second, "sentinel "+a+" knowing the replicas and the other sentinels", func() bool {
			reps, err := sc.Replicas(ctx, failoverMaster).Result()
			if err != nil || len(reps) != 2 {
				return false
			}
			for _, r := range reps {
				if r["flags"] != "slave" {
					return false
				}
			}
			others, err := sc.Sentinels(ctx, failoverMaster).Result()
			return err == nil && len(others) == 2
		})
		_ = sc.Close()
	}
	return g
}

// startSentinel starts one Sentinel watching the master on masterPort as
// failoverMaster, with quorum 2, and returns its address and log file.
func startSentinel(b testing.TB, masterPort int, downAfter, failoverTimeout time.Duration) (addr, log string) {
	b.Helper()
	port := freePort(b, false)
	dir := b.TempDir()
	conf, log := filepath.Join(dir, "sentinel.conf"), filepath.Join(dir, "sentinel.log")
	mustf(b, os.WriteFile(conf, fmt.Appendf(nil,
		"port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n",
		port, dir, log,
		failoverMaster, masterPort, failoverMaster, downAfter.Milliseconds(), failoverMaster, failoverTimeout.Milliseconds()), 0o600),
		"write sentinel.conf")
	cmd := exec.Command(testenv.Binary(b, "redis-server"), conf, "--sentinel")
	mustf(b, cmd.Start(), "start sentinel")
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr = "127.0.0.1:" + strconv.Itoa(port)
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer sc.Close()
	waitFor(b, 10*time.Second, "sentinel "+addr+" answering", func() bool {
		return sc.Ping(context.Background()).Err() == nil
	})
	return addr, log
}

// sentinelEvents records when any of several Sentinels first published
// each event (the master's own +sdown and +odown only, not its replicas').
type sentinelEvents struct {
	mu    sync.Mutex
	first map[string]time.Time
}

// watchSentinels subscribes to every event of the Sentinels at addrs
// (PSUBSCRIBE *) until the benchmark ends.
func watchSentinels(b testing.TB, addrs []string) *sentinelEvents {
	b.Helper()
	ev := &sentinelEvents{first: map[string]time.Time{}}
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // after the Close calls below: cleanups run last first
	for _, a := range addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a})
		ps := sc.PSubscribe(context.Background(), "*")
		if _, err := ps.Receive(context.Background()); err != nil { // the subscription's confirmation
			b.Fatalf("subscribe to sentinel %s: %v", a, err)
		}
		ch := ps.Channel()
		wg.Go(func() {
			for m := range ch {
				if (m.Channel == "+sdown" || m.Channel == "+odown") && !strings.HasPrefix(m.Payload, "master ") {
					continue
				}
				now := time.Now()
				ev.mu.Lock()
				if _, seen := ev.first[m.Channel]; !seen {
					ev.first[m.Channel] = now
				}
				ev.mu.Unlock()
			}
		})
		b.Cleanup(func() { _ = ps.Close(); _ = sc.Close() })
	}
	return ev
}

// since returns, for each event seen, how long after t0+offset it came.
func (e *sentinelEvents) since(t0 time.Time, offset time.Duration) map[string]time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Duration, len(e.first))
	for k, t := range e.first {
		out[k] = t.Sub(t0) - offset
	}
	return out
}
