package rolemap

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
)

const (
	prod    = "111122223333"
	staging = "444455556666"
	gov     = "777788889999"
)

func arn(acct, name string) string {
	if acct == gov {
		return "arn:aws-us-gov:iam::" + acct + ":role/" + name
	}
	return "arn:aws:iam::" + acct + ":role/" + name
}

func testRuleSet() RuleSet {
	return RuleSet{
		Accounts: []Account{
			{ID: prod, Name: "prod", SAMLProvider: "warden"},
			{ID: staging, Name: "staging", Partition: "aws", SAMLProvider: "warden"},
			{ID: gov, Name: "sandbox", Partition: "aws-us-gov", SAMLProvider: "warden-gov"},
		},
		Grants: []GrantRule{
			{ID: "admins", Group: "admins", Roles: []RoleRef{{ARN: arn(prod, "Admin"), MaxSessionSeconds: 3600}, {ARN: arn(gov, "Admin")}}},
			{ID: "devs", Group: "Developers", Roles: []RoleRef{{ARN: arn(prod, "ReadOnly"), MaxSessionSeconds: 3600}, {ARN: arn(staging, "PowerUser")}}},
			{ID: "eng-dn", Group: "CN=Engineering, OU=Groups, DC=example, DC=org", Roles: []RoleRef{{ARN: arn(prod, "ViewOnly")}}},
			{ID: "staff-readonly", Group: "staff", Roles: []RoleRef{{ARN: arn(prod, "ReadOnly"), MaxSessionSeconds: 7200}}},
			{ID: "pat-dn", Group: `cn=Pat O'Connor\, Jr. (ext*),ou=people,dc=example,dc=org`, Roles: []RoleRef{{ARN: arn(staging, "Odd")}}},
		},
		Patterns: []PatternRule{
			{ID: "adfs", Pattern: `^AWS-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$`, RoleARN: "arn:aws:iam::${account}:role/${role}", MaxSessionSeconds: 900},
			{ID: "team", Pattern: `(?i)team-(?P<team>[a-z]+)-ops`, RoleARN: "arn:aws:iam::" + staging + ":role/teams/${team}/Ops"},
			{ID: "gov", Pattern: `^gov-(?P<p>aws[a-z-]*)-(?P<r>.+)$`, RoleARN: "arn:${p}:iam::" + gov + ":role/${r}"},
		},
		Tags: TagRules{
			Attributes: []TagAttribute{
				{Attribute: "email", Key: "email"},
				{Attribute: "Department", Key: "department", Transitive: true},
				{Attribute: "display_name", Key: "name"},
			},
			SourceIdentity: "username",
		},
	}
}

