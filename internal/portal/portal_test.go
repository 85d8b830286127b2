package portal

import (
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/rolemap"
)

var (
	accountRe = regexp.MustCompile(`<span class="acctname">([^<]*)</span> <span class="acctid">(\d+)</span>`)
	roleBtnRe = regexp.MustCompile(`name="role" value="([^"]+)"`)
	linkRe    = regexp.MustCompile(`class="deeplink small" href="([^"]+)"`)
)

func TestPortalHome(t *testing.T) {
	e, _ := newPortalEnv(t)
	b := signedIn(t, e)
	rec := b.get("/")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d", rec.Code)
	}
	var accts []string
	for _, m := range accountRe.FindAllStringSubmatch(body, -1) {
		accts = append(accts, m[1]+" "+m[2])
	}
	// sorted by name, case-insensitively
	if want := []string{"Analytics 999988887777", "prod 111122223333", "staging 444455556666"}; fmt.Sprint(accts) != fmt.Sprint(want) {
		t.Errorf("accounts %v, want %v", accts, want)
	}
	var arns []string
	for _, m := range roleBtnRe.FindAllStringSubmatch(body, -1) {
		arns = append(arns, m[1])
	}
	want := []string{"arn:aws:iam::999988887777:role/team/Reader", "arn:aws:iam::111122223333:role/ReadOnly",
		"arn:aws:iam::111122223333:role/ViewOnly", "arn:aws:iam::444455556666:role/PowerUser"}
	if fmt.Sprint(arns) != fmt.Sprint(want) {
		t.Errorf("Console buttons %v, want %v", arns, want)
	}
	var links []string
	for _, m := range linkRe.FindAllStringSubmatch(body, -1) {
		links = append(links, html.UnescapeString(m[1]))
	}
	wantLinks := []string{"http://warden.test/aws/console?role=Analytics/Reader", "http://warden.test/aws/console?role=prod/ReadOnly",
		"http://warden.test/aws/console?role=prod/ViewOnly", "http://warden.test/aws/console?role=staging/PowerUser"}
	if fmt.Sprint(links) != fmt.Sprint(wantLinks) {
		t.Errorf("deep links %v, want %v", links, wantLinks)
	}
	for _, s := range []string{`<form method="post" action="/aws/console" id="roles">`, `name="csrf_token"`, "8 h", "1 h",
		`<span class="muted">/team/</span>Reader`, `id="role-search"`, "4 roles in 3 accounts", "bob@example.org", `id="groups"`} {
		if !strings.Contains(body, s) {
			t.Errorf("home page lacks %q", s)
		}
	}
	// Scripts only from files (CSP script-src 'self'), no inline handlers or styles.
	bad := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	if m := bad.FindString(body); m != "" {
		t.Errorf("home page has %q", m)
	}
	if !regexp.MustCompile(`<script src="/static/portal\.[0-9a-f]{12}\.js" defer></script>`).MatchString(body) {
		t.Error("home page does not load portal.js")
	}
	// The one CSRF token of the role form is the page's token.
	if n := strings.Count(body, `name="csrf_token"`); n != 2 { // the role form and sign-out
		t.Errorf("%d csrf fields, want 2", n)
	}
}

