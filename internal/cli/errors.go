package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"

	"github.com/wardenidp/warden/internal/awsfed"
)

// adviceError is one line for the user (what failed, what to try) in
// place of an error chain; Unwrap keeps the cause for errors.Is and As.
type adviceError struct {
	msg string
	err error
}

func (e *adviceError) Error() string { return e.msg }
func (e *adviceError) Unwrap() error { return e.err }

// netReason names, in a few words, why a connection failed: "its name
// does not resolve", "connection refused", "timed out", … ok is false
// when err is not a network failure (an answer was received).
func netReason(err error) (string, bool) {
	var (
		dns      *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		rec      tls.RecordHeaderError
		op       *net.OpError
		ne       net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted", true
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "its name " + dns.Name + " does not resolve", true
		}
		if dns.IsTimeout {
			return "the DNS lookup of " + dns.Name + " timed out", true
		}
		return "the DNS lookup of " + dns.Name + " failed", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET):
		return "the connection was reset", true
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to it", true
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return "its TLS certificate is not trusted", true
	case errors.As(err, &rec):
		return "it does not speak TLS", true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out", true
	case errors.As(err, &op):
		return "network error (" + op.Op + ")", true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the connection closed early", true
	}
	return "", false
}

// hostOf is the host[:port] of an endpoint URL, else the URL.
func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return endpoint
}

// stsProblem turns an STS failure into one line: what failed and what to
// try (unreachable endpoint, or awsfed.Advice for STS's answers).
func stsProblem(err error, o awsfed.STSOptions) error {
	_, endpoint, terr := o.Target()
	if terr != nil {
		return &adviceError{msg: fmt.Sprintf("AWS STS: %v", terr), err: err}
	}
	if why, ok := netReason(err); ok && awsfed.STSErrorCode(err) == "" {
		try := "check your network and proxy, or give --sts-endpoint"
		if o.Endpoint == "" {
			try = "check your network and proxy, pick another --region of the partition, or give --sts-endpoint"
		}
		return &adviceError{msg: fmt.Sprintf("cannot reach AWS STS at %s (%s): %s", hostOf(endpoint), why, try), err: err}
	}
	if adv := awsfed.Advice(err); adv != "" {
		return &adviceError{msg: fmt.Sprintf("%s; %s", stsSummary(err), adv), err: err}
	}
	return &adviceError{msg: stsSummary(err), err: err}
}

// stsSummary is STS's refusal as "STS <Op> refused: <Code>: <message>",
// without the SDK's chain of operation, attempt and request IDs.
func stsSummary(err error) string {
	op := "call"
	var se *awsfed.STSError
	if errors.As(err, &se) {
		op = se.Op
	}
	code := awsfed.STSErrorCode(err)
	if code == "" {
		return err.Error()
	}
	msg := stsMessage(err)
	if msg == "" {
		return fmt.Sprintf("STS %s refused: %s", op, code)
	}
	return fmt.Sprintf("STS %s refused: %s: %s", op, code, oneLine(msg))
}

// federationProblem turns a failed console sign-in into one line.
func federationProblem(err error, flagGiven bool) error {
	var fe *awsfed.FederationError
	if !errors.As(err, &fe) {
		return err
	}
	host := hostOf(fe.Endpoint)
	if errors.Is(err, awsfed.ErrSigninToken) {
		return &adviceError{msg: fmt.Sprintf("the AWS federation endpoint %s gave no sign-in token (HTTP %d): the credentials may be expired or revoked; try again with --refresh",
			host, fe.Status), err: err}
	}
	why, ok := netReason(err)
	if !ok {
		why = oneLine(fe.Err.Error())
	}
	try := "check your network and proxy, or point --federation-endpoint (config: federation_endpoint) at a reachable one"
	if flagGiven {
		try = "check --federation-endpoint, your network and proxy"
	}
	return &adviceError{msg: fmt.Sprintf("cannot reach the AWS federation endpoint %s (%s): %s", host, why, try), err: err}
}

// idpProblem turns a failed call to the IdP into one line (the IdP URL is
// the configured one).
func idpProblem(what, endpoint string, err error) error {
	return unreachable(what, "the IdP", endpoint, "the IdP URL (warden configure --idp-url)", err)
}

// unreachable is idpProblem naming the server who and the setting to
// check, fix.
func unreachable(what, who, endpoint, fix string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // "Get \"https://…\": " says nothing the line does not
	}
	if why, ok := netReason(err); ok {
		return &adviceError{msg: fmt.Sprintf("%s: cannot reach %s at %s (%s): check your network and proxy, or %s",
			what, who, hostOf(endpoint), why, fix), err: err}
	}
	return fmt.Errorf("%s at %s: %w", what, hostOf(endpoint), err)
}

// postForm posts form to a token endpoint (auth, when not nil, adds the
// client authentication) and reads the answer, at most 1 MiB. A network
// error is returned as it is, for idpProblem or unreachable.
func (a *App) postForm(ctx context.Context, endpoint string, form url.Values, auth func(*http.Request)) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if auth != nil {
		auth(req)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, body, err
}

// stsMessage is the message of STS's error answer, "" for none.
func stsMessage(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorMessage()
	}
	return ""
}
