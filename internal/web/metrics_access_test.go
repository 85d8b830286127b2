package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

const (
	metricsToken   = "s3cr3t-metrics-token_0123456789"
	otherToken     = "s3cr3t-metrics-token_0123456780" // same length, last byte differs
	metricsSeries  = "warden_login_total{outcome=\"success\"}"
	remoteClient   = "198.51.100.7"
	loopbackClient = "127.0.0.1"
)

func withMetrics(m MetricsConfig) envOption {
	return func(c *Config, _ *Deps) { c.Metrics = m }
}

func withProxies(p ...string) envOption {
	return func(c *Config, _ *Deps) { c.TrustedProxies = p }
}

// scrape sends method /metrics from peer with the given headers (name,
// value pairs).
func scrape(t *testing.T, e *env, method, peer string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/metrics", nil)
	req.RemoteAddr = peer
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func TestMetricsAccess(t *testing.T) {
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
		// Default: loopback only.
		{name: "loopback v4", peer: "127.0.0.1:40000", want: 200},
		{name: "loopback v4 other address", peer: "127.0.0.53:40000", want: 200},
		{name: "loopback v6", peer: "[::1]:40000", want: 200},
		{name: "loopback v4-mapped", peer: "[::ffff:127.0.0.1]:40000", want: 200},
		{name: "remote refused", peer: remoteClient + ":40000", want: 404},
		{name: "private address refused", peer: "10.1.2.3:40000", want: 404},
		{name: "remote spoofing X-Forwarded-For", peer: remoteClient + ":40000", hdr: []string{"X-Forwarded-For", loopbackClient}, want: 404},
		{name: "remote HEAD refused", method: http.MethodHead, peer: remoteClient + ":40000", want: 404},
		{name: "remote POST refused, not 405", method: http.MethodPost, peer: remoteClient + ":40000", want: 404},
		{name: "loopback POST is 405", method: http.MethodPost, peer: "127.0.0.1:40000", want: 405},
		// Behind trusted proxies the real client IP counts.
		{name: "trusted proxy, remote client", opts: []envOption{withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9"}, want: 404},
		{name: "trusted proxy, loopback client", opts: []envOption{withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", loopbackClient}, want: 200},
		{name: "trusted proxy, spoofed loopback left of the client", opts: []envOption{withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", "127.0.0.1, 203.0.113.9"}, want: 404},
		{name: "trusted proxy on loopback, remote client", opts: []envOption{withProxies("127.0.0.1")}, peer: "127.0.0.1:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9"}, want: 404},
		{name: "trusted proxy on loopback, direct scrape", opts: []envOption{withProxies("127.0.0.1")}, peer: "127.0.0.1:40000", want: 200},
		// A proxy on loopback that is not in trusted_proxies: its requests
		// look local, but its forwarding headers give it away.
		{name: "untrusted local proxy, X-Forwarded-For", peer: "127.0.0.1:40000", hdr: []string{"X-Forwarded-For", "203.0.113.9"}, want: 404},
		{name: "untrusted local proxy, Forwarded", peer: "127.0.0.1:40000", hdr: []string{"Forwarded", "for=203.0.113.9"}, want: 404},
		{name: "untrusted local proxy, X-Real-IP", peer: "[::1]:40000", hdr: []string{"X-Real-IP", "203.0.113.9"}, want: 404},
		// allow replaces the default.
		{name: "custom allow, inside", opts: []envOption{withMetrics(MetricsConfig{Allow: []string{"10.9.0.0/16"}})}, peer: "10.9.1.1:40000", want: 200},
		{name: "custom allow, loopback no longer", opts: []envOption{withMetrics(MetricsConfig{Allow: []string{"10.9.0.0/16"}})}, peer: "127.0.0.1:40000", want: 404},
		{name: "custom allow, bare IP", opts: []envOption{withMetrics(MetricsConfig{Allow: []string{"192.0.2.10"}})}, peer: "192.0.2.10:40000", want: 200},
		// Bearer token.
		{name: "token right", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token scheme case-insensitive", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "bearer " + metricsToken}, want: 200},
		{name: "token wrong", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + otherToken}, want: 404},
		{name: "token prefix", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken[:20]}, want: 404},
		{name: "token with extra", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken + "x"}, want: 404},
		{name: "token empty", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer "}, want: 404},
		{name: "token as Basic", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", "Basic " + metricsToken}, want: 404},
		{name: "token bare", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", hdr: []string{"Authorization", metricsToken}, want: 404},
		{name: "token missing", opts: []envOption{withMetrics(token)}, peer: remoteClient + ":40000", want: 404},
		{name: "allow none: loopback needs the token", opts: []envOption{withMetrics(token)}, peer: "127.0.0.1:40000", want: 404},
		{name: "token via trusted proxy", opts: []envOption{withMetrics(token), withProxies("10.0.0.0/8")}, peer: "10.0.0.2:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token via untrusted proxy", opts: []envOption{withMetrics(tokenAndLoopback)}, peer: "127.0.0.1:40000",
			hdr: []string{"X-Forwarded-For", "203.0.113.9", "Authorization", "Bearer " + metricsToken}, want: 200},
		{name: "token and loopback: loopback without token", opts: []envOption{withMetrics(tokenAndLoopback)}, peer: "127.0.0.1:40000", want: 200},
		{name: "token and loopback: remote without token", opts: []envOption{withMetrics(tokenAndLoopback)}, peer: remoteClient + ":40000", want: 404},
		{name: "no token configured: any bearer refused", peer: remoteClient + ":40000", hdr: []string{"Authorization", "Bearer " + metricsToken}, want: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			rec := scrape(t, e, method, tc.peer, tc.hdr...)
			if rec.Code != tc.want {
				t.Fatalf("%s /metrics from %s %q: %d, want %d", method, tc.peer, tc.hdr, rec.Code, tc.want)
			}
			served := strings.Contains(rec.Body.String(), "warden_login_total")
			if method == http.MethodGet && served != (tc.want == 200) {
				t.Errorf("metrics in body = %v with status %d", served, rec.Code)
			}
		})
	}
}

// TestMetricsRefusalLooksLikeNotFound: a refused scrape is answered exactly
// like an unknown path (status, headers, page), so that it does not reveal
// the endpoint.
func TestMetricsRefusalLooksLikeNotFound(t *testing.T) {
	e := newEnv(t, withMetrics(MetricsConfig{BearerToken: metricsToken}))
	for _, accept := range []string{"text/html", "application/json"} {
		get := func(path, method string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, path, nil)
			req.RemoteAddr = remoteClient + ":40000"
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			return rec
		}
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			refused, unknown := get("/metrics", method), get("/no-such-page", method)
			if refused.Code != http.StatusNotFound || unknown.Code != http.StatusNotFound {
				t.Fatalf("%s %s: /metrics %d, unknown %d", accept, method, refused.Code, unknown.Code)
			}
			rb := strings.ReplaceAll(refused.Body.String(), refused.Header().Get("X-Request-ID"), "RID")
			ub := strings.ReplaceAll(unknown.Body.String(), unknown.Header().Get("X-Request-ID"), "RID")
			if rb != ub {
				t.Errorf("%s %s: bodies differ:\n%s\n---\n%s", accept, method, rb, ub)
			}
			rh, uh := refused.Header().Clone(), unknown.Header().Clone()
			rh.Del("X-Request-ID")
			uh.Del("X-Request-ID")
			if !reflect.DeepEqual(rh, uh) {
				t.Errorf("%s %s: headers differ:\n%v\n%v", accept, method, rh, uh)
			}
		}
	}
}

// TestMetricsTokenNotKeptOrLogged: the server keeps only the token's hash,
// and neither the right nor a wrong token reaches the log, while the
// refusal itself is logged with its reason.
func TestMetricsTokenNotKeptOrLogged(t *testing.T) {
	e := newEnv(t, withMetrics(MetricsConfig{BearerToken: metricsToken}))
	if e.srv.cfg.Metrics.BearerToken != "" {
		t.Error("the server keeps the bearer token in its config")
	}
	if s := strings.ToLower(reflectDump(e.srv.metricsGate)); strings.Contains(s, strings.ToLower(metricsToken)) {
		t.Error("the gate keeps the bearer token")
	}
	if rec := scrape(t, e, http.MethodGet, remoteClient+":1", "Authorization", "Bearer "+metricsToken); rec.Code != 200 {
		t.Fatalf("right token: %d", rec.Code)
	}
	if rec := scrape(t, e, http.MethodGet, remoteClient+":1", "Authorization", "Bearer "+otherToken); rec.Code != 404 {
		t.Fatalf("wrong token: %d", rec.Code)
	}
	if rec := scrape(t, e, http.MethodPost, remoteClient+":1", "Authorization", "Bearer "+otherToken); rec.Code != 404 {
		t.Fatalf("wrong token, POST: %d", rec.Code)
	}
	logs := e.logs.String()
	for _, secret := range []string{metricsToken, otherToken, metricsToken[:16]} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a token:\n%s", logs)
		}
	}
	if !strings.Contains(logs, `"msg":"metrics request refused"`) || !strings.Contains(logs, `"reason":"wrong bearer token and address not in metrics.allow"`) ||
		!strings.Contains(logs, `"client_ip":"`+remoteClient+`"`) {
		t.Errorf("no refusal line with reason and client IP:\n%s", logs)
	}
}

func reflectDump(v any) string {
	var b strings.Builder
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			b.WriteString(v.String())
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				for i := range v.Len() {
					b.WriteByte(byte(v.Index(i).Uint()))
				}
				return
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
	return b.String()
}

// TestMetricsTokenCompareIsConstantTime checks the source: bearerMatches
// decides with subtle.ConstantTimeCompare over fixed-length hashes, and
// compares nothing else with == or != (a timing test would be flaky; this
// fails as soon as someone writes got == want).
func TestMetricsTokenCompareIsConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "metrics_access.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "bearerMatches" {
			fn = fd
		}
	}
	if fn == nil {
		t.Fatal("no bearerMatches in metrics_access.go")
	}
	var constantTime, hashed bool
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok {
				constantTime = constantTime || id.Name == "subtle" && n.Sel.Name == "ConstantTimeCompare"
				hashed = hashed || id.Name == "sha256" && n.Sel.Name == "Sum256"
				if id.Name == "bytes" && n.Sel.Name == "Equal" {
					t.Errorf("%s: bytes.Equal is not constant-time", fset.Position(n.Pos()))
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			// Allowed: the result of ConstantTimeCompare against 1.
			if lit, ok := n.Y.(*ast.BasicLit); ok && lit.Value == "1" {
				if call, ok := n.X.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "ConstantTimeCompare" {
						return true
					}
				}
			}
			t.Errorf("%s: == or != in bearerMatches", fset.Position(n.Pos()))
		}
		return true
	})
	if !constantTime || !hashed {
		t.Errorf("bearerMatches: subtle.ConstantTimeCompare used %v, sha256.Sum256 used %v", constantTime, hashed)
	}
	// And behaviourally: the hash of the token, not the token, is compared.
	g := newMetricsGate(MetricsConfig{BearerToken: metricsToken})
	for auth, want := range map[string]bool{
		"Bearer " + metricsToken: true, "BEARER " + metricsToken: true, "Bearer  " + metricsToken: true,
		"Bearer " + otherToken: false, "Bearer": false, "": false, metricsToken: false,
	} {
		if got := g.bearerMatches(auth); got != want {
			t.Errorf("bearerMatches(%q) = %v", auth, got)
		}
	}
	if (&metricsGate{}).bearerMatches("Bearer ") {
		t.Error("no token configured, empty bearer matched")
	}
}

