package samlidp

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// MaxResponseBase64 is AWS's limit on the base64 SAMLAssertion (item 20,
// STS AssumeRoleWithSAML: 4..100000 characters).
const MaxResponseBase64 = 100_000

// signerState is the signing context of one certificate, built once.
type signerState struct {
	cert   *x509.Certificate
	ctx    *dsig.SigningContext
	direct *directState // nil: the etree path only (direct.go)
}

// signingContext returns the context of the ring's current key: RSA-SHA256
// (http://www.w3.org/2001/04/xmldsig-more#rsa-sha256), SHA-256 digests and
// exclusive C14N without prefix list (http://www.w3.org/2001/10/xml-exc-c14n#),
// the certificate in KeyInfo. crewjam would pick RSA-SHA256 by default too
// (defaultSignatureMethod); Warden says it explicitly. A
// dsig.SigningContext is read-only once built, so it is shared by all
// requests; it is rebuilt when the current key changes (rotation).
func (i *IdP) signingContext() (*dsig.SigningContext, error) {
	st, err := i.signer()
	if err != nil {
		return nil, err
	}
	return st.ctx, nil
}

// signer is the signing state of the ring's current key (signingContext).
func (i *IdP) signer() (*signerState, error) {
	cur := i.keys.Current()
	if st := i.sig.Load(); st != nil && cur.Cert != nil && (st.cert == cur.Cert || bytes.Equal(st.cert.Raw, cur.Cert.Raw)) {
		return st, nil
	}
	if cur.Key == nil || cur.Cert == nil {
		return nil, errors.New("signing: the key ring has no current key")
	}
	ks := dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cur.Cert.Raw}, PrivateKey: cur.Key, Leaf: cur.Cert})
	ctx := dsig.NewDefaultSigningContext(ks)
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	st := &signerState{cert: cur.Cert, ctx: ctx, direct: newDirectState(cur.Key, cur.Cert.Raw)}
	i.sig.Store(st)
	return st, nil
}

// signEnveloped signs el in place and puts the ds:Signature right after
// its saml:Issuer, where the SAML schema wants it (saml-core §2.3.3 and
// §3.2.2: Issuer, then Signature). goxmldsig's SignEnveloped would return
// a deep copy of el with the Signature last; ConstructSignature makes the
// same Signature without the copy. The enveloped-signature transform
// removes it before digesting, so its position does not change the
// signature. Signing leaves el in exclusive canonical form (the digest
// canonicalizes the element in place), which is what is sent.
func signEnveloped(ctx *dsig.SigningContext, el *etree.Element) error {
	sig, err := ctx.ConstructSignature(el, true)
	if err != nil {
		return err
	}
	el.InsertChildAt(1, sig) // after Issuer, the first child of both elements
	return nil
}

// assertionElement is crewjam's Assertion.CanonicalElement without its
// exclusive C14N pass: signEnveloped canonicalizes the element in place
// before it digests it, and the pass is idempotent, so doing it here too
// would only cost (about a fifth of the XML work of a response).
func assertionElement(a *saml.Assertion) *etree.Element {
	el := etree.NewElement("saml:Assertion")
	el.CreateAttr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion")
	el.CreateAttr("Version", "2.0")
	el.CreateAttr("ID", a.ID)
	el.CreateAttr("IssueInstant", a.IssueInstant.UTC().Format(samlTime))
	el.AddChild(a.Issuer.Element())
	if a.Signature != nil {
		el.AddChild(a.Signature)
	}
	if a.Subject != nil {
		el.AddChild(a.Subject.Element())
	}
	if a.Conditions != nil {
		el.AddChild(a.Conditions.Element())
	}
	for k := range a.AuthnStatements {
		el.AddChild(a.AuthnStatements[k].Element())
	}
	for k := range a.AttributeStatements {
		el.AddChild(a.AttributeStatements[k].Element())
	}
	return el
}

// samlTime is crewjam's time format (saml-core §1.3.3: UTC, no zone but Z).
const samlTime = "2006-01-02T15:04:05.999Z07:00"

// response is a signed SAML Response ready to POST.
type response struct {
	XML    []byte
	Base64 string
}

// buildResponse signs the assertion, wraps it in a Response to dest
// (Destination, item 5), signs that too when signResponse, and encodes it.
func (i *IdP) buildResponse(a *saml.Assertion, dest, inResponseTo string, signResponse bool, now time.Time) (response, error) {
	st, err := i.signer()
	if err != nil {
		return response{}, err
	}
	if st.direct != nil && !signResponse && !i.etreeOnly && directOK(a, i.entityID, dest, inResponseTo) {
		r, err := i.directResponse(st.direct, a, dest, inResponseTo, now)
		if err != nil {
			return response{}, fmt.Errorf("sign assertion: %w", err)
		}
		return r, nil
	}
	ctx := st.ctx
	ael := assertionElement(a)
	if err := signEnveloped(ctx, ael); err != nil {
		return response{}, fmt.Errorf("sign assertion: %w", err)
	}
	id, err := i.newID()
	if err != nil {
		return response{}, err
	}
	r := &saml.Response{
		ID:           id,
		InResponseTo: inResponseTo,
		Version:      "2.0",
		IssueInstant: now,
		Destination:  dest,
		Issuer:       &saml.Issuer{Format: entityFormat, Value: i.entityID},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: saml.StatusSuccess}},
	}
	rel := r.Element()
	rel.AddChild(ael)
	if signResponse {
		if err := signEnveloped(ctx, rel); err != nil {
			return response{}, fmt.Errorf("sign response: %w", err)
		}
	}
	// What etree.Document.WriteToBytes writes for a document with rel as
	// its root, without the copies of its bufio writer and growing buffer.
	var buf bytes.Buffer
	buf.Grow(responseSizeHint)
	rel.WriteTo(&buf, &etree.WriteSettings{})
	return response{XML: buf.Bytes(), Base64: base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// responseSizeHint holds a one-role AWS response with a 2048-bit
// signature and its certificate (about 5.5 KB; 7.5 KB with the Response
// signed too); larger ones grow the buffer.
const responseSizeHint = 8 << 10

const entityFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
