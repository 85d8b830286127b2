// Package accesskeys mints short-term AWS credentials for one role on the
// server, for people who reach AWS without the warden CLI: the portal's
// "Access keys" panel. Warden signs a one-role SAML response for the role
// (samlidp.IdP.STSResponse: the same checks, session tags and audit as the
// CLI's token exchange, a second factor where the role demands one) and
// calls STS AssumeRoleWithSAML itself (aws-sdk-go-v2, awsfed), at the
// regional endpoint of the role's partition or at a configured one. The
// credentials go to the user's browser once and are not kept.
//
// Forms turns them into what people paste: environment variables for
// bash/zsh, fish and PowerShell, an AWS credentials-file section, and the
// credential_process profile that keeps them fresh with the CLI instead.
package accesskeys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// Config is portal.access_keys.
type Config struct {
	// Enabled offers the panel (default true; false hides it and refuses
	// its requests).
	Enabled *bool `yaml:"enabled"`
	// STSEndpoint replaces the regional STS endpoint of the role's
	// partition (a VPC endpoint, or a test server); "" uses it.
	STSEndpoint string `yaml:"sts_endpoint"`
	// STSRegion is the region whose STS endpoint is called and that the
	// forms name ("" is the partition's default region: us-east-1,
	// us-gov-west-1, cn-north-1).
	STSRegion string `yaml:"sts_region"`
	// Timeout bounds one STS call (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// On reports whether the panel is offered.
func (c Config) On() bool { return c.Enabled == nil || *c.Enabled }

// SetDefaults fills in the defaults.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate checks c (after SetDefaults); problems name their keys relative
// to portal.access_keys.
func (c Config) Validate() error {
	var errs []error
	if c.STSEndpoint != "" {
		u, err := url.Parse(c.STSEndpoint)
		loopback := err == nil && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback())
		if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && loopback) {
			errs = append(errs, fmt.Errorf("sts_endpoint %q: want an https URL (http only on loopback)", c.STSEndpoint))
		}
	}
	if c.STSRegion != "" {
		if err := awsfed.ValidRegion(awsfed.PartitionOfRegion(c.STSRegion), c.STSRegion); err != nil {
			errs = append(errs, fmt.Errorf("sts_region: %w", err))
		}
	}
	if c.Timeout < time.Second || c.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("timeout %s: want 1s to 1m", c.Timeout))
	}
	return errors.Join(errs...)
}

// Signer makes the one-role SAML response for STS (samlidp.IdP).
type Signer interface {
	STSResponse(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (string, error)
}

// Deps are the service's collaborators.
type Deps struct {
	Signer Signer
	Audit  audit.Logger // nil: audit.Discard
	// HTTPClient carries the STS calls (nil: a client without proxy
	// surprises: http.DefaultTransport).
	HTTPClient *http.Client
	// DefaultSessionSeconds is the session length of a role whose rule
	// gives none (saml.aws.default_session_seconds).
	DefaultSessionSeconds int
}

// Service mints access keys.
type Service struct {
	cfg  Config
	deps Deps
}

// New builds the service; cfg is defaulted and validated.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("accesskeys: portal.access_keys: %w", err)
	}
	if deps.Signer == nil {
		return nil, errors.New("accesskeys: Deps.Signer is required")
	}
	if deps.Audit == nil {
		deps.Audit = audit.Discard{}
	}
	if deps.DefaultSessionSeconds == 0 {
		deps.DefaultSessionSeconds = 3600
	}
	return &Service{cfg: cfg, deps: deps}, nil
}

// Errors of Mint; the rest are internal.
var (
	// ErrDuration: a session length outside 15 minutes to the role's
	// maximum.
	ErrDuration = errors.New("session length outside what the role allows")
	// ErrSTS: STS refused or could not be reached; the text says which.
	ErrSTS = errors.New("aws sts")
)

// MinSeconds is STS's shortest session.
const MinSeconds = 900

// MaxSeconds is the longest session grant allows: its SessionSeconds, or
// the default.
func (s *Service) MaxSeconds(grant rolemap.Grant) int {
	if grant.SessionSeconds > 0 {
		return grant.SessionSeconds
	}
	return s.deps.DefaultSessionSeconds
}

// Choices are the session lengths the panel offers for grant, shortest
// first: 15 and 30 minutes, then whole hours up to the role's maximum,
// which is always among them.
func (s *Service) Choices(grant rolemap.Grant) []int {
	limit := s.MaxSeconds(grant)
	var out []int
	for _, c := range []int{900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600} {
		if c < limit {
			out = append(out, c)
		}
	}
	return append(out, limit)
}

// DefaultChoice is the length the panel selects first: an hour, or the
// role's maximum when shorter.
func (s *Service) DefaultChoice(grant rolemap.Grant) int { return min(3600, s.MaxSeconds(grant)) }

// Keys are minted credentials and what the forms need.
type Keys struct {
	awsfed.Credentials
	Grant   rolemap.Grant
	Seconds int
	Region  string
}

// Mint signs a response for grant (a grant of res, the user's rules
// result, with active elevations applied) and exchanges it at STS for
// seconds of session. authn is the sign-in's; a role that demands a
// second factor the sign-in lacks is refused by the Signer
// (samlidp.ErrInsufficientAuthn), before anything is sent to AWS.
func (s *Service) Mint(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result,
	seconds int, clientIP, requestID string) (Keys, error) {
	ev := audit.Event{Actor: user.Username, Action: "aws.access_keys", Object: grant.RoleARN, ClientIP: clientIP,
		RequestID: requestID, Detail: map[string]string{"account": grant.AccountID, "session_seconds": strconv.Itoa(seconds)}}
	record := func(result string, err error) {
		ev.Result = result
		if err != nil {
			ev.Detail["reason"] = audit.Clip(err.Error(), 256)
		}
		s.deps.Audit.Record(ctx, ev)
	}
	if seconds < MinSeconds || seconds > s.MaxSeconds(grant) {
		err := fmt.Errorf("%w: %ds asked, %d to %ds allowed for %s", ErrDuration, seconds, MinSeconds, s.MaxSeconds(grant), grant.RoleARN)
		record("bad_duration", err)
		return Keys{}, err
	}
	grant.SessionSeconds = seconds // the SessionDuration attribute says the same as DurationSeconds
	assertion, err := s.deps.Signer.STSResponse(ctx, user, authn, grant, res)
	if err != nil {
		record("refused", err)
		return Keys{}, err
	}
	part := grant.Partition
	if part == "" {
		part = "aws"
	}
	region := s.cfg.STSRegion
	if region == "" || awsfed.PartitionOfRegion(region) != part {
		p, _ := awsfed.LookupPartition(part)
		region = p.DefaultRegion
	}
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	creds, err := awsfed.AssumeRoleWithSAML(callCtx, awsfed.STSOptions{Partition: part, Region: region,
		Endpoint: s.cfg.STSEndpoint, HTTPClient: s.deps.HTTPClient}, grant.RoleARN, grant.ProviderARN, assertion, seconds)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSTS, err)
		record("error", err)
		return Keys{}, err
	}
	ev.Detail["access_key_id"] = creds.AccessKeyID // identifies the session in CloudTrail; not a secret
	record("success", nil)
	return Keys{Credentials: creds, Grant: grant, Seconds: seconds, Region: region}, nil
}
