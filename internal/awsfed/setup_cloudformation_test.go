package awsfed

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// cfnTemplate is the part of a CloudFormation template that the test
// checks, decoded independently of the writer's types.
type cfnTemplate struct {
	AWSTemplateFormatVersion string
	Parameters               map[string]struct{ Type string }
	Conditions               map[string]map[string][]any
	Resources                map[string]struct {
		Type       string
		Condition  string
		DependsOn  []string
		Properties map[string]json.RawMessage
	}
	Metadata map[string]struct {
		PatternRules []struct {
			Account, Rule, RoleArn   string
			MaxSessionDuration       int
			AssumeRolePolicyDocument json.RawMessage
		}
	}
}

func decodeCFN(t *testing.T, s Setup, o CloudFormationOptions) (cfnTemplate, []byte) {
	t.Helper()
	var out bytes.Buffer
	if err := s.WriteCloudFormation(&out, o); err != nil {
		t.Fatal(err)
	}
	var tmpl cfnTemplate
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	if err := dec.Decode(&tmpl); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.Bytes())
	}
	return tmpl, out.Bytes()
}

// TestCloudFormation checks the template's structure: resource types and
// properties, one Condition per account on AWS::AccountId, roles that
// depend on their account's providers, and trust policies that are valid
// JSON whose principals are the providers of the role's own account.
func TestCloudFormation(t *testing.T) {
	s := scriptFixture(t, "")
	tmpl, raw := decodeCFN(t, s, CloudFormationOptions{})
	if tmpl.AWSTemplateFormatVersion != "2010-09-09" || tmpl.Parameters[CFNMetadataParameter].Type != "String" {
		t.Fatalf("header: %+v", tmpl)
	}
	for _, a := range s.Accounts {
		c := tmpl.Conditions["Account"+a.ID]["Fn::Equals"]
		if len(c) != 2 || !reflect.DeepEqual(c[0], map[string]any{"Ref": "AWS::AccountId"}) || c[1] != a.ID {
			t.Errorf("condition of %s: %v", a.ID, c)
		}
	}
	types := map[string]int{}
	providerARN := map[string]string{} // logical ID → the ARN IAM gives it
	for id, r := range tmpl.Resources {
		types[r.Type]++
		acct := strings.TrimPrefix(r.Condition, "Account")
		var name, url string
		switch r.Type {
		case "AWS::IAM::SAMLProvider":
			_ = json.Unmarshal(r.Properties["Name"], &name)
			var doc map[string]string
			if err := json.Unmarshal(r.Properties["SamlMetadataDocument"], &doc); err != nil || doc["Ref"] != CFNMetadataParameter {
				t.Errorf("%s: metadata %s", id, r.Properties["SamlMetadataDocument"])
			}
			providerARN[id] = "arn:aws:iam::" + acct + ":saml-provider/" + name
		case "AWS::IAM::OIDCProvider":
			var ids, prints []string
			_ = json.Unmarshal(r.Properties["Url"], &url)
			_ = json.Unmarshal(r.Properties["ClientIdList"], &ids)
			_ = json.Unmarshal(r.Properties["ThumbprintList"], &prints)
			if url != "https://sso.example.com" || !reflect.DeepEqual(ids, []string{"sts.amazonaws.com"}) || !reflect.DeepEqual(prints, []string{ThumbprintPlaceholder}) {
				t.Errorf("%s: %s %v %v", id, url, ids, prints)
			}
			providerARN[id] = OIDCProviderARN("aws", acct, url)
		}
	}
	if want := map[string]int{"AWS::IAM::SAMLProvider": 2, "AWS::IAM::OIDCProvider": 2, "AWS::IAM::Role": 3}; !reflect.DeepEqual(types, want) {
		t.Fatalf("resources %v, want %v", types, want)
	}
	roles := 0
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			continue
		}
		roles++
		acct := strings.TrimPrefix(r.Condition, "Account")
		var name, path string
		var dur int
		_ = json.Unmarshal(r.Properties["RoleName"], &name)
		_ = json.Unmarshal(r.Properties["Path"], &path)
		_ = json.Unmarshal(r.Properties["MaxSessionDuration"], &dur)
		var want RoleSetup
		for _, a := range s.Accounts {
			for _, x := range a.Roles {
				if a.ID == acct && x.Name == name {
					want = x
				}
			}
		}
		if want.Name == "" || path != want.Path || dur != want.MaxSessionDuration {
			t.Errorf("%s: %s %s %d in account %q", id, name, path, dur, acct)
		}
		// The trust policy: valid JSON, every principal a provider of
		// this template in the role's own account, on which it depends.
		var doc struct {
			Version   string
			Statement []struct {
				Principal map[string]string
				Action    []string
				Condition map[string]map[string]any
			}
		}
		if err := json.Unmarshal(r.Properties["AssumeRolePolicyDocument"], &doc); err != nil || doc.Version != "2012-10-17" || len(doc.Statement) != 2 {
			t.Fatalf("%s: policy %v %s", id, err, r.Properties["AssumeRolePolicyDocument"])
		}
		for _, st := range doc.Statement {
			found := false
			for _, dep := range r.DependsOn {
				found = found || providerARN[dep] == st.Principal["Federated"] && tmpl.Resources[dep].Condition == r.Condition
			}
			if !found {
				t.Errorf("%s: principal %s is no provider it depends on (%v)", id, st.Principal["Federated"], r.DependsOn)
			}
		}
		if doc.Statement[1].Condition["StringEquals"]["aws:RequestTag/WardenRole"] != name ||
			doc.Statement[1].Condition["StringEquals"]["aws:RequestTag/WardenAccount"] != acct {
			t.Errorf("%s: web identity condition %v", id, doc.Statement[1].Condition)
		}
		var got, exp any
		_ = json.Unmarshal(r.Properties["AssumeRolePolicyDocument"], &got)
		_ = json.Unmarshal([]byte(want.TrustPolicy.JSON()), &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: policy differs from the setup's", id)
		}
	}
	pr := tmpl.Metadata[CFNMetadataKey].PatternRules
	var compact bytes.Buffer
	if len(pr) == 1 {
		_ = json.Compact(&compact, pr[0].AssumeRolePolicyDocument)
	}
	if len(pr) != 1 || pr[0].Account != "111122223333" || pr[0].Rule != "team.roles" || pr[0].MaxSessionDuration != 10800 ||
		!strings.Contains(compact.String(), `"aws:RequestTag/WardenRole":"`+PatternRoleName+`"`) {
		t.Errorf("pattern rules %+v: %s", pr, compact.String())
	}
	if !json.Valid(raw) {
		t.Error("invalid JSON")
	}

	// One account: no conditions; the metadata given is put in.
	one, err := s.Only("444455556666")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ = decodeCFN(t, one, CloudFormationOptions{SAMLMetadata: "<md:EntityDescriptor/>"})
	if len(tmpl.Conditions) != 0 || len(tmpl.Parameters) != 0 || len(tmpl.Resources) != 3 {
		t.Fatalf("one account: %+v", tmpl)
	}
	for id, r := range tmpl.Resources {
		if r.Condition != "" {
			t.Errorf("%s has condition %s", id, r.Condition)
		}
		if r.Type == "AWS::IAM::SAMLProvider" && string(r.Properties["SamlMetadataDocument"]) != `"\u003cmd:EntityDescriptor/\u003e"` {
			t.Errorf("metadata %s", r.Properties["SamlMetadataDocument"])
		}
	}
	if _, err := s.Only("999988887777"); err == nil || !strings.Contains(err.Error(), "not in the catalogue") {
		t.Errorf("unknown account: %v", err)
	}
}
