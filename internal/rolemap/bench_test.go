package rolemap

import (
	"fmt"
	"testing"

	"github.com/wardenidp/warden/internal/identity"
)

// benchRuleSet has 100 accounts, 10,000 grant rules (half by CN, half by
// DN, two roles each) and 50 pattern rules with distinct prefixes.
func benchRuleSet() RuleSet {
	var rs RuleSet
	for a := 0; a < 100; a++ {
		rs.Accounts = append(rs.Accounts, Account{ID: fmt.Sprintf("1000000%05d", a), Name: fmt.Sprintf("account-%d", a), SAMLProvider: "warden"})
	}
	for i := 0; i < 10_000; i++ {
		acct := rs.Accounts[i%100].ID
		group := fmt.Sprintf("grp-%05d", i)
		if i%2 == 1 {
			group = fmt.Sprintf("cn=grp-%05d,ou=groups,dc=example,dc=org", i)
		}
		rs.Grants = append(rs.Grants, GrantRule{ID: fmt.Sprintf("g-%05d", i), Group: group, Roles: []RoleRef{
			{ARN: fmt.Sprintf("arn:aws:iam::%s:role/Role%d", acct, i%37), MaxSessionSeconds: 3600},
			{ARN: fmt.Sprintf("arn:aws:iam::%s:role/team/ReadOnly", acct)},
		}})
	}
	for p := 0; p < 50; p++ {
		rs.Patterns = append(rs.Patterns, PatternRule{
			ID:      fmt.Sprintf("p-%02d", p),
			Pattern: fmt.Sprintf(`^aws%02d-(?P<account>\d{12})-(?P<role>[\w+=,.@-]+)$`, p),
			RoleARN: "arn:aws:iam::${account}:role/${role}",
		})
	}
	return rs
}

// benchInput: 200 groups; 100 match grant rules (50 by CN, 50 by DN), 150
// of them nested, 10 match pattern rules, 90 match nothing.
func benchInput() Input {
	in := Input{Username: "bob", Email: "bob@example.org", Attributes: map[string][]string{"department": {"Engineering"}}}
	for i := 0; i < 200; i++ {
		var g identity.Group
		switch {
		case i < 100:
			n := i * 97 % 10_000
			g = identity.Group{DN: fmt.Sprintf("CN=grp-%05d,OU=Groups,DC=example,DC=org", n), Name: fmt.Sprintf("grp-%05d", n)}
		case i < 110:
			name := fmt.Sprintf("aws%02d-10000000%04d-Deploy", i%50, i%100)
			g = identity.Group{DN: "cn=" + name + ",ou=groups,dc=example,dc=org", Name: name}
		default:
			name := fmt.Sprintf("Some Unrelated Group %d", i)
			g = identity.Group{DN: "cn=" + name + ",ou=groups,dc=example,dc=org", Name: name}
		}
		g.Direct = i%4 == 0
		in.Groups = append(in.Groups, g)
	}
	return in
}

func BenchmarkEvaluate(b *testing.B) {
	rs := benchRuleSet()
	rs.Tags = testRuleSet().Tags
	e := mustCompile(b, rs)
	in := benchInput()
	r := e.Evaluate(in)
	if len(r.Grants) < 100 || len(r.Dropped) != 0 {
		b.Fatalf("setup: %d grants, dropped %v", len(r.Grants), r.Dropped)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(in)
	}
}

func BenchmarkCompile(b *testing.B) {
	rs := benchRuleSet()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateWorstPatterns: the same, but the 50 patterns are
// case-insensitive, so none has a literal prefix and every one runs on
// every one of the 200 group names (the prefilter cannot help).
func BenchmarkEvaluateWorstPatterns(b *testing.B) {
	rs := benchRuleSet()
	for i := range rs.Patterns {
		rs.Patterns[i].Pattern = "(?i)" + rs.Patterns[i].Pattern
	}
	e := mustCompile(b, rs)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(in)
	}
}
