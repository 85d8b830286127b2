package samlidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"
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

// BenchmarkAWSConsoleVsRSA measures, in one run and in CPU time, a signed
// one-role AWS response (AWSConsoleAuthn) against its floor, one
// rsa.SignPKCS1v15 (SHA-256) with the same key, alternating the two in
// rounds so that a shared machine's drift falls on both alike. Reported:
// rsa-cpu-us, saml-cpu-us (per op) and saml/rsa.
//
//	go test -run '^$' -bench AWSConsoleVsRSA -benchtime 2000x ./internal/samlidp/
func BenchmarkAWSConsoleVsRSA(b *testing.B) {
	f := newFixture(b, func(_ *Config, d *Deps) { d.Rand = rand.Reader })
	grant := grantOf(b, f.rules, "alice", "arn:aws:iam::111122223333:role/AdministratorAccess")
	user := testUsers["alice"]
	key := f.idp.keys.Current().Key
	digest := sha256.Sum256([]byte("warden"))
	ctx := context.Background()
	var rsaCPU, samlCPU time.Duration
	const rounds = 8
	b.ReportAllocs()
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		c0 := cpuTime()
		for range n {
			if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
		c1 := cpuTime()
		for range n {
			if _, err := f.idp.AWSConsoleAuthn(ctx, user, f.password(), grant, ""); err != nil {
				b.Fatal(err)
			}
		}
		c2 := cpuTime()
		rsaCPU, samlCPU = rsaCPU+c1-c0, samlCPU+c2-c1
	}
	b.StopTimer()
	b.ReportMetric(float64(rsaCPU.Nanoseconds())/1e3/float64(b.N), "rsa-cpu-us")
	b.ReportMetric(float64(samlCPU.Nanoseconds())/1e3/float64(b.N), "saml-cpu-us")
	b.ReportMetric(float64(samlCPU)/float64(rsaCPU), "saml/rsa")
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
