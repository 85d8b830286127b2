package samlidp

import (
	"context"
	"crypto/rand"
	"testing"
)

// BenchmarkAWSConsole: a signed one-role AWS response for a user who is
// already signed in (rule evaluation, assertion, RSA-2048 signature,
// serialization, base64), Assertion signed only (the default).
func BenchmarkAWSConsole(b *testing.B) {
	benchAWSConsole(b, false)
}

// BenchmarkAWSConsoleSignResponse: the same with the Response signed too.
func BenchmarkAWSConsoleSignResponse(b *testing.B) {
	benchAWSConsole(b, true)
}

func benchAWSConsole(b *testing.B, signResponse bool) {
	f := newFixture(b, func(c *Config, d *Deps) { c.AWS.SignResponse = signResponse; d.Rand = rand.Reader })
	grant := grantOf(b, f.rules, "alice", "arn:aws:iam::111122223333:role/AdministratorAccess")
	user := testUsers["alice"]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.idp.AWSConsoleAuthn(ctx, user, f.password(), grant, "https://console.aws.amazon.com/"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAWSConsoleSerial: one core's cost per response.
func BenchmarkAWSConsoleSerial(b *testing.B) {
	f := newFixture(b, func(_ *Config, d *Deps) { d.Rand = rand.Reader })
	grant := grantOf(b, f.rules, "alice", "arn:aws:iam::111122223333:role/AdministratorAccess")
	user := testUsers["alice"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.idp.AWSConsoleAuthn(context.Background(), user, f.password(), grant, ""); err != nil {
			b.Fatal(err)
		}
	}
}
