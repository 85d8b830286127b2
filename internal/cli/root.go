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
	root.AddCommand(versionCmd(), configureCmd(a), loginCmd(a), logoutCmd(a), rolesCmd(a))
	root.AddCommand(credentialCommands(a)...)
	root.AddCommand(elevateCmd(a), elevationsCmd(a))
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
