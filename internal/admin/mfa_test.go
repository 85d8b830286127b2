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

// formOf turns objectToForm's map into what a browser posts: mfa_methods
// as one value per ticked box, an unticked require_mfa left out.
func formOf(m map[string]string) url.Values {
	f := url.Values{}
	for k, v := range m {
		switch {
		case k == "mfa_methods":
			for _, x := range strings.Split(v, ",") {
				if x != "" {
					f.Add(k, x)
				}
			}
		case k == "require_mfa" && v == "":
		default:
			f.Set(k, v)
		}
	}
	return f
}

// TestMFAFormRoundTrip: a rule shown in its form and posted back unchanged
// is the same rule (with require_mfa written out where mfa_methods implied
// it): uniform MFA settings go to the checkboxes, differing ones to the
// role lines.
func TestMFAFormRoundTrip(t *testing.T) {
	const r1, r2, r3 = "arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B", "arn:aws:iam::111122223333:role/C"
	for _, tc := range []struct {
		name      string
		obj       object
		checkbox  string // the form's require_mfa
		methods   string // the form's mfa_methods
		roles     string // the form's role lines
		normalize func(*object)
	}{
		{"no MFA", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x", Roles: []rolemap.RoleRef{{ARN: r1, MaxSessionSeconds: 3600}, {ARN: r2}}}},
			"", "", r1 + " 3600\n" + r2, nil},
		{"all roles, any method", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{{ARN: r1, RequireMFA: true}, {ARN: r2, RequireMFA: true, MaxSessionSeconds: 900}}}},
			"on", "", r1 + "\n" + r2 + " 900", nil},
		{"all roles, passkey only", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{{ARN: r1, RequireMFA: true, MFAMethods: []string{"webauthn"}}}}},
			"on", "webauthn", r1, nil},
		{"mixed roles", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x", Roles: []rolemap.RoleRef{
			{ARN: r1, RequireMFA: true, MFAMethods: []string{"webauthn", "totp"}, MaxSessionSeconds: 7200},
			{ARN: r2},
			{ARN: r3, RequireMFA: true}}}},
			"", "", r1 + " 7200 mfa=webauthn,totp\n" + r2 + "\n" + r3 + " mfa", nil},
		{"mfa_methods without require_mfa", object{kind: kindGrant, grant: rolemap.GrantRule{ID: "g", Group: "x",
			Roles: []rolemap.RoleRef{{ARN: r1, MFAMethods: []string{"totp"}}}}},
			"on", "totp", r1, func(o *object) { o.grant.Roles[0].RequireMFA = true }},
		{"pattern", object{kind: kindPattern, pattern: rolemap.PatternRule{ID: "p", Pattern: "^x$", RoleARN: r1,
			RequireMFA: true, MFAMethods: []string{"webauthn", "recovery"}}}, "on", "webauthn,recovery", "", nil},
		{"pattern without MFA", object{kind: kindPattern, pattern: rolemap.PatternRule{ID: "p", Pattern: "^x$", RoleARN: r1}}, "", "", "", nil},
		{"pattern, methods only", object{kind: kindPattern, pattern: rolemap.PatternRule{ID: "p", Pattern: "^x$", RoleARN: r1, MFAMethods: []string{"totp"}}},
			"on", "totp", "", func(o *object) { o.pattern.RequireMFA = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := objectToForm(tc.obj)
			if m["require_mfa"] != tc.checkbox || m["mfa_methods"] != tc.methods || (tc.obj.kind == kindGrant && m["roles"] != tc.roles) {
				t.Fatalf("form %q", m)
			}
			got, fields := formToObject(tc.obj.kind, formOf(m))
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
}

func TestMFAFormInput(t *testing.T) {
	const r1, r2 = "arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B"
	// The checkboxes apply to every line without its own mfa word.
	o, fields := formToObject(kindGrant, url.Values{"id": {"g"}, "group": {"x"}, "roles": {r1 + " mfa=totp 900\n" + r2},
		"mfa_methods": {"totp", "webauthn"}})
	want := []rolemap.RoleRef{{ARN: r1, MaxSessionSeconds: 900, RequireMFA: true, MFAMethods: []string{"totp"}},
		{ARN: r2, RequireMFA: true, MFAMethods: []string{"webauthn", "totp"}}}
	if len(fields) > 0 || !reflect.DeepEqual(o.grant.Roles, want) {
		t.Fatalf("%+v %v", o.grant.Roles, fields)
	}
	for _, tc := range []struct {
		name  string
		f     url.Values
		field string
		msg   string
	}{
		{"two mfa words", url.Values{"roles": {r1 + " mfa mfa=totp"}}, "roles", "Line 1: write the role ARN, optionally followed by"},
		{"empty list", url.Values{"roles": {r1 + " mfa="}}, "roles", `Line 1: "mfa=" names no method`},
		{"not a number", url.Values{"roles": {r1 + " long"}}, "roles", `Line 1: "long" is not a number of seconds.`},
		{"two numbers", url.Values{"roles": {r1 + " 900 900"}}, "roles", "Line 1: write the role ARN"},
		{"unknown checkbox value", url.Values{"roles": {r1}, "mfa_methods": {"sms"}}, "mfa_methods", `"sms" is not a second factor`},
		{"recovery alone", url.Values{"roles": {r1}, "mfa_methods": {"recovery"}}, "mfa_methods", "Recovery codes alone cannot be met"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fields := formToObject(kindGrant, tc.f)
			if len(fields[tc.field]) != 1 || !strings.HasPrefix(fields[tc.field][0], tc.msg) {
				t.Errorf("fields %q, want %s: %s", fields, tc.field, tc.msg)
			}
		})
	}
	if _, fields := formToObject(kindPattern, url.Values{"mfa_methods": {"recovery"}}); len(fields["mfa_methods"]) != 1 {
		t.Errorf("pattern, recovery alone: %v", fields)
	}
	for _, tc := range []struct {
		require bool
		methods []string
		want    string
	}{
		{false, nil, ""}, {true, nil, "MFA"}, {true, []string{"webauthn"}, "passkey only"}, {false, []string{"webauthn"}, "passkey only"},
		{true, []string{"webauthn", "totp"}, "MFA: webauthn, totp"},
	} {
		if got := mfaLabel(tc.require, tc.methods); got != tc.want {
			t.Errorf("mfaLabel(%v, %v) = %q, want %q", tc.require, tc.methods, got, tc.want)
		}
	}
}

