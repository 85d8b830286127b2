package samlidp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/crewjam/saml"
	"golang.org/x/text/unicode/norm"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// AWS SAML attribute names (aws-federation-rules.md items 9–15; exact,
// case-sensitive).
const (
	AttrRole              = "https://aws.amazon.com/SAML/Attributes/Role"
	AttrRoleSessionName   = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
	AttrSessionDuration   = "https://aws.amazon.com/SAML/Attributes/SessionDuration"
	AttrPrincipalTag      = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:"
	AttrTransitiveTagKeys = "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys"
	AttrSourceIdentity    = "https://aws.amazon.com/SAML/Attributes/SourceIdentity"
)

const (
	attrFormatURI   = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	attrFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	bearer          = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	// notBeforeSkew backdates Conditions@NotBefore for relying parties
	// whose clock is a little behind ours.
	notBeforeSkew = time.Minute
)

// Post is an IdP-initiated response, to be sent by an auto-submitting form:
// POST SAMLResponse (and RelayState, when not empty) to URL (item 40).
type Post struct{ URL, SAMLResponse, RelayState string }

// TooLargeError is ErrTooLarge with the figures.
type TooLargeError struct {
	Roles  int // Role values in the response
	Length int // base64 characters
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("your response would carry %d roles (%d characters of base64; AWS accepts at most %d): "+
		"narrow the role set (fewer groups or grant rules), or sign in from the Warden portal, which sends one role at a time",
		e.Roles, e.Length, MaxResponseBase64)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// AWSConsoleAuthn makes an IdP-initiated response for AWS sign-in with
// exactly one role, grant, and that role's SessionDuration (or the
// default), to the ACS of the configured partition and region, for a user
// who signed in as authn (the browser session's, store.Session.SignIn): its
// AuthnInstant is authn.Time, its AuthnContextClassRef authn.ACR(), and
// the authentication tag (Deps.AuthnTag) carries authn.Method (a zero
// Method is a password alone, a zero Time now). The caller
// has checked that the user holds grant (rolemap Evaluate of the session's
// user) and has sent the browser through the second factor when the role
// demands one; a grant whose RequireMFA / MFAMethods authn does not
// satisfy is refused all the same (*InsufficientAuthnError,
// ErrInsufficientAuthn). relayState, when not empty, must be an AWS
// console URL of the partition (ErrBadRelayState). ErrTooLarge when the
// base64 response would exceed 100,000 characters; ErrSessionName when the
// user has no usable RoleSessionName.
func (i *IdP) AWSConsoleAuthn(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, relayState string) (Post, error) {
	if i.aws == nil {
		return Post{}, ErrAWSDisabled
	}
	if relayState != "" {
		if err := ValidRelayState(i.aws.partition, relayState); err != nil {
			return Post{}, err
		}
	}
	if grant.Partition != "" && grant.Partition != i.aws.partition {
		return Post{}, fmt.Errorf("samlidp: role %s is in partition %s, AWS sign-in is configured for %s",
			grant.RoleARN, grant.Partition, i.aws.partition)
	}
	now := i.now().UTC()
	authn = normalAuthn(authn, now)
	if err := i.checkGrant(authn, grant); err != nil {
		i.audit.Record(ctx, audit.Event{Time: now, Actor: user.Username, Action: "saml.response", Object: grant.RoleARN,
			Result: "insufficient_authentication", Detail: map[string]string{"sp": "aws", "flow": "idp-initiated", "method": authn.Method}})
		return Post{}, err
	}
	res := i.evaluate(user)
	secs := grant.SessionSeconds
	if secs == 0 {
		secs = i.cfg.AWS.DefaultSessionSeconds
	}
	a, err := i.awsAssertion(ctx, user, authn, []rolemap.Grant{grant}, res, secs, "", now)
	if err != nil {
		return Post{}, err
	}
	resp, err := i.buildResponse(a, i.aws.acs, "", i.aws.cfg.SignResponse, now)
	if err != nil {
		return Post{}, fmt.Errorf("samlidp: %w", err)
	}
	if len(resp.Base64) > MaxResponseBase64 {
		return Post{}, &TooLargeError{Roles: 1, Length: len(resp.Base64)}
	}
	detail := map[string]string{"sp": "aws", "flow": "idp-initiated", "assertion_id": a.ID, "method": authn.Method}
	if grant.Elevation != nil {
		detail["elevation"], detail["session_seconds"] = grant.Elevation.ID, strconv.Itoa(secs)
	}
	i.audit.Record(ctx, audit.Event{Time: now, Actor: user.Username, Action: "saml.response", Object: grant.RoleARN,
		Result: "success", Detail: detail})
	return Post{URL: i.aws.acs, SAMLResponse: resp.Base64, RelayState: relayState}, nil
}

// awsAssertion is the assertion for AWS sign-in (aws-federation-rules.md
// section A): Issuer = our entity ID (item 8); a persistent opaque NameID
// (item 7); one bearer SubjectConfirmation whose Recipient is the ACS
// used, with NotOnOrAfter (item 4); Audience = the partition's SP entity
// ID, plus the ACS URL, in one AudienceRestriction (item 6); one Role
// attribute with one "roleArn,providerArn" value per grant (items 9–10);
// RoleSessionName (item 11); SessionDuration, and SessionNotOnOrAfter =
// IssueInstant + SessionDuration (item 12); PrincipalTag:*,
// TransitiveTagKeys (item 13) and SourceIdentity (item 15) from the tag
// rules, after the authentication tag (sessionTags). AuthnInstant and
// AuthnContextClassRef from authn. Attribute NameFormat uri (item 16: not
// checked by AWS).
func (i *IdP) awsAssertion(ctx context.Context, user identity.User, authn identity.Authn, grants []rolemap.Grant, res rolemap.Result,
	sessionSeconds int, inResponseTo string, now time.Time) (*saml.Assertion, error) {
	sessionName, err := i.roleSessionName(ctx, user)
	if err != nil {
		return nil, err
	}
	roles := make([]saml.AttributeValue, len(grants))
	for k, g := range grants {
		roles[k] = val(g.RoleARN + "," + g.ProviderARN)
	}
	tags := i.sessionTags(ctx, user, authn, grants, res.Tags)
	attrs := make([]saml.Attribute, 0, 5+len(tags))
	attrs = append(attrs,
		saml.Attribute{Name: AttrRole, NameFormat: attrFormatURI, Values: roles},
		saml.Attribute{Name: AttrRoleSessionName, NameFormat: attrFormatURI, Values: []saml.AttributeValue{val(sessionName)}},
		saml.Attribute{Name: AttrSessionDuration, NameFormat: attrFormatURI, Values: []saml.AttributeValue{val(strconv.Itoa(sessionSeconds))}},
	)
	var transitive []saml.AttributeValue
	for _, t := range tags {
		attrs = append(attrs, saml.Attribute{Name: AttrPrincipalTag + t.Key, NameFormat: attrFormatURI,
			Values: []saml.AttributeValue{val(t.Value)}})
		if t.Transitive {
			transitive = append(transitive, val(t.Key))
		}
	}
	if len(transitive) > 0 {
		attrs = append(attrs, saml.Attribute{Name: AttrTransitiveTagKeys, NameFormat: attrFormatURI, Values: transitive})
	}
	if res.SourceIdentity != "" {
		attrs = append(attrs, saml.Attribute{Name: AttrSourceIdentity, NameFormat: attrFormatURI,
			Values: []saml.AttributeValue{val(res.SourceIdentity)}})
	}
	sessionEnd := now.Add(time.Duration(sessionSeconds) * time.Second)
	nameID := &saml.NameID{Format: nameIDFormatPersistent, Value: i.persistentID(i.aws.entityID, user)}
	return i.assertion(nameID, []string{i.aws.entityID, i.aws.acs}, i.aws.acs, inResponseTo, authn, &sessionEnd, attrs, now)
}

// assertion builds the parts every assertion shares.
// AuthnInstant is authn.Time (now when unknown), AuthnContextClassRef
// authn.ACR().
func (i *IdP) assertion(nameID *saml.NameID, audiences []string, recipient, inResponseTo string,
	authn identity.Authn, sessionEnd *time.Time, attrs []saml.Attribute, now time.Time) (*saml.Assertion, error) {
	id, err := i.newID()
	if err != nil {
		return nil, err
	}
	sessionIndex, err := i.newID()
	if err != nil {
		return nil, err
	}
	end := now.Add(i.cfg.AssertionLifetime)
	ar := saml.AudienceRestriction{Audience: saml.Audience{Value: audiences[0]}}
	for _, a := range audiences[1:] {
		ar.AdditionalAudiences = append(ar.AdditionalAudiences, saml.Audience{Value: a})
	}
	authnInstant := authn.Time
	if authnInstant.IsZero() {
		authnInstant = now
	}
	st := saml.AuthnStatement{
		AuthnInstant: authnInstant.UTC(),
		SessionIndex: sessionIndex,
		AuthnContext: authnContext(authn),
	}
	if sessionEnd != nil {
		e := sessionEnd.UTC()
		st.SessionNotOnOrAfter = &e
	}
	return &saml.Assertion{
		ID:           id,
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: entityFormat, Value: i.entityID},
		Subject: &saml.Subject{
			NameID: nameID,
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearer,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: inResponseTo,
					NotOnOrAfter: end,
					Recipient:    recipient,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:            now.Add(-notBeforeSkew),
			NotOnOrAfter:         end,
			AudienceRestrictions: []saml.AudienceRestriction{ar},
		},
		AuthnStatements:     []saml.AuthnStatement{st},
		AttributeStatements: []saml.AttributeStatement{{Attributes: attrs}},
	}, nil
}

