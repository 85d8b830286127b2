package rolemap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
)

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../config/mappings.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseYAML(data)
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	if ps := rs.Validate(); len(ps) != 0 {
		t.Fatalf("example is invalid:\n%s", problemsText(ps))
	}
	if len(rs.Accounts) != 3 || len(rs.Grants) != 3 || len(rs.Patterns) != 1 || len(rs.Tags.Attributes) != 2 || rs.Tags.SourceIdentity != "username" {
		t.Fatalf("example shape changed: %+v", rs)
	}
	e := mustCompile(t, rs)
	// The seed users against the example rules (the directory gives
	// nested groups with Direct false).
	dn := func(cn string) string { return "cn=" + cn + ",ou=groups,dc=example,dc=org" }
	g := func(cn string, direct bool) identity.Group {
		return identity.Group{DN: dn(cn), Name: cn, Direct: direct}
	}
	for _, tc := range []struct {
		user   string
		groups []identity.Group
		want   []string
	}{
		{"alice", []identity.Group{g("admins", true), g("engineering", false), g("staff", false), g("company", false)}, []string{
			"arn:aws:iam::111122223333:role/AdministratorAccess", "arn:aws:iam::111122223333:role/ViewOnly",
			"arn:aws:iam::444455556666:role/AdministratorAccess", "arn:aws:iam::444455556666:role/ViewOnly",
			"arn:aws-us-gov:iam::777788889999:role/AdministratorAccess", "arn:aws-us-gov:iam::777788889999:role/ViewOnly"}},
		{"bob", []identity.Group{g("developers", true), g("engineering", false), g("staff", false), g("company", false)}, []string{
			"arn:aws:iam::111122223333:role/ReadOnly", "arn:aws:iam::111122223333:role/ViewOnly",
			"arn:aws:iam::444455556666:role/PowerUser", "arn:aws:iam::444455556666:role/ViewOnly",
			"arn:aws-us-gov:iam::777788889999:role/ViewOnly"}},
		{"dave", []identity.Group{g("engineering", true), g("staff", false)}, []string{
			"arn:aws:iam::111122223333:role/ViewOnly", "arn:aws:iam::444455556666:role/ViewOnly", "arn:aws-us-gov:iam::777788889999:role/ViewOnly"}},
		{"erin", []identity.Group{g("staff", true), g("company", false)}, nil},
		{"frank", nil, nil},
		{"x", []identity.Group{g("AWS-444455556666-Billing", true)}, []string{"arn:aws:iam::444455556666:role/Billing"}},
	} {
		r := e.Evaluate(Input{Username: tc.user, Groups: tc.groups})
		if got := roleARNs(r.Grants); !slices.Equal(got, tc.want) {
			t.Errorf("%s: grants %v, want %v", tc.user, got, tc.want)
		}
	}
	r := e.Evaluate(Input{Username: "bob", Groups: []identity.Group{g("developers", true)}})
	if r.Grants[0].SessionSeconds != 3600 || r.Grants[0].ProviderARN != "arn:aws:iam::111122223333:saml-provider/warden" || r.Grants[0].RequireMFA {
		t.Errorf("developers in prod: %+v", r.Grants[0])
	}
	// The admins' roles show both MFA settings: require_mfa alone, and
	// mfa_methods (which implies it).
	mfa := map[string]string{}
	for _, gr := range e.Evaluate(Input{Username: "alice", Groups: []identity.Group{g("admins", true)}}).Grants {
		mfa[gr.RoleARN] = fmt.Sprint(gr.RequireMFA, gr.MFAMethods)
	}
	if want := map[string]string{"arn:aws:iam::111122223333:role/AdministratorAccess": "false []",
		"arn:aws:iam::444455556666:role/AdministratorAccess":        "true []",
		"arn:aws-us-gov:iam::777788889999:role/AdministratorAccess": "true [webauthn]"}; !reflect.DeepEqual(mfa, want) {
		t.Errorf("admins' MFA: %v, want %v", mfa, want)
	}
}

