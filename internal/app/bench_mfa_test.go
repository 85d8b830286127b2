package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

// BenchmarkSignInTOTPConsole is BenchmarkSignInConsole with a second
// factor: mfa.required: all, every user with an authenticator app. One
// flow is what a browser does from a bookmark of a role: POST /login (the
// password; a session pending its second factor, answered with the page
// with the code field, whose form carries the CSRF token bound to the
// pending session), POST /mfa/totp with the code of the current time
// step (checked, the step marked used, the session replaced by a signed-in
// one), and the redirect's GET /aws/console?role=prod/ReadOnly (a signed
// one-role response). Run both side by side:
//
//	eval "$(deploy/testenv/up.sh)"
//	go test -run '^$' -bench 'SignIn(TOTP)?Console$' -benchtime 3000x ./internal/app/
//
// Each (user, time step) is accepted once, and the wardend clock is the
// real one, so the benchmark makes its own users in the real OpenLDAP
// (members of developers, like bob and carol), enough for every flow to
// use a step of a user that no flow has used: newTOTPBenchUsers. The
// extra metrics (cpu-ms/op and the others) are explained at benchCPU.
func BenchmarkSignInTOTPConsole(b *testing.B) {
	o := portalOptions(b)
	o.Logger = nil // the access log would be the benchmark
	o.MFA = mfa.Config{Required: mfa.RequiredAll}
	o.MFA.EncryptionKeyFile = totpBenchKeyFile(b)
	pw := os.Getenv("LDAP_USER_PW")

	// Every user takes up to 3 flows in 30 s (the steps before, at and
	// after the current one), 2 near the end of a step: b.N/2 users, and
	// some to spare, are never short of a fresh step. users[0] warms up.
	users := newTOTPBenchUsers(b, o, b.N/2+64+1)
	warm, pool := users[0], users[1:]

	base := startApp(b, o)
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Before the clock: the rules are compiled (the console answers) and
	// the response says how the user signed in.
	totpBenchWarmUp(b, base, warm, pw)

	free := make(chan *totpBenchUser, len(pool))
	for _, u := range pool {
		free <- u
	}
	const clients = 32
	b.SetParallelism((clients + 1) / 2)
	var lat latencies
	var waits atomic.Int64
	b.ResetTimer()
	cpu := readBenchCPU()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := loginPage(b, client, base)
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			u := takeTOTPBenchUser(free, len(pool), &waits)
			t0 := time.Now()
			err := totpBenchFlow(client, base, c, u, pw)
			free <- u
			if err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		lat.add(local)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cpu.report(b)
	if n := waits.Load(); n > 0 {
		b.Logf("clients waited %d times for a user with a fresh step", n)
	}
	lat.report(b, elapsed, "flows/s")
}

// totpBenchTarget is where every flow goes: the bookmark of a role.
const totpBenchTarget = "/aws/console?role=prod/ReadOnly"

var totpFormRE = regexp.MustCompile(`<form method="post" action="(/mfa/totp\?[^"]*)"`)

