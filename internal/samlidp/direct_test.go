package samlidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// TestDirectMatchesEtree: the direct writer (direct.go) makes the bytes
// that the etree path makes, signature included, for every kind of
// response the AWS preset sends; and what it does not know how to write
// (markup characters, typed values, a signed Response) goes the etree way.
// Two fixtures with the same seed draw the same IDs; one of them is held to
// the etree path.
func TestDirectMatchesEtree(t *testing.T) {
	type tc struct {
		name  string
		user  string
		role  string
		relay string
		authn identity.Authn
	}
	cases := []tc{
		{"admin", "alice", "arn:aws:iam::111122223333:role/AdministratorAccess", "", identity.Authn{}},
		{"relay", "bob", roleReadOnly, "https://console.aws.amazon.com/s3/", identity.Authn{}},
		{"mfa", "mia", roleMFA, "", totpAt(fixedTime.Add(-20 * time.Minute))},
		{"utf-8 name", "jürgen", roleReadOnly, "", identity.Authn{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct, etree := newFixture(t), newFixture(t)
			etree.idp.etreeOnly = true
			user := testUsers[c.user]
			if _, ok := testUsers[c.user]; !ok {
				t.Fatalf("no user %s", c.user)
			}
			grant, ok := findGrant(direct, user, c.role)
			if !ok {
				t.Fatalf("%s holds no %s under the test rules", c.user, c.role)
			}
			if direct.idp.sig.Load().direct == nil {
				t.Fatal("no direct writer for the test key")
			}
			a, err := direct.idp.AWSConsoleAuthn(context.Background(), user, c.authn, grant, c.relay)
			if err != nil {
				t.Fatal(err)
			}
			b, err := etree.idp.AWSConsoleAuthn(context.Background(), user, c.authn, grant, c.relay)
			if err != nil {
				t.Fatal(err)
			}
			if a.SAMLResponse != b.SAMLResponse {
				da, _ := base64.StdEncoding.DecodeString(a.SAMLResponse)
				db, _ := base64.StdEncoding.DecodeString(b.SAMLResponse)
				t.Errorf("direct and etree responses differ:\n%s\n%s", da, db)
			}
		})
	}

	// Assertions built by hand, through buildResponse: the direct writer
	// takes the plain ones and leaves the rest to etree; both paths agree.
	now := fixedTime
	mk := func(f *fixture, mod func(*saml.Assertion)) *saml.Assertion {
		end := now.Add(time.Hour)
		a, err := f.idp.assertion(&saml.NameID{Format: nameIDFormatPersistent, Value: "abc_-"}, []string{"urn:amazon:webservices", "https://signin.aws.amazon.com/saml"},
			"https://signin.aws.amazon.com/saml", "_req-1", totpAt(now.Add(-time.Minute)), &end,
			[]saml.Attribute{{Name: AttrRole, NameFormat: attrFormatURI, Values: []saml.AttributeValue{val("a,b"), val("c,d")}},
				{FriendlyName: "mail", Name: "urn:oid:0.9.2342.19200300.100.1.3", Values: []saml.AttributeValue{val("m@example.org"), val("")}}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(a)
		}
		return a
	}
	for _, c := range []struct {
		name   string
		mod    func(*saml.Assertion)
		dest   string
		direct bool
	}{
		{"sp-initiated", nil, "https://signin.aws.amazon.com/saml", true},
		{"no session end, no audiences", func(a *saml.Assertion) {
			a.AuthnStatements[0].SessionNotOnOrAfter = nil
			a.Conditions.AudienceRestrictions = nil
		}, "https://signin.aws.amazon.com/saml", true},
		{"no attributes", func(a *saml.Assertion) { a.AttributeStatements[0].Attributes = nil }, "", true},
		{"no subject confirmation data", func(a *saml.Assertion) { a.Subject.SubjectConfirmations[0].SubjectConfirmationData = nil }, "https://x", true},
		{"ampersand", func(a *saml.Assertion) { a.AttributeStatements[0].Attributes[1].Values[0].Value = "Q&A <team>" }, "https://x", false},
		{"quote in destination", nil, `https://x/?a="b"`, false},
		{"typed value", func(a *saml.Assertion) { a.AttributeStatements[0].Attributes[1].Values[0].Type = "xs:string" }, "https://x", false},
		{"newline", func(a *saml.Assertion) { a.Subject.NameID.Value = "a\nb" }, "https://x", false},
		{"bad utf-8", func(a *saml.Assertion) { a.Subject.NameID.Value = "a\xffb" }, "https://x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fd, fe := newFixture(t), newFixture(t)
			fe.idp.etreeOnly = true
			ad, ae := mk(fd, c.mod), mk(fe, c.mod)
			if got := directOK(ad, fd.idp.entityID, c.dest, "_req-1"); got != c.direct {
				t.Errorf("directOK = %v, want %v", got, c.direct)
			}
			d, err := fd.idp.buildResponse(ad, c.dest, "_req-1", false, now)
			if err != nil {
				t.Fatal(err)
			}
			e, err := fe.idp.buildResponse(ae, c.dest, "_req-1", false, now)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.XML, e.XML) || d.Base64 != e.Base64 {
				t.Errorf("direct and etree differ:\n%s\n%s", d.XML, e.XML)
			}
		})
	}
}

// findGrant is grantOf without failing.
func findGrant(f *fixture, u identity.User, role string) (g rolemap.Grant, ok bool) {
	for _, g := range f.idp.evaluate(u).Grants {
		if g.RoleARN == role {
			return g, true
		}
	}
	return g, false
}
