package app

import (
	"os"
	"os/exec"
	"testing"
)

func startProcess(t testing.TB, name string, args ...string) *os.Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process
}
