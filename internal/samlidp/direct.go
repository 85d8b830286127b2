package samlidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/crewjam/saml"
)

// The direct writer makes the same bytes as buildResponse's etree path
// (etree elements from crewjam, goxmldsig's enveloped signature, etree's
// serializer) for the responses the hot path sends, AWS console sign-ins
// above all, without building a tree: the assertion is written once in
// exclusive canonical form (what the digest covers, as the
// enveloped-signature and exc-c14n transforms make it), the SignedInfo is
// written canonical and signed, and the response is written as etree
// would write it. TestDirectMatchesEtree compares the two paths byte for
// byte (signatures included: RSA PKCS #1 v1.5 is deterministic), and
// xmlsec1 and pysaml2 check the results (verify_test.go).
//
// It takes only what it knows how to write exactly: an assertion of the
// shape IdP.assertion builds, untyped attribute values, no Response
// signature, and strings without characters that XML escapes or
// canonicalization normalizes. Anything else goes the etree way
// (directOK).

const (
	nsSAML       = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAMLP      = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsXS         = "http://www.w3.org/2001/XMLSchema"
	nsDS         = "http://www.w3.org/2000/09/xmldsig#"
	algExcC14N   = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algSHA256    = "http://www.w3.org/2001/04/xmlenc#sha256"
)

// directState is what the direct writer keeps per signing key.
type directState struct {
	key     *rsa.PrivateKey
	keyInfo string // <ds:KeyInfo>…</ds:KeyInfo> with the certificate
}

// plain reports whether s can be written as it is, in text and in a
// double-quoted attribute, by both etree and exclusive C14N: valid UTF-8
// without markup characters, quotes or control characters.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == 0x7f, c == '&', c == '<', c == '>', c == '"', c == '\'':
			return false
		case c >= 0x80:
			return utf8.ValidString(s[i:])
		}
	}
	return true
}

// directOK reports whether the direct writer makes exactly what the etree
// path would for a, to dest, in response to inResponseTo.
func directOK(a *saml.Assertion, issuer, dest, inResponseTo string) bool {
	if a.Signature != nil || a.Issuer.NameQualifier != "" || a.Issuer.SPNameQualifier != "" || a.Issuer.SPProvidedID != "" ||
		!plain(a.Issuer.Format) || !plain(a.Issuer.Value) || a.Issuer.Value == "" || a.Issuer.Value != issuer ||
		!plain(a.ID) || !plain(dest) || !plain(inResponseTo) || !plain(issuer) {
		return false
	}
	if s := a.Subject; s != nil {
		if s.BaseID != nil || s.EncryptedID != nil {
			return false
		}
		if n := s.NameID; n != nil && (n.NameQualifier != "" || n.SPNameQualifier != "" || n.SPProvidedID != "" || !plain(n.Format) || !plain(n.Value)) {
			return false
		}
		for _, sc := range s.SubjectConfirmations {
			if sc.NameID != nil || sc.EncryptedID != nil || !plain(sc.Method) {
				return false
			}
			if d := sc.SubjectConfirmationData; d != nil && (d.Address != "" || !plain(d.Recipient) || !plain(d.InResponseTo)) {
				return false
			}
		}
	}
	if c := a.Conditions; c != nil {
		if c.OneTimeUse != nil || c.ProxyRestriction != nil {
			return false
		}
		for _, ar := range c.AudienceRestrictions {
			for _, au := range ar.AllAudiences() {
				if !plain(au.Value) {
					return false
				}
			}
		}
	}
	for _, st := range a.AuthnStatements {
		ac := st.AuthnContext
		if st.SubjectLocality != nil || len(ac.AuthenticatingAuthorities) > 0 || !plain(st.SessionIndex) ||
			(ac.AuthnContextClassRef != nil && !plain(ac.AuthnContextClassRef.Value)) {
			return false
		}
	}
	for _, as := range a.AttributeStatements {
		for _, at := range as.Attributes {
			if !plain(at.FriendlyName) || !plain(at.Name) || !plain(at.NameFormat) {
				return false
			}
			for _, v := range at.Values {
				if v.Type != "" || v.Nil || v.Encoding != "" || v.NameID != nil || !plain(v.Value) {
					return false
				}
			}
		}
	}
	return true
}

// xw appends XML. canonical writes empty elements as start and end tags
// (exclusive C14N); otherwise as etree does, <x/>.
type xw struct {
	b         []byte
	canonical bool
}

func (w *xw) s(s string) { w.b = append(w.b, s...) }

func (w *xw) attr(name, value string) {
	w.b = append(w.b, ' ')
	w.b = append(w.b, name...)
	w.b = append(w.b, `="`...)
	w.b = append(w.b, value...)
	w.b = append(w.b, '"')
}

func (w *xw) time(name string, t time.Time) {
	w.b = append(w.b, ' ')
	w.b = append(w.b, name...)
	w.b = append(w.b, `="`...)
	w.b = t.UTC().AppendFormat(w.b, samlTime)
	w.b = append(w.b, '"')
}

