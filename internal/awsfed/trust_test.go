package awsfed

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run %s -update to accept):\n%s", path, t.Name(), got)
	}
}

func setupFixture() ([]SetupAccount, SetupOptions) {
	accts := []SetupAccount{
		{ID: "222233334444", Name: "prod", SAMLProvider: "Warden", Roles: []SetupRole{
			{ARN: "arn:aws:iam::222233334444:role/ReadOnly"},
			{ARN: "arn:aws:iam::222233334444:role/ops/Admin", SessionSeconds: 28800},
		}, Patterns: []SetupPattern{
			{RuleID: "team-roles", RoleARN: "arn:aws:iam::${account}:role/team/${role}", SessionSeconds: 7200, RequireMFA: true},
		}},
		{ID: "111122223333", Name: "dev", Partition: "aws", SAMLProvider: "Warden", Roles: []SetupRole{
			{ARN: "arn:aws:iam::111122223333:role/Developer", SessionSeconds: 3600},
		}},
		{ID: "555566667777", Name: "gov", Partition: "aws-us-gov", SAMLProvider: "Warden", Roles: []SetupRole{
			{ARN: "arn:aws-us-gov:iam::555566667777:role/Auditor"},
		}},
	}
	return accts, SetupOptions{
		MetadataURL: "https://sso.example.com/saml/metadata",
		SAML:        true, SAMLPartition: "aws", SAMLRegion: "eu-west-1",
		Issuer:         "https://sso.example.com",
		SourceIdentity: true,
		MFAMethods:     []string{"webauthn", "totp"},
	}
}

func TestBuildSetupGolden(t *testing.T) {
	accts, o := setupFixture()
	s, err := BuildSetup(accts, o)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := s.WriteScript(&text); err != nil {
		t.Fatal(err)
	}
	golden(t, "setup.txt", text.Bytes())
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "setup.json", append(js, '\n'))
}

