package cli

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeRoleFlag registers shell completion of role names for the flag
// of cmd: "account-name/role" and "account-id/role" of the cached roles
// listing, and ARNs once "arn:" is typed; eligible adds the roles the
// user may request (cached by the last `warden roles` or `warden
// elevate`). It reads the cache only: no network, no sign-in, even when
// the listing is older than its five minutes, since a shell waits on it.
func (a *App) completeRoleFlag(cmd *cobra.Command, flag string, eligible bool) {
	_ = cmd.RegisterFlagCompletionFunc(flag, func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return a.roleCompletions(toComplete, eligible), cobra.ShellCompDirectiveNoFileComp
	})
}

// cachedRoles is the roles listing in the cache for the configured IdP,
// however old, without a network call; nil when there is none.
func (a *App) cachedRoles() []Role {
	cfg, err := a.LoadConfig()
	if err != nil || cfg.IdPURL == "" {
		return nil
	}
	var rc rolesCache
	if ok, _ := readJSON(a.rolesPath(), &rc); !ok || rc.IdPURL != cfg.IdPURL {
		return nil
	}
	return rc.Roles
}

// eligibleCache is CacheDir/eligible.json: the roles the user may
// request, as the last elevation listing gave them, for completion.
type eligibleCache struct {
	IdPURL  string         `json:"idp_url"`
	Fetched time.Time      `json:"fetched"`
	Roles   []EligibleRole `json:"roles"`
}

func (a *App) eligiblePath() string { return filepath.Join(a.CacheDir, "eligible.json") }

// cacheEligible keeps the eligible roles for completion; a failure only
// costs completion.
func (a *App) cacheEligible(idp string, roles []EligibleRole) {
	if a.CacheDir == "" {
		return
	}
	_ = writeJSON(a.eligiblePath(), eligibleCache{IdPURL: idp, Fetched: a.Now(), Roles: roles})
}

// roleCompletions are the completions of toComplete for --role, with a
// description after a tab (the shells that show one do).
func (a *App) roleCompletions(toComplete string, eligible bool) []string {
	roles := a.cachedRoles()
	desc := map[string]string{}
	for _, r := range roles {
		d := "max session " + humanDuration(time.Duration(max(r.SessionSeconds, 3600))*time.Second)
		if r.Partition != "" && r.Partition != "aws" {
			d += ", " + r.Partition
		}
		desc[r.RoleARN] = d
	}
	if eligible {
		var ec eligibleCache
		if cfg, err := a.LoadConfig(); err == nil && cfg.IdPURL != "" {
			if ok, _ := readJSON(a.eligiblePath(), &ec); ok && ec.IdPURL == cfg.IdPURL {
				for _, e := range ec.Roles {
					if _, held := desc[e.RoleARN]; !held {
						roles = append(roles, e.role())
						desc[e.RoleARN] = "eligible: warden elevate"
					}
				}
			}
		}
	}
	low := strings.ToLower(toComplete)
	var out []string
	seen := map[string]bool{}
	add := func(value, d string) {
		if seen[value] || !strings.HasPrefix(strings.ToLower(value), low) {
			return
		}
		seen[value] = true
		out = append(out, value+"\t"+d)
	}
	for _, r := range roles {
		d := desc[r.RoleARN]
		if strings.HasPrefix(low, "arn:") {
			add(r.RoleARN, d)
			continue
		}
		if r.AccountName != "" {
			add(r.AccountName+"/"+r.RoleName, d+", account "+r.AccountID)
		}
		add(r.AccountID+"/"+r.RoleName, d)
	}
	return out
}
