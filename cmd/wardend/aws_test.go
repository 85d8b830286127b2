package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

const awsTestRules = `accounts:
  - id: "111122223333"
    name: prod
    saml_provider: Warden
  - id: "444455556666"
    name: gov
    partition: aws-us-gov
    saml_provider: Warden
grants:
  - id: devs
    group: developers
    roles:
      - arn: arn:aws:iam::111122223333:role/ReadOnly
        max_session_seconds: 7200
      - arn: arn:aws-us-gov:iam::444455556666:role/Auditor
tags:
  attributes:
    - attribute: email
      key: email
`

func writeTemp(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAWSSetupFromFile: -rules with -public-url, text and JSON; the JSON
// policies are valid and carry the condition keys.
func TestAWSSetupFromFile(t *testing.T) {
	rules := writeTemp(t, "rules.yaml", awsTestRules)
	code, out := runCmd(t, "aws", "setup", "-rules", rules, "-public-url", "https://sso.example.com/", "-saml-region", "eu-west-1", "-offline")
	if code != 0 {
		t.Fatalf("%d %s", code, out)
	}
	for _, want := range []string{
		"#!/bin/sh\n",
		`curl -fsS https://sso.example.com/saml/metadata -o "$metadata"`,
		`aws iam create-saml-provider $iam_region --name Warden --saml-metadata-document "file://$metadata"`,
		`aws iam create-open-id-connect-provider $iam_region --url https://sso.example.com --client-id-list sts.amazonaws.com --thumbprint-list "$thumbprint"`,
		"thumbprint=${WARDEN_OIDC_THUMBPRINT:-" + awsfed.ThumbprintPlaceholder + "}",
		"iam_region='--region us-gov-west-1'",
		`"SAML:aud": "https://eu-west-1.signin.aws.amazon.com/saml"`,
		`"sso.example.com:aud": "sts.amazonaws.com"`,
		`"aws:RequestTag/WardenRole": "Auditor"`,
		`ensure_role ReadOnly / 7200 "$dir/trust-111122223333-ReadOnly.json"`,
		`ensure_role Auditor / 3600 "$dir/trust-444455556666-Auditor.json"`,
		"111122223333) account_111122223333 ;;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sts:SetSourceIdentity") {
		t.Error("SetSourceIdentity without a source identity rule")
	}
	code, out = runCmd(t, "aws", "setup", "-rules", rules, "-public-url", "https://sso.example.com", "-format", "json",
		"-issuer", "https://sso.example.com/oidc", "-sts-audience", "warden-sts", "-thumbprint", "9E99A48A9960B14926BB7F3B02E22DA2B0AB7280")
	if code != 0 {
		t.Fatalf("%d %s", code, out)
	}
	var s awsfed.Setup
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(s.Accounts) != 2 || s.Issuer != "https://sso.example.com/oidc" || s.STSAudience != "warden-sts" ||
		s.OIDCThumbprint != "9e99a48a9960b14926bb7f3b02e22da2b0ab7280" || s.ThumbprintIsPlaceholder {
		t.Fatalf("%+v", s)
	}
	st := s.Accounts[0].Roles[0].TrustPolicy.Statement
	if len(st) != 2 || st[1].Condition["StringEquals"]["sso.example.com/oidc:aud"] != "warden-sts" ||
		st[1].Principal["Federated"] != "arn:aws:iam::111122223333:oidc-provider/sso.example.com/oidc" {
		t.Fatalf("%+v", st)
	}
}

const awsMFARules = `accounts:
  - id: "111122223333"
    name: prod
    saml_provider: Warden
grants:
  - id: admins
    group: admins
    roles:
      - arn: arn:aws:iam::111122223333:role/Admin
        require_mfa: true
      - arn: arn:aws:iam::111122223333:role/Keys
        mfa_methods: [webauthn]
      - arn: arn:aws:iam::111122223333:role/ReadOnly
`

// mfaConditions runs aws setup -format json and returns, per role name,
// the value of condKey in each statement's StringEquals (nil: absent),
// decoded from the JSON as any.
func mfaConditions(t *testing.T, condKey string, args ...string) (map[string][]any, awsfed.Setup) {
	t.Helper()
	code, out := runCmd(t, append([]string{"aws", "setup", "-format", "json", "-offline"}, args...)...)
	if code != 0 {
		t.Fatalf("%d %s", code, out)
	}
	var s awsfed.Setup
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string][]any{}
	for _, r := range s.Accounts[0].Roles {
		var doc struct {
			Statement []struct {
				Condition map[string]map[string]any
			}
		}
		if err := json.Unmarshal([]byte(r.TrustPolicy.JSON()), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Statement) != 2 {
			t.Fatalf("%s: %d statements", r.Name, len(doc.Statement))
		}
		for _, st := range doc.Statement {
			got[r.Name] = append(got[r.Name], st.Condition["StringEquals"][condKey])
		}
	}
	return got, s
}

