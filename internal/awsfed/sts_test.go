package awsfed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSTS answers the STS query protocol: each request is recorded; the
// answer is a fixed error or a success for the action.
type fakeSTS struct {
	mu       sync.Mutex
	requests []url.Values
	status   int
	code     string
	message  string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" {
		http.Error(w, "want an unsigned POST", http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.PostForm)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if f.code != "" {
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, f.code, f.message)
		return
	}
	action := r.PostForm.Get("Action")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>
<Credentials><AccessKeyId>ASIAFAKE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2030-01-02T03:04:05Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/ReadOnly/bob</Arn><AssumedRoleId>AROA:bob</AssumedRoleId></AssumedRoleUser>
</%[1]sResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></%[1]sResponse>`, action)
}

const (
	testRole     = "arn:aws:iam::111122223333:role/ReadOnly"
	testProvider = "arn:aws:iam::111122223333:saml-provider/Warden"
)

func TestAssumeRoleWithSAML(t *testing.T) {
	f := &fakeSTS{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	o := STSOptions{Region: "eu-west-1", Endpoint: srv.URL, HTTPClient: srv.Client()}
	c, err := AssumeRoleWithSAML(context.Background(), o, testRole, testProvider, "PHNhbWw+", 7200)
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{AccessKeyID: "ASIAFAKE", SecretAccessKey: "secret", SessionToken: "token",
		Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), AccountID: "111122223333"}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	got := f.requests[0]
	for k, v := range map[string]string{"Action": "AssumeRoleWithSAML", "Version": "2011-06-15", "RoleArn": testRole,
		"PrincipalArn": testProvider, "SAMLAssertion": "PHNhbWw+", "DurationSeconds": "7200"} {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	// Duration 0 leaves DurationSeconds out.
	if _, err := AssumeRoleWithSAML(context.Background(), o, testRole, testProvider, "PHNhbWw+", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.requests[1]["DurationSeconds"]; ok {
		t.Error("DurationSeconds sent for duration 0")
	}
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	f := &fakeSTS{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	o := STSOptions{Endpoint: srv.URL}
	c, err := AssumeRoleWithWebIdentity(context.Background(), o, testRole, "bob", "eyJ.a.b", 900)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIAFAKE" || c.AccountID != "111122223333" {
		t.Fatalf("got %+v", c)
	}
	got := f.requests[0]
	for k, v := range map[string]string{"Action": "AssumeRoleWithWebIdentity", "RoleArn": testRole,
		"RoleSessionName": "bob", "WebIdentityToken": "eyJ.a.b", "DurationSeconds": "900"} {
		if got.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, got.Get(k), v)
		}
	}
	if _, ok := got["ProviderId"]; ok {
		t.Error("ProviderId sent for OIDC (item 38)")
	}
}

func TestDurationChecked(t *testing.T) {
	for _, d := range []int{-1, 899, 43201} {
		if _, err := AssumeRoleWithSAML(context.Background(), STSOptions{Endpoint: "http://127.0.0.1:1"}, testRole, testProvider, "x", d); err == nil || !strings.Contains(err.Error(), "900") {
			t.Errorf("duration %d: err %v", d, err)
		}
	}
}

func TestAdvice(t *testing.T) {
	cases := []struct {
		status        int
		code, message string
		want          string
	}{
		{403, "IDPRejectedClaim", "Not authorized to perform sts:AssumeRoleWithSAML", "trust policy"},
		{403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", "trust policy"},
		{400, "InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://sso.example.com", "OIDC provider"},
		{400, "InvalidIdentityToken", "Incorrect token audience", "client ID list"},
		{400, "InvalidIdentityToken", "Invalid SAML", "invalid"},
		{400, "ExpiredTokenException", "Token expired", "clock skew"},
		{400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", "MaxSessionDuration"},
		{403, "RegionDisabledException", "STS is not activated in this region", "--region"},
		{400, "IDPCommunicationError", "Couldn't retrieve verification key", "JWKS"},
		{400, "MalformedPolicyDocument", "bad", "tag rules"},
		{400, "PackedPolicyTooLarge", "too large", "tag rules"},
		{400, "SomethingNew", "what", ""},
	}
	for _, tc := range cases {
		t.Run(tc.code+"/"+tc.want, func(t *testing.T) {
			srv := httptest.NewServer(&fakeSTS{status: tc.status, code: tc.code, message: tc.message})
			defer srv.Close()
			_, err := AssumeRoleWithSAML(context.Background(), STSOptions{Endpoint: srv.URL}, testRole, testProvider, "PHNhbWw+", 0)
			var se *STSError
			if !errors.As(err, &se) {
				t.Fatalf("err %v is not an STSError", err)
			}
			if STSErrorCode(err) != tc.code {
				t.Errorf("code %q, want %q", STSErrorCode(err), tc.code)
			}
			adv := Advice(err)
			if tc.want == "" && adv != "" || !strings.Contains(adv, tc.want) {
				t.Errorf("advice %q, want it to mention %q", adv, tc.want)
			}
		})
	}
	if Advice(errors.New("dial tcp: refused")) != "" {
		t.Error("advice for a network error")
	}
}

func TestSessionName(t *testing.T) {
	for in, want := range map[string]string{
		"bob": "bob", "jürgen": "j--rgen", "": "warden-cli", "a": "warden-cli",
		"pat o'connor@example.org": "pat-o-connor@example.org",
		strings.Repeat("x", 80):    strings.Repeat("x", 64),
	} {
		if got := SessionName(in); got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
	}
}
