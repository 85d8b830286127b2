package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

const awsUsage = `usage:
  wardend aws setup -config FILE [-rules FILE] [-format text|json] [-issuer URL] [-sts-audience AUD]
  wardend aws setup -rules FILE -public-url URL [-saml-partition P] [-saml-region R] [-mfa-session-tag TAG] [-format text|json] [-issuer URL] [-sts-audience AUD]

Prints, for every account and role of the mapping rules, the IAM commands
that create Warden's SAML provider and OIDC provider and each role's trust
policy for both paths (SAML: SAML:aud; web identity: <issuer>:aud and the
aws:RequestTag/WardenRole and WardenAccount conditions, sts:TagSession).
A role whose rules require MFA also gets, on both paths, the condition
aws:RequestTag/<mfa.session_tag> (default WardenAuth) in the methods it
accepts; with mfa.session_tag "-" no tag is sent and the output warns
that AWS cannot enforce the requirement.
The rules are the stored ones (Redis, from -config) unless -rules names a
YAML rule file. See docs/aws-setup.md.
`

// awsCmd runs `wardend aws SUBCOMMAND`.
func awsCmd(args []string, stdout, stderr io.Writer) int {
	if sub, code := subcommand("aws", awsUsage, []string{"setup"}, args, stdout, stderr); sub == "" {
		return code
	}
	fs := flag.NewFlagSet("wardend aws setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, awsUsage+"\nflags:\n"); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "configuration file: public URL, SAML preset and Redis (the stored rules) come from it")
	rulesPath := fs.String("rules", "", "a YAML rule file to use instead of the stored rules (no Redis needed)")
	format := fs.String("format", "text", "output: text (a commented shell script) or json")
	publicURL := fs.String("public-url", "", "Warden's public URL (without -config)")
	partition := fs.String("saml-partition", "aws", "saml.aws.partition (without -config)")
	region := fs.String("saml-region", "", "saml.aws.region (without -config)")
	issuer := fs.String("issuer", "", "the OIDC issuer (default: the public URL)")
	audience := fs.String("sts-audience", "", "the STS audience of web-identity tokens (default "+awsfed.DefaultSTSAudience+")")
	mfaTag := fs.String("mfa-session-tag", "", "mfa.session_tag (without -config; default "+awsfed.DefaultMFASessionTag+", - for none)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "wardend aws setup: unexpected argument %q\n", fs.Arg(0))
		return 2
	case *format != "text" && *format != "json":
		fmt.Fprintf(stderr, "wardend aws setup: -format must be text or json, not %q\n", *format)
		return 2
	case *cfgPath == "" && *rulesPath == "":
		fmt.Fprintln(stderr, "wardend aws setup: need -config FILE or -rules FILE")
		fs.Usage()
		return 2
	case *cfgPath == "" && *publicURL == "":
		fmt.Fprintln(stderr, "wardend aws setup: -rules without -config needs -public-url URL")
		return 2
	case *cfgPath != "" && *mfaTag != "":
		fmt.Fprintln(stderr, "wardend aws setup: -mfa-session-tag is for use without -config (the config's mfa.session_tag applies)")
		return 2
	}
	if *mfaTag != "" && *mfaTag != "-" {
		if err := awsfed.ValidTagKey(*mfaTag); err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: -mfa-session-tag: %v\n", err)
			return 2
		}
	}

	var (
		opts awsfed.SetupOptions
		rs   rolemap.RuleSet
		err  error
	)
	if *cfgPath != "" {
		c, err := config.Load(*cfgPath, os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: %s:\n%v\n", *cfgPath, err)
			return 1
		}
		opts = setupOptions(c)
		if *rulesPath == "" {
			if rs, err = storedRules(c, stderr); err != nil {
				fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
				return 1
			}
		}
	} else {
		base := strings.TrimRight(*publicURL, "/")
		opts = awsfed.SetupOptions{MetadataURL: base + "/saml/metadata", SAML: true, SAMLPartition: *partition,
			SAMLRegion: *region, Issuer: base, MFASessionTag: *mfaTag}
	}
	if *rulesPath != "" {
		if rs, err = fileRules(*rulesPath); err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
			return 1
		}
	}
	if *issuer != "" {
		opts.Issuer = *issuer
	}
	if *audience != "" {
		opts.STSAudience = *audience
	}
	setup, err := admin.AWSSetup(rs, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(setup)
	} else {
		err = setup.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
		return 1
	}
	return 0
}

// setupOptions describes the Warden of c: metadata at public_url +
// /saml/metadata, the SAML preset's partition and region, the OIDC issuer
// (the OP's default: public_url without a trailing slash), and the MFA
// session tag and methods.
func setupOptions(c *config.Config) awsfed.SetupOptions {
	base := strings.TrimRight(c.Server.PublicURL, "/")
	return awsfed.SetupOptions{
		MetadataURL:   base + "/saml/metadata",
		SAML:          c.SAML.AWS.On(),
		SAMLPartition: c.SAML.AWS.Partition,
		SAMLRegion:    c.SAML.AWS.Region,
		Issuer:        base,
		MFASessionTag: c.MFA.SessionTag,
		MFAMethods:    c.MFA.Methods,
	}
}

// storedRules reads the current rules from Redis.
func storedRules(c *config.Config, stderr io.Writer) (rolemap.RuleSet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, c.Redis, logger)
	if err != nil {
		return rolemap.RuleSet{}, fmt.Errorf("redis: %w", err)
	}
	defer st.Close()
	v, doc, err := store.NewRules(st, nil).Current(ctx)
	if err != nil {
		return rolemap.RuleSet{}, err
	}
	if v.Version == 0 {
		return rolemap.RuleSet{}, errors.New("no rules are stored yet (start wardend with admin.rules_file, or use -rules FILE)")
	}
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		return rolemap.RuleSet{}, fmt.Errorf("stored rules version %d: %w", v.Version, err)
	}
	return rs, nil
}

// fileRules reads and validates a YAML rule file.
func fileRules(path string) (rolemap.RuleSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return rolemap.RuleSet{}, err
	}
	rs, err := rolemap.ParseYAML(b)
	if err != nil {
		return rolemap.RuleSet{}, fmt.Errorf("%s: %w", path, err)
	}
	if ps := rs.Validate(); len(ps) > 0 {
		return rolemap.RuleSet{}, fmt.Errorf("%s: %w", path, &rolemap.Error{Op: "validate", Problems: ps})
	}
	return rs, nil
}
