package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// connectCheck is check-config -connect: after the file passed, it tests
// every configured directory server (dial, TLS with the configured CA file
// and server name, service bind, a base search of the user base DN, and
// with user the user's look-up) and prints one line per server. For
// OpenLDAP-style directories it also warns about grant rules that name a
// bare group CN held by more than one group. Exit status 1 when any server
// failed.
func connectCheck(path, user string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path, os.LookupEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend: %s:\n%v\n", path, err)
		return config.CheckProblems
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dir, err := ldap.New(cfg.Directory, ldap.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(stderr, "wardend: directory: %v\n", err)
		return config.CheckProblems
	}
	defer dir.Close()

	d := cfg.Directory
	budget := d.DialTimeout + 3*d.Timeout + 5*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	failed := 0
	var working *ldap.ServerCheck
	checks := dir.TestConnection(ctx, user)
	for i, c := range checks {
		fmt.Fprintln(stdout, "directory "+c.String())
		if !c.OK {
			failed++
		} else if working == nil {
			working = &checks[i]
		}
	}
	if working != nil && d.Type == ldap.TypeOpenLDAP {
		ambiguousGroupWarnings(ctx, cfg, dir, stdout, stderr)
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "directory: %d of %d servers failed\n", failed, len(checks))
		return config.CheckProblems
	}
	fmt.Fprintf(stdout, "directory: %d of %d servers OK\n", len(checks), len(checks))
	return config.CheckOK
}

// ambiguousGroupWarnings warns about grant rules (admin.rules_file and the
// rules stored in Redis) that name a group by bare CN where more than one
// group under the group base has that CN: the rule then matches members of
// each of them. Grant rules by DN are exact. Problems reading the rules are
// warnings too: -connect checks the directory, not Redis.
func ambiguousGroupWarnings(ctx context.Context, cfg *config.Config, dir *ldap.Directory, stdout, stderr io.Writer) {
	type source struct {
		name  string
		rules rolemap.RuleSet
	}
	var sources []source
	if f := cfg.Admin.RulesFile; f != "" {
		b, err := os.ReadFile(f)
		var rs rolemap.RuleSet
		if err == nil {
			rs, err = rolemap.ParseYAML(b)
		}
		if err != nil {
			fmt.Fprintf(stdout, "warning: admin.rules_file: not checked for ambiguous group names: %v\n", err)
		} else {
			sources = append(sources, source{"admin.rules_file " + f, rs})
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	quiet := slog.New(slog.DiscardHandler)
	redis.SetLogger(store.RedisLog{L: quiet}) // go-redis logs through a package global
	if st, err := store.Open(rctx, cfg.Redis, quiet); err != nil {
		fmt.Fprintf(stdout, "warning: stored rules not checked for ambiguous group names: redis: %v\n", err)
	} else {
		_, doc, err := store.NewRules(st, time.Now).Current(rctx)
		var rs rolemap.RuleSet
		if err == nil && len(doc) > 0 {
			rs, err = rolemap.ParseYAML(doc)
		}
		if err != nil {
			fmt.Fprintf(stdout, "warning: stored rules not checked for ambiguous group names: %v\n", err)
		} else if len(doc) > 0 {
			sources = append(sources, source{"stored rules", rs})
		}
		_ = st.Close()
	}
	seen := map[string][]string{} // lower-case CN -> DNs
	for _, src := range sources {
		for _, g := range src.rules.Grants {
			if g.Group == "" || strings.Contains(g.Group, "=") {
				continue
			}
			key := strings.ToLower(g.Group)
			dns, ok := seen[key]
			if !ok {
				var err error
				dns, err = dir.GroupDNsByCN(ctx, g.Group)
				if err != nil {
					fmt.Fprintf(stderr, "warning: group %q: not checked: %v\n", g.Group, err)
					continue
				}
				seen[key] = dns
			}
			if len(dns) > 1 {
				fmt.Fprintf(stdout, "warning: %s: grant %s names group %q, which %d groups have as CN (%s); name one by its DN\n",
					src.name, g.ID, g.Group, len(dns), strings.Join(dns, "; "))
			}
		}
	}
}
