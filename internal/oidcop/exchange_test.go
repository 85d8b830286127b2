package oidcop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/samlidp"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/testenv"
)

const (
	nsSAML  = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
)

var sessionNameRE = regexp.MustCompile(`^[a-zA-Z_0-9+=,.@-]{2,64}$`)

func xChild(t testing.TB, el *etree.Element, ns, tag string) *etree.Element {
	t.Helper()
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			return c
		}
	}
	t.Fatalf("%s has no %s", el.Tag, tag)
	return nil
}

func xChildren(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if c.Tag == tag && c.NamespaceURI() == ns {
			out = append(out, c)
		}
	}
	return out
}

// checkSTSResponse checks the SAML token against aws-federation-rules.md
// items 4–9, 11–12 and 20 for role with sessionSeconds, parsing the XML
// itself (independently of samlidp), and verifies the assertion's
// signature with xmlsec1 against the ring's current certificate.
func checkSTSResponse(t *testing.T, f *xFixture, b64, role string, sessionSeconds int, user identity.User) {
	t.Helper()
	const acs = "https://signin.aws.amazon.com/saml"
	if len(b64) < 4 || len(b64) > 100_000 { // item 20
		t.Fatalf("base64 of %d characters", len(b64))
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	resp := doc.Root()
	if resp.Tag != "Response" || resp.NamespaceURI() != nsSAMLP {
		t.Fatalf("root %s", resp.Tag)
	}
	if got := resp.SelectAttrValue("Destination", ""); got != acs { // item 5
		t.Errorf("Destination %q", got)
	}
	asrs := xChildren(resp, nsSAML, "Assertion")
	if len(asrs) != 1 {
		t.Fatalf("%d assertions", len(asrs))
	}
	asr := asrs[0]
	now := time.Now()
	if f.now != (time.Time{}) {
		now = f.now
	}
	// Item 8: Issuer = the entity ID of the metadata.
	if got := xChild(t, asr, nsSAML, "Issuer").Text(); got != f.idp.EntityID() || got != xIssuer+"/saml/metadata" {
		t.Errorf("Issuer %q", got)
	}
	// Item 7: a persistent NameID, not the username.
	subj := xChild(t, asr, nsSAML, "Subject")
	nid := xChild(t, subj, nsSAML, "NameID")
	if nid.SelectAttrValue("Format", "") != "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" || len(nid.Text()) < 16 ||
		strings.Contains(nid.Text(), user.Username) || strings.Contains(nid.Text(), user.ID) {
		t.Errorf("NameID %q (%s)", nid.Text(), nid.SelectAttrValue("Format", ""))
	}
	// Item 4: one bearer confirmation, Recipient = ACS, NotOnOrAfter soon.
	scs := xChildren(subj, nsSAML, "SubjectConfirmation")
	if len(scs) != 1 || scs[0].SelectAttrValue("Method", "") != "urn:oasis:names:tc:SAML:2.0:cm:bearer" {
		t.Fatalf("%d subject confirmations", len(scs))
	}
	scd := xChild(t, scs[0], nsSAML, "SubjectConfirmationData")
	if scd.SelectAttrValue("Recipient", "") != acs {
		t.Errorf("Recipient %q", scd.SelectAttrValue("Recipient", ""))
	}
	end, err := time.Parse(time.RFC3339Nano, scd.SelectAttrValue("NotOnOrAfter", ""))
	if err != nil || !end.After(now) || end.After(now.Add(5*time.Minute+time.Second)) {
		t.Errorf("NotOnOrAfter %v (now %v): %v", end, now, err)
	}
	// Item 6: Audience urn:amazon:webservices.
	cond := xChild(t, asr, nsSAML, "Conditions")
	ar := xChildren(cond, nsSAML, "AudienceRestriction")
	if len(ar) != 1 || xChild(t, ar[0], nsSAML, "Audience").Text() != "urn:amazon:webservices" {
		t.Errorf("audience restriction %d", len(ar))
	}
	attrs := map[string][]string{}
	for _, st := range xChildren(asr, nsSAML, "AttributeStatement") {
		for _, a := range xChildren(st, nsSAML, "Attribute") {
			for _, v := range xChildren(a, nsSAML, "AttributeValue") {
				attrs[a.SelectAttrValue("Name", "")] = append(attrs[a.SelectAttrValue("Name", "")], v.Text())
			}
		}
	}
	// Item 9: exactly that role, with its provider.
	acct, _ := awsfed.ParseRoleARN(role)
	wantRole := role + ",arn:" + acct.Partition + ":iam::" + acct.Account + ":saml-provider/warden"
	if got := attrs[samlidp.AttrRole]; len(got) != 1 || got[0] != wantRole {
		t.Errorf("Role %q, want [%s]", got, wantRole)
	}
	// Item 11.
	if got := attrs[samlidp.AttrRoleSessionName]; len(got) != 1 || !sessionNameRE.MatchString(got[0]) {
		t.Errorf("RoleSessionName %q", got)
	}
	// Item 12: the grant's SessionDuration.
	if got := attrs[samlidp.AttrSessionDuration]; len(got) != 1 || got[0] != strconv.Itoa(sessionSeconds) {
		t.Errorf("SessionDuration %q, want %d", got, sessionSeconds)
	}
	// Item 17, independently: xmlsec1 with the published certificate only.
	xmlsec := testenv.Binary(t, "xmlsec1")
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	file := filepath.Join(dir, "resp.xml")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ring.Current().Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func(doc []byte) error {
		if err := os.WriteFile(file, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmlsec, "--verify", "--enabled-key-data", "rsa", "--pubkey-cert-pem", cert,
			"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
			"--node-xpath", "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']", file).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := verify(raw); err != nil {
		t.Fatalf("xmlsec1: %v", err)
	}
	tampered := strings.Replace(string(raw), role+",", strings.Replace(role, acct.Name, "Admin", 1)+",", 1)
	if tampered == string(raw) {
		t.Fatal("nothing to tamper with")
	}
	if err := verify([]byte(tampered)); err == nil {
		t.Error("xmlsec1 verified an assertion whose role was changed")
	}
}

func TestExchangeSAML(t *testing.T) {
	f := newXFixture(t)
	bob := f.dir.users["bob"]
	r := f.post(t, xForm("tok-bob", TokenTypeSAML2, xProdRO))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.ok.IssuedTokenType != TokenTypeSAML2 || r.ok.TokenType != "N_A" || r.ok.ExpiresIn < 1 || r.ok.ExpiresIn > 300 {
		t.Errorf("response %+v", r.ok)
	}
	if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("headers %v", r.header)
	}
	checkSTSResponse(t, f, r.ok.AccessToken, xProdRO, 7200, bob)
	ev, ok := f.audit.find("token.exchange", "success", xProdRO)
	if !ok || ev.Actor != "bob" || ev.Detail["requested_token_type"] != TokenTypeSAML2 || ev.Detail["assertion_id"] == "" {
		t.Errorf("audit %+v (%v)", ev, f.audit.events)
	}
	// Absent requested_token_type means saml2; the 900 s role keeps its duration.
	r = f.post(t, xForm("tok-bob", "", xStaging))
	if r.status != http.StatusOK || r.ok.IssuedTokenType != TokenTypeSAML2 {
		t.Fatalf("default type: %d %s", r.status, r.raw)
	}
	checkSTSResponse(t, f, r.ok.AccessToken, xStaging, 900, bob)
}

// xVerifier is a go-oidc verifier for the STS audience over a JWKS server
// of the ring's published keys.
func xVerifier(t *testing.T, f *xFixture, now func() time.Time) *oidc.IDTokenVerifier {
	t.Helper()
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.ring.JWKS())
	}))
	t.Cleanup(jwks.Close)
	ks := oidc.NewRemoteKeySet(context.Background(), jwks.URL)
	return oidc.NewVerifier(xIssuer, ks, &oidc.Config{ClientID: awsfed.DefaultSTSAudience, Now: now,
		SupportedSigningAlgs: []string{oidc.RS256}})
}

