package awsfed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

// STSOptions say where and how to reach AWS STS.
type STSOptions struct {
	// Partition is the role's partition ("aws" when empty): with Region
	// it picks the regional endpoint (STSEndpoint), so that GovCloud and
	// China roles reach the STS of their own partition.
	Partition string
	// Region selects the regional STS endpoint (default: the partition's
	// default region); it must be a region of Partition.
	Region string
	// Endpoint, when set, replaces the regional endpoint (a private
	// endpoint, or a test server): "https://vpce-1234.sts.eu-west-1.vpce.amazonaws.com".
	Endpoint string
	// HTTPClient carries the calls (default http.DefaultClient).
	HTTPClient *http.Client
}

// Credentials are temporary AWS credentials from STS.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	// AccountID is the account of the assumed role, when known (from the
	// AssumedRoleUser ARN).
	AccountID string
}

// DefaultRegion is the aws partition's default region (Partition.DefaultRegion
// has every partition's).
const DefaultRegion = "us-east-1"

// Target returns the region and endpoint URL that o reaches: the
// partition's default region when o names none, and the regional STS
// endpoint of the partition unless o.Endpoint replaces it. A region of
// another partition is an error.
func (o STSOptions) Target() (region, endpoint string, err error) {
	part := o.Partition
	if part == "" {
		part = "aws"
	}
	p, ok := LookupPartition(part)
	if !ok {
		return "", "", fmt.Errorf("awsfed: unknown partition %q", part)
	}
	region = o.Region
	if region == "" {
		region = p.DefaultRegion
	}
	if err := ValidRegion(part, region); err != nil {
		return "", "", err
	}
	if o.Endpoint != "" {
		return region, o.Endpoint, nil
	}
	endpoint, err = STSEndpoint(part, region)
	return region, endpoint, err
}

func stsClient(o STSOptions) (*sts.Client, error) {
	region, endpoint, err := o.Target()
	if err != nil {
		return nil, err
	}
	opts := sts.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.AnonymousCredentials{}, // unsigned calls (item 24)
		// One retry for transient network errors only; STS answers about
		// the token or the trust policy are final.
		RetryMaxAttempts: 2,
	}
	if o.HTTPClient != nil {
		opts.HTTPClient = o.HTTPClient
	}
	return sts.New(opts), nil
}

// AssumeRoleWithSAML calls STS AssumeRoleWithSAML (items 23–26) with the
// base64 SAML response samlB64, unsigned. duration 0 leaves
// DurationSeconds out (STS then uses 3600 or the assertion's
// SessionDuration); otherwise it must be 900–43200.
func AssumeRoleWithSAML(ctx context.Context, o STSOptions, roleARN, principalARN, samlB64 string, duration int) (Credentials, error) {
	if err := checkDuration(duration); err != nil {
		return Credentials{}, err
	}
	in := &sts.AssumeRoleWithSAMLInput{
		RoleArn:       aws.String(roleARN),
		PrincipalArn:  aws.String(principalARN),
		SAMLAssertion: aws.String(samlB64),
	}
	if duration > 0 {
		in.DurationSeconds = aws.Int32(int32(duration))
	}
	client, err := stsClient(o)
	if err != nil {
		return Credentials{}, err
	}
	out, err := client.AssumeRoleWithSAML(ctx, in)
	if err != nil {
		return Credentials{}, &STSError{Op: "AssumeRoleWithSAML", Err: err}
	}
	return toCredentials(out.Credentials, out.AssumedRoleUser)
}

// AssumeRoleWithWebIdentity calls STS AssumeRoleWithWebIdentity (item 38)
// with the ID token, unsigned, without ProviderId. sessionName must match
// [\w+=,.@-]{2,64} (SessionName makes one from any text).
func AssumeRoleWithWebIdentity(ctx context.Context, o STSOptions, roleARN, sessionName, token string, duration int) (Credentials, error) {
	if err := checkDuration(duration); err != nil {
		return Credentials{}, err
	}
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String(sessionName),
		WebIdentityToken: aws.String(token),
	}
	if duration > 0 {
		in.DurationSeconds = aws.Int32(int32(duration))
	}
	client, err := stsClient(o)
	if err != nil {
		return Credentials{}, err
	}
	out, err := client.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return Credentials{}, &STSError{Op: "AssumeRoleWithWebIdentity", Err: err}
	}
	return toCredentials(out.Credentials, out.AssumedRoleUser)
}

