package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func withPprof() envOption {
	return func(c *Config, _ *Deps) { c.Debug.Pprof = true }
}

// pprofGet sends method path from peer with the given headers (name,
// value pairs) through the handler.
func pprofGet(t *testing.T, e *env, method, path, peer string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = peer
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// skipIfProfiling skips a test that takes a CPU profile or a trace when
// `go test -cpuprofile` or `-trace` already does: the runtime runs one
// of each at a time.
func skipIfProfiling(t *testing.T, flags ...string) {
	t.Helper()
	for _, name := range flags {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			t.Skipf("-%s is set: the test binary already runs the profiler", strings.TrimPrefix(name, "test."))
		}
	}
}

// protoFields decodes the top level of a protobuf message: field number
// to its values (varints as uint64, length-delimited as []byte).
func protoFields(b []byte) (map[uint64][]any, error) {
	out := map[uint64][]any{}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad key")
		}
		b = b[n:]
		field := key >> 3
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			out[field], b = append(out[field], v), b[n:]
		case 1:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			out[field], b = append(out[field], b[n:n+int(l)]), b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", key&7)
		}
	}
	return out, nil
}

// parseProfile checks that body is a gzipped pprof profile (profile.proto)
// and returns its string table and duration_nanos.
func parseProfile(t *testing.T, body []byte) (stringTable []string, duration time.Duration) {
	t.Helper()
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Fatalf("not gzip: % x", body[:min(len(body), 16)])
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	fields, err := protoFields(raw)
	if err != nil {
		t.Fatalf("not a protobuf message: %v", err)
	}
	if len(fields[1]) == 0 || len(fields[6]) == 0 { // sample_type, string_table
		t.Fatalf("no sample_type or string_table: fields %v", reflect.ValueOf(fields).MapKeys())
	}
	for _, s := range fields[6] {
		stringTable = append(stringTable, string(s.([]byte)))
	}
	if d := fields[10]; len(d) == 1 { // duration_nanos
		duration = time.Duration(d[0].(uint64))
	}
	return stringTable, duration
}

func TestPprofOffByDefault(t *testing.T) {
	e := newEnv(t)
	if e.srv.cfg.Debug.Pprof {
		t.Fatal("pprof is on by default")
	}
	for _, r := range e.srv.Routes() {
		if strings.HasPrefix(r.Path, "/debug/") {
			t.Errorf("route %s %s without server.debug.pprof", r.Method, r.Path)
		}
	}
	unknown := pprofGet(t, e, http.MethodGet, "/no-such-page", "127.0.0.1:40000")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			rec := pprofGet(t, e, method, path, "127.0.0.1:40000")
			if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != unknown.Header().Get("Content-Type") {
				t.Errorf("%s %s from loopback, pprof off: %d %s", method, path, rec.Code, rec.Header().Get("Content-Type"))
			}
		}
	}
}

// TestPprofNotOnDefaultServeMux: nothing linked into the package registers
// the profiler on http.DefaultServeMux (as importing net/http/pprof does),
// where it would be served unguarded by any server that uses the default
// mux.
func TestPprofNotOnDefaultServeMux(t *testing.T) {
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile"} {
		if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest(http.MethodGet, path, nil)); pattern != "" {
			t.Errorf("http.DefaultServeMux serves %s (pattern %q)", path, pattern)
		}
	}
}

