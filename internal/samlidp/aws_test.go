package samlidp

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
)

// parsed is a response as a relying party sees it.
type parsed struct {
	raw       string
	doc       *etree.Document
	resp, asr *etree.Element
}

func parseResponse(t testing.TB, b64 string) parsed {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("base64: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatalf("xml: %v", err)
	}
	resp := doc.Root()
	if resp.Tag != "Response" || resp.NamespaceURI() != nsSAMLP {
		t.Fatalf("root %s", resp.FullTag())
	}
	asrs := children(resp, nsSAML, "Assertion")
	if len(asrs) != 1 {
		t.Fatalf("%d assertions", len(asrs))
	}
	return parsed{raw: string(raw), doc: doc, resp: resp, asr: asrs[0]}
}

func children(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

func child(t testing.TB, el *etree.Element, ns, tag string) *etree.Element {
	t.Helper()
	cs := children(el, ns, tag)
	if len(cs) != 1 {
		t.Fatalf("%s: %d %s children, want 1", el.Tag, len(cs), tag)
	}
	return cs[0]
}

func attrTime(t testing.TB, el *etree.Element, name string) time.Time {
	t.Helper()
	v := el.SelectAttrValue(name, "")
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("%s@%s = %q: %v", el.Tag, name, v, err)
	}
	return tm
}

// attributes returns the AttributeStatement as name -> values, failing on
// a repeated Attribute (item 10: one Attribute, many values).
func attributes(t testing.TB, asr *etree.Element) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, st := range children(asr, nsSAML, "AttributeStatement") {
		for _, a := range children(st, nsSAML, "Attribute") {
			name := a.SelectAttrValue("Name", "")
			if _, dup := out[name]; dup {
				t.Fatalf("attribute %s repeated", name)
			}
			var vals []string
			for _, v := range children(a, nsSAML, "AttributeValue") {
				vals = append(vals, v.Text())
			}
			out[name] = vals
		}
	}
	return out
}

var sessionNameRE = regexp.MustCompile(`^[a-zA-Z_0-9+=,.@-]{2,64}$`)

