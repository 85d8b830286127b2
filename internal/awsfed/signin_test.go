package awsfed

import "testing"

func TestSAMLEntityID(t *testing.T) {
	for id, want := range map[string]string{
		"aws": "urn:amazon:webservices", "aws-us-gov": "urn:amazon:webservices:govcloud",
		"aws-cn": "urn:amazon:webservices:cn-north-1",
	} {
		if got, ok := SAMLEntityID(id); !ok || got != want {
			t.Errorf("SAMLEntityID(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
	if _, ok := SAMLEntityID("aws-iso"); ok {
		t.Error("unknown partition accepted")
	}
}

// Items 1–2: the ACS URL per partition and region; never a "us-east-1." host.
func TestSigninACS(t *testing.T) {
	for _, c := range []struct{ partition, region, want string }{
		{"aws", "", "https://signin.aws.amazon.com/saml"},
		{"aws", "us-east-1", "https://signin.aws.amazon.com/saml"},
		{"aws", "us-west-2", "https://us-west-2.signin.aws.amazon.com/saml"},
		{"aws", "eu-central-1", "https://eu-central-1.signin.aws.amazon.com/saml"},
		{"aws-us-gov", "", "https://signin.amazonaws-us-gov.com/saml"},
		{"aws-us-gov", "us-gov-west-1", "https://signin.amazonaws-us-gov.com/saml"},
		{"aws-cn", "", "https://signin.amazonaws.cn/saml"},
		{"aws-cn", "cn-northwest-1", "https://signin.amazonaws.cn/saml"},
	} {
		got, err := SigninACS(c.partition, c.region)
		if err != nil || got != c.want {
			t.Errorf("SigninACS(%q, %q) = %q, %v; want %q", c.partition, c.region, got, err, c.want)
		}
	}
	for _, c := range []struct{ partition, region string }{
		{"aws", "us-gov-west-1"}, {"aws", "cn-north-1"}, {"aws-us-gov", "us-west-2"},
		{"aws-cn", "eu-west-1"}, {"aws", "US-WEST-2"}, {"aws", "evil.com/x"}, {"aws", "us-west"},
		{"aws", "us-west-x"}, {"aws", "us--1"}, {"nope", ""},
	} {
		if got, err := SigninACS(c.partition, c.region); err == nil {
			t.Errorf("SigninACS(%q, %q) = %q, want an error", c.partition, c.region, got)
		}
	}
}

func TestValidConsoleURL(t *testing.T) {
	good := map[string][]string{
		"aws": {"https://console.aws.amazon.com/", "https://console.aws.amazon.com",
			"https://us-west-2.console.aws.amazon.com/cloudwatch/home?region=us-west-2#dashboards",
			"https://s3.console.aws.amazon.com/s3/buckets"},
		"aws-us-gov": {"https://console.amazonaws-us-gov.com/ec2/home"},
		"aws-cn":     {"https://console.amazonaws.cn/", "https://cn-north-1.console.amazonaws.cn/"},
	}
	for p, list := range good {
		for _, u := range list {
			if err := ValidConsoleURL(p, u); err != nil {
				t.Errorf("ValidConsoleURL(%q, %q) = %v", p, u, err)
			}
		}
	}
	bad := []struct{ p, u string }{
		{"aws", "http://console.aws.amazon.com/"},
		{"aws", "https://evil.com/"},
		{"aws", "https://console.aws.amazon.com.evil.com/"},
		{"aws", "https://evilconsole.aws.amazon.com/"},
		{"aws", "https://a.b.console.aws.amazon.com/"},
		{"aws", "https://user@console.aws.amazon.com/"},
		{"aws", "https://console.aws.amazon.com:8443/"},
		{"aws", "https://console.amazonaws.cn/"},
		{"aws-cn", "https://console.aws.amazon.com/"},
		{"aws", "javascript:alert(1)"},
		{"aws", "//console.aws.amazon.com/"},
		{"aws", "https://console.aws.amazon.com/\\x"},
		{"aws", "https://console.aws.amazon.com/ x"},
		{"aws", "https://-x.console.aws.amazon.com/"},
		{"aws", ""},
		{"aws", "https://console.aws.amazon.com/" + string(make([]byte, 2100))},
		{"nope", "https://console.aws.amazon.com/"},
	}
	for _, c := range bad {
		if err := ValidConsoleURL(c.p, c.u); err == nil {
			t.Errorf("ValidConsoleURL(%q, %q) accepted", c.p, c.u)
		}
	}
}