func TestPprofFromLoopback(t *testing.T) {
	e := newEnv(t, withPprof())
	get := func(path string) *httptest.ResponseRecorder {
		t.Helper()
		rec := pprofGet(t, e, http.MethodGet, path, "127.0.0.1:40000")
		// The security headers are there, and did not replace the
		// profiler's content type.
		h := rec.Header()
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Request-ID") == "" {
			t.Errorf("%s: security headers missing: %v", path, h)
		}
		return rec
	}
	wantType := func(path string, rec *httptest.ResponseRecorder, status int, ctype, disposition string) {
		t.Helper()
		if rec.Code != status {
			t.Fatalf("%s: %d, want %d\n%s", path, rec.Code, status, rec.Body.String())
		}
		if got := rec.Header().Get("Content-Type"); got != ctype {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ctype)
		}
		if got := rec.Header().Get("Content-Disposition"); got != disposition {
			t.Errorf("%s: Content-Disposition %q, want %q", path, got, disposition)
		}
	}

	rec := get("/debug/pprof/")
	wantType("index", rec, 200, "text/html; charset=utf-8", "")
	for _, want := range []string{`href="heap?debug=1"`, `href="goroutine?debug=2"`, `href="profile"`, `href="trace"`, `href="cmdline"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("index lacks %s", want)
		}
	}
	if m := regexpInline.FindString(rec.Body.String()); m != "" {
		t.Errorf("index has %q, which the CSP blocks", m)
	}

	for _, p := range pprofProfiles {
		path := "/debug/pprof/" + p.name
		rec := get(path)
		wantType(path, rec, 200, "application/octet-stream", `attachment; filename="`+p.name+`"`)
		strs, _ := parseProfile(t, rec.Body.Bytes())
		if p.name == "heap" && !strings.Contains(strings.Join(strs, " "), "inuse_space") {
			t.Errorf("heap profile's strings lack inuse_space: %q", strs)
		}
	}
	rec = get("/debug/pprof/heap?gc=1&debug=1")
	wantType("heap?debug=1", rec, 200, "text/plain; charset=utf-8", "")
	if !strings.HasPrefix(rec.Body.String(), "heap profile:") {
		t.Errorf("heap?debug=1: %.60q", rec.Body.String())
	}
	rec = get("/debug/pprof/goroutine?debug=2")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "goroutine ") || !strings.Contains(rec.Body.String(), "TestPprofFromLoopback") {
		t.Errorf("goroutine?debug=2: %d %.200q", rec.Code, rec.Body.String())
	}

	rec = get("/debug/pprof/cmdline")
	wantType("cmdline", rec, 200, "text/plain; charset=utf-8", "")
	if rec.Body.String() != strings.Join(os.Args, "\x00") {
		t.Errorf("cmdline: %q", rec.Body.String())
	}

	pc := reflect.ValueOf(pprofIndex).Pointer()
	rec = get(fmt.Sprintf("/debug/pprof/symbol?%#x+0x0+junk", pc))
	wantType("symbol", rec, 200, "text/plain; charset=utf-8", "")
	if want := fmt.Sprintf("num_symbols: 1\n%#x github.com/wardenidp/warden/internal/web.pprofIndex\n", pc); rec.Body.String() != want {
		t.Errorf("symbol: %q, want %q", rec.Body.String(), want)
	}

	for _, bad := range []string{"/debug/pprof/heap?seconds=5", "/debug/pprof/profile?seconds=601", "/debug/pprof/trace?seconds=1e9"} {
		rec := get(bad)
		wantType(bad, rec, 400, "text/plain; charset=utf-8", "")
	}
	if rec := get("/debug/pprof/nosuch"); rec.Code != 404 {
		t.Errorf("unknown profile: %d", rec.Code)
	}

	t.Run("profile", func(t *testing.T) {
		skipIfProfiling(t, "test.cpuprofile")
		rec := get("/debug/pprof/profile?seconds=1")
		wantType("profile", rec, 200, "application/octet-stream", `attachment; filename="profile"`)
		strs, _ := parseProfile(t, rec.Body.Bytes())
		if !strings.Contains(strings.Join(strs, " "), "cpu") {
			t.Errorf("CPU profile's strings lack cpu: %q", strs)
		}
		if got := e.clock.Sleeps(); len(got) == 0 || got[len(got)-1] != time.Second {
			t.Errorf("slept %v, want 1s last", got)
		}
	})
	t.Run("trace", func(t *testing.T) {
		skipIfProfiling(t, "test.trace")
		rec := get("/debug/pprof/trace?seconds=0.5")
		wantType("trace", rec, 200, "application/octet-stream", `attachment; filename="trace"`)
		if !strings.HasPrefix(rec.Body.String(), "go 1.") {
			t.Errorf("not an execution trace: %.20q", rec.Body.String())
		}
		if got := e.clock.Sleeps(); got[len(got)-1] != 500*time.Millisecond {
			t.Errorf("slept %v, want 500ms last", got)
		}
	})

	// Profiling is logged like any request, at info.
	if logs := e.logs.String(); !strings.Contains(logs, `"route":"/debug/pprof/heap"`) {
		t.Errorf("no access log line for /debug/pprof/heap:\n%s", logs)
	}
}

// regexpInline finds what the Content-Security-Policy would block.
var regexpInline = regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=|javascript:`)

