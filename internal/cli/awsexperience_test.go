package cli

// Issue #13, the AWS experience of the CLI: partitions, durations and the
// cache, console, completion, ranking, "did you mean" and status, against
// fakes of the IdP (discovery, userinfo, token exchange) and of STS, which
// every AWS host is routed to.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/cli/credcache"
)

const (
	xProd    = "arn:aws:iam::111122223333:role/ReadOnly"  // prod, 1h
	xView    = "arn:aws:iam::111122223333:role/ViewOnly"  // prod, no session length set
	xPower   = "arn:aws:iam::444455556666:role/PowerUser" // staging, 8h
	xGov     = "arn:aws-us-gov:iam::777788889999:role/ViewOnly"
	xChina   = "arn:aws-cn:iam::123412341234:role/ReadOnly"
	xSAMLPro = "arn:aws:iam::111122223333:saml-provider/warden"
)

var xRoles = []Role{
	{RoleARN: xView, AccountID: "111122223333", AccountName: "prod", RoleName: "ViewOnly", Partition: "aws"},
	{RoleARN: xProd, AccountID: "111122223333", AccountName: "prod", RoleName: "ReadOnly", Partition: "aws", SessionSeconds: 3600},
	{RoleARN: xPower, AccountID: "444455556666", AccountName: "staging", RoleName: "PowerUser", Partition: "aws", SessionSeconds: 28800},
	{RoleARN: xGov, AccountID: "777788889999", AccountName: "govsandbox", RoleName: "ViewOnly", Partition: "aws-us-gov"},
	{RoleARN: xChina, AccountID: "123412341234", AccountName: "china", RoleName: "ReadOnly", Partition: "aws-cn"},
}

// xIdP is wardend as far as these tests need it: SAML only for the aws
// partition (as a wardend configured for it), web identity for any role,
// the roles of xRoles in userinfo, and no elevation API.
type xIdP struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int // token exchanges
}

func newXIdP(t *testing.T) *xIdP {
	f := &xIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q,"userinfo_endpoint":%q}`, f.srv.URL, f.srv.URL+"/oauth/token", f.srv.URL+"/oauth/userinfo")
	})
	mux.HandleFunc("/oauth/userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer AT-good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"sub": "bob", "roles": xRoles})
	})
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.n++
		f.mu.Unlock()
		p := r.PostForm
		w.Header().Set("Content-Type", "application/json")
		role := p.Get("resource")
		held := false
		for _, x := range xRoles {
			held = held || x.RoleARN == role
		}
		switch {
		case p.Get("subject_token") != "AT-good":
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"bad subject token"}`)
		case !held:
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_target","error_description":"the user does not hold the role"}`)
		case p.Get("requested_token_type") == tokenTypeIDToken:
			fmt.Fprintf(w, `{"access_token":"eyJ.eyJ.sig","issued_token_type":%q,"token_type":"N_A"}`, tokenTypeIDToken)
		case !strings.HasPrefix(role, "arn:aws:"):
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_target","error_description":"this role is in an AWS partition that Warden's SAML sign-in is not configured for; request an id_token instead"}`)
		default:
			x := `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion><saml:AttributeStatement>` +
				`<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>` + role + `,` + xSAMLPro + `</saml:AttributeValue></saml:Attribute>` +
				`</saml:AttributeStatement></saml:Assertion></samlp:Response>`
			fmt.Fprintf(w, `{"access_token":%q,"issued_token_type":%q,"token_type":"N_A"}`, b64(x), tokenTypeSAML2)
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *xIdP) exchanges() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

// xCall is one request that reached the fake STS.
type xCall struct {
	host, action, role, duration string
}

// xAWS is STS (and the console federation endpoint) for every AWS host:
// App.HTTP routes requests for *.amazonaws.com(.cn) and *.amazon.com
// here and records the host they were meant for.
type xAWS struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []xCall
	fed   []url.Values // getSigninToken queries
	now   func() time.Time
}

