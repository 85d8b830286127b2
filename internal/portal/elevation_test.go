package portal

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// elevBackend is a Backend whose result has eligible roles, one of them
// elevated (as internal/elevation's Apply leaves it).
type elevBackend struct {
	fakeBackend
	res rolemap.Result
}

func (p *elevBackend) Grants(context.Context, identity.User) (rolemap.Result, error) {
	return p.res, nil
}

func eligibleGrant(acctName, acctID, role string, max int, approvers string, reason bool) rolemap.Grant {
	g := grant(acctName, acctID, role, 0)
	g.Eligible = &rolemap.Eligibility{MaxSeconds: max, Approvers: approvers, RequireReason: reason}
	return g
}

func TestPortalEligibleAndElevated(t *testing.T) {
	ends := time.Date(2025, 6, 1, 13, 5, 0, 0, time.UTC)
	prodAdmin := eligibleGrant("prod", "111122223333", "Admin", 7200, "secops", true)
	stageAdmin := eligibleGrant("staging", "444455556666", "Admin", 3600, "secops", false)
	debug := eligibleGrant("staging", "444455556666", "Debug", 1800, "", false)
	elevated := prodAdmin
	elevated.Eligible = nil
	elevated.SessionSeconds = 3000
	elevated.Elevation = &rolemap.Elevated{ID: "0123456789abcdef0123456789abcdef", EndsAt: ends, Reason: "INC-1"}
	p := &elevBackend{fakeBackend: fakeBackend{acs: "https://signin.aws.amazon.com/saml"}, res: rolemap.Result{
		Grants:   []rolemap.Grant{elevated, grant("prod", "111122223333", "ReadOnly", 3600)},
		Eligible: []rolemap.Grant{prodAdmin, stageAdmin, debug},
	}}
	e := newEnv(t, withBackend(p))
	body := signedIn(t, e).get("/").Body.String()

	// The elevated role: its Console button, and the end next to it.
	li := regexp.MustCompile(`(?s)<li class="role" data-search="prod arn:aws:iam::111122223333:role/admin">.*?</li>`).FindString(body)
	if !strings.Contains(li, "elevated until 13:05 UTC") || !strings.Contains(li, `name="role" value="arn:aws:iam::111122223333:role/Admin"`) ||
		!strings.Contains(li, "2025-06-01 13:05 UTC") {
		t.Errorf("elevated role:\n%s", li)
	}
	if strings.Count(body, "elevated until") != 2 { // in the roles held and in the eligible list
		t.Errorf("%d 'elevated until'", strings.Count(body, "elevated until"))
	}
	// The eligible roles, each with a Request link; not Console buttons.
	sec := regexp.MustCompile(`(?s)<section class="eligible".*?</section>\n</section>`).FindString(body)
	if sec == "" {
		t.Fatalf("no eligible section:\n%s", body)
	}
	var links []string
	for _, m := range regexp.MustCompile(`class="button request small" href="([^"]+)"`).FindAllStringSubmatch(sec, -1) {
		links = append(links, html.UnescapeString(m[1]))
	}
	want := []string{"/elevations/new?role=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FAdmin",
		"/elevations/new?role=arn%3Aaws%3Aiam%3A%3A444455556666%3Arole%2FAdmin",
		"/elevations/new?role=arn%3Aaws%3Aiam%3A%3A444455556666%3Arole%2FDebug"}
	if strings.Join(links, " ") != strings.Join(want, " ") {
		t.Errorf("request links %v, want %v", links, want)
	}
	for _, s := range []string{"up to 2 h", "up to 30 min", "approved by secops, reason required", "self-service", `href="/elevations"`} {
		if !strings.Contains(sec, s) {
			t.Errorf("eligible section lacks %q", s)
		}
	}
	if strings.Contains(sec, `name="role"`) {
		t.Error("a Console button for an eligible role")
	}
	// The role count covers the roles held (the elevated one included).
	if !strings.Contains(body, "2 roles in 1 account") {
		t.Error("role count")
	}
	if n := strings.Count(body, `name="csrf_token"`); n != 2 {
		t.Errorf("%d csrf fields, want 2", n)
	}

	// Only eligible roles: the empty state says what to do.
	p.res = rolemap.Result{Eligible: []rolemap.Grant{debug}}
	body = signedIn(t, e).get("/").Body.String()
	if !strings.Contains(body, "request one of those below") || !strings.Contains(body, `id="eligible"`) || strings.Contains(body, `id="roles"`) {
		t.Errorf("eligible only:\n%s", body)
	}
	if rec := signedIn(t, e).get("/"); rec.Code != http.StatusOK {
		t.Errorf("%d", rec.Code)
	}
}