func TestPprofAccess(t *testing.T) {
	token := MetricsConfig{Allow: []string{MetricsAllowNone}, BearerToken: metricsToken}
	tokenAndLoopback := MetricsConfig{BearerToken: metricsToken}
	for _, tc := range []struct {
		name   string
		opts   []envOption
		method string
		peer   string
		hdr    []string
		want   int
	}{
		{name: "loopback", peer: "127.0.0.1:40000", want: 200},
		{name: "loopback v6", peer: "[::1]:40000", want: 200},
		{name: "remote refused", peer: remoteClient + ":40000", want: 404},
		{name: "remote spoofing X-Forwarded-For", peer: remoteClient + ":40000", hdr: []string{"X-Forwarded-For", loopbackClient}, want: 404},
		{name: "remote POST refused, not 405", method: http.MethodPost, peer: remoteClient + ":40000", want: 404},
		{name: "loopback POST is 405", method: http.MethodPost, peer: "127.0.0.1:40000", want: 405},
		{name: "trusted proxy, remote client", opts: []envOption{withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9"}, want: 404},
		{name: "trusted proxy, loopback client", opts: []envOption{withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", loopbackClient}, want: 200},
		{name: "untrusted local proxy", peer: "127.0.0.1:40000", hdr: []string{"X-Forwarded-For", "203.0.113.9"}, want: 404},
		{name: "custom allow, inside", opts: []envOption{withMetrics(MetricsConfig{Allow: []string{"10.9.0.0/16"}})}, peer: "10.9.1.1:40000", want: 200},
		{name: "custom allow, loopback no longer", opts: []envOption{withMetrics(MetricsConfig{Allow: []string{"10.9.0.0/16"}})}, peer: "127.0.0.1:40000", want: 404},
		{name: "token right", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token wrong", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + otherToken}, want: 404},
		{name: "token wrong, POST", method: http.MethodPost, opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000",
			hdr: []string{"Authorization", "Bearer " + otherToken}, want: 404},
		{name: "token as Basic", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Basic " + metricsToken}, want: 404},
		{name: "token missing", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", want: 404},
		{name: "allow none: loopback needs the token", opts: []envOption{withMetrics(token)}, peer: "127.0.0.1:40000", want: 404},
		{name: "token via trusted proxy", opts: []envOption{withMetrics(token), withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token and loopback: remote with token", opts: []envOption{withMetrics(tokenAndLoopback)}, peer: remoteClient + ":40000",
			hdr: []string{"Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token and loopback: remote without token", opts: []envOption{withMetrics(tokenAndLoopback)}, peer: remoteClient + ":40000", want: 404},
		{name: "no token configured: any bearer refused", peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken}, want: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, append([]envOption{withPprof()}, tc.opts...)...)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
				if path == "/debug/pprof/profile?seconds=1" && tc.want == 200 && flag.Lookup("test.cpuprofile").Value.String() != "" {
					continue
				}
				rec := pprofGet(t, e, method, path, tc.peer, tc.hdr...)
				if rec.Code != tc.want {
					t.Fatalf("%s %s from %s %q: %d, want %d", method, path, tc.peer, tc.hdr, rec.Code, tc.want)
				}
				if tc.want == 200 && path == "/debug/pprof/heap" {
					parseProfile(t, rec.Body.Bytes())
				}
				if tc.want != 200 && rec.Header().Get("Content-Disposition") != "" {
					t.Errorf("%s: refused, but Content-Disposition %q", path, rec.Header().Get("Content-Disposition"))
				}
			}
			// (A refused POST is answered by noMethod, which, as for
			// /metrics, logs only the request.)
			if tc.want == 404 && method == http.MethodGet && !strings.Contains(e.logs.String(), `"msg":"pprof request refused"`) {
				t.Errorf("no refusal log line:\n%s", e.logs.String())
			}
		})
	}
}

// TestPprofRefusalLooksLikeNotFound: a refused request is answered exactly
// like an unknown path (status, headers, page), so that it does not reveal
// that the profiler is on; and no token reaches the log.
func TestPprofRefusalLooksLikeNotFound(t *testing.T) {
	e := newEnv(t, withPprof(), withMetrics(MetricsConfig{BearerToken: metricsToken}))
	for _, accept := range []string{"text/html", "application/json"} {
		get := func(path, method string) *httptest.ResponseRecorder {
			return pprofGet(t, e, method, path, remoteClient+":40000", "Accept", accept, "Authorization", "Bearer "+otherToken)
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile", "/debug/pprof/trace", "/debug/pprof/symbol"} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
				refused, unknown := get(path, method), get("/no-such-page", method)
				if refused.Code != http.StatusNotFound || unknown.Code != http.StatusNotFound {
					t.Fatalf("%s %s %s: refused %d, unknown %d", accept, method, path, refused.Code, unknown.Code)
				}
				rb := strings.ReplaceAll(refused.Body.String(), refused.Header().Get("X-Request-ID"), "RID")
				ub := strings.ReplaceAll(unknown.Body.String(), unknown.Header().Get("X-Request-ID"), "RID")
				if rb != ub {
					t.Errorf("%s %s %s: bodies differ:\n%s\n---\n%s", accept, method, path, rb, ub)
				}
				rh, uh := refused.Header().Clone(), unknown.Header().Clone()
				rh.Del("X-Request-ID")
				uh.Del("X-Request-ID")
				if !reflect.DeepEqual(rh, uh) {
					t.Errorf("%s %s %s: headers differ:\n%v\n%v", accept, method, path, rh, uh)
				}
			}
		}
	}
	logs := e.logs.String()
	if strings.Contains(logs, metricsToken) || strings.Contains(logs, otherToken) {
		t.Errorf("log contains a token:\n%s", logs)
	}
	if !strings.Contains(logs, `"reason":"wrong bearer token and address not in metrics.allow"`) {
		t.Errorf("no refusal reason in the log:\n%s", logs)
	}
}

// servePprof serves e on a loopback listener until the test ends. It
// returns the base URL, the cancel of Serve's context, and a channel that
// gives Serve's result once Serve returns.
func servePprof(t *testing.T, e *env) (base string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		ch <- e.srv.Serve(ctx, ln)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(time.Minute):
			t.Error("Serve did not return")
		}
	})
	return "http://" + ln.Addr().String(), cancel, ch
}

// TestPprofOutlastsServerTimeouts: through a real server whose
// write_timeout and read_timeout are shorter than the profile, the profile
// is neither cut nor ended early. (The trace handler takes the same
// deadline; the margin of 2 s after the profile is for a loaded machine.)
func TestPprofOutlastsServerTimeouts(t *testing.T) {
	skipIfProfiling(t, "test.cpuprofile")
	e := newEnv(t, withPprof(), func(c *Config, d *Deps) {
		c.WriteTimeout, c.ReadTimeout = 2*time.Second, time.Second
		d.Clock = SystemClock{}
	})
	base, _, _ := servePprof(t, e)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(base + "/debug/pprof/profile?seconds=3")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the profile: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("profile: %d %s", resp.StatusCode, body)
	}
	if _, d := parseProfile(t, body); d < 3*time.Second {
		t.Errorf("profile covers %v, want the 3s asked for", d)
	}
}

