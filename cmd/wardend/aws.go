package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

const awsUsage = `usage:
  wardend aws setup -config FILE [-rules FILE] [options]
  wardend aws setup -rules FILE -public-url URL [-saml-partition P] [-saml-region R] [-mfa-session-tag TAG] [-default-session-seconds N] [options]
options: [-format script|terraform|cloudformation|json] [-account ID,...] [-issuer URL] [-sts-audience AUD]
         [-thumbprint HEX | -offline] [-metadata FILE]

Prints what AWS needs for the accounts and roles of the mapping rules: the
SAML provider (Warden's metadata), the OIDC provider (with its thumbprint),
and every role with its trust policy for both paths (SAML: SAML:aud; web
identity: <issuer>:aud and the aws:RequestTag/WardenRole and WardenAccount
conditions, sts:TagSession) and a MaxSessionDuration that covers the
longest session the rules give it. A role whose rules require MFA also
gets aws:RequestTag/<mfa.session_tag> (default WardenAuth) in the methods
it accepts; with mfa.session_tag "-" the output warns that AWS cannot
enforce it.

-format script (the default; "text" is the same) is a shell script to run
once per account with that account's credentials: it creates what is
missing and updates what is there, and may be run again. terraform and
cloudformation give the same as code, json the data. Several accounts go
into one output (a section per account); -account picks some, for one
file per account. Roles of pattern rules cannot be listed: each rule gets
a parameterised block (a shell function, a Terraform for_each variable,
CloudFormation metadata).
The OIDC thumbprint is computed from the issuer's TLS chain unless
-thumbprint gives it or -offline is set; a placeholder is written when it
cannot be (AWS ignores it for certificates of CAs it trusts).
The rules are the stored ones (Redis, from -config) unless -rules names a
YAML rule file. See docs/aws-setup.md.
`

// awsFormats are the -format values (text is script's old name).
var awsFormats = []string{"script", "text", "terraform", "cloudformation", "json"}

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
	format := fs.String("format", "script", "output: script (a shell script), terraform, cloudformation or json")
	accounts := fs.String("account", "", "comma-separated account IDs to set up (default: every account of the catalogue)")
	publicURL := fs.String("public-url", "", "Warden's public URL (without -config)")
	partition := fs.String("saml-partition", "aws", "saml.aws.partition (without -config)")
	region := fs.String("saml-region", "", "saml.aws.region (without -config)")
	defSecs := fs.Int("default-session-seconds", 0, "saml.aws.default_session_seconds (without -config; default 3600)")
	issuer := fs.String("issuer", "", "the OIDC issuer (default: the public URL)")
	audience := fs.String("sts-audience", "", "the STS audience of web-identity tokens (default "+awsfed.DefaultSTSAudience+")")
	mfaTag := fs.String("mfa-session-tag", "", "mfa.session_tag (without -config; default "+awsfed.DefaultMFASessionTag+", - for none)")
	thumbprint := fs.String("thumbprint", "", "the OIDC provider's thumbprint (40 hex digits) instead of computing it")
	offline := fs.Bool("offline", false, "do not connect to the issuer for the thumbprint: write a placeholder")
	metadata := fs.String("metadata", "", "Warden's SAML metadata file, put into the CloudFormation template (default: a template parameter)")
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
	case !slices.Contains(awsFormats, *format):
		fmt.Fprintf(stderr, "wardend aws setup: -format must be script, terraform, cloudformation or json, not %q\n", *format)
		return 2
	case *cfgPath == "" && *rulesPath == "":
		fmt.Fprintln(stderr, "wardend aws setup: need -config FILE or -rules FILE")
		fs.Usage()
		return 2
	case *cfgPath == "" && *publicURL == "":
		fmt.Fprintln(stderr, "wardend aws setup: -rules without -config needs -public-url URL")
		return 2
	case *cfgPath != "" && (*mfaTag != "" || *defSecs != 0):
		fmt.Fprintln(stderr, "wardend aws setup: -mfa-session-tag and -default-session-seconds are for use without -config (the config's settings apply)")
		return 2
	case *defSecs < 0:
		fmt.Fprintln(stderr, "wardend aws setup: -default-session-seconds must be positive")
		return 2
	case *thumbprint != "" && *offline:
		fmt.Fprintln(stderr, "wardend aws setup: -thumbprint and -offline exclude each other")
		return 2
	case *metadata != "" && *format != "cloudformation":
		fmt.Fprintln(stderr, "wardend aws setup: -metadata is for -format cloudformation (the script fetches the metadata, Terraform reads warden-metadata.xml)")
		return 2
	}
	if *mfaTag != "" && *mfaTag != "-" {
		if err := awsfed.ValidTagKey(*mfaTag); err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: -mfa-session-tag: %v\n", err)
			return 2
		}
	}
	if *thumbprint != "" {
		if err := awsfed.ValidThumbprint(*thumbprint); err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: -thumbprint: %v\n", err)
			return 2
		}
	}
	var cfn awsfed.CloudFormationOptions
	if *metadata != "" {
		b, err := os.ReadFile(*metadata)
		if err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: -metadata: %v\n", err)
			return 1
		}
		cfn.SAMLMetadata = string(b)
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
			SAMLRegion: *region, Issuer: base, MFASessionTag: *mfaTag, DefaultSessionSeconds: *defSecs}
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
	opts.OIDCThumbprint = *thumbprint
	if opts.Issuer != "" && *thumbprint == "" && !*offline && awsfed.ValidOIDCProviderURL(opts.Issuer) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		opts.OIDCThumbprint, err = awsfed.OIDCThumbprint(ctx, &http.Client{Timeout: 10 * time.Second}, opts.Issuer)
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: no OIDC thumbprint, writing a placeholder (see docs/aws-setup.md; -thumbprint HEX gives it): %v\n", err)
		}
	}
	setup, err := admin.AWSSetup(rs, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
		return 1
	}
	if *accounts != "" {
		if setup, err = setup.Only(strings.Split(*accounts, ",")...); err != nil {
			fmt.Fprintf(stderr, "wardend aws setup: -account: %v\n", err)
			return 1
		}
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(setup)
	case "terraform":
		err = setup.WriteTerraform(stdout)
	case "cloudformation":
		err = setup.WriteCloudFormation(stdout, cfn)
	default:
		err = setup.WriteScript(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend aws setup: %v\n", err)
		return 1
	}
	return 0
}

// setupOptions describes the Warden of c: metadata at public_url +
// /saml/metadata, the SAML preset's partition, region and default session
// length, the OIDC issuer (oidc.issuer, by default public_url without a
// trailing slash) and STS audience, and the MFA session tag and methods.
func setupOptions(c *config.Config) awsfed.SetupOptions {
	base := strings.TrimRight(c.Server.PublicURL, "/")
	issuer := c.OIDC.Issuer
	if issuer == "" {
		issuer = base
	}
	return awsfed.SetupOptions{
		MetadataURL:           base + "/saml/metadata",
		SAML:                  c.SAML.AWS.On(),
		SAMLPartition:         c.SAML.AWS.Partition,
		SAMLRegion:            c.SAML.AWS.Region,
		DefaultSessionSeconds: c.SAML.AWS.DefaultSessionSeconds,
		Issuer:                issuer,
		STSAudience:           c.OIDC.STSAudience,
		MFASessionTag:         c.MFA.SessionTag,
		MFAMethods:            c.MFA.Methods,
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
