package samlidp

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/testenv"
)

// TestAWSCLIPlumbing sends the single-role response through Debian's
// awscli (/usr/bin/aws) to moto's STS AssumeRoleWithSAML and gets
// credentials. moto validates nothing (aws-federation-rules.md section F):
// this proves only that the response flows through the AWS tools.
func TestAWSCLIPlumbing(t *testing.T) {
	aws := testenv.Binary(t, "aws")
	moto := testenv.Moto(t)
	f := newFixture(t)
	f.clock.Set(time.Now())
	grant := grantOf(t, f.rules, "bob", "arn:aws:iam::111122223333:role/ReadOnly")
	post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), grant, "")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(aws, "sts", "assume-role-with-saml", "--endpoint-url", moto, "--no-sign-request",
		"--region", "us-east-1", "--output", "json",
		"--role-arn", grant.RoleARN, "--principal-arn", grant.ProviderARN, "--saml-assertion", post.SAMLResponse)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x",
		"AWS_CONFIG_FILE=" + home + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials", "AWS_PAGER="}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws sts assume-role-with-saml: %v\n%s", err, out)
	}
	var res struct {
		Credentials     struct{ AccessKeyId, SecretAccessKey, SessionToken, Expiration string }
		AssumedRoleUser struct{ Arn string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Credentials.AccessKeyId == "" || res.Credentials.SecretAccessKey == "" || res.Credentials.SessionToken == "" {
		t.Fatalf("no credentials: %s", out)
	}
	t.Logf("moto gave %s for %s, expiring %s", res.Credentials.AccessKeyId, res.AssumedRoleUser.Arn, res.Credentials.Expiration)
}