// TestPprofEndsAtShutdown: a long profile in flight ends when Serve's
// context does, and is sent as far as it got, so that it does not hold up
// the graceful shutdown (which would time out and fail).
func TestPprofEndsAtShutdown(t *testing.T) {
	skipIfProfiling(t, "test.cpuprofile")
	e := newEnv(t, withPprof(), func(c *Config, d *Deps) { d.Clock = SystemClock{} })
	base, cancel, done := servePprof(t, e)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(base + "/debug/pprof/profile?seconds=600")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The headers came: the profiler runs. Now shut down.
	if resp.StatusCode != 200 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	cancel()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the profile: %v", err)
	}
	parseProfile(t, body)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return")
	}
}

func TestPprofSeconds(t *testing.T) {
	for q, want := range map[string]time.Duration{
		"": 30 * time.Second, "seconds=": 30 * time.Second, "seconds=0": 30 * time.Second, "seconds=-1": 30 * time.Second,
		"seconds=x": 30 * time.Second, "seconds=NaN": 30 * time.Second, "seconds=5": 5 * time.Second,
		"seconds=0.25": 250 * time.Millisecond, "seconds=600": 10 * time.Minute, "seconds=601": -1, "seconds=Inf": -1,
	} {
		d, ok := pprofSeconds(httptest.NewRequest(http.MethodGet, "/?"+q, nil), 30*time.Second)
		if want < 0 {
			if ok {
				t.Errorf("%q: %v accepted", q, d)
			}
			continue
		}
		if !ok || d != want {
			t.Errorf("%q: %v %v, want %v", q, d, ok, want)
		}
	}
}

