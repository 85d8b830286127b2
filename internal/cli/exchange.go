package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardenidp/warden/internal/awsfed"
)

// Token types and the grant of RFC 8693 token exchange, as wardend's
// /oauth/token takes them (docs/aws-setup.md §9).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeSAML2     = "urn:ietf:params:oauth:token-type:saml2"
	tokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
	// stsAudience is the audience of an ID token for AssumeRoleWithWebIdentity.
	stsAudience = "sts.amazonaws.com"
)

// ExchangeError is an error answered by the IdP's token exchange (RFC 8693
// §2.2.2; RFC 6749 §5.2).
type ExchangeError struct {
	Status      int
	Code        string // invalid_target, invalid_request, invalid_grant, …
	Description string
	RoleARN     string
	// MFAMethods are the only second factors the role accepts (wardend's
	// mfa_methods member of an insufficient_user_authentication answer);
	// empty: any.
	MFAMethods []string
	// Eligible: an invalid_target for a role the user may request through
	// `warden elevate` but holds no active elevation for ("eligible":"true").
	// Elevated: an invalid_target for a role held through an elevation,
	// asked for via web-identity, which the IdP refuses ("elevated":"true").
	Eligible, Elevated bool
	// Spec is how to name the role to the user ("prod/Admin"); empty: RoleARN.
	Spec string
}

// spec is the role as the user should type it.
func (e *ExchangeError) spec() string {
	if e.Spec != "" {
		return e.Spec
	}
	return e.RoleARN
}

// errInsufficientAuthn is RFC 9470's error: the sign-in behind the access
// token is not strong enough for the role (wardend: the role requires a
// second factor, and the device approval did not give one).
const errInsufficientAuthn = "insufficient_user_authentication"

// NeedsMFA reports whether the IdP refused the role for want of a second
// factor in the sign-in (`warden login --mfa` fixes it).
func (e *ExchangeError) NeedsMFA() bool { return e.Code == errInsufficientAuthn }

func (e *ExchangeError) Error() string {
	switch e.Code {
	case errInsufficientAuthn:
		return fmt.Sprintf("role %s needs a sign-in with %s: run \"warden login --mfa\"", roleName(e.RoleARN), methodWords(e.MFAMethods))
	case "invalid_target":
		if e.Eligible {
			return eligibleHint(e.spec(), 0)
		}
		if e.Elevated {
			return fmt.Sprintf("%s is yours through an elevation, which the IdP hands out through SAML only: use --via saml (the default)", e.spec())
		}
		if strings.Contains(e.Description, "partition") {
			part := "its partition"
			if r, err := awsfed.ParseRoleARN(e.RoleARN); err == nil {
				part = r.Partition
			}
			return fmt.Sprintf("the IdP signs no SAML for %s's partition %s: use --via web-identity (the default for roles outside the configured partition), "+
				"or, if Warden's SAML sign-in serves %s, run `warden configure --partition %s`", e.spec(), part, part, part)
		}
		if strings.Contains(e.Description, "audience") {
			return fmt.Sprintf("the IdP will not issue a token for role %s: %s", e.RoleARN, e.Description)
		}
		return fmt.Sprintf("you do not hold role %s; `warden roles` lists yours", e.RoleARN)
	case "invalid_grant":
		return "the IdP refused your account (" + e.Description + "): run `warden login` or ask your administrator"
	case "temporarily_unavailable":
		return "the IdP is temporarily unavailable; try again in a moment"
	}
	if e.Code == "" {
		return fmt.Sprintf("token exchange: the IdP answered HTTP %d", e.Status)
	}
	return "token exchange: " + e.Code + ": " + e.Description
}

