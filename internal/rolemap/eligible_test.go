package rolemap

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
)

// eligibleRuleSet: admins hold prod Admin standing; oncall (and the
// pattern ELEV-…) may request it and other roles.
func eligibleRuleSet() RuleSet {
	rs := testRuleSet()
	rs.Grants = append(rs.Grants,
		GrantRule{ID: "oncall", Group: "oncall", Roles: []RoleRef{
			{ARN: arn(prod, "Admin"), MaxSessionSeconds: 7200, RequireMFA: true, Access: AccessEligible, MaxDuration: "90m",
				Approvers: "cn=approvers,ou=groups,dc=example,dc=org", ReasonPattern: `INC-[0-9]+`},
			{ARN: arn(staging, "Admin"), Access: AccessEligible, RequireReason: true},
			{ARN: arn(staging, "PowerUser"), MaxSessionSeconds: 7200, Access: AccessEligible},
		}},
		GrantRule{ID: "oncall-2", Group: "oncall", Roles: []RoleRef{
			{ARN: arn(prod, "Admin"), MaxSessionSeconds: 7200, MFAMethods: []string{"webauthn"}, Access: AccessEligible, MaxDuration: "2h"},
		}},
		GrantRule{ID: "b-standing", Group: "auditors", Roles: []RoleRef{{ARN: arn(staging, "Admin")}}},
	)
	rs.Patterns = append(rs.Patterns, PatternRule{ID: "elev", Pattern: `^ELEV-(?P<account>\d{12})-(?P<role>\w+)$`,
		RoleARN: "arn:aws:iam::${account}:role/${role}", Access: AccessEligible, MaxDuration: "30m", RequireMFA: true})
	return rs
}

func groups(names ...string) Input {
	in := Input{Username: "user"}
	for _, n := range names {
		in.Groups = append(in.Groups, identity.Group{Name: n})
	}
	return in
}

func TestEligibleOnly(t *testing.T) {
	e := mustCompile(t, eligibleRuleSet())
	r := e.Evaluate(groups("oncall"))
	if len(r.Grants) != 0 || len(r.Dropped) != 0 {
		t.Fatalf("grants %v, dropped %v: eligible roles must not be granted", roleARNs(r.Grants), r.Dropped)
	}
	if got, want := roleARNs(r.Eligible), []string{arn(prod, "Admin"), arn(staging, "Admin"), arn(staging, "PowerUser")}; !slices.Equal(got, want) {
		t.Fatalf("eligible %v, want %v", got, want)
	}
	// prod Admin: two eligible rules; the first in rule ID order sets the
	// terms, MFA is merged as for standing roles.
	g := r.Eligible[0]
	wantElig := Eligibility{MaxSeconds: 5400, Approvers: "cn=approvers,ou=groups,dc=example,dc=org", RequireReason: true, ReasonPattern: `INC-[0-9]+`}
	if g.Eligible == nil || g.Eligible.MaxSeconds != wantElig.MaxSeconds || g.Eligible.Approvers != wantElig.Approvers ||
		!g.Eligible.RequireReason || g.Eligible.ReasonPattern != wantElig.ReasonPattern {
		t.Errorf("prod Admin eligibility %+v, want %+v", g.Eligible, wantElig)
	}
	if g.RuleID != "oncall" || g.RuleKind != KindGrant || g.Group != "oncall" || !slices.Equal(g.Rules, []string{"oncall", "oncall-2"}) ||
		g.SessionSeconds != 7200 || !g.RequireMFA || !slices.Equal(g.MFAMethods, []string{"webauthn"}) || g.Elevation != nil {
		t.Errorf("prod Admin %+v", g)
	}
	if g.ProviderARN != "arn:aws:iam::"+prod+":saml-provider/warden" || g.AccountName != "prod" || g.RoleName != "Admin" {
		t.Errorf("prod Admin account fields %+v", g)
	}
	// Defaults: no max_duration is the session length, 1h when none is set.
	if el := r.Eligible[1].Eligible; el == nil || el.MaxSeconds != 3600 || el.Approvers != "" || !el.RequireReason || el.ReasonPattern != "" {
		t.Errorf("staging Admin eligibility %+v", el)
	}
	if el := r.Eligible[2].Eligible; el == nil || el.MaxSeconds != 7200 || el.RequireReason {
		t.Errorf("staging PowerUser eligibility %+v", el)
	}
	// The Eligibility handed out is a copy.
	r.Eligible[0].Eligible.MaxSeconds = 1
	if again := e.Evaluate(groups("oncall")); again.Eligible[0].Eligible.MaxSeconds != 5400 {
		t.Error("changing a result's Eligibility changed the engine")
	}
}

