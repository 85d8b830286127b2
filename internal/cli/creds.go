package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/cli/credcache"
)

// credFlags are the flags shared by the credential commands.
type credFlags struct {
	role, via, stsEndpoint, region string
	duration                       time.Duration
}

func (f *credFlags) register(cmd *cobra.Command, withDuration bool) {
	cmd.Flags().StringVarP(&f.role, "role", "r", "", "role: an ARN, account-id/role or account-name/role (picked interactively when omitted on a terminal)")
	cmd.Flags().StringVar(&f.via, "via", "", "STS path: saml (AssumeRoleWithSAML) or web-identity (AssumeRoleWithWebIdentity); default from config")
	cmd.Flags().StringVar(&f.stsEndpoint, "sts-endpoint", "", "STS endpoint URL (regional, private, or a test server)")
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default from config)")
	if withDuration {
		cmd.Flags().DurationVarP(&f.duration, "duration", "d", 0, "session length, 15m to 12h (default: config, else the role's)")
	}
	_ = cmd.RegisterFlagCompletionFunc("via", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{ViaSAML, ViaWebIdentity}, cobra.ShellCompDirectiveNoFileComp
	})
}

// credRequest is one resolved request for credentials.
type credRequest struct {
	cfg       Config
	configRaw []byte // the config file cfg was read from, for the index
	role      Role
	duration  int // seconds; 0 = STS's default
}

// resolve loads the config, applies the flags, and resolves the role.
func (a *App) resolve(ctx context.Context, f credFlags, interactive bool) (credRequest, error) {
	cfg, raw, err := a.loadConfig()
	if err != nil {
		return credRequest{}, err
	}
	if f.via != "" {
		cfg.Via = f.via
	}
	if f.region != "" {
		cfg.Region = f.region
	}
	if f.stsEndpoint != "" {
		cfg.STSEndpoint = f.stsEndpoint
	}
	if err := cfg.Validate(); err != nil {
		return credRequest{}, err
	}
	if cfg.IdPURL == "" {
		return credRequest{}, ErrNotConfigured
	}
	role, err := a.resolveRole(ctx, f.role, interactive)
	if err != nil {
		return credRequest{}, err
	}
	r := credRequest{cfg: cfg, configRaw: raw, role: role, duration: cfg.SessionSeconds}
	if f.duration != 0 {
		r.duration = int(f.duration / time.Second)
		if f.duration%time.Second != 0 || r.duration < 900 || r.duration > 43200 {
			return credRequest{}, fmt.Errorf("--duration %s: want 15m to 12h", f.duration)
		}
	}
	if r.duration == 0 {
		r.duration = role.SessionSeconds
	}
	return r, nil
}

// credsCache is CacheDir/creds/<credsKey>.json; warden-credentials reads
// it too, hence its own package.
type credsCache = credcache.Creds

func credsKey(via, roleARN string) string {
	h := sha256.Sum256([]byte(via + roleARN))
	return hex.EncodeToString(h[:])
}

func (a *App) credsPath(key string) string {
	return credcache.CredsPath(a.CacheDir, key)
}

// cachedCreds returns the cached credentials for via and role when more
// than 15 minutes remain (credcache.MinRemaining).
func (a *App) cachedCreds(key, via, roleARN string) (awsfed.Credentials, bool) {
	var c credsCache
	if ok, _ := readJSON(a.credsPath(key), &c); !ok || c.RoleARN != roleARN || c.Via != via {
		return awsfed.Credentials{}, false
	}
	if !c.Fresh(a.Now()) {
		return awsfed.Credentials{}, false
	}
	return awsfed.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, Expiration: c.Expiration, AccountID: c.AccountID}, true
}