// totpBenchFlow is one flow (see BenchmarkSignInTOTPConsole) as u, whose
// step was picked; every request must succeed, or it is an error.
func totpBenchFlow(client *http.Client, base string, c benchClient, u *totpBenchUser, pw string) error {
	do := func(method, path, cookie string, form url.Values) (*http.Response, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Cookie", cookie)
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(page), nil
	}
	// the password, answered with the page that asks for the code
	resp, page, err := do(http.MethodPost, "/login", c.cookie, url.Values{"username": {u.name}, "password": {pw},
		"csrf_token": {c.token}, "next": {totpBenchTarget}})
	if err != nil {
		return err
	}
	cookie := cookieHeader(c.cookie, resp) // the pending session's
	token, action := csrfRE.FindStringSubmatch(page), totpFormRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || token == nil || action == nil {
		return fmt.Errorf("sign-in as %s: %d, want the code page", u.name, resp.StatusCode)
	}
	// the code of a step of u's that no flow has used (u.pick)
	resp, _, err = do(http.MethodPost, html.UnescapeString(action[1]), cookie, url.Values{"csrf_token": {token[1]},
		"next": {totpBenchTarget}, "code": {u.code}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != totpBenchTarget {
		return fmt.Errorf("%s: code of step %d: %d to %q, want %s", u.name, u.step, resp.StatusCode, resp.Header.Get("Location"), totpBenchTarget)
	}
	cookie = cookieHeader(cookie, resp) // the signed-in session's
	// the console
	resp, page, err = do(http.MethodGet, totpBenchTarget, cookie, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="SAMLResponse"`) {
		return fmt.Errorf("%s: console after the second factor: %d", u.name, resp.StatusCode)
	}
	return nil
}

// totpBenchWarmUp signs u in as a browser does, password and code, waits
// until the portal lists roles (the rules are compiled just after start),
// and checks that the console's SAML response says TOTP.
func totpBenchWarmUp(b *testing.B, base string, u *totpBenchUser, pw string) {
	b.Helper()
	br := newBrowser(b, base)
	_, body, _ := br.get("/login")
	_, body, _ = br.post("/login", url.Values{"username": {u.name}, "password": {pw},
		"csrf_token": {csrfRE.FindStringSubmatch(body)[1]}, "next": {"/"}})
	action := totpFormRE.FindStringSubmatch(body) // the password's answer is the code page
	if action == nil {
		b.Fatalf("warm-up: %s is not asked for a code:\n%s", u.name, body)
	}
	if !u.pick(time.Now()) {
		b.Fatal("warm-up: no step to use") // the user is new: it has three
	}
	status, _, hdr := br.post(html.UnescapeString(action[1]),
		url.Values{"csrf_token": {csrfRE.FindStringSubmatch(body)[1]}, "next": {"/"}, "code": {u.code}})
	if status != http.StatusSeeOther || hdr.Get("Location") != "/" {
		b.Fatalf("warm-up: the code: %d to %q", status, hdr.Get("Location"))
	}
	br.waitRoles()
	_, body, _ = br.get(totpBenchTarget)
	m := samlRespRe.FindStringSubmatch(body)
	if m == nil {
		b.Fatalf("warm-up: no SAMLResponse:\n%s", body)
	}
	xml, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		b.Fatal(err)
	}
	for _, want := range []string{"https://refeds.org/profile/mfa", "PrincipalTag:WardenAuth", ">totp<"} {
		if !strings.Contains(string(xml), want) {
			b.Fatalf("warm-up: the SAML response lacks %q:\n%s", want, xml)
		}
	}
}

// totpBenchKeyFile writes a new MFA encryption key to a file of the
// benchmark's own (wardend and totpBenchUsers read it).
func totpBenchKeyFile(b *testing.B) string {
	k := make([]byte, mfa.KeySize)
	rand.Read(k)
	path := filepath.Join(b.TempDir(), "mfa.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// totpBenchUser is a directory user of the benchmark with a TOTP factor
// of known secret. last is the last step a flow used (steps go up: each
// is accepted once); step and code are the ones the flow that holds the
// user gives (a user is in one flow at a time).
type totpBenchUser struct {
	name, id, secret string
	last, step       int64
	code             string
}

// totpBenchMargin: a step is chosen so that its code is accepted from the
// moment it is chosen to this long after (a flow takes much less).
const totpBenchMargin = 5 * time.Second

func totpStep(t time.Time) int64 { return t.Unix() / int64(mfa.Period/time.Second) }

func (u *totpBenchUser) codeOf(step int64) string {
	code, err := totp.GenerateCodeCustom(u.secret, time.Unix(step*int64(mfa.Period/time.Second), 0),
		totp.ValidateOpts{Period: uint(mfa.Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		panic(err)
	}
	return code
}

// pick chooses u's next step at now, and reports whether there is one: a
// step after last, accepted (within mfa.Skew of the current step) from now
// to now+totpBenchMargin, whose code is not also the code of a step near
// it (wardend uses up the first step of its window whose code matches;
// one in a million codes repeats within two steps). It sets step and
// code, and uses the step up.
func (u *totpBenchUser) pick(now time.Time) bool {
	for s := max(u.last+1, totpStep(now.Add(totpBenchMargin))-mfa.Skew); s <= totpStep(now)+mfa.Skew; s++ {
		code := u.codeOf(s)
		if code == u.codeOf(s-2) || code == u.codeOf(s-1) || code == u.codeOf(s+1) || code == u.codeOf(s+2) {
			continue
		}
		u.last, u.step, u.code = s, s, code
		return true
	}
	return false
}

// takeTOTPBenchUser takes the next user (round robin) that has a fresh
// step, picked; when none has (too few users for the run), it waits for
// the next step.
func takeTOTPBenchUser(free chan *totpBenchUser, n int, waits *atomic.Int64) *totpBenchUser {
	for {
		for range n {
			u := <-free
			if u.pick(time.Now()) {
				return u
			}
			free <- u
		}
		waits.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

// newTOTPBenchUsers makes n users in the real OpenLDAP (inetOrgPerson under
// LDAP_USERS_DN with the test password, members of cn=developers, which the
// example rules give prod/ReadOnly), each with a TOTP factor of its own
// secret, stored by an mfa.Factors on wardend's Redis prefix and key. They
// go, with their factors, when the benchmark ends.
func newTOTPBenchUsers(b *testing.B, o Options, n int) []*totpBenchUser {
	b.Helper()
	env := testenv.Require(b, "LDAP_URL", "LDAP_ADMIN_DN", "LDAP_ADMIN_PW", "LDAP_USERS_DN", "LDAP_GROUPS_DN", "LDAP_USER_PW")
	ctx := context.Background()
	t0 := time.Now()
	conn, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		b.Fatal(err)
	}
	run := make([]byte, 4)
	rand.Read(run)
	users := make([]*totpBenchUser, n)
	dns := make([]string, n)
	group := "cn=developers," + env["LDAP_GROUPS_DN"]
	b.Cleanup(func() { removeTOTPBenchUsers(b, env, group, dns) })
	for i := range users {
		name := fmt.Sprintf("totpbench-%x-%d", run, i)
		dn := "uid=" + name + "," + env["LDAP_USERS_DN"]
		req := goldap.NewAddRequest(dn, nil)
		req.Attribute("objectClass", []string{"inetOrgPerson"})
		req.Attribute("uid", []string{name})
		req.Attribute("cn", []string{"Bench " + name})
		req.Attribute("sn", []string{"Bench"})
		req.Attribute("displayName", []string{"Bench " + name})
		req.Attribute("mail", []string{name + "@example.org"})
		req.Attribute("userPassword", []string{env["LDAP_USER_PW"]}) // hashed by ppolicy (olcPPolicyHashCleartext)
		if err := conn.Add(req); err != nil {
			b.Fatalf("add %s: %v", dn, err)
		}
		dns[i] = dn
		secret := make([]byte, 20)
		rand.Read(secret)
		users[i] = &totpBenchUser{name: name, secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)}
	}
	const batch = 500
	for i := 0; i < n; i += batch {
		mod := goldap.NewModifyRequest(group, nil)
		mod.Add("member", dns[i:min(i+batch, n)])
		if err := conn.Modify(mod); err != nil {
			b.Fatalf("add members to %s: %v", group, err)
		}
	}

	// Their IDs as wardend sees them, and their factors.
	dir, err := ldap.New(o.Directory)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	st, err := store.Open(ctx, o.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	key, err := mfa.LoadKey(o.MFA.EncryptionKeyFile, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	factors, err := mfa.New(st, key, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		defer st.Close()
		for _, u := range users {
			if u.id != "" {
				_, _ = factors.Reset(ctx, u.id)
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				u := users[i]
				user, err := dir.Lookup(ctx, u.name)
				if err != nil {
					errs <- fmt.Errorf("look up %s: %w", u.name, err)
					return
				}
				u.id = user.ID
				if _, err := factors.ImportTOTP(ctx, u.id, "Bench authenticator", u.secret); err != nil {
					errs <- fmt.Errorf("TOTP factor of %s: %w", u.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("%d users with a TOTP factor made in %v", n, time.Since(t0).Round(time.Millisecond))
	return users
}

// removeTOTPBenchUsers removes the benchmark's users from the group and
// the directory.
func removeTOTPBenchUsers(b *testing.B, env map[string]string, group string, dns []string) {
	conn, err := goldap.DialURL(env["LDAP_URL"])
	if err != nil {
		b.Error(err)
		return
	}
	defer conn.Close()
	if err := conn.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		b.Error(err)
		return
	}
	var made []string
	for _, dn := range dns {
		if dn != "" {
			made = append(made, dn)
		}
	}
	const batch = 500
	for i := 0; i < len(made); i += batch {
		mod := goldap.NewModifyRequest(group, nil)
		mod.Delete("member", made[i:min(i+batch, len(made))])
		if err := conn.Modify(mod); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchAttribute) {
			b.Errorf("remove members from %s: %v", group, err)
		}
	}
	for _, dn := range made {
		if err := conn.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			b.Errorf("delete %s: %v", dn, err)
		}
	}
}

// benchCPU is CPU time used so far by this process (wardend and the
// benchmark's HTTP clients), by the test environment's slapd and
// redis-server (LDAP_PID, REDIS_PID; zero when not readable), and by the
// whole machine (busy and total, from /proc/stat). slapd and redis-server
// serve whatever else runs against them meanwhile; what the machine did
// besides these three is the other load of a shared machine.
type benchCPU struct{ self, slapd, redis, busy, total time.Duration }

func readBenchCPU() benchCPU {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := benchCPU{
		self:  time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		slapd: procCPU(os.Getenv("LDAP_PID")),
		redis: procCPU(os.Getenv("REDIS_PID")),
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		// cpu user nice system idle iowait irq softirq steal
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line) {
			n, _ := strconv.ParseInt(f, 10, 64)
			d := ticks(n)
			switch i {
			case 0:
			case 4, 5: // idle, iowait
				c.total += d
			default:
				if i <= 8 {
					c.busy += d
					c.total += d
				}
			}
		}
	}
	return c
}

// ticks converts clock ticks (USER_HZ, 100 on Linux) to a duration.
func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / 100 }

// procCPU is utime + stime of a process, from /proc/PID/stat.
func procCPU(pid string) time.Duration {
	if pid == "" {
		return 0
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ticks(ut + st)
}

// report adds CPU milliseconds per op since c (this process, slapd,
// redis-server) and the share of the machine's CPU that other processes
// used meanwhile (other-cpu-%: high means the run competed for the cores).
func (c benchCPU) report(b *testing.B) {
	now := readBenchCPU()
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(per(now.self-c.self), "cpu-ms/op")
	if c.slapd > 0 {
		b.ReportMetric(per(now.slapd-c.slapd), "slapd-ms/op")
	}
	if c.redis > 0 {
		b.ReportMetric(per(now.redis-c.redis), "redis-ms/op")
	}
	if total := now.total - c.total; total > 0 {
		other := (now.busy - c.busy) - (now.self - c.self) - (now.slapd - c.slapd) - (now.redis - c.redis)
		b.ReportMetric(max(float64(other)/float64(total)*100, 0), "other-cpu-%")
	}
}