// checkSignature checks the enveloped signature of el (item 17): RSA-SHA256,
// exclusive C14N, enveloped + exc-c14n transforms, SHA-256 digest, a
// Reference to el's ID, the certificate in KeyInfo, placed after Issuer;
// and verifies it with goxmldsig against cert (xmlsec1 and pysaml2 check
// it again in their own tests).
func checkSignature(t testing.TB, el *etree.Element, certDER []byte) {
	t.Helper()
	sig := child(t, el, nsDS, "Signature")
	if idx := sig.Index(); el.ChildElements()[1] != sig {
		t.Errorf("%s: Signature at child %d, want right after Issuer", el.Tag, idx)
	}
	si := child(t, sig, nsDS, "SignedInfo")
	if got := child(t, si, nsDS, "CanonicalizationMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/10/xml-exc-c14n#" {
		t.Errorf("c14n %s", got)
	}
	if got := child(t, si, nsDS, "SignatureMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" {
		t.Errorf("signature method %s", got)
	}
	ref := child(t, si, nsDS, "Reference")
	if got, want := ref.SelectAttrValue("URI", ""), "#"+el.SelectAttrValue("ID", "?"); got != want {
		t.Errorf("reference %s, want %s", got, want)
	}
	var tr []string
	for _, x := range children(child(t, ref, nsDS, "Transforms"), nsDS, "Transform") {
		tr = append(tr, x.SelectAttrValue("Algorithm", ""))
	}
	if strings.Join(tr, " ") != "http://www.w3.org/2000/09/xmldsig#enveloped-signature http://www.w3.org/2001/10/xml-exc-c14n#" {
		t.Errorf("transforms %v", tr)
	}
	if got := child(t, ref, nsDS, "DigestMethod").SelectAttrValue("Algorithm", ""); got != "http://www.w3.org/2001/04/xmlenc#sha256" {
		t.Errorf("digest %s", got)
	}
	x509 := child(t, child(t, child(t, sig, nsDS, "KeyInfo"), nsDS, "X509Data"), nsDS, "X509Certificate")
	if x509.Text() != base64.StdEncoding.EncodeToString(certDER) {
		t.Error("KeyInfo certificate is not the current signing certificate")
	}
}

type awsCase struct {
	name                string
	partition, region   string
	signResponse        bool
	user, role, relay   string
	wantACS, wantEntity string
	wantSeconds         int
}

// TestAWSRules checks every rule of aws-federation-rules.md section A
// that can be checked offline on IdP-initiated responses the code made.
func TestAWSRules(t *testing.T) {
	cases := []awsCase{
		{name: "global", partition: "aws", user: "alice", role: "arn:aws:iam::111122223333:role/AdministratorAccess",
			wantACS: "https://signin.aws.amazon.com/saml", wantEntity: "urn:amazon:webservices", wantSeconds: 7200},
		{name: "global_sign_response", partition: "aws", signResponse: true, user: "bob", role: "arn:aws:iam::111122223333:role/ReadOnly",
			relay: "https://console.aws.amazon.com/cloudwatch/home", wantACS: "https://signin.aws.amazon.com/saml",
			wantEntity: "urn:amazon:webservices", wantSeconds: 3600},
		{name: "us-east-1_is_global", partition: "aws", region: "us-east-1", user: "alice", role: "arn:aws:iam::444455556666:role/AdministratorAccess",
			wantACS: "https://signin.aws.amazon.com/saml", wantEntity: "urn:amazon:webservices", wantSeconds: 14400},
		{name: "regional", partition: "aws", region: "us-west-2", user: "bob", role: "arn:aws:iam::111122223333:role/ReadOnly",
			relay: "https://us-west-2.console.aws.amazon.com/ec2/home?region=us-west-2", wantACS: "https://us-west-2.signin.aws.amazon.com/saml",
			wantEntity: "urn:amazon:webservices", wantSeconds: 3600},
		{name: "govcloud", partition: "aws-us-gov", user: "alice", role: "arn:aws-us-gov:iam::777788889999:role/AdministratorAccess",
			relay: "https://console.amazonaws-us-gov.com/", wantACS: "https://signin.amazonaws-us-gov.com/saml",
			wantEntity: "urn:amazon:webservices:govcloud", wantSeconds: 3600},
		{name: "default_duration", partition: "aws", user: "jürgen", role: "arn:aws:iam::111122223333:role/ReadOnly",
			wantACS: "https://signin.aws.amazon.com/saml", wantEntity: "urn:amazon:webservices", wantSeconds: 3600},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config, _ *Deps) {
				c.AWS = AWSConfig{Partition: tc.partition, Region: tc.region, SignResponse: tc.signResponse}
			})
			grant := grantOf(t, f.rules, tc.user, tc.role)
			post, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers[tc.user], f.password(), grant, tc.relay)
			if err != nil {
				t.Fatalf("AWSConsole: %v", err)
			}
			checkAWSResponse(t, f, tc, post)
		})
	}
}

