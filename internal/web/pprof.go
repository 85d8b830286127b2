package web

// The profiler (server.debug): Go's CPU profile, execution trace, named
// runtime profiles, command line and symbol look-up under /debug/pprof/,
// with the paths, query parameters and content types of net/http/pprof, so
// that `go tool pprof` and `go tool trace` work against Warden as against
// any Go server.
//
// net/http/pprof itself is not imported: its init registers its handlers
// on http.DefaultServeMux, unguarded, so that any server in the process
// that serves the default mux (a library's, or one added later) would
// expose the profiler to everyone. These handlers exist only on Warden's
// engine, only when server.debug.pprof is set, and only behind the
// access rule of /metrics (guarded, metrics_access.go).
//
// Differences from net/http/pprof: only GET is served (HEAD and POST get
// 405, or the unknown-path 404 for a refused caller); the named profiles
// do not take ?seconds= (net/http/pprof's delta profiles); ?seconds= of
// profile and trace is at most maxPprofDuration; and a profile or trace
// in flight ends early, and is sent as far as it got, when the server
// shuts down.

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// pprofPrefix is where the profiler is served.
const pprofPrefix = "/debug/pprof/"

// pprofProfiles are the runtime/pprof profiles served by name, with the
// descriptions the index page shows (net/http/pprof's).
var pprofProfiles = []struct{ name, desc string }{
	{"allocs", "A sampling of all past memory allocations"},
	{"block", "Stack traces that led to blocking on synchronization primitives"},
	{"goroutine", "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in the same format as an unrecovered panic."},
	{"heap", "A sampling of memory allocations of live objects. You can specify the gc GET parameter to run GC before taking the heap sample."},
	{"mutex", "Stack traces of holders of contended mutexes"},
	{"threadcreate", "Stack traces that led to the creation of new OS threads"},
}

// pprofOthers are the other endpoints, for the index page.
var pprofOthers = []struct{ name, desc string }{
	{"cmdline", "The command line invocation of the current program"},
	{"profile", "CPU profile. You can specify the duration in the seconds GET parameter (default 30). After you get the profile file, use the go tool pprof command to investigate the profile."},
	{"symbol", "Maps program counters (hexadecimal, separated by +, in the query string) to function names"},
	{"trace", "A trace of execution of the current program. You can specify the duration in the seconds GET parameter (default 1). After you get the trace file, use the go tool trace command to investigate the trace."},
}

// maxPprofDuration bounds ?seconds= of profile and trace: a typo (3000 for
// 30) would otherwise hold the CPU profiler, which runs one at a time.
const maxPprofDuration = 10 * time.Minute

// serveCtxKey carries the context given to Serve into every request's
// context (http.Server.BaseContext). Requests are not cancelled when it
// ends (they finish during the graceful shutdown), but a profile or trace
// in flight stops waiting then, so that it does not hold the shutdown up.
type serveCtxKey struct{}

// debugConnKey marks the requests of the debug listener (server.debug.listen).
type debugConnKey struct{}

// pprofRoutes are the profiler's routes when server.debug.pprof is set,
// each behind guarded: the rule of /metrics; with server.debug.listen, only
// for requests that came through that listener.
func (s *Server) pprofRoutes() []route {
	if !s.cfg.Debug.Pprof {
		return nil
	}
	g := func(h http.HandlerFunc) gin.HandlerFunc {
		guarded := s.guarded("pprof", h)
		if s.cfg.Debug.Listen == "" {
			return guarded
		}
		return func(c *gin.Context) {
			if c.Request.Context().Value(debugConnKey{}) == nil {
				s.renderError(c, http.StatusNotFound)
				return
			}
			guarded(c)
		}
	}
	rs := []route{
		{http.MethodGet, pprofPrefix, g(pprofIndex)},
		{http.MethodGet, pprofPrefix + "cmdline", g(pprofCmdline)},
		{http.MethodGet, pprofPrefix + "profile", g(s.pprofCPU)},
		{http.MethodGet, pprofPrefix + "symbol", g(pprofSymbol)},
		{http.MethodGet, pprofPrefix + "trace", g(s.pprofTrace)},
	}
	for _, p := range pprofProfiles {
		rs = append(rs, route{http.MethodGet, pprofPrefix + p.name, g(pprofNamed(p.name))})
	}
	return rs
}

