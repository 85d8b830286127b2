package awsfed

import (
	"fmt"
	"net/url"
	"strings"
)

// SAMLEntityID returns the SAML entity ID of the AWS sign-in service
// provider of the partition, the value AWS expects as the Audience of a
// SAML assertion (aws-federation-rules.md item 6; AWS's SP metadata at
// https://signin.aws.amazon.com/static/saml-metadata.xml):
// "urn:amazon:webservices", "urn:amazon:webservices:govcloud",
// "urn:amazon:webservices:cn-north-1". It returns false for an unknown
// partition.
func SAMLEntityID(partition string) (string, bool) {
	switch partition {
	case "aws":
		return "urn:amazon:webservices", true
	case "aws-us-gov":
		return "urn:amazon:webservices:govcloud", true
	case "aws-cn":
		return "urn:amazon:webservices:cn-north-1", true
	}
	return "", false
}

// SigninACS returns the SAML assertion consumer service URL of AWS sign-in
// for the partition and region (items 1–2): with region "" the partition's
// global endpoint (https://signin.aws.amazon.com/saml), with a region of
// the aws partition https://<region>.signin.aws.amazon.com/saml. There is
// no "us-east-1." host (item 1): us-east-1 is the global endpoint. The
// GovCloud and China partitions have one sign-in host each, so a region
// there must be one of theirs and gives the partition's endpoint.
func SigninACS(partition, region string) (string, error) {
	p, ok := LookupPartition(partition)
	if !ok {
		return "", fmt.Errorf("awsfed: unknown partition %q", partition)
	}
	if region == "" {
		return "https://" + p.SigninHost + "/saml", nil
	}
	if err := ValidRegion(partition, region); err != nil {
		return "", err
	}
	if partition != "aws" || region == "us-east-1" {
		return "https://" + p.SigninHost + "/saml", nil
	}
	return "https://" + region + "." + p.SigninHost + "/saml", nil
}

// ValidRegion checks that region is a well-formed region name of the
// partition: lowercase letters, digits and dashes in the shape
// <area>-<place>-<n> ("eu-west-1", "ap-southeast-2"); GovCloud regions
// start with "us-gov-", China regions with "cn-", and the aws partition's
// with neither.
func ValidRegion(partition, region string) error {
	parts := strings.Split(region, "-")
	if len(region) > 32 || len(parts) < 3 {
		return fmt.Errorf("awsfed: region %q is not a region name (like eu-west-1)", region)
	}
	for i, s := range parts {
		if s == "" || !allBytes(s, func(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) }) {
			return fmt.Errorf("awsfed: region %q is not a region name (like eu-west-1)", region)
		}
		if i == len(parts)-1 && !allBytes(s, isDigit) {
			return fmt.Errorf("awsfed: region %q is not a region name (like eu-west-1)", region)
		}
	}
	gov, cn := strings.HasPrefix(region, "us-gov-"), strings.HasPrefix(region, "cn-")
	switch {
	case partition == "aws-us-gov" && !gov, partition == "aws-cn" && !cn, partition == "aws" && (gov || cn):
		return fmt.Errorf("awsfed: region %q is not in partition %s", region, partition)
	}
	return nil
}

// ConsoleURLHost reports whether host (lowercase, no port) is a host of the
// AWS Management Console of the partition: its console host
// (console.aws.amazon.com) or a regional one (<region>.console.aws.amazon.com),
// or, for the aws partition, a console of a service served from its own
// host under the same domain (e.g. "us-east-1.console.aws.amazon.com").
func ConsoleURLHost(partition, host string) bool {
	p, ok := LookupPartition(partition)
	if !ok || host == "" {
		return false
	}
	if host == p.ConsoleHost {
		return true
	}
	sub, found := strings.CutSuffix(host, "."+p.ConsoleHost)
	if !found || sub == "" || len(sub) > 63 {
		return false
	}
	// One label: a region or a service console ("s3", "eu-west-1").
	return allBytes(sub, func(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) || c == '-' }) &&
		sub[0] != '-' && sub[len(sub)-1] != '-'
}

// ValidConsoleURL checks that s is an https URL of the AWS Management
// Console of the partition (ConsoleURLHost), with no user info, no port,
// and no fragment-free tricks: it is what Warden accepts as a SAML
// RelayState or a federation Destination.
func ValidConsoleURL(partition, s string) error {
	if len(s) > 2048 {
		return fmt.Errorf("awsfed: console URL longer than 2048 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return fmt.Errorf("awsfed: console URL holds a character that must be percent-encoded")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("awsfed: console URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("awsfed: console URL must use https")
	case u.User != nil:
		return fmt.Errorf("awsfed: console URL must not carry user info")
	case u.Opaque != "":
		return fmt.Errorf("awsfed: console URL is not a hierarchical URL")
	case u.Port() != "":
		return fmt.Errorf("awsfed: console URL must not name a port")
	case !ConsoleURLHost(partition, u.Host):
		return fmt.Errorf("awsfed: %q is not an AWS console host of partition %s", u.Host, partition)
	}
	return nil
}
