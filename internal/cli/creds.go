package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/cli/credcache"
)

// credFlags are the flags shared by the credential commands.
type credFlags struct {
	role, via, stsEndpoint, region, federation string
	duration                                   time.Duration
	refresh                                    bool
}

func (f *credFlags) register(a *App, cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.role, "role", "r", "", "role: an ARN, account-id/role or account-name/role (picked interactively when omitted on a terminal)")
	fl.StringVar(&f.via, "via", "", "STS path: saml (AssumeRoleWithSAML) or web-identity (AssumeRoleWithWebIdentity); default from config")
	fl.StringVar(&f.stsEndpoint, "sts-endpoint", "", "STS endpoint URL (private, or a test server; default: the regional endpoint of the role's partition)")
	fl.StringVar(&f.region, "region", "", "AWS region, in the role's partition (default from config, else the partition's)")
	fl.DurationVarP(&f.duration, "duration", "d", 0, "session length, 15m to 12h and at most the role's (default: config, else the role's)")
	fl.BoolVar(&f.refresh, "refresh", false, "mint new credentials even when cached ones are still valid")
	_ = cmd.RegisterFlagCompletionFunc("via", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{ViaSAML, ViaWebIdentity}, cobra.ShellCompDirectiveNoFileComp
	})
	a.completeRoleFlag(cmd, "role", false)
}

// credRequest is one resolved request for credentials.
type credRequest struct {
	cfg       Config
	configRaw []byte // the config file cfg was read from, for the index
	role      Role
	// listed: role came from the roles listing (its SessionSeconds is the
	// IdP's); false for a role given as an ARN.
	listed bool
	target Target // how to reach AWS for the role, flags applied
	// asked is --duration in seconds (0: none); duration is what is sent
	// to STS (0: STS's default).
	asked, duration int
	refresh         bool
}