func newXAWS(t *testing.T, now func() time.Time) *xAWS {
	f := &xAWS{now: now}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Header.Get("X-Meant-For")
		if r.URL.Path == "/federation" {
			f.mu.Lock()
			f.fed = append(f.fed, r.URL.Query())
			f.mu.Unlock()
			fmt.Fprint(w, `{"SigninToken":"TOKEN"}`)
			return
		}
		r.ParseForm()
		p := r.PostForm
		f.mu.Lock()
		f.calls = append(f.calls, xCall{host: host, action: p.Get("Action"), role: p.Get("RoleArn"), duration: p.Get("DurationSeconds")})
		n := len(f.calls)
		f.mu.Unlock()
		secs := 3600
		if d, err := strconv.Atoi(p.Get("DurationSeconds")); err == nil {
			secs = d
		}
		arn, _ := strings.CutPrefix(p.Get("RoleArn"), "arn:")
		part, rest, _ := strings.Cut(arn, ":iam::")
		account, name, _ := strings.Cut(rest, ":role/")
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>ASIA%[2]d</AccessKeyId><SecretAccessKey>sk</SecretAccessKey><SessionToken>st</SessionToken><Expiration>%[3]s</Expiration></Credentials><AssumedRoleUser><Arn>arn:%[4]s:sts::%[5]s:assumed-role/%[6]s/bob</Arn><AssumedRoleId>A:bob</AssumedRoleId></AssumedRoleUser></%[1]sResult></%[1]sResponse>`,
			p.Get("Action"), n, f.now().Add(time.Duration(secs)*time.Second).UTC().Format(time.RFC3339), part, account, name)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *xAWS) RoundTrip(r *http.Request) (*http.Response, error) {
	h := r.URL.Hostname()
	if strings.HasSuffix(h, ".amazonaws.com") || strings.HasSuffix(h, ".amazonaws.com.cn") || strings.HasSuffix(h, ".amazon.com") ||
		strings.HasSuffix(h, ".amazonaws-us-gov.com") || strings.HasSuffix(h, ".amazonaws.cn") {
		r = r.Clone(r.Context())
		r.Header.Set("X-Meant-For", r.URL.Host)
		u, _ := url.Parse(f.srv.URL)
		r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, ""
	}
	return http.DefaultTransport.RoundTrip(r)
}

// take returns and forgets the STS calls so far.
func (f *xAWS) take() []xCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// xSetup is a signed-in App whose AWS traffic goes to the fake, with the
// roles listing fresh in the cache.
func xSetup(t *testing.T) (*App, *xIdP, *xAWS, *bytes.Buffer) {
	idp := newXIdP(t)
	now := time.Now()
	a, out, _ := signedInApp(t, idp.srv.URL, func() time.Time { return now })
	aws := newXAWS(t, a.Now)
	a.HTTP = &http.Client{Transport: aws, Timeout: 10 * time.Second}
	return a, idp, aws, out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// envOf parses `creds` env output.
func envOf(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
			m[k] = strings.Trim(v, "'")
		}
	}
	return m
}

// TestPartitions: a commercial, a GovCloud and a China role in one config:
// each goes to the regional STS of its own partition, in its region, by
// its path (SAML for the configured partition, web identity elsewhere).
func TestPartitions(t *testing.T) {
	a, _, aws, out := xSetup(t)
	for _, tc := range []struct {
		args                 []string
		host, action, region string
	}{
		{[]string{"--role", xProd}, "sts.us-east-1.amazonaws.com", "AssumeRoleWithSAML", "us-east-1"},
		{[]string{"--role", "prod/ReadOnly", "--region", "eu-west-1", "--refresh"}, "sts.eu-west-1.amazonaws.com", "AssumeRoleWithSAML", "eu-west-1"},
		{[]string{"--role", xGov}, "sts.us-gov-west-1.amazonaws.com", "AssumeRoleWithWebIdentity", "us-gov-west-1"},
		{[]string{"--role", "govsandbox/ViewOnly", "--region", "us-gov-east-1", "--refresh"}, "sts.us-gov-east-1.amazonaws.com", "AssumeRoleWithWebIdentity", "us-gov-east-1"},
		{[]string{"--role", xChina}, "sts.cn-north-1.amazonaws.com.cn", "AssumeRoleWithWebIdentity", "cn-north-1"},
	} {
		out.Reset()
		if err := run(a, append([]string{"creds"}, tc.args...)...); err != nil {
			t.Fatalf("creds %v: %v", tc.args, err)
		}
		calls := aws.take()
		if len(calls) != 1 || calls[0].host != tc.host || calls[0].action != tc.action {
			t.Errorf("creds %v: STS calls %+v, want one %s at %s", tc.args, calls, tc.action, tc.host)
		}
		if env := envOf(out.String()); env["AWS_REGION"] != tc.region {
			t.Errorf("creds %v: AWS_REGION %q, want %s", tc.args, env["AWS_REGION"], tc.region)
		}
	}

	// A region of another partition is refused, with the reason.
	for _, tc := range []struct{ role, region, want string }{
		{xProd, "us-gov-west-1", "--region us-gov-west-1 is a region of partition aws-us-gov, but role 111122223333/ReadOnly is in partition aws"},
		{xGov, "eu-west-1", "--region eu-west-1 is a region of partition aws, but role 777788889999/ViewOnly is in partition aws-us-gov"},
		{xProd, "mars-1", `--region "mars-1" is not a region name`},
	} {
		err := run(a, "creds", "--role", tc.role, "--region", tc.region)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--role %s --region %s: %v, want %q", tc.role, tc.region, err, tc.want)
		}
	}

	// SAML asked for a role of another partition: what to do, not the IdP's text.
	err := run(a, "creds", "--role", xGov, "--via", "saml")
	if err == nil || !strings.Contains(err.Error(), "use --via web-identity") || strings.Contains(err.Error(), "id_token") {
		t.Errorf("--via saml for a GovCloud role: %v", err)
	}

	// The config's partitions section: China's region, GovCloud by SAML
	// (here refused by the IdP, so only the attempt is checked).
	cfg, _ := a.LoadConfig()
	cfg.Partitions = map[string]PartitionConfig{"aws-cn": {Region: "cn-northwest-1"}}
	if err := a.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(a, "creds", "--role", xChina, "--refresh"); err != nil {
		t.Fatal(err)
	}
	if calls := aws.take(); len(calls) != 1 || calls[0].host != "sts.cn-northwest-1.amazonaws.com.cn" {
		t.Errorf("partitions.aws-cn.region: STS calls %+v", calls)
	}
	if env := envOf(out.String()); env["AWS_REGION"] != "cn-northwest-1" {
		t.Errorf("partitions.aws-cn.region: AWS_REGION %q", env["AWS_REGION"])
	}
	cfg.Partitions = map[string]PartitionConfig{"aws-cn": {Region: "us-east-1"}, "aws": {}, "aws-eu": {}}
	err = a.SaveConfig(cfg)
	for _, w := range []string{"partitions.aws-cn.region", "partitions.aws: aws is the configured partition", "partitions.aws-eu: unknown partition"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("bad partitions section: %v, want %q", err, w)
		}
	}
}

// TestProfileAddPartitions: `profile add --all` writes each role's own
// region, and --via for roles outside the configured partition.
func TestProfileAddPartitions(t *testing.T) {
	a, _, _, _ := xSetup(t)
	a.executable = func() (string, error) { return "/opt/warden/warden", nil }
	cfg, _ := a.LoadConfig()
	cfg.Region = "eu-central-1"
	if err := a.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config")
	if err := run(a, "profile", "add", "--all", "--config-file", file); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	got := string(b)
	for _, w := range []string{
		"[profile prod-ReadOnly]\ncredential_process = /opt/warden/warden credential-process --role " + xProd + "\nregion = eu-central-1\n",
		"[profile govsandbox-ViewOnly]\ncredential_process = /opt/warden/warden credential-process --role " + xGov + " --via web-identity\nregion = us-gov-west-1\n",
		"[profile china-ReadOnly]\ncredential_process = /opt/warden/warden credential-process --role " + xChina + " --via web-identity\nregion = cn-north-1\n",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("AWS config lacks\n%s\nin\n%s", w, got)
		}
	}
	// --region applies to the roles of its partition; for one role of
	// another partition it is refused.
	if err := run(a, "profile", "add", "--all", "--region", "us-gov-east-1", "--config-file", file); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	if got := string(b); !strings.Contains(got, xGov+" --via web-identity\nregion = us-gov-east-1\n") ||
		!strings.Contains(got, xProd+"\nregion = eu-central-1\n") {
		t.Errorf("--all --region us-gov-east-1:\n%s", got)
	}
	err := run(a, "profile", "add", "--role", xProd, "--profile", "p", "--region", "cn-north-1", "--config-file", file)
	if err == nil || !strings.Contains(err.Error(), "is in partition aws") {
		t.Errorf("--region cn-north-1 for an aws role: %v", err)
	}
}

// TestDurations: --duration is checked against the role's maximum and is
// part of the cache decision; --refresh mints anew.
func TestDurations(t *testing.T) {
	a, idp, aws, _ := xSetup(t)
	durations := func() []string {
		var d []string
		for _, c := range aws.take() {
			d = append(d, c.duration)
		}
		return d
	}
	// Over the role's maximum: refused before any exchange, with the reason.
	for _, role := range []string{"prod/ReadOnly", xProd} {
		err := run(a, "creds", "--role", role, "--duration", "12h")
		if err == nil || !strings.Contains(err.Error(), "allows sessions of at most 1h") {
			t.Errorf("--role %s --duration 12h: %v", role, err)
		}
	}
	// A role with no session length set: AWS's default hour.
	if err := run(a, "creds", "--role", "prod/ViewOnly", "--duration", "2h"); err == nil || !strings.Contains(err.Error(), "at most 1h") {
		t.Errorf("--duration 2h on a role without a session length: %v", err)
	}
	if n := idp.exchanges(); n != 0 {
		t.Errorf("%d exchanges for refused durations", n)
	}
	if d := durations(); len(d) != 0 {
		t.Errorf("STS called for refused durations: %q", d)
	}

	// staging/PowerUser allows 8h.
	steps := []struct {
		args []string
		want []string // DurationSeconds of the STS calls made
	}{
		{[]string{"--duration", "1h"}, []string{"3600"}},
		{[]string{"--duration", "1h"}, nil},               // cached
		{[]string{"--duration", "4h"}, []string{"14400"}}, // a 1 h credential is not a 4 h one
		{[]string{"--duration", "4h"}, nil},               // cached
		{nil, nil},                                        // no length asked: whatever is cached
		{[]string{"--duration", "1h"}, []string{"3600"}},  // nor a 4 h one a 1 h one
		{[]string{"--duration", "1h", "--refresh"}, []string{"3600"}},
		{[]string{"--refresh"}, []string{"28800"}},        // the role's own length
		{[]string{"--duration", "8h"}, nil},               // which is what was minted
		{[]string{"--duration", "7h30m"}, nil},            // within a tenth
		{[]string{"--duration", "7h"}, []string{"25200"}}, // not within a tenth
	}
	for i, s := range steps {
		args := append([]string{"creds", "--role", "staging/PowerUser"}, s.args...)
		if err := run(a, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := durations(); strings.Join(got, ",") != strings.Join(s.want, ",") {
			t.Errorf("step %d %v: STS calls with DurationSeconds %q, want %q", i, s.args, got, s.want)
		}
	}
	var c credsCache
	if ok, _ := readJSON(a.credsPath(credsKey(ViaSAML, xPower)), &c); !ok || c.Seconds != 25200 || c.Minted.IsZero() {
		t.Errorf("cache file: %+v", c)
	}
	// warden-credentials decides alike: the index entry of a command line
	// with --duration 2h answers while the file holds a 2 h credential.
	a.Args = []string{"credential-process", "--role", xPower, "--duration", "2h"}
	if err := run(a, a.Args...); err != nil {
		t.Fatal(err)
	}
	durations()
	if _, err := credcache.Lookup(a.CacheDir, a.ConfigDir, a.Args[1:], a.Now()); err != nil {
		t.Errorf("index after credential-process --duration 2h: %v", err)
	}
	if err := run(a, "creds", "--role", xPower, "--duration", "4h"); err != nil {
		t.Fatal(err)
	}
	if _, err := credcache.Lookup(a.CacheDir, a.ConfigDir, a.Args[1:], a.Now()); !errors.Is(err, credcache.ErrMiss) {
		t.Errorf("index with a 4 h credential in the file: %v, want a miss", err)
	}
	if err := run(a, append(a.Args, "--refresh")...); err != nil {
		t.Fatal(err)
	}
	if d := durations(); len(d) != 2 || d[0] != "14400" || d[1] != "7200" {
		t.Errorf("4h then 2h --refresh: DurationSeconds %q", d)
	}
	a.Args = nil
	// The config's session_seconds is a default, capped by the role.
	cfg, _ := a.LoadConfig()
	cfg.SessionSeconds = 7200
	if err := a.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := run(a, "creds", "--role", xProd, "--refresh"); err != nil {
		t.Fatal(err)
	}
	if d := durations(); len(d) != 1 || d[0] != "3600" {
		t.Errorf("session_seconds 7200 on a 1h role: DurationSeconds %q, want 3600", d)
	}
}

// TestConsoleDurationAndEndpoint: --duration reaches getSigninToken as
// SessionDuration; the federation endpoint comes from the flag or the
// config; unreachable endpoints make one line with advice.
func TestConsoleDurationAndEndpoint(t *testing.T) {
	a, _, aws, out := xSetup(t)
	if err := run(a, "console", "--role", "staging/PowerUser", "--duration", "2h", "--print"); err != nil {
		t.Fatal(err)
	}
	if calls := aws.take(); len(calls) != 1 || calls[0].duration != "7200" {
		t.Errorf("STS calls %+v", calls)
	}
	if len(aws.fed) != 1 || aws.fed[0].Get("SessionDuration") != "7200" || !strings.HasPrefix(out.String(), "https://signin.aws.amazon.com/federation?Action=login") {
		t.Errorf("federation %v, URL %s", aws.fed, out)
	}
	// A GovCloud role: its partition's endpoint and console.
	out.Reset()
	if err := run(a, "console", "--role", xGov, "--print"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "https://signin.amazonaws-us-gov.com/federation?Action=login") ||
		!strings.Contains(out.String(), url.QueryEscape("https://console.amazonaws-us-gov.com/")) {
		t.Errorf("GovCloud console URL %s", out)
	}
	// The config key, then the flag over it.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"SigninToken":"OTHER"}`) }))
	defer other.Close()
	cfg, _ := a.LoadConfig()
	cfg.FederationEndpoint = other.URL + "/federation"
	if err := a.SaveConfig(cfg); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(a, "console", "--role", xProd, "--print"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), other.URL+"/federation?Action=login") {
		t.Errorf("federation_endpoint: %s", out)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // a port nobody listens on
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"console", "--role", xProd, "--print", "--federation-endpoint", closed.URL + "/federation"},
			"cannot reach the AWS federation endpoint " + hostOf(closed.URL) + " (connection refused): check --federation-endpoint"},
		{[]string{"creds", "--role", xPower, "--refresh", "--sts-endpoint", closed.URL},
			"cannot reach AWS STS at " + hostOf(closed.URL) + " (connection refused): check your network"},
	} {
		err := run(a, tc.args...)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "dial tcp") ||
			strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), `Post "`) {
			t.Errorf("%v: %v, want %q…", tc.args, err, tc.want)
		}
	}
	// A federation endpoint that answers without a token.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	defer bad.Close()
	err := run(a, "console", "--role", xProd, "--print", "--federation-endpoint", bad.URL)
	if err == nil || !strings.Contains(err.Error(), "gave no sign-in token (HTTP 400)") || !strings.Contains(err.Error(), "--refresh") {
		t.Errorf("no sign-in token: %v", err)
	}
	if err := run(a, "console", "--role", xProd, "--destination", "https://evil.example.com/"); err == nil || !strings.Contains(err.Error(), "--destination") {
		t.Errorf("bad destination: %v", err)
	}
}

