package awsfed

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfBlock is a block of the parsed Terraform file.
type tfBlock struct {
	typ    string
	labels []string
	body   *hclsyntax.Body
}

func parseTerraform(t *testing.T, src []byte) []tfBlock {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, "warden.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("HCL does not parse: %v\n%s", diags, src)
	}
	var out []tfBlock
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		out = append(out, tfBlock{b.Type, b.Labels, b.Body})
	}
	return out
}

// tfEval evaluates attribute name of b with the providers' ARNs as
// resource attributes, each.key/each.value, and jsonencode.
func tfEval(t *testing.T, b tfBlock, name string, vars map[string]cty.Value) cty.Value {
	t.Helper()
	attr := b.body.Attributes[name]
	if attr == nil {
		t.Fatalf("%v: no %s", b.labels, name)
	}
	v, diags := attr.Expr.Value(&hcl.EvalContext{Variables: vars, Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}})
	if diags.HasErrors() {
		t.Fatalf("%v %s: %v", b.labels, name, diags)
	}
	return v
}

// TestTerraform parses the Terraform output with HCL and evaluates each
// role's trust policy: it is the setup's policy, with the provider ARNs
// coming from the provider resources of its own account; every resource
// uses its account's provider, which may touch only that account.
func TestTerraform(t *testing.T) {
	s := scriptFixture(t, "9e99a48a9960b14926bb7f3b02e22da2b0ab7280")
	s.Notes = []string{"a note\nwith a second line and ${x}"}
	var out bytes.Buffer
	if err := s.WriteTerraform(&out); err != nil {
		t.Fatal(err)
	}
	blocks := parseTerraform(t, out.Bytes())
	// The resource attributes that trust policies refer to, as Terraform
	// would know them after creating the providers.
	res := map[string]map[string]cty.Value{"aws_iam_saml_provider": {}, "aws_iam_openid_connect_provider": {}}
	providers := map[string]string{} // alias → account
	for _, b := range blocks {
		switch {
		case b.typ == "provider" && b.labels[0] == "aws":
			alias := tfEval(t, b, "alias", nil).AsString()
			ids := tfEval(t, b, "allowed_account_ids", nil).AsValueSlice()
			if len(ids) != 1 || alias != "account_"+ids[0].AsString() || tfEval(t, b, "region", nil).AsString() != "us-east-1" {
				t.Errorf("provider %s %v", alias, ids)
			}
			providers[alias] = ids[0].AsString()
		case b.typ == "resource" && (b.labels[0] == "aws_iam_saml_provider" || b.labels[0] == "aws_iam_openid_connect_provider"):
			acct := strings.TrimPrefix(b.labels[1], "account_")
			arn := OIDCProviderARN("aws", acct, s.Issuer)
			if b.labels[0] == "aws_iam_saml_provider" {
				arn = "arn:aws:iam::" + acct + ":saml-provider/" + tfEval(t, b, "name", nil).AsString()
				if e := string(b.body.Attributes["saml_metadata_document"].SrcRange.SliceBytes(out.Bytes())); !strings.Contains(e, `file("${path.module}/warden-metadata.xml")`) {
					t.Errorf("metadata: %s", e)
				}
			} else {
				if tfEval(t, b, "url", nil).AsString() != s.Issuer ||
					!tfEval(t, b, "client_id_list", nil).RawEquals(cty.TupleVal([]cty.Value{cty.StringVal("sts.amazonaws.com")})) ||
					!tfEval(t, b, "thumbprint_list", nil).RawEquals(cty.TupleVal([]cty.Value{cty.StringVal("9e99a48a9960b14926bb7f3b02e22da2b0ab7280")})) {
					t.Errorf("OIDC provider %v", b.body.Attributes)
				}
			}
			res[b.labels[0]][b.labels[1]] = cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(arn)})
		}
	}
	vars := map[string]cty.Value{}
	for k, v := range res {
		vars[k] = cty.ObjectVal(v)
	}
	want := map[string]PolicyDocument{} // role name → trust policy
	wantDur := map[string]int{}
	for _, a := range s.Accounts {
		for _, r := range a.Roles {
			want[a.ID+" "+r.Name], wantDur[a.ID+" "+r.Name] = r.TrustPolicy, r.MaxSessionDuration
		}
	}
	seen, patterns := 0, 0
	for _, b := range blocks {
		if b.typ != "resource" || b.labels[0] != "aws_iam_role" {
			continue
		}
		// provider = aws.account_<id>: a traversal, not a string.
		trav, diags := hcl.AbsTraversalForExpr(b.body.Attributes["provider"].Expr)
		if diags.HasErrors() || len(trav) != 2 || trav.RootName() != "aws" {
			t.Fatalf("%v: provider %v", b.labels, diags)
		}
		acct := providers[trav[1].(hcl.TraverseAttr).Name]
		if acct == "" {
			t.Fatalf("%v: unknown provider", b.labels)
		}
		v := vars
		name := ""
		if _, ok := b.body.Attributes["for_each"]; ok {
			patterns++
			name = "Team1"
			v = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(name), "value": cty.StringVal("/team/")})}
			for k, x := range vars {
				v[k] = x
			}
			p := s.Accounts[0].Patterns[0]
			policy, _ := json.Marshal(p.TrustPolicy)
			var doc PolicyDocument
			_ = json.Unmarshal([]byte(strings.ReplaceAll(string(policy), `"`+PatternRoleName+`"`, `"Team1"`)), &doc)
			want[acct+" Team1"], wantDur[acct+" Team1"] = doc, p.MaxSessionDuration
			if tfEval(t, b, "path", v).AsString() != "/team/" {
				t.Errorf("pattern path")
			}
		} else {
			name = tfEval(t, b, "name", nil).AsString()
		}
		key := acct + " " + name
		w, ok := want[key]
		if !ok {
			t.Fatalf("unexpected role %s", key)
		}
		seen++
		policy := tfEval(t, b, "assume_role_policy", v).AsString()
		var got, exp any
		_ = json.Unmarshal([]byte(policy), &got)
		_ = json.Unmarshal([]byte(w.JSON()), &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: policy\n%s\nwant\n%s", key, policy, w.JSON())
		}
		if d, _ := tfEval(t, b, "max_session_duration", v).AsBigFloat().Int64(); int(d) != wantDur[key] {
			t.Errorf("%s: max_session_duration %d, want %d", key, d, wantDur[key])
		}
	}
	if seen != 4 || patterns != 1 || len(providers) != 2 {
		t.Errorf("%d roles (%d of patterns), %d providers:\n%s", seen, patterns, len(providers), out.String())
	}
	// The pattern's variable is a map that defaults to empty.
	for _, b := range blocks {
		if b.typ == "variable" {
			if b.labels[0] != "pattern_111122223333_team_roles" || !tfEval(t, b, "default", nil).RawEquals(cty.EmptyObjectVal) {
				t.Errorf("variable %v", b.labels)
			}
		}
	}
}

