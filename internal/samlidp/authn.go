package samlidp

// How the user signed in, as AWS sees it (DESIGN.md flow 6): the
// AuthnContextClassRef and AuthnInstant of every assertion, the session
// tag naming the method (aws-federation-rules.md items 13, 14, 60, 61),
// and the roles that demand a second factor.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// ErrInsufficientAuthn: the sign-in does not satisfy a role's
// RequireMFA / MFAMethods (InsufficientAuthnError has the detail).
var ErrInsufficientAuthn = errors.New("sign-in does not satisfy the role's authentication requirement")

// InsufficientAuthnError is ErrInsufficientAuthn for one role: AWSConsole
// and STSResponse never sign a role for a sign-in that does not satisfy
// it (defense in depth: their callers check first and send the user
// through the second factor, or refuse the exchange with a clear error).
type InsufficientAuthnError struct {
	RoleARN string
	// Methods, when not empty, are the only second factors the role
	// accepts.
	Methods []string
	// Method is how the user signed in (identity.Method*).
	Method string
}

func (e *InsufficientAuthnError) Error() string {
	need := "a second factor"
	if len(e.Methods) > 0 {
		need = "one of " + strings.Join(e.Methods, ", ")
	}
	return fmt.Sprintf("role %s needs a sign-in with %s; this one used %s", e.RoleARN, need, e.Method)
}

// Is makes errors.Is(err, ErrInsufficientAuthn) true.
func (e *InsufficientAuthnError) Is(target error) bool { return target == ErrInsufficientAuthn }

// normalAuthn fills what a caller left out: a zero Method is a password
// alone, a zero Time is now.
func normalAuthn(a identity.Authn, now time.Time) identity.Authn {
	if a.Method == "" {
		a.Method = identity.MethodPassword
	}
	if a.Time.IsZero() {
		a.Time = now
	}
	a.Time = a.Time.UTC()
	return a
}

// demandsFactor reports whether g demands anything of the sign-in.
func demandsFactor(g rolemap.Grant) bool { return g.RequireMFA || len(g.MFAMethods) > 0 }

// satisfies reports whether authn is enough for g, with the deployment's
// methods that count.
func (i *IdP) satisfies(authn identity.Authn, g rolemap.Grant) bool {
	return authn.Satisfies(g.RequireMFA, g.MFAMethods, i.mfaMethods)
}

// checkGrant is the builders' defense in depth: nil when authn satisfies
// g, else an *InsufficientAuthnError.
func (i *IdP) checkGrant(authn identity.Authn, g rolemap.Grant) error {
	if i.satisfies(authn, g) {
		return nil
	}
	return &InsufficientAuthnError{RoleARN: g.RoleARN, Methods: slices.Clone(g.MFAMethods), Method: authn.Method}
}

// factorNeed is what the roles of grants that authn does not satisfy
// demand together: a second factor, and, when any of them names methods,
// only the methods every naming role accepts. ok is false when authn
// satisfies them all. When the roles name disjoint methods, the need is the
// first naming role's methods (the others are left out of the response
// after the factor: no single sign-in satisfies them all).
func (i *IdP) factorNeed(authn identity.Authn, grants []rolemap.Grant) (need web.FactorNeed, ok bool) {
	var methods []string
	named := false
	for _, g := range grants {
		if !demandsFactor(g) || i.satisfies(authn, g) {
			continue
		}
		need.MFA, ok = true, true
		if len(g.MFAMethods) == 0 {
			continue
		}
		if !named {
			methods, named = slices.Clone(g.MFAMethods), true
			continue
		}
		both := slices.DeleteFunc(slices.Clone(methods), func(m string) bool { return !slices.Contains(g.MFAMethods, m) })
		if len(both) > 0 {
			methods = both
		}
	}
	need.Methods = methods
	return need, ok
}

// authnTag is the session tag that names the method: key i.authnTag
// (mfa.session_tag), value the method (password, totp, webauthn,
// recovery). ok is false when the tag is off.
func (i *IdP) authnTag(authn identity.Authn) (rolemap.Tag, bool) {
	if i.authnTagKey == "" {
		return rolemap.Tag{}, false
	}
	return rolemap.Tag{Key: i.authnTagKey, Value: authn.Method}, true
}

// sessionTags are the tags of an AWS assertion for grants: Warden's own
// first — the authentication tag (never transitive: it describes this
// federated sign-in, and a role chained from this session is not signed
// in by Warden) and the elevation tags of elevated grants — then the
// rules' tags. A rule tag whose key equals one of Warden's own,
// regardless of case (AWS compares keys so, item 14), is left out and
// logged: Warden's tag wins, so that a mapping rule can never claim a
// second factor that was not given, or an elevation. Past AWS's 50 tags,
// the rules' last tags are left out and logged.
func (i *IdP) sessionTags(ctx context.Context, user identity.User, authn identity.Authn, grants []rolemap.Grant, ruleTags []rolemap.Tag) []rolemap.Tag {
	var own []rolemap.Tag
	if t, ok := i.authnTag(authn); ok {
		own = append(own, t)
	}
	if i.elevations != nil {
		own = append(own, i.elevations.Tags(grants)...)
	}
	if len(own) == 0 {
		return ruleTags
	}
	out := make([]rolemap.Tag, 0, len(ruleTags)+len(own))
	out = append(out, own...)
	for _, t := range ruleTags {
		reason := ""
		switch {
		case slices.ContainsFunc(own, func(o rolemap.Tag) bool { return strings.EqualFold(t.Key, o.Key) }):
			reason = "the key is one of Warden's own (authentication or elevation)"
		case len(out) >= maxSessionTags:
			reason = "AWS accepts at most 50 session tags"
		}
		if reason != "" {
			i.log.LogAttrs(ctx, slog.LevelWarn, "saml: session tag left out", slog.String("user", user.Username),
				slog.String("key", t.Key), slog.String("reason", reason))
			continue
		}
		out = append(out, t)
	}
	return out
}

// maxSessionTags is AWS's limit of session tags (item 14).
const maxSessionTags = 50

// authnContext is the AuthnStatement's context: the class of the method
// used (identity.ACRPassword for a password alone, identity.ACRMFA, the
// REFEDS MFA profile, for a second factor).
func authnContext(authn identity.Authn) saml.AuthnContext {
	return saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{Value: authn.ACR()}}
}
