package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/cli/credcache"
)

// Status is what `warden status` reports, from the cache alone.
type Status struct {
	IdPURL   string `json:"idp_url,omitempty"`
	SignedIn bool   `json:"signed_in"`
	Username string `json:"username,omitempty"`
	// SignedInAt is when the device login finished; zero: unknown.
	SignedInAt time.Time `json:"signed_in_at,omitzero"`
	// ValidUntil is when the sign-in ends: the refresh token's end when
	// the IdP said it, else, without a refresh token, the access token's.
	// Zero: the IdP's limits decide (refreshed silently until then).
	ValidUntil        time.Time    `json:"valid_until,omitzero"`
	AccessTokenExpiry time.Time    `json:"access_token_expiry,omitzero"`
	Refreshable       bool         `json:"refreshable"`
	Credentials       []CredStatus `json:"credentials"`
}

// CredStatus is one cached credential set.
type CredStatus struct {
	Role       string    `json:"role"` // as --role takes it
	RoleARN    string    `json:"role_arn"`
	Via        string    `json:"via"`
	Seconds    int       `json:"seconds,omitempty"` // the session length asked of STS; 0: unknown
	Minted     time.Time `json:"minted,omitzero"`
	Expiration time.Time `json:"expiration"`
	// Usable: handed out as they are (more than 15 minutes left).
	Usable bool `json:"usable"`
}

// status reads the sign-in and the cached credentials; it never calls
// the IdP or AWS.
func (a *App) status() (Status, error) {
	cfg, err := a.LoadConfig()
	if err != nil {
		return Status{}, err
	}
	st := Status{IdPURL: cfg.IdPURL, Credentials: []CredStatus{}}
	now := a.Now()
	if t, ok := a.readToken(cfg.IdPURL); ok && cfg.IdPURL != "" {
		st.Username, st.SignedInAt, st.AccessTokenExpiry = t.Username, t.SignedInAt, t.Expiry
		st.Refreshable = t.RefreshToken != "" && (t.RefreshExpiry.IsZero() || now.Before(t.RefreshExpiry))
		st.SignedIn = t.valid(now) || st.Refreshable
		switch {
		case t.RefreshToken != "":
			st.ValidUntil = t.RefreshExpiry
		default:
			st.ValidUntil = t.Expiry
		}
	}
	labels := map[string]string{}
	for _, r := range a.cachedRoles() {
		labels[r.RoleARN] = roleSpec(r)
	}
	ents, _ := os.ReadDir(filepath.Join(a.CacheDir, "creds"))
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		var c credcache.Creds
		if ok, _ := readJSON(filepath.Join(a.CacheDir, "creds", name), &c); !ok || c.RoleARN == "" {
			continue
		}
		label, ok := labels[c.RoleARN]
		if !ok {
			label = labelOf(nil, c.RoleARN)
		}
		st.Credentials = append(st.Credentials, CredStatus{Role: label, RoleARN: c.RoleARN, Via: c.Via, Seconds: c.Seconds,
			Minted: c.Minted, Expiration: c.Expiration, Usable: c.Fresh(now)})
	}
	slices.SortFunc(st.Credentials, func(x, y CredStatus) int {
		if c := strings.Compare(x.Role, y.Role); c != 0 {
			return c
		}
		return strings.Compare(x.Via, y.Via)
	})
	return st, nil
}

func statusCmd(a *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show who is signed in, until when, and the cached credentials per role",
		Long: "Show the cached sign-in (user, IdP, since when, until when) and every cached credential set\n" +
			"with its role, STS path, session length and expiry. It reads the cache only: no network.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.status()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return a.printStatus(st)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func (a *App) printStatus(st Status) error {
	w := a.Stdout
	switch {
	case st.IdPURL == "":
		fmt.Fprintln(w, "Not configured: run `warden configure --idp-url https://idp.example.com`.")
	case !st.SignedIn:
		fmt.Fprintf(w, "Not signed in at %s: run `warden login`.\n", st.IdPURL)
	default:
		fmt.Fprintf(w, "Signed in as %s at %s", orUnknown(st.Username), st.IdPURL)
		if !st.SignedInAt.IsZero() {
			fmt.Fprintf(w, " since %s", a.clock(st.SignedInAt))
		}
		fmt.Fprintln(w, ".")
		switch {
		case !st.ValidUntil.IsZero():
			fmt.Fprintf(w, "Sign-in valid until %s (%s left).\n", a.clock(st.ValidUntil), a.left(st.ValidUntil))
		case st.Refreshable:
			fmt.Fprintln(w, "Sign-in renewed silently until the IdP ends it (by default 12h after signing in, or 2h unused).")
		}
	}
	if len(st.Credentials) == 0 {
		fmt.Fprintln(w, "No cached credentials.")
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tVIA\tSESSION\tEXPIRES\tLEFT")
	for _, c := range st.Credentials {
		sess := "-"
		if c.Seconds > 0 {
			sess = humanDuration(time.Duration(c.Seconds) * time.Second)
		}
		left := a.left(c.Expiration)
		if !c.Usable && left != "none" {
			left += " (renewed at next use)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Role, c.Via, sess, a.clock(c.Expiration), left)
	}
	return tw.Flush()
}
