package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// Device login outcomes that end `warden login` with a clear message.
var (
	ErrAccessDenied = errors.New("sign-in denied: the request was refused in the browser")
	ErrCodeExpired  = errors.New("the code expired before it was approved: run `warden login` again")
)

type loginOptions struct {
	NoBrowser bool
	// MFA: the sign-in is for roles that require a second factor; the
	// user is told that the approval page asks for it.
	MFA bool
	// ExtraScopes are asked for besides loginScopes ("elevate": the
	// approval page demands a fresh second factor).
	ExtraScopes []string
}

// deviceLogin runs the device authorization grant (RFC 8628) and caches
// the tokens. Callers hold the token lock, so that concurrent callers never
// start two device flows. The code, URL and QR code go to stderr.
func (a *App) deviceLogin(ctx context.Context, idp string, opts loginOptions) (tokenCache, error) {
	d, err := a.Discovery(ctx)
	if err != nil {
		return tokenCache{}, err
	}
	if d.DeviceAuthorizationEndpoint == "" {
		return tokenCache{}, errors.New("login: the IdP announces no device_authorization_endpoint")
	}
	conf := octx(a, ctx)
	oc := oauthConfig(d)
	oc.Scopes = append(slices.Clone(loginScopes), opts.ExtraScopes...)
	da, err := oc.DeviceAuth(conf)
	if err != nil {
		return tokenCache{}, fmt.Errorf("login: device authorization: %w", oauthErr(err))
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	w := a.Stderr
	fmt.Fprintf(w, "To sign in, open %s\nand enter the code:  %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		if qr := qrHalfBlocks(da.VerificationURIComplete); qr != "" {
			fmt.Fprintf(w, "Or scan this QR code with your phone:\n%s\n", qr)
		}
	}
	if opts.MFA {
		fmt.Fprintln(w, "The approval page will ask for your second factor (passkey, security key or authenticator app code); give it there.")
	}
	if !opts.NoBrowser && a.OpenBrowser != nil {
		if err := a.OpenBrowser(uri); err == nil {
			fmt.Fprintln(w, "Opened your browser on the sign-in page.")
		}
	}
	stop := func() {}
	if a.IsTerminal != nil && a.IsTerminal() {
		stop = spinner(w, da.Expiry, a.Now)
	}
	tok, err := oc.DeviceAccessToken(conf, da)
	stop()
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "access_denied":
			return tokenCache{}, ErrAccessDenied
		case errors.As(err, &re) && re.ErrorCode == "expired_token",
			errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return tokenCache{}, ErrCodeExpired
		}
		return tokenCache{}, fmt.Errorf("login: %w", oauthErr(err))
	}
	t, err := a.saveToken(idp, d, tokenCache{}, tok)
	if err != nil {
		return tokenCache{}, err
	}
	fmt.Fprintf(w, "Signed in as %s.\n", orUnknown(t.Username))
	return t, nil
}

func octx(a *App, ctx context.Context) context.Context { return a.oauthCtx(ctx) }

// oauthErr shortens an oauth2.RetrieveError to its code and description
// (its Error() includes the whole response body).
func oauthErr(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return errors.New(re.ErrorCode)
	}
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown user)"
	}
	return s
}

