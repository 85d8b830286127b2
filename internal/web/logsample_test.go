package web

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logLines are the JSON lines of logs with the message msg (and, when
// route is set, that route).
func logLines(t *testing.T, logs string, msg, route string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg && (route == "" || m["route"] == route) {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLogSampling: of the successful requests of one second, the
// first successes_per_second are logged, then one in then_one_in, each
// logged line counting the ones left out before it; failures and audit
// events are all logged.
func TestAccessLogSampling(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) {
		c.AccessLog = AccessLogConfig{SuccessesPerSecond: 5, ThenOneIn: 10}
	})
	b := e.browser(t)
	for range 50 {
		if w := b.get("/login"); w.Code != http.StatusOK {
			t.Fatalf("GET /login: %d", w.Code)
		}
	}
	lines := logLines(t, e.logs.String(), "http request", "/login")
	// requests 1-5, then 15, 25, 35, 45
	if len(lines) != 9 {
		t.Fatalf("%d lines for 50 requests in one second, want 9", len(lines))
	}
	for i, l := range lines {
		want := 0.0
		if i >= 5 {
			want = 9
		}
		if got, _ := l["skipped"].(float64); got != want {
			t.Errorf("line %d: skipped %v, want %v", i, l["skipped"], want)
		}
	}
	if got := testutil.ToFloat64(e.srv.metrics.logSkipped); got != 41 {
		t.Errorf("warden_access_log_skipped_total %v, want 41", got)
	}

	// failures are never left out
	for range 20 {
		if w := b.get("/no-such-page"); w.Code != http.StatusNotFound {
			t.Fatalf("404 page: %d", w.Code)
		}
	}
	if n := len(logLines(t, e.logs.String(), "http request", "unmatched")); n != 20 {
		t.Errorf("%d of 20 404s logged", n)
	}

	// a new second: logged again, with the five left out at the end of the last
	e.clock.Advance(time.Second)
	b.get("/login")
	lines = logLines(t, e.logs.String(), "http request", "/login")
	if last := lines[len(lines)-1]; last["skipped"] != 5.0 {
		t.Errorf("first line of the next second: skipped %v, want 5", last["skipped"])
	}

	// every sign-in is audited, however many are not in the access log
	before := len(logLines(t, e.logs.String(), "audit", ""))
	for range 10 {
		if w := e.browser(t).login("bob", testPassword, "/"); w.Code != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", w.Code)
		}
	}
	if n := len(logLines(t, e.logs.String(), "audit", "")) - before; n < 10 {
		t.Errorf("%d audit lines for 10 sign-ins", n)
	}
}

func TestAccessLogEveryRequest(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.AccessLog.SuccessesPerSecond = -1 })
	b := e.browser(t)
	for range 200 {
		b.get("/login")
	}
	if n := len(logLines(t, e.logs.String(), "http request", "/login")); n != 200 {
		t.Fatalf("%d of 200 lines with successes_per_second -1", n)
	}
}

func TestAccessLogConfig(t *testing.T) {
	c := Config{PublicURL: "https://sso.example.com", AccessLog: AccessLogConfig{SuccessesPerSecond: -2, ThenOneIn: -1}, DrainDelay: time.Hour}
	c.SetDefaults()
	err := c.Validate()
	for _, want := range []string{"access_log.successes_per_second: must be -1", "access_log.then_one_in: must be at least 1", "drain_delay: must be between 0 and 2m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	c = Config{PublicURL: "https://sso.example.com"}
	c.SetDefaults()
	if c.AccessLog != (AccessLogConfig{SuccessesPerSecond: 50, ThenOneIn: 100, Slow: time.Second}) || c.DrainDelay != 0 {
		t.Errorf("defaults %+v %v", c.AccessLog, c.DrainDelay)
	}
}

// TestDrain: after the stop signal /readyz answers 503 "draining" while
// requests are still served; then the listener closes.
func TestDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config, _ *Deps) { c.DrainDelay = 3 * time.Second })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before the stop: %d %s", code, body)
	}
	cancel()
	code, body := get("/readyz")
	for code == http.StatusOK { // the stop reaches Serve through a goroutine
		code, body = get("/readyz")
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"draining"`) || !strings.Contains(body, "request_id") {
		t.Fatalf("readyz while draining: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz while draining: %d", code)
	}
	if code, _ := get("/login"); code != http.StatusOK {
		t.Fatalf("a page while draining: %d", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after the drain")
	}
	if !strings.Contains(e.logs.String(), "draining: /readyz answers 503") {
		t.Error("drain not logged")
	}
}