// TestPprofDebugListener: with server.debug.listen the profiler is served on
// its own listener only; the main listener answers 404 for it, and the
// debug listener serves nothing else.
func TestPprofDebugListener(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *Deps) { c.Debug = DebugConfig{Pprof: true, Listen: "127.0.0.1:0"} })
	base, cancel, done := servePprof(t, e)
	var dbg string
	for dbg == "" {
		for _, l := range logLines(t, e.logs.String(), "debug listener (pprof)", "") {
			dbg = "http://" + l["addr"].(string)
		}
		if dbg == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(dbg + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine ") {
		t.Fatalf("debug listener: %d %.200s", code, body)
	}
	if code, _ := get(base + "/debug/pprof/goroutine?debug=1"); code != http.StatusNotFound {
		t.Fatalf("main listener serves the profiler: %d", code)
	}
	if code, body := get(dbg + "/login"); code != http.StatusNotFound || !strings.Contains(body, "Request ID <code>") {
		t.Fatalf("debug listener serves pages, or its 404 has no request ID: %d %.300s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(dbg + "/debug/pprof/"); err == nil {
		t.Fatal("debug listener open after shutdown")
	}
}

func TestDebugConfig(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Debug: DebugConfig{Listen: "127.0.0.1:6060"}}, "debug.listen: only with debug.pprof: true"},
		{Config{Debug: DebugConfig{Pprof: true, Listen: "0.0.0.0:6060"}}, `debug.listen: "0.0.0.0:6060" is not a loopback address`},
		{Config{Debug: DebugConfig{Pprof: true, Listen: "6060"}}, "debug.listen: must be host:port"},
		{Config{Listen: "127.0.0.1:8080", Debug: DebugConfig{Pprof: true, Listen: "127.0.0.1:8080"}}, "debug.listen: must differ from listen"},
	} {
		tc.c.PublicURL = "https://sso.example.com"
		tc.c.SetDefaults()
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c.Debug, err, tc.want)
		}
	}
	for _, ok := range []Config{
		{Debug: DebugConfig{Pprof: true, Listen: "[::1]:6060"}},
		{Debug: DebugConfig{Pprof: true, Listen: "localhost:6060"}},
		{Debug: DebugConfig{Pprof: true, Listen: ":6060"}, Metrics: MetricsConfig{BearerToken: metricsToken}},
	} {
		ok.PublicURL = "https://sso.example.com"
		ok.SetDefaults()
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v refused: %v", ok.Debug, err)
		}
	}
}
