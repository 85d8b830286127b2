package awsfed

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestSTSEndpoint(t *testing.T) {
	for _, tc := range []struct{ part, region, want string }{
		{"aws", "", "https://sts.us-east-1.amazonaws.com"},
		{"aws", "eu-west-1", "https://sts.eu-west-1.amazonaws.com"},
		{"aws-us-gov", "", "https://sts.us-gov-west-1.amazonaws.com"},
		{"aws-us-gov", "us-gov-east-1", "https://sts.us-gov-east-1.amazonaws.com"},
		{"aws-cn", "", "https://sts.cn-north-1.amazonaws.com.cn"},
		{"aws-cn", "cn-northwest-1", "https://sts.cn-northwest-1.amazonaws.com.cn"},
	} {
		if got, err := STSEndpoint(tc.part, tc.region); err != nil || got != tc.want {
			t.Errorf("STSEndpoint(%s, %q) = %q, %v; want %s", tc.part, tc.region, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ part, region string }{
		{"aws", "us-gov-west-1"}, {"aws", "cn-north-1"}, {"aws-us-gov", "us-east-1"}, {"aws-cn", "eu-west-1"},
		{"aws", "not a region"}, {"aws-eu", "eu-west-1"},
	} {
		if got, err := STSEndpoint(tc.part, tc.region); err == nil {
			t.Errorf("STSEndpoint(%s, %q) = %q, want an error", tc.part, tc.region, got)
		}
	}
	for region, want := range map[string]string{"us-gov-west-1": "aws-us-gov", "cn-north-1": "aws-cn", "eu-west-1": "aws", "us-east-1": "aws"} {
		if got := PartitionOfRegion(region); got != want {
			t.Errorf("PartitionOfRegion(%s) = %s, want %s", region, got, want)
		}
	}
	for _, id := range PartitionIDs() {
		p, _ := LookupPartition(id)
		if p.DNSSuffix == "" || ValidRegion(id, p.DefaultRegion) != nil {
			t.Errorf("%s: DNS suffix %q, default region %q", id, p.DNSSuffix, p.DefaultRegion)
		}
	}
}

// hostRecorder sends every request to srv and records the host it was
// meant for.
type hostRecorder struct {
	srv   *url.URL
	mu    sync.Mutex
	hosts []string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = h.srv.Scheme, h.srv.Host
	return http.DefaultTransport.RoundTrip(r)
}

// The SDK calls the regional endpoint of the role's partition, and a
// region of another partition is refused before any call.
func TestSTSCallsThePartitionsEndpoint(t *testing.T) {
	srv := httptest.NewServer(&fakeSTS{})
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	for _, tc := range []struct{ part, region, role, host string }{
		{"aws", "", testRole, "sts.us-east-1.amazonaws.com"},
		{"aws-us-gov", "", "arn:aws-us-gov:iam::111122223333:role/ReadOnly", "sts.us-gov-west-1.amazonaws.com"},
		{"aws-cn", "cn-northwest-1", "arn:aws-cn:iam::111122223333:role/ReadOnly", "sts.cn-northwest-1.amazonaws.com.cn"},
	} {
		rec := &hostRecorder{srv: u}
		o := STSOptions{Partition: tc.part, Region: tc.region, HTTPClient: &http.Client{Transport: rec}}
		if _, err := AssumeRoleWithWebIdentity(context.Background(), o, tc.role, "bob", "a.b.c", 0); err != nil {
			t.Fatalf("%s: %v", tc.part, err)
		}
		if len(rec.hosts) != 1 || rec.hosts[0] != tc.host {
			t.Errorf("%s: called %q, want %s", tc.part, rec.hosts, tc.host)
		}
	}
	rec := &hostRecorder{srv: u}
	_, err := AssumeRoleWithSAML(context.Background(), STSOptions{Partition: "aws", Region: "us-gov-west-1", HTTPClient: &http.Client{Transport: rec}},
		testRole, testProvider, "PHNhbWw+", 0)
	if err == nil || !strings.Contains(err.Error(), "not in partition aws") || len(rec.hosts) != 0 {
		t.Errorf("a GovCloud region for an aws role: %v, calls %q", err, rec.hosts)
	}
}
