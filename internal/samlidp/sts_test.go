package samlidp

import (
	"context"
	"errors"
	"testing"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
)

// TestSTSResponse: the token exchange's response passes the same rule
// checks as the portal's (items 1–17, 20), uses the Result it is given,
// and expires with the assertion.
func TestSTSResponse(t *testing.T) {
	for _, tc := range []awsCase{
		{name: "global", partition: "aws", user: "bob", role: "arn:aws:iam::111122223333:role/ReadOnly",
			wantACS: "https://signin.aws.amazon.com/saml", wantEntity: "urn:amazon:webservices", wantSeconds: 3600},
		{name: "regional_signed_response", partition: "aws", region: "eu-west-1", signResponse: true, user: "alice",
			role: "arn:aws:iam::444455556666:role/AdministratorAccess", wantACS: "https://eu-west-1.signin.aws.amazon.com/saml",
			wantEntity: "urn:amazon:webservices", wantSeconds: 14400},
		{name: "govcloud", partition: "aws-us-gov", user: "alice", role: "arn:aws-us-gov:iam::777788889999:role/AdministratorAccess",
			wantACS: "https://signin.amazonaws-us-gov.com/saml", wantEntity: "urn:amazon:webservices:govcloud", wantSeconds: 3600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config, _ *Deps) {
				c.AWS = AWSConfig{Partition: tc.partition, Region: tc.region, SignResponse: tc.signResponse}
			})
			user := testUsers[tc.user]
			res := f.rules.Load().Evaluate(rolemap.InputFromUser(user))
			a, err := f.idp.STSResponse(context.Background(), user, f.password(), grantOf(t, f.rules, tc.user, tc.role), res)
			if err != nil {
				t.Fatalf("STSResponse: %v", err)
			}
			if a.ACS != tc.wantACS || a.ID == "" || !a.Expires.Equal(fixedTime.Add(DefaultAssertionLifetime)) {
				t.Errorf("ACS %s, ID %q, expires %v", a.ACS, a.ID, a.Expires)
			}
			checkAWSResponse(t, f, tc, Post{URL: a.ACS, SAMLResponse: a.Response})
			if !f.audit.has("saml.response success " + tc.role) {
				t.Errorf("not audited: %v", f.audit.events)
			}
		})
	}
}

// TestSTSResponseUsesResult: tags come from the Result passed in, not
// from a second evaluation.
func TestSTSResponseUsesResult(t *testing.T) {
	f := newFixture(t)
	user := testUsers["bob"]
	g := grantOf(t, f.rules, "bob", "arn:aws:iam::111122223333:role/ReadOnly")
	res := rolemap.Result{Grants: []rolemap.Grant{g}, Tags: []rolemap.Tag{{Key: "team", Value: "blue"}}}
	a, err := f.idp.STSResponse(context.Background(), user, f.password(), g, res)
	if err != nil {
		t.Fatal(err)
	}
	attrs := attributes(t, parseResponse(t, a.Response).asr)
	if v := attrs[AttrPrincipalTag+"team"]; len(v) != 1 || v[0] != "blue" || attrs[AttrPrincipalTag+"email"] != nil || attrs[AttrSourceIdentity] != nil {
		t.Fatalf("attributes %v", attrs)
	}
}

func TestSTSResponseRefuses(t *testing.T) {
	f := newFixture(t)
	user := testUsers["alice"]
	res := f.rules.Load().Evaluate(rolemap.InputFromUser(user))
	gov := grantOf(t, f.rules, "alice", "arn:aws-us-gov:iam::777788889999:role/AdministratorAccess")
	if _, err := f.idp.STSResponse(context.Background(), user, f.password(), gov, res); !errors.Is(err, awsfed.ErrOtherPartition) {
		t.Errorf("other partition: %v", err)
	}
	off := false
	f = newFixture(t, func(c *Config, _ *Deps) { c.AWS.Enabled = &off })
	if _, err := f.idp.STSResponse(context.Background(), user, f.password(), gov, res); !errors.Is(err, ErrAWSDisabled) {
		t.Errorf("disabled: %v", err)
	}
}