// resolve loads the config, applies the flags, and resolves the role.
func (a *App) resolve(ctx context.Context, f credFlags, interactive bool) (credRequest, error) {
	cfg, raw, err := a.loadConfig()
	if err != nil {
		return credRequest{}, err
	}
	if cfg.IdPURL == "" {
		return credRequest{}, ErrNotConfigured
	}
	var errs []error
	if f.via != "" {
		if err := validVia(f.via); err != nil {
			errs = append(errs, fmt.Errorf("--%w", err))
		}
	}
	if err := validEndpoint("--sts-endpoint", f.stsEndpoint); err != nil {
		errs = append(errs, err)
	}
	if err := validEndpoint("--federation-endpoint", f.federation); err != nil {
		errs = append(errs, err)
	}
	r := credRequest{cfg: cfg, configRaw: raw, refresh: f.refresh}
	if f.duration != 0 {
		r.asked = int(f.duration / time.Second)
		if f.duration%time.Second != 0 || r.asked < 900 || r.asked > 43200 {
			errs = append(errs, fmt.Errorf("--duration %s: want 15m to 12h", f.duration))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return credRequest{}, err
	}
	if r.role, r.listed, err = a.resolveRole(ctx, f.role, interactive); err != nil {
		return credRequest{}, err
	}
	part := r.role.Partition
	if part == "" {
		part = cfg.Partition
	}
	r.target = cfg.Target(part)
	if f.region != "" {
		if err := awsfed.ValidRegion(part, f.region); err != nil {
			if awsfed.ValidRegion(awsfed.PartitionOfRegion(f.region), f.region) == nil {
				return credRequest{}, fmt.Errorf("--region %s is a region of partition %s, but role %s is in partition %s: give one of its regions (default %s)",
					f.region, awsfed.PartitionOfRegion(f.region), roleSpec(r.role), part, r.target.Region)
			}
			return credRequest{}, fmt.Errorf("--region %q is not a region name (like eu-west-1)", f.region)
		}
		r.target.Region = f.region
	}
	if f.via != "" {
		r.target.Via = f.via
	}
	if f.stsEndpoint != "" {
		r.target.STSEndpoint = f.stsEndpoint
	}
	if f.federation != "" {
		r.target.FederationEndpoint = f.federation
	}
	return r, nil
}

// roleMax is the longest session the role allows, in seconds: its
// SessionSeconds in the roles listing, or AWS's default hour when the IdP
// sets none. ok is false when the role is not in the listing (a role
// given as an ARN that the listing, or the IdP, cannot confirm now).
func (a *App) roleMax(ctx context.Context, r credRequest) (Role, int, bool) {
	role := r.role
	if !r.listed {
		roles, err := a.Roles(ctx, false)
		if err != nil {
			return role, 0, false
		}
		i := slices.IndexFunc(roles, func(x Role) bool { return x.RoleARN == r.role.RoleARN })
		if i < 0 {
			return role, 0, false
		}
		role = roles[i]
	}
	if role.SessionSeconds > 0 {
		return role, role.SessionSeconds, true
	}
	return role, 3600, true
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

// cachedCreds returns the cached credentials for via and role when they
// serve a request for asked seconds (credcache.Creds.Serves: more than 15
// minutes left, minted for about that length), and the file's content
// whether or not (zero when there is none).
func (a *App) cachedCreds(key, via, roleARN string, asked int) (awsfed.Credentials, credsCache, bool) {
	var c credsCache
	if ok, _ := readJSON(a.credsPath(key), &c); !ok || c.RoleARN != roleARN || c.Via != via {
		return awsfed.Credentials{}, credsCache{}, false
	}
	if !c.Serves(asked, a.Now()) {
		return awsfed.Credentials{}, c, false
	}
	return awsfed.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, Expiration: c.Expiration, AccountID: c.AccountID}, c, true
}

// credentials returns credentials for the request: cached while they
// serve it (more than 15 minutes left, minted for the asked session
// length), else through a token exchange and an STS call, under a
// per-role file lock so that concurrent callers (the SDKs run
// credential_process in parallel) make one exchange and one STS call.
// With r.refresh it mints anew, once for callers that wait on each other.
func (a *App) credentials(ctx context.Context, r credRequest, interactive bool) (awsfed.Credentials, error) {
	via, arn := r.target.Via, r.role.RoleARN
	key := credsKey(via, arn)
	c, before, ok := a.cachedCreds(key, via, arn, r.asked)
	if ok && !r.refresh {
		return c, nil
	}
	unlock, err := a.Lock(ctx, "creds-"+key[:16])
	if err != nil {
		return awsfed.Credentials{}, err
	}
	defer unlock()
	// Another caller may have minted while this one waited; a refresh
	// takes only credentials that were not in the file when it asked.
	if c, now, ok := a.cachedCreds(key, via, arn, r.asked); ok && (!r.refresh || now != before) {
		return c, nil
	}
	role, maxSecs, known := a.roleMax(ctx, r)
	switch {
	case r.asked > 0:
		if known && r.asked > maxSecs {
			return awsfed.Credentials{}, fmt.Errorf("--duration %s: %s allows sessions of at most %s (the IdP's session length for the role); ask for %s or less",
				humanDuration(time.Duration(r.asked)*time.Second), roleSpec(role), humanDuration(time.Duration(maxSecs)*time.Second),
				humanDuration(time.Duration(maxSecs)*time.Second))
		}
		r.duration = r.asked
	case r.cfg.SessionSeconds > 0:
		// The config's default, within what the role allows.
		r.duration = r.cfg.SessionSeconds
		if known && r.duration > maxSecs {
			r.duration = maxSecs
		}
	default:
		// A role given as an ARN (as `profile add` writes it) carries no
		// session length: the listing's, else a role granted 8 h would
		// get STS's default hour.
		r.duration = role.SessionSeconds
	}
	c, err = a.assume(ctx, r, interactive)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	if err := ensureDir(filepath.Join(a.CacheDir, "creds")); err != nil {
		return awsfed.Credentials{}, err
	}
	err = writeJSON(a.credsPath(key), credsCache{RoleARN: arn, Via: via, Seconds: r.duration, Minted: a.Now(),
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: c.Expiration, AccountID: c.AccountID})
	return c, err
}

// assume exchanges the access token for a role token and calls STS.
func (a *App) assume(ctx context.Context, r credRequest, interactive bool) (awsfed.Credentials, error) {
	tok, err := a.token(ctx, interactive, false)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	d, err := a.Discovery(ctx)
	if err != nil {
		return awsfed.Credentials{}, err
	}
	via := r.target.Via
	roleTok, err := a.exchange(ctx, d.TokenEndpoint, tok.AccessToken, r.role.RoleARN, via)
	var xe *ExchangeError
	if errors.As(err, &xe) && xe.Code == "invalid_request" && strings.Contains(xe.Description, "subject") {
		// The access token died early (revoked, or the IdP restarted):
		// refresh once and try again.
		if tok, err = a.token(ctx, interactive, true); err != nil {
			return awsfed.Credentials{}, err
		}
		roleTok, err = a.exchange(ctx, d.TokenEndpoint, tok.AccessToken, r.role.RoleARN, via)
	}
	if errors.As(err, &xe) {
		xe.Spec = roleSpec(r.role)
	}
	if err != nil {
		return awsfed.Credentials{}, err
	}
	opts := awsfed.STSOptions{Partition: r.target.Partition, Region: r.target.Region, Endpoint: r.target.STSEndpoint, HTTPClient: a.HTTP}
	var c awsfed.Credentials
	if via == ViaWebIdentity {
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
		return awsfed.Credentials{}, stsProblem(err, opts)
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
			"Credentials are cached per role and reused while more than 15 minutes remain and, with --duration,\n" +
			"when they were minted for that session length (within a tenth); --refresh mints new ones.",
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
				for _, kv := range credEnv(c, r.target.Region) {
					k, v, _ := strings.Cut(kv, "=")
					fmt.Fprintf(a.Stdout, "export %s=%s\n", k, shellQuote(v))
				}
			default:
				_, err = a.Stdout.Write(processJSON(c))
			}
			return err
		},
	}
	f.register(a, cmd)
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
			// alone (pick.go), without the roles listing; a refresh must
			// always reach warden.
			if strings.HasPrefix(f.role, "arn:") && !f.refresh {
				// The credentials are out; a failed index only costs
				// warden-credentials a start of warden next time.
				_ = a.writeCredsIndex(r)
			}
			return nil
		},
	}
	f.register(a, cmd)
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
		Config: r.configRaw, Key: credsKey(r.target.Via, r.role.RoleARN), RoleARN: r.role.RoleARN, Via: r.target.Via, Seconds: r.asked}
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
