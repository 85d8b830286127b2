package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
)

// elevFormOf is formOf with the require_reason checkbox left out when
// unticked, as a browser does.
func elevFormOf(m map[string]string) url.Values {
	f := formOf(m)
	if f.Get("require_reason") == "" {
		f.Del("require_reason")
	}
	f.Del("elevation_note") // shown, not posted
	f.Del("eligible_roles")
	return f
}

// TestEligibleFormRoundTrip: a rule shown in its form and posted back
// unchanged is the same rule (explicit access: standing written as ""):
// a uniform access goes to the radio buttons, differing ones and
// differing max durations to the role lines.
func TestEligibleFormRoundTrip(t *testing.T) {
	const r1, r2, r3 = "arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B", "arn:aws:iam::111122223333:role/C"
	elig := func(arn, d string) rolemap.RoleRef {
		return rolemap.RoleRef{ARN: arn, Access: rolemap.AccessEligible, MaxDuration: d, Approvers: "cn=leads,ou=groups,dc=example,dc=org",
			RequireReason: true, ReasonPattern: `^INC-\d+`}
	}
	for _, tc := range []struct {
		name      string
		obj       object
		form      map[string]string // fields expected in the form
		normalize func(*object)
	}{
		{"standing", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x", Roles: []rolemap.RoleRef{{ARN: r1}, {ARN: r2, Access: rolemap.AccessStanding}}}},
			map[string]string{"access": "standing", "max_duration": "", "approvers": "", "roles": r1 + "\n" + r2},
			func(o *object) { o.grant.Roles[1].Access = "" }},
		{"all eligible, one duration", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{elig(r1, "1h"), elig(r2, "1h")}}},
			map[string]string{"access": "eligible", "max_duration": "1h", "approvers": "cn=leads,ou=groups,dc=example,dc=org",
				"require_reason": "on", "reason_pattern": `^INC-\d+`, "roles": r1 + "\n" + r2}, nil},
		{"mixed", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{{ARN: r1, MaxSessionSeconds: 3600, RequireMFA: true}, func() rolemap.RoleRef { r := elig(r2, "90m"); r.MaxSessionSeconds = 7200; return r }(), {ARN: r3}}}},
			map[string]string{"access": "standing", "max_duration": "90m", "roles": r1 + " 3600 mfa\n" + r2 + " 7200 eligible\n" + r3}, nil},
		{"all eligible, durations differ", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{elig(r1, "1h"), elig(r2, ""), elig(r3, "30m")}}},
			map[string]string{"access": "eligible", "max_duration": "", "roles": r1 + " eligible=1h\n" + r2 + " eligible\n" + r3 + " eligible=30m"}, nil},
		{"pattern eligible", object{kind: kindPattern, pattern: rolemap.PatternRule{ID: "p", Pattern: "^x$", RoleARN: r1,
			Access: rolemap.AccessEligible, MaxDuration: "45m", Approvers: "ops", ReasonPattern: "[A-Z]+-[0-9]+"}},
			map[string]string{"access": "eligible", "max_duration": "45m", "approvers": "ops", "require_reason": "", "reason_pattern": "[A-Z]+-[0-9]+"}, nil},
		{"pattern standing", object{kind: kindPattern, pattern: rolemap.PatternRule{ID: "p", Pattern: "^x$", RoleARN: r1}},
			map[string]string{"access": "standing", "max_duration": "", "approvers": ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := objectToForm(tc.obj)
			for k, v := range tc.form {
				if m[k] != v {
					t.Errorf("form[%s] = %q, want %q", k, m[k], v)
				}
			}
			if m["elevation_note"] != "" {
				t.Errorf("note %q", m["elevation_note"])
			}
			got, fields := formToObject(tc.obj.kind, elevFormOf(m))
			if len(fields) > 0 {
				t.Fatalf("form problems %v", fields)
			}
			want := tc.obj
			if tc.normalize != nil {
				tc.normalize(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
	// Eligible roles that differ in approvers: the form says it can only
	// hold one set, and saving it gives them all the first role's.
	o := object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x", Roles: []rolemap.RoleRef{
		{ARN: r1, Access: rolemap.AccessEligible, Approvers: "a"}, {ARN: r2, Access: rolemap.AccessEligible, Approvers: "b"}}}}
	m := objectToForm(o)
	if !strings.Contains(m["elevation_note"], "differ in approvers or reasons") || m["approvers"] != "a" {
		t.Fatalf("form %q", m)
	}
	got, fields := formToObject(kindGrant, elevFormOf(m))
	if len(fields) > 0 || got.grant.Roles[1].Approvers != "a" {
		t.Errorf("saved %+v %v", got.grant.Roles, fields)
	}
}