// checkWebIdentityToken checks items 30 and 32–35 on the raw claims.
func checkWebIdentityToken(t *testing.T, tok string, user identity.User, role awsfed.RoleARN, now time.Time) map[string]any {
	t.Helper()
	if len(tok) < 4 || len(tok) > 20000 { // item 30
		t.Errorf("token of %d characters", len(tok))
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var head map[string]any
	if err := json.Unmarshal(hb, &head); err != nil || head["alg"] != "RS256" || head["kid"] == "" { // items 30, and AWS needs RSA
		t.Errorf("header %s: %v", hb, err)
	}
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	dec := json.NewDecoder(strings.NewReader(string(pb)))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	ints := map[string]int64{}
	for _, k := range []string{"exp", "iat", "nbf"} { // item 30: integers
		n, ok := c[k].(json.Number)
		v, err := n.Int64()
		if !ok || err != nil || strings.ContainsAny(n.String(), ".eE") {
			t.Errorf("%s = %v is not an integer", k, c[k])
		}
		ints[k] = v
	}
	if c["iss"] != xIssuer { // item 28: exactly
		t.Errorf("iss %v", c["iss"])
	}
	if c["aud"] != awsfed.DefaultSTSAudience { // item 32
		t.Errorf("aud %v", c["aud"])
	}
	if _, ok := c["azp"]; ok {
		t.Errorf("azp present: %v", c["azp"])
	}
	if ints["exp"] <= now.Unix() || ints["exp"] > now.Add(5*time.Minute).Unix() || ints["exp"]-ints["iat"] > 300 || ints["nbf"] > now.Unix() { // item 33
		t.Errorf("exp %d iat %d nbf %d, now %d", ints["exp"], ints["iat"], ints["nbf"], now.Unix())
	}
	sub, _ := c["sub"].(string) // item 34
	if len(sub) < 6 || len(sub) > 255 || strings.Contains(sub, user.Username) || strings.Contains(sub, user.ID) || (user.Email != "" && strings.Contains(sub, user.Email)) {
		t.Errorf("sub %q", sub)
	}
	tags, ok := c[TagsClaim].(map[string]any) // item 35
	if !ok {
		t.Fatalf("no %s claim: %s", TagsClaim, pb)
	}
	pt, ok := tags["principal_tags"].(map[string]any)
	if !ok || len(pt) > 50 {
		t.Fatalf("principal_tags %v", tags["principal_tags"])
	}
	got := map[string]string{}
	for k, v := range pt {
		arr, ok := v.([]any)
		if !ok || len(arr) != 1 {
			t.Errorf("tag %s = %v is not an array of one string", k, v)
			continue
		}
		s, ok := arr[0].(string)
		if !ok || awsfed.ValidTagKey(k) != nil || awsfed.ValidTagValue(s) != nil {
			t.Errorf("tag %s = %v", k, v)
		}
		got[k] = s
	}
	if got[awsfed.TagRole] != role.Name || got[awsfed.TagAccount] != role.Account {
		t.Errorf("role tags %v, want %s/%s", got, role.Account, role.Name)
	}
	if tk, ok := tags["transitive_tag_keys"]; ok {
		for _, k := range tk.([]any) {
			if _, ok := got[k.(string)]; !ok {
				t.Errorf("transitive key %v is not a principal tag", k)
			}
		}
	}
	return c
}

func TestExchangeIDToken(t *testing.T) {
	f := newXFixture(t)
	bob := f.dir.users["bob"]
	r := f.post(t, xForm("tok-bob", TokenTypeIDToken, xProdRO))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.ok.IssuedTokenType != TokenTypeIDToken || r.ok.TokenType != "N_A" || r.ok.ExpiresIn != 300 {
		t.Errorf("response %+v", r.ok)
	}
	now := time.Now()
	v := xVerifier(t, f, time.Now)
	idt, err := v.Verify(context.Background(), r.ok.AccessToken)
	if err != nil {
		t.Fatalf("go-oidc: %v", err)
	}
	if idt.Issuer != xIssuer || len(idt.Audience) != 1 || idt.Audience[0] != "sts.amazonaws.com" {
		t.Errorf("token %+v", idt)
	}
	role, _ := awsfed.ParseRoleARN(xProdRO)
	c := checkWebIdentityToken(t, r.ok.AccessToken, bob, role, now)
	pt := c[TagsClaim].(map[string]any)["principal_tags"].(map[string]any)
	if fmt.Sprint(pt["email"]) != "[bob@example.org]" || fmt.Sprint(pt["department"]) != "[Apps]" ||
		fmt.Sprint(c[TagsClaim].(map[string]any)["transitive_tag_keys"]) != "[department]" {
		t.Errorf("user tags %v", c[TagsClaim])
	}
	if c[ClaimAWSSourceIdentity] != "bob" {
		t.Errorf("source identity %v", c[ClaimAWSSourceIdentity])
	}
	if c["sub"] != f.x.deps.Subjects.Subject(bob) {
		t.Errorf("sub %v is not the Provider's subject", c["sub"])
	}
	// The same token is refused for another audience, after its expiry, and tampered.
	other := oidc.NewVerifier(xIssuer, oidc.NewRemoteKeySet(context.Background(), "http://127.0.0.1:1/"), &oidc.Config{ClientID: "other"})
	if _, err := other.Verify(context.Background(), r.ok.AccessToken); err == nil {
		t.Error("verified for another audience")
	}
	late := xVerifier(t, f, func() time.Time { return time.Now().Add(6 * time.Minute) })
	if _, err := late.Verify(context.Background(), r.ok.AccessToken); err == nil {
		t.Error("verified 6 minutes later")
	}
	parts := strings.Split(r.ok.AccessToken, ".")
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), "ReadOnly", "Admin", 1)))
	if _, err := v.Verify(context.Background(), strings.Join(parts, ".")); err == nil {
		t.Error("verified a tampered token")
	}
	// A GovCloud role: not through SAML (Warden's sign-in is aws), but as a web identity.
	r = f.post(t, xForm("tok-alice", TokenTypeIDToken, xGovAdmin))
	if r.status != http.StatusOK {
		t.Fatalf("gov id_token: %d %s", r.status, r.raw)
	}
	gov, _ := awsfed.ParseRoleARN(xGovAdmin)
	checkWebIdentityToken(t, r.ok.AccessToken, f.dir.users["alice"], gov, time.Now())
	if _, ok := f.audit.find("token.exchange", "success", xGovAdmin); !ok {
		t.Errorf("not audited: %v", f.audit.events)
	}
}

