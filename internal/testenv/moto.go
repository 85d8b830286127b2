package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// Moto starts moto_server (AWS service mocks; the machine's pyenv Python
// has it) on a free loopback port for the test and returns its base URL.
// Moto validates nothing of a SAML response or web-identity token: it
// proves that credentials flow through the AWS tools, not conformance.
func Moto(t testing.TB) string {
	t.Helper()
	// deploy/testenv/install-deps.sh (make deps) installs it with pip
	// when it is missing.
	bin := Binary(t, "moto_server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(u + "/moto-api/"); err == nil {
			resp.Body.Close()
			return u
		}
	}
	t.Fatal("moto_server did not start")
	return ""
}