const mfaRules = `accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
grants:
  - id: devs
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        require_mfa: true
      - arn: arn:aws:iam::111122223333:role/Viewer
patterns:
  - id: adfs
    pattern: ^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$
    role_arn: arn:aws:iam::${account}:role/${role}
    mfa_methods: [webauthn]
`

// TestMFAPages: the forms save and show require_mfa and mfa_methods, the
// rules list, the tester and "who gets what" show badges, validation
// problems land on the right field, and the JSON API carries the fields.
func TestMFAPages(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, mfaRules)
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
	// The rules list: a badge per MFA role.
	list := a.get("/admin/rules").body
	for _, want := range []string{
		`role/Developer</code> <span class="tag mfa" title="Handed out only after a sign-in with a second factor">MFA</span>`,
		`${role}</code> <span class="tag mfa" title="Handed out only after a sign-in with a second factor">passkey only</span>`,
	} {
		if !strings.Contains(list, want) {
			t.Errorf("rules list lacks %s", want)
		}
	}
	if strings.Contains(list, "role/Viewer</code> <span class=\"tag mfa\"") {
		t.Error("badge on a role without MFA")
	}
	if l := a.get("/admin/rules?q=passkey").body; !strings.Contains(l, "adfs") || strings.Contains(l, "role/Developer") {
		t.Errorf("filter by badge:\n%s", l)
	}
	// The grant form of a rule whose roles differ: words on the lines.
	edit := a.get("/admin/rules/grants/devs/edit").body
	if !strings.Contains(edit, "arn:aws:iam::111122223333:role/Developer mfa\narn:aws:iam::111122223333:role/Viewer</textarea>") ||
		strings.Contains(edit, `name="require_mfa" type="checkbox" value="on" checked`) {
		t.Errorf("grant form:\n%s", edit)
	}
	// New grant rule, passkeys only for all its roles.
	res := a.post("/admin/rules/grants", url.Values{"version": {"1"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops\narn:aws:iam::111122223333:role/Ops2 3600"}, "require_mfa": {"on"}, "mfa_methods": {"webauthn"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	rs := stored()
	wantOps := []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/Ops", RequireMFA: true, MFAMethods: []string{"webauthn"}},
		{ARN: "arn:aws:iam::111122223333:role/Ops2", MaxSessionSeconds: 3600, RequireMFA: true, MFAMethods: []string{"webauthn"}}}
	if i := find(&rs, kindGrant, "ops"); i < 0 || !reflect.DeepEqual(rs.Grants[i].Roles, wantOps) {
		t.Fatalf("stored %+v", rs.Grants)
	}
	edit = a.get("/admin/rules/grants/ops/edit").body
	for _, want := range []string{`id="f-require-mfa" name="require_mfa" type="checkbox" value="on" checked>`,
		`id="f-mfa-webauthn" name="mfa_methods" type="checkbox" value="webauthn" checked>`,
		`id="f-mfa-totp" name="mfa_methods" type="checkbox" value="totp">`,
		"arn:aws:iam::111122223333:role/Ops\narn:aws:iam::111122223333:role/Ops2 3600</textarea>"} {
		if !strings.Contains(edit, want) {
			t.Errorf("edit form lacks %s", want)
		}
	}
	// An unknown method typed on a line: the validation problem, on its line.
	res = a.post("/admin/rules/grants/ops", url.Values{"version": {"2"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops mfa=sms"}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("roles").MatchString(res.body) ||
		!strings.Contains(res.body, "Line 1: MFA methods: unknown method &#34;sms&#34;") {
		t.Fatalf("bad method: %d %s", res.code, res.body)
	}
	// Recovery codes alone from the boxes: on the boxes, input kept.
	res = a.post("/admin/rules/grants/ops", url.Values{"version": {"2"}, "id": {"ops"}, "group": {"ops"},
		"roles": {"arn:aws:iam::111122223333:role/Ops"}, "mfa_methods": {"recovery"}})
	if res.code != http.StatusUnprocessableEntity || !fieldErr("mfa-methods").MatchString(res.body) ||
		!strings.Contains(res.body, `value="recovery" checked>`) {
		t.Fatalf("recovery alone: %d %s", res.code, res.body)
	}
	// The pattern form.
	pe := a.get("/admin/rules/patterns/adfs/edit").body
	if !strings.Contains(pe, `name="require_mfa" type="checkbox" value="on" checked>`) || !strings.Contains(pe, `value="webauthn" checked>`) {
		t.Errorf("pattern form:\n%s", pe)
	}
	res = a.post("/admin/rules/patterns/adfs", url.Values{"version": {"2"}, "id": {"adfs"}, "pattern": {`^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$`},
		"role_arn": {"arn:aws:iam::${account}:role/${role}"}, "require_mfa": {"on"}, "mfa_methods": {"totp", "webauthn"}})
	if res.code != http.StatusSeeOther {
		t.Fatalf("pattern save: %d %s", res.code, res.body)
	}
	if p := stored().Patterns[0]; !p.RequireMFA || !reflect.DeepEqual(p.MFAMethods, []string{"webauthn", "totp"}) {
		t.Errorf("stored pattern %+v", p)
	}
	// Tester and who gets what: the badge of the merged grant.
	if tr := a.get("/admin/tester?group=AWS-111122223333-Auditor").body; !strings.Contains(tr, `role/Auditor</code> <span class="tag mfa" title="Handed out only after a sign-in with a second factor">MFA: webauthn, totp</span>`) {
		t.Errorf("tester:\n%s", tr)
	}
	wg := a.get("/admin/whogets?username=bob").body
	if !strings.Contains(wg, `role/Developer</code> <span class="tag mfa"`) || strings.Contains(wg, `role/Viewer</code> <span class="tag mfa"`) {
		t.Errorf("who gets what:\n%s", wg)
	}
	// The JSON API carries the fields both ways.
	g := a.api("GET", "/admin/api/grants/ops", nil)
	if g.code != 200 || !strings.Contains(g.body, `"require_mfa":true,"mfa_methods":["webauthn"]`) {
		t.Errorf("api get: %d %s", g.code, g.body)
	}
	res = a.api("POST", "/admin/api/grants", map[string]any{"id": "api", "group": "api",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Api", "mfa_methods": []string{"totp", "totp"}}}}, "If-Match", "3")
	if m := res.json(t); res.code != 422 || !strings.Contains(res.body, `"path":"grants[2].roles[0].mfa_methods[1]"`) {
		t.Errorf("api invalid: %d %v", res.code, m)
	}
	res = a.api("POST", "/admin/api/grants", map[string]any{"id": "api", "group": "api",
		"roles": []map[string]any{{"arn": "arn:aws:iam::111122223333:role/Api", "require_mfa": true}}}, "If-Match", "3")
	if res.code != 201 {
		t.Fatalf("api create: %d %s", res.code, res.body)
	}
	ev := a.api("POST", "/admin/api/evaluate", map[string]any{"groups": []string{"api", "AWS-111122223333-Api"}})
	var out struct {
		Result rolemap.Result `json:"result"`
	}
	if err := json.Unmarshal([]byte(ev.body), &out); err != nil {
		t.Fatalf("%v %s", err, ev.body)
	}
	if !strings.Contains(ev.body, `"require_mfa":true,"mfa_methods":["webauthn","totp"]`) {
		t.Errorf("evaluate: %s", ev.body)
	}
}

// TestAWSSetupMFAPage: the AWS setup page and AWSSetup add the MFA
// condition to the trust policies of roles that every rule naming them
// marks require_mfa, note roles on which the rules disagree, and warn
// when no MFA session tag is sent.
func TestAWSSetupMFAPage(t *testing.T) {
	rs := rolemap.RuleSet{
		Accounts: []rolemap.Account{{ID: "111122223333", Name: "prod", SAMLProvider: "w"}},
		Grants: []rolemap.GrantRule{
			{ID: "a", Group: "g", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/Both", MFAMethods: []string{"totp"}},
				{ARN: "arn:aws:iam::111122223333:role/Mixed", RequireMFA: true}, {ARN: "arn:aws:iam::111122223333:role/Any", RequireMFA: true}}},
			{ID: "b", Group: "h", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/Both", MFAMethods: []string{"webauthn"}},
				{ARN: "arn:aws:iam::111122223333:role/Mixed"}, {ARN: "arn:aws:iam::111122223333:role/Any", RequireMFA: true, MFAMethods: []string{"webauthn"}}}},
		},
		Patterns: []rolemap.PatternRule{{ID: "p", Pattern: "^X-(?P<r>\\w+)$", RoleARN: "arn:aws:iam::111122223333:role/${r}", RequireMFA: true}},
	}
	accts, notes := AWSSetupAccounts(rs, awsfed.SetupOptions{MFAMethods: []string{"webauthn", "totp"}})
	got := map[string]string{}
	for _, r := range accts[0].Roles {
		got[r.ARN[strings.LastIndexByte(r.ARN, '/')+1:]] = strings.TrimSpace(strings.Join(append([]string{map[bool]string{true: "mfa", false: "-"}[r.RequireMFA]}, r.MFAMethods...), " "))
	}
	// Both: the union of the lists; Any: one rule accepts any method.
	if want := map[string]string{"Both": "mfa webauthn totp", "Mixed": "-", "Any": "mfa"}; !reflect.DeepEqual(got, want) {
		t.Errorf("roles %v, want %v", got, want)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], `add "aws:RequestTag/WardenAuth": ["webauthn", "totp"] to the StringEquals of both statements`) ||
		!strings.HasPrefix(notes[1], "role arn:aws:iam::111122223333:role/Mixed requires MFA in grant rule a but not in grant rule b") {
		t.Errorf("notes:\n%s", strings.Join(notes, "\n"))
	}

	e := newEnv(t, Config{})
	seed(t, e, mfaRules)
	a := newClient(t, e.srv.URL)
	a.login("alice", pw)
	opts := awsfed.SetupOptions{MetadataURL: "https://sso.example.com/saml/metadata", SAML: true, SAMLPartition: "aws",
		Issuer: "https://sso.example.com", MFAMethods: []string{"webauthn", "totp"}}
	e.admin.SetAWSSetup(opts)
	page := a.get("/admin/aws-setup").body
	for _, want := range []string{
		`role/Developer</code> <span class="tag mfa">MFA: webauthn, totp</span></h3>`,
		`AWS checks MFA: <code>aws:RequestTag/WardenAuth</code> must be one of <code>webauthn</code>, <code>totp</code>:`,
		`&#34;aws:RequestTag/WardenAuth&#34;: [`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Count(page, "&#34;aws:RequestTag/WardenAuth&#34;: [\n") != 2 {
		t.Errorf("want the condition in both statements of the one MFA role:\n%s", page)
	}
	opts.MFASessionTag = "-"
	e.admin.SetAWSSetup(opts)
	page = a.get("/admin/aws-setup").body
	for _, bad := range []string{"aws:RequestTag/WardenAuth"} {
		if strings.Contains(page, bad) {
			t.Errorf("no tag, page has %s", bad)
		}
	}
	for _, want := range []string{"so AWS cannot enforce the role&#39;s MFA requirement", "<strong>AWS cannot check this role's MFA requirement</strong>",
		"so AWS cannot enforce the rule&#39;s MFA requirement"} {
		if !strings.Contains(page, want) {
			t.Errorf("no tag, page lacks %s", want)
		}
	}
}
