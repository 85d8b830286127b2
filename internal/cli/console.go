package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
)

func consoleCmd(a *App) *cobra.Command {
	var f credFlags
	var destination, federation string
	var print bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the AWS Management Console as one role",
		Long: "Build a console sign-in URL through the AWS federation endpoint of the role's partition\n" +
			"(getSigninToken, then login) and open it in the browser, or print it with --print.\n" +
			"The URL is valid for 15 minutes and must be kept secret.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			part := r.role.Partition
			if part == "" {
				part = r.cfg.Partition
			}
			region := r.cfg.Region
			if awsfed.ValidRegion(part, region) != nil {
				region = ""
			}
			u, err := awsfed.ConsoleSigninURL(ctx, awsfed.ConsoleSignin{HTTPClient: a.HTTP, Partition: part, Region: region,
				Endpoint: federation, Destination: destination, Issuer: "warden"}, c)
			if err != nil {
				return err
			}
			if !print {
				if err := a.OpenBrowser(u); err == nil {
					fmt.Fprintln(a.Stderr, "Opened the AWS console in your browser.")
					return nil
				}
				fmt.Fprintln(a.Stderr, "Could not open a browser; open this URL (valid 15 minutes):")
			}
			_, err = fmt.Fprintln(a.Stdout, u)
			return err
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&destination, "destination", "", "console URL to open (default: the console home of the partition)")
	cmd.Flags().BoolVar(&print, "print", false, "print the URL instead of opening it")
	cmd.Flags().StringVar(&federation, "federation-endpoint", "", "AWS federation endpoint URL (tests)")
	_ = cmd.Flags().MarkHidden("federation-endpoint")
	return cmd
}
