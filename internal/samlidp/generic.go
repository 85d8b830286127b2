package samlidp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// assertionMaker is crewjam's AssertionMaker for every SP: the AWS one for
// the AWS preset, the generic one for the others. The signed-in user comes
// from the request's session (web.CurrentSession), and so does how they
// signed in (store.Session.SignIn): the AuthnInstant, AuthnContextClassRef and, for
// AWS, the authentication tag.
type assertionMaker struct{ i *IdP }

// MakeAssertion implements saml.AssertionMaker; it sets req.Assertion.
func (m assertionMaker) MakeAssertion(req *saml.IdpAuthnRequest, _ *saml.Session) error {
	i := m.i
	c := ginContext(req.HTTPRequest)
	if c == nil {
		return errors.New("samlidp: request not served through the web server")
	}
	sess, ok := web.CurrentSession(c)
	if !ok {
		return errors.New("samlidp: no signed-in session")
	}
	e, ok := i.sps.lookup(req.ServiceProviderMetadata.EntityID)
	if !ok {
		return &pageError{status: http.StatusBadRequest, public: msgUnknownSP, err: errors.New("service provider vanished")}
	}
	now := i.now().UTC()
	authn := sess.SignIn()
	var a *saml.Assertion
	var err error
	if e.aws != nil {
		res := i.awsGrants(req.HTTPRequest.Context(), sess.User, e.aws.partition)
		if len(res.Grants) == 0 {
			return &pageError{status: http.StatusForbidden, public: "You hold no AWS role, so there is nothing to sign in to. Ask an administrator for access.", err: errNoRoles}
		}
		// Defense in depth: only roles this sign-in satisfies (the SSO
		// handlers sent the browser through the second factor first; a
		// role that still is not satisfied, e.g. one that accepts only a
		// method the user did not use, is left out).
		held := len(res.Grants)
		var left []string
		res.Grants = slices.DeleteFunc(res.Grants, func(g rolemap.Grant) bool {
			if i.satisfies(authn, g) {
				return false
			}
			left = append(left, g.RoleARN)
			return true
		})
		if len(left) > 0 {
			i.log.LogAttrs(req.HTTPRequest.Context(), slog.LevelInfo, "saml: roles left out: the sign-in does not satisfy them",
				slog.String("user", sess.User.Username), slog.String("method", authn.Method), slog.String("roles", strings.Join(left, " ")))
		}
		if len(res.Grants) == 0 {
			return &pageError{status: http.StatusForbidden,
				public: fmt.Sprintf("Your AWS roles (%d) need a sign-in with a second factor that this sign-in did not use. Sign out, sign in again with your second factor, and retry from the application.", held),
				err:    &InsufficientAuthnError{RoleARN: left[0], Method: authn.Method}}
		}
		secs := i.cfg.AWS.DefaultSessionSeconds
		if len(res.Grants) == 1 && res.Grants[0].SessionSeconds > 0 {
			secs = res.Grants[0].SessionSeconds
		}
		// One SessionDuration serves every role of the response: with an
		// elevated role among them it ends with the elevation's window.
		for _, g := range res.Grants {
			if g.Elevation != nil && g.SessionSeconds > 0 {
				secs = min(secs, g.SessionSeconds)
			}
		}
		a, err = i.awsAssertion(req.HTTPRequest.Context(), sess.User, authn, res.Grants, res, secs, req.Request.ID, now)
		if err == nil {
			req.Assertion = a
			return nil
		}
		if errors.Is(err, ErrSessionName) {
			return &pageError{status: http.StatusForbidden, public: "Your account has no name AWS accepts as a role session name (2 to 64 letters, digits or +=,.@_-). Ask an administrator.", err: err}
		}
		return err
	}
	if a, err = i.genericAssertion(e, sess.User, req, authn, now); err != nil {
		return err
	}
	req.Assertion = a
	return nil
}

// awsGrants is the user's Evaluate result under the current rules, with
// the roles of active elevations, and only the grants of partition (the
// only ones its sign-in accepts). When the elevations cannot be read, the
// standing roles are given alone.
func (i *IdP) awsGrants(ctx context.Context, user identity.User, partition string) rolemap.Result {
	res := i.evaluate(user)
	if i.elevations != nil {
		if err := i.elevations.Apply(ctx, user, &res); err != nil {
			i.log.LogAttrs(ctx, slog.LevelWarn, "saml: elevations could not be read; standing roles only",
				slog.String("user", user.Username), slog.String("err", err.Error()))
		}
	}
	grants := res.Grants[:0:0]
	for _, g := range res.Grants {
		if g.Partition == partition {
			grants = append(grants, g)
		}
	}
	res.Grants = grants
	return res
}

// genericAssertion is the assertion for a generic SP: NameID in the SP's
// format, the user's username, email, display name and groups (filtered by
// the SP's pattern) under the configured attribute names, Audience = the
// SP's entity ID, Recipient = the ACS used.
func (i *IdP) genericAssertion(e *spEntry, user identity.User, req *saml.IdpAuthnRequest, authn identity.Authn, now time.Time) (*saml.Assertion, error) {
	md := req.ServiceProviderMetadata
	var nameID *saml.NameID
	switch e.cfg.NameIDFormat {
	case NameIDEmail:
		if user.Email == "" {
			return nil, &pageError{status: http.StatusForbidden,
				public: "This application identifies people by email address, and your account has none. Ask an administrator.",
				err:    fmt.Errorf("user %s has no email for sp %s", user.Username, e.name)}
		}
		nameID = &saml.NameID{Format: nameIDFormatEmail, Value: user.Email}
	case NameIDUnspecified:
		nameID = &saml.NameID{Format: nameIDFormatUnspecified, Value: user.Username}
	default:
		nameID = &saml.NameID{Format: nameIDFormatPersistent, Value: i.persistentID(md.EntityID, user),
			NameQualifier: i.entityID, SPNameQualifier: md.EntityID}
	}
	names := e.cfg.Attributes
	var attrs []saml.Attribute
	add := func(name string, values ...string) {
		if name == "-" || len(values) == 0 {
			return
		}
		a := saml.Attribute{Name: name, NameFormat: attrFormatBasic}
		if strings.Contains(name, ":") {
			a.NameFormat = attrFormatURI
		}
		for _, v := range values {
			a.Values = append(a.Values, str(v))
		}
		attrs = append(attrs, a)
	}
	add(names.Username, user.Username)
	if user.Email != "" {
		add(names.Email, user.Email)
	}
	if user.DisplayName != "" {
		add(names.DisplayName, user.DisplayName)
	}
	var groups []string
	for _, g := range user.Groups {
		if e.groups == nil || e.groups.MatchString(g.Name) {
			groups = append(groups, g.Name)
		}
	}
	add(names.Groups, groups...)
	return i.assertion(nameID, []string{md.EntityID}, req.ACSEndpoint.Location, req.Request.ID, authn, nil, attrs, now)
}
