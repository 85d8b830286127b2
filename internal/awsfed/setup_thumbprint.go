package awsfed

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxDiscovery bounds the discovery document read.
const maxDiscovery = 1 << 20

// OIDCThumbprint computes the thumbprint of issuer's IAM OIDC provider as
// AWS documents it: fetch <issuer>/.well-known/openid-configuration, connect
// to the host of its jwks_uri over TLS, and take the SHA-1 of the last
// certificate the server sends (the top intermediate CA, or the root when
// the server sends it), as 40 lowercase hex digits. The chain is verified
// as client's transport does; a chain that does not verify is an error,
// not a thumbprint.
func OIDCThumbprint(ctx context.Context, client *http.Client, issuer string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	disc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if !strings.HasPrefix(disc, "https://") {
		return "", fmt.Errorf("awsfed: thumbprint: issuer %s is not https", Quote(issuer))
	}
	resp, err := get(ctx, client, disc)
	if err != nil {
		return "", fmt.Errorf("awsfed: thumbprint: %w", err)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, maxDiscovery)).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("awsfed: thumbprint: %s: %w", disc, err)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("awsfed: thumbprint: %s: jwks_uri %s is not an https URL", disc, Quote(doc.JWKSURI))
	}
	resp, err = get(ctx, client, u.String())
	if err != nil {
		return "", fmt.Errorf("awsfed: thumbprint: %w", err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return "", fmt.Errorf("awsfed: thumbprint: %s sent no certificate", u.Host)
	}
	certs := resp.TLS.PeerCertificates
	sum := sha1.Sum(certs[len(certs)-1].Raw)
	return hex.EncodeToString(sum[:]), nil
}

func get(ctx context.Context, client *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return resp, nil
}