// TestTerraformEscapes: names and values with HCL's template characters
// stay literal.
func TestTerraformEscapes(t *testing.T) {
	s, err := BuildSetup([]SetupAccount{{ID: "111122223333", Name: "a\"b", SAMLProvider: "W", Roles: []SetupRole{{ARN: "arn:aws:iam::111122223333:role/a.b@c"}},
		Patterns: []SetupPattern{{RuleID: "p%{x}", RoleARN: "arn:aws:iam::111122223333:role/${r}"}}}},
		SetupOptions{Issuer: "https://sso.example.com/${x}", STSAudience: "aud%{if}"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.WriteTerraform(&out); err != nil {
		t.Fatal(err)
	}
	for _, b := range parseTerraform(t, out.Bytes()) {
		if b.typ == "resource" && b.labels[0] == "aws_iam_openid_connect_provider" {
			if got := tfEval(t, b, "url", nil).AsString(); got != "https://sso.example.com/${x}" {
				t.Errorf("url %q", got)
			}
		}
		if b.typ == "resource" && b.labels[0] == "aws_iam_role" && b.body.Attributes["for_each"] == nil {
			if got := tfEval(t, b, "name", nil).AsString(); got != "a.b@c" || b.labels[1] != "role_111122223333_a_b_c" {
				t.Errorf("role %v %q", b.labels, got)
			}
		}
	}
}
