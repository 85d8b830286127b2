// Command warden is the Warden CLI: see internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/wardenidp/warden/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := cli.Root(cli.NewApp()).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}
