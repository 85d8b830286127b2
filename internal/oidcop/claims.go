package oidcop

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// TagsClaim is the AWS session-tags claim (item 35; IAM User Guide,
// id_session-tags.html, "Passing session tags using
// AssumeRoleWithWebIdentity").
const TagsClaim = "https://aws.amazon.com/tags"

// AWSTags is the value of TagsClaim: every principal tag value is an array
// of exactly one string; transitive_tag_keys lists the transitive ones.
type AWSTags struct {
	PrincipalTags     map[string][]string `json:"principal_tags"`
	TransitiveTagKeys []string            `json:"transitive_tag_keys,omitempty"`
}

// TagsFromResult builds the TagsClaim value from the rules' tags (already
// within AWS's limits: at most 50, key ≤128, value ≤256 characters, no
// "aws:" prefix; rolemap drops anything else). ok is false when there are
// no tags (leave the claim out).
func TagsFromResult(tags []rolemap.Tag) (AWSTags, bool) {
	if len(tags) == 0 {
		return AWSTags{}, false
	}
	t := AWSTags{PrincipalTags: make(map[string][]string, len(tags))}
	for _, tag := range tags {
		t.PrincipalTags[tag.Key] = []string{tag.Value}
		if tag.Transitive {
			t.TransitiveTagKeys = append(t.TransitiveTagKeys, tag.Key)
		}
	}
	return t, true
}

// RoleClaim is one entry of the "roles" claim of userinfo (roles scope):
// a role the user may assume through the token exchange.
type RoleClaim struct {
	RoleARN        string `json:"role_arn"`
	AccountID      string `json:"account_id"`
	AccountName    string `json:"account_name,omitempty"`
	RoleName       string `json:"role_name"`
	SessionSeconds int    `json:"session_seconds,omitempty"`
	// ElevatedUntil: the role is granted by an active elevation that ends then.
	ElevatedUntil time.Time `json:"elevated_until,omitzero"`
}

// Elevations turns a user's active elevations into grants (elevation.Service).
type Elevations interface {
	Apply(ctx context.Context, user identity.User, res *rolemap.Result) error
}

// SetElevations makes the roles of active elevations count in userinfo's
// roles claim and in the token exchange.
func (p *Provider) SetElevations(e Elevations) { p.elevations = e }

// RolesFromResult lists the grants as RoleClaims (sorted as rolemap sorts:
// by account, then role ARN).
func RolesFromResult(grants []rolemap.Grant) []RoleClaim {
	out := make([]RoleClaim, 0, len(grants))
	for _, g := range grants {
		rc := RoleClaim{RoleARN: g.RoleARN, AccountID: g.AccountID, AccountName: g.AccountName,
			RoleName: g.RoleName, SessionSeconds: g.SessionSeconds}
		if g.Elevation != nil {
			rc.ElevatedUntil = g.Elevation.EndsAt.UTC()
		}
		out = append(out, rc)
	}
	return out
}

// setClaims fills the user's claims for the scopes: sub always; name and
// preferred_username with profile; email with email; groups (names) with
// groups; the AWS tags claim whenever the rules give tags; roles (userinfo
// only, withRoles) with roles.
func (p *Provider) setClaims(ctx context.Context, info *oidc.UserInfo, u identity.User, scopes []string, withRoles bool) {
	info.Subject = p.Subject(u)
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.DisplayName
		info.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
	}
	if slices.Contains(scopes, ScopeGroups) {
		info.AppendClaims("groups", u.GroupNames())
	}
	res := p.rules.Load().Evaluate(rolemap.InputFromUser(u))
	if t, ok := TagsFromResult(res.Tags); ok {
		info.AppendClaims(TagsClaim, t)
	}
	if withRoles && slices.Contains(scopes, ScopeRoles) {
		if p.elevations != nil {
			if err := p.elevations.Apply(ctx, u, &res); err != nil {
				p.log.Warn("userinfo: elevations could not be read; standing roles only", "user", u.Username, "err", err)
			}
		}
		info.AppendClaims("roles", RolesFromResult(res.Grants))
	}
}

// SignJWT signs claims (marshalled with encoding/json) as a compact JWS
// with oidc.signing_algorithm (RS256 or ES256), the current key of that
// ring and its kid (the web-identity token of the token exchange).
// Timestamps in claims must be integers (item 30).
func (p *Provider) SignJWT(claims any) (string, error) {
	cur := p.keys.Current()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(cur.Alg), Key: cur.Private()},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", cur.ID))
	if err != nil {
		return "", fmt.Errorf("oidcop: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidcop: claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidcop: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// signatureAlgorithms is every algorithm with a published key, the one
// that signs first.
func (p *Provider) signatureAlgorithms() []jose.SignatureAlgorithm {
	out := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(p.keys.Current().Alg)}
	for _, k := range p.keys.Published() {
		if a := jose.SignatureAlgorithm(k.Alg); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
