package awsfed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// ConsoleSignin describes one console sign-in URL to build from temporary
// credentials (items 41–44).
type ConsoleSignin struct {
	HTTPClient *http.Client // default http.DefaultClient
	Partition  string       // "aws" (default), "aws-us-gov", "aws-cn"
	Region     string       // picks the regional federation endpoint (aws partition); "" = global
	// Endpoint replaces the federation endpoint (tests); default FederationURL.
	Endpoint string
	// Destination is the console page to open; it must be a console URL of
	// the partition (ValidConsoleURL). Default: the partition's console home.
	Destination string
	// Issuer names who built the link; AWS shows it when the session ends
	// (any string; default "warden").
	Issuer string
	// Duration is SessionDuration in seconds, 900–43200; 0 leaves it out
	// and the console session lasts as long as the credentials (item 42).
	Duration int
}

// FederationURL returns the AWS federation endpoint of the partition and
// region (item 44): https://<region>.signin.aws.amazon.com/federation for
// a region of the aws partition other than us-east-1, else the
// partition's sign-in host.
func FederationURL(partition, region string) (string, error) {
	acs, err := SigninACS(partition, region)
	if err != nil {
		return "", err
	}
	return acs[:len(acs)-len("/saml")] + "/federation", nil
}

// ErrSigninToken is returned when the federation endpoint refuses the
// credentials or answers something other than a sign-in token.
var ErrSigninToken = errors.New("awsfed: AWS federation endpoint gave no sign-in token")

// FederationError is a failed getSigninToken: Err is the network error
// met reaching Endpoint (Status 0), or ErrSigninToken for an answer
// without a token. It never holds the request URL, which carries the
// credentials.
type FederationError struct {
	Endpoint string
	Status   int // the HTTP status of the answer; 0: none came
	Err      error
}

func (e *FederationError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%v (HTTP %d from %s; are these AssumeRole credentials, still valid?)", e.Err, e.Status, e.Endpoint)
	}
	return fmt.Sprintf("awsfed: federation endpoint %s: %v", e.Endpoint, e.Err)
}

func (e *FederationError) Unwrap() error { return e.Err }

// ConsoleSigninURL exchanges c for a sign-in token at the federation
// endpoint (Action=getSigninToken, GET only) and returns the
// Action=login URL that opens s.Destination; it is valid for 15 minutes
// (item 43). The credentials must come from AssumeRole* (item 42).
func ConsoleSigninURL(ctx context.Context, s ConsoleSignin, c Credentials) (string, error) {
	if s.Partition == "" {
		s.Partition = "aws"
	}
	p, ok := LookupPartition(s.Partition)
	if !ok {
		return "", fmt.Errorf("awsfed: unknown partition %q", s.Partition)
	}
	if s.Destination == "" {
		s.Destination = "https://" + p.ConsoleHost + "/"
	}
	if err := ValidConsoleURL(s.Partition, s.Destination); err != nil {
		return "", err
	}
	if s.Duration != 0 {
		if err := checkDuration(s.Duration); err != nil {
			return "", err
		}
	}
	if s.Issuer == "" {
		s.Issuer = "warden"
	}
	endpoint := s.Endpoint
	if endpoint == "" {
		var err error
		if endpoint, err = FederationURL(s.Partition, s.Region); err != nil {
			return "", err
		}
	}
	session, _ := json.Marshal(map[string]string{
		"sessionId": c.AccessKeyID, "sessionKey": c.SecretAccessKey, "sessionToken": c.SessionToken,
	})
	q := url.Values{"Action": {"getSigninToken"}, "Session": {string(session)}}
	if s.Duration != 0 {
		q.Set("SessionDuration", strconv.Itoa(s.Duration))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("awsfed: federation endpoint: %w", err)
	}
	client := s.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL holds the credentials: report the endpoint only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", &FederationError{Endpoint: endpoint, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", &FederationError{Endpoint: endpoint, Err: err}
	}
	var tok struct{ SigninToken string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.SigninToken == "" {
		return "", &FederationError{Endpoint: endpoint, Status: resp.StatusCode, Err: ErrSigninToken}
	}
	login := url.Values{"Action": {"login"}, "Issuer": {s.Issuer}, "Destination": {s.Destination}, "SigninToken": {tok.SigninToken}}
	return endpoint + "?" + login.Encode(), nil
}
