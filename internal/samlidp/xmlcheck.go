package samlidp

import (
	"bytes"
	"compress/flate"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Limits on what a service provider sends. A real AuthnRequest is a few
// kilobytes.
const (
	// maxRequestXML bounds an AuthnRequest's XML, in either binding: the
	// inflated size of an HTTP-Redirect request (a DEFLATE bomb stops
	// here, after reading at most this much) and the decoded size of an
	// HTTP-POST one.
	maxRequestXML = 64 << 10
	// maxQuery bounds the query string of an HTTP-Redirect request.
	maxQuery = 32 << 10
	// maxPostBody bounds the body of an HTTP-POST request (base64 of
	// maxRequestXML, RelayState, signature fields).
	maxPostBody = 128 << 10
	// maxRelayState bounds RelayState (saml-bindings §3.4.3 and §3.5.3 ask
	// senders for 80 bytes at most; some send more).
	maxRelayState = 1024
	// maxXMLDepth bounds element nesting (an AuthnRequest is 4 deep).
	maxXMLDepth = 32
)

var (
	errTooLargeInput = errors.New("request too large")
	errDTD           = errors.New("xml: DTDs and entity declarations are not accepted")
)

// inflate reads the raw DEFLATE data of the HTTP-Redirect binding
// (saml-bindings §3.4.4.1) and fails with errTooLargeInput as soon as more
// than limit bytes come out: it never holds more than limit+1 bytes.
func inflate(compressed []byte, limit int) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(compressed))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("inflate: more than %d bytes: %w", limit, errTooLargeInput)
	}
	return out, nil
}

// checkXML refuses what no SAML message needs: a DOCTYPE (DTDs, entity
// declarations, so no entity expansion and no external entities: SAML
// core §1.3 messages are schema-described, saml-bindings §3 forbids
// nothing but nothing uses one), processing instructions other than the
// XML declaration, more than maxXMLDepth levels, an encoding other than
// UTF-8, and anything that is not one well-formed element. encoding/xml
// would not expand entities anyway; refusing them says so clearly.
func checkXML(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errDTD
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("xml: processing instruction %q not accepted", t.Target)
			}
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			if depth > maxXMLDepth {
				return fmt.Errorf("xml: nested deeper than %d", maxXMLDepth)
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("xml: text outside the root element")
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("xml: %d root elements, want 1", roots)
	}
	return nil
}
