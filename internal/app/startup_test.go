package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the logger and the test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDirectoryUnreachableAtStartup: a service bind that fails (here a wrong
// password) is logged at error level when wardend starts, without the
// password; wardend still starts, and /readyz names the directory.
func TestDirectoryUnreachableAtStartup(t *testing.T) {
	o := openLDAPOptions(t)
	const wrong = "wrong-service-password-6c1d"
	o.Directory.BindPassword = wrong
	var logs lockedBuffer
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	base := startApp(t, o)
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, `msg="directory unreachable at start-up"`) {
		t.Errorf("no error-level start-up log for the directory:\n%s", out)
	}
	if !strings.Contains(out, "Invalid Credentials") {
		t.Errorf("the start-up log does not say why:\n%s", out)
	}
	if strings.Contains(out, wrong) {
		t.Fatalf("the log shows the bind password:\n%s", out)
	}
	b := newBrowser(t, base)
	code, body, _ := b.get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"directory"`) {
		t.Errorf("/readyz = %d %s, want 503 naming the directory", code, body)
	}
}
