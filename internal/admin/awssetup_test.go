package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
)

const awsSetupRules = seedRules + `  - id: more
    pattern: ^X-(?P<role>\w+)$
    role_arn: arn:aws:iam::111122223333:role/${role}
tags:
  source_identity: username
`

// TestAWSSetupPage: admins see the commands and policies of the current
// rules, the downloads equal `wardend aws setup`'s output, and the page
// says so when the server passed no settings.
func TestAWSSetupPage(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, strings.Replace(awsSetupRules, "patterns:", `  - id: leads
    group: leads
    roles:
      - arn: arn:aws:iam::111122223333:role/Developer
        max_session_seconds: 7200
patterns:`, 1))
	alice := newClient(t, e.srv.URL)
	alice.login("alice", pw)
	res := alice.get("/admin/aws-setup")
	if res.code != http.StatusOK || !strings.Contains(res.body, `id="not-configured"`) {
		t.Fatalf("unconfigured: %d %s", res.code, res.body)
	}
	opts := awsfed.SetupOptions{MetadataURL: "https://sso.example.com/saml/metadata", SAML: true, SAMLPartition: "aws",
		Issuer: "https://sso.example.com", STSAudience: "sts.amazonaws.com"}
	e.admin.SetAWSSetup(opts)
	res = alice.get("/admin/aws-setup")
	if res.code != http.StatusOK {
		t.Fatalf("%d %s", res.code, res.body)
	}
	for _, want := range []string{
		`aria-current="page">AWS setup</a>`,
		`aws iam create-saml-provider --name warden --saml-metadata-document file://warden-metadata.xml`,
		`aws iam create-open-id-connect-provider --url https://sso.example.com --client-id-list sts.amazonaws.com --thumbprint-list ` + awsfed.ThumbprintPlaceholder,
		`&#34;SAML:aud&#34;: &#34;https://signin.aws.amazon.com/saml&#34;`,
		`&#34;aws:RequestTag/WardenRole&#34;: &#34;Developer&#34;`,
		`&#34;sso.example.com:aud&#34;: &#34;sts.amazonaws.com&#34;`,
		`sts:SetSourceIdentity`,
		`aws iam update-role --role-name Developer --max-session-duration 7200`,
		`aws iam get-role --role-name Developer &gt;/dev/null 2&gt;&amp;1 || aws iam create-role --role-name Developer --path / --max-session-duration 7200`,
		`MaxSessionDuration 7200 s (sessions of up to 7200 s):`,
		`pattern rule more gives roles arn:aws:iam::111122223333:role/${role}`,
		`Roles of pattern rule <code>more</code>`,
		`<a href="/admin/aws-setup?format=terraform" id="download-terraform" download>Terraform</a>`,
		`<a href="/admin/aws-setup?format=cloudformation&amp;account=111122223333" download>CloudFormation</a>`,
		`id="thumbprint-note"`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(res.body, `class="policy"`); n != 1 {
		t.Errorf("%d policies, want 1 (the role is named twice)", n)
	}
	// Warnings look like warnings, every code block can be copied, the
	// policies are folded away, and no internal reference shows.
	if !strings.Contains(res.body, `<div class="error warning" role="note" id="notes">`) || strings.Contains(res.body, `class="notice" role="note"`) {
		t.Error("notes are not styled as warnings")
	}
	if pres, copies := strings.Count(res.body, "<pre"), strings.Count(res.body, "data-copy>"); pres == 0 || pres != copies {
		t.Errorf("%d code blocks, %d with a copy button", pres, copies)
	}
	if i, j := strings.Index(res.body, `<details class="role-setup">`), strings.Index(res.body, `class="policy"`); i < 0 || j < i {
		t.Error("the trust policy is not inside <details>")
	}
	if m := regexp.MustCompile(`\(items? \d+`).FindString(res.body); m != "" {
		t.Errorf("internal reference %q on the page", m)
	}

	// The downloads are exactly what AWSSetup gives for these rules.
	_, doc, _ := e.rules.Current(t.Context())
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := AWSSetup(rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	var script, tf, cfn strings.Builder
	_ = want.WriteScript(&script)
	_ = want.WriteTerraform(&tf)
	_ = want.WriteCloudFormation(&cfn, awsfed.CloudFormationOptions{})
	for _, tc := range []struct{ query, body, ctype, file string }{
		{"format=script", script.String(), "text/plain", "warden-aws-setup.sh"},
		{"format=text", script.String(), "text/plain", "warden-aws-setup.sh"},
		{"format=terraform", tf.String(), "text/plain", "warden-aws-setup.tf"},
		{"format=cloudformation", cfn.String(), "application/json", "warden-aws-setup.cfn.json"},
		{"format=terraform&account=111122223333", tf.String(), "text/plain", "warden-aws-setup-111122223333.tf"},
	} {
		got := alice.get("/admin/aws-setup?" + tc.query)
		if got.code != 200 || got.body != tc.body || !strings.HasPrefix(got.hdr.Get("Content-Type"), tc.ctype) ||
			got.hdr.Get("Content-Disposition") != `attachment; filename="`+tc.file+`"` {
			t.Errorf("%s: %d %q %q\n%s", tc.query, got.code, got.hdr.Get("Content-Type"), got.hdr.Get("Content-Disposition"), got.body)
		}
	}
	got := alice.get("/admin/aws-setup?format=json")
	var js awsfed.Setup
	if err := json.Unmarshal([]byte(got.body), &js); err != nil || len(js.Accounts) != 1 || len(js.Accounts[0].Roles) != 1 ||
		js.Accounts[0].Roles[0].TrustPolicy.JSON() != want.Accounts[0].Roles[0].TrustPolicy.JSON() || js.Accounts[0].Roles[0].MaxSessionDuration != 7200 {
		t.Errorf("json download %d: %v %s", got.code, err, got.body)
	}
	for _, q := range []string{"format=yaml", "format=script&account=999988887777", "account=111122223333", "format=script&account=%22x"} {
		if got := alice.get("/admin/aws-setup?" + q); got.code != http.StatusBadRequest {
			t.Errorf("%s: %d", q, got.code)
		}
	}
}

// TestAWSSetupDownloadUnconfigured: without the server's settings there
// is nothing to download, and the page says why.
func TestAWSSetupDownloadUnconfigured(t *testing.T) {
	e := newEnv(t, Config{})
	seed(t, e, awsSetupRules)
	alice := newClient(t, e.srv.URL)
	alice.login("alice", pw)
	if got := alice.get("/admin/aws-setup?format=terraform"); got.code != http.StatusNotFound || !strings.Contains(got.body, "wardend aws setup -config FILE") {
		t.Errorf("%d %s", got.code, got.body)
	}
}

func TestAWSSetupAccounts(t *testing.T) {
	rs := rolemap.RuleSet{
		Accounts: []rolemap.Account{{ID: "111122223333", Name: "prod", SAMLProvider: "w"}, {ID: "444455556666", Name: "gov", Partition: "aws-us-gov", SAMLProvider: "w"}},
		Grants: []rolemap.GrantRule{
			{ID: "a", Group: "g", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/R", MaxSessionSeconds: 900}}},
			{ID: "b", Group: "h", Roles: []rolemap.RoleRef{{ARN: "arn:aws:iam::111122223333:role/R", MaxSessionSeconds: 3600},
				{ARN: "arn:aws-us-gov:iam::444455556666:role/G"}}},
		},
	}
	accts, notes := AWSSetupAccounts(rs, awsfed.SetupOptions{})
	if len(notes) != 0 || len(accts) != 2 || len(accts[0].Roles) != 1 || accts[0].Roles[0].SessionSeconds != 3600 ||
		accts[1].Partition != "aws-us-gov" || accts[1].Roles[0].ARN != "arn:aws-us-gov:iam::444455556666:role/G" {
		t.Fatalf("%+v %v", accts, notes)
	}
	// A rule without max_session_seconds gives the default session,
	// which may be longer than another rule's explicit one.
	accts, _ = AWSSetupAccounts(rs, awsfed.SetupOptions{DefaultSessionSeconds: 28800})
	if accts[0].Roles[0].SessionSeconds != 3600 || accts[1].Roles[0].SessionSeconds != 28800 {
		t.Errorf("default session: %+v", accts)
	}
	rs.Grants[0].Roles[0].MaxSessionSeconds = 0
	accts, _ = AWSSetupAccounts(rs, awsfed.SetupOptions{DefaultSessionSeconds: 7200})
	if accts[0].Roles[0].SessionSeconds != 7200 {
		t.Errorf("longest of default and explicit: %+v", accts[0].Roles)
	}
}

// TestAWSSetupPatterns: a pattern rule goes to the accounts its template
// may name (a fixed account, or every account of its partition for
// ${account}), with its session length and MFA.
func TestAWSSetupPatterns(t *testing.T) {
	rs := rolemap.RuleSet{
		Accounts: []rolemap.Account{{ID: "111122223333", Name: "a"}, {ID: "222233334444", Name: "b"}, {ID: "444455556666", Name: "gov", Partition: "aws-us-gov"}},
		Patterns: []rolemap.PatternRule{
			{ID: "any", RoleARN: "arn:aws:iam::${account}:role/${role}", MaxSessionSeconds: 7200, MFAMethods: []string{"totp"}},
			{ID: "fixed", RoleARN: "arn:aws:iam::222233334444:role/x-${role}"},
			{ID: "nowhere", RoleARN: "arn:aws:iam::999988887777:role/${role}"},
		},
	}
	accts, notes := AWSSetupAccounts(rs, awsfed.SetupOptions{MFAMethods: []string{"totp"}})
	got := map[string][]string{}
	for _, a := range accts {
		for _, p := range a.Patterns {
			got[a.ID] = append(got[a.ID], fmt.Sprintf("%s %d %v %v", p.RuleID, p.SessionSeconds, p.RequireMFA, p.MFAMethods))
		}
	}
	want := map[string][]string{"111122223333": {"any 7200 true [totp]"}, "222233334444": {"any 7200 true [totp]", "fixed 3600 false []"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patterns %v, want %v", got, want)
	}
	if len(notes) != 3 || !strings.Contains(notes[2], "pattern rule nowhere") || !strings.Contains(notes[2], "it names no catalogued account") ||
		strings.Contains(notes[1], "no catalogued account") {
		t.Errorf("notes:\n%s", strings.Join(notes, "\n"))
	}
}