func TestPortalHomeStates(t *testing.T) {
	t.Run("no roles", func(t *testing.T) {
		e, p := newPortalEnv(t)
		p.set(func(p *fakeBackend) { p.grants = nil })
		body := signedIn(t, e).get("/").Body.String()
		if !strings.Contains(body, "You have no AWS roles yet; ask your admin.") || strings.Contains(body, `id="roles"`) {
			t.Errorf("empty state missing:\n%s", body)
		}
	})
	t.Run("grants fail", func(t *testing.T) {
		e, p := newPortalEnv(t)
		b := signedIn(t, e)
		p.set(func(p *fakeBackend) { p.grantsErr = fmt.Errorf("rules: %w", errBoom) })
		rec := b.get("/")
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "cannot be listed right now") || !strings.Contains(body, "Bob Brown") {
			t.Errorf("%d:\n%s", rec.Code, body)
		}
		if strings.Contains(body, "boom") {
			t.Error("internal error text on the page")
		}
	})
	t.Run("no portal", func(t *testing.T) {
		e := newEnv(t) // the server's own home page
		b := signedIn(t, e)
		body := b.get("/").Body.String()
		if strings.Contains(body, "AWS roles") || strings.Contains(body, "portal.") {
			t.Error("AWS section without the portal")
		}
		if rec := b.get("/aws/console?role=prod/ReadOnly"); rec.Code != http.StatusNotFound {
			t.Errorf("/aws/console without the portal: %d", rec.Code)
		}
	})
}

func TestResolveRole(t *testing.T) {
	tests := []struct {
		ref, want string // want "" = not found
	}{
		{"arn:aws:iam::111122223333:role/ReadOnly", "arn:aws:iam::111122223333:role/ReadOnly"},
		{"arn:aws:iam::111122223333:role/readonly", ""}, // ARNs compare exactly
		{"arn:aws:iam::111122223333:role/Admin", ""},
		{"prod/ReadOnly", "arn:aws:iam::111122223333:role/ReadOnly"},
		{"PROD/readonly", "arn:aws:iam::111122223333:role/ReadOnly"},
		{"111122223333/ViewOnly", "arn:aws:iam::111122223333:role/ViewOnly"},
		{"444455556666/PowerUser", "arn:aws:iam::444455556666:role/PowerUser"},
		{"prod/PowerUser", ""}, // held, but in staging
		{"analytics/Reader", "arn:aws:iam::999988887777:role/team/Reader"},
		{"analytics/team/Reader", "arn:aws:iam::999988887777:role/team/Reader"},
		{"analytics/other/Reader", ""},
		{"prod", ""},
		{"/ReadOnly", ""},
		{"prod/", ""},
		{"", ""},
		{"11112222333/ReadOnly", ""},
	}
	for _, tc := range tests {
		g, ok := resolveRole(bobGrants, tc.ref)
		if got := map[bool]string{true: g.RoleARN}[ok]; got != tc.want {
			t.Errorf("resolveRole(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

var (
	postActionRe = regexp.MustCompile(`<form method="post" action="([^"]+)" id="saml-post">`)
	samlRespRe   = regexp.MustCompile(`name="SAMLResponse" value="([^"]+)"`)
	relayRe      = regexp.MustCompile(`name="RelayState" value="([^"]+)"`)
)

func TestConsolePost(t *testing.T) {
	e, p := newPortalEnv(t)
	b := signedIn(t, e)
	home := b.get("/").Body.String()
	csrf := csrfFrom(t, home)
	dest := "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards"
	rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/ReadOnly"},
		"destination": {dest}}, "Sec-Fetch-Site", "same-origin", "Origin", "http://warden.test")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /aws/console: %d\n%s", rec.Code, body)
	}
	if m := postActionRe.FindStringSubmatch(body); m == nil || m[1] != "https://signin.aws.amazon.com/saml" {
		t.Errorf("form action %v", m)
	}
	m := samlRespRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no SAMLResponse field:\n%s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil || !strings.Contains(string(raw), "arn:aws:iam::111122223333:role/ReadOnly") {
		t.Errorf("SAMLResponse %q (%v)", raw, err)
	}
	if m := relayRe.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != dest {
		t.Errorf("RelayState %v", m)
	}
	for _, s := range []string{`id="continue"`, "ReadOnly", "prod", "111122223333"} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if !regexp.MustCompile(`<script src="/static/autopost\.[0-9a-f]{12}\.js" defer></script>`).MatchString(body) {
		t.Error("no autopost.js")
	}
	if regexp.MustCompile(`(?i)<script>|\son[a-z]+=`).MatchString(body) {
		t.Error("inline script")
	}
	h := rec.Header()
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, s := range []string{"script-src 'self'", "form-action 'self' https://signin.aws.amazon.com https://console.aws.amazon.com https://*.console.aws.amazon.com https://*.signin.aws.amazon.com;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, s) {
			t.Errorf("CSP %q lacks %q", csp, s)
		}
	}
	calls := p.Calls()
	if len(calls) != 1 || calls[0].User != "bob" || calls[0].Grant.RoleARN != "arn:aws:iam::111122223333:role/ReadOnly" ||
		calls[0].Grant.SessionSeconds != 3600 || calls[0].Dest != dest {
		t.Errorf("Console calls %+v", calls)
	}
	evs := e.audit.Events()
	last := evs[len(evs)-1]
	if last.Action != "aws.console" || last.Result != "success" || last.Object != "arn:aws:iam::111122223333:role/ReadOnly" ||
		last.Actor != "bob" || last.Detail["destination"] != dest || last.RequestID == "" {
		t.Errorf("audit %+v", last)
	}
	// the other pages keep form-action 'self' only
	if csp := b.get("/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self';") {
		t.Errorf("home CSP %q", csp)
	}
}

