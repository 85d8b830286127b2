package app

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests, or, in a child process of BenchmarkConsoleCPU
// (hotpathEnv set), its load generator instead.
func TestMain(m *testing.M) {
	if file := os.Getenv(hotpathEnv); file != "" {
		if err := hotpathClient(file); err != nil {
			fmt.Fprintln(os.Stderr, "hotpath client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
