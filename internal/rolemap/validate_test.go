package rolemap

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValidateValid(t *testing.T) {
	if ps := testRuleSet().Validate(); len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if ps := (RuleSet{}).Validate(); len(ps) != 0 {
		t.Fatalf("empty rule set: %v", ps)
	}
}

func TestValidateProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(rs *RuleSet)
		want   []string // "path: message substring", all of them, in order
	}{
		{"account id", func(rs *RuleSet) { rs.Accounts[0].ID = "1234" }, []string{
			`accounts[0].id: must be 12 digits, got "1234"`,
			// and every role in that account is now uncatalogued:
			"grants[0].roles[0].arn: account 111122223333 is not in the accounts catalogue",
			"grants[1].roles[0].arn: account 111122223333 is not in the accounts catalogue",
			"grants[2].roles[0].arn: account 111122223333 is not in the accounts catalogue",
			"grants[3].roles[0].arn: account 111122223333 is not in the accounts catalogue",
		}},
		{"duplicate account", func(rs *RuleSet) {
			rs.Accounts = append(rs.Accounts, Account{ID: prod, Name: "PROD", SAMLProvider: "x"})
		}, []string{"accounts[3].id: duplicate account ID 111122223333 (also accounts[0])", `accounts[3].name: duplicate account name "PROD" (also accounts[0]`}},
		{"account fields", func(rs *RuleSet) {
			rs.Accounts = append(rs.Accounts, Account{ID: "999999999999", Name: " x", Partition: "aws-eu", SAMLProvider: "a b"})
		}, []string{"accounts[3].name: has leading or trailing spaces", `accounts[3].partition: unknown partition "aws-eu"`, `accounts[3].saml_provider: must be the IAM SAML provider name`}},
		{"account name required", func(rs *RuleSet) { rs.Accounts[1].Name = "" }, []string{"accounts[1].name: is required"}},
		{"role ARN grammar", func(rs *RuleSet) { rs.Grants[1].Roles[1].ARN = "arn:aws:iam::444455556666:role/Power User" }, []string{
			"grants[1].roles[1].arn: invalid ARN: role name \"Power User\" has a character outside"}},
		{"role name with a comma", func(rs *RuleSet) { rs.Grants[1].Roles[1].ARN = arn(staging, "Power,User") }, []string{
			`grants[1].roles[1].arn: invalid ARN: role name "Power,User" has a comma at byte 5: IAM allows it, but AWS reads the SAML Role attribute as "<role ARN>,<provider ARN>"`}},
		{"role path with a comma", func(rs *RuleSet) { rs.Grants[2].Roles[0].ARN = "arn:aws:iam::" + prod + ":role/a,b/ViewOnly" }, []string{
			`grants[2].roles[0].arn: invalid ARN: role path "/a,b/" has a comma at byte 2`}},
		{"role ARN partition", func(rs *RuleSet) { rs.Grants[0].Roles[1].ARN = "arn:aws:iam::" + gov + ":role/Admin" }, []string{
			`grants[0].roles[1].arn: account 777788889999 is in partition "aws-us-gov", the ARN says "aws"`}},
		{"role account not in catalogue", func(rs *RuleSet) { rs.Grants[0].Roles[0].ARN = arn("000000000000", "Admin") }, []string{
			"grants[0].roles[0].arn: account 000000000000 is not in the accounts catalogue"}},
		{"durations", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].MaxSessionSeconds = 899
			rs.Grants[0].Roles[1].MaxSessionSeconds = 43201
			rs.Patterns[0].MaxSessionSeconds = -1
		}, []string{"grants[0].roles[0].max_session_seconds: must be 0 (none) or 900–43200 seconds, got 899",
			"grants[0].roles[1].max_session_seconds: must be 0 (none) or 900–43200 seconds, got 43201",
			"patterns[0].max_session_seconds: must be 0 (none) or 900–43200 seconds, got -1"}},
		{"durations at the bounds", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].MaxSessionSeconds = 900
			rs.Grants[0].Roles[1].MaxSessionSeconds = 43200
		}, nil},
		{"rule ids", func(rs *RuleSet) {
			rs.Grants[1].ID = "admins"
			rs.Patterns[0].ID = "staff-readonly"
			rs.Grants[2].ID = "Eng_DN"
			rs.Grants[4].ID = ""
			rs.Patterns[1].ID = strings.Repeat("x", 65)
		}, []string{`grants[1].id: duplicate rule ID "admins" (also grants[0])`, `grants[2].id: must be 1–64 characters of a-z, 0-9 and -, got "Eng_DN"`,
			"grants[4].id: is required", `patterns[0].id: duplicate rule ID "staff-readonly" (also grants[3])`, "patterns[1].id: must be 1–64"}},
		{"group", func(rs *RuleSet) {
			rs.Grants[0].Group = ""
			rs.Grants[1].Group = "cn=a,,dc=x"
			rs.Grants[2].Group = "developers\n"
		}, []string{"grants[0].group: is required", `grants[1].group: contains "=" but is not a valid DN`, "grants[2].group: has leading or trailing spaces"}},
		{"no roles", func(rs *RuleSet) { rs.Grants[2].Roles = nil }, []string{"grants[2].roles: a grant rule needs at least one role"}},
		{"role twice in a rule", func(rs *RuleSet) { rs.Grants[0].Roles[1] = rs.Grants[0].Roles[0] }, []string{"grants[0].roles[1].arn: role listed twice in this rule (also roles[0])"}},
		{"conflicting session lengths", func(rs *RuleSet) {
			rs.Grants = append(rs.Grants, GrantRule{ID: "devs-2", Group: "DEVELOPERS", Roles: []RoleRef{{ARN: arn(prod, "ReadOnly"), MaxSessionSeconds: 7200}}})
		}, []string{`grants[5].roles[0].max_session_seconds: conflicts with grants[1].roles[0] (rule "devs"): same group and role with max_session_seconds 3600, here 7200`}},
		{"same group and role with the same length is no conflict", func(rs *RuleSet) {
			rs.Grants = append(rs.Grants, GrantRule{ID: "devs-2", Group: "developers", Roles: []RoleRef{{ARN: arn(prod, "ReadOnly"), MaxSessionSeconds: 3600}}})
		}, nil},
		{"conflict by normalized DN", func(rs *RuleSet) {
			rs.Grants = append(rs.Grants, GrantRule{ID: "eng-2", Group: "cn=engineering,ou=groups,dc=example,dc=org", Roles: []RoleRef{{ARN: arn(prod, "ViewOnly"), MaxSessionSeconds: 900}}})
		}, []string{`grants[5].roles[0].max_session_seconds: conflicts with grants[2].roles[0] (rule "eng-dn")`}},
		{"pattern regexp", func(rs *RuleSet) { rs.Patterns[0].Pattern = "^AWS-(?P<account>" }, []string{"patterns[0].pattern: not a valid regular expression: missing closing )"}},
		{"pattern unsupported syntax", func(rs *RuleSet) { rs.Patterns[0].Pattern = `^(?=x)` }, []string{"patterns[0].pattern: not a valid regular expression"}},
		{"template unknown capture", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${acct}:role/${role}" }, []string{
			"patterns[0].role_arn: ${acct} is not a named capture of the pattern (it has: account, role)"}},
		{"template syntax", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/$role" }, []string{"patterns[0].role_arn: lone $ at byte"}},
		{"template unterminated", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account" }, []string{"patterns[0].role_arn: unterminated ${"}},
		{"template with no captures in pattern", func(rs *RuleSet) { rs.Patterns[0].Pattern = "^x$" }, []string{
			"patterns[0].role_arn: ${account} is not a named capture of the pattern (it has none",
			"patterns[0].role_arn: ${role} is not a named capture"}},
		{"template unknown partition", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws-eu:iam::${account}:role/${role}" }, []string{
			`patterns[0].role_arn: can never give a valid role ARN: unknown partition "aws-eu"`}},
		{"template service", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:sts::${account}:role/${role}" }, []string{
			`patterns[0].role_arn: can never give a valid role ARN: must continue with the literal text ":iam::"`}},
		{"template no arn prefix", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "${account}:role/${role}" }, []string{
			`patterns[0].role_arn: can never give a valid role ARN: must start with the literal text "arn:"`}},
		{"template account letters", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::acct-${account}:role/${role}" }, []string{
			"patterns[0].role_arn: can never give a valid role ARN: account part"}},
		{"template account literal not catalogued", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::000000000000:role/${role}" }, []string{
			"patterns[0].role_arn: can never give a valid role ARN: account 000000000000 is not in the accounts catalogue"}},
		{"template account literal wrong partition", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::" + gov + ":role/${role}" }, []string{
			`can never give a valid role ARN: account 777788889999 is in partition "aws-us-gov", the template says "aws"`}},
		{"template too many digits", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::1234567890123${account}:role/${role}" }, []string{
			"account part has more than 12 digits"}},
		{"template user not role", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:user/${role}" }, []string{
			`must continue with the literal text ":role/" after the account`}},
		{"template ends with slash", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/${role}/" }, []string{`ends with "/": no role name`}},
		{"template bad name literal", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/${role}*" }, []string{
			`role name part "*" has '*', outside [A-Za-z0-9_+=,.@-]`}},
		{"template comma in the name", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/${role},x" }, []string{
			`patterns[0].role_arn: can never give a valid role ARN: has a comma in its literal text: AWS reads the SAML Role attribute as "<role ARN>,<provider ARN>"`}},
		{"template comma in the path", func(rs *RuleSet) { rs.Patterns[1].RoleARN = "arn:aws:iam::" + staging + ":role/teams,x/${team}/Ops" }, []string{
			"patterns[1].role_arn: can never give a valid role ARN: has a comma in its literal text"}},
		{"template literal ARN with a comma", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::111122223333:role/Ops,Admin" }, []string{
			`patterns[0].role_arn: can never give a valid role ARN: invalid ARN: role name "Ops,Admin" has a comma at byte 3`}},
		{"template space", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/ ${role}" }, []string{"has the character ' '"}},
		{"template literal ARN invalid", func(rs *RuleSet) {
			rs.Patterns[0].RoleARN = "arn:aws:iam::111122223333:role/" + strings.Repeat("r", 65)
		}, []string{
			"can never give a valid role ARN: invalid ARN: role name longer than 64"}},
		{"template path literal before capture is fine", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/!x${role}" }, nil},
		{"template $$", func(rs *RuleSet) { rs.Patterns[0].RoleARN = "arn:aws:iam::${account}:role/$$/${role}" }, nil},
		{"pattern required", func(rs *RuleSet) { rs.Patterns[2].Pattern = ""; rs.Patterns[1].RoleARN = "" }, []string{"patterns[1].role_arn: is required", "patterns[2].pattern: is required"}},
		{"tags", func(rs *RuleSet) {
			rs.Tags.Attributes = append(rs.Tags.Attributes,
				TagAttribute{Attribute: "mail", Key: "Email"},
				TagAttribute{Attribute: "title", Key: "aws:title"},
				TagAttribute{Attribute: "bad attr", Key: "ok"},
				TagAttribute{Attribute: "", Key: "k*"},
			)
			rs.Tags.SourceIdentity = "user name"
		}, []string{
			`tags.attributes[3].key: duplicate tag key "Email" (also tags.attributes[0]); AWS compares tag keys case-insensitively`,
			`tags.attributes[4].key: invalid session tag: key "aws:title" starts with the reserved prefix "aws:"`,
			`tags.attributes[5].attribute: "bad attr" is not an attribute name`,
			"tags.attributes[6].attribute: is required",
			"tags.attributes[6].key: invalid session tag: key \"k*\" has the character '*'",
			`tags.source_identity: "user name" is not an attribute name`,
		}},
		{"too many tags", func(rs *RuleSet) {
			rs.Tags.Attributes = nil
			for i := 0; i < 51; i++ {
				rs.Tags.Attributes = append(rs.Tags.Attributes, TagAttribute{Attribute: "a", Key: fmt.Sprintf("k%d", i)})
			}
		}, []string{"tags.attributes: 51 tag rules; AWS allows at most 50 session tags"}},
		{"mfa methods", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].MFAMethods = []string{"webauthn", "sms", "webauthn"}
			rs.Grants[0].Roles[1].RequireMFA = true
			rs.Grants[1].Roles[1].MFAMethods = []string{"TOTP", ""}
			rs.Grants[2].Roles[0].MFAMethods = []string{"recovery"}
			rs.Patterns[1].MFAMethods = []string{"totp", "password"}
		}, []string{
			`grants[0].roles[0].mfa_methods[1]: unknown method "sms"; the second factors are webauthn, totp, recovery`,
			`grants[0].roles[0].mfa_methods[2]: "webauthn" is listed twice (also mfa_methods[0])`,
			`grants[1].roles[1].mfa_methods[0]: write "TOTP" as "totp"`,
			`grants[1].roles[1].mfa_methods[1]: unknown method ""`,
			"grants[2].roles[0].mfa_methods: recovery alone cannot be met",
			`patterns[1].mfa_methods[1]: unknown method "password"`,
		}},
		{"mfa fine", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].RequireMFA = true
			rs.Grants[0].Roles[1].MFAMethods = []string{"totp", "recovery", "webauthn"}
			rs.Patterns[0].MFAMethods = []string{"webauthn"}
			rs.Patterns[1].RequireMFA = true
		}, nil},
		{"eligible fine", func(rs *RuleSet) {
			rs.Grants[0].Roles[0] = RoleRef{ARN: arn(prod, "Admin"), MaxSessionSeconds: 3600, Access: AccessEligible, MaxDuration: "1h",
				Approvers: "cn=approvers,ou=groups,dc=example,dc=org", RequireReason: true, ReasonPattern: `^INC-\d+`}
			rs.Grants[0].Roles[1].Access = AccessStanding
			rs.Grants[1].Roles[1].Access = AccessEligible // no max_duration: the session length
			rs.Patterns[0].Access, rs.Patterns[0].MaxDuration = AccessEligible, "15m"
			rs.Patterns[1].Access, rs.Patterns[1].Approvers, rs.Patterns[1].ReasonPattern = AccessEligible, "ops-leads", "[A-Z]+-[0-9]+"
		}, nil},
		{"access", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].Access = "Eligible "
			rs.Grants[0].Roles[1].Access = "temporary"
			rs.Patterns[0].Access = "STANDING"
		}, []string{
			`grants[0].roles[0].access: write "Eligible " as "eligible" (lower case, no spaces)`,
			`grants[0].roles[1].access: unknown access "temporary"; want "standing" or "eligible" (empty means standing)`,
			`patterns[0].access: write "STANDING" as "standing"`,
		}},
		{"invalid access still checks the fields", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].Access, rs.Grants[0].Roles[0].MaxDuration = "elig", "5m"
		}, []string{`grants[0].roles[0].access: unknown access "elig"`, `grants[0].roles[0].max_duration: must be at least 15m, got "5m"`}},
		{"elevation fields on standing roles", func(rs *RuleSet) {
			r := &rs.Grants[0].Roles[0]
			r.MaxDuration, r.Approvers, r.RequireReason, r.ReasonPattern = "1h", "ops", true, "x"
			rs.Patterns[1].Access, rs.Patterns[1].MaxDuration = AccessStanding, "30m"
		}, []string{
			"grants[0].roles[0].max_duration: only applies to eligible roles (access: eligible); this role is standing",
			"grants[0].roles[0].approvers: only applies to eligible roles",
			"grants[0].roles[0].require_reason: only applies to eligible roles",
			"grants[0].roles[0].reason_pattern: only applies to eligible roles",
			"patterns[1].max_duration: only applies to eligible roles",
		}},
		{"max_duration", func(rs *RuleSet) {
			set := func(r *RoleRef, d string) { r.Access, r.MaxDuration = AccessEligible, d }
			set(&rs.Grants[0].Roles[0], "soon")
			set(&rs.Grants[0].Roles[1], "1h0m0.5s")
			set(&rs.Grants[1].Roles[0], "10m")
			set(&rs.Grants[1].Roles[1], "2h")
			set(&rs.Grants[3].Roles[0], "3h")
			rs.Patterns[0].Access, rs.Patterns[0].MaxDuration = AccessEligible, "20m"
			rs.Patterns[1].Access, rs.Patterns[1].MaxDuration = AccessEligible, "-1h"
		}, []string{
			`grants[0].roles[0].max_duration: not a duration: write it like "1h", "90m" or "1h30m", got "soon"`,
			`grants[0].roles[1].max_duration: must be whole seconds, got "1h0m0.5s"`,
			`grants[1].roles[0].max_duration: must be at least 15m, got "10m"`,
			"grants[1].roles[1].max_duration: is 2h, longer than the role's session length of 1h (max_session_seconds is not set, so AWS's default of 1h applies): AWS sessions of the role end then",
			"grants[3].roles[0].max_duration: is 3h, longer than the role's session length of 2h (max_session_seconds 7200): AWS sessions of the role end then",
			"patterns[0].max_duration: is 20m, longer than the role's session length of 15m (max_session_seconds 900)",
			`patterns[1].max_duration: must be at least 15m, got "-1h"`,
		}},
		{"max_duration at the bounds", func(rs *RuleSet) {
			set := func(r *RoleRef, d string) { r.Access, r.MaxDuration = AccessEligible, d }
			set(&rs.Grants[0].Roles[0], "900s")
			set(&rs.Grants[1].Roles[1], "1h")
			set(&rs.Grants[3].Roles[0], "1h59m60s")
			rs.Patterns[0].Access, rs.Patterns[0].MaxDuration = AccessEligible, "15m"
		}, nil},
		{"max_duration with a bad session length", func(rs *RuleSet) {
			r := &rs.Grants[0].Roles[0]
			r.MaxSessionSeconds, r.Access, r.MaxDuration = 60, AccessEligible, "4h"
		}, []string{"grants[0].roles[0].max_session_seconds: must be 0 (none) or 900–43200 seconds, got 60"}},
		{"approvers and reason_pattern", func(rs *RuleSet) {
			rs.Grants[0].Roles[0].Access, rs.Grants[0].Roles[0].Approvers = AccessEligible, " ops"
			rs.Grants[0].Roles[1].Access, rs.Grants[0].Roles[1].Approvers = AccessEligible, "cn=a,,dc=x"
			rs.Grants[1].Roles[0].Access, rs.Grants[1].Roles[0].Approvers = AccessEligible, strings.Repeat("a", 4097)
			rs.Patterns[0].Access, rs.Patterns[0].ReasonPattern = AccessEligible, "(INC"
			rs.Patterns[1].Access, rs.Patterns[1].ReasonPattern = AccessEligible, strings.Repeat("a", 1025)
			rs.Patterns[2].Access, rs.Patterns[2].ReasonPattern, rs.Patterns[2].RequireReason = AccessEligible, `^(?=INC)`, true
		}, []string{
			"grants[0].roles[0].approvers: has leading or trailing spaces",
			`grants[0].roles[1].approvers: contains "=" but is not a valid DN`,
			"grants[1].roles[0].approvers: is 4097 characters long; at most 4096 allowed",
			"patterns[0].reason_pattern: not a valid regular expression: missing closing )",
			"patterns[1].reason_pattern: is 1025 bytes long; at most 1024 allowed",
			"patterns[2].reason_pattern: not a valid regular expression",
		}},
		{"description", func(rs *RuleSet) {
			rs.Grants[0].Description = strings.Repeat("d", 1025)
			rs.Patterns[0].Description = "bell\a"
		}, []string{"grants[0].description: is 1025 characters long; at most 1024 allowed", `patterns[0].description: has the control character '\a'`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := testRuleSet()
			tc.change(&rs)
			ps := rs.Validate()
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(tc.want), problemsText(ps))
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i], w)
				}
			}
			_, err := Compile(rs)
			var re *Error
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			if !errors.As(err, &re) || re.Op != "compile" || len(re.Problems) != len(ps) || !strings.Contains(err.Error(), ps[0].String()) {
				t.Fatalf("Compile error = %v", err)
			}
		})
	}
}