func TestEligibleFormInput(t *testing.T) {
	const r1, r2 = "arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B"
	// The radio buttons apply to every line without its own word; a
	// line's eligible=<d> beats the field.
	o, fields := formToObject(kindGrant, url.Values{"id": {"g"}, "group": {"x"}, "roles": {r1 + " standing\n" + r2 + " eligible=20m 900"},
		"access": {"eligible"}, "max_duration": {"15m"}, "approvers": {"ops"}, "require_reason": {"on"}})
	want := []rolemap.RoleRef{{ARN: r1}, {ARN: r2, MaxSessionSeconds: 900, Access: rolemap.AccessEligible, MaxDuration: "20m", Approvers: "ops", RequireReason: true}}
	if len(fields) > 0 || !reflect.DeepEqual(o.grant.Roles, want) {
		t.Fatalf("%+v %v", o.grant.Roles, fields)
	}
	for _, tc := range []struct {
		name  string
		k     kind
		f     url.Values
		field string
		msg   string
	}{
		{"two access words", kindGrant, url.Values{"roles": {r1 + " eligible standing"}}, "roles", "Line 1: write the role ARN, optionally followed by"},
		{"no duration", kindGrant, url.Values{"roles": {r1 + " eligible="}}, "roles", `Line 1: "eligible=" names no duration`},
		{"bad radio value", kindGrant, url.Values{"roles": {r1}, "access": {"sometimes"}}, "access", "Choose standing or eligible."},
		{"approvers on standing roles", kindGrant, url.Values{"roles": {r1}, "approvers": {"ops"}}, "approvers", "Only for eligible roles: choose Eligible above (or write eligible after a role)"},
		{"duration on standing roles", kindGrant, url.Values{"roles": {r1}, "access": {"standing"}, "max_duration": {"1h"}}, "max_duration", "Only for eligible roles"},
		{"reason on a standing pattern", kindPattern, url.Values{"require_reason": {"on"}}, "require_reason", "Only for eligible roles: choose Eligible above, or leave"},
		{"pattern on a standing pattern", kindPattern, url.Values{"reason_pattern": {"x"}}, "reason_pattern", "Only for eligible roles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fields := formToObject(tc.k, tc.f)
			if len(fields[tc.field]) != 1 || !strings.HasPrefix(fields[tc.field][0], tc.msg) {
				t.Errorf("fields %q, want %s: %s", fields, tc.field, tc.msg)
			}
		})
	}
	// Validation problems of a role's elevation fields: max_duration on
	// its line, the shared fields on theirs.
	for _, tc := range []struct{ rel, field, text string }{
		{"roles[1].max_duration", "roles", "Line 2: Max duration: m"},
		{"roles[0].access", "roles", "Line 1: Access: m"},
		{"roles[3].approvers", "approvers", "m"},
		{"roles[0].reason_pattern", "reason_pattern", "m"},
		{"max_duration", "max_duration", "m"},
	} {
		k := kindGrant
		if !strings.HasPrefix(tc.rel, "roles") {
			k = kindPattern
		}
		if name, text := formField(k, tc.rel, "m"); name != tc.field || text != tc.text {
			t.Errorf("formField(%s) = %q %q, want %q %q", tc.rel, name, text, tc.field, tc.text)
		}
	}
	for _, tc := range []struct {
		v            any
		label, title string
	}{
		{rolemap.RoleRef{ARN: r1}, "", ""},
		{rolemap.RoleRef{ARN: r1, Access: rolemap.AccessEligible}, "eligible · up to 1h · self-service", "(self-service: no approval)"},
		{rolemap.RoleRef{ARN: r1, Access: rolemap.AccessEligible, MaxSessionSeconds: 7200, Approvers: "ops", RequireReason: true}, "eligible · up to 2h · approvers: ops",
			"a member of ops approves; the request needs a reason"},
		{rolemap.PatternRule{Access: rolemap.AccessEligible, MaxDuration: "90m", ReasonPattern: "^INC"}, "eligible · up to 1h30m · self-service", "a reason matching ^INC"},
		{rolemap.Grant{Eligible: &rolemap.Eligibility{MaxSeconds: 900, Approvers: "cn=x"}}, "eligible · up to 15m · approvers: cn=x", "Not granted outright"},
		{rolemap.Grant{}, "", ""},
		{(*rolemap.Eligibility)(nil), "", ""},
	} {
		if l, ti := eligibleLabel(tc.v), eligibleTitle(tc.v); l != tc.label || !strings.Contains(ti, tc.title) || (tc.title == "") != (ti == "") {
			t.Errorf("%+v: label %q title %q, want %q and %q", tc.v, l, ti, tc.label, tc.title)
		}
	}
}

