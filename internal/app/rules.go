package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/wardenidp/warden/internal/admin"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

// canonicalRules parses and validates a rule document and returns its
// canonical YAML, the form every save through the admin UI produces, so that
// history diffs compare like with like.
func canonicalRules(name string, data []byte) ([]byte, error) {
	rs, err := rolemap.ParseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", name, err)
	}
	if ps := rs.Validate(); len(ps) > 0 {
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
func seedRules(ctx context.Context, rules *store.Rules, cfg admin.Config, builtin []byte, log *slog.Logger) error {
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
	doc, err := canonicalRules(name, data)
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
// with a polling fallback). A stored version that does not compile (written
// by another tool, or by a newer wardend) is logged and the previous engine
// kept: users keep the roles they had rather than losing all of them.
func watchRules(ctx context.Context, rules *store.Rules, holder *rolemap.Holder, log *slog.Logger) {
	load := func(version int64) {
		v, doc, err := rules.Current(ctx)
		if err != nil {
			log.Warn("rules: load", "version", version, "err", err)
			return
		}
		rs, err := rolemap.ParseYAML(doc)
		if err != nil {
			log.Error("rules: stored version does not parse; keeping the previous rules", "version", v.Version, "err", err)
			return
		}
		e, err := rolemap.Compile(rs)
		if err != nil {
			log.Error("rules: stored version does not compile; keeping the previous rules", "version", v.Version, "err", err)
			return
		}
		holder.Store(e)
		log.Info("rules loaded", "version", v.Version, "accounts", len(rs.Accounts), "grants", len(rs.Grants), "patterns", len(rs.Patterns))
	}
	rules.Watch(ctx, load)
}
