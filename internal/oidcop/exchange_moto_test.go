package oidcop

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"testing"

	"github.com/wardenidp/warden/internal/testenv"
)

// xAWS runs Debian's awscli (/usr/bin/aws, v2) against moto, unsigned.
func xAWS(t *testing.T, moto string, args ...string) map[string]any {
	t.Helper()
	aws := testenv.Binary(t, "/usr/bin/aws")
	home := t.TempDir()
	cmd := exec.Command(aws, append([]string{"sts", "--endpoint-url", moto, "--no-sign-request", "--region", "us-east-1", "--output", "json"}, args...)...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_CONFIG_FILE=" + home + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + home + "/credentials", "AWS_PAGER="}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws %v: %v\n%s", args[0], err, out)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return res
}

func xCredentials(t *testing.T, res map[string]any) {
	t.Helper()
	c, _ := res["Credentials"].(map[string]any)
	if c == nil || c["AccessKeyId"] == "" || c["SecretAccessKey"] == "" || c["SessionToken"] == "" || c["Expiration"] == "" {
		t.Fatalf("no credentials: %v", res)
	}
	t.Logf("moto gave %v for %v", c["AccessKeyId"], res["AssumedRoleUser"])
}

// TestExchangeAWSCLI: both exchanged tokens go through the AWS CLI's STS
// calls and yield credentials. moto checks nothing of either token
// (aws-federation-rules.md section F): plumbing only.
func TestExchangeAWSCLI(t *testing.T) {
	moto := testenv.Moto(t)
	f := newXFixture(t)
	r := f.post(t, xForm("tok-bob", TokenTypeIDToken, xProdRO))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	xCredentials(t, xAWS(t, moto, "assume-role-with-web-identity", "--role-arn", xProdRO, "--role-session-name", "bob",
		"--web-identity-token", r.ok.AccessToken))
	r = f.post(t, xForm("tok-bob", TokenTypeSAML2, xProdRO))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	xCredentials(t, xAWS(t, moto, "assume-role-with-saml", "--role-arn", xProdRO,
		"--principal-arn", "arn:aws:iam::111122223333:saml-provider/warden", "--saml-assertion", r.ok.AccessToken))
}