func checkAWSResponse(t *testing.T, f *fixture, tc awsCase, post Post) {
	t.Helper()
	now := f.clock.Now()
	user := testUsers[tc.user]
	// Items 1-2: the ACS of the partition and region; never a us-east-1. host.
	if post.URL != tc.wantACS || strings.Contains(post.URL, "us-east-1.") {
		t.Errorf("post URL %s, want %s", post.URL, tc.wantACS)
	}
	if post.RelayState != tc.relay {
		t.Errorf("relay state %q", post.RelayState)
	}
	// Item 20.
	if len(post.SAMLResponse) > 100_000 || len(post.SAMLResponse) < 4 {
		t.Errorf("base64 of %d characters", len(post.SAMLResponse))
	}
	p := parseResponse(t, post.SAMLResponse)
	if strings.HasPrefix(p.raw, "\ufeff") {
		t.Error("byte order mark")
	}
	// Item 5: Destination.
	if got := p.resp.SelectAttrValue("Destination", ""); got != tc.wantACS {
		t.Errorf("Destination %s", got)
	}
	if p.resp.SelectAttrValue("Version", "") != "2.0" || p.resp.SelectAttrValue("InResponseTo", "") != "" {
		t.Error("Version or InResponseTo (unsolicited)")
	}
	st := child(t, child(t, p.resp, nsSAMLP, "Status"), nsSAMLP, "StatusCode")
	if st.SelectAttrValue("Value", "") != "urn:oasis:names:tc:SAML:2.0:status:Success" {
		t.Errorf("status %s", st.SelectAttrValue("Value", ""))
	}
	// Item 8: Issuer = the metadata's entityID, on Response and Assertion.
	for _, el := range []*etree.Element{p.resp, p.asr} {
		if got := child(t, el, nsSAML, "Issuer").Text(); got != f.idp.EntityID() || got != testPublicURL+"/saml/metadata" {
			t.Errorf("%s Issuer %s", el.Tag, got)
		}
	}
	// Item 7: NameID present, persistent, opaque, stable, per user.
	subj := child(t, p.asr, nsSAML, "Subject")
	nid := child(t, subj, nsSAML, "NameID")
	if nid.SelectAttrValue("Format", "") != "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" {
		t.Errorf("NameID format %s", nid.SelectAttrValue("Format", ""))
	}
	if v := nid.Text(); v == "" || strings.Contains(strings.ToLower(v), strings.ToLower(user.Username)) ||
		strings.Contains(v, user.ID) || v != f.idp.persistentID(tc.wantEntity, user) {
		t.Errorf("NameID %q not the opaque persistent ID", v)
	}
	// Item 4: exactly one bearer SubjectConfirmation, Recipient = ACS, NotOnOrAfter.
	scs := children(subj, nsSAML, "SubjectConfirmation")
	if len(scs) != 1 || scs[0].SelectAttrValue("Method", "") != "urn:oasis:names:tc:SAML:2.0:cm:bearer" {
		t.Fatalf("%d subject confirmations", len(scs))
	}
	scd := child(t, scs[0], nsSAML, "SubjectConfirmationData")
	if got := scd.SelectAttrValue("Recipient", ""); got != tc.wantACS {
		t.Errorf("Recipient %s", got)
	}
	if end := attrTime(t, scd, "NotOnOrAfter"); !end.After(now) || end.After(now.Add(15*time.Minute)) {
		t.Errorf("SubjectConfirmationData NotOnOrAfter %v (now %v)", end, now)
	}
	// Item 6: Audience.
	cond := child(t, p.asr, nsSAML, "Conditions")
	ars := children(cond, nsSAML, "AudienceRestriction")
	if len(ars) != 1 {
		t.Fatalf("%d AudienceRestrictions, want 1 (several must all hold)", len(ars))
	}
	var auds []string
	for _, a := range children(ars[0], nsSAML, "Audience") {
		auds = append(auds, a.Text())
	}
	if len(auds) == 0 || auds[0] != tc.wantEntity {
		t.Errorf("audiences %v, want %s first", auds, tc.wantEntity)
	}
	if nb, end := attrTime(t, cond, "NotBefore"), attrTime(t, cond, "NotOnOrAfter"); nb.After(now) || !end.After(now) {
		t.Errorf("Conditions %v..%v, now %v", nb, end, now)
	}
	attrs := attributes(t, p.asr)
	// Items 9-10: one Role attribute, "roleArn,providerArn", no spaces.
	roles := attrs[AttrRole]
	wantRole := tc.role + "," + grantOf(t, f.rules, tc.user, tc.role).ProviderARN
	if len(roles) != 1 || roles[0] != wantRole || strings.ContainsAny(roles[0], " \t\n") {
		t.Errorf("roles %q, want [%s]", roles, wantRole)
	}
	part := strings.Split(roles[0], ",")
	if _, err := awsfed.ParseRoleARN(part[0]); err != nil || !strings.Contains(part[1], ":saml-provider/") {
		t.Errorf("role value %q: %v", roles[0], err)
	}
	// Item 11.
	if v := attrs[AttrRoleSessionName]; len(v) != 1 || !sessionNameRE.MatchString(v[0]) {
		t.Errorf("RoleSessionName %q", v)
	}
	// Item 12: SessionDuration and SessionNotOnOrAfter consistent.
	d := attrs[AttrSessionDuration]
	secs, err := strconv.Atoi(strings.Join(d, ""))
	if len(d) != 1 || err != nil || secs != tc.wantSeconds || secs < 900 || secs > 43200 {
		t.Errorf("SessionDuration %q, want %d", d, tc.wantSeconds)
	}
	as := child(t, p.asr, nsSAML, "AuthnStatement")
	issued := attrTime(t, p.asr, "IssueInstant")
	if got := attrTime(t, as, "SessionNotOnOrAfter").Sub(issued); got != time.Duration(secs)*time.Second {
		t.Errorf("SessionNotOnOrAfter - IssueInstant = %v, want %ds", got, secs)
	}
	// Items 13-15: tags and source identity.
	tags := 0
	for name, v := range attrs {
		key, ok := strings.CutPrefix(name, AttrPrincipalTag)
		if !ok {
			continue
		}
		tags++
		if len(v) != 1 || awsfed.ValidTagKey(key) != nil || awsfed.ValidTagValue(v[0]) != nil {
			t.Errorf("tag %s = %q", key, v)
		}
	}
	if tags > 50 {
		t.Errorf("%d tags", tags)
	}
	if user.Email != "" {
		if v := attrs[AttrPrincipalTag+"email"]; len(v) != 1 || v[0] != user.Email {
			t.Errorf("email tag %q", v)
		}
	}
	if dep := user.Attributes["department"]; len(dep) > 0 {
		if v := attrs[AttrPrincipalTag+"department"]; len(v) != 1 || v[0] != dep[0] {
			t.Errorf("department tag %q", v)
		}
		if v := attrs[AttrTransitiveTagKeys]; len(v) != 1 || v[0] != "department" {
			t.Errorf("TransitiveTagKeys %q", v)
		}
	}
	wantSI := f.rules.Load().Evaluate(rolemap.InputFromUser(user)).SourceIdentity
	if v := attrs[AttrSourceIdentity]; wantSI == "" && v != nil || wantSI != "" && (len(v) != 1 || v[0] != wantSI || awsfed.ValidSourceIdentity(v[0]) != nil) {
		t.Errorf("SourceIdentity %q, want %q", v, wantSI)
	}
	// Item 16: NameFormat, when present, is uri or basic.
	for _, st := range children(p.asr, nsSAML, "AttributeStatement") {
		for _, a := range children(st, nsSAML, "Attribute") {
			switch a.SelectAttrValue("NameFormat", "") {
			case "", attrFormatURI, attrFormatBasic:
			default:
				t.Errorf("NameFormat %s", a.SelectAttrValue("NameFormat", ""))
			}
		}
	}
	// Item 17: the Assertion signed (and the Response when configured).
	cert := f.ring.Current().Cert
	checkSignature(t, p.asr, cert.Raw)
	if tc.signResponse {
		checkSignature(t, p.resp, cert.Raw)
	} else if len(children(p.resp, nsDS, "Signature")) != 0 {
		t.Error("Response signed though sign_response is off")
	}
	verifyDsig(t, p.raw, cert.Raw, tc.signResponse)
}