// Credentials returns credentials for the request: cached while more than
// 15 minutes remain, else through a token exchange and an STS call, under
// a per-role file lock so that concurrent callers (the SDKs run
// credential_process in parallel) make one exchange and one STS call.
func (a *App) credentials(ctx context.Context, r credRequest, interactive bool) (awsfed.Credentials, error) {
	key := credsKey(r.cfg.Via, r.role.RoleARN)
	if c, ok := a.cachedCreds(key, r.cfg.Via, r.role.RoleARN); ok {
		return c, nil
	}
	unlock, err := a.Lock(ctx, "creds-"+key[:16])
	if err != nil {
		return awsfed.Credentials{}, err
	}
	defer unlock()
	if c, ok := a.cachedCreds(key, r.cfg.Via, r.role.RoleARN); ok {
		return c, nil
	}
	c, err := a.assume(ctx, r, interactive)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	if err := ensureDir(filepath.Join(a.CacheDir, "creds")); err != nil {
		return awsfed.Credentials{}, err
	}
	err = writeJSON(a.credsPath(key), credsCache{RoleARN: r.role.RoleARN, Via: r.cfg.Via, AccessKeyID: c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration, AccountID: c.AccountID})
	return c, err
}

// assume exchanges the access token for a role token and calls STS.
func (a *App) assume(ctx context.Context, r credRequest, interactive bool) (awsfed.Credentials, error) {
	tok, err := a.token(ctx, interactive, false)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	if r.duration == 0 {
		// A role given as an ARN (as `profile add` writes it) carries no
		// session length: take the role's from the roles listing (cached
		// briefly), else a role granted 8 h would get STS's default hour.
		if roles, err := a.Roles(ctx, false); err == nil {
			for _, x := range roles {
				if x.RoleARN == r.role.RoleARN {
					r.duration = x.SessionSeconds
				}
			}
		}
	}
	d, err := a.Discovery(ctx)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	roleTok, err := a.exchange(ctx, d.TokenEndpoint, tok.AccessToken, r.role.RoleARN, r.cfg.Via)
	var xe *ExchangeError
	if errors.As(err, &xe) && xe.Code == "invalid_request" && strings.Contains(xe.Description, "subject") {
		// The access token died early (revoked, or the IdP restarted):
		// refresh once and try again.
		if tok, err = a.token(ctx, interactive, true); err != nil {
			return awsfed.Credentials{}, err
		}
		roleTok, err = a.exchange(ctx, d.TokenEndpoint, tok.AccessToken, r.role.RoleARN, r.cfg.Via)
	}
	if errors.As(err, &xe) {
		xe.Spec = roleSpec(r.role)
	}
	if err != nil {
		return awsfed.Credentials{}, err
	}
	opts := awsfed.STSOptions{Region: r.cfg.Region, Endpoint: r.cfg.STSEndpoint, HTTPClient: a.HTTP}
	var c awsfed.Credentials
	if r.cfg.Via == ViaWebIdentity {
		c, err = awsfed.AssumeRoleWithWebIdentity(ctx, opts, r.role.RoleARN, awsfed.SessionName(tok.Username), roleTok, r.duration)
	} else {
		principal := r.role.ProviderARN
		if principal == "" {
			if principal, err = principalFromSAML(roleTok, r.role.RoleARN); err != nil {
				return awsfed.Credentials{}, err
			}
		}
		c, err = awsfed.AssumeRoleWithSAML(ctx, opts, r.role.RoleARN, principal, roleTok, r.duration)
	}
	if err != nil {
		if adv := awsfed.Advice(err); adv != "" {
			return awsfed.Credentials{}, fmt.Errorf("%w; %s", err, adv)
		}
		return awsfed.Credentials{}, err
	}
	if c.AccountID == "" {
		c.AccountID = r.role.AccountID
	}
	return c, nil
}

