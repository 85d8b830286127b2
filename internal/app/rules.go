package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// canonicalRules parses and validates a rule document and returns its
// canonical YAML, the form every save through the admin UI produces, so that
// history diffs compare like with like.
// fetched are the attributes the directory reads (directory.attributes.extra):
// a tag that needs another is a problem too (rolemap.RuleSet.CheckFetched).
func canonicalRules(name string, data []byte, fetched []string) ([]byte, error) {
	rs, err := rolemap.ParseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", name, err)
	}
	if ps := append(rs.Validate(), rs.CheckFetched(fetched)...); len(ps) > 0 {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "\n  %s: %s", p.Path, p.Message)
		}
		return nil, fmt.Errorf("app: %s: %d problems:%s", name, len(ps), b.String())
	}
	return rs.MarshalYAML()
}

// seedRules brings the stored rules in line with admin.rules_file: on first
// start the file seeds them; in read-only mode the file replaces them at
// every start (a no-op when unchanged). An invalid file stops wardend: it
// would otherwise serve rules nobody meant.
func seedRules(ctx context.Context, rules *store.Rules, cfg admin.Config, builtin []byte, fetched []string, log *slog.Logger) error {
	name, data := cfg.RulesFile, builtin
	if cfg.RulesFile != "" {
		b, err := os.ReadFile(cfg.RulesFile)
		if err != nil {
			return fmt.Errorf("app: admin.rules_file: %w", err)
		}
		data = b
	} else if builtin == nil {
		return nil
	} else {
		name = "built-in dev rules"
	}
	doc, err := canonicalRules(name, data, fetched)
	if err != nil {
		return err
	}
	meta := store.ChangeMeta{Author: "wardend", Comment: "from " + name}
	if cfg.RulesReadOnly {
		v, err := rules.Replace(ctx, doc, meta)
		if err != nil {
			return fmt.Errorf("app: rules from %s: %w", name, err)
		}
		log.Info("rules are read-only, from file", "file", name, "version", v.Version)
		return nil
	}
	v, seeded, err := rules.SeedIfEmpty(ctx, doc, meta)
	if err != nil {
		return fmt.Errorf("app: seed rules from %s: %w", name, err)
	}
	if seeded {
		log.Info("rules seeded", "file", name, "version", v.Version)
	} else {
		log.Info("rules already stored; rules_file not applied (it seeds an empty store only)", "file", name, "version", v.Version)
	}
	return nil
}

// watchRules keeps holder at the stored rule set: compiled at start and
// again whenever any replica saves a new version (store.Rules.Watch: pub/sub
// with a polling fallback; a failed read of a new version is retried with
// backoff until it succeeds, with a warning while behind). A stored version
// that does not compile (written
// by another tool, or by a newer wardend) is logged and the previous engine
// kept: users keep the roles they had rather than losing all of them.
func watchRules(ctx context.Context, rules ruleSource, holder *rolemap.Holder, log *slog.Logger) {
	watchRulesMetered(ctx, rules, holder, log, nil)
}

// ruleSource is what watchRules reads: *store.Rules (tests wrap it to make
// a read fail).
type ruleSource interface {
	Current(ctx context.Context) (store.RuleVersion, []byte, error)
	WatchLoad(ctx context.Context, fn func(version int64) error)
}

// rulesGauges report whether this replica serves the newest stored rules.
// A nil *rulesGauges reports nothing.
type rulesGauges struct {
	behind, loaded prometheus.Gauge
}

func (g *rulesGauges) set(behind bool, loaded int64) {
	if g == nil {
		return
	}
	b := 0.0
	if behind {
		b = 1
	}
	g.behind.Set(b)
	if loaded >= 0 {
		g.loaded.Set(float64(loaded))
	}
}

// watchRulesMetered is watchRules that also sets the gauges: behind is 1
// while the newest stored version is not the one in force (its read
// failed and is being retried, or it does not compile), loaded is the
// version in force.
func watchRulesMetered(ctx context.Context, rules ruleSource, holder *rolemap.Holder, log *slog.Logger, g *rulesGauges) {
	// A failed read is returned, so that the watch retries until this
	// version is loaded (store.Rules.WatchLoad logs while behind); a
	// version that does not parse or compile is final: retrying cannot help.
	load := func(version int64) error {
		v, doc, err := rules.Current(ctx)
		if err != nil {
			g.set(true, -1)
			return fmt.Errorf("rules: load version %d: %w", version, err)
		}
		rs, err := rolemap.ParseYAML(doc)
		if err != nil {
			log.Error("rules: stored version does not parse; keeping the previous rules", "version", v.Version, "err", err)
			g.set(true, -1)
			return nil
		}
		e, err := rolemap.Compile(rs)
		if err != nil {
			log.Error("rules: stored version does not compile; keeping the previous rules", "version", v.Version, "err", err)
			g.set(true, -1)
			return nil
		}
		holder.Store(e)
		g.set(false, v.Version)
		log.Info("rules loaded", "version", v.Version, "accounts", len(rs.Accounts), "grants", len(rs.Grants), "patterns", len(rs.Patterns), "workloads", len(rs.Workloads))
		return nil
	}
	rules.WatchLoad(ctx, load)
}