func checkDuration(d int) error {
	if d != 0 && (d < 900 || d > 43200) {
		return fmt.Errorf("awsfed: session duration %ds is outside 900–43200 seconds (15 minutes to 12 hours)", d)
	}
	return nil
}

// SessionName turns s into a valid RoleSessionName ([\w+=,.@-]{2,64},
// item 38): other characters become "-", the result is cut at 64, and
// a result shorter than 2 becomes "warden-cli".
func SessionName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 64; i++ {
		c := s[i]
		if isWord(c) || strings.IndexByte("+=,.@-", c) >= 0 {
			b = append(b, c)
		} else {
			b = append(b, '-')
		}
	}
	if len(b) < 2 {
		return "warden-cli"
	}
	return string(b)
}

func toCredentials(c *types.Credentials, u *types.AssumedRoleUser) (Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return Credentials{}, errors.New("awsfed: STS answered without credentials")
	}
	out := Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      c.Expiration.UTC(),
	}
	// arn:<partition>:sts::<account>:assumed-role/<role>/<session> (item 26)
	if u != nil && u.Arn != nil {
		if f := strings.SplitN(*u.Arn, ":", 6); len(f) == 6 && ValidAccountID(f[4]) == nil {
			out.AccountID = f[4]
		}
	}
	return out, nil
}

// STSError is an error answered by STS (or met reaching it).
type STSError struct {
	Op  string
	Err error
}

func (e *STSError) Error() string { return "sts " + e.Op + ": " + e.Err.Error() }
func (e *STSError) Unwrap() error { return e.Err }

// STSErrorCode returns the AWS error code of err ("AccessDenied",
// "ExpiredTokenException", …) or "" when err is not an STS answer.
func STSErrorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// Advice turns an STS error into one sentence telling the user what to
// check (items 25, 33, 38, and docs/aws-setup.md "Troubleshooting"). It
// returns "" for errors it has no advice for.
func Advice(err error) string {
	if err == nil {
		return ""
	}
	msg := ""
	var api smithy.APIError
	if errors.As(err, &api) {
		msg = api.ErrorMessage()
	}
	var (
		rejected *types.IDPRejectedClaimException
		invalid  *types.InvalidIdentityTokenException
		expired  *types.ExpiredTokenException
		region   *types.RegionDisabledException
		comm     *types.IDPCommunicationErrorException
		policy   *types.MalformedPolicyDocumentException
		packed   *types.PackedPolicyTooLargeException
	)
	switch {
	case errors.As(err, &rejected), STSErrorCode(err) == "AccessDenied":
		return "the role's trust policy does not trust this IdP or this audience (or lacks sts:TagSession / sts:SetSourceIdentity): run `wardend aws setup` and compare the role's trust policy with docs/aws-setup.md"
	case errors.As(err, &invalid):
		if strings.Contains(msg, "No OpenIDConnect provider") {
			return "the account has no IAM OIDC provider whose URL equals Warden's issuer exactly (https, no port, same path): create it as `wardend aws setup` shows, or use --via saml"
		}
		if strings.Contains(strings.ToLower(msg), "audience") {
			return "the token's audience is not in the IAM OIDC provider's client ID list: add the STS audience (sts.amazonaws.com by default) to it"
		}
		return "STS refused the token as invalid: check the account's IAM identity provider (SAML metadata or OIDC provider URL) against `wardend aws setup`"
	case errors.As(err, &expired):
		return "STS says the token has expired: Warden's tokens live 5 minutes, so check that this machine's clock (and the IdP's) is right (clock skew), then try again"
	case STSErrorCode(err) == "ValidationError" && strings.Contains(strings.ToLower(msg), "duration"):
		return "the session duration asked for is longer than the role's MaxSessionDuration: ask for less with --duration, or raise MaxSessionDuration on the role"
	case errors.As(err, &region):
		return "STS is not enabled in this region for the account: use --region with an enabled region, or activate STS for the region in IAM account settings"
	case errors.As(err, &comm):
		return "AWS could not fetch Warden's OIDC discovery document or JWKS over https: check that the issuer is reachable from the internet with a certificate AWS trusts, or use --via saml"
	case errors.As(err, &policy), errors.As(err, &packed):
		return "STS refused the session policy or session tags as too large or malformed: check Warden's tag rules"
	}
	return ""
}