func credsCmd(a *App) *cobra.Command {
	var f credFlags
	var format string
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "Print temporary AWS credentials for one role",
		Long: "Print temporary AWS credentials for one role, as shell exports (env), JSON, or credential_process output.\n" +
			"Credentials are cached per role and reused while more than 15 minutes remain.",
		Example: "  eval \"$(warden creds --role prod/ReadOnly)\"\n  warden creds --role arn:aws:iam::111122223333:role/ReadOnly --format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "env" && format != "json" && format != "credential-process" {
				return fmt.Errorf("--format %q: want env, json or credential-process", format)
			}
			ctx := cmd.Context()
			r, err := a.resolve(ctx, f, a.IsTerminal())
			if err != nil {
				return err
			}
			c, err := a.credentials(ctx, r, a.IsTerminal())
			if err != nil {
				return err
			}
			switch format {
			case "env":
				for _, kv := range credEnv(c, r.cfg.Region) {
					k, v, _ := strings.Cut(kv, "=")
					fmt.Fprintf(a.Stdout, "export %s=%s\n", k, shellQuote(v))
				}
			default:
				_, err = a.Stdout.Write(processJSON(c))
			}
			return err
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVarP(&format, "format", "f", "env", "output: env, json or credential-process")
	return cmd
}

// credEnv is the environment that hands c to AWS tools (item 49).
func credEnv(c awsfed.Credentials, region string) []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + c.SessionToken,
		"AWS_CREDENTIAL_EXPIRATION=" + c.Expiration.UTC().Format(time.RFC3339),
	}
	if region != "" {
		env = append(env, "AWS_REGION="+region)
	}
	return env
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-./:=@_,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func credentialProcessCmd(a *App) *cobra.Command {
	var f credFlags
	cmd := &cobra.Command{
		Use:   "credential-process",
		Short: "Print credentials for AWS's credential_process (in ~/.aws/config)",
		Long: "Print one role's credentials as AWS's credential_process JSON on stdout.\n" +
			"Used as `credential_process = warden credential-process --role <ARN>`, which `warden profile add` writes,\n" +
			"or as `warden-credentials --role <ARN>` when that binary is installed beside warden: it answers from the cache\n" +
			"and hands everything else to `warden credential-process`.\n" +
			"It never prompts on stdout: when a sign-in is needed and there is no terminal, it fails with one line on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.role == "" {
				return errors.New("--role is required")
			}
			ctx := cmd.Context()
			interactive := a.IsTerminal()
			r, err := a.resolve(ctx, f, interactive)
			if err != nil {
				return err
			}
			c, err := a.credentials(ctx, r, interactive)
			if err != nil {
				return err
			}
			if _, err = a.Stdout.Write(processJSON(c)); err != nil {
				return err
			}
			// Only an ARN resolves from the command line and the config
			// alone (pick.go), without the roles listing.
			if strings.HasPrefix(f.role, "arn:") {
				// The credentials are out; a failed index only costs
				// warden-credentials a start of warden next time.
				_ = a.writeCredsIndex(r)
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

// writeCredsIndex records for warden-credentials that `warden
// credential-process` with the command line a.Args and r's config file
// reads the credentials of r's role and STS path (credcache.Entry),
// unless the index already says so. The caller must have resolved r from
// a.Args and that config alone.
func (a *App) writeCredsIndex(r credRequest) error {
	if len(a.Args) == 0 || a.Args[0] != "credential-process" || len(r.configRaw) == 0 || a.ConfigDir == "" || a.CacheDir == "" {
		return nil
	}
	e := credcache.Entry{Version: credcache.IndexVersion, Args: a.Args[1:], ConfigPath: a.configPath(),
		Config: r.configRaw, Key: credsKey(r.cfg.Via, r.role.RoleARN), RoleARN: r.role.RoleARN, Via: r.cfg.Via}
	path := credcache.EntryPath(a.CacheDir, e.ConfigPath, e.Args)
	var old credcache.Entry
	if ok, _ := readJSON(path, &old); ok && reflect.DeepEqual(old, e) {
		return nil
	}
	if err := writeJSON(path, e); err != nil {
		return fmt.Errorf("credentials index: %w", err)
	}
	return nil
}

// processJSON is c as credential_process output, by the formatter that
// warden-credentials prints with, so that both print the same bytes.
func processJSON(c awsfed.Credentials) []byte {
	return credcache.CredentialProcessJSON(credcache.Creds{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, Expiration: c.Expiration, AccountID: c.AccountID})
}