// TestAWSSetupMFA: roles that require MFA get aws:RequestTag/<tag> with
// their methods on both paths; the tag and the methods come from the
// config's mfa block, or the defaults; "-" gives a warning instead.
func TestAWSSetupMFA(t *testing.T) {
	rules := writeTemp(t, "rules.yaml", awsMFARules)
	all := []any{"webauthn", "totp", "recovery"}
	got, _ := mfaConditions(t, "aws:RequestTag/WardenAuth", "-rules", rules, "-public-url", "https://sso.example.com")
	want := map[string][]any{"Admin": {all, all}, "Keys": {[]any{"webauthn"}, []any{"webauthn"}}, "ReadOnly": {nil, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: %v, want %v", got, want)
	}
	cfg := writeTemp(t, "wardend.yaml", `server:
  public_url: https://sso.example.com
redis:
  addrs: ["127.0.0.1:1"]
saml:
  aws:
    partition: aws
mfa:
  session_tag: AuthMethod
  methods: [totp, webauthn]
`)
	got, _ = mfaConditions(t, "aws:RequestTag/AuthMethod", "-config", cfg, "-rules", rules)
	want = map[string][]any{"Admin": {[]any{"totp", "webauthn"}, []any{"totp", "webauthn"}}, "Keys": {[]any{"webauthn"}, []any{"webauthn"}}, "ReadOnly": {nil, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from the config: %v, want %v", got, want)
	}
	// No tag: no condition, and a warning for each MFA role.
	got, s := mfaConditions(t, "aws:RequestTag/WardenAuth", "-rules", rules, "-public-url", "https://sso.example.com", "-mfa-session-tag", "-")
	if want := (map[string][]any{"Admin": {nil, nil}, "Keys": {nil, nil}, "ReadOnly": {nil, nil}}); !reflect.DeepEqual(got, want) {
		t.Errorf("no tag: %v", got)
	}
	if notes := strings.Join(s.Accounts[0].Notes, "\n"); strings.Count(notes, "AWS cannot enforce the role's MFA requirement") != 2 {
		t.Errorf("notes: %s", notes)
	}
	code, out := runCmd(t, "aws", "setup", "-rules", rules, "-public-url", "https://sso.example.com", "-mfa-session-tag", "-", "-offline")
	if code != 0 || !strings.Contains(out, "# NOTE: role arn:aws:iam::111122223333:role/Admin requires MFA, but mfa.session_tag is \"-\"") {
		t.Errorf("text output: %d %s", code, out)
	}
}

func TestAWSSetupArguments(t *testing.T) {
	rules := writeTemp(t, "rules.yaml", awsTestRules)
	bad := writeTemp(t, "bad.yaml", "accounts:\n  - id: 12\n    nmae: x\n")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"aws"}, 2, "usage:"},
		{[]string{"aws", "nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"aws", "help"}, 0, "wardend aws setup -config FILE"},
		{[]string{"aws", "setup"}, 2, "need -config FILE or -rules FILE"},
		{[]string{"aws", "setup", "-rules", rules}, 2, "needs -public-url"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-format", "yaml"}, 2, "-format must be"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-thumbprint", "abc"}, 2, "-thumbprint: thumbprint \"abc\" is not 40 hex digits"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-thumbprint", strings.Repeat("a", 40), "-offline"}, 2, "exclude each other"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-metadata", rules}, 2, "-metadata is for -format cloudformation"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-format", "cloudformation", "-metadata", filepath.Join(t.TempDir(), "no.xml")}, 1, "no.xml"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-offline", "-account", "111122223333,999988887777"}, 1, `-account: awsfed: setup: account "999988887777" is not in the catalogue`},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-default-session-seconds", "-5"}, 2, "must be positive"},
		{[]string{"aws", "setup", "-config", rules, "-default-session-seconds", "7200"}, 2, "for use without -config"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "extra"}, 2, "unexpected argument"},
		{[]string{"aws", "setup", "-rules", bad, "-public-url", "https://x"}, 1, "nmae"},
		{[]string{"aws", "setup", "-rules", filepath.Join(t.TempDir(), "none.yaml"), "-public-url", "https://x"}, 1, "none.yaml"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-saml-region", "moon", "-offline"}, 1, "region"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "http://127.0.0.1:8080"}, 0, "NOTE: AWS will refuse this issuer"},
		{[]string{"aws", "setup", "-rules", rules, "-public-url", "https://x", "-mfa-session-tag", "aws:x"}, 2, "-mfa-session-tag: invalid session tag"},
		{[]string{"aws", "setup", "-config", rules, "-mfa-session-tag", "X"}, 2, "-mfa-session-tag and -default-session-seconds are for use without -config"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.out, out)
			}
		})
	}
}