func mustCompile(t testing.TB, rs RuleSet) *Engine {
	t.Helper()
	e, err := Compile(rs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

func grp(dn string, direct bool) identity.Group {
	return identity.Group{DN: dn, Name: firstRDNValue(dn), Direct: direct}
}

// bob as the directory returns him: direct member of developers, nested in
// engineering, staff and company.
func bob() Input {
	return Input{
		Username: "bob", Email: "bob@example.org", DisplayName: "Bob Brown",
		Attributes: map[string][]string{"department": {"Engineering"}},
		Groups: []identity.Group{
			grp("cn=company,ou=groups,dc=example,dc=org", false),
			grp("cn=developers,ou=groups,dc=example,dc=org", true),
			grp("cn=engineering,ou=groups,dc=example,dc=org", false),
			grp("cn=staff,ou=groups,dc=example,dc=org", false),
		},
	}
}

func roleARNs(gs []Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.RoleARN
	}
	return out
}

func TestEvaluateBob(t *testing.T) {
	e := mustCompile(t, testRuleSet())
	r := e.Evaluate(bob())
	want := []Grant{
		{RoleARN: arn(prod, "ReadOnly"), ProviderARN: "arn:aws:iam::" + prod + ":saml-provider/warden", AccountID: prod, AccountName: "prod",
			Partition: "aws", RoleName: "ReadOnly", SessionSeconds: 7200, RuleID: "devs", RuleKind: KindGrant,
			Group: "cn=developers,ou=groups,dc=example,dc=org", Rules: []string{"devs", "staff-readonly"}},
		{RoleARN: arn(prod, "ViewOnly"), ProviderARN: "arn:aws:iam::" + prod + ":saml-provider/warden", AccountID: prod, AccountName: "prod",
			Partition: "aws", RoleName: "ViewOnly", RuleID: "eng-dn", RuleKind: KindGrant,
			Group: "cn=engineering,ou=groups,dc=example,dc=org", Rules: []string{"eng-dn"}},
		{RoleARN: arn(staging, "PowerUser"), ProviderARN: "arn:aws:iam::" + staging + ":saml-provider/warden", AccountID: staging, AccountName: "staging",
			Partition: "aws", RoleName: "PowerUser", RuleID: "devs", RuleKind: KindGrant,
			Group: "cn=developers,ou=groups,dc=example,dc=org", Rules: []string{"devs"}},
	}
	if !reflect.DeepEqual(r.Grants, want) {
		t.Errorf("grants:\n got %+v\nwant %+v", r.Grants, want)
	}
	wantTags := []Tag{{Key: "department", Value: "Engineering", Transitive: true}, {Key: "email", Value: "bob@example.org"}, {Key: "name", Value: "Bob Brown"}}
	if !reflect.DeepEqual(r.Tags, wantTags) {
		t.Errorf("tags = %+v, want %+v", r.Tags, wantTags)
	}
	if r.SourceIdentity != "bob" || len(r.Dropped) != 0 {
		t.Errorf("source identity %q, dropped %v", r.SourceIdentity, r.Dropped)
	}
}

func TestMatching(t *testing.T) {
	e := mustCompile(t, testRuleSet())
	for _, tc := range []struct {
		name  string
		group identity.Group
		want  []string
	}{
		{"CN exact", identity.Group{Name: "admins"}, []string{arn(prod, "Admin"), arn(gov, "Admin")}},
		{"CN other case", identity.Group{DN: "cn=ADMINS,ou=x", Name: "ADMINS"}, []string{arn(prod, "Admin"), arn(gov, "Admin")}},
		{"CN rule written in upper case", identity.Group{Name: "developers"}, []string{arn(prod, "ReadOnly"), arn(staging, "PowerUser")}},
		{"CN is not a substring match", identity.Group{Name: "admins2"}, nil},
		{"CN matches whatever the OU", identity.Group{DN: "cn=admins,ou=elsewhere,dc=other", Name: "admins"}, []string{arn(prod, "Admin"), arn(gov, "Admin")}},
		{"DN normalized", identity.Group{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering"}, []string{arn(prod, "ViewOnly")}},
		{"DN with spaces and case", identity.Group{DN: " CN = ENGINEERING ,ou=Groups,dc=EXAMPLE,dc=org", Name: "x"}, []string{arn(prod, "ViewOnly")}},
		{"DN in another OU does not match", identity.Group{DN: "cn=engineering,ou=other,dc=example,dc=org", Name: "engineering"}, nil},
		{"DN rule needs the DN, not the CN", identity.Group{Name: "engineering"}, nil},
		{"nested group grants the same", identity.Group{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering", Direct: false}, []string{arn(prod, "ViewOnly")}},
		{"escaped comma DN (pat)", identity.Group{DN: `CN=pat o'connor\2C jr. (EXT*), OU=people,DC=example,DC=org`, Name: "Pat O'Connor, Jr. (ext*)"}, []string{arn(staging, "Odd")}},
		{"unparsable DN, CN still matches", identity.Group{DN: "cn=admins,", Name: "admins"}, []string{arn(prod, "Admin"), arn(gov, "Admin")}},
		{"pattern", identity.Group{Name: "AWS-444455556666-Deploy"}, []string{arn(staging, "Deploy")}},
		{"pattern is case-sensitive unless (?i)", identity.Group{Name: "aws-444455556666-Deploy"}, nil},
		{"unanchored (?i) pattern with path", identity.Group{Name: "x-TEAM-blue-ops-y"}, []string{"arn:aws:iam::" + staging + ":role/teams/blue/Ops"}},
		{"partition from a capture", identity.Group{Name: "gov-aws-us-gov-Auditor"}, []string{arn(gov, "Auditor")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Evaluate(Input{Groups: []identity.Group{tc.group}})
			if got := roleARNs(r.Grants); !slices.Equal(got, tc.want) {
				t.Errorf("grants %v, want %v (dropped %v)", got, tc.want, r.Dropped)
			}
			if got := roleARNs(e.TestGroup(tc.group.Name)); tc.group.DN == "" && !slices.Equal(got, tc.want) {
				t.Errorf("TestGroup(%q) = %v, want %v", tc.group.Name, got, tc.want)
			}
		})
	}
}

func TestTestGroupDN(t *testing.T) {
	e := mustCompile(t, testRuleSet())
	if got := roleARNs(e.TestGroup("cn=Engineering,ou=groups,dc=example,dc=org")); !slices.Equal(got, []string{arn(prod, "ViewOnly")}) {
		t.Errorf("TestGroup(DN) = %v", got)
	}
	if got := roleARNs(e.TestGroup(`cn=AWS-111122223333-X,ou=groups,dc=example,dc=org`)); !slices.Equal(got, []string{arn(prod, "X")}) {
		t.Errorf("TestGroup(DN with pattern CN) = %v", got)
	}
	if g := GroupFromString(" admins "); g.Name != "admins" || g.DN != "" {
		t.Errorf("GroupFromString = %+v", g)
	}
	if g := GroupFromString("a=b=c,"); g.Name != "a=b=c," || g.DN != "" {
		t.Errorf("GroupFromString(non-DN with =) = %+v", g)
	}
}

func TestPatternDropped(t *testing.T) {
	e := mustCompile(t, testRuleSet())
	for _, tc := range []struct{ name, group, msg string }{
		{"account not in catalogue", "AWS-999999999999-Admin", "account 999999999999 is not in the accounts catalogue"},
		{"role name too long", "AWS-111122223333-" + strings.Repeat("r", 65), "longer than 64"},
		{"partition mismatch", "gov-aws-Auditor", `account 777788889999 is in partition "aws-us-gov", the ARN says "aws"`},
		{"unknown partition from capture", "gov-aws-eu-Auditor", "unknown partition"},
		{"invalid name from capture", "gov-aws-us-gov-a b", "outside [A-Za-z0-9_+=,.@-]"},
		{"capture with colon", "gov-aws-us-gov-a:b", "outside"},
		// IAM allows a comma; the SAML Role attribute cannot carry one.
		{"capture with a comma", "AWS-111122223333-Ops,Admin", `gives "arn:aws:iam::111122223333:role/Ops,Admin": invalid ARN: role name "Ops,Admin" has a comma at byte 3`},
		{"capture with a comma in the path", "gov-aws-us-gov-a,b/Auditor", `role path "/a,b/" has a comma`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Evaluate(Input{Groups: []identity.Group{{Name: tc.group}, {Name: "admins"}}})
			if len(r.Grants) != 2 {
				t.Errorf("grants of admins should remain: %v", roleARNs(r.Grants))
			}
			if len(r.Dropped) != 1 || !strings.HasPrefix(r.Dropped[0].Path, "patterns[") || !strings.Contains(r.Dropped[0].Message, tc.msg) || !strings.Contains(r.Dropped[0].Message, tc.group[:5]) {
				t.Errorf("dropped = %v, want one mentioning %q", r.Dropped, tc.msg)
			}
			for _, g := range r.Grants {
				if strings.Contains(g.RoleARN, "Auditor") || strings.Contains(g.RoleARN, "999999999999") || strings.Contains(g.RoleARN, ",") {
					t.Errorf("invalid grant kept: %+v", g)
				}
			}
		})
	}
}

func TestDedupAndSessionMerge(t *testing.T) {
	rs := testRuleSet()
	rs.Grants = append(rs.Grants,
		GrantRule{ID: "a-first", Group: "company", Roles: []RoleRef{{ARN: arn(staging, "Deploy"), MaxSessionSeconds: 1800}}},
		GrantRule{ID: "z-last", Group: "cn=company,ou=x,dc=y", Roles: []RoleRef{{ARN: arn(staging, "Deploy")}}},
	)
	e := mustCompile(t, rs)
	in := Input{Groups: []identity.Group{
		{Name: "company"},
		{Name: "AWS-444455556666-Deploy"},             // the pattern gives it too, 900 s
		{DN: "cn=company,ou=x,dc=y", Name: "company"}, // same CN twice
	}}
	r := e.Evaluate(in)
	if len(r.Grants) != 1 {
		t.Fatalf("want one grant, got %+v", r.Grants)
	}
	g := r.Grants[0]
	if g.SessionSeconds != 1800 || g.RuleID != "a-first" || g.RuleKind != KindGrant || !slices.Equal(g.Rules, []string{"a-first", "adfs", "z-last"}) {
		t.Errorf("merged grant = %+v", g)
	}
	if g.Group != "cn=company,ou=x,dc=y" {
		t.Errorf("group = %q, want the first in sort order", g.Group)
	}
	// No explicit length from any rule: 0.
	r = e.Evaluate(Input{Groups: []identity.Group{{DN: "CN=Company,OU=X,DC=Y", Name: "not-company"}}})
	if len(r.Grants) != 1 || r.Grants[0].SessionSeconds != 0 || r.Grants[0].RuleID != "z-last" {
		t.Errorf("grants = %+v", r.Grants)
	}
}

// TestMFAMerge: the strictest of the rules that give a role wins:
// require_mfa if any requires it, the intersection of the mfa_methods
// lists, and a list that shares nothing with the lists before it (in rule
// ID order) is left out and reported.
func TestMFAMerge(t *testing.T) {
	r, s := arn(prod, "R"), arn(prod, "S")
	rs := testRuleSet()
	rs.Grants = append(rs.Grants,
		GrantRule{ID: "a-any", Group: "g-any", Roles: []RoleRef{{ARN: r, RequireMFA: true}, {ARN: s}}},
		GrantRule{ID: "b-two", Group: "g-two", Roles: []RoleRef{{ARN: r, MFAMethods: []string{"totp", "webauthn"}}}},
		GrantRule{ID: "c-key", Group: "g-key", Roles: []RoleRef{{ARN: r, RequireMFA: false, MFAMethods: []string{"webauthn"}}}},
		GrantRule{ID: "d-otp", Group: "g-otp", Roles: []RoleRef{{ARN: r, MFAMethods: []string{"totp"}}}},
		GrantRule{ID: "e-none", Group: "g-none", Roles: []RoleRef{{ARN: r}, {ARN: s, MaxSessionSeconds: 900}}},
	)
	rs.Patterns = append(rs.Patterns, PatternRule{ID: "p-mfa", Pattern: `^mfa-(?P<role>\w+)$`, RoleARN: "arn:aws:iam::" + prod + ":role/${role}",
		MFAMethods: []string{"recovery", "webauthn"}})
	e := mustCompile(t, rs)
	for _, tc := range []struct {
		name    string
		groups  []string
		require bool
		methods []string
		dropped []string
	}{
		{"no rule requires it", []string{"g-none"}, false, nil, nil},
		{"require_mfa without methods", []string{"g-any"}, true, nil, nil},
		{"one rule requires it, another not", []string{"g-none", "g-any"}, true, nil, nil},
		{"mfa_methods imply require_mfa, strongest first", []string{"g-two"}, true, []string{"webauthn", "totp"}, nil},
		{"any method and a list: the list", []string{"g-any", "g-two"}, true, []string{"webauthn", "totp"}, nil},
		{"intersection", []string{"g-two", "g-key"}, true, []string{"webauthn"}, nil},
		{"intersection, other rule", []string{"g-two", "g-otp"}, true, []string{"totp"}, nil},
		{"pattern rule", []string{"mfa-R"}, true, []string{"webauthn", "recovery"}, nil},
		{"pattern and grant", []string{"mfa-R", "g-two"}, true, []string{"webauthn"}, nil},
		{"disjoint: the later rule's list is left out", []string{"g-otp", "g-key"}, true, []string{"webauthn"},
			[]string{"grants[d-otp].mfa_methods: role " + r + ": mfa_methods totp share no method with webauthn of rule c-key; this list is left out and the role takes webauthn"}},
		{"disjoint after an intersection", []string{"g-two", "g-key", "g-otp", "mfa-R", "g-none"}, true, []string{"webauthn"},
			[]string{"grants[d-otp].mfa_methods: role " + r + ": mfa_methods totp share no method with webauthn of rules b-two, c-key"}},
		{"disjoint pattern", []string{"g-otp", "mfa-R"}, true, []string{"totp"},
			[]string{"patterns[p-mfa].mfa_methods: role " + r + ": mfa_methods webauthn, recovery share no method with totp of rule d-otp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in Input
			for _, g := range tc.groups {
				in.Groups = append(in.Groups, identity.Group{Name: g}, identity.Group{DN: "cn=" + g + ",ou=x,dc=y", Name: g})
			}
			res := e.Evaluate(in)
			var got *Grant
			for i := range res.Grants {
				if res.Grants[i].RoleARN == r {
					got = &res.Grants[i]
				} else if res.Grants[i].RequireMFA || res.Grants[i].MFAMethods != nil {
					t.Errorf("%s requires MFA: %+v", res.Grants[i].RoleARN, res.Grants[i])
				}
			}
			if got == nil {
				t.Fatalf("no grant of R: %+v", res.Grants)
			}
			if got.RequireMFA != tc.require || !slices.Equal(got.MFAMethods, tc.methods) {
				t.Errorf("RequireMFA %v, MFAMethods %v; want %v, %v", got.RequireMFA, got.MFAMethods, tc.require, tc.methods)
			}
			if len(res.Dropped) != len(tc.dropped) {
				t.Fatalf("dropped %v, want %v", res.Dropped, tc.dropped)
			}
			for i, d := range tc.dropped {
				if !strings.HasPrefix(res.Dropped[i].String(), d) {
					t.Errorf("dropped[%d] = %q, want %q", i, res.Dropped[i], d)
				}
			}
			// The result owns its lists: changing them changes nothing.
			if len(got.MFAMethods) > 0 {
				got.MFAMethods[0] = "changed"
				if again := e.Evaluate(in); slices.Contains(again.Grants[slices.IndexFunc(again.Grants, func(g Grant) bool { return g.RoleARN == r })].MFAMethods, "changed") {
					t.Error("MFAMethods shares memory with the engine")
				}
			}
		})
	}
	// The same result whatever the order of rules and groups.
	in := Input{Groups: []identity.Group{{Name: "g-key"}, {Name: "g-otp"}, {Name: "mfa-R"}, {Name: "g-two"}}}
	want := e.Evaluate(in)
	slices.Reverse(rs.Grants)
	slices.Reverse(in.Groups)
	if got := mustCompile(t, rs).Evaluate(in); !reflect.DeepEqual(got, want) {
		t.Errorf("order changed the result:\n got %+v\nwant %+v", got, want)
	}
}

func TestDeterministicOrder(t *testing.T) {
	rs := testRuleSet()
	in := bob()
	in.Groups = append(in.Groups,
		identity.Group{Name: "admins"}, identity.Group{Name: "AWS-111122223333-Zeta"}, identity.Group{Name: "AWS-444455556666-Alpha"},
		identity.Group{Name: "AWS-000000000000-Dropped"}, identity.Group{Name: "gov-aws-Bad"}, identity.Group{Name: "team-red-ops"})
	in.Attributes["department"] = []string{"R&D"}
	want := mustCompile(t, rs).Evaluate(in)
	if len(want.Grants) < 8 || len(want.Dropped) != 3 {
		t.Fatalf("setup: %d grants, dropped %v", len(want.Grants), want.Dropped)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		rs2 := testRuleSet()
		rnd.Shuffle(len(rs2.Accounts), func(i, j int) { rs2.Accounts[i], rs2.Accounts[j] = rs2.Accounts[j], rs2.Accounts[i] })
		rnd.Shuffle(len(rs2.Grants), func(i, j int) { rs2.Grants[i], rs2.Grants[j] = rs2.Grants[j], rs2.Grants[i] })
		rnd.Shuffle(len(rs2.Patterns), func(i, j int) { rs2.Patterns[i], rs2.Patterns[j] = rs2.Patterns[j], rs2.Patterns[i] })
		rnd.Shuffle(len(rs2.Tags.Attributes), func(i, j int) {
			rs2.Tags.Attributes[i], rs2.Tags.Attributes[j] = rs2.Tags.Attributes[j], rs2.Tags.Attributes[i]
		})
		in2 := in
		in2.Groups = slices.Clone(in.Groups)
		rnd.Shuffle(len(in2.Groups), func(i, j int) { in2.Groups[i], in2.Groups[j] = in2.Groups[j], in2.Groups[i] })
		got := mustCompile(t, rs2).Evaluate(in2)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d changed the result:\n got %+v\nwant %+v", i, got, want)
		}
	}
	for i := 1; i < len(want.Grants); i++ {
		a, b := want.Grants[i-1], want.Grants[i]
		if a.AccountID > b.AccountID || a.AccountID == b.AccountID && a.RoleARN >= b.RoleARN {
			t.Errorf("grants not sorted at %d: %s, %s", i, a.RoleARN, b.RoleARN)
		}
	}
}

func TestTagsAndSourceIdentity(t *testing.T) {
	rs := testRuleSet()
	rs.Tags.Attributes = append(rs.Tags.Attributes, TagAttribute{Attribute: "costcenter", Key: "cost-center"})
	e := mustCompile(t, rs)
	for _, tc := range []struct {
		name     string
		in       Input
		wantTags map[string]string
		wantSI   string
		dropped  []string // "path: substring"
	}{
		{"all fine", Input{Username: "alice", Email: "alice@example.org", DisplayName: "Alice Anderson", Attributes: map[string][]string{"department": {"Ops"}, "costcenter": {"4711"}}},
			map[string]string{"email": "alice@example.org", "department": "Ops", "name": "Alice Anderson", "cost-center": "4711"}, "alice", nil},
		{"missing attributes give no tag, silently", Input{Username: "frank"}, map[string]string{}, "frank", nil},
		{"empty values count as missing", Input{Username: "frank", Email: "", Attributes: map[string][]string{"department": {""}}}, map[string]string{}, "frank", nil},
		{"pat's display name has characters AWS refuses", Input{Username: "pat", DisplayName: "Pat O'Connor, Jr. (ext*)"}, map[string]string{}, "pat",
			[]string{`tags[name]: attribute "display_name": invalid session tag: value "Pat O'Connor, Jr. (ext*)" has the character '\''`}},
		{"non-ASCII tag values are fine, not as source identity", Input{Username: "jürgen", DisplayName: "Jürgen Müller"}, map[string]string{"name": "Jürgen Müller"}, "",
			[]string{`source_identity: attribute "username": invalid source identity`}},
		{"value too long", Input{Username: "bob", Attributes: map[string][]string{"department": {strings.Repeat("d", 257)}}}, map[string]string{}, "bob",
			[]string{"tags[department]: attribute \"department\": invalid session tag: value is 257 characters long"}},
		{"256 characters is fine", Input{Username: "bob", Attributes: map[string][]string{"department": {strings.Repeat("d", 256)}}}, map[string]string{"department": strings.Repeat("d", 256)}, "bob", nil},
		{"multi-valued attribute gives no tag", Input{Username: "bob", Attributes: map[string][]string{"department": {"Ops", "Dev"}}}, map[string]string{}, "bob",
			[]string{`tags[department]: attribute "department" has 2 values`}},
		{"repeated equal values are one value", Input{Username: "bob", Attributes: map[string][]string{"department": {"Ops", "Ops"}}}, map[string]string{"department": "Ops"}, "bob", nil},
		{"source identity too short", Input{Username: "x"}, map[string]string{}, "", []string{"source_identity: attribute \"username\": invalid source identity: must be 2–64"}},
		{"source identity too long", Input{Username: strings.Repeat("u", 65)}, map[string]string{}, "", []string{"source_identity: attribute \"username\": invalid source identity: must be 2–64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Evaluate(tc.in)
			got := map[string]string{}
			for _, tg := range r.Tags {
				got[tg.Key] = tg.Value
				if tg.Transitive != (tg.Key == "department") {
					t.Errorf("tag %s transitive = %v", tg.Key, tg.Transitive)
				}
			}
			if !reflect.DeepEqual(got, tc.wantTags) {
				t.Errorf("tags = %v, want %v", got, tc.wantTags)
			}
			if r.SourceIdentity != tc.wantSI {
				t.Errorf("source identity = %q, want %q", r.SourceIdentity, tc.wantSI)
			}
			if len(r.Dropped) != len(tc.dropped) {
				t.Fatalf("dropped = %v, want %v", r.Dropped, tc.dropped)
			}
			for i, d := range tc.dropped {
				if !strings.Contains(r.Dropped[i].String(), d) {
					t.Errorf("dropped[%d] = %q, want it to contain %q", i, r.Dropped[i], d)
				}
			}
		})
	}
}

func TestSourceIdentityFromAttribute(t *testing.T) {
	rs := testRuleSet()
	rs.Tags.SourceIdentity = "employeeNumber"
	e := mustCompile(t, rs)
	r := e.Evaluate(Input{Username: "jürgen", Attributes: map[string][]string{"employeenumber": {"E-1001"}}})
	if r.SourceIdentity != "E-1001" || len(r.Dropped) != 0 {
		t.Errorf("SourceIdentity = %q, dropped %v", r.SourceIdentity, r.Dropped)
	}
	r = e.Evaluate(Input{Username: "x", Attributes: map[string][]string{"employeenumber": {"1", "2"}}})
	if r.SourceIdentity != "" || len(r.Dropped) != 1 || !strings.Contains(r.Dropped[0].Message, "2 values") {
		t.Errorf("multi-valued: %q, %v", r.SourceIdentity, r.Dropped)
	}
}

func TestEmptyEngineAndHolder(t *testing.T) {
	var h Holder
	if r := h.Load().Evaluate(bob()); len(r.Grants) != 0 || len(r.Tags) != 0 || r.SourceIdentity != "" {
		t.Errorf("empty engine granted %+v", r)
	}
	if gs := h.Load().TestGroup("admins"); len(gs) != 0 {
		t.Errorf("empty engine TestGroup = %v", gs)
	}
	if rs := h.Load().RuleSet(); !reflect.DeepEqual(rs, RuleSet{}) {
		t.Errorf("empty engine RuleSet = %+v", rs)
	}
	e := mustCompile(t, testRuleSet())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_ = h.Load().Evaluate(bob())
			}
		}()
	}
	h.Store(e)
	wg.Wait()
	if len(h.Load().Evaluate(bob()).Grants) != 3 {
		t.Error("Store did not take effect")
	}
	h.Store(nil)
	if len(h.Load().Evaluate(bob()).Grants) != 0 {
		t.Error("Store(nil) should give the empty engine")
	}
}