// TestMFAYAML: require_mfa and mfa_methods parse strictly, come back from
// the canonical form (methods strongest first) and through JSON.
func TestMFAYAML(t *testing.T) {
	doc := `
accounts:
  - {id: "111122223333", name: prod, saml_provider: warden}
grants:
  - id: a
    group: admins
    roles:
      - arn: arn:aws:iam::111122223333:role/Admin
        require_mfa: true
        mfa_methods: [totp, webauthn]
      - arn: arn:aws:iam::111122223333:role/Plain
        require_mfa: false
patterns:
  - id: p
    pattern: ^X-(?P<role>\w+)$
    role_arn: arn:aws:iam::111122223333:role/${role}
    mfa_methods:
      - webauthn
`
	rs, err := ParseYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ps := rs.Validate(); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if r := rs.Grants[0].Roles[0]; !r.RequireMFA || !slices.Equal(r.MFAMethods, []string{"totp", "webauthn"}) {
		t.Errorf("parsed %+v", r)
	}
	if req, ms := rs.Patterns[0].MFA(); !req || !slices.Equal(ms, []string{"webauthn"}) || rs.Patterns[0].RequireMFA {
		t.Errorf("pattern MFA() = %v %v (%+v)", req, ms, rs.Patterns[0])
	}
	out, err := rs.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"        require_mfa: true\n        mfa_methods:\n          - webauthn\n          - totp\n",
		"    mfa_methods:\n      - webauthn\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("canonical YAML lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "require_mfa: false") {
		t.Errorf("false is written out:\n%s", out)
	}
	back, err := ParseYAML(out)
	if err != nil || !reflect.DeepEqual(back.clone(), rs.Canonical()) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, rs.Canonical())
	}
	js, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"require_mfa":true,"mfa_methods":["totp","webauthn"]`) || strings.Contains(string(js), `"require_mfa":false`) {
		t.Errorf("JSON %s", js)
	}
	var fromJSON RuleSet
	if err := json.Unmarshal(js, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON.clone(), rs.clone()) {
		t.Errorf("JSON round trip: %v\n%+v", err, fromJSON)
	}
	// Canonical sorting does not touch the caller's lists.
	if rs.Grants[0].Roles[0].MFAMethods[0] != "totp" {
		t.Error("Canonical sorted the receiver's mfa_methods")
	}
}

func TestParseYAMLStrict(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown keys, all of them", `
accounts:
  - id: "111122223333"
    name: prod
    saml_provider: warden
    region: us-east-1
grants:
  - id: a
    group: admins
    rolez: []
    roles:
      - arn: x
        max_session: 3600
tagz: {}
`, []string{
			"accounts[0].region: unknown key (line 6); known keys: id, name, partition, saml_provider",
			"grants[0].rolez: unknown key (line 10); did you mean \"roles\"?",
			"grants[0].roles[0].max_session: unknown key (line 13); known keys: arn, max_session_seconds",
			"tagz: unknown key (line 14); did you mean \"tags\"?",
		}},
		{"wrong kinds", `
accounts: {id: x}
grants:
  - id: [a]
    roles:
      - arn: x
        max_session_seconds: one hour
tags:
  attributes:
    - attribute: email
      key: email
      transitive: "yes"
patterns: 3
`, []string{
			"accounts: must be a list, got a mapping (line 2)",
			"grants[0].id: must be a string, got a list (line 4)",
			"grants[0].roles[0].max_session_seconds: must be an integer, got a string (line 7)",
			"tags.attributes[0].transitive: must be true or false, got a string (line 12)",
			"patterns: must be a list, got a number (line 13)",
		}},
		{"duplicate keys", "grants:\n  - id: a\n    id: b\n", []string{"grants[0].id: duplicate key (first at line 2) (line 3)"}},
		{"top level not a mapping", "- a\n- b\n", []string{"(top level): must be a mapping (key: value), got a list (line 1)"}},
		{"two documents", "grants: []\n---\ngrants: []\n", []string{"more than one YAML document (the second starts at line 2)"}},
		{"syntax", "grants: [\n", []string{"invalid YAML: line 1: did not find expected node content"}},
		{"mfa kinds and keys", `
