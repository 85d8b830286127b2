package samlidp

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// STSAssertion is a signed SAML Response made for STS AssumeRoleWithSAML.
type STSAssertion struct {
	// Response is the base64 Response (the SAMLAssertion parameter of
	// AssumeRoleWithSAML, at most 100,000 characters, item 20).
	Response string
	// ID is the Assertion's ID (audited).
	ID string
	// Expires is the NotOnOrAfter of the Conditions and of the
	// SubjectConfirmationData; STS also refuses it 5 minutes after
	// issuance (item 18).
	Expires time.Time
	// ACS is the Recipient and Destination: the sign-in ACS of the
	// configured partition and region (items 1–5), whose URL is SAML:aud
	// in the role's trust policy.
	ACS string
}

// STSResponse makes the response of the CLI's token exchange (RFC 8693,
// requested type urn:ietf:params:oauth:token-type:saml2): the same
// one-role response as AWSConsole — exactly grant, with its
// SessionDuration (or the default), Recipient and Destination the
// partition's ACS, Audience urn:amazon:webservices[...] (items 4–12) —
// but with the session tags and source identity of res, the Evaluate
// result the caller has just computed from a fresh directory lookup
// (AWSConsole evaluates again), and audited as flow "token-exchange".
// authn is how the user signed in for the OIDC grant behind the exchange
// (identity.AuthnFromAMR of its amr and auth_time): AuthnInstant,
// AuthnContextClassRef and the authentication tag, as in AWSConsoleAuthn.
// The caller has checked that res holds grant and that authn satisfies it.
// Errors as AWSConsoleAuthn's: ErrAWSDisabled, ErrSessionName,
// ErrTooLarge, ErrInsufficientAuthn, and awsfed.ErrOtherPartition for a grant
// outside the configured partition.
func (i *IdP) STSResponse(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (STSAssertion, error) {
	return i.STSResponseFor(ctx, "token-exchange", user, authn, grant, res)
}

// STSResponseFor is STSResponse for another flow than the CLI's token
// exchange, named in the audit event ("access-keys": the portal's panel,
// where wardend calls STS itself).
func (i *IdP) STSResponseFor(ctx context.Context, flow string, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (STSAssertion, error) {
	if i.aws == nil {
		return STSAssertion{}, ErrAWSDisabled
	}
	if grant.Partition != "" && grant.Partition != i.aws.partition {
		return STSAssertion{}, fmt.Errorf("samlidp: role %s is in partition %s, AWS sign-in is configured for %s: %w",
			grant.RoleARN, grant.Partition, i.aws.partition, awsfed.ErrOtherPartition)
	}
	now := i.now().UTC()
	authn = normalAuthn(authn, now)
	if err := i.checkGrant(authn, grant); err != nil {
		return STSAssertion{}, err
	}
	secs := grant.SessionSeconds
	if secs == 0 {
		secs = i.cfg.AWS.DefaultSessionSeconds
	}
	a, err := i.awsAssertion(ctx, user, authn, []rolemap.Grant{grant}, res, secs, "", now)
	if err != nil {
		return STSAssertion{}, err
	}
	resp, err := i.buildResponse(a, i.aws.acs, "", i.aws.cfg.SignResponse, now)
	if err != nil {
		return STSAssertion{}, fmt.Errorf("samlidp: %w", err)
	}
	if len(resp.Base64) > MaxResponseBase64 {
		return STSAssertion{}, &TooLargeError{Roles: 1, Length: len(resp.Base64)}
	}
	detail := map[string]string{"sp": "aws", "flow": flow, "assertion_id": a.ID, "method": authn.Method}
	if grant.Elevation != nil {
		detail["elevation"], detail["session_seconds"] = grant.Elevation.ID, strconv.Itoa(secs)
	}
	i.audit.Record(ctx, audit.Event{Time: now, Actor: user.Username, Action: "saml.response", Object: grant.RoleARN,
		Result: "success", Detail: detail})
	return STSAssertion{Response: resp.Base64, ID: a.ID, Expires: a.Conditions.NotOnOrAfter, ACS: i.aws.acs}, nil
}