func problemsText(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestLimits(t *testing.T) {
	rs := RuleSet{}
	for i := 0; i < MaxAccounts+1; i++ {
		rs.Accounts = append(rs.Accounts, Account{ID: fmt.Sprintf("%012d", i), Name: fmt.Sprint(i), SAMLProvider: "w"})
	}
	rs.Grants = make([]GrantRule, MaxGrants+1)
	rs.Patterns = make([]PatternRule, MaxPatterns+1)
	ps := rs.Validate()
	want := []string{"accounts: 1001 accounts; at most 1000", "grants: 100001 grant rules; at most 100000", "patterns: 501 pattern rules; at most 500"}
	if len(ps) != len(want) {
		t.Fatalf("problems:\n%s", problemsText(ps))
	}
	for i, w := range want {
		if !strings.HasPrefix(ps[i].String(), w) {
			t.Errorf("problem %d = %q, want %q", i, ps[i], w)
		}
	}
}

func TestErrorText(t *testing.T) {
	var ps []Problem
	for i := 0; i < 12; i++ {
		ps = append(ps, Problem{Path: fmt.Sprintf("grants[%d].id", i), Message: "is required"})
	}
	got := (&Error{Op: "compile", Problems: ps}).Error()
	if !strings.HasPrefix(got, "rolemap: compile: grants[0].id: is required; grants[1].id") || !strings.HasSuffix(got, "; and 2 more") {
		t.Errorf("Error() = %q", got)
	}
}

func TestCheckFetched(t *testing.T) {
	rs := testRuleSet() // tags: email, Department, display_name; source identity: username
	if ps := rs.CheckFetched([]string{"department"}); len(ps) != 0 {
		t.Errorf("department fetched: %v", ps)
	}
	if ps := rs.CheckFetched([]string{"employeeNumber", "DEPARTMENT"}); len(ps) != 0 {
		t.Errorf("names are compared case-insensitively: %v", ps)
	}
	ps := rs.CheckFetched(nil)
	want := `tags.attributes[1].attribute: "Department" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no user ever gets this tag`
	if len(ps) != 1 || ps[0].String() != want {
		t.Errorf("nothing fetched:\n%swant:\n  %s", problemsText(ps), want)
	}
	rs.Tags.SourceIdentity = "employeeID"
	rs.Tags.Attributes = append(rs.Tags.Attributes, TagAttribute{Attribute: "bad attr", Key: "x"}, TagAttribute{Attribute: "", Key: "y"})
	ps = rs.CheckFetched([]string{"department"})
	if len(ps) != 1 || ps[0].String() != `tags.source_identity: "employeeID" is not read from the directory: add it to directory.attributes.extra in the wardend configuration, or no session ever gets a source identity` {
		t.Errorf("source identity (names Validate refuses are left to it):\n%s", problemsText(ps))
	}
	if ps := (RuleSet{}).CheckFetched(nil); len(ps) != 0 {
		t.Errorf("no tag rules: %v", ps)
	}
}
