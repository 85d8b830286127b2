package main

import (
	"os"
	"path/filepath"
	"runtime"
)

// wardenName is the full CLI's file name.
var wardenName = func() string {
	if runtime.GOOS == "windows" {
		return "warden.exe"
	}
	return "warden"
}()

// findWarden returns the warden binary beside this one (the directory of
// os.Executable, symbolic links resolved as the OS does), else the first
// in PATH.
func findWarden() (string, bool) {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), wardenName); isExecutable(p) {
			return p, true
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "." // as exec.LookPath and the shells take an empty entry
		}
		if p := filepath.Join(dir, wardenName); isExecutable(p) {
			if abs, err := filepath.Abs(p); err == nil {
				return abs, true
			}
		}
	}
	return "", false
}

// isExecutable: a regular file with an execute bit (any file on Windows).
func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (runtime.GOOS == "windows" || st.Mode().Perm()&0o111 != 0)
}

// handedOver is set in the environment of the warden that handOver
// starts: a "warden" that is warden-credentials again (a link or copy)
// would otherwise start itself with one argument more each time.
const handedOver = "WARDEN_CREDENTIALS_HANDED_OVER"

// handOver runs `warden credential-process args...` in place of this
// process and does not return.
func handOver(args []string) {
	warden, ok := findWarden()
	if !ok {
		fail("warden-credentials: cannot find " + wardenName + " beside this program or in PATH; it runs `warden credential-process` when the cache does not answer")
	}
	if os.Getenv(handedOver) != "" {
		fail("warden-credentials: started by warden-credentials as warden: " + warden + " is not the warden CLI")
	}
	if err := os.Setenv(handedOver, "1"); err != nil {
		fail("warden-credentials: " + err.Error())
	}
	argv := append([]string{warden, "credential-process"}, args...)
	if err := execve(warden, argv); err != nil {
		fail("warden-credentials: starting " + warden + ": " + err.Error())
	}
}