const eligibleRules = `accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: devs
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        max_session_seconds: 3600
      - arn: arn:aws:iam::111122223333:role/Admin
        max_session_seconds: 7200
        access: eligible
        max_duration: 90m
        approvers: admins
        reason_pattern: ^INC-[0-9]+
patterns:
  - id: adfs
    pattern: ^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$
    role_arn: arn:aws:iam::${account}:role/${role}
  - id: elev
    pattern: ^ELEV-(?P<account>\d{12})-(?P<role>\w+)$
    role_arn: arn:aws:iam::${account}:role/${role}
    access: eligible
    max_duration: 30m
`

// between returns the part of s from the first from up to the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	rest, _, _ = strings.Cut(rest, to)
	return rest
}

// TestEligiblePages: the forms and the JSON API save eligible roles,
// refuse bad ones (4xx with the key path, nothing saved), and the rules
// list, tester, who gets what and AWS setup show them apart from
// standing roles.
func TestEligiblePages(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, eligibleRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	stored := func() rolemap.RuleSet {
		t.Helper()
		_, doc, _ := e.rules.Current(t.Context())
		rs, err := rolemap.ParseYAML(doc)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	// The rules list: eligible badges, and the filter finds them.
	list := a.get("/admin/rules").body
	for _, want := range []string{
		`role/Admin</code> <span class="muted">(7200 s)</span> <span class="tag eligible" title="Not granted outright: members request it for a limited time, with a fresh second factor, and a member of admins approves; the request needs a reason matching ^INC-[0-9]&#43;">eligible · up to 1h30m · approvers: admins</span>`,
		`${role}</code> <span class="tag eligible" title="Not granted outright: members request it for a limited time, with a fresh second factor (self-service: no approval)">eligible · up to 30m · self-service</span>`,
	} {
		if !strings.Contains(list, want) {
			t.Errorf("rules list lacks %s\n%s", want, list)
		}
	}
	if strings.Contains(list, `role/Developer</code> <span class="muted">(3600 s)</span> <span class="tag eligible"`) {
		t.Error("eligible badge on a standing role")
	}
	if l := a.get("/admin/rules?q=eligible").body; !strings.Contains(l, "<code>elev</code>") || !strings.Contains(l, "<code>devs</code>") || strings.Contains(l, "<code>adfs</code>") {
		t.Errorf("filter by badge:\n%s", l)
	}

	// The grant form of a rule with both kinds: standing ticked, the
	// eligible role's line says so, the terms in their fields.
	edit := a.get("/admin/rules/grants/devs/edit").body
	for _, want := range []string{
		"arn:aws:iam::111122223333:role/Developer 3600\narn:aws:iam::111122223333:role/Admin 7200 eligible</textarea>",
		`name="access" type="radio" value="standing" checked>`, `name="access" type="radio" value="eligible">`,
		`name="max_duration" type="text" maxlength="32" value="90m"`, `name="approvers" type="text" maxlength="1024" value="admins"`,
		`name="require_reason" type="checkbox" value="on">`, `name="reason_pattern" type="text" maxlength="1024" value="^INC-[0-9]&#43;"`,
	} {
		if !strings.Contains(edit, want) {
			t.Errorf("grant form lacks %s", want)
		}
	}

	// A new grant rule whose roles are all eligible.
	const leads = "cn=leads,ou=groups,dc=example,dc=org"
	form := url.Values{"version": {"1"}, "id": {"oncall"}, "group": {"oncall"},
		"roles":  {"arn:aws:iam::111122223333:role/Admin 7200\narn:aws:iam::111122223333:role/PowerUser"},
		"access": {"eligible"}, "max_duration": {"1h"}, "approvers": {leads}, "require_reason": {"on"}}
	res := a.post("/admin/rules/grants", form)
	if res.code != http.StatusSeeOther {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	wantOncall := []rolemap.RoleRef{
		{ARN: "arn:aws:iam::111122223333:role/Admin", MaxSessionSeconds: 7200, Access: "eligible", MaxDuration: "1h", Approvers: leads, RequireReason: true},
		{ARN: "arn:aws:iam::111122223333:role/PowerUser", Access: "eligible", MaxDuration: "1h", Approvers: leads, RequireReason: true}}
	rs := stored()
	if i := find(&rs, kindGrant, "oncall"); i < 0 || !reflect.DeepEqual(rs.Grants[i].Roles, wantOncall) {
		t.Fatalf("stored %+v", rs.Grants)
	}
	edit = a.get("/admin/rules/grants/oncall/edit").body
	if !strings.Contains(edit, `name="access" type="radio" value="eligible" checked>`) || !strings.Contains(edit, `name="require_reason" type="checkbox" value="on" checked>`) ||
		!strings.Contains(edit, "role/Admin 7200\narn:aws:iam::111122223333:role/PowerUser</textarea>") {
		t.Errorf("edit form:\n%s", edit)
	}

	// A max duration over the session length of one role: on that
	// role's line, with the input kept and nothing saved.
	form.Set("version", "2")
	form.Set("max_duration", "2h")
	res = a.post("/admin/rules/grants/oncall", form)
	if res.code != http.StatusUnprocessableEntity || !fieldErr("roles").MatchString(res.body) ||
		!strings.Contains(res.body, "Line 2: Max duration: is 2h, longer than the role&#39;s session length of 1h (max_session_seconds is not set, so AWS&#39;s default of 1h applies): AWS sessions of the role end then") ||
		strings.Contains(res.body, "Line 1: Max duration") || !strings.Contains(res.body, `value="2h"`) {
		t.Fatalf("too long: %d %s", res.code, res.body)
	}
	form.Set("max_duration", "10m")
	res = a.post("/admin/rules/grants/oncall", form)
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, "Line 1: Max duration: must be at least 15m, got &#34;10m&#34;") ||
		!strings.Contains(res.body, "Line 2: Max duration: must be at least 15m") {
		t.Fatalf("too short: %d %s", res.code, res.body)
	}
	// A bad reason pattern: once, on its field.
	form.Set("max_duration", "1h")
	form.Set("reason_pattern", "(INC")
	res = a.post("/admin/rules/grants/oncall", form)
	if res.code != http.StatusUnprocessableEntity || !fieldErr("reason-pattern").MatchString(res.body) ||
		strings.Count(res.body, "not a valid regular expression") != 1 {
		t.Fatalf("bad pattern: %d %s", res.code, res.body)
	}
	// Approvers on standing roles: refused before validation.
	res = a.post("/admin/rules/grants/oncall", url.Values{"version": {"2"}, "id": {"oncall"}, "group": {"oncall"},
		"roles": {"arn:aws:iam::111122223333:role/Admin"}, "access": {"standing"}, "approvers": {leads}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("approvers").MatchString(res.body) {
		t.Fatalf("approvers on standing: %d %s", res.code, res.body)
	}
	// The pattern form: a max duration over its session length, on the field.
	pform := url.Values{"version": {"2"}, "id": {"elev"}, "pattern": {`^ELEV-(?P<account>\d{12})-(?P<role>\w+)$`},
		"role_arn": {"arn:aws:iam::${account}:role/${role}"}, "max_session_seconds": {"900"}, "access": {"eligible"}, "max_duration": {"30m"}}
	res = a.post("/admin/rules/patterns/elev", pform)
	if res.code != http.StatusUnprocessableEntity || !fieldErr("max-duration").MatchString(res.body) ||
		!strings.Contains(res.body, "is 30m, longer than the role&#39;s session length of 15m (max_session_seconds 900)") {
		t.Fatalf("pattern too long: %d %s", res.code, res.body)
	}
	if e.rules.version() != 2 || !reflect.DeepEqual(stored().Grants[1].Roles, wantOncall) {
		t.Fatalf("a refused form changed the rules: version %d", e.rules.version())
	}
	pform.Set("max_session_seconds", "")
	pform.Set("approvers", leads)
	pform.Set("reason_pattern", `^CHG-\d+$`)
	if res = a.post("/admin/rules/patterns/elev", pform); res.code != http.StatusSeeOther {
		t.Fatalf("pattern save: %d %s", res.code, res.body)
	}
	if p := stored().Patterns[1]; p.Access != "eligible" || p.MaxDuration != "30m" || p.Approvers != leads || p.ReasonPattern != `^CHG-\d+$` || p.RequireReason {
		t.Errorf("stored pattern %+v", p)
	}

	// The JSON API: create an eligible role; a bad one is 422 with the
	// key path, and nothing is saved.
	res = a.api("POST", "/admin/api/grants", map[string]any{"id": "api", "group": "api",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Api", "access": "eligible", "max_duration": "5m"}}}, "If-Match", "3")
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `{"path":"grants[2].roles[0].max_duration","message":"must be at least 15m, got \"5m\""}`) {
		t.Errorf("api invalid: %d %s", res.code, res.body)
	}
	res = a.api("POST", "/admin/api/grants", map[string]any{"id": "api", "group": "api",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Api", "max_duration": "1h"}}}, "If-Match", "3")
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `"path":"grants[2].roles[0].max_duration","message":"only applies to eligible roles`) {
		t.Errorf("api standing with max_duration: %d %s", res.code, res.body)
	}
	res = a.api("PUT", "/admin/api/patterns/elev", map[string]any{"id": "elev", "pattern": "^ELEV-(?P<r>\\w+)$", "role_arn": "arn:aws:iam::111122223333:role/${r}",
		"access": "Eligible"}, "If-Match", "3")
	if res.code != http.StatusUnprocessableEntity || !strings.Contains(res.body, `"path":"patterns[1].access","message":"write \"Eligible\" as \"eligible\"`) {
		t.Errorf("api bad access: %d %s", res.code, res.body)
	}
	if e.rules.version() != 3 {
		t.Fatalf("a refused API call saved: version %d", e.rules.version())
	}
	res = a.api("POST", "/admin/api/grants", map[string]any{"id": "api", "group": "api",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Api", "access": "eligible", "max_duration": "45m", "approvers": "admins", "require_reason": true}}}, "If-Match", "3")
	if res.code != http.StatusCreated {
		t.Fatalf("api create: %d %s", res.code, res.body)
	}
	if g := a.api("GET", "/admin/api/grants/api", nil); g.code != 200 ||
		!strings.Contains(g.body, `"access":"eligible","max_duration":"45m","approvers":"admins","require_reason":true`) {
		t.Errorf("api get: %d %s", g.code, g.body)
	}
	if r := stored().Grants[0]; r.ID != "api" || !r.Roles[0].IsEligible() || r.Roles[0].MaxDuration != "45m" {
		t.Errorf("stored %+v", r)
	}

	// The tester: standing and eligible apart.
	tr := a.get("/admin/tester?group=ELEV-111122223333-Breakglass").body
	if !strings.Contains(between(tr, `id="tester-result"`, "</div>"), `id="no-grants"`) {
		t.Errorf("tester, standing:\n%s", tr)
	}
	if el := between(tr, `id="tester-eligible"`, "</table>"); !strings.Contains(el, "role/Breakglass</code>") || !strings.Contains(el, "<td>30m</td><td>cn=leads,ou=groups,dc=example,dc=org</td>") || !strings.Contains(el, "matching <code>^CHG-\\d&#43;$</code>") {
		t.Errorf("tester, eligible:\n%s", tr)
	}
	tg := a.api("POST", "/admin/api/test-group", map[string]any{"group": "ELEV-111122223333-Breakglass"})
	if tg.code != 200 || !strings.Contains(tg.body, `"grants":[]`) || !strings.Contains(tg.body, `"eligible":[{"role_arn":"arn:aws:iam::111122223333:role/Breakglass"`) ||
		!strings.Contains(tg.body, `"max_seconds":1800`) {
		t.Errorf("api test-group: %d %s", tg.code, tg.body)
	}

	// Who gets what: bob holds Developer and ReadOnly and may request Admin.
	wg := a.get("/admin/whogets?username=bob").body
	standing, eligible := between(wg, `id="grants-result"`, "</table>"), between(wg, `id="eligible-result"`, "</table>")
	if !strings.Contains(standing, "role/Developer</code>") || !strings.Contains(standing, "role/ReadOnly</code>") || strings.Contains(standing, "role/Admin") {
		t.Errorf("who gets what, standing:\n%s", standing)
	}
	for _, want := range []string{"role/Admin</code>", "eligible · up to 1h30m · approvers: admins</span>", "<td>1h30m</td><td>admins</td>", "matching <code>^INC-[0-9]&#43;</code>"} {
		if !strings.Contains(eligible, want) {
			t.Errorf("who gets what, eligible lacks %s:\n%s", want, eligible)
		}
	}
	if strings.Contains(eligible, "role/Developer") {
		t.Error("a standing role among the eligible ones")
	}
	ev := a.api("POST", "/admin/api/evaluate", map[string]any{"username": "bob"})
	var out struct {
		Result rolemap.Result `json:"result"`
	}
	if err := json.Unmarshal([]byte(ev.body), &out); err != nil {
		t.Fatalf("%v %s", err, ev.body)
	}
	if len(out.Result.Grants) != 2 || len(out.Result.Eligible) != 1 || out.Result.Eligible[0].RoleName != "Admin" ||
		!reflect.DeepEqual(out.Result.Eligible[0].Eligible, &rolemap.Eligibility{MaxSeconds: 5400, Approvers: "admins", RequireReason: true, ReasonPattern: "^INC-[0-9]+"}) {
		t.Errorf("api evaluate: %s", ev.body)
	}

	// AWS setup: the eligible badge next to the role.
	e.admin.SetAWSSetup(awsfed.SetupOptions{MetadataURL: "https://sso.example.com/saml/metadata", SAML: true, SAMLPartition: "aws",
		MFAMethods: []string{"webauthn", "totp"}})
	page := a.get("/admin/aws-setup").body
	if !strings.Contains(page, `role/Admin</code> <span class="tag eligible" title="Not granted outright`) ||
		!strings.Contains(page, `eligible · up to 1h30m · approvers: admins</span></h3>`) ||
		strings.Contains(page, `role/Developer</code> <span class="tag eligible"`) {
		t.Errorf("aws setup:\n%s", page)
	}
}

func TestEligibleBadges(t *testing.T) {
	rs := rolemap.RuleSet{Grants: []rolemap.GrantRule{
		{ID: "a", Group: "g", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/X", Access: rolemap.AccessEligible, MaxDuration: "1h"},
			{ARN: "arn:aws:iam::111122223333:role/Y"}}},
		{ID: "b", Group: "h", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/X"}, {ARN: "arn:aws:iam::111122223333:role/Z", Access: rolemap.AccessEligible, Approvers: "ops"}}},
		{ID: "c", Group: "i", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/Z", Access: rolemap.AccessEligible, Approvers: "other"}}},
	}}
	got := map[string]string{}
	for arn, b := range eligibleBadges(rs) {
		got[arn[strings.LastIndexByte(arn, '/')+1:]] = b.Label
	}
	want := map[string]string{"X": "eligible · up to 1h · self-service (standing in grant rule b)", "Z": "eligible · up to 1h · approvers: ops"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("badges %v, want %v", got, want)
	}
}

// TestEligibleReadOnly: the read-only views of the forms state the access.
func TestEligibleReadOnly(t *testing.T) {
	e := newEnv(t, Config{RulesFile: "/etc/warden/rules.yaml", RulesReadOnly: true})
	seed(t, e, eligibleRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	for path, want := range map[string]string{
		"/admin/rules/grants/devs/edit":   `<dd id="access-fact">standing (unless a role's line says eligible); eligible roles: up to 90m, approvers: admins, reason matching <code>^INC-[0-9]&#43;</code></dd>`,
		"/admin/rules/patterns/elev/edit": `<dd id="access-fact">eligible: up to 30m, self-service</dd>`,
		"/admin/rules/patterns/adfs/edit": `<dd id="access-fact">standing</dd>`,
	} {
		if res := a.get(path); res.code != http.StatusOK || !strings.Contains(res.body, want) {
			t.Errorf("%s: %d, want %s:\n%s", path, res.code, want, res.body)
		}
	}
}