// end closes a start tag that has no children or text.
func (w *xw) end(name string) {
	if w.canonical {
		w.b = append(w.b, "></"...)
		w.b = append(w.b, name...)
		w.b = append(w.b, '>')
		return
	}
	w.b = append(w.b, "/>"...)
}

// text closes a start tag and writes text and the end tag (etree and C14N
// write an element whose text is empty as an empty element).
func (w *xw) text(name, text string) {
	if text == "" {
		w.end(name)
		return
	}
	w.b = append(w.b, '>')
	w.b = append(w.b, text...)
	w.b = append(w.b, "</"...)
	w.b = append(w.b, name...)
	w.b = append(w.b, '>')
}

// assertion writes a (directOK) with its attributes in C14N order, and
// sig after the Issuer when sig is not empty.
func (w *xw) assertion(a *saml.Assertion, sig []byte) {
	w.s(`<saml:Assertion xmlns:saml="` + nsSAML + `"`)
	w.attr("ID", a.ID)
	w.time("IssueInstant", a.IssueInstant)
	w.attr("Version", "2.0") // assertionElement's, whatever a.Version says
	w.s(`><saml:Issuer`)
	if a.Issuer.Format != "" {
		w.attr("Format", a.Issuer.Format)
	}
	w.text("saml:Issuer", a.Issuer.Value)
	w.b = append(w.b, sig...)
	if s := a.Subject; s != nil {
		w.s("<saml:Subject")
		if s.NameID == nil && len(s.SubjectConfirmations) == 0 {
			w.end("saml:Subject")
		} else {
			w.s(">")
			if n := s.NameID; n != nil {
				w.s("<saml:NameID")
				if n.Format != "" {
					w.attr("Format", n.Format)
				}
				w.text("saml:NameID", n.Value)
			}
			for k := range s.SubjectConfirmations {
				sc := &s.SubjectConfirmations[k]
				w.s("<saml:SubjectConfirmation")
				w.attr("Method", sc.Method)
				if d := sc.SubjectConfirmationData; d != nil {
					w.s("><saml:SubjectConfirmationData")
					if d.InResponseTo != "" {
						w.attr("InResponseTo", d.InResponseTo)
					}
					if !d.NotBefore.IsZero() {
						w.time("NotBefore", d.NotBefore)
					}
					if !d.NotOnOrAfter.IsZero() {
						w.time("NotOnOrAfter", d.NotOnOrAfter)
					}
					if d.Recipient != "" {
						w.attr("Recipient", d.Recipient)
					}
					w.end("saml:SubjectConfirmationData")
					w.s("</saml:SubjectConfirmation>")
				} else {
					w.end("saml:SubjectConfirmation")
				}
			}
			w.s("</saml:Subject>")
		}
	}
	if c := a.Conditions; c != nil {
		w.s("<saml:Conditions")
		if !c.NotBefore.IsZero() {
			w.time("NotBefore", c.NotBefore)
		}
		if !c.NotOnOrAfter.IsZero() {
			w.time("NotOnOrAfter", c.NotOnOrAfter)
		}
		if len(c.AudienceRestrictions) == 0 {
			w.end("saml:Conditions")
		} else {
			w.s(">")
			for k := range c.AudienceRestrictions {
				all := c.AudienceRestrictions[k].AllAudiences()
				w.s("<saml:AudienceRestriction")
				if len(all) == 0 {
					w.end("saml:AudienceRestriction")
					continue
				}
				w.s(">")
				for _, au := range all {
					w.s("<saml:Audience")
					w.text("saml:Audience", au.Value)
				}
				w.s("</saml:AudienceRestriction>")
			}
			w.s("</saml:Conditions>")
		}
	}
	for k := range a.AuthnStatements {
		st := &a.AuthnStatements[k]
		w.s("<saml:AuthnStatement")
		w.time("AuthnInstant", st.AuthnInstant)
		if st.SessionIndex != "" {
			w.attr("SessionIndex", st.SessionIndex)
		}
		if st.SessionNotOnOrAfter != nil {
			w.time("SessionNotOnOrAfter", *st.SessionNotOnOrAfter)
		}
		w.s("><saml:AuthnContext")
		if r := st.AuthnContext.AuthnContextClassRef; r != nil {
			w.s("><saml:AuthnContextClassRef")
			w.text("saml:AuthnContextClassRef", r.Value)
			w.s("</saml:AuthnContext>")
		} else {
			w.end("saml:AuthnContext")
		}
		w.s("</saml:AuthnStatement>")
	}
	for k := range a.AttributeStatements {
		as := &a.AttributeStatements[k]
		w.s("<saml:AttributeStatement")
		if len(as.Attributes) == 0 {
			w.end("saml:AttributeStatement")
			continue
		}
		w.s(">")
		for j := range as.Attributes {
			at := &as.Attributes[j]
			w.s("<saml:Attribute")
			if at.FriendlyName != "" {
				w.attr("FriendlyName", at.FriendlyName)
			}
			if at.Name != "" {
				w.attr("Name", at.Name)
			}
			if at.NameFormat != "" {
				w.attr("NameFormat", at.NameFormat)
			}
			if len(at.Values) == 0 {
				w.end("saml:Attribute")
				continue
			}
			w.s(">")
			for _, v := range at.Values {
				w.s("<saml:AttributeValue")
				w.text("saml:AttributeValue", v.Value)
			}
			w.s("</saml:Attribute>")
		}
		w.s("</saml:AttributeStatement>")
	}
	w.s("</saml:Assertion>")
}

