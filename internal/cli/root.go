// Package cli implements the `warden` command line: the user's tool that turns
// one sign-in at wardend into AWS credentials. This step has only `version`;
// configure, login, roles, creds, credential-process, exec, console and logout
// follow in step 5.
package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/version"
)

// Root builds the `warden` command tree.
func Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Sign in once at your Warden IdP and use AWS from the command line",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(versionCmd())
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
