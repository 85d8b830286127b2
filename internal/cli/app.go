package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"time"

	"golang.org/x/term"

	"github.com/wardenidp/warden/internal/cli/credcache"
)

// ErrLoginRequired means that no valid token or refresh token is cached and
// the caller may not prompt: the user must run `warden login`.
var ErrLoginRequired = errors.New("not signed in: run `warden login`")

// ErrNotConfigured means that no IdP URL is configured.
var ErrNotConfigured = errors.New("no IdP configured: run `warden configure --idp-url https://idp.example.com`")

// App is what every command works with: the streams, the clock, the HTTP
// client and the user's directories. Tests fill it in by hand.
type App struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Now            func() time.Time
	HTTP           *http.Client
	ConfigDir      string      // default os.UserConfigDir()/warden; env WARDEN_CONFIG_DIR overrides
	CacheDir       string      // default os.UserCacheDir()/warden (0700); env WARDEN_CACHE_DIR overrides
	IsTerminal     func() bool // stdin and stderr are terminals
	OpenBrowser    func(url string) error
	// Args is the command line after the program name (os.Args[1:]):
	// `credential-process` indexes its cached credentials by it for
	// warden-credentials. Nil: no index.
	Args []string

	// elevPoll is how often `warden elevate` asks about a pending request
	// (0: every 2 s); tests shorten it.
	elevPoll time.Duration
	// stepUp signs in again with a fresh second factor for elevation (nil:
	// a device login with the "elevate" scope, as login --mfa); tests
	// replace it.
	stepUp func(ctx context.Context) error
	// executable is os.Executable (nil); tests replace it to place
	// `profile add` elsewhere.
	executable func() (string, error)
	// after is time.After (nil); tests replace it, with Now, by a fake
	// clock, so that `workload token-file`'s schedule is checked without
	// waiting for it.
	after func(time.Duration) <-chan time.Time
}

// NewApp returns the App of a real process: os streams, the wall clock, an
// HTTP client with a 30 s timeout, the user's config and cache directories.
func NewApp() *App {
	a := &App{
		Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin,
		Now:  time.Now,
		HTTP: &http.Client{Timeout: 30 * time.Second},
		IsTerminal: func() bool {
			return term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stderr.Fd()))
		},
		OpenBrowser: openBrowser,
		Args:        os.Args[1:],
	}
	// warden-credentials finds them alike (credcache).
	a.ConfigDir, a.CacheDir = credcache.ConfigDir(), credcache.CacheDir()
	return a
}

// ErrNoBrowser means that there is no display to open a browser on.
var ErrNoBrowser = errors.New("no display to open a browser on")

// openBrowser starts the system's URL opener without waiting for it: `open`
// on macOS, rundll32's FileProtocolHandler on Windows, xdg-open elsewhere
// when DISPLAY or WAYLAND_DISPLAY says there is a graphical session.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return ErrNoBrowser
		}
		cmd = exec.Command("xdg-open", url)
	}
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