func TestMetricsConfig(t *testing.T) {
	var d Config
	d.SetDefaults()
	if !reflect.DeepEqual(d.Metrics.Allow, []string{"127.0.0.0/8", "::1/128"}) || d.Metrics.BearerToken != "" {
		t.Errorf("defaults: %+v", d.Metrics)
	}
	d.Metrics.Allow[0] = "changed"
	if DefaultMetricsAllow()[0] != "127.0.0.0/8" {
		t.Error("the default allow list can be changed by a caller")
	}
	for _, tc := range []struct {
		name string
		m    MetricsConfig
		want []string // substrings of the error; none: valid
	}{
		{name: "default", m: MetricsConfig{}},
		{name: "none", m: MetricsConfig{Allow: []string{"none"}, BearerToken: metricsToken}},
		{name: "IPs and CIDRs", m: MetricsConfig{Allow: []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}}},
		{name: "not a CIDR", m: MetricsConfig{Allow: []string{"127.0.0.0/8", "localhost", "10.0.0.0/33"}},
			want: []string{"metrics.allow[1]: not a CIDR", "metrics.allow[2]: not a CIDR"}},
		{name: "none among others", m: MetricsConfig{Allow: []string{"127.0.0.1", "none"}}, want: []string{`metrics.allow[1]: "none" must be the only entry`}},
		{name: "short token", m: MetricsConfig{BearerToken: "short-token-123"}, want: []string{"metrics.bearer_token: must have at least 16 characters"}},
		{name: "token with space", m: MetricsConfig{BearerToken: "a token with spaces in it"}, want: []string{"metrics.bearer_token: only letters"}},
		{name: "token with newline", m: MetricsConfig{BearerToken: "0123456789abcdef\n"}, want: []string{"metrics.bearer_token: only letters"}},
		{name: "token padded", m: MetricsConfig{BearerToken: "0123456789abcdef=="}},
		{name: "token only padding", m: MetricsConfig{BearerToken: "================"}, want: []string{"metrics.bearer_token: only letters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{PublicURL: "http://warden.test", Metrics: tc.m}
			c.SetDefaults()
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.m.BearerToken != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.m.BearerToken)) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}
