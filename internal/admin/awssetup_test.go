package admin

import (
	"encoding/json"
	"net/http"
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
		`aws iam create-open-id-connect-provider --url https://sso.example.com --client-id-list sts.amazonaws.com`,
		`&#34;SAML:aud&#34;: &#34;https://signin.aws.amazon.com/saml&#34;`,
		`&#34;aws:RequestTag/WardenRole&#34;: &#34;Developer&#34;`,
		`&#34;sso.example.com:aud&#34;: &#34;sts.amazonaws.com&#34;`,
		`sts:SetSourceIdentity`,
		`aws iam update-role --role-name Developer --max-session-duration 7200`,
		`pattern rule more gives roles arn:aws:iam::111122223333:role/${role}`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(res.body, `class="policy"`); n != 1 {
		t.Errorf("%d policies, want 1 (the role is named twice)", n)
	}
	// The downloads are exactly what BuildSetup gives for these rules.
	_, doc, _ := e.rules.Current(t.Context())
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := AWSSetup(rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	_ = want.WriteText(&text)
	if got := alice.get("/admin/aws-setup?format=text"); got.code != 200 || got.body != text.String() ||
		!strings.HasPrefix(got.hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("text download %d %q", got.code, got.body)
	}
	got := alice.get("/admin/aws-setup?format=json")
	var js awsfed.Setup
	if err := json.Unmarshal([]byte(got.body), &js); err != nil || len(js.Accounts) != 1 || len(js.Accounts[0].Roles) != 1 ||
		js.Accounts[0].Roles[0].TrustPolicy.JSON() != want.Accounts[0].Roles[0].TrustPolicy.JSON() {
		t.Errorf("json download %d: %v %s", got.code, err, got.body)
	}
	if got := alice.get("/admin/aws-setup?format=yaml"); got.code != http.StatusBadRequest {
		t.Errorf("bad format: %d", got.code)
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
}
