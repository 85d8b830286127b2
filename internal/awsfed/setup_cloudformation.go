package awsfed

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// CloudFormationOptions change the CloudFormation template.
type CloudFormationOptions struct {
	// SAMLMetadata, when set, is Warden's SAML metadata document, put
	// into the template. Otherwise the template has a parameter for it
	// (CloudFormation parameters hold at most 4,096 bytes).
	SAMLMetadata string
}

// Names of the template's parameter and metadata key.
const (
	CFNMetadataParameter = "WardenSAMLMetadata"
	CFNMetadataKey       = "Warden"
)

// WriteCloudFormation writes the setup as one CloudFormation template
// (JSON): the SAML provider, the OIDC provider and every role with its
// trust policy and MaxSessionDuration, per account. With several
// accounts each resource has the Condition that the stack's account
// (AWS::AccountId) is its own, so that the same template, deployed to
// each account (one stack each, or a StackSet), creates only that
// account's resources. The roles of pattern rules, which cannot be
// listed, are described in the template's Metadata (Warden.PatternRules),
// with their trust policy and MaxSessionDuration: copy a role resource
// for each.
func (s Setup) WriteCloudFormation(w io.Writer, o CloudFormationOptions) error {
	desc := "Warden federation: SAML and OIDC providers and role trust policies (wardend aws setup)"
	ids := make([]string, len(s.Accounts))
	for i, a := range s.Accounts {
		ids[i] = a.ID
	}
	if len(ids) > 0 {
		desc += ", accounts " + strings.Join(ids, ", ")
	}
	t := map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Description": desc}
	res := map[string]any{}
	meta := map[string]any{}
	if len(s.Notes) > 0 {
		meta["Notes"] = s.Notes
	}
	if s.Issuer != "" && s.ThumbprintIsPlaceholder {
		meta["ThumbprintNote"] = "ThumbprintList holds a placeholder: AWS ignores it when the issuer's certificate comes from a CA it trusts; " +
			"otherwise put in the SHA-1 of the top certificate of the issuer's chain (see docs/aws-setup.md)"
	}
	var samlDoc any = o.SAMLMetadata
	if o.SAMLMetadata == "" && anySAML(s) {
		samlDoc = map[string]string{"Ref": CFNMetadataParameter}
		t["Parameters"] = map[string]any{CFNMetadataParameter: map[string]string{
			"Type":        "String",
			"Description": "Warden's SAML metadata document (" + s.MetadataURL + ")",
		}}
	}
	conds := map[string]any{}
	var patterns []any
	used := map[string]bool{}
	for _, a := range s.Accounts {
		cond := ""
		if len(s.Accounts) > 1 {
			cond = "Account" + a.ID
			conds[cond] = map[string]any{"Fn::Equals": []any{map[string]string{"Ref": "AWS::AccountId"}, a.ID}}
		}
		resource := func(typ string, props map[string]any, deps []string) map[string]any {
			r := map[string]any{"Type": typ, "Properties": props}
			if cond != "" {
				r["Condition"] = cond
			}
			if len(deps) > 0 {
				r["DependsOn"] = deps
			}
			return r
		}
		var deps []string
		if a.SAMLProviderARN != "" {
			id := uniqueLogicalID(used, "WardenSAMLProvider"+a.ID)
			res[id] = resource("AWS::IAM::SAMLProvider", map[string]any{"Name": a.SAMLProvider, "SamlMetadataDocument": samlDoc}, nil)
			deps = append(deps, id)
		}
		if a.OIDCProviderARN != "" {
			id := uniqueLogicalID(used, "WardenOIDCProvider"+a.ID)
			res[id] = resource("AWS::IAM::OIDCProvider", map[string]any{"Url": s.Issuer,
				"ClientIdList": []string{s.STSAudience}, "ThumbprintList": []string{s.OIDCThumbprint}}, nil)
			deps = append(deps, id)
		}
		for _, r := range a.Roles {
			id := uniqueLogicalID(used, "Role"+a.ID+alnum(r.Path+r.Name))
			res[id] = resource("AWS::IAM::Role", map[string]any{"RoleName": r.Name, "Path": r.Path,
				"MaxSessionDuration": r.MaxSessionDuration, "AssumeRolePolicyDocument": r.TrustPolicy,
				"Description": "Warden: " + r.ARN}, deps)
		}
		for _, p := range a.Patterns {
			patterns = append(patterns, map[string]any{
				"Account": a.ID, "Rule": p.RuleID, "RoleArn": p.RoleARN, "MaxSessionDuration": p.MaxSessionDuration,
				"Path": p.Path, "AssumeRolePolicyDocument": p.TrustPolicy,
				"Note": fmt.Sprintf("These roles cannot be listed: add an AWS::IAM::Role for each, with this trust policy (%s replaced by the role name) and MaxSessionDuration", PatternRoleName),
			})
		}
	}
	if len(patterns) > 0 {
		meta["PatternRules"] = patterns
	}
	if len(meta) > 0 {
		t["Metadata"] = map[string]any{CFNMetadataKey: meta}
	}
	if len(conds) > 0 {
		t["Conditions"] = conds
	}
	t["Resources"] = res
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("awsfed: cloudformation: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// alnum keeps the letters and digits of s (CloudFormation logical IDs
// have nothing else).
func alnum(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (isDigit(byte(r)) || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, s)
}

// uniqueLogicalID returns id, or id with a number added when used has it.
func uniqueLogicalID(used map[string]bool, id string) string {
	out := id
	for i := 2; used[out]; i++ {
		out = fmt.Sprintf("%s%d", id, i)
	}
	used[out] = true
	return out
}