// verifyDsig verifies the signatures with goxmldsig's validator.
func verifyDsig(t testing.TB, raw string, certDER []byte, response bool) {
	t.Helper()
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vc.Clock = dsig.NewFakeClockAt(fixedTime)
	doc := etree.NewDocument()
	if err := doc.ReadFromString(raw); err != nil {
		t.Fatal(err)
	}
	if response {
		if _, err := vc.Validate(doc.Root()); err != nil {
			t.Errorf("response signature: %v", err)
		}
	}
	asr := children(doc.Root(), nsSAML, "Assertion")[0]
	if _, err := vc.Validate(asr); err != nil {
		t.Errorf("assertion signature: %v", err)
	}
}

// TestAWSConsoleRefuses: RelayState other than an AWS console URL of the
// partition, and a role of another partition.
func TestAWSConsoleRefuses(t *testing.T) {
	f := newFixture(t)
	g := grantOf(t, f.rules, "bob", "arn:aws:iam::111122223333:role/ReadOnly")
	for _, rs := range []string{"https://evil.example.com/", "http://console.aws.amazon.com/", "https://console.amazonaws.cn/",
		"https://x@console.aws.amazon.com/", "javascript:alert(1)"} {
		if _, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["bob"], f.password(), g, rs); !errors.Is(err, ErrBadRelayState) {
			t.Errorf("relay state %q: %v, want ErrBadRelayState", rs, err)
		}
	}
	gov := grantOf(t, f.rules, "alice", "arn:aws-us-gov:iam::777788889999:role/AdministratorAccess")
	if _, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["alice"], f.password(), gov, ""); err == nil {
		t.Error("a GovCloud role sent to the aws partition's sign-in")
	}
}