// exchange trades the access token for a token for one role: a base64 SAML
// response (via saml) or an ID token with audience sts.amazonaws.com (via
// web-identity).
func (a *App) exchange(ctx context.Context, tokenEndpoint, accessToken, roleARN, via string) (string, error) {
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"client_id":          {ClientID},
		"subject_token":      {accessToken},
		"subject_token_type": {tokenTypeAccess},
		"resource":           {roleARN},
	}
	if via == ViaWebIdentity {
		form.Set("requested_token_type", tokenTypeIDToken)
		form.Set("audience", stsAudience)
	} else {
		form.Set("requested_token_type", tokenTypeSAML2)
	}
	status, _, body, err := a.postForm(ctx, tokenEndpoint, form, nil)
	if err != nil {
		return "", idpProblem("token exchange", tokenEndpoint, err)
	}
	var r struct {
		AccessToken      string   `json:"access_token"`
		IssuedTokenType  string   `json:"issued_token_type"`
		Error            string   `json:"error"`
		ErrorDescription string   `json:"error_description"`
		MFAMethods       string   `json:"mfa_methods"` // space-separated
		Eligible         flexBool `json:"eligible"`
		Elevated         flexBool `json:"elevated"`
	}
	jerr := json.Unmarshal(body, &r)
	if status != http.StatusOK || r.Error != "" {
		return "", &ExchangeError{Status: status, Code: r.Error, Description: oneLine(r.ErrorDescription), RoleARN: roleARN,
			MFAMethods: strings.Fields(r.MFAMethods), Eligible: bool(r.Eligible), Elevated: bool(r.Elevated)}
	}
	want := tokenTypeSAML2
	if via == ViaWebIdentity {
		want = tokenTypeIDToken
	}
	if jerr != nil || r.AccessToken == "" || r.IssuedTokenType != want {
		return "", fmt.Errorf("token exchange: the IdP answered no %s token", via)
	}
	return r.AccessToken, nil
}

// flexBool reads a JSON member that wardend sends as the string "true"
// (or a boolean true); anything else is false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	*b = flexBool(strings.Trim(string(p), `"`) == "true")
	return nil
}

// roleName is the name part of a role ARN (the ARN itself when it does
// not parse).
func roleName(arn string) string {
	if r, err := awsfed.ParseRoleARN(arn); err == nil {
		return r.Name
	}
	return arn
}

// methodWords says which second factors a role accepts: "a second
// factor", or the methods named ("a passkey", "a passkey or an
// authenticator app code").
func methodWords(methods []string) string {
	var words []string
	for _, m := range methods {
		switch m {
		case "webauthn":
			words = append(words, "a passkey")
		case "totp":
			words = append(words, "an authenticator app code")
		case "recovery":
			words = append(words, "a recovery code")
		}
	}
	if len(words) == 0 {
		return "a second factor"
	}
	return strings.Join(words, " or ")
}

// oneLine keeps a server's text to one short line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// samlRoleAttribute is the SAML attribute holding "role ARN,provider ARN".
const samlRoleAttribute = "https://aws.amazon.com/SAML/Attributes/Role"

// principalFromSAML finds the SAML provider ARN paired with roleARN in the
// Role attribute of the base64 SAML response (either order, item 4 of the
// rules).
func principalFromSAML(samlB64, roleARN string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(samlB64)
	if err != nil {
		return "", fmt.Errorf("token exchange: the SAML response is not base64: %w", err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	inRole, inValue := false, false
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("token exchange: the SAML response is not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "Attribute" {
				inRole = false
				for _, at := range t.Attr {
					if at.Name.Local == "Name" && at.Value == samlRoleAttribute {
						inRole = true
					}
				}
			}
			if inRole && t.Name.Local == "AttributeValue" {
				inValue = true
				text.Reset()
			}
		case xml.CharData:
			if inValue {
				text.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "AttributeValue":
				if inValue {
					inValue = false
					a, b, ok := strings.Cut(strings.TrimSpace(text.String()), ",")
					if ok && strings.TrimSpace(a) == roleARN {
						return strings.TrimSpace(b), nil
					}
					if ok && strings.TrimSpace(b) == roleARN {
						return strings.TrimSpace(a), nil
					}
				}
			case "Attribute":
				inRole = false
			}
		}
	}
	return "", fmt.Errorf("token exchange: the SAML response carries no Role value for %s", roleARN)
}