func TestConsoleRequests(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		query    url.Values
		hdr      []string
		noCSRF   bool
		setup    func(p *fakeBackend)
		code     int
		text     string // in the body
		calls    int    // Console calls
		audit    string // result of the last aws.console event, "" none
		location string // prefix of Location
	}{
		{name: "GET by name", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, code: 200, text: `id="saml-post"`, calls: 1, audit: "success"},
		{name: "GET by account ID", method: "GET", query: url.Values{"role": {"444455556666/PowerUser"}}, code: 200, text: `id="saml-post"`, calls: 1, audit: "success"},
		{name: "GET by ARN", method: "GET", query: url.Values{"role": {"arn:aws:iam::111122223333:role/ViewOnly"}}, code: 200, text: `id="saml-post"`, calls: 1, audit: "success"},
		{name: "GET bookmark", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, hdr: []string{"Sec-Fetch-Site", "none"}, code: 200, text: `id="saml-post"`, calls: 1, audit: "success"},
		{name: "GET same-origin link", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, hdr: []string{"Sec-Fetch-Site", "same-origin"}, code: 200, text: `id="saml-post"`, calls: 1, audit: "success"},
		{name: "GET from another site asks first", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}, "destination": {"https://console.aws.amazon.com/s3/"}},
			hdr: []string{"Sec-Fetch-Site", "cross-site"}, code: 200, text: `<form method="post" action="/aws/console" id="confirm">`},
		{name: "GET from a sibling site asks first", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, hdr: []string{"Sec-Fetch-Site", "same-site"}, code: 200, text: `id="confirm"`},
		{name: "not held", method: "GET", query: url.Values{"role": {"prod/AdministratorAccess"}}, code: 403, text: "You do not hold this role", audit: "denied"},
		{name: "not held by ARN", method: "POST", query: url.Values{"role": {"arn:aws:iam::111122223333:role/AdministratorAccess"}}, code: 403, audit: "denied"},
		{name: "not held, cross-site", method: "GET", query: url.Values{"role": {"prod/Admin"}}, hdr: []string{"Sec-Fetch-Site", "cross-site"}, code: 403, audit: "denied"},
		{name: "bad destination", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}, "destination": {"https://evil.example/"}}, code: 400, text: "not an AWS console URL", calls: 1, audit: "bad_destination"},
		{name: "bad destination POST", method: "POST", query: url.Values{"role": {"prod/ReadOnly"}, "destination": {"javascript:alert(1)"}}, code: 400, calls: 1, audit: "bad_destination"},
		{name: "no role", method: "GET", query: url.Values{}, code: 400, text: "does not name a role"},
		{name: "role too long", method: "GET", query: url.Values{"role": {"prod/" + strings.Repeat("a", 3000)}}, code: 400},
		{name: "destination too long", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}, "destination": {"https://console.aws.amazon.com/" + strings.Repeat("a", 5000)}}, code: 400},
		{name: "too large", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, setup: func(p *fakeBackend) { p.consoleErr = fmt.Errorf("samlidp: %w", ErrResponseTooLarge) },
			code: 422, text: "larger than AWS accepts", calls: 1, audit: "too_large"},
		{name: "unusable user", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, setup: func(p *fakeBackend) { p.consoleErr = fmt.Errorf("samlidp: %w", ErrUnusableUser) },
			code: 422, text: "Ask your admin", calls: 1, audit: "unusable_user"},
		{name: "signing fails", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, setup: func(p *fakeBackend) { p.consoleErr = errBoom },
			code: 500, calls: 1, audit: "error"},
		{name: "bad ACS", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, setup: func(p *fakeBackend) { p.acs = "javascript:alert(1)" },
			code: 500, calls: 1, audit: "error"},
		{name: "grants fail", method: "GET", query: url.Values{"role": {"prod/ReadOnly"}}, setup: func(p *fakeBackend) { p.grantsErr = errBoom }, code: 503},
		{name: "POST without CSRF token", method: "POST", query: url.Values{"role": {"prod/ReadOnly"}}, noCSRF: true, code: 403, text: "Your form expired"},
		{name: "POST from another origin", method: "POST", query: url.Values{"role": {"prod/ReadOnly"}}, hdr: []string{"Sec-Fetch-Site", "cross-site"}, code: 403, text: "Your form expired"},
		{name: "PUT", method: "PUT", query: url.Values{"role": {"prod/ReadOnly"}}, code: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, p := newPortalEnv(t)
			b := signedIn(t, e)
			if tc.setup != nil {
				p.set(tc.setup)
			}
			csrf := csrfFrom(t, b.get("/logout").Body.String())
			nEvents := len(e.audit.Events())
			var rec *httptest.ResponseRecorder
			switch tc.method {
			case "GET":
				req := httptest.NewRequest("GET", "/aws/console?"+tc.query.Encode(), nil)
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
				rec = b.do(req)
			case "POST":
				if !tc.noCSRF {
					tc.query.Set("csrf_token", csrf)
				}
				rec = b.post("/aws/console", tc.query, tc.hdr...)
			default:
				rec = b.do(httptest.NewRequest(tc.method, "/aws/console?"+tc.query.Encode(), nil))
			}
			body := rec.Body.String()
			if rec.Code != tc.code {
				t.Fatalf("%d, want %d\n%s", rec.Code, tc.code, body)
			}
			if tc.text != "" && !strings.Contains(body, tc.text) {
				t.Errorf("body lacks %q:\n%s", tc.text, body)
			}
			if strings.Contains(body, "boom") || strings.Contains(body, "alert(1)") && tc.code != 200 {
				t.Errorf("body leaks detail:\n%s", body)
			}
			if got := len(p.Calls()); got != tc.calls {
				t.Errorf("%d Console calls, want %d", got, tc.calls)
			}
			var result string
			for _, ev := range e.audit.Events()[nEvents:] {
				if ev.Action == "aws.console" {
					result = ev.Result
					if ev.Actor != "bob" || ev.Object == "" {
						t.Errorf("audit event %+v", ev)
					}
				}
			}
			if result != tc.audit {
				t.Errorf("audit result %q, want %q", result, tc.audit)
			}
			if tc.code >= 400 && tc.code != 405 && rec.Header().Get("X-Request-ID") == "" {
				t.Error("no request ID")
			}
		})
	}
}

