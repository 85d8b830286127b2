// Command warden is the Warden CLI: see internal/cli.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/wardenidp/warden/internal/cli"
)

func main() {
	// Only what this invocation needs: the one command it names, and the
	// interrupt handler once something waits. `credential-process` runs at
	// every start of an AWS tool that uses a warden profile (docs/benchmarks.md).
	ctx, stop := cli.InterruptContext()
	err := cli.RootFor(cli.NewApp(), os.Args[1:]).ExecuteContext(ctx)
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
