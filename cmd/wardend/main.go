// Command wardend is the Warden identity provider server.
//
//	wardend -config FILE            run with a configuration file
//	wardend -dev [-listen ADDR]     run in dev mode (nothing else needed)
//	wardend COMMAND ...             check-config, keys, aws setup, users revoke, version
//	wardend help                    every command, one line each (usage)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	devconfig "github.com/wardenidp/warden/config"
	"github.com/wardenidp/warden/internal/app"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are wardend's subcommands by their first argument. usage lists
// them; a test checks that it names every one.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"check-config": checkConfig,
	"keys":         keysCmd,
	"aws":          awsCmd,
	"users":        usersCmd,
	"version": func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "wardend", version.Get().String())
		return 0
	},
}

const usage = `usage:
  wardend -config FILE          run the identity provider with a configuration file
  wardend -dev [-listen ADDR]   dev mode: in-process directory and Redis, demo users
  wardend COMMAND ...

commands:
  check-config   report every problem in a configuration file (-connect: then test every directory server)
  keys list      show every signing key, its state and fingerprint
  keys rotate    make a next signing key: published, not signing yet
  keys promote   make the next key sign; the current one becomes previous
  aws setup      print the IAM commands and trust policies for every account and role of the rules
  users revoke   end all access of a user at once (sessions, CLI sign-ins, device codes)
  version        print the version
  help           print this help

"wardend COMMAND -h" shows a command's flags (wardend aws setup -h).

flags of the server (-config, -dev):
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wardend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", "", "configuration file (YAML); see docs/configuration.md")
	dev := fs.Bool("dev", false, "dev mode: in-process LDAP directory (config/dev-directory.ldif) and Redis; never in production")
	listen := fs.String("listen", "", "address to serve on (overrides server.listen; dev default 127.0.0.1:8080)")
	devLDIF := fs.String("dev-ldif", "", "dev mode: serve this LDIF file instead of the built-in demo directory")
	devRemote := fs.Bool("dev-allow-remote", false, "dev mode: allow a non-loopback listen address (demo users have known passwords)")
	if len(args) > 0 {
		if cmd, ok := commands[args[0]]; ok {
			return cmd(args[1:], stdout, stderr)
		}
		switch {
		case slices.Contains([]string{"help", "-h", "-help", "--help"}, args[0]):
			// Asked for: to stdout, so that it can be paged or grepped.
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		case !strings.HasPrefix(args[0], "-"):
			fmt.Fprintf(stderr, "wardend: unknown command %q\n", args[0])
			fs.Usage()
			return 2
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wardend: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	var cfg config.Config
	switch {
	case *dev && *cfgPath != "":
		fmt.Fprintln(stderr, "wardend: -dev and -config do not go together: dev mode brings its own directory and Redis")
		return 2
	case *dev:
		cfg = config.Dev(*listen)
		cfg.Dev.AllowNonLoopback = *devRemote
	case *cfgPath != "":
		c, err := config.Load(*cfgPath, os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "wardend: %s:\n%v\n", *cfgPath, err)
			return 1
		}
		if *listen != "" {
			c.Server.Listen = *listen
		}
		if err := c.Validate(); err != nil {
			fmt.Fprintf(stderr, "wardend: %s:\n%v\n", *cfgPath, err)
			return 1
		}
		cfg = *c
	default:
		fmt.Fprintln(stderr, "wardend: need -config FILE or -dev")
		fs.Usage()
		return 2
	}

	logger := slog.New(cfg.Log.Handler(stderr))
	// go-redis logs through a package global, and zitadel/oidc through
	// slog's default logger: route both to our log, once, here in main.
	redis.SetLogger(store.RedisLog{L: logger})
	slog.SetDefault(logger)
	for _, w := range cfg.Warnings() {
		logger.Warn("configuration", "warning", w)
	}
	opts := app.Options{
		Server:      cfg.Server,
		Directory:   cfg.Directory,
		Redis:       cfg.Redis,
		Session:     cfg.Session,
		LoginLimits: cfg.LoginLimits,
		Admin:       cfg.Admin,
		Keys:        cfg.Keys,
		SAML:        cfg.SAML,
		OIDC:        cfg.OIDC,
		MFA:         cfg.MFA,
		Elevation:   cfg.Elevation,
		AccessKeys:  cfg.Portal.AccessKeys,
		DataDir:     cfg.DataDir,
		Logger:      logger,
		Banner:      stdout,
	}
	if *dev {
		opts.Dev = &app.DevOptions{LDIF: devconfig.DevDirectoryLDIF, LDIFPath: *devLDIF, Rules: devconfig.ExampleRules, AllowNonLoopback: cfg.Dev.AllowNonLoopback}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, opts); err != nil {
		logger.Error("wardend stopped", "err", err)
		return 1
	}
	return 0
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wardend check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check")
	connect := fs.Bool("connect", false, "then connect to every directory server: dial, TLS, service bind, search (see connect.go)")
	user := fs.String("user", "", "with -connect: also look up this user (prints DN, ID and groups)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() > 0 || (*user != "" && !*connect) {
		fmt.Fprintln(stderr, "usage: wardend check-config -config FILE [-connect [-user NAME]]")
		return 2
	}
	code := config.CheckConfig(*path, os.LookupEnv, stdout)
	if code != config.CheckOK || !*connect {
		return code
	}
	return connectCheck(*path, *user, stdout, stderr)
}

// subcommand picks the subcommand of `wardend group ...` from args[0]:
// one of known, or "" with the exit code after printing usage (0 for
// help, 2 for a missing or unknown subcommand).
func subcommand(group, usage string, known, args []string, stdout, stderr io.Writer) (string, int) {
	if len(args) > 0 && slices.Contains(known, args[0]) {
		return args[0], 0
	}
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		fmt.Fprint(stdout, usage)
		return "", 0
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "wardend %s: unknown command %q\n", group, args[0])
	}
	fmt.Fprint(stderr, usage)
	return "", 2
}