// str is a typed string value (generic SPs).
func str(v string) saml.AttributeValue { return saml.AttributeValue{Type: "xs:string", Value: v} }

// val is an untyped value (AWS): AWS reads the text only, and without
// xsi:type exclusive C14N drops the per-value namespace declarations,
// about 110 bytes a value, which matters for a 500-role response (item 20).
func val(v string) saml.AttributeValue { return saml.AttributeValue{Value: v} }

// persistentID is the persistent NameID of user for the SP spEntityID:
// base64url(HMAC-SHA256(NameIDKey, spEntityID NUL user.ID)). Opaque (not
// the username, item 7), stable for the life of the directory entry
// (user.ID survives renames), and different per SP (saml-core §8.3.7:
// a persistent identifier is specific to an IdP/SP pair).
func (i *IdP) persistentID(spEntityID string, user identity.User) string {
	m := hmac.New(sha256.New, i.nameIDKey)
	m.Write([]byte(spEntityID))
	m.Write([]byte{0})
	m.Write([]byte(user.ID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// roleSessionName is the user's RoleSessionName (item 11) from the
// configured source, reduced by ReduceSessionName. A reduced name is
// logged and audited (two users may reduce to one name: reported, not
// silently collided); a result under 2 characters is ErrSessionName.
func (i *IdP) roleSessionName(ctx context.Context, user identity.User) (string, error) {
	var src string
	switch a := i.cfg.AWS.SessionNameAttribute; a {
	case sessionNameUsername:
		src = user.Username
	case sessionNameEmail:
		src = user.Email
	default:
		if v := user.Attributes[a]; len(v) > 0 {
			src = v[0]
		}
	}
	name, changed := ReduceSessionName(src)
	if len(name) < 2 {
		return "", fmt.Errorf("%w: %s %q gives %q", ErrSessionName, i.cfg.AWS.SessionNameAttribute, src, name)
	}
	if changed {
		i.log.LogAttrs(ctx, slog.LevelInfo, "saml: role session name reduced to AWS's characters",
			slog.String("user", user.Username), slog.String("from", src), slog.String("to", name))
		i.audit.Record(ctx, audit.Event{Actor: user.Username, Action: "saml.session_name_reduced", Object: user.Username,
			Result: "reduced", Detail: map[string]string{"from": src, "to": name}})
	}
	return name, nil
}

// ReduceSessionName maps s to AWS's RoleSessionName alphabet
// [A-Za-z0-9_+=,.@-] and at most 64 characters (item 11): letters with
// diacritics lose them ("Jürgen" → "Jurgen"), every run of other
// characters becomes one '-', and the result is cut to 64 bytes. changed
// reports whether the result differs from s. The caller refuses results
// under 2 characters.
func ReduceSessionName(s string) (name string, changed bool) {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // a combining mark: drop it, keep its base letter
		case r < 0x80 && isSessionNameByte(byte(r)):
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 64 {
			break
		}
	}
	name = b.String()
	if len(name) > 64 {
		name = name[:64]
	}
	return name, name != s
}

func isSessionNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0
}

// errNoRoles: an SP-initiated AWS sign-in for a user without roles.
var errNoRoles = errors.New("user holds no AWS role")