// newDirectState is the direct writer's state for key, nil when it is not
// an RSA key (the direct writer signs RSA-SHA256 only).
func newDirectState(key crypto.Signer, certDER []byte) *directState {
	k, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil
	}
	return &directState{key: k, keyInfo: `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(certDER) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo>`}
}

// signedInfo is ds:SignedInfo for a reference to id with digest, in
// canonical form (declaring ds, as exclusive C14N renders the apex of what
// it canonicalizes) or as etree writes it inside ds:Signature.
func signedInfo(b []byte, id, digest string, canonical bool) []byte {
	w := xw{b: b, canonical: canonical}
	if canonical {
		w.s(`<ds:SignedInfo xmlns:ds="` + nsDS + `">`)
	} else {
		w.s(`<ds:SignedInfo>`)
	}
	w.s(`<ds:CanonicalizationMethod Algorithm="` + algExcC14N + `"`)
	w.end("ds:CanonicalizationMethod")
	w.s(`<ds:SignatureMethod Algorithm="` + algRSASHA256 + `"`)
	w.end("ds:SignatureMethod")
	w.s(`<ds:Reference URI="#`)
	w.s(id)
	w.s(`"><ds:Transforms><ds:Transform Algorithm="` + algEnveloped + `"`)
	w.end("ds:Transform")
	w.s(`<ds:Transform Algorithm="` + algExcC14N + `"`)
	w.end("ds:Transform")
	w.s(`</ds:Transforms><ds:DigestMethod Algorithm="` + algSHA256 + `"`)
	w.end("ds:DigestMethod")
	w.s(`<ds:DigestValue>`)
	w.s(digest)
	w.s(`</ds:DigestValue></ds:Reference></ds:SignedInfo>`)
	return w.b
}

// directResponse is buildResponse without etree, for a that directOK
// accepts and an unsigned Response.
func (i *IdP) directResponse(ds *directState, a *saml.Assertion, dest, inResponseTo string, now time.Time) (response, error) {
	scratch := scratchPool.Get().(*[]byte)
	c := xw{b: (*scratch)[:0], canonical: true}
	c.assertion(a, nil)
	sum := sha256.Sum256(c.b)
	var digest [44]byte
	base64.StdEncoding.Encode(digest[:], sum[:])
	si := signedInfo(c.b[:0], a.ID, string(digest[:]), true)
	h := sha256.Sum256(si)
	sigValue, err := ds.key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return response{}, err
	}
	sig := append(si[:0], `<ds:Signature xmlns:ds="`+nsDS+`">`...)
	sig = signedInfo(sig, a.ID, string(digest[:]), false)
	sig = append(sig, `<ds:SignatureValue>`...)
	sig = base64.StdEncoding.AppendEncode(sig, sigValue)
	sig = append(sig, `</ds:SignatureValue>`...)
	sig = append(sig, ds.keyInfo...)
	sig = append(sig, `</ds:Signature>`...)

	id, err := i.newID()
	if err != nil {
		return response{}, err
	}
	w := xw{b: make([]byte, 0, responseSizeHint)}
	w.s(`<samlp:Response xmlns:saml="` + nsSAML + `" xmlns:samlp="` + nsSAMLP + `" xmlns:xs="` + nsXS + `"`)
	w.attr("ID", id)
	if inResponseTo != "" {
		w.attr("InResponseTo", inResponseTo)
	}
	w.attr("Version", "2.0")
	w.time("IssueInstant", now)
	if dest != "" {
		w.attr("Destination", dest)
	}
	w.s(`><saml:Issuer Format="` + entityFormat + `">`)
	w.s(i.entityID)
	w.s(`</saml:Issuer><samlp:Status><samlp:StatusCode Value="` + saml.StatusSuccess + `"/></samlp:Status>`)
	w.assertion(a, sig)
	*scratch = sig[:0] // copied into w: the buffer, grown, goes back
	scratchPool.Put(scratch)
	w.s(`</samlp:Response>`)
	return response{XML: w.b, Base64: encodeBase64(w.b)}, nil
}

// scratchPool holds the buffers of the canonical forms, which are hashed
// and dropped (a console click's assertion is 5–8 KB).
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 0, responseSizeHint); return &b }}

// encodeBase64 is base64.StdEncoding.EncodeToString without its copy of
// the result: the encoder writes into the string's own memory.
func encodeBase64(b []byte) string {
	var sb strings.Builder
	sb.Grow(base64.StdEncoding.EncodedLen(len(b)))
	enc := base64.NewEncoder(base64.StdEncoding, &sb)
	enc.Write(b) // a strings.Builder does not fail
	enc.Close()
	return sb.String()
}