func TestConsoleConfirmThenPost(t *testing.T) {
	e, p := newPortalEnv(t)
	b := signedIn(t, e)
	dest := "https://console.aws.amazon.com/s3/home"
	req := httptest.NewRequest("GET", "/aws/console?role=prod/ReadOnly&destination="+url.QueryEscape(dest), nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	page := b.do(req).Body.String()
	form := url.Values{"csrf_token": {csrfFrom(t, page)}}
	for _, f := range []string{"role", "destination"} {
		m := regexp.MustCompile(`name="` + f + `" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("confirm page lacks %s:\n%s", f, page)
		}
		form.Set(f, html.UnescapeString(m[1]))
	}
	rec := b.post("/aws/console", form, "Sec-Fetch-Site", "same-origin")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="saml-post"`) {
		t.Fatalf("continue: %d\n%s", rec.Code, rec.Body)
	}
	if c := p.Calls(); len(c) != 1 || c[0].Dest != dest || c[0].Grant.RoleName != "ReadOnly" {
		t.Errorf("calls %+v", c)
	}
}

func TestConsoleSignedOut(t *testing.T) {
	e, p := newPortalEnv(t)
	b := e.browser(t)
	rec := b.get("/aws/console?role=prod/ReadOnly&destination=" + url.QueryEscape("https://console.aws.amazon.com/s3/"))
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("GET signed out: %d %q", rec.Code, loc)
	}
	next, _ := url.Parse(loc)
	if got := next.Query().Get("next"); got != "/aws/console?role=prod/ReadOnly&destination="+url.QueryEscape("https://console.aws.amazon.com/s3/") {
		t.Errorf("next %q", got)
	}
	// Sign in through the redirect: the sign-in answers with the console
	// link's page itself (no second round trip), and sets the session.
	rec = b.login("bob", testPassword, next.Query().Get("next"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="saml-post"`) || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("sign-in with a console link: %d %q\n%s", rec.Code, rec.Header().Get("Cache-Control"), rec.Body)
	}
	if c := p.Calls(); len(c) != 1 || c[0].Dest != "https://console.aws.amazon.com/s3/" || c[0].User != "bob" {
		t.Errorf("calls %+v", c)
	}
	if rec := b.get("/"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "ReadOnly") {
		t.Errorf("portal after a sign-in to the console: %d", rec.Code)
	}
	// A console link for a role the user does not hold: refused, the
	// sign-in itself stands.
	b3 := e.browser(t)
	rec = b3.login("bob", testPassword, "/aws/console?role=prod/AdministratorAccess")
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Not your role") {
		t.Errorf("sign-in to a role not held: %d\n%s", rec.Code, rec.Body)
	}
	if rec := b3.get("/"); rec.Code != 200 {
		t.Errorf("portal after a refused console link: %d", rec.Code)
	}
	if len(p.Calls()) != 1 {
		t.Error("Console called for a role not held")
	}

	// A POST whose session ended goes to sign-in with the role as a GET.
	b2 := e.browser(t)
	csrf := csrfFrom(t, b2.get("/login").Body.String())
	rec = b2.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/ReadOnly"}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther ||
		loc != "/login?next="+url.QueryEscape("/aws/console?role="+url.QueryEscape("arn:aws:iam::111122223333:role/ReadOnly")) &&
			!strings.HasPrefix(loc, "/login?next=/aws/console") {
		t.Errorf("POST signed out: %d %q", rec.Code, loc)
	}
	if len(p.Calls()) != 1 {
		t.Error("Console called without a session")
	}
}

// TestConsoleGrantsAreFresh: a role taken away after the page was loaded
// (or after sign-in) is refused.
func TestConsoleGrantsAreFresh(t *testing.T) {
	e, p := newPortalEnv(t)
	b := signedIn(t, e)
	csrf := csrfFrom(t, b.get("/").Body.String())
	p.set(func(p *fakeBackend) { p.grants = map[string][]rolemap.Grant{"bob": bobGrants[1:]} })
	rec := b.post("/aws/console", url.Values{"csrf_token": {csrf}, "role": {"arn:aws:iam::111122223333:role/ReadOnly"}})
	if rec.Code != http.StatusForbidden || len(p.Calls()) != 0 {
		t.Errorf("revoked role: %d, %d calls", rec.Code, len(p.Calls()))
	}
}

func TestFormActionSources(t *testing.T) {
	tests := []struct{ acs, want string }{
		{"https://signin.aws.amazon.com/saml", "https://signin.aws.amazon.com https://console.aws.amazon.com https://*.console.aws.amazon.com https://*.signin.aws.amazon.com"},
		{"https://us-west-2.signin.aws.amazon.com/saml", "https://us-west-2.signin.aws.amazon.com https://console.aws.amazon.com https://*.console.aws.amazon.com https://*.signin.aws.amazon.com"},
		{"https://signin.amazonaws-us-gov.com/saml", "https://signin.amazonaws-us-gov.com https://console.amazonaws-us-gov.com https://*.console.amazonaws-us-gov.com https://*.signin.amazonaws-us-gov.com"},
		{"https://signin.amazonaws.cn/saml", "https://signin.amazonaws.cn https://console.amazonaws.cn https://*.console.amazonaws.cn https://*.signin.amazonaws.cn"},
		{"https://sp.example.com/acs", "https://sp.example.com"},
		{"http://127.0.0.1:8123/saml", "http://127.0.0.1:8123"},
		{"https://evilsignin.aws.amazon.com.example/saml", "https://evilsignin.aws.amazon.com.example"},
		{"javascript:alert(1)", ""},
		{"https://user@signin.aws.amazon.com/saml", ""},
		{"/saml", ""},
		{"", ""},
	}
	for _, tc := range tests {
		srcs, err := formActionSources(tc.acs)
		if got := strings.Join(srcs, " "); (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("formActionSources(%q) = %q, %v; want %q", tc.acs, srcs, err, tc.want)
		}
	}
}

func TestSessionText(t *testing.T) {
	for secs, want := range map[int]string{0: "", 3600: "1 h", 28800: "8 h", 900: "15 min", 5400: "90 min", 43200: "12 h"} {
		if got := sessionText(secs); got != want {
			t.Errorf("sessionText(%d) = %q, want %q", secs, got, want)
		}
	}
}

// partitionBackend signs in to the aws partition only.
type partitionBackend struct{ *fakeBackend }

func (partitionBackend) ConsolePartition() string { return "aws" }

func TestConsoleOtherPartition(t *testing.T) {
	gov := rolemap.Grant{RoleARN: "arn:aws-us-gov:iam::777788889999:role/ViewOnly", ProviderARN: "arn:aws-us-gov:iam::777788889999:saml-provider/warden-gov",
		AccountID: "777788889999", AccountName: "sandbox", Partition: "aws-us-gov", RoleName: "ViewOnly"}
	p := &fakeBackend{grants: map[string][]rolemap.Grant{"bob": append([]rolemap.Grant{gov}, bobGrants...)}, acs: "https://signin.aws.amazon.com/saml"}
	e := newEnv(t, withBackend(partitionBackend{p}))
	b := signedIn(t, e)
	body := b.get("/").Body.String()
	if strings.Contains(body, `value="`+gov.RoleARN+`"`) || !strings.Contains(body, "not from here") || !strings.Contains(body, `<span class="tag">aws-us-gov</span>`) {
		t.Errorf("the gov role must be listed without a Console button:\n%s", body)
	}
	if n := strings.Count(body, `class="console"`); n != len(bobGrants) {
		t.Errorf("%d Console buttons, want %d", n, len(bobGrants))
	}
	rec := b.get("/aws/console?role=sandbox/ViewOnly")
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "partition") || len(p.Calls()) != 0 {
		t.Errorf("gov role: %d, %d calls\n%s", rec.Code, len(p.Calls()), rec.Body)
	}
	if rec := b.get("/aws/console?role=prod/ReadOnly"); rec.Code != http.StatusOK {
		t.Errorf("aws role: %d", rec.Code)
	}
}
