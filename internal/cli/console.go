package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
)

func consoleCmd(a *App) *cobra.Command {
	var f credFlags
	var destination string
	var print bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the AWS Management Console as one role",
		Long: "Build a console sign-in URL through the AWS federation endpoint of the role's partition\n" +
			"(getSigninToken, then login) and open it in the browser, or print it with --print.\n" +
			"The URL is valid for 15 minutes and must be kept secret. --duration sets the console session's\n" +
			"length (and that of the credentials behind it); without it the session lasts as long as the credentials.\n" +
			"--federation-endpoint (config: federation_endpoint) replaces AWS's endpoint, e.g. with a proxy.",
		Example: "  warden console --role prod/ReadOnly\n  warden console --role prod/ReadOnly --duration 4h --destination https://console.aws.amazon.com/cloudwatch/home",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			interactive := a.IsTerminal()
			r, err := a.resolve(ctx, f, interactive)
			if err != nil {
				return err
			}
			if destination != "" {
				// Checked before any credentials are minted.
				if err := awsfed.ValidConsoleURL(r.target.Partition, destination); err != nil {
					return fmt.Errorf("--destination: %w", err)
				}
			}
			c, err := a.credentials(ctx, r, interactive)
			if err != nil {
				return err
			}
			region := r.target.Region
			if awsfed.ValidRegion(r.target.Partition, region) != nil {
				region = ""
			}
			u, err := awsfed.ConsoleSigninURL(ctx, awsfed.ConsoleSignin{HTTPClient: a.HTTP, Partition: r.target.Partition, Region: region,
				Endpoint: r.target.FederationEndpoint, Destination: destination, Issuer: "warden", Duration: r.asked}, c)
			if err != nil {
				return federationProblem(err, f.federation != "")
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
	f.register(a, cmd)
	cmd.Flags().StringVar(&destination, "destination", "", "console URL to open (default: the console home of the partition)")
	cmd.Flags().BoolVar(&print, "print", false, "print the URL instead of opening it")
	cmd.Flags().StringVar(&f.federation, "federation-endpoint", "", "AWS federation endpoint URL (default: config federation_endpoint, else the partition's)")
	return cmd
}
