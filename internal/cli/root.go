// Package cli implements the `warden` command line: the user's tool that turns
// one sign-in at wardend (OAuth device authorization grant, RFC 8628) into
// AWS credentials. This file builds the command tree; app.go holds the App
// every command works with, config.go the user's configuration, cache.go and
// lock.go the cache directory, oidc.go and login.go the IdP client.
package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/version"
)

// Root builds the `warden` command tree on a. Cobra adds `completion`
// (bash, zsh, fish, powershell) and `help`.
func Root(a *App) *cobra.Command {
	root := newRoot(a)
	for _, c := range commands {
		root.AddCommand(c.build(a))
	}
	return root
}

// RootFor builds the tree that args (os.Args[1:]) need: when args[0]
// names one of our commands, the root with that command alone and
// without `completion` (the rest of the tree does not change its
// parsing, help or errors); otherwise, as for `help`, `completion`,
// shell completion and typos, the whole tree of Root. Building every
// command's flags and cobra's completion commands is a measurable part
// of a cached `credential-process` (docs/benchmarks.md).
func RootFor(a *App, args []string) *cobra.Command {
	if len(args) > 0 {
		for _, c := range commands {
			if c.name == args[0] {
				root := newRoot(a)
				root.CompletionOptions.DisableDefaultCmd = true
				root.AddCommand(c.build(a))
				return root
			}
		}
	}
	return Root(a)
}

// commands are the top-level commands by name (their cobra Name; none has
// aliases), for Root and RootFor.
var commands = []struct {
	name  string
	build func(*App) *cobra.Command
}{
	{"version", func(*App) *cobra.Command { return versionCmd() }},
	{"configure", configureCmd},
	{"login", loginCmd},
	{"logout", logoutCmd},
	{"roles", rolesCmd},
	{"creds", credsCmd},
	{"credential-process", credentialProcessCmd},
	{"exec", execCmd},
	{"console", consoleCmd},
	{"profile", profileCmd},
	{"elevate", elevateCmd},
	{"elevations", elevationsCmd},
	{"status", statusCmd},
	{"workload", workloadCmd},
}

// newRoot is the root command without subcommands.
func newRoot(a *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "warden",
		Short: "Sign in once at your Warden IdP and use AWS from the command line",
		Long: `warden signs you in once at your Warden IdP (a device code, approved in a
browser) and turns that sign-in into temporary AWS credentials for every role
you hold, for the AWS CLI, the SDKs and Terraform.

Start with:  warden configure --idp-url https://idp.example.com
             warden login
             warden roles

An eligible role, for a limited time:
             warden elevate --role prod/Admin --for 1h --reason "INC-123"`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	root.SetIn(a.Stdin)
	return root
}

func versionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of warden",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(info)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "warden", info.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