func TestRuleSetIsACopy(t *testing.T) {
	rs := testRuleSet()
	e := mustCompile(t, rs)
	rs.Grants[0].Roles[0].ARN = "changed"
	got := e.RuleSet()
	if got.Grants[0].Roles[0].ARN == "changed" {
		t.Fatal("engine shares memory with the caller's rule set")
	}
	got.Grants[0].Roles[0].ARN = "changed"
	if e.RuleSet().Grants[0].Roles[0].ARN == "changed" {
		t.Fatal("RuleSet() shares memory with the engine")
	}
}

// FuzzEvaluate: for any groups and attribute values, no panic, every grant
// is consistent and within AWS limits, every tag and the source identity
// pass the AWS checks, and the result does not depend on group order.
func FuzzEvaluate(f *testing.F) {
	f.Add("AWS-111122223333-Admin", "cn=engineering,ou=groups,dc=example,dc=org", "Engineering", "bob")
	f.Add("gov-aws-us-gov-x", `cn=Pat O'Connor\, Jr. (ext*),ou=people,dc=example,dc=org`, "R&D", "jürgen")
	f.Add("TEAM-x-OPS", "CN=ADMINS,DC=X", "", "a")
	e := mustCompile(f, testRuleSet())
	f.Fuzz(func(t *testing.T, name, dn, dept, user string) {
		in := Input{Username: user, Email: dept + "@example.org", DisplayName: name,
			Attributes: map[string][]string{"department": {dept}},
			Groups:     []identity.Group{{Name: name}, {DN: dn, Name: firstRDNValue(dn)}, {DN: dn, Name: name}}}
		r := e.Evaluate(in)
		for _, g := range r.Grants {
			if msg := checkGrant(g); msg != "" {
				t.Fatalf("grant %+v: %s", g, msg)
			}
		}
		for _, tg := range r.Tags {
			if err := awsfedTagCheck(tg); err != nil {
				t.Fatalf("tag %+v: %v", tg, err)
			}
		}
		if r.SourceIdentity != "" && r.SourceIdentity != user {
			t.Fatalf("source identity %q from user %q", r.SourceIdentity, user)
		}
		slices.Reverse(in.Groups)
		if r2 := e.Evaluate(in); !reflect.DeepEqual(r, r2) {
			t.Fatalf("group order changed the result:\n%+v\n%+v", r, r2)
		}
	})
}

func awsfedTagCheck(tg Tag) error {
	if err := awsfed.ValidTagKey(tg.Key); err != nil {
		return err
	}
	return awsfed.ValidTagValue(tg.Value)
}
