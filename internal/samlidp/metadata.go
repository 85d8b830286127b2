package samlidp

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/crewjam/saml"
	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/web"
)

// MetadataContentType is the media type of SAML metadata
// (saml-metadata-2.0-os §4.1.1).
const MetadataContentType = "application/samlmetadata+xml"

// maxMetadataKeys is IAM's limit of keys per SAML provider (item 22).
const maxMetadataKeys = 10

// NameID format URIs (saml-core §8.3).
const (
	nameIDFormatPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	nameIDFormatEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	nameIDFormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// metadataState is the serialized metadata for one list of published
// certificates.
type metadataState struct {
	certs []*x509.Certificate
	xml   []byte
}

// metadata returns the IdP metadata bytes, rebuilt only when the list of
// published certificates changed (a rotation).
func (i *IdP) metadata() ([]byte, error) {
	pub := i.keys.Published()
	if st := i.meta.Load(); st != nil && sameCerts(st.certs, pub) {
		return st.xml, nil
	}
	certs := make([]*x509.Certificate, 0, len(pub))
	for _, s := range pub {
		if s.Cert != nil {
			certs = append(certs, s.Cert)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("metadata: the key ring publishes no certificate")
	}
	buf, err := buildMetadata(i.entityID, i.ssoURL, certs, i.log)
	if err != nil {
		return nil, err
	}
	i.meta.Store(&metadataState{certs: certs, xml: buf})
	return buf, nil
}

// sameCerts reports whether pub publishes exactly the certificates have.
func sameCerts(have []*x509.Certificate, pub []keys.Signer) bool {
	n := 0
	for _, s := range pub {
		if s.Cert == nil {
			continue
		}
		if n >= len(have) || (have[n] != s.Cert && !bytes.Equal(have[n].Raw, s.Cert.Raw)) {
			return false
		}
		n++
	}
	return n == len(have)
}

// buildMetadata writes the IdP's EntityDescriptor (saml-metadata-2.0-os
// §2.3.2, §2.4.3): the entity ID, one KeyDescriptor use="signing" per
// certificate (at most 10, IAM's limit), the NameID formats Warden issues,
// and the SSO service at ssoURL for the HTTP-Redirect and HTTP-POST
// bindings; WantAuthnRequestsSigned="false" (a per-SP setting asks for
// signed requests instead). No validUntil or cacheDuration: IAM takes
// the provider's expiry from validUntil, and a metadata that expires
// would end AWS sign-in silently. No encryption key: Warden decrypts
// nothing. UTF-8, no byte order mark (item 22).
func buildMetadata(entityID, ssoURL string, certs []*x509.Certificate, log *slog.Logger) ([]byte, error) {
	if len(certs) > maxMetadataKeys {
		log.Warn("saml metadata: more published keys than IAM accepts; publishing the first ones",
			slog.Int("published", len(certs)), slog.Int("max", maxMetadataKeys))
		certs = certs[:maxMetadataKeys]
	}
	kds := make([]saml.KeyDescriptor, 0, len(certs))
	for _, c := range certs {
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}}}})
	}
	no := false
	ed := saml.EntityDescriptor{
		EntityID: entityID,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{
				RoleDescriptor: saml.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors:             kds,
				},
				NameIDFormats: []saml.NameIDFormat{nameIDFormatPersistent, nameIDFormatEmail, nameIDFormatUnspecified},
			},
			WantAuthnRequestsSigned: &no,
			SingleSignOnServices: []saml.Endpoint{
				{Binding: saml.HTTPRedirectBinding, Location: ssoURL},
				{Binding: saml.HTTPPostBinding, Location: ssoURL},
			},
		}},
	}
	body, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return append(append([]byte(xml.Header), body...), '\n'), nil
}

// handleMetadata serves /saml/metadata.
func (i *IdP) handleMetadata(c *gin.Context) {
	buf, err := i.metadata()
	if err != nil {
		web.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, MetadataContentType, buf)
}