// TestExchangeIDTokenTagLimits: a tag rule that takes Warden's key is left
// out (case-insensitively), and the total stays within 50.
func TestExchangeIDTokenTagLimits(t *testing.T) {
	f := newXFixture(t)
	rs := xRuleSet()
	rs.Tags.Attributes = []rolemap.TagAttribute{{Attribute: "username", Key: "wardenrole"}}
	for k := 0; k < 49; k++ {
		rs.Tags.Attributes = append(rs.Tags.Attributes, rolemap.TagAttribute{Attribute: "email", Key: fmt.Sprintf("t%02d", k)})
	}
	e, err := rolemap.Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	f.rules.Store(e)
	r := f.post(t, xForm("tok-bob", TokenTypeIDToken, xProdRO))
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	role, _ := awsfed.ParseRoleARN(xProdRO)
	c := checkWebIdentityToken(t, r.ok.AccessToken, f.dir.users["bob"], role, time.Now())
	pt := c[TagsClaim].(map[string]any)["principal_tags"].(map[string]any)
	if len(pt) != 50 || pt["wardenrole"] != nil || fmt.Sprint(pt[awsfed.TagRole]) != "[ReadOnly]" {
		t.Errorf("%d tags: %v", len(pt), pt)
	}
}

// TestExchangeGroupRemoval: the grant is re-evaluated against a fresh
// lookup at every exchange.
func TestExchangeGroupRemoval(t *testing.T) {
	f := newXFixture(t)
	for _, typ := range []string{TokenTypeSAML2, TokenTypeIDToken} {
		bob := xUsers()["bob"]
		f.dir.set(bob)
		if r := f.post(t, xForm("tok-bob", typ, xProdRO)); r.status != http.StatusOK {
			t.Fatalf("%s first: %d %s", typ, r.status, r.raw)
		}
		bob.Groups = bob.Groups[1:] // out of developers
		f.dir.set(bob)
		r := f.post(t, xForm("tok-bob", typ, xProdRO))
		if r.status != http.StatusBadRequest || r.err.Error != "invalid_target" || r.err.RequestID == "" {
			t.Fatalf("%s after removal: %d %s", typ, r.status, r.raw)
		}
		ev, ok := f.audit.find("token.exchange", "denied", xProdRO)
		if !ok || ev.Actor != "bob" || ev.RequestID != r.err.RequestID {
			t.Errorf("denial not audited: %+v", f.audit.events)
		}
		// The other roles bob still holds are still granted.
		if r := f.post(t, xForm("tok-bob", typ, xStaging)); r.status != http.StatusOK {
			t.Errorf("%s staging: %d %s", typ, r.status, r.raw)
		}
	}
	if f.dir.calls != 6 {
		t.Errorf("%d directory lookups for 6 exchanges", f.dir.calls)
	}
}

