package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/admin"
)

// BenchmarkSignIn measures the whole sign-in POST (form parse, CSRF,
// rate-limit counters, LDAP search + bind + groups, Redis session write)
// against the real OpenLDAP and redis-server, with 32 concurrent clients.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench SignIn -benchtime 20000x ./internal/app/
func BenchmarkSignIn(b *testing.B) {
	o := openLDAPOptions(b)
	o.Logger = nil // the access log would be the benchmark
	pw := os.Getenv("LDAP_USER_PW")
	base := startApp(b, o)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}

	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// each client gets its CSRF cookie and token once, as a browser would
	type creds struct{ cookie, token string }
	fetch := func() creds {
		resp, err := client.Get(base + "/login")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfRE.FindStringSubmatch(string(body))
		if m == nil || len(resp.Cookies()) == 0 {
			b.Fatal("no CSRF token or cookie")
		}
		var parts []string
		for _, c := range resp.Cookies() {
			parts = append(parts, c.Name+"="+c.Value)
		}
		return creds{strings.Join(parts, "; "), m[1]}
	}

	const clients = 32
	b.SetParallelism((clients + 1) / 2) // GOMAXPROCS is 2 here; SetParallelism multiplies
	var mu sync.Mutex
	var lat []time.Duration
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := fetch()
		i := int(n.Add(1))
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			u := users[i%len(users)]
			i++
			form := url.Values{"username": {u}, "password": {pw}, "csrf_token": {c.token}}.Encode()
			req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", c.cookie)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			local = append(local, time.Since(t0))
			if resp.StatusCode != http.StatusSeeOther {
				b.Errorf("sign-in as %s: %d", u, resp.StatusCode)
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "signins/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkDevStartup measures `wardend -dev` from start to serving: the
// in-process directory and Redis, key generation (on a fresh data_dir, as on
// first start) and the HTTP listener.
//
//	go test -run '^$' -bench DevStartup -benchtime 20x ./internal/app/
func BenchmarkDevStartup(b *testing.B) {
	for b.Loop() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		o := Options{Dev: &DevOptions{LDIF: devconfig.DevDirectoryLDIF, Rules: devconfig.ExampleRules}, Banner: io.Discard, Listener: ln, DataDir: b.TempDir(),
			Admin: admin.Config{Groups: []string{"admins"}}}
		o.Server.Listen = ln.Addr().String()
		o.Server.PublicURL = "http://" + ln.Addr().String()
		o.Server.SetDefaults()
		o.Session.SetDefaults()
		o.LoginLimits.SetDefaults()
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		o.Started = func(net.Addr) { close(ready) }
		done := make(chan error, 1)
		go func() { done <- Run(ctx, o) }()
		select {
		case <-ready:
		case err := <-done:
			b.Fatal(err)
		}
		resp, err := http.Get(o.Server.PublicURL + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("not serving: %v", err)
		}
		resp.Body.Close()
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
}
