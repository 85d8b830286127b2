package awsfed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestFederationURL(t *testing.T) {
	for _, tc := range []struct{ part, region, want string }{
		{"aws", "", "https://signin.aws.amazon.com/federation"},
		{"aws", "us-east-1", "https://signin.aws.amazon.com/federation"},
		{"aws", "eu-west-1", "https://eu-west-1.signin.aws.amazon.com/federation"},
		{"aws-us-gov", "us-gov-west-1", "https://signin.amazonaws-us-gov.com/federation"},
		{"aws-cn", "cn-north-1", "https://signin.amazonaws.cn/federation"},
	} {
		if got, err := FederationURL(tc.part, tc.region); err != nil || got != tc.want {
			t.Errorf("FederationURL(%s, %s) = %q, %v; want %q", tc.part, tc.region, got, err, tc.want)
		}
	}
	if _, err := FederationURL("aws", "cn-north-1"); err == nil {
		t.Error("China region accepted in the aws partition")
	}
}

func TestConsoleSigninURL(t *testing.T) {
	creds := Credentials{AccessKeyID: "ASIA1", SecretAccessKey: "sk", SessionToken: "st"}
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		got = r.URL.Query()
		var s map[string]string
		if got.Get("Action") != "getSigninToken" || json.Unmarshal([]byte(got.Get("Session")), &s) != nil ||
			s["sessionId"] != "ASIA1" || s["sessionKey"] != "sk" || s["sessionToken"] != "st" || len(s) != 3 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"SigninToken":"TOKEN"}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	u, err := ConsoleSigninURL(ctx, ConsoleSignin{Endpoint: srv.URL, Duration: 3600,
		Destination: "https://eu-west-1.console.aws.amazon.com/s3/"}, creds)
	if err != nil {
		t.Fatal(err)
	}
	if got.Get("SessionDuration") != "3600" {
		t.Errorf("SessionDuration %q", got.Get("SessionDuration"))
	}
	lu, _ := url.Parse(u)
	q := lu.Query()
	if !strings.HasPrefix(u, srv.URL+"?") || q.Get("Action") != "login" || q.Get("SigninToken") != "TOKEN" ||
		q.Get("Issuer") != "warden" || q.Get("Destination") != "https://eu-west-1.console.aws.amazon.com/s3/" {
		t.Errorf("login URL %s", u)
	}
	// No duration: SessionDuration left out; default destination.
	u, err = ConsoleSigninURL(ctx, ConsoleSignin{Endpoint: srv.URL}, creds)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["SessionDuration"]; ok {
		t.Error("SessionDuration sent without a duration")
	}
	if lu, _ := url.Parse(u); lu.Query().Get("Destination") != "https://console.aws.amazon.com/" {
		t.Errorf("default destination in %s", u)
	}
	// Refused credentials.
	if _, err := ConsoleSigninURL(ctx, ConsoleSignin{Endpoint: srv.URL}, Credentials{AccessKeyID: "x"}); !errors.Is(err, ErrSigninToken) {
		t.Errorf("err %v", err)
	}
	// Bad inputs never reach the network.
	for _, s := range []ConsoleSignin{
		{Destination: "https://evil.example.com/"},
		{Destination: "http://console.aws.amazon.com/"},
		{Partition: "aws-cn", Destination: "https://console.aws.amazon.com/"},
		{Partition: "nope"},
		{Duration: 60},
	} {
		s.Endpoint = "http://127.0.0.1:1"
		if _, err := ConsoleSigninURL(ctx, s, creds); err == nil || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%+v: err %v", s, err)
		}
	}
	// A network error does not leak the credentials in the URL.
	_, err = ConsoleSigninURL(ctx, ConsoleSignin{Endpoint: "http://127.0.0.1:1"}, creds)
	if err == nil || strings.Contains(err.Error(), "sk") && strings.Contains(err.Error(), "sessionKey") {
		t.Errorf("err %v", err)
	}
}