// TestExchangeBadInput: every bad input of the list, and more, is
// the spec's error, JSON with a request ID, never a 500, never echoing
// the token.
func TestExchangeBadInput(t *testing.T) {
	f := newXFixture(t)
	ghost := identity.User{ID: "id-ghost", Username: "ghost"}
	f.access.add("tok-ghost", ghost)
	f.access.add("tok-recreated", identity.User{ID: "id-old-bob", Username: "bob"})
	secret := "tok-bob"
	ok := func() url.Values { return xForm(secret, TokenTypeSAML2, xProdRO) }
	with := func(mod func(url.Values)) string { v := ok(); mod(v); return v.Encode() }
	type tc struct {
		name, contentType, body, query string
		status                         int
		code                           string
		setup                          func() func()
	}
	form := "application/x-www-form-urlencoded"
	cases := []tc{
		{name: "json body", contentType: "application/json", body: `{"grant_type":"x"}`, status: 400, code: "invalid_request"},
		{name: "no content type", body: ok().Encode(), status: 400, code: "invalid_request"},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: "--x--", status: 400, code: "invalid_request"},
		{name: "bad encoding", contentType: form, body: "grant_type=%zz", status: 400, code: "invalid_request"},
		{name: "oversized body", contentType: form, body: with(func(v url.Values) { v.Set("pad", strings.Repeat("a", 17<<10)) }), status: 400, code: "invalid_request"},
		{name: "oversized subject_token", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", strings.Repeat("a", 4097)) }), status: 400, code: "invalid_request"},
		{name: "oversized resource", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws:iam::111122223333:role/"+strings.Repeat("a", 2100)) }), status: 400, code: "invalid_request"},
		{name: "oversized scope", contentType: form, body: with(func(v url.Values) { v.Set("scope", strings.Repeat("s ", 600)) }), status: 400, code: "invalid_request"},
		{name: "repeated resource", contentType: form, body: with(func(v url.Values) { v.Add("resource", xStaging) }), status: 400, code: "invalid_request"},
		{name: "repeated subject_token", contentType: form, body: with(func(v url.Values) { v.Add("subject_token", secret) }), status: 400, code: "invalid_request"},
		{name: "no grant_type", contentType: form, body: with(func(v url.Values) { v.Del("grant_type") }), status: 400, code: "unsupported_grant_type"},
		{name: "other grant_type", contentType: form, body: with(func(v url.Values) { v.Set("grant_type", "refresh_token") }), status: 400, code: "unsupported_grant_type"},
		{name: "no subject_token", contentType: form, body: with(func(v url.Values) { v.Del("subject_token") }), status: 400, code: "invalid_request"},
		{name: "no subject_token_type", contentType: form, body: with(func(v url.Values) { v.Del("subject_token_type") }), status: 400, code: "invalid_request"},
		{name: "id_token as subject", contentType: form, body: with(func(v url.Values) { v.Set("subject_token_type", TokenTypeIDToken) }), status: 400, code: "invalid_request"},
		{name: "requested jwt", contentType: form, body: with(func(v url.Values) { v.Set("requested_token_type", "urn:ietf:params:oauth:token-type:jwt") }), status: 400, code: "invalid_request"},
		{name: "requested access_token", contentType: form, body: with(func(v url.Values) { v.Set("requested_token_type", TokenTypeAccessToken) }), status: 400, code: "invalid_request"},
		{name: "actor_token", contentType: form, body: with(func(v url.Values) { v.Set("actor_token", secret); v.Set("actor_token_type", TokenTypeAccessToken) }), status: 400, code: "invalid_request"},
		{name: "token in query", contentType: form, body: ok().Encode(), query: "subject_token=" + secret, status: 400, code: "invalid_request"},
		{name: "no resource", contentType: form, body: with(func(v url.Values) { v.Del("resource") }), status: 400, code: "invalid_request"},
		{name: "resource not an ARN", contentType: form, body: with(func(v url.Values) { v.Set("resource", "https://sts.amazonaws.com") }), status: 400, code: "invalid_target"},
		{name: "resource a user ARN", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws:iam::111122223333:user/bob") }), status: 400, code: "invalid_target"},
		{name: "resource an S3 ARN", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws:s3:::bucket") }), status: 400, code: "invalid_target"},
		{name: "resource role in unknown partition", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws-eu:iam::111122223333:role/ReadOnly") }), status: 400, code: "invalid_target"},
		{name: "resource with newline", contentType: form, body: with(func(v url.Values) { v.Set("resource", xProdRO+"\n") }), status: 400, code: "invalid_target"},
		{name: "id_token other audience", contentType: form, body: with(func(v url.Values) {
			v.Set("requested_token_type", TokenTypeIDToken)
			v.Set("audience", "my-app")
		}), status: 400, code: "invalid_target"},
		{name: "saml2 with STS audience", contentType: form, body: with(func(v url.Values) { v.Set("audience", "sts.amazonaws.com") }), status: 400, code: "invalid_target"},
		{name: "expired, revoked or foreign token", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln") }), status: 400, code: "invalid_request"},
		{name: "wrong client_id", contentType: form, body: with(func(v url.Values) { v.Set("client_id", "other-app") }), status: 400, code: "invalid_request"},
		{name: "user gone", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", "tok-ghost") }), status: 400, code: "invalid_grant"},
		{name: "user recreated", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", "tok-recreated") }), status: 400, code: "invalid_grant"},
		{name: "user locked", contentType: form, body: ok().Encode(), status: 400, code: "invalid_grant",
			setup: func() func() {
				f.dir.err = fmt.Errorf("x: %w", identity.ErrAccountLocked)
				return func() { f.dir.err = nil }
			}},
		{name: "user disabled", contentType: form, body: ok().Encode(), status: 400, code: "invalid_grant",
			setup: func() func() {
				f.dir.err = fmt.Errorf("x: %w", identity.ErrAccountDisabled)
				return func() { f.dir.err = nil }
			}},
		{name: "role not held", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", "tok-frank") }), status: 400, code: "invalid_target"},
		{name: "role of another account", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws:iam::999999999999:role/ReadOnly") }), status: 400, code: "invalid_target"},
		{name: "role name case differs", contentType: form, body: with(func(v url.Values) { v.Set("resource", "arn:aws:iam::111122223333:role/readonly") }), status: 400, code: "invalid_target"},
		{name: "gov role as SAML", contentType: form, body: with(func(v url.Values) { v.Set("subject_token", "tok-alice"); v.Set("resource", xGovAdmin) }), status: 400, code: "invalid_target"},
		{name: "directory down", contentType: form, body: ok().Encode(), status: 503, code: "temporarily_unavailable",
			setup: func() func() {
				f.dir.err = fmt.Errorf("x: %w", identity.ErrDirectoryUnavailable)
				return func() { f.dir.err = nil }
			}},
		{name: "token store down", contentType: form, body: ok().Encode(), status: 503, code: "temporarily_unavailable",
			setup: func() func() {
				f.access.err = fmt.Errorf("x: %w", store.ErrUnavailable)
				return func() { f.access.err = nil }
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				defer c.setup()()
			}
			u := f.srv.URL
			if c.query != "" {
				u += "?" + c.query
			}
			r := xPostRaw(t, u, c.contentType, c.body)
			if r.status != c.status || r.err.Error != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", r.status, r.err.Error, c.status, c.code, r.raw)
			}
			if r.err.RequestID == "" || r.err.Description == "" || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("error response %s, headers %v", r.raw, r.header)
			}
			if strings.Contains(r.raw, secret) || strings.Contains(r.raw, "fake:") || strings.Contains(r.raw, "x: ") {
				t.Errorf("response leaks the token or private detail: %s", r.raw)
			}
		})
	}
	// Audited refusals.
	for _, want := range [][3]string{{"token.exchange", "invalid_subject_token", xProdRO}, {"token.exchange", "denied", xProdRO},
		{"token.exchange", "user_rejected", xProdRO}, {"token.exchange", "other_partition", xGovAdmin}} {
		if _, ok := f.audit.find(want[0], want[1], want[2]); !ok {
			t.Errorf("no audit %v in %v", want, f.audit.events)
		}
	}
}

// TestExchangeGin: the gin handler (Provider.SetTokenExchange) answers the
// same, and a form parsed by the token endpoint before is used as it is.
func TestExchangeGin(t *testing.T) {
	f := newXFixture(t)
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.POST("/oauth/token", func(c *gin.Context) {
		if err := c.Request.ParseForm(); err != nil { // as zitadel's token endpoint does
			t.Error(err)
		}
		f.x.Handle(c)
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	r := xPostRaw(t, srv.URL+"/oauth/token", "application/x-www-form-urlencoded", xForm("tok-alice", TokenTypeIDToken, xProdAdmin).Encode())
	if r.status != http.StatusOK || r.ok.IssuedTokenType != TokenTypeIDToken {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	r = xPostRaw(t, srv.URL+"/oauth/token", "application/x-www-form-urlencoded", xForm("tok-alice", TokenTypeIDToken, "nope").Encode())
	if r.status != http.StatusBadRequest || r.err.Error != "invalid_target" {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestNewExchangerRefuses(t *testing.T) {
	f := newXFixture(t)
	d := f.x.deps
	for name, mod := range map[string]func(*ExchangeConfig, *ExchangeDeps){
		"no issuer":     func(c *ExchangeConfig, _ *ExchangeDeps) { c.Issuer = "" },
		"no access":     func(_ *ExchangeConfig, d *ExchangeDeps) { d.Access = nil },
		"no rules":      func(_ *ExchangeConfig, d *ExchangeDeps) { d.Rules = nil },
		"long lifetime": func(c *ExchangeConfig, _ *ExchangeDeps) { c.WebIdentityLifetime = 6 * time.Minute },
	} {
		c, dd := ExchangeConfig{Issuer: xIssuer}, d
		mod(&c, &dd)
		if _, err := NewExchanger(c, dd); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
