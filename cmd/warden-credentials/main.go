// Command warden-credentials is `warden credential-process` for the
// common case, in a binary that starts as fast as a Go hello-world: it
// links only small packages of the standard library (internal/cli/credcache),
// while warden links the AWS SDK, cobra, YAML and net/http, whose package
// initialisation alone takes longer than its whole job here
// (docs/benchmarks.md). AWS tools run credential_process at every start.
//
// It takes the arguments of `warden credential-process` and prints the
// cached credentials when the index that warden keeps says that warden,
// with exactly these arguments and the current config file, read them,
// more than 15 minutes remain and, when the arguments ask for a session
// length (--duration), they were minted for about that length
// (credcache.Creds.Serves, the rule warden follows). In every other case
// (nothing cached, too old, another length, unreadable, an unknown flag,
// --refresh, --help) it executes `warden credential-process` with the same
// arguments, so that prompts, errors and exit codes are warden's own.
package main

import (
	"os"
	"time"

	"github.com/wardenidp/warden/internal/cli/credcache"
)

func main() {
	args := os.Args[1:]
	out, err := credcache.Lookup(credcache.CacheDir(), credcache.ConfigDir(), args, time.Now())
	if err != nil {
		handOver(args)
		return
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fail("warden: " + err.Error()) // as warden says it
	}
}

// fail prints msg on stderr and exits 1.
func fail(msg string) {
	os.Stderr.WriteString(msg + "\n")
	os.Exit(1)
}
