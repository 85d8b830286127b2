package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/testenv"
)

// buildWarden builds cmd/warden into a temporary directory.
func buildWarden(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warden")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/wardenidp/warden/cmd/warden").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestAWSCLIWithMoto: a profile written by `warden profile add` makes
// Debian's awscli (/usr/bin/aws) get credentials through `warden
// credential-process` from moto's STS, and `warden exec` hands them to aws.
// moto validates nothing (rules section F): this proves the plumbing.
func TestAWSCLIWithMoto(t *testing.T) {
	aws := testenv.Binary(t, "aws")
	moto := testenv.Moto(t)
	idp := newFakeIdP(t)
	a, _, _ := signedInApp(t, idp.srv.URL, time.Now)
	warden := buildWarden(t)
	home := t.TempDir()
	cfgFile := filepath.Join(home, ".aws", "config")
	env := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "WARDEN_CONFIG_DIR=" + a.ConfigDir, "WARDEN_CACHE_DIR=" + a.CacheDir,
		"AWS_CONFIG_FILE=" + cfgFile, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, ".aws", "credentials"), "AWS_PAGER="}
	runIt := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	runIt(warden, "profile", "add", "--role", tRole, "--profile", "ro", "--sts-endpoint", moto, "--region", "eu-west-1")
	cfg, _ := os.ReadFile(cfgFile)
	if !strings.Contains(string(cfg), "credential_process = "+warden+" credential-process --role "+tRole) {
		t.Fatalf("config:\n%s", cfg)
	}
	out := runIt(aws, "sts", "get-caller-identity", "--endpoint-url", moto, "--profile", "ro", "--output", "json")
	if !strings.Contains(out, `"Account"`) {
		t.Fatalf("get-caller-identity: %s", out)
	}
	t.Logf("aws via credential_process: %s", strings.Join(strings.Fields(out), " "))
	out = runIt(warden, "exec", "--role", tRole, "--sts-endpoint", moto, "--", aws, "sts", "get-caller-identity", "--endpoint-url", moto, "--output", "json")
	if !strings.Contains(out, `"Account"`) {
		t.Fatalf("exec get-caller-identity: %s", out)
	}
	// The exit code passes through exec.
	cmd := exec.Command(warden, "exec", "--role", tRole, "--sts-endpoint", moto, "--", "sh", "-c", "exit 7")
	cmd.Env = env
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("exec exit code %v (%v), want 7", cmd.ProcessState.ExitCode(), err)
	}
}

// BenchmarkCredentialProcessWholeProcess runs the built `warden
// credential-process` with cached credentials as a whole process and
// reports the median wall time.
func BenchmarkCredentialProcessWholeProcess(b *testing.B) {
	idp, fsts := newFakeIdP(b), newFakeSTS(b)
	sts := fsts.srv.URL
	a, _, _ := signedInApp(b, idp.srv.URL, time.Now)
	warden := buildWarden(b)
	env := append(os.Environ(), "WARDEN_CONFIG_DIR="+a.ConfigDir, "WARDEN_CACHE_DIR="+a.CacheDir)
	one := func() {
		cmd := exec.Command(warden, "credential-process", "--role", tRole, "--sts-endpoint", sts)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	one() // fill the cache
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		one()
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
