package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func rolesCmd(a *App) *cobra.Command {
	var asJSON, noLogin bool
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "List the AWS roles you may assume (account name, account ID, role, max session) and those you may request",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles, err := a.Roles(cmd.Context(), !noLogin && a.IsTerminal())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(roles)
			}
			// The roles one may request (time-boxed elevation), apart;
			// an IdP without elevation (404) lists none.
			l, _, eerr := a.elevList(cmd.Context(), false)
			if eerr != nil && !errors.Is(eerr, ErrNoElevationAPI) {
				fmt.Fprintf(a.Stderr, "(eligible roles not listed: %v)\n", eerr)
			}
			if len(roles) == 0 {
				if len(l.Eligible) == 0 {
					fmt.Fprintln(a.Stderr, "You have no AWS roles.")
					return nil
				}
				fmt.Fprintln(a.Stderr, "You hold no standing AWS roles.")
				return a.printEligible(a.Stdout, l.Eligible)
			}
			tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCOUNT NAME\tACCOUNT ID\tROLE\tMAX SESSION")
			for _, r := range roles {
				name := r.AccountName
				if name == "" {
					name = "-"
				}
				sess := "-"
				if r.SessionSeconds > 0 {
					sess = humanDuration(time.Duration(r.SessionSeconds) * time.Second)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, r.AccountID, r.RoleName, sess)
			}
			if err := tw.Flush(); err != nil || len(l.Eligible) == 0 {
				return err
			}
			return a.printEligible(a.Stdout, l.Eligible)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVar(&noLogin, "no-login", false, "fail instead of starting a sign-in when none is cached")
	return cmd
}

// humanDuration prints 3600s as "1h", 5400s as "1h30m", 900s as "15m".
func humanDuration(d time.Duration) string {
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h > 0 && m > 0:
		return strconv.Itoa(h) + "h" + strconv.Itoa(m) + "m"
	case h > 0:
		return strconv.Itoa(h) + "h"
	default:
		return strconv.Itoa(int(d.Seconds())/60) + "m"
	}
}
