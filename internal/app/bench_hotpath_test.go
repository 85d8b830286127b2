package app

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
)

// hotpathRole is the role every console request of BenchmarkConsoleCPU
// signs for (bob and carol hold it under the example rules).
const hotpathRole = "arn:aws:iam::111122223333:role/ReadOnly"

// BenchmarkConsoleCPU measures, in one run and in CPU time, what a console
// response costs against its floor, one RSA-2048 signature:
//
//   - rsa: one rsa.SignPKCS1v15 (SHA-256) with wardend's current key;
//   - saml: samlidp.AWSConsoleAuthn in-process (rules, assertion, C14N,
//     digest, the signature, serialization, base64, audit), same key and
//     rules, one goroutine;
//   - http: POST /aws/console served by wardend (app.Run) on the real
//     OpenLDAP and redis-server (the session read, the fresh directory
//     look-up, the rules and elevations, the response, the auto-post page,
//     the middleware, net/http). The clients (8 signed-in browsers) run in
//     a child process, so the CPU counted is wardend's own, GC included;
//     slapd and redis-server are other processes and not counted.
//
// The three alternate in four rounds so that a shared machine's drift
// falls on all of them alike. Reported per op: rsa-cpu-us, saml-cpu-us,
// http-cpu-us, and the ratios saml/rsa and http/rsa; ns/op is the wall
// time per console request at 8 clients.
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench ConsoleCPU -benchtime 2000x ./internal/app/
func BenchmarkConsoleCPU(b *testing.B) {
	o := portalOptions(b)
	o.Logger = nil // the access log would be the benchmark
	o.DataDir = b.TempDir()
	base := startApp(b, o)
	br := newBrowser(b, base)
	br.signIn("bob", os.Getenv("LDAP_USER_PW"))
	br.waitRoles()

	// (a) and (b) use wardend's own key ring and rules file.
	var kc keys.Config
	kc.SetDefaults()
	ring, err := keys.Open(filepath.Join(o.DataDir, "keys"), kc, keys.Options{})
	if err != nil {
		b.Fatal(err)
	}
	key := ring.Current().Key
	idp, bob, grant := hotpathIdP(b, o, ring)

	// (c): signed-in browsers for the child process.
	const clients = 8
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var sessions []benchClient
	for k := range clients {
		sessions = append(sessions, benchSignIn(b, client, base, benchUsers[k%len(benchUsers)]))
	}
	spec := hotpathSpec{Base: base, Role: hotpathRole}
	for _, s := range sessions {
		spec.Clients = append(spec.Clients, [2]string{s.cookie, s.token})
	}

	digest := sha256.Sum256([]byte("warden"))
	ctx := context.Background()
	authn := identity.Authn{Method: identity.MethodPassword, Time: time.Now()}
	var rsaCPU, samlCPU, httpCPU, httpWall time.Duration
	const rounds = 4
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if n == 0 {
			continue
		}
		c0 := processCPU()
		for range n {
			if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
		c1 := processCPU()
		for range n {
			if _, err := idp.AWSConsoleAuthn(ctx, bob, authn, grant, ""); err != nil {
				b.Fatal(err)
			}
		}
		c2 := processCPU()
		spec.N = n
		w0 := time.Now()
		runHotpathClients(b, spec)
		httpWall += time.Since(w0)
		c3 := processCPU()
		rsaCPU, samlCPU, httpCPU = rsaCPU+c1-c0, samlCPU+c2-c1, httpCPU+c3-c2
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(b.N) }
	b.ReportMetric(float64(httpWall.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(us(rsaCPU), "rsa-cpu-us")
	b.ReportMetric(us(samlCPU), "saml-cpu-us")
	b.ReportMetric(us(httpCPU), "http-cpu-us")
	b.ReportMetric(float64(samlCPU)/float64(rsaCPU), "saml/rsa")
	b.ReportMetric(float64(httpCPU)/float64(rsaCPU), "http/rsa")
}

// hotpathIdP builds a SAML IdP as wardend builds it (same key ring, rules
// file, Redis, audit to a discarding log), and returns bob as the
// directory has him and his grant of hotpathRole.
func hotpathIdP(b *testing.B, o Options, ring *keys.Ring) (*samlidp.IdP, identity.User, rolemap.Grant) {
	b.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(o.Admin.RulesFile)
	if err != nil {
		b.Fatal(err)
	}
	rs, err := rolemap.ParseYAML(raw)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := rolemap.Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	holder := &rolemap.Holder{}
	holder.Store(eng)
	st, err := store.Open(ctx, o.Redis, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	dir, err := ldap.New(o.Directory)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	bob, err := dir.Authenticate(ctx, "bob", os.Getenv("LDAP_USER_PW"))
	if err != nil {
		b.Fatal(err)
	}
	var grant rolemap.Grant
	for _, g := range eng.Evaluate(rolemap.InputFromUser(bob)).Grants {
		if g.RoleARN == hotpathRole {
			grant = g
		}
	}
	if grant.RoleARN == "" {
		b.Fatalf("bob does not hold %s under the example rules", hotpathRole)
	}
	cfg := o.SAML
	cfg.SetDefaults()
	idp, err := samlidp.New(cfg, samlidp.Deps{
		Keys:      ring,
		Rules:     holder,
		Replay:    store.NewSAMLReplay(st),
		Pending:   store.NewSAMLPending(st, nil),
		Audit:     audit.NewSlog(slog.New(slog.DiscardHandler), nil),
		PublicURL: "http://127.0.0.1",
		NameIDKey: []byte(strings.Repeat("k", 32)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(idp.Close)
	return idp, bob, grant
}

// hotpathSpec is the work of one child client process: N console POSTs
// spread over Clients (cookie header, CSRF token) against Base.
type hotpathSpec struct {
	Base, Role string
	N          int
	Clients    [][2]string
}

// hotpathEnv names the spec file of a child client process.
const hotpathEnv = "WARDEN_HOTPATH_CLIENT_SPEC"

// runHotpathClients runs spec in a child process (this test binary, see
// TestMain) and fails b if any request failed.
func runHotpathClients(b *testing.B, spec hotpathSpec) {
	b.Helper()
	raw, _ := json.Marshal(spec)
	file := filepath.Join(b.TempDir(), "spec.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), hotpathEnv+"="+file)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hotpath-ok "+strconv.Itoa(spec.N)) {
		b.Fatalf("console clients: %v\n%s", err, out)
	}
}

// hotpathClient is BenchmarkConsoleCPU's load generator, run by TestMain
// in a child process when hotpathEnv names a spec file: it sends the
// spec's console clicks and prints "hotpath-ok N" after N succeeded.
func hotpathClient(file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec hotpathSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: len(spec.Clients)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var (
		mu         sync.Mutex
		next, done int
		firstErr   error
	)
	fail := func(err error) {
		mu.Lock()
		firstErr = cmp.Or(firstErr, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, c := range spec.Clients {
		body := "role=" + url.QueryEscape(spec.Role) + "&csrf_token=" + url.QueryEscape(c[1])
		wg.Go(func() {
			for {
				mu.Lock()
				if next == spec.N || firstErr != nil {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodPost, spec.Base+"/aws/console", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Cookie", c[0])
				resp, err := client.Do(req)
				if err != nil {
					fail(err)
					return
				}
				page, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="SAMLResponse"`) {
					fail(fmt.Errorf("console: %d", resp.StatusCode))
					return
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("hotpath-ok %d\n", done)
	return nil
}

// processCPU is this process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
