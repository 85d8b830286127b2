package cli

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testApp is an App on temporary directories, buffers and no terminal.
func testApp(t testing.TB) *App {
	t.Helper()
	return &App{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Stdin: strings.NewReader(""),
		Now: time.Now, HTTP: &http.Client{Timeout: 10 * time.Second},
		ConfigDir: t.TempDir(), CacheDir: t.TempDir(),
		IsTerminal: func() bool { return false }, OpenBrowser: func(string) error { return ErrNoBrowser }}
}