// TestRoleCompletion: cobra's __complete completes --role of every
// command that takes it from the cached roles, offline.
func TestRoleCompletion(t *testing.T) {
	a, idp, aws, out := xSetup(t)
	complete := func(args ...string) []string {
		t.Helper()
		out.Reset()
		root := Root(a)
		root.SetArgs(append([]string{"__complete"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("__complete %v: %v", args, err)
		}
		var vals []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.HasPrefix(l, ":") {
				if l != ":4" { // ShellCompDirectiveNoFileComp
					t.Errorf("__complete %v: directive %s", args, l)
				}
				continue
			}
			v, _, _ := strings.Cut(l, "\t")
			vals = append(vals, v)
		}
		return vals
	}
	// Nothing cached: no candidates, and no network.
	if got := complete("creds", "--role", ""); len(got) != 0 {
		t.Errorf("empty cache: %q", got)
	}
	if err := writeJSON(a.rolesPath(), rolesCache{IdPURL: idp.srv.URL, Fetched: a.Now().Add(-24 * time.Hour), Roles: xRoles}); err != nil {
		t.Fatal(err)
	}
	writeJSON(a.eligiblePath(), eligibleCache{IdPURL: idp.srv.URL, Roles: []EligibleRole{
		{RoleARN: "arn:aws:iam::111122223333:role/Admin", AccountID: "111122223333", AccountName: "prod", RoleName: "Admin"}}})
	for _, cmd := range [][]string{{"creds"}, {"credential-process"}, {"exec"}, {"console"}, {"profile", "add"}, {"elevate"}} {
		got := complete(append(cmd, "--role", "sta")...)
		if len(got) != 1 || got[0] != "staging/PowerUser" {
			t.Errorf("%v --role sta: %q", cmd, got)
		}
		got = complete(append(cmd, "--role", "4444")...)
		if len(got) != 1 || got[0] != "444455556666/PowerUser" {
			t.Errorf("%v --role 4444: %q", cmd, got)
		}
		got = complete(append(cmd, "-r", "arn:aws-us")...)
		if len(got) != 1 || got[0] != xGov {
			t.Errorf("%v -r arn:aws-us: %q", cmd, got)
		}
	}
	got := complete("creds", "--role", "PROD/")
	if strings.Join(got, " ") != "prod/ViewOnly prod/ReadOnly" {
		t.Errorf("creds --role PROD/: %q", got)
	}
	if got := complete("elevate", "--role", "prod/A"); len(got) != 1 || got[0] != "prod/Admin" {
		t.Errorf("elevate --role prod/A (eligible): %q", got)
	}
	if got := complete("creds", "--role", "prod/A"); len(got) != 0 {
		t.Errorf("creds --role prod/A offered an eligible role: %q", got)
	}
	if idp.exchanges() != 0 || len(aws.take()) != 0 {
		t.Error("completion reached the network")
	}
}

// TestRanking: word starts and prefixes first, then substrings, then
// scattered letters; ties in the listing's order.
func TestRanking(t *testing.T) {
	names := func(rs []Role) string {
		var s []string
		for _, r := range rs {
			s = append(s, roleSpec(r))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct{ q, want string }{
		{"pow", "staging/PowerUser prod/ViewOnly"},           // word start, then p…o…w scattered in "prod ViewOnly"
		{"ro", "prod/ReadOnly china/ReadOnly prod/ViewOnly"}, // "ro" inside "prod"
		{"only", "prod/ViewOnly prod/ReadOnly govsandbox/ViewOnly china/ReadOnly"},
		{"user", "staging/PowerUser"},
		{"weru", "staging/PowerUser"},              // substring
		{"stpu", "staging/PowerUser"},              // word starts across words
		{"prod ro", "prod/ReadOnly prod/ViewOnly"}, // every term; worst class ranks
		{"", "prod/ViewOnly prod/ReadOnly staging/PowerUser govsandbox/ViewOnly china/ReadOnly"},
		{"zzz", ""},
	} {
		if got := names(rankRoles(xRoles, tc.q)); got != tc.want {
			t.Errorf("rank %q: %s\n                 want %s", tc.q, got, tc.want)
		}
	}
	// In the picker: "pow" and Enter picks staging/PowerUser, although
	// prod/ViewOnly comes first in the listing.
	r, err := runPicker(&chunkReader{keys: "pow\r"}, &bytes.Buffer{}, xRoles)
	if err != nil || r.RoleARN != xPower {
		t.Errorf("picker pow: %s %v", r.RoleARN, err)
	}
}

// TestDidYouMean: a typo'd role names the likely ones.
func TestDidYouMean(t *testing.T) {
	a, _, aws, _ := xSetup(t)
	for _, tc := range []struct{ spec, want string }{
		{"prod/ReadOnyl", "you do not hold role prod/ReadOnyl; did you mean prod/ReadOnly?"},
		{"prd/ReadOnly", "you do not hold role prd/ReadOnly; did you mean prod/ReadOnly?"},
		{"staging/poweruser", "you do not hold role staging/poweruser; did you mean staging/PowerUser?"},
		{"prod/ViewOnyl", "you do not hold role prod/ViewOnyl; did you mean prod/ViewOnly?"},
		{"111122223333/ReadOnli", "you do not hold role 111122223333/ReadOnli; did you mean prod/ReadOnly?"},
		{"prod/Admin", "you do not hold role prod/Admin; `warden roles` lists yours"},
	} {
		err := run(a, "creds", "--role", tc.spec)
		if err == nil || err.Error() != tc.want {
			t.Errorf("--role %s: %v\n  want %s", tc.spec, err, tc.want)
		}
	}
	if len(aws.take()) != 0 {
		t.Error("STS called for an unknown role")
	}
}

// TestStatus: who is signed in, until when, and the cached credentials.
func TestStatus(t *testing.T) {
	a, idp, _, out := xSetup(t)
	now := a.Now()
	writeJSON(a.tokenPath(), tokenCache{IdPURL: idp.srv.URL, Issuer: idp.srv.URL, ClientID: ClientID, AccessToken: "AT-good",
		RefreshToken: "RT", Expiry: now.Add(5 * time.Minute), Username: "bob", SignedInAt: now.Add(-time.Hour), RefreshExpiry: now.Add(11 * time.Hour)})
	if err := run(a, "creds", "--role", "staging/PowerUser", "--duration", "2h"); err != nil {
		t.Fatal(err)
	}
	if err := run(a, "creds", "--role", xGov); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(a, "status", "--json"); err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !st.SignedIn || st.Username != "bob" || !st.ValidUntil.Equal(now.Add(11*time.Hour)) || !st.SignedInAt.Equal(now.Add(-time.Hour)) ||
		len(st.Credentials) != 2 {
		t.Fatalf("status %+v", st)
	}
	c0, c1 := st.Credentials[0], st.Credentials[1]
	if c0.Role != "govsandbox/ViewOnly" || c0.Via != ViaWebIdentity || !c0.Usable ||
		c1.Role != "staging/PowerUser" || c1.Seconds != 7200 || !c1.Expiration.Equal(now.Add(2*time.Hour).Truncate(time.Second)) {
		t.Errorf("credentials %+v", st.Credentials)
	}
	out.Reset()
	if err := run(a, "status"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Signed in as bob at " + idp.srv.URL, "Sign-in valid until", "(11h left)", "staging/PowerUser", "2h", "web-identity"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	// After logout: not signed in, nothing cached.
	os.Remove(a.tokenPath())
	os.RemoveAll(filepath.Join(a.CacheDir, "creds"))
	out.Reset()
	if err := run(a, "status", "--json"); err != nil {
		t.Fatal(err)
	}
	st = Status{}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.SignedIn || len(st.Credentials) != 0 || st.Credentials == nil {
		t.Errorf("signed out: %+v %v\n%s", st, err, out)
	}
}