grants:
  - id: a
    roles:
      - arn: x
        require_mfa: "yes"
        mfa_methods: webauthn
      - arn: y
        mfa_method: [totp]
patterns:
  - id: p
    require_mfa: 1
    mfa_methods: [[totp]]
`, []string{
			"grants[0].roles[0].require_mfa: must be true or false, got a string (line 6)",
			"grants[0].roles[0].mfa_methods: must be a list, got a string (line 7)",
			`grants[0].roles[1].mfa_method: unknown key (line 9); did you mean "mfa_methods"?`,
			"patterns[0].require_mfa: must be true or false, got a number (line 12)",
			"patterns[0].mfa_methods[0]: must be a string, got a list (line 13)",
		}},
		{"integer overflow", "grants:\n  - roles:\n      - max_session_seconds: 99999999999999999999999\n", []string{"must be an integer, got a number (line 3)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.doc))
			var pe *Error
			if !errors.As(err, &pe) || pe.Op != "parse" {
				t.Fatalf("error = %v, want *Error", err)
			}
			if len(pe.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(pe.Problems), len(tc.want), problemsText(pe.Problems))
			}
			for i, w := range tc.want {
				if !strings.Contains(pe.Problems[i].String(), w) {
					t.Errorf("problem %d = %q, want %q", i, pe.Problems[i], w)
				}
			}
		})
	}
}

func TestParseYAMLAccepts(t *testing.T) {
	for _, doc := range []string{"", "\n# only a comment\n", "~\n", "accounts: []\ngrants:\npatterns: ~\ntags: {}\n"} {
		rs, err := ParseYAML([]byte(doc))
		if err != nil || !reflect.DeepEqual(rs.clone(), RuleSet{}) {
			t.Errorf("ParseYAML(%q) = %+v, %v", doc, rs, err)
		}
	}
	// Anchors, aliases and merge keys are YAML and work.
	doc := `
accounts:
  - &acct {id: "111122223333", name: prod, saml_provider: warden}
grants:
  - id: a
    group: admins
    roles: &roles
      - {arn: "arn:aws:iam::111122223333:role/Admin", max_session_seconds: 3600}
  - <<: {group: developers}
    id: b
    roles: *roles