func TestStandingBeatsEligible(t *testing.T) {
	e := mustCompile(t, eligibleRuleSet())
	// admins: prod Admin standing (3600, no MFA); oncall: eligible (7200,
	// MFA). developers: staging PowerUser standing; oncall: eligible.
	r := e.Evaluate(groups("oncall", "admins", "developers"))
	if got, want := roleARNs(r.Eligible), []string{arn(staging, "Admin")}; !slices.Equal(got, want) {
		t.Errorf("eligible %v, want %v", got, want)
	}
	var admin, power *Grant
	for i := range r.Grants {
		switch r.Grants[i].RoleARN {
		case arn(prod, "Admin"):
			admin = &r.Grants[i]
		case arn(staging, "PowerUser"):
			power = &r.Grants[i]
		}
	}
	if admin == nil || power == nil {
		t.Fatalf("standing roles missing: %v", roleARNs(r.Grants))
	}
	// Made from the standing hits alone.
	if admin.RuleID != "admins" || !slices.Equal(admin.Rules, []string{"admins"}) || admin.SessionSeconds != 3600 || admin.RequireMFA || admin.Eligible != nil {
		t.Errorf("prod Admin %+v", *admin)
	}
	if power.RuleID != "devs" || !slices.Equal(power.Rules, []string{"devs"}) || power.SessionSeconds != 0 || power.Eligible != nil {
		t.Errorf("staging PowerUser %+v", *power)
	}
	// A standing rule whose ID sorts after the eligible one still wins.
	r = e.Evaluate(groups("oncall", "auditors"))
	if slices.Contains(roleARNs(r.Eligible), arn(staging, "Admin")) || !slices.Contains(roleARNs(r.Grants), arn(staging, "Admin")) {
		t.Errorf("auditors + oncall: grants %v, eligible %v", roleARNs(r.Grants), roleARNs(r.Eligible))
	}
}

func TestEligiblePattern(t *testing.T) {
	e := mustCompile(t, eligibleRuleSet())
	r := e.Evaluate(groups("ELEV-444455556666-Deploy", "ELEV-111122223333-Admin", "AWS-111122223333-Deploy"))
	if got, want := roleARNs(r.Grants), []string{arn(prod, "Deploy")}; !slices.Equal(got, want) {
		t.Errorf("grants %v, want %v", got, want)
	}
	if got, want := roleARNs(r.Eligible), []string{arn(prod, "Admin"), arn(staging, "Deploy")}; !slices.Equal(got, want) {
		t.Fatalf("eligible %v, want %v", got, want)
	}
	for _, g := range r.Eligible {
		if g.RuleKind != KindPattern || g.RuleID != "elev" || g.Eligible == nil || g.Eligible.MaxSeconds != 1800 || !g.RequireMFA {
			t.Errorf("pattern eligible %+v (%+v)", g, g.Eligible)
		}
	}
	// The pattern and the oncall grant rule give prod Admin: "elev" sorts
	// before "oncall", so its terms win; the grant rule's approvers do not
	// carry over.
	r = e.Evaluate(groups("oncall", "ELEV-111122223333-Admin"))
	if g := r.Eligible[0]; g.RoleARN != arn(prod, "Admin") || g.RuleID != "elev" || g.Eligible.MaxSeconds != 1800 || g.Eligible.Approvers != "" ||
		!slices.Equal(g.Rules, []string{"elev", "oncall", "oncall-2"}) {
		t.Errorf("pattern + grant: %+v (%+v)", g, g.Eligible)
	}
	// A standing pattern hit beats the eligible grant rule.
	r = e.Evaluate(groups("oncall", "AWS-111122223333-Admin"))
	if slices.Contains(roleARNs(r.Eligible), arn(prod, "Admin")) || !slices.Contains(roleARNs(r.Grants), arn(prod, "Admin")) {
		t.Errorf("standing pattern + eligible grant: grants %v, eligible %v", roleARNs(r.Grants), roleARNs(r.Eligible))
	}
}

