package samlidp

import (
	"context"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// fakeElevations grants nothing new: it marks the user's first role as
// elevated with a few minutes left, as elevation.Service.Apply does for
// an active window, and names it in a tag.
type fakeElevations struct{ secs int }

func (f fakeElevations) Apply(_ context.Context, _ identity.User, res *rolemap.Result) error {
	if len(res.Grants) > 0 {
		res.Grants[0].SessionSeconds = f.secs
		res.Grants[0].Elevation = &rolemap.Elevated{ID: "0123456789abcdef0123456789abcdef", EndsAt: time.Now().Add(time.Duration(f.secs) * time.Second)}
	}
	return nil
}

func (fakeElevations) Tags(grants []rolemap.Grant) []rolemap.Tag {
	for _, g := range grants {
		if g.Elevation != nil {
			return []rolemap.Tag{{Key: "WardenElevation", Value: g.Elevation.ID}}
		}
	}
	return nil
}

// An SP-initiated AWS response carries every role with one
// SessionDuration: with an elevated role among them, it ends with the
// elevation's window, and the elevation tag names the request.
func TestAWSSPInitiatedElevated(t *testing.T) {
	e := newE2E(t, e2eOpts{deps: func(d *Deps) { d.Elevations = fakeElevations{secs: 1234} }})
	const acs = "https://signin.aws.amazon.com/saml"
	sso := e.idpURL + "/saml/sso"
	b := browser(t)
	signInDirect(t, b, e.idpURL, "alice")
	resp, err := b.Get(redirectURL(t, e.idpURL, authnXML("urn:amazon:webservices", "_aws-elev", time.Now(), acs, sso, ""), ""))
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	_, fields := formOf(t, page)
	p := parseResponse(t, fields.Get("SAMLResponse"))
	attrs := attributes(t, p.asr)
	if len(attrs[AttrRole]) != 2 {
		t.Fatalf("%d roles, want 2", len(attrs[AttrRole]))
	}
	if d := attrs[AttrSessionDuration]; len(d) != 1 || d[0] != "1234" {
		t.Errorf("SessionDuration %v, want 1234 (the elevation's time left)", d)
	}
	tags, _ := tagsOf(t, p)
	if v := tags["WardenElevation"]; len(v) != 1 || v[0] != "0123456789abcdef0123456789abcdef" {
		t.Errorf("WardenElevation %v", v)
	}
}