func TestRoleSessionName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice", "alice"}, {"jürgen", "jurgen"}, {"Jürgen Müller", "Jurgen-Muller"},
		{"pat O'Connor, Jr. (ext*)", "pat-O-Connor,-Jr.-ext-"}, {"a@b.example", "a@b.example"},
		{strings.Repeat("y", 80), strings.Repeat("y", 64)}, {"日本", "-"}, {"", ""},
		{"x", "x"}, {"a  b", "a-b"}, {"ok+=,.@_-", "ok+=,.@_-"},
	} {
		got, changed := ReduceSessionName(c.in)
		if got != c.want || changed != (got != c.in) {
			t.Errorf("ReduceSessionName(%q) = %q, %v; want %q", c.in, got, changed, c.want)
		}
		if len(got) >= 2 && !sessionNameRE.MatchString(got) {
			t.Errorf("%q reduced to %q, not AWS's alphabet", c.in, got)
		}
	}
	f := newFixture(t)
	g := grantOf(t, f.rules, "x", "arn:aws:iam::111122223333:role/ReadOnly")
	if _, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["x"], f.password(), g, ""); !errors.Is(err, ErrSessionName) {
		t.Errorf("one-character user name: %v, want ErrSessionName", err)
	}
	g = grantOf(t, f.rules, "jürgen", "arn:aws:iam::111122223333:role/ReadOnly")
	if _, err := f.idp.AWSConsoleAuthn(context.Background(), testUsers["jürgen"], f.password(), g, ""); err != nil {
		t.Fatal(err)
	}
	if !f.audit.has("saml.session_name_reduced reduced jürgen") {
		t.Errorf("reduced name not audited: %v", f.audit.events)
	}
}

func TestNameIDStableAndPairwise(t *testing.T) {
	f := newFixture(t)
	a1 := f.idp.persistentID("urn:amazon:webservices", testUsers["alice"])
	renamed := testUsers["alice"]
	renamed.Username = "alice.anderson"
	if a1 != f.idp.persistentID("urn:amazon:webservices", renamed) {
		t.Error("NameID changes with the username")
	}
	if a1 == f.idp.persistentID("urn:amazon:webservices", testUsers["bob"]) {
		t.Error("two users, one NameID")
	}
	if a1 == f.idp.persistentID("https://sp.example.org", testUsers["alice"]) {
		t.Error("one NameID for two SPs")
	}
}