`
	rs, err := ParseYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ps := rs.Validate(); len(ps) != 0 || rs.Grants[1].Group != "developers" || rs.Grants[1].Roles[0].MaxSessionSeconds != 3600 {
		t.Fatalf("%+v %v", rs, ps)
	}
	// A merge key bringing an unknown key is still caught.
	_, err = ParseYAML([]byte("grants:\n  - <<: {id: a, colour: red}\n"))
	if err == nil || !strings.Contains(err.Error(), "grants[0].colour: unknown key") {
		t.Errorf("merged unknown key: %v", err)
	}
}

func TestParseYAMLBounds(t *testing.T) {
	big := bytes.Repeat([]byte("#"), MaxDocumentBytes+1)
	if _, err := ParseYAML(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized document: %v", err)
	}
	// An alias bomb: each level doubles; the walker's node budget stops it.
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x]\n")
	for i := 1; i < 30; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n")
	}
	b.WriteString("grants: [*a29]\n")
	if _, err := ParseYAML([]byte(b.String())); err == nil {
		t.Error("alias bomb accepted")
	}
}

func TestMarshalYAMLCanonical(t *testing.T) {
	rs := testRuleSet()
	out, err := rs.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	// Shuffled input, same bytes.
	rs2 := testRuleSet()
	slices.Reverse(rs2.Accounts)
	slices.Reverse(rs2.Grants)
	slices.Reverse(rs2.Patterns)
	slices.Reverse(rs2.Grants[1].Roles)
	slices.Reverse(rs2.Tags.Attributes)
	out2, err := rs2.MarshalYAML()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("not canonical:\n%s\n---\n%s", out, out2)
	}
	back, err := ParseYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.clone(), rs.Canonical()) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, rs.Canonical())
	}
	// Sorted by ID, and the input was not modified.
	if !strings.Contains(string(out), "grants:\n  - id: admins\n") || strings.Index(string(out), "id: devs") > strings.Index(string(out), "id: eng-dn") {
		t.Errorf("order:\n%s", out)
	}
	if rs.Grants[0].ID != "admins" || rs.Grants[4].ID != "pat-dn" {
		t.Error("MarshalYAML modified its receiver")
	}
	// Strings that look like other YAML types stay strings.
	rs3 := RuleSet{Accounts: []Account{{ID: "000000000001", Name: "true", SAMLProvider: "0x10"}}, Grants: []GrantRule{{ID: "a", Group: "null", Description: "multi\nline: yes\n"}}}
	out3, _ := rs3.MarshalYAML()
	back3, err := ParseYAML(out3)
	if err != nil || !reflect.DeepEqual(back3.clone(), rs3.Canonical()) {
		t.Fatalf("round trip of odd strings: %v\n%s", err, out3)
	}
}

// FuzzParseYAML: no panic; whatever parses and validates compiles, and its
// canonical YAML parses back to an equal rule set that marshals to the same
// bytes. Seeds: testdata/fuzz/FuzzParseYAML, one rule or block each (the
// whole example is TestExampleFile's).
func FuzzParseYAML(f *testing.F) {
	// Longer documents only make each run, and each minimization
	// (quadratic in the length), slower; every seed is below 512 bytes.
	const maxFuzzRules = 2 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzRules {
			return
		}
		rs, err := ParseYAML(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error is not an *Error with problems: %v", err)
			}
			return
		}
		out, err := rs.MarshalYAML()
		if err != nil {
			t.Fatalf("MarshalYAML: %v", err)
		}
		back, err := ParseYAML(out)
		if err != nil {
			t.Fatalf("canonical YAML does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back.clone(), rs.Canonical()) {
			t.Fatalf("round trip changed the rule set:\n got %#v\nwant %#v\n%s", back, rs.Canonical(), out)
		}
		out2, err := back.MarshalYAML()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("canonical bytes unstable:\n%s\n---\n%s", out, out2)
		}
		if ps := rs.Validate(); len(ps) == 0 {
			e, err := Compile(rs)
			if err != nil {
				t.Fatalf("valid set does not compile: %v", err)
			}
			for _, g := range rs.Grants {
				for _, gr := range e.TestGroup(g.Group) {
					if err := checkGrant(gr); err != "" {
						t.Fatalf("grant %+v: %s", gr, err)
					}
				}
			}
		}
	})
}

// checkGrant verifies a grant independently of the engine's own checks.
func checkGrant(g Grant) string {
	switch {
	case !strings.HasPrefix(g.RoleARN, "arn:"+g.Partition+":iam::"+g.AccountID+":role/"):
		return "role ARN does not match partition/account"
	case g.ProviderARN == "" || !strings.HasPrefix(g.ProviderARN, "arn:"+g.Partition+":iam::"+g.AccountID+":saml-provider/"):
		return "provider ARN does not match"
	case g.SessionSeconds != 0 && (g.SessionSeconds < 900 || g.SessionSeconds > 43200):
		return "session seconds out of range"
	case len(g.RoleName) == 0 || len(g.RoleName) > 64 || !strings.HasSuffix(g.RoleARN, "/"+g.RoleName):
		return "role name"
	case len(g.Rules) == 0 || g.Rules[0] != g.RuleID || !slices.IsSorted(g.Rules):
		return "rules"
	case len(g.MFAMethods) > 0 && !g.RequireMFA:
		return "mfa_methods without RequireMFA"
	}
	last := -1
	for _, m := range g.MFAMethods {
		i := slices.Index(identity.SecondFactors, m)
		if i <= last {
			return "MFA methods unknown, repeated or not strongest first"
		}
		last = i
	}
	return ""
}
