package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
)

// awsConfigPath is AWS_CONFIG_FILE or ~/.aws/config (item 49).
func awsConfigPath() (string, error) {
	if p := os.Getenv("AWS_CONFIG_FILE"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("profile: %w", err)
	}
	return filepath.Join(home, ".aws", "config"), nil
}

// profileName fills the pattern's {account} (name, else ID), {account_id}
// and {role} for r.
func profileName(pattern string, r Role) string {
	acct := r.AccountName
	if acct == "" {
		acct = r.AccountID
	}
	return strings.NewReplacer("{account}", acct, "{account_id}", r.AccountID, "{role}", r.RoleName).Replace(pattern)
}

// quoteArg quotes a word of the credential_process line when needed
// (botocore splits it like a POSIX shell).
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$`") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// fastBinary is warden-credentials beside the warden binary self, when
// it is there as an executable file: the start-up of every AWS tool that
// uses the profile runs it (cmd/warden-credentials).
func fastBinary(self string) (string, bool) {
	name := "warden-credentials"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	p := filepath.Join(filepath.Dir(self), name)
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || (runtime.GOOS != "windows" && st.Mode().Perm()&0o111 == 0) {
		return "", false
	}
	return p, true
}

func profileCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Manage AWS CLI profiles that use warden"}
	var f credFlags
	var profile, pattern, file string
	var all bool
	add := &cobra.Command{
		Use:   "add",
		Short: "Write [profile P] with a warden credential_process line to ~/.aws/config",
		Long: "Write a profile using `warden credential-process` to the AWS config file (AWS_CONFIG_FILE or ~/.aws/config);\n" +
			"`warden-credentials` instead when that binary is beside warden (the same, faster with cached credentials).\n" +
			"Only that profile's section changes; other profiles and comments are kept. The old file is kept as <file>.warden.bak.",
		Example: "  warden profile add --role prod/ReadOnly --profile prod-ro\n  warden profile add --all --pattern '{account}-{role}'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if all == (f.role != "") {
				return errors.New("give --role (with --profile) or --all")
			}
			if !all && profile == "" {
				return errors.New("--profile is required with --role")
			}
			cfg, err := a.LoadConfig()
			if err != nil {
				return err
			}
			if f.via != "" {
				if err := validVia(f.via); err != nil {
					return fmt.Errorf("--%w", err)
				}
			}
			if err := validEndpoint("--sts-endpoint", f.stsEndpoint); err != nil {
				return err
			}
			if f.region != "" {
				if err := awsfed.ValidRegion(awsfed.PartitionOfRegion(f.region), f.region); err != nil {
					return fmt.Errorf("--region %q is not a region name (like eu-west-1)", f.region)
				}
			}
			var roles []Role
			if all {
				if roles, err = a.Roles(ctx, a.IsTerminal()); err != nil {
					return err
				}
				if len(roles) == 0 {
					return errors.New("you hold no AWS roles")
				}
			} else {
				r, _, err := a.resolveRole(ctx, f.role, a.IsTerminal())
				if err != nil {
					return err
				}
				roles = []Role{r}
			}
			executable := a.executable
			if executable == nil {
				executable = os.Executable
			}
			self, err := executable()
			if err != nil {
				return fmt.Errorf("profile: %w", err)
			}
			if self, err = filepath.Abs(self); err != nil {
				return fmt.Errorf("profile: %w", err)
			}
			command := quoteArg(self) + " credential-process"
			if fast, ok := fastBinary(self); ok {
				command = quoteArg(fast)
			}
			path := file
			if path == "" {
				if path, err = awsConfigPath(); err != nil {
					return err
				}
			}
			for _, r := range roles {
				name := profile
				if all {
					name = profileName(pattern, r)
				}
				// The partition and region belong to the role: --region
				// applies to the roles of its partition.
				part := r.Partition
				if part == "" {
					part = cfg.Partition
				}
				t := cfg.Target(part)
				region := t.Region
				if f.region != "" {
					if awsfed.PartitionOfRegion(f.region) == part {
						region = f.region
					} else if !all {
						return fmt.Errorf("--region %s is a region of partition %s, but role %s is in partition %s: give one of its regions (default %s)",
							f.region, awsfed.PartitionOfRegion(f.region), roleSpec(r), part, t.Region)
					}
				}
				line := command + " --role " + r.RoleARN
				// The STS path: the flag's, else spelled out for a role
				// outside the configured partition (its own default,
				// web-identity unless configured), so that the profile
				// does not depend on the config's partition later.
				switch {
				case f.via != "":
					line += " --via " + f.via
				case part != cfg.Partition:
					line += " --via " + t.Via
				}
				if f.stsEndpoint != "" {
					line += " --sts-endpoint " + quoteArg(f.stsEndpoint)
				}
				kv := [][2]string{{"credential_process", line}, {"region", region}}
				if err := awsfed.SetProfile(path, name, kv); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "wrote [profile %s] for %s to %s\n", name, r.RoleARN, path)
			}
			return nil
		},
	}
	add.Flags().StringVarP(&f.role, "role", "r", "", "role: an ARN, account-id/role or account-name/role")
	add.Flags().StringVarP(&profile, "profile", "p", "", "profile name")
	add.Flags().BoolVar(&all, "all", false, "one profile per role you hold")
	add.Flags().StringVar(&pattern, "pattern", "{account}-{role}", "profile name pattern with --all: {account}, {account_id}, {role}")
	add.Flags().StringVar(&f.via, "via", "", "STS path written into the profile: saml or web-identity")
	add.Flags().StringVar(&f.stsEndpoint, "sts-endpoint", "", "STS endpoint written into the profile")
	add.Flags().StringVar(&f.region, "region", "", "region of the profile, for roles of its partition (default from config, else the partition's)")
	add.Flags().StringVar(&file, "config-file", "", "AWS config file (default AWS_CONFIG_FILE or ~/.aws/config)")
	a.completeRoleFlag(add, "role", false)
	cmd.AddCommand(add)
	return cmd
}
