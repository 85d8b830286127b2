// Command warden is the Warden CLI: see internal/cli.
package main

import (
	"fmt"
	"os"

	"github.com/wardenidp/warden/internal/cli"
)

func main() {
	if err := cli.Root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}