// pprofIndex lists the profiles. The page has no inline style or script,
// so the Content-Security-Policy of every page applies to it unchanged.
func pprofIndex(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>/debug/pprof/</title></head>
<body>
<h1>/debug/pprof/</h1>
<p>Set debug=1 as a query parameter to export in legacy text format.</p>
<table>
<thead><tr><th>Count</th><th>Profile</th><th>Description</th></tr></thead>
<tbody>
`)
	for _, p := range pprofProfiles {
		count := 0
		if prof := pprof.Lookup(p.name); prof != nil {
			count = prof.Count()
		}
		fmt.Fprintf(&b, "<tr><td>%d</td><td><a href=\"%s?debug=1\">%s</a></td><td>%s</td></tr>\n",
			count, p.name, p.name, html.EscapeString(p.desc))
	}
	for _, p := range pprofOthers {
		fmt.Fprintf(&b, "<tr><td></td><td><a href=\"%s\">%s</a></td><td>%s</td></tr>\n",
			p.name, p.name, html.EscapeString(p.desc))
	}
	b.WriteString(`</tbody>
</table>
<p><a href="goroutine?debug=2">full goroutine stack dump</a></p>
</body>
</html>
`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

// pprofCmdline answers the command line, its arguments separated by NUL.
func pprofCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, strings.Join(os.Args, "\x00"))
}

// pprofSymbol maps the program counters in the query string (0x...,
// separated by +) to function names, in the format of net/http/pprof
// (what `go tool pprof` asks for a profile without symbols).
func pprofSymbol(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString("num_symbols: 1\n")
	for word := range strings.SplitSeq(r.URL.RawQuery, "+") {
		pc, _ := strconv.ParseUint(word, 0, 64)
		if pc == 0 {
			continue
		}
		if f := runtime.FuncForPC(uintptr(pc)); f != nil {
			fmt.Fprintf(&b, "%#x %s\n", pc, f.Name())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

// pprofNamed serves one runtime/pprof profile: gzipped protobuf (a
// download), or text with ?debug=1 or 2; ?gc=1 runs a collection before a
// heap profile.
func pprofNamed(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Has("seconds") {
			pprofError(w, http.StatusBadRequest, `"seconds" (a delta profile) is not served here: take two profiles and compare them with go tool pprof -diff_base`)
			return
		}
		p := pprof.Lookup(name)
		if p == nil {
			pprofError(w, http.StatusNotFound, "unknown profile")
			return
		}
		if gc, _ := strconv.Atoi(q.Get("gc")); gc > 0 && name == "heap" {
			runtime.GC()
		}
		debug, _ := strconv.Atoi(q.Get("debug"))
		pprofDownload(w, name, debug == 0)
		_ = p.WriteTo(w, debug)
	}
}

// pprofCPU records a CPU profile for ?seconds= (default 30) and sends it.
// The status and headers go out as soon as the profiler runs.
func (s *Server) pprofCPU(w http.ResponseWriter, r *http.Request) {
	d, ok := pprofSeconds(r, 30*time.Second)
	if !ok {
		pprofError(w, http.StatusBadRequest, fmt.Sprintf(`"seconds" must be at most %d`, int(maxPprofDuration.Seconds())))
		return
	}
	s.extendWriteDeadline(w, d)
	pprofDownload(w, "profile", true)
	// The profiler writes from its own goroutine; lw keeps that apart
	// from the flush of the headers.
	lw := &lockedWriter{w: w}
	if err := pprof.StartCPUProfile(lw); err != nil {
		pprofError(w, http.StatusInternalServerError, "could not start the CPU profile: "+err.Error())
		return
	}
	lw.flush()
	s.pprofWait(r, d)
	pprof.StopCPUProfile()
}

// pprofTrace records an execution trace for ?seconds= (default 1) and
// sends it as it is recorded.
func (s *Server) pprofTrace(w http.ResponseWriter, r *http.Request) {
	d, ok := pprofSeconds(r, time.Second)
	if !ok {
		pprofError(w, http.StatusBadRequest, fmt.Sprintf(`"seconds" must be at most %d`, int(maxPprofDuration.Seconds())))
		return
	}
	s.extendWriteDeadline(w, d)
	pprofDownload(w, "trace", true)
	if err := trace.Start(w); err != nil {
		pprofError(w, http.StatusInternalServerError, "could not start the trace: "+err.Error())
		return
	}
	s.pprofWait(r, d)
	trace.Stop()
}

// pprofSeconds reads ?seconds= as net/http/pprof does: absent, zero,
// negative or not a number means def. ok is false above maxPprofDuration.
func pprofSeconds(r *http.Request, def time.Duration) (d time.Duration, ok bool) {
	sec, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil || !(sec > 0) { // !(>) also catches NaN
		return def, true
	}
	if sec > maxPprofDuration.Seconds() {
		return 0, false
	}
	return time.Duration(sec * float64(time.Second)), true
}

// extendWriteDeadline lets a response that is written only after d still
// be written: the server's write_timeout counts from the start of the
// request, and would cut the download of any profile longer than it. It
// now counts from the end of d. (read_timeout does not matter: net/http
// lifts the read deadline once a GET's request is read. A ResponseWriter
// without deadlines, such as httptest's, is left as it is.)
func (s *Server) extendWriteDeadline(w http.ResponseWriter, d time.Duration) {
	// Connection deadlines are wall-clock time, not s.clock's.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + s.cfg.WriteTimeout))
}

// pprofWait waits d, less when the request ends (the client went away) or
// the server shuts down (serveCtxKey).
func (s *Server) pprofWait(r *http.Request, d time.Duration) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if serving, ok := r.Context().Value(serveCtxKey{}).(context.Context); ok {
		stop := context.AfterFunc(serving, cancel)
		defer stop()
	}
	s.clock.Sleep(ctx, d)
}

// pprofDownload sets the content type of a profile: binary, as a file
// named name, or text (debug=1 and 2 of the named profiles).
func pprofDownload(w http.ResponseWriter, name string, binary bool) {
	h := w.Header()
	if !binary {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

// pprofError answers a plain-text error, as net/http/pprof does.
func pprofError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Del("Content-Disposition")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

// lockedWriter serialises the CPU profiler's writes (from its goroutine)
// with the handler's flush.
type lockedWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// flush sends the status and headers now.
func (l *lockedWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = http.NewResponseController(l.w).Flush()
}