// qrHalfBlocks renders s as a QR code in half-block characters, two module
// rows per text line. Dark modules are drawn as spaces and light ones as
// blocks, which reads on the usual dark terminal background; the quiet zone
// is kept.
func qrHalfBlocks(s string) string {
	q, err := qrcode.New(s, qrcode.Low)
	if err != nil {
		return ""
	}
	bm := q.Bitmap() // true = dark, with a 4-module quiet zone
	var b strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			top := !bm[y][x]
			bottom := y+1 < len(bm) && !bm[y+1][x]
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// spinner shows a spinner and the time left until deadline on w, one line
// rewritten in place, until stop is called (which clears the line).
func spinner(w io.Writer, deadline time.Time, now func() time.Time) (stop func()) {
	return spinnerWith(w, "Waiting for approval in the browser…", deadline, now)
}

// spinnerWith is spinner with its own label.
func spinnerWith(w io.Writer, label string, deadline time.Time, now func() time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			left := deadline.Sub(now()).Round(time.Second)
			if left < 0 || deadline.IsZero() {
				left = 0
			}
			fmt.Fprintf(w, "\r%c %s %s left ", frames[i%len(frames)], label, clockLeft(left))
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// clockLeft prints a time left as m:ss, or h:mm:ss from an hour on.
func clockLeft(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func loginCmd(a *App) *cobra.Command {
	var opts loginOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in at the IdP with a device code (browser, or code on another device)",
		Long: `Signs in with the OAuth device authorization grant: opens your browser on
the IdP's device page (unless --no-browser or there is no display), and prints
the URL, the code and a QR code for another device. The tokens are cached; with
a valid cached token or refresh token there is no prompt at all.

--mfa signs in again even then, for roles that require a second factor: the
approval page asks for yours, and the new sign-in replaces the old one (which
is revoked once the new one succeeds).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if opts.MFA {
				// A new sign-in whatever is cached: the old grant may
				// lack the second factor (the server decides; the
				// approval page asks a user who has one).
				force = true
			}
			cfg, err := a.LoadConfig()
			if err != nil {
				return err
			}
			if cfg.IdPURL == "" {
				return ErrNotConfigured
			}
			if !force {
				if t, ok := a.readToken(cfg.IdPURL); ok && t.valid(a.Now()) {
					fmt.Fprintf(a.Stderr, "Already signed in as %s until %s (--force to sign in again).\n",
						orUnknown(t.Username), t.Expiry.Local().Format("2006-01-02 15:04"))
					return nil
				}
			}
			unlock, err := a.Lock(ctx, tokenLockName)
			if err != nil {
				return err
			}
			defer unlock()
			old, hadOld := a.readToken(cfg.IdPURL)
			if !force && hadOld && old.RefreshToken != "" {
				if t, err := a.refresh(ctx, cfg.IdPURL, old); err == nil {
					fmt.Fprintf(a.Stderr, "Already signed in as %s until %s (--force to sign in again).\n",
						orUnknown(t.Username), t.Expiry.Local().Format("2006-01-02 15:04"))
					return nil
				}
			}
			if _, err := a.deviceLogin(ctx, cfg.IdPURL, opts); err != nil {
				return err
			}
			if force && hadOld && old.RefreshToken != "" {
				// The previous sign-in is replaced: end it at the IdP too.
				if d, err := a.Discovery(ctx); err == nil {
					_ = a.revoke(ctx, d, old.RefreshToken, "refresh_token")
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.NoBrowser, "no-browser", false, "do not open a browser; only print the URL, code and QR code")
	cmd.Flags().BoolVar(&force, "force", false, "sign in again even when a valid sign-in is cached")
	cmd.Flags().BoolVar(&opts.MFA, "mfa", false, "sign in again with your second factor (for roles that require one); replaces the cached sign-in")
	return cmd
}

func logoutCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the sign-in at the IdP and wipe cached tokens and credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.logout(cmd.Context())
		},
	}
}

// logout revokes the cached refresh token (RFC 7009) and wipes the cache:
// tokens, roles, discovery and every cached credential. The wipe happens
// even when the IdP cannot be reached; the message says so.
func (a *App) logout(ctx context.Context) error {
	if a.CacheDir == "" {
		return errors.New("logout: no cache directory")
	}
	unlock, err := a.Lock(ctx, tokenLockName)
	if err != nil {
		return err
	}
	defer unlock()
	w := a.Stderr
	var t tokenCache
	hasToken, _ := readJSON(a.tokenPath(), &t)
	switch {
	case !hasToken || (t.RefreshToken == "" && t.AccessToken == ""):
		fmt.Fprintln(w, "Not signed in: nothing to revoke.")
	default:
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.revokeAll(rctx, t)
		cancel()
		if err != nil {
			fmt.Fprintf(w, "Could not revoke the sign-in at the IdP (%v); it stays valid there until it expires.\n", err)
		} else {
			fmt.Fprintf(w, "Revoked the sign-in of %s at %s.\n", orUnknown(t.Username), t.IdPURL)
		}
	}
	n := 0
	credsDir := filepath.Join(a.CacheDir, "creds")
	if ents, err := os.ReadDir(credsDir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") {
				n++
			}
		}
	}
	var errs []error
	for _, p := range []string{a.tokenPath(), a.rolesPath(), a.eligiblePath(), a.discoveryPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(credsDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("logout: wiping the cache: %w", err)
	}
	fmt.Fprintf(w, "Removed the cached tokens and %d cached credential set(s) from %s.\n", n, a.CacheDir)
	return nil
}

// revokeAll revokes the refresh token (which ends the whole grant at
// wardend) and then the access token.
func (a *App) revokeAll(ctx context.Context, t tokenCache) error {
	var d Discovery
	var err error
	if ok, _ := readJSON(a.discoveryPath(), &d); !ok || d.IdPURL != t.IdPURL || d.RevocationEndpoint == "" {
		d, err = a.fetchDiscovery(ctx, t.IdPURL)
		if err != nil {
			return err
		}
	}
	if t.RefreshToken != "" {
		if err := a.revoke(ctx, d, t.RefreshToken, "refresh_token"); err != nil {
			return err
		}
	}
	if t.AccessToken != "" {
		_ = a.revoke(ctx, d, t.AccessToken, "access_token")
	}
	return nil
}