// TestTrustPolicies checks every policy of the fixture as JSON decoded
// independently of our types: valid JSON, the right actions and the
// condition keys AWS evaluates (items 4, 13, 15, 35, 37).
func TestTrustPolicies(t *testing.T) {
	accts, o := setupFixture()
	for _, si := range []bool{false, true} {
		o.SourceIdentity = si
		s, err := BuildSetup(accts, o)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range s.Accounts {
			for _, r := range a.Roles {
				n++
				var doc struct {
					Version   string
					Statement []struct {
						Sid       string
						Effect    string
						Principal map[string]string
						Action    []string
						Condition map[string]map[string]string
					}
				}
				dec := json.NewDecoder(strings.NewReader(r.TrustPolicy.JSON()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&doc); err != nil {
					t.Fatalf("%s: policy is not the JSON expected: %v", r.ARN, err)
				}
				if doc.Version != "2012-10-17" {
					t.Errorf("%s: Version %q", r.ARN, doc.Version)
				}
				wantStatements := 2
				if a.Partition != "aws" {
					wantStatements = 1 // SAML goes to the aws partition only
				}
				if len(doc.Statement) != wantStatements {
					t.Fatalf("%s: %d statements, want %d", r.ARN, len(doc.Statement), wantStatements)
				}
				arn, _ := ParseRoleARN(r.ARN)
				for _, st := range doc.Statement {
					if st.Effect != "Allow" {
						t.Errorf("%s: Effect %q", r.ARN, st.Effect)
					}
					hasSI := strings.Contains(strings.Join(st.Action, " "), "sts:SetSourceIdentity")
					if hasSI != si || !strings.Contains(strings.Join(st.Action, " "), "sts:TagSession") {
						t.Errorf("%s: actions %v (source identity %v)", r.ARN, st.Action, si)
					}
					eq := st.Condition["StringEquals"]
					switch st.Sid {
					case SidSAML:
						if st.Action[0] != "sts:AssumeRoleWithSAML" {
							t.Errorf("%s: SAML action %v", r.ARN, st.Action)
						}
						if want := "arn:aws:iam::" + a.ID + ":saml-provider/Warden"; st.Principal["Federated"] != want {
							t.Errorf("%s: principal %v, want %s", r.ARN, st.Principal, want)
						}
						if len(eq) != 1 || eq["SAML:aud"] != "https://eu-west-1.signin.aws.amazon.com/saml" {
							t.Errorf("%s: SAML condition %v", r.ARN, eq)
						}
					case SidWebIdentity:
						if st.Action[0] != "sts:AssumeRoleWithWebIdentity" {
							t.Errorf("%s: web identity action %v", r.ARN, st.Action)
						}
						if want := "arn:" + a.Partition + ":iam::" + a.ID + ":oidc-provider/sso.example.com"; st.Principal["Federated"] != want {
							t.Errorf("%s: principal %v, want %s", r.ARN, st.Principal, want)
						}
						want := map[string]string{"sso.example.com:aud": "sts.amazonaws.com",
							"aws:RequestTag/WardenRole": arn.Name, "aws:RequestTag/WardenAccount": a.ID}
						if len(eq) != len(want) {
							t.Errorf("%s: condition %v, want %v", r.ARN, eq, want)
						}
						for k, v := range want {
							if eq[k] != v {
								t.Errorf("%s: condition %s = %q, want %q", r.ARN, k, eq[k], v)
							}
						}
					default:
						t.Errorf("%s: unexpected Sid %q", r.ARN, st.Sid)
					}
				}
			}
		}
		if n != 4 {
			t.Fatalf("%d roles, want 4", n)
		}
	}
}

func TestBuildSetupIssuerPathAndNotes(t *testing.T) {
	role := SetupRole{ARN: "arn:aws:iam::111122223333:role/R"}
	s, err := BuildSetup([]SetupAccount{{ID: "111122223333", Name: "a", SAMLProvider: "W", Roles: []SetupRole{role}}},
		SetupOptions{Issuer: "https://idp.example.com/tenant/warden", STSAudience: "warden-sts"})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Accounts[0].Roles[0].TrustPolicy.Statement
	if len(st) != 1 || st[0].Condition["StringEquals"]["idp.example.com/tenant/warden:aud"] != "warden-sts" {
		t.Fatalf("statement %+v", st)
	}
	if got := s.Accounts[0].OIDCProviderARN; got != "arn:aws:iam::111122223333:oidc-provider/idp.example.com/tenant/warden" {
		t.Fatalf("provider ARN %s", got)
	}
	if len(s.Notes) != 0 || s.Accounts[0].SAMLProviderARN != "" {
		t.Fatalf("notes %v, SAML %q", s.Notes, s.Accounts[0].SAMLProviderARN)
	}
	// dev mode: an http issuer with a port is printed with a warning.
	s, err = BuildSetup(nil, SetupOptions{Issuer: "http://127.0.0.1:8080"})
	if err != nil || len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "https") {
		t.Fatalf("notes %v, %v", s.Notes, err)
	}
	var b bytes.Buffer
	if err := s.WriteScript(&b); err != nil || !strings.Contains(b.String(), "no account") {
		t.Fatalf("%q %v", b.String(), err)
	}
}

func TestBuildSetupErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    SetupAccount
		o    SetupOptions
		msg  string
	}{
		{"bad role", SetupAccount{ID: "111122223333", SAMLProvider: "W", Roles: []SetupRole{{ARN: "arn:aws:iam::1:role/x"}}},
			SetupOptions{Issuer: "https://x"}, "12 digits"},
		{"role of other account", SetupAccount{ID: "111122223333", SAMLProvider: "W", Roles: []SetupRole{{ARN: "arn:aws:iam::999922223333:role/x"}}},
			SetupOptions{Issuer: "https://x"}, "not in account"},
		{"bad provider", SetupAccount{ID: "111122223333", SAMLProvider: "a b"}, SetupOptions{SAML: true, SAMLPartition: "aws"}, "SAML provider name"},
		{"bad partition", SetupAccount{ID: "111122223333", Partition: "aws-xx"}, SetupOptions{}, "unknown partition"},
		{"bad region", SetupAccount{ID: "111122223333"}, SetupOptions{SAML: true, SAMLPartition: "aws", SAMLRegion: "moon"}, "region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildSetup([]SetupAccount{tc.a}, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestValidOIDCProviderURL(t *testing.T) {
	for _, ok := range []string{"https://sso.example.com", "https://sso.example.com/", "https://sso.example.com/a/b"} {
		if err := ValidOIDCProviderURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://sso.example.com", "https://sso.example.com:8443", "https://sso.example.com/?a=b",
		"https://sso.example.com#x", "https://u@sso.example.com", "https://", "https://x/" + strings.Repeat("p", 250), "::"} {
		if err := ValidOIDCProviderURL(bad); !errors.Is(err, ErrInvalidIssuer) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "https://x/y": "https://x/y", "$(x)": "'$(x)'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestTrustPoliciesMFA: a role that requires MFA gets, in both statements,
// StringEquals aws:RequestTag/<MFA tag> with the methods it accepts; other
// roles get no such key. Without a tag ("-") no condition is written and a
// note says that AWS cannot enforce the requirement.
func TestTrustPoliciesMFA(t *testing.T) {
	const acct = "111122223333"
	roleARN := func(n string) string { return "arn:aws:iam::" + acct + ":role/" + n }
	accts := []SetupAccount{{ID: acct, Name: "prod", SAMLProvider: "Warden", Roles: []SetupRole{
		{ARN: roleARN("Any"), RequireMFA: true},
		{ARN: roleARN("Key"), RequireMFA: true, MFAMethods: []string{"webauthn"}},
		{ARN: roleARN("Plain")},
		{ARN: roleARN("Otp"), RequireMFA: true, MFAMethods: []string{"totp", "recovery"}},
		{ARN: roleARN("Rec"), RequireMFA: true, MFAMethods: []string{"recovery"}}, // not in mfa.methods
	}}}
	base := SetupOptions{SAML: true, SAMLPartition: "aws", Issuer: "https://sso.example.com", MFAMethods: []string{"webauthn", "totp"}}
	// policies decodes every trust policy of s independently of our types:
	// role name → Sid → condition key → values ([]any of strings, or a string).
	policies := func(t *testing.T, s Setup) map[string]map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]map[string]any{}
		for _, r := range s.Accounts[0].Roles {
			var doc struct {
				Statement []struct {
					Sid       string
					Condition map[string]map[string]any
				}
			}
			if err := json.Unmarshal([]byte(r.TrustPolicy.JSON()), &doc); err != nil {
				t.Fatalf("%s: %v", r.ARN, err)
			}
			out[r.Name] = map[string]map[string]any{}
			for _, st := range doc.Statement {
				if len(st.Condition) != 1 {
					t.Errorf("%s %s: operators %v, want StringEquals only", r.Name, st.Sid, st.Condition)
				}
				out[r.Name][st.Sid] = st.Condition["StringEquals"]
			}
			if len(out[r.Name]) != 2 {
				t.Fatalf("%s: statements %v", r.Name, out[r.Name])
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, tag, key string
	}{
		{"default tag", "", "aws:RequestTag/WardenAuth"},
		{"configured tag", "Auth Method", "aws:RequestTag/Auth Method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.MFASessionTag = tc.tag
			s, err := BuildSetup(accts, o)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]any{"Any": {"webauthn", "totp"}, "Key": {"webauthn"}, "Plain": nil, "Otp": {"totp"}, "Rec": {"recovery"}}
			for role, sts := range policies(t, s) {
				for sid, eq := range sts {
					got, has := eq[tc.key]
					if want[role] == nil {
						if has {
							t.Errorf("%s %s: %s = %v on a role without MFA", role, sid, tc.key, got)
						}
						continue
					}
					if list, ok := got.([]any); !ok || !reflect.DeepEqual(list, want[role]) {
						t.Errorf("%s %s: %s = %#v, want the list %v", role, sid, tc.key, got, want[role])
					}
				}
				// The other keys are untouched.
				if _, ok := sts[SidSAML]["SAML:aud"]; !ok {
					t.Errorf("%s: SAML:aud lost: %v", role, sts[SidSAML])
				}
				if sts[SidWebIdentity]["aws:RequestTag/"+TagRole] != role {
					t.Errorf("%s: WardenRole lost: %v", role, sts[SidWebIdentity])
				}
			}
			notes := strings.Join(s.Accounts[0].Notes, "\n")
			if len(s.Accounts[0].Notes) != 1 || !strings.Contains(notes, "role "+roleARN("Rec")+" accepts only recovery, none of which is in mfa.methods") {
				t.Errorf("notes: %s", notes)
			}
			if r := s.Accounts[0].Roles[0]; r.Name != "Any" || !r.RequireMFA || r.MFATag == "" || !slices.Equal(r.MFAMethods, []string{"webauthn", "totp"}) {
				t.Errorf("role setup %+v", r)
			}
			var text bytes.Buffer
			_ = s.WriteScript(&text)
			if !strings.Contains(text.String(), "# Requires MFA: the trust policy accepts "+tc.key+" webauthn only.") {
				t.Errorf("text:\n%s", text.String())
			}
		})
	}
	t.Run("no tag", func(t *testing.T) {
		o := base
		o.MFASessionTag = "-"
		s, err := BuildSetup(accts, o)
		if err != nil {
			t.Fatal(err)
		}
		for role, sts := range policies(t, s) {
			for sid, eq := range sts {
				for k := range eq {
					if strings.HasPrefix(k, "aws:RequestTag/") && k != "aws:RequestTag/"+TagRole && k != "aws:RequestTag/"+TagAccount {
						t.Errorf("%s %s: %s without an MFA tag", role, sid, k)
					}
				}
			}
		}
		var n int
		for _, note := range s.Accounts[0].Notes {
			if strings.Contains(note, "AWS cannot enforce the role's MFA requirement") {
				n++
			}
		}
		if n != 4 {
			t.Errorf("%d notes say AWS cannot enforce MFA, want 4 (one per MFA role): %v", n, s.Accounts[0].Notes)
		}
		var text bytes.Buffer
		_ = s.WriteScript(&text)
		if !strings.Contains(text.String(), "# NOTE: role "+roleARN("Any")+" requires MFA, but mfa.session_tag is \"-\"") {
			t.Errorf("text:\n%s", text.String())
		}
	})
}

func TestMFAValues(t *testing.T) {
	o := SetupOptions{MFAMethods: []string{"webauthn", "totp", "recovery"}}
	for _, tc := range []struct {
		role []string
		want []string
		ok   bool
	}{
		{nil, []string{"webauthn", "totp", "recovery"}, true},
		{[]string{"totp"}, []string{"totp"}, true},
		{[]string{"webauthn", "sms"}, []string{"webauthn"}, true},
	} {
		if got, ok := o.MFAValues(tc.role); !slices.Equal(got, tc.want) || ok != tc.ok {
			t.Errorf("MFAValues(%v) = %v %v", tc.role, got, ok)
		}
	}
	if got, ok := (SetupOptions{}).MFAValues(nil); ok || len(got) != 0 {
		t.Errorf("no methods configured: %v %v", got, ok)
	}
	for tag, want := range map[string]string{"": "WardenAuth", "-": "", "X": "X"} {
		if got := (SetupOptions{MFASessionTag: tag}).MFATag(); got != want {
			t.Errorf("MFATag(%q) = %q", tag, got)
		}
	}
}

// RequireRequestTag copies the condition maps: a shared statement is not
// changed.
func TestRequireRequestTagCopies(t *testing.T) {
	st := SAMLTrustStatement("arn:aws:iam::111122223333:saml-provider/W", "https://signin.aws.amazon.com/saml", false)
	st2 := RequireRequestTag(st, "WardenAuth", []string{"webauthn"})
	if len(st.Condition["StringEquals"]) != 1 || len(st2.Condition["StringEquals"]) != 2 {
		t.Fatalf("%v / %v", st.Condition, st2.Condition)
	}
}