// TestAWSSetupFromRedis: with -config, the stored rules are read from the
// real Redis.
func TestAWSSetupFromRedis(t *testing.T) {
	env := testenv.Require(t, "REDIS_ADDR")
	prefix := fmt.Sprintf("warden-awssetup-%d:", time.Now().UnixNano())
	cfg := writeTemp(t, "wardend.yaml", fmt.Sprintf(`server:
  public_url: https://sso.example.com
redis:
  addrs: [%q]
  key_prefix: %q
saml:
  aws:
    partition: aws
`, env["REDIS_ADDR"], prefix))
	code, out := runCmd(t, "aws", "setup", "-config", cfg, "-offline")
	if code != 1 || !strings.Contains(out, "no rules are stored yet") {
		t.Fatalf("empty store: %d %s", code, out)
	}
	rc := store.RedisConfig{Addrs: []string{env["REDIS_ADDR"]}, KeyPrefix: prefix}
	rc.SetDefaults()
	st, err := store.Open(context.Background(), rc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := store.NewRules(st, nil).Save(context.Background(), 0, []byte(awsTestRules), store.ChangeMeta{Author: "test"}); err != nil {
		t.Fatal(err)
	}
	code, out = runCmd(t, "aws", "setup", "-config", cfg, "-offline")
	if code != 0 || !strings.Contains(out, `"SAML:aud": "https://signin.aws.amazon.com/saml"`) ||
		!strings.Contains(out, "ensure_role ReadOnly") {
		t.Fatalf("%d %s", code, out)
	}
	// -rules wins over the stored rules, with the config's settings.
	other := writeTemp(t, "other.yaml", strings.ReplaceAll(awsTestRules, "ReadOnly", "PowerUser"))
	code, out = runCmd(t, "aws", "setup", "-config", cfg, "-rules", other, "-offline")
	if code != 0 || !strings.Contains(out, "ensure_role PowerUser") || strings.Contains(out, "ReadOnly") {
		t.Fatalf("%d %s", code, out)
	}
}

// TestAWSSetupAsCode: -format terraform parses as HCL with a provider per
// account, -format cloudformation is a template whose roles have the
// MaxSessionDuration of their longest grant (the config's default session
// for a rule that sets none), and -account gives one account's file.
func TestAWSSetupAsCode(t *testing.T) {
	rules := writeTemp(t, "rules.yaml", awsTestRules+`patterns:
  - id: teams
    pattern: ^T-(?P<role>\w+)$
    role_arn: arn:aws:iam::111122223333:role/${role}
    max_session_seconds: 10800
`)
	base := []string{"aws", "setup", "-rules", rules, "-public-url", "https://sso.example.com", "-offline", "-default-session-seconds", "5400"}
	code, out := runCmd(t, append(base, "-format", "terraform")...)
	if code != 0 {
		t.Fatalf("%d %s", code, out)
	}
	f, diags := hclsyntax.ParseConfig([]byte(out), "warden.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags, out)
	}
	kinds := map[string]int{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		kinds[strings.Join(append([]string{b.Type}, b.Labels[:1]...), " ")]++
	}
	if want := map[string]int{"provider aws": 2, "resource aws_iam_saml_provider": 1, "resource aws_iam_openid_connect_provider": 2,
		"resource aws_iam_role": 3, "variable pattern_111122223333_teams": 1}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("blocks %v, want %v", kinds, want)
	}
	for _, want := range []string{`max_session_duration = 7200`, `max_session_duration = 5400`, `max_session_duration = 10800`, `region              = "us-gov-west-1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("terraform lacks %s", want)
		}
	}

	meta := writeTemp(t, "warden-metadata.xml", "<md:EntityDescriptor/>")
	code, out = runCmd(t, append(base, "-format", "cloudformation", "-account", "111122223333", "-metadata", meta)...)
	if code != 0 {
		t.Fatalf("%d %s", code, out)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Condition  string
			Properties map[string]any
		}
		Parameters map[string]any
	}
	if err := json.Unmarshal([]byte(out), &tmpl); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	durations := map[string]any{}
	for _, r := range tmpl.Resources {
		if r.Condition != "" {
			t.Errorf("one account, yet a condition %s", r.Condition)
		}
		switch r.Type {
		case "AWS::IAM::Role":
			durations[r.Properties["RoleName"].(string)] = r.Properties["MaxSessionDuration"]
		case "AWS::IAM::SAMLProvider":
			if r.Properties["SamlMetadataDocument"] != "<md:EntityDescriptor/>" {
				t.Errorf("metadata %v", r.Properties["SamlMetadataDocument"])
			}
		}
	}
	if !reflect.DeepEqual(durations, map[string]any{"ReadOnly": float64(7200)}) || len(tmpl.Parameters) != 0 {
		t.Errorf("roles %v, parameters %v", durations, tmpl.Parameters)
	}
}
