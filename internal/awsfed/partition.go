// Package awsfed holds the AWS knowledge shared by the server and the CLI:
// partitions and their endpoints, the grammar of IAM role and SAML provider
// ARNs, the limits AWS STS puts on session tags and source identity, trust
// policies and setup commands, and the CLI's calls to AWS: STS
// (AssumeRoleWithSAML, AssumeRoleWithWebIdentity), the console federation
// endpoint, credential_process output and ~/.aws/config profiles.
//
// The knowledge (partition.go, arn.go, tags, trust.go, signin.go) is pure:
// no I/O, no package state that changes. The calls (sts.go, console.go) and
// the profile editor (awsconfig.go) do I/O only through what the caller
// passes in. The rules followed are those of aws-federation-rules.md
// (sections A–E), cited item by item where they apply.
package awsfed

import (
	"errors"
	"fmt"
)

// Partition describes one AWS partition: a separate set of regions with its
// own ARN prefix, sign-in and console hosts.
type Partition struct {
	// ID is the partition as it appears in ARNs: "aws", "aws-us-gov", "aws-cn".
	ID string
	// SAMLAudience is the audience (and the ACS URL) that AWS sign-in
	// expects in a SAML response for this partition.
	SAMLAudience string
	// SigninHost is the host of the AWS sign-in endpoint (SAML ACS and the
	// federation endpoint for console sign-in URLs).
	SigninHost string
	// ConsoleHost is the host of the AWS Management Console.
	ConsoleHost string
	// DNSSuffix is the domain of the partition's regional service
	// endpoints: "amazonaws.com", "amazonaws.com.cn".
	DNSSuffix string
	// DefaultRegion is the region used for a role of the partition when
	// none is configured: us-east-1, us-gov-west-1, cn-north-1.
	DefaultRegion string
}

// LookupPartition returns the partition with the given ID ("aws",
// "aws-us-gov" or "aws-cn"; exact, case-sensitive as in ARNs).
func LookupPartition(id string) (Partition, bool) {
	switch id {
	case "aws":
		return Partition{ID: "aws", SAMLAudience: "https://signin.aws.amazon.com/saml",
			SigninHost: "signin.aws.amazon.com", ConsoleHost: "console.aws.amazon.com",
			DNSSuffix: "amazonaws.com", DefaultRegion: "us-east-1"}, true
	case "aws-us-gov":
		return Partition{ID: "aws-us-gov", SAMLAudience: "https://signin.amazonaws-us-gov.com/saml",
			SigninHost: "signin.amazonaws-us-gov.com", ConsoleHost: "console.amazonaws-us-gov.com",
			DNSSuffix: "amazonaws.com", DefaultRegion: "us-gov-west-1"}, true
	case "aws-cn":
		return Partition{ID: "aws-cn", SAMLAudience: "https://signin.amazonaws.cn/saml",
			SigninHost: "signin.amazonaws.cn", ConsoleHost: "console.amazonaws.cn",
			DNSSuffix: "amazonaws.com.cn", DefaultRegion: "cn-north-1"}, true
	}
	return Partition{}, false
}

// PartitionIDs returns the IDs of the known partitions, in a fixed order.
func PartitionIDs() []string { return []string{"aws", "aws-us-gov", "aws-cn"} }

// PartitionOfRegion returns the partition a well-formed region name
// belongs to by its prefix: "us-gov-" is aws-us-gov, "cn-" aws-cn, any
// other aws. It does not check that the region exists.
func PartitionOfRegion(region string) string {
	switch {
	case len(region) > 7 && region[:7] == "us-gov-":
		return "aws-us-gov"
	case len(region) > 3 && region[:3] == "cn-":
		return "aws-cn"
	}
	return "aws"
}

// STSEndpoint returns the regional STS endpoint of the partition and
// region: https://sts.<region>.<DNS suffix> ("https://sts.us-gov-west-1.amazonaws.com",
// "https://sts.cn-north-1.amazonaws.com.cn"). An empty region is the
// partition's default region; a region of another partition is an error
// (ValidRegion). The global endpoint sts.amazonaws.com is never used:
// AWS recommends the regional ones, and they exist in every partition.
func STSEndpoint(partition, region string) (string, error) {
	p, ok := LookupPartition(partition)
	if !ok {
		return "", fmt.Errorf("awsfed: unknown partition %q", partition)
	}
	if region == "" {
		region = p.DefaultRegion
	}
	if err := ValidRegion(partition, region); err != nil {
		return "", err
	}
	return "https://sts." + region + "." + p.DNSSuffix, nil
}

// ErrOtherPartition: a role is in an AWS partition this Warden does not
// sign in to: the portal refuses such a console link or access keys with
// it, samlidp and oidcop such a role-scoped token.
var ErrOtherPartition = errors.New("role is in another AWS partition")
