// Package testenv tells tests where the real test servers are. The servers are
// started by deploy/testenv/up.sh (make test does it), which exports their
// addresses as environment variables. A test whose server is absent skips
// with a message saying how to start it, except under CI=true, where it fails:
// CI must never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Require returns the values of the named environment variables, or skips
// (fails under CI=true) when any is unset.
func Require(t testing.TB, names ...string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(names))
	var missing []string
	for _, n := range names {
		v, ok := os.LookupEnv(n)
		if !ok || v == "" {
			missing = append(missing, n)
			continue
		}
		out[n] = v
	}
	if len(missing) > 0 {
		msg := "test server not configured: " + join(missing) +
			" unset; run `make test`, or `eval $(deploy/testenv/up.sh)` then go test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return out
}

// Binary returns the path of a program the test needs (redis-server,
// xmlsec1, chromium, moto_server), or skips (fails under CI=true) when it is
// not installed. It looks on PATH, then in the system directories (root's
// PATH may lack /usr/sbin), then in pyenv's Pythons (moto lives there on
// our machines).
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	candidates := []string{"/usr/bin/" + name, "/usr/sbin/" + name, "/usr/local/bin/" + name}
	for _, root := range []string{os.Getenv("PYENV_ROOT"), os.Getenv("HOME") + "/.pyenv", "/root/.pyenv"} {
		if root == "" || root == "/.pyenv" {
			continue
		}
		found, _ := filepath.Glob(filepath.Join(root, "versions", "*", "bin", name))
		candidates = append(candidates, found...)
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := name + " not installed; run `make deps` (deploy/testenv/install-deps.sh: apt-get, and pip for moto_server) or `make test`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// HangGuard is when a test that waits for something to happen (replicas
// converging, a watch firing) should give up: 30 seconds before the test
// binary's own -timeout, so that the failure names what never happened,
// or in 10 minutes without one. It is never a figure: how long the wait
// took belongs in a log line or a benchmark.
func HangGuard(t testing.TB) time.Time {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			return end.Add(-30 * time.Second)
		}
	}
	return time.Now().Add(10 * time.Minute)
}
