package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/store"
)

// BenchmarkConsoleElevated compares a console click for a role held
// through an active elevation with one for a standing role, side by side
// in one run: the same signed-in users (bob and carol, developers under
// the example rules), the same 32 clients, rounds of each kind in turn
// (standing, elevated, standing, …) so that both see the same machine.
// The elevated click reads the user's active elevations from Redis (one
// round trip), caps the SessionDuration and adds two session tags.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench ConsoleElevated -benchtime 1x ./internal/app/
func BenchmarkConsoleElevated(b *testing.B) {
	o := portalOptions(b)
	o.Logger = nil
	o.Redis.KeyPrefix = "warden-apptest-bench-elev:"
	base := startApp(b, o)
	br := newBrowser(b, base)
	br.signIn("bob", os.Getenv("LDAP_USER_PW"))
	br.waitRoles()

	// An approved hour for each user, straight in the store (the pages'
	// flow is TestElevationConsole's).
	ctx := context.Background()
	d, err := ldap.New(o.Directory)
	must(b, err)
	defer d.Close()
	st, err := store.Open(ctx, o.Redis, slog.New(slog.DiscardHandler))
	must(b, err)
	defer st.Close()
	els := store.NewElevations(st, nil)
	const admin = "arn:aws:iam::111122223333:role/AdministratorAccess"
	for _, name := range benchUsers {
		u, err := d.Lookup(ctx, name)
		must(b, err)
		e, err := els.Create(ctx, store.ElevationRequest{UserID: u.ID, Username: name, Roles: []string{admin}, Seconds: 3600,
			Reason: "INC-1 benchmark", Deadline: time.Now().Add(time.Hour)})
		must(b, err)
		_, err = els.Decide(ctx, e.ID, "bench-approver", "bench", true, "")
		must(b, err)
		b.Cleanup(func() { _, _ = els.End(context.Background(), e.ID, "bench") })
	}

	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const clients = 32
	sessions := make([]benchClient, clients)
	for i := range sessions {
		sessions[i] = benchSignIn(b, client, base, benchUsers[i%len(benchUsers)])
	}
	click := func(role string, perClient int) (time.Duration, []time.Duration) {
		form := "role=" + url.QueryEscape(role) + "&csrf_token="
		var wg sync.WaitGroup
		var lat latencies
		start := time.Now()
		for _, c := range sessions {
			wg.Go(func() {
				local := make([]time.Duration, 0, perClient)
				body := form + url.QueryEscape(c.token)
				for range perClient {
					req, _ := http.NewRequest(http.MethodPost, base+"/aws/console", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Cookie", c.cookie)
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					page, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(t0))
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="SAMLResponse"`) {
						b.Errorf("console %s: %d", role, resp.StatusCode)
						return
					}
				}
				lat.add(local)
			})
		}
		wg.Wait()
		return time.Since(start), lat.all
	}
	click(admin, 5) // warm up both paths
	click("arn:aws:iam::111122223333:role/ReadOnly", 5)
	const rounds, perClient = 6, 30
	var standing, elevated time.Duration
	var n int
	b.ResetTimer()
	for range b.N {
		for range rounds {
			d, _ := click("arn:aws:iam::111122223333:role/ReadOnly", perClient)
			standing += d
			d, _ = click(admin, perClient)
			elevated += d
			n += clients * perClient
		}
	}
	b.StopTimer()
	sr, er := float64(n)/standing.Seconds(), float64(n)/elevated.Seconds()
	b.ReportMetric(sr, "standing-clicks/s")
	b.ReportMetric(er, "elevated-clicks/s")
	b.ReportMetric(er/sr*100, "elevated-%-of-standing")
}

// benchSignIn signs user in as a browser does and returns its session
// cookie and the CSRF token of its portal page.
func benchSignIn(b *testing.B, client *http.Client, base, user string) benchClient {
	c := loginPage(b, client, base)
	form := url.Values{"username": {user}, "password": {os.Getenv("LDAP_USER_PW")}, "csrf_token": {c.token}}.Encode()
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", c.cookie)
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign-in as %s: %v", user, err)
	}
	resp.Body.Close()
	c.cookie = cookieHeader(c.cookie, resp)
	req, _ = http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Cookie", c.cookie)
	if resp, err = client.Do(req); err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.token = csrfRE.FindStringSubmatch(string(page))[1]
	return c
}

// BenchmarkElevationPages measures a request and a decision as wardend
// serves them, through the pages on the real OpenLDAP and Redis: bob's
// POST /elevations (a fresh directory look-up, the rules, the checks, the
// request stored and indexed, audit) and alice's POST
// /elevations/:id/approve (a fresh look-up, her approver group, the
// one-decision script, the active index, audit), one after the other,
// each timed from the client on loopback.
//
//	go test -run '^$' -bench ElevationPages -benchtime 1000x ./internal/app/
func BenchmarkElevationPages(b *testing.B) {
	o, secrets := elevationOptions(b, "bob", "alice")
	o.Logger = nil
	o.Elevation.Limits.MaxFailuresPerUser = 1 << 30 // every request counts
	o.Elevation.Limits.MaxFailuresPerIP = 1 << 30
	base := startApp(b, o)
	pw := os.Getenv("LDAP_USER_PW")
	bob, alice := newBrowser(b, base), newBrowser(b, base)
	bob.signIn("bob", pw)
	alice.signIn("alice", pw)
	var bobToken, aliceToken string
	stepUpTOTP(b, bob, secrets["bob"], func() (int, string, http.Header) {
		code, page, hdr := bob.get("/elevations/new?role=" + url.QueryEscape(elevAdminARN))
		if m := csrfRE.FindStringSubmatch(page); m != nil {
			bobToken = m[1]
		}
		return code, page, hdr
	})
	var reqT, decT []time.Duration
	for i := range b.N {
		t0 := time.Now()
		code, _, hdr := bob.post("/elevations", url.Values{"csrf_token": {bobToken}, "role": {elevAdminARN},
			"duration": {"15m"}, "reason": {"INC-" + strconv.Itoa(i)}})
		t1 := time.Now()
		id := strings.TrimPrefix(strings.SplitN(hdr.Get("Location"), "?", 2)[0], "/elevations/")
		if code != http.StatusSeeOther || len(id) != 32 {
			b.Fatalf("request: %d to %q", code, hdr.Get("Location"))
		}
		var t2 time.Time
		stepUpTOTP(b, alice, secrets["alice"], func() (int, string, http.Header) {
			if aliceToken == "" {
				_, page, _ := alice.get("/")
				aliceToken = csrfRE.FindStringSubmatch(page)[1]
			}
			t1 = time.Now()
			code, body, hdr := alice.post("/elevations/"+id+"/approve", url.Values{"csrf_token": {aliceToken}})
			t2 = time.Now()
			if code == http.StatusSeeOther && strings.HasPrefix(hdr.Get("Location"), "/mfa") {
				aliceToken = "" // the factor replaces the session, and its token
			} else if code != http.StatusSeeOther {
				b.Fatalf("approve: %d\n%s", code, body)
			}
			return code, body, hdr
		})
		reqT, decT = append(reqT, t1.Sub(t0)), append(decT, t2.Sub(t1))
		if i == 0 { // the first round paid for alice's step-up
			reqT, decT = reqT[:0], decT[:0]
		}
	}
	b.StopTimer()
	if len(reqT) > 0 {
		benchQuantiles(b, "request", reqT)
		benchQuantiles(b, "decide", decT)
	}
}

func benchQuantiles(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
}