func TestEligibleTestGroupAndJSON(t *testing.T) {
	e := mustCompile(t, eligibleRuleSet())
	if got := e.TestGroup("oncall"); len(got) != 0 {
		t.Errorf("TestGroup(oncall) = %v", roleARNs(got))
	}
	r := e.TestGroupResult("oncall")
	if len(r.Eligible) != 3 || len(r.Grants) != 0 {
		t.Fatalf("TestGroupResult(oncall) = %+v", r)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"grants":null`, `"eligible":[{"role_arn":"arn:aws:iam::111122223333:role/Admin"`,
		`"eligible":{"max_seconds":5400,"approvers":"cn=approvers,ou=groups,dc=example,dc=org","require_reason":true,"reason_pattern":"INC-[0-9]+"}`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	if strings.Contains(string(js), `"elevation"`) {
		t.Errorf("JSON has an elevation: %s", js)
	}
	// A rule set without eligible roles has no "eligible" key.
	js, _ = json.Marshal(mustCompile(t, testRuleSet()).Evaluate(bob()))
	if strings.Contains(string(js), `"eligible"`) {
		t.Errorf("JSON of standing grants: %s", js)
	}
}

func TestCheckReason(t *testing.T) {
	anyReason := &Eligibility{MaxSeconds: 3600}
	required := &Eligibility{MaxSeconds: 3600, RequireReason: true}
	e := mustCompile(t, eligibleRuleSet())
	pattern := e.Evaluate(groups("oncall")).Eligible[0].Eligible // INC-[0-9]+, compiled
	var fromJSON Eligibility                                     // not compiled
	if err := json.Unmarshal([]byte(`{"max_seconds":3600,"reason_pattern":"^INC-[0-9]+$"}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	bad := &Eligibility{ReasonPattern: "(x"}
	for _, tc := range []struct {
		name   string
		e      *Eligibility
		reason string
		errSub string // "" for nil
	}{
		{"nil accepts anything", nil, "", ""},
		{"no reason needed", anyReason, "", ""},
		{"reason given anyway", anyReason, "because", ""},
		{"required, missing", required, "", "this role needs a reason"},
		{"required, blank", required, " \t", "this role needs a reason"},
		{"required, given", required, "deploy hotfix", ""},
		{"pattern, missing", pattern, "", "this role needs a reason matching INC-[0-9]+"},
		{"pattern, no match", pattern, "fixing things", "the reason must match INC-[0-9]+"},
		{"pattern, not anchored", pattern, "see INC-42 for details", ""},
		{"pattern, exact", pattern, "INC-42", ""},
		{"uncompiled pattern, anchored", &fromJSON, "see INC-42", "the reason must match ^INC-[0-9]+$"},
		{"uncompiled pattern, match", &fromJSON, "INC-42", ""},
		{"uncompiled pattern implies a reason", &fromJSON, "", "needs a reason"},
		{"invalid pattern", bad, "x", "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.CheckReason(tc.reason)
			switch {
			case tc.errSub == "" && err != nil:
				t.Errorf("CheckReason(%q) = %v", tc.reason, err)
			case tc.errSub != "" && (err == nil || !strings.Contains(err.Error(), tc.errSub)):
				t.Errorf("CheckReason(%q) = %v, want %q", tc.reason, err, tc.errSub)
			}
		})
	}
}

// TestEligibleYAML: the elevation fields parse strictly, round-trip
// through the canonical YAML and JSON, and are left out when empty.
func TestEligibleYAML(t *testing.T) {
	doc := `
accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
grants:
  - id: oncall
    group: oncall
    roles:
      - arn: arn:aws:iam::111122223333:role/Admin
        max_session_seconds: 7200
        access: eligible
        max_duration: 90m
        approvers: cn=approvers,ou=groups,dc=example,dc=org
        require_reason: true
        reason_pattern: ^INC-[0-9]+
      - arn: arn:aws:iam::111122223333:role/ReadOnly
        access: standing
patterns:
  - id: elev
    pattern: ^ELEV-(?P<role>\w+)$
    role_arn: arn:aws:iam::111122223333:role/${role}
    access: eligible
    max_duration: 30m
    approvers: ops-leads
    reason_pattern: '[A-Z]+-\d+'
`
	rs, err := ParseYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ps := rs.Validate(); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	want := RoleRef{ARN: "arn:aws:iam::111122223333:role/Admin", MaxSessionSeconds: 7200, Access: AccessEligible, MaxDuration: "90m",
		Approvers: "cn=approvers,ou=groups,dc=example,dc=org", RequireReason: true, ReasonPattern: "^INC-[0-9]+"}
	if r := rs.Grants[0].Roles[0]; !reflect.DeepEqual(r, want) || !r.IsEligible() || rs.Grants[0].Roles[1].IsEligible() {
		t.Errorf("parsed %+v", rs.Grants[0].Roles)
	}
	if p := rs.Patterns[0]; !p.IsEligible() || p.MaxDuration != "30m" || p.Approvers != "ops-leads" || p.ReasonPattern != `[A-Z]+-\d+` || p.RequireReason {
		t.Errorf("parsed pattern %+v", p)
	}
	out, err := rs.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"        access: eligible\n        max_duration: 90m\n        approvers: cn=approvers,ou=groups,dc=example,dc=org\n        require_reason: true\n        reason_pattern: ^INC-[0-9]+\n",
		"        access: standing\n",
		"    access: eligible\n    max_duration: 30m\n    approvers: ops-leads\n    reason_pattern: '[A-Z]+-\\d+'\n",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("canonical YAML lacks %q:\n%s", w, out)
		}
	}
	back, err := ParseYAML(out)
	if err != nil || !reflect.DeepEqual(back.clone(), rs.Canonical()) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, rs.Canonical())
	}
	js, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"access":"eligible","max_duration":"90m","approvers":"cn=approvers,ou=groups,dc=example,dc=org","require_reason":true,"reason_pattern":"^INC-[0-9]+"`) {
		t.Errorf("JSON %s", js)
	}
	var fromJSON RuleSet
	if err := json.Unmarshal(js, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON.clone(), rs.clone()) {
		t.Errorf("JSON round trip: %v\n%+v", err, fromJSON)
	}
	// Standing roles write none of the new keys.
	plain, _ := testRuleSet().MarshalYAML()
	for _, k := range []string{"access", "max_duration", "approvers", "require_reason", "reason_pattern"} {
		if strings.Contains(string(plain), k+":") {
			t.Errorf("standing rule set writes %s:\n%s", k, plain)
		}
	}
	// Kinds are checked strictly.
	_, err = ParseYAML([]byte("grants:\n  - id: a\n    roles:\n      - require_reason: yes please\n        max_duration: [1h]\n"))
	if err == nil || !strings.Contains(err.Error(), "grants[0].roles[0].require_reason: must be true or false, got a string (line 4)") ||
		!strings.Contains(err.Error(), "grants[0].roles[0].max_duration: must be a string, got a list (line 5)") {
		t.Errorf("strict kinds: %v", err)
	}
	_, err = ParseYAML([]byte("patterns:\n  - id: a\n    max_duraton: 1h\n"))
	if err == nil || !strings.Contains(err.Error(), `patterns[0].max_duraton: unknown key (line 3); did you mean "max_duration"?`) {
		t.Errorf("typo: %v", err)
	}
}

func TestShortDuration(t *testing.T) {
	for secs, want := range map[int]string{0: "0s", 45: "45s", 900: "15m", 3600: "1h", 5400: "1h30m", 3661: "1h1m1s", 43200: "12h"} {
		if got := ShortDuration(secs); got != want {
			t.Errorf("ShortDuration(%d) = %q, want %q", secs, got, want)
		}
	}
}
