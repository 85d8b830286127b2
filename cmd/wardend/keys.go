package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenidp/warden/internal/app"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/store"
)

const keysUsage = `usage:
  wardend keys list    -data-dir DIR | -config FILE [-alg ES256]   show every key, its state and fingerprint
  wardend keys rotate  -data-dir DIR | -config FILE [-alg ES256]   make a next key: published, not signing yet
  wardend keys promote -data-dir DIR | -config FILE [-alg ES256]   make the next key sign; the current one becomes previous

-alg picks the ring: RS256 (default; SAML, and OIDC tokens unless
oidc.signing_algorithm is ES256) or ES256 (EC P-256, OIDC tokens only).
The first "rotate -alg ES256" makes the ES256 ring: its key is published
in /oauth/keys at once and signs once oidc.signing_algorithm is ES256.

The keys live where the configuration's keys block says: keys.dir
(default DIR/keys, data_dir in the configuration), or Redis with
keys.store: redis (then -config is needed: the redis block and
keys.encryption_key_file come from it).

Procedure: rotate, upload the new metadata to IAM and the other SAML
service providers, then promote. See docs/deployment.md, "Signing keys".
`

// keysCmd runs `wardend keys SUBCOMMAND`. It works on the key store
// directly (no server needed); running replicas follow within
// keys.reload_interval.
func keysCmd(args []string, stdout, stderr io.Writer) int {
	sub, code := subcommand("keys", keysUsage, []string{"list", "rotate", "promote"}, args, stdout, stderr)
	if sub == "" {
		return code
	}
	fs := flag.NewFlagSet("wardend keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage+"\nflags:\n"); fs.PrintDefaults() }
	dataDir := fs.String("data-dir", "", "the data directory (data_dir); keys are in DIR/keys")
	cfgPath := fs.String("config", "", "configuration file: data_dir, the keys block and server.public_url come from it")
	alg := fs.String("alg", keys.AlgRS256, "the key ring: RS256 or ES256")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wardend keys %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	var (
		kc        keys.Config
		c         *config.Config
		publicURL string
		again     = "-data-dir " + *dataDir
	)
	if *alg != keys.AlgRS256 && *alg != keys.AlgES256 {
		fmt.Fprintf(stderr, "wardend keys %s: -alg must be %s or %s (got %q)\n", sub, keys.AlgRS256, keys.AlgES256, *alg)
		return 2
	}
	switch {
	case *cfgPath != "":
		var err error
		if c, err = config.Load(*cfgPath, os.LookupEnv); err != nil {
			fmt.Fprintf(stderr, "wardend keys: %s:\n%v\n", *cfgPath, err)
			return 1
		}
		kc = keysConfig(c)
		publicURL = strings.TrimSuffix(c.Server.PublicURL, "/")
		if *dataDir == "" {
			*dataDir = c.DataDir
		}
		again = "-config " + *cfgPath
	case *dataDir == "":
		fmt.Fprintf(stderr, "wardend keys %s: need -data-dir DIR or -config FILE\n", sub)
		return 2
	}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		fmt.Fprintf(stderr, "wardend keys: keys.%v\n", strings.ReplaceAll(err.Error(), "\n", "\nkeys."))
		return 1
	}
	if kc.Store == keys.StoreRedis && c == nil {
		fmt.Fprintf(stderr, "wardend keys %s: keys.store redis needs -config FILE\n", sub)
		return 2
	}
	var rs *store.Store
	if kc.Store == keys.StoreRedis {
		var err error
		if rs, err = store.Open(context.Background(), c.Redis, slog.New(slog.DiscardHandler)); err != nil {
			fmt.Fprintf(stderr, "wardend keys %s: %v\n", sub, err)
			return 1
		}
		defer rs.Close()
	}
	ks, err := app.KeyStore(kc, *dataDir, rs)
	if err == nil {
		ks, err = keys.ForAlg(ks, *alg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend keys %s: %v\n", sub, err)
		return 1
	}
	if *alg != keys.AlgRS256 {
		again += " -alg " + *alg
	}
	k := keysRun{st: ks, alg: *alg, again: again, cfg: kc, publicURL: publicURL, now: time.Now, out: stdout}
	switch sub {
	case "list":
		err = k.list()
	case "rotate":
		err = k.rotate()
	case "promote":
		err = k.promote()
	}
	if errors.Is(err, keys.ErrNoRing) && *alg == keys.AlgES256 {
		err = fmt.Errorf("%w\n(`wardend keys rotate %s` makes it, or a start with oidc.signing_algorithm: ES256)", err, again)
	} else if errors.Is(err, keys.ErrNoRing) {
		err = fmt.Errorf("%w\n(start wardend once with this configuration: it creates the ring, or migrates step 1's signing-key.pem)", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend keys %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// keysConfig is the keys block of c.
func keysConfig(c *config.Config) keys.Config { return c.Keys }

type keysRun struct {
	st               keys.Store
	alg              string // the ring's: keys.AlgRS256 or keys.AlgES256
	again, publicURL string // again: the flags that name this store
	cfg              keys.Config
	now              func() time.Time
	out              io.Writer
}

func (k keysRun) list() error {
	all, err := keys.ListStore(context.Background(), k.st)
	if err != nil {
		return err
	}
	now := k.now()
	tw := tabwriter.NewWriter(k.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tBITS\tCREATED\tRETIRED\tPUBLISHED\tCERT EXPIRES\tSHA-256 FINGERPRINT")
	for _, s := range all {
		retired, pub := "-", "yes"
		if s.State == keys.StatePrevious {
			retired = stamp(s.RetiredAt)
			until := s.RetiredAt.Add(k.cfg.PublishPrevious)
			if keys.IsPublished(s, k.cfg.PublishPrevious, now) {
				pub = "until " + stamp(until)
			} else {
				pub = "no (since " + stamp(until) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.Bits(), stamp(s.Created), retired, pub, stamp(s.Cert.NotAfter), s.Fingerprint())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(k.out, "\n%s (running replicas re-read it every %s)\n", k.st, k.cfg.ReloadInterval)
	return nil
}

func (k keysRun) rotate() error {
	if k.alg == keys.AlgES256 {
		return k.rotateES256()
	}
	s, err := keys.RotateStore(context.Background(), k.st, k.cfg, keys.Options{Now: k.now})
	if err != nil {
		if errors.Is(err, keys.ErrNextExists) {
			return fmt.Errorf("%w\n(run `wardend keys promote` once IAM and the service providers have the metadata with it)", err)
		}
		return err
	}
	metadata := "<public_url>/saml/metadata"
	if k.publicURL != "" {
		metadata = k.publicURL + "/saml/metadata"
	}
	fmt.Fprintf(k.out, `Created next key %s (RSA %d, certificate valid until %s).
SHA-256 fingerprint: %s
It is published (SAML metadata, JWKS) but does not sign yet; running
replicas pick it up within %s.

Next steps:
  1. After %s, fetch the metadata (it now lists both certificates):
       curl -fsS -o metadata.xml %s
  2. Upload it to the IAM SAML provider in every AWS account that trusts Warden:
       aws iam update-saml-provider --saml-metadata-document file://metadata.xml \
         --saml-provider-arn arn:aws:iam::<ACCOUNT-ID>:saml-provider/<NAME>
     and give it to every other SAML service provider.
  3. Then make the new key sign:
       wardend keys promote %s
`, s.ID, s.Bits(), stamp(s.Cert.NotAfter), s.Fingerprint(), k.cfg.ReloadInterval, k.cfg.ReloadInterval, metadata, k.again)
	return nil
}

// rotateES256 makes the ES256 ring when there is none (its key current:
// published, signing only once oidc.signing_algorithm is ES256), else a
// next key. Only the JWKS publishes these keys; no metadata to upload.
func (k keysRun) rotateES256() error {
	ctx := context.Background()
	s, err := keys.RotateStore(ctx, k.st, k.cfg, keys.Options{Now: k.now})
	if errors.Is(err, keys.ErrNoRing) {
		r, err := keys.OpenStore(ctx, k.st, k.cfg, keys.Options{Now: k.now})
		if err != nil {
			return err
		}
		s = r.Current()
		fmt.Fprintf(k.out, `Created the ES256 key ring with key %s (EC P-256).
It is published in <issuer>/oauth/keys by running replicas within %s,
beside the RSA keys; it signs ID tokens and web-identity tokens once
oidc.signing_algorithm is ES256.

Next steps:
  1. Wait until relying parties that cache the JWKS have it (5 minutes
     for Warden's Cache-Control; AWS fetches an unknown kid itself).
  2. Set oidc.signing_algorithm: ES256 and restart the replicas one by one.
     RS256 tokens already issued keep verifying: the RSA keys stay published.
`, s.ID, k.cfg.ReloadInterval)
		return nil
	}
	if err != nil {
		if errors.Is(err, keys.ErrNextExists) {
			return fmt.Errorf("%w\n(run `wardend keys promote %s` once relying parties have the JWKS with it)", err, k.again)
		}
		return err
	}
	fmt.Fprintf(k.out, `Created next key %s (EC P-256).
It is published in the JWKS (/oauth/keys) but does not sign yet; running
replicas pick it up within %s.

Next step: after at least 5 minutes (the JWKS's Cache-Control), make it sign:
  wardend keys promote %s
`, s.ID, k.cfg.ReloadInterval, k.again)
	return nil
}

func (k keysRun) promote() error {
	ctx := context.Background()
	before, err := keys.ListStore(ctx, k.st)
	if err != nil {
		return err
	}
	cur, err := keys.PromoteStore(ctx, k.st, k.cfg, keys.Options{Now: k.now})
	if err != nil {
		return err
	}
	after, err := keys.ListStore(ctx, k.st)
	if err != nil {
		return err
	}
	if k.alg == keys.AlgES256 {
		fmt.Fprintf(k.out, "Promoted %s: it is the ES256 key that signs when oidc.signing_algorithm is ES256 (running replicas switch within %s).\n", cur.ID, k.cfg.ReloadInterval)
	} else {
		fmt.Fprintf(k.out, "Promoted %s: it signs from now on (running replicas switch within %s).\n", cur.ID, k.cfg.ReloadInterval)
	}
	for _, s := range after {
		if s.State == keys.StatePrevious && slices.ContainsFunc(before, func(b keys.Signer) bool { return b.ID == s.ID && b.State == keys.StateCurrent }) {
			fmt.Fprintf(k.out, "The previous key %s stays published until %s (publish_previous %s).\n", s.ID, stamp(s.RetiredAt.Add(k.cfg.PublishPrevious)), k.cfg.PublishPrevious)
		}
	}
	for _, b := range before {
		if !slices.ContainsFunc(after, func(s keys.Signer) bool { return s.ID == b.ID }) {
			fmt.Fprintf(k.out, "Removed key %s (retired %s, no longer published) and its files.\n", b.ID, stamp(b.RetiredAt))
		}
	}
	if k.alg == keys.AlgES256 {
		fmt.Fprintf(k.out, "\nCheck with: wardend keys list %s\n", k.again)
		return nil
	}
	fmt.Fprintf(k.out, `
Next step: sign in to AWS through Warden once. "Response signature invalid"
means an IAM SAML provider lacks the new certificate: upload the current
metadata to it (step 2 of rotate). Once the previous key is no longer
published, you may re-upload the metadata everywhere to drop its
certificate (IAM allows at most 10 keys per SAML provider).
Check with: wardend keys list %s
`, k.again)
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
