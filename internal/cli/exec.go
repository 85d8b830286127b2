package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
)

// ExitError carries a child's exit code through `warden exec`: main exits
// with Code and prints nothing more.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode is the process exit code to use.
func (e *ExitError) ExitCode() int { return e.Code }

func execCmd(a *App) *cobra.Command {
	var f credFlags
	cmd := &cobra.Command{
		Use:   "exec --role R -- command [args...]",
		Short: "Run a command with one role's temporary AWS credentials in its environment",
		Long: "Run a command with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n" +
			"AWS_CREDENTIAL_EXPIRATION and AWS_REGION set; its exit code is warden's.",
		Example: "  warden exec --role prod/ReadOnly -- aws s3 ls",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			env := make([]string, 0, len(os.Environ())+5)
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				switch k {
				case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
					"AWS_CREDENTIAL_EXPIRATION", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE":
					continue // the role's credentials win over a profile or other keys
				}
				env = append(env, kv)
			}
			env = append(env, credEnv(c, r.target.Region)...)
			env = append(env, "AWS_DEFAULT_REGION="+r.target.Region)
			path, err := exec.LookPath(args[0])
			if err != nil {
				return fmt.Errorf("exec: %w", err)
			}
			child := exec.CommandContext(ctx, path, args[1:]...)
			child.Env = env
			child.Stdin, child.Stdout, child.Stderr = a.Stdin, a.Stdout, a.Stderr
			err = child.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code := ee.ExitCode()
				if code < 0 {
					code = 1 // killed by a signal
				}
				return &ExitError{Code: code}
			}
			if err != nil {
				return fmt.Errorf("exec: %w", err)
			}
			return nil
		},
	}
	f.register(a, cmd)
	return cmd
}
