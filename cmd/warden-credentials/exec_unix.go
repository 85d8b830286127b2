//go:build unix

package main

import (
	"os"
	"syscall"
)

// execve replaces this process with path, keeping the environment, the
// standard streams and the process ID, so that the AWS tool sees warden's
// output and exit status as if it had started warden itself. It returns
// only on failure.
func execve(path string, argv []string) error {
	return syscall.Exec(path, argv, os.Environ())
}
