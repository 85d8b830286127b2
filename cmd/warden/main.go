// Command warden is the Warden CLI: see internal/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/wardenidp/warden/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := cli.Root(cli.NewApp()).ExecuteContext(ctx)
	stop()
	var exit interface{ ExitCode() int } // `warden exec` passes its child's exit code through
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}
