package cli

// Time-boxed elevation from the command line: `warden elevate` requests an
// eligible role for a window (and waits for the decision), `warden
// elevations` lists the user's requests, `warden elevate --end` ends an
// active one. All through wardend's JSON API under /api/elevations, with the
// CLI's OIDC access token as the bearer. An IdP without that API (404) is an
// older wardend: the other commands behave as before.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/wardenidp/warden/internal/awsfed"
)

// Elevation states (wardend's store.Elevation*).
const (
	elevPending  = "pending"
	elevApproved = "approved"
	elevDenied   = "denied"
	elevExpired  = "expired"
	elevEnded    = "ended"
)

// Limits the server enforces too; the CLI checks them first for a clear
// message, the server decides.
const (
	elevMinSeconds = 900 // AWS sessions last at least 15 minutes
	elevMaxRoles   = 20
	elevMaxReason  = 500 // characters
)

// Polling of a pending request.
const (
	elevPollDefault = 2 * time.Second
	elevPollMax     = 30 * time.Second
)

// scopeElevate is the extra scope of the step-up sign-in: the device
// approval page then demands a fresh second factor.
const scopeElevate = "elevate"

// Elevation is one request, as the API answers it.
type Elevation struct {
	ID        string    `json:"id"`
	Username  string    `json:"username,omitempty"`
	Roles     []string  `json:"roles"`
	Seconds   int       `json:"seconds"`
	Reason    string    `json:"reason,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	StartAt   time.Time `json:"start_at,omitzero"`
	Deadline  time.Time `json:"deadline,omitzero"`
	State     string    `json:"state"`
	Decider   string    `json:"decider,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	StartsAt  time.Time `json:"starts_at,omitzero"`
	EndsAt    time.Time `json:"ends_at,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
}

// activeAt reports whether e grants its roles at t.
func (e Elevation) activeAt(t time.Time) bool {
	return e.State == elevApproved && !t.Before(e.StartsAt) && t.Before(e.EndsAt)
}

// activeNow reports whether the "active" elevation of an eligible role
// still runs (the server sends it only while it does; the client's clock
// only drops one that has ended since).
func (a *App) activeNow(e *Elevation) bool {
	return e != nil && (e.EndsAt.IsZero() || a.Now().Before(e.EndsAt))
}

// EligibleRole is a role the user may request.
type EligibleRole struct {
	RoleARN       string       `json:"role_arn"`
	AccountID     string       `json:"account_id"`
	AccountName   string       `json:"account_name,omitempty"`
	RoleName      string       `json:"role_name"`
	Partition     string       `json:"partition,omitempty"`
	MaxSeconds    int          `json:"max_seconds"`
	Approvers     approverList `json:"approvers,omitempty"`
	RequireReason bool         `json:"require_reason,omitempty"`
	ReasonPattern string       `json:"reason_pattern,omitempty"`
	// Active is the elevation that grants the role now, if any.
	Active *Elevation `json:"active,omitempty"`
}

func (r EligibleRole) role() Role {
	return Role{RoleARN: r.RoleARN, AccountID: r.AccountID, AccountName: r.AccountName, RoleName: r.RoleName, Partition: r.Partition}
}

// approverList reads "approvers" as a string or a list of strings.
type approverList []string

func (l *approverList) UnmarshalJSON(p []byte) error {
	var s string
	if json.Unmarshal(p, &s) == nil {
		*l = nil
		if s != "" {
			*l = approverList{s}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(p, &list); err != nil {
		return err
	}
	*l = list
	return nil
}

func (l approverList) String() string { return strings.Join(l, ", ") }

// elevationList is GET /api/elevations.
type elevationList struct {
	Eligible   []EligibleRole `json:"eligible"`
	Elevations []Elevation    `json:"elevations"`
}

// APIError is an error answer of wardend's JSON API.
type APIError struct {
	Status      int
	Code        string // invalid_request, not_eligible, not_found, …
	Description string
	RequestID   string
	RetryAfter  time.Duration // 429/503: the server's Retry-After
}

// Error is one line: the server's sentence and the request ID to quote to
// an administrator.
func (e *APIError) Error() string {
	msg := e.Description
	switch {
	case msg == "" && e.Code != "":
		msg = "the IdP refused: " + e.Code
	case msg == "":
		msg = fmt.Sprintf("the IdP answered HTTP %d", e.Status)
	}
	if e.RequestID != "" {
		msg += " (request ID " + e.RequestID + ")"
	}
	return msg
}

// temporary: worth asking again later.
func (e *APIError) temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// unreachableError: the IdP could not be reached (worth asking again).
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return "cannot reach the IdP: " + e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// ErrNoElevationAPI means that the IdP has no /api/elevations (an older
// wardend).
var ErrNoElevationAPI = errors.New("this IdP does not offer elevation (it has no /api/elevations): ask your administrator")

// elevCall sends method path (under the IdP URL) with in as its JSON body,
// the access token as the bearer, and decodes the answer into out. It
// returns the raw answer. An access token the IdP no longer takes is
// refreshed once.
func (a *App) elevCall(ctx context.Context, interactive bool, method, path string, in, out any) ([]byte, error) {
	cfg, err := a.LoadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.IdPURL == "" {
		return nil, ErrNotConfigured
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	tok, err := a.AccessToken(ctx, interactive)
	if err != nil {
		return nil, err
	}
	raw, err := a.elevDo(ctx, method, cfg.IdPURL+path, tok, body)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Code != errInsufficientAuthn {
		// Revoked server-side or the IdP restarted: refresh once.
		t, terr := a.token(ctx, interactive, true)
		if terr != nil {
			return nil, terr
		}
		raw, err = a.elevDo(ctx, method, cfg.IdPURL+path, t.AccessToken, body)
	}
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: the IdP's answer is not what warden expects: %v", method, path, err)
		}
	}
	return raw, nil
}

// wwwAuthErrorRE finds error="…" in a WWW-Authenticate challenge; compiled
// on first use, not at every start of the CLI.
var wwwAuthErrorRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\berror="([^"]*)"`) })

func (a *App) elevDo(ctx context.Context, method, u, bearer string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &unreachableError{err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, &unreachableError{err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return raw, nil
	}
	var r struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		RequestID        string `json:"request_id"`
	}
	_ = json.Unmarshal(raw, &r)
	ae := &APIError{Status: resp.StatusCode, Code: r.Error, Description: oneLine(r.ErrorDescription), RequestID: r.RequestID}
	if strings.Contains(ae.Code, " ") && ae.Description == "" {
		// wardend's generic errors carry a sentence in "error".
		ae.Code, ae.Description = "", oneLine(ae.Code)
	}
	if ae.Code == "" {
		if m := wwwAuthErrorRE().FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); m != nil {
			ae.Code = m[1]
		}
	}
	if ae.RequestID == "" {
		ae.RequestID = resp.Header.Get("X-Request-ID")
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ae.RetryAfter = time.Duration(s) * time.Second
	}
	return nil, ae
}

// elevList is GET /api/elevations; ErrNoElevationAPI when the IdP has none.
func (a *App) elevList(ctx context.Context, interactive bool) (elevationList, []byte, error) {
	var l elevationList
	raw, err := a.elevCall(ctx, interactive, http.MethodGet, "/api/elevations", nil, &l)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return l, nil, ErrNoElevationAPI
	}
	if err == nil {
		if cfg, cerr := a.LoadConfig(); cerr == nil {
			a.cacheEligible(cfg.IdPURL, l.Eligible)
		}
	}
	return l, raw, err
}

// withStepUp runs call; when the IdP wants a fresh second factor
// (insufficient_user_authentication) it signs in again through the device
// flow with the "elevate" scope and runs call once more.
func (a *App) withStepUp(ctx context.Context, noBrowser bool, call func() error) error {
	err := call()
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != errInsufficientAuthn {
		return err
	}
	fmt.Fprintln(a.Stderr, "Elevation needs a fresh sign-in with your second factor: signing in again.")
	if err := a.runStepUp(ctx, noBrowser); err != nil {
		return err
	}
	err = call()
	if errors.As(err, &ae) && ae.Code == errInsufficientAuthn {
		return fmt.Errorf("the IdP still wants a fresh second factor after the new sign-in: %w", err)
	}
	return err
}

// runStepUp signs in again with a fresh second factor: a.stepUp when set
// (tests), else a device login with the extra scope "elevate".
func (a *App) runStepUp(ctx context.Context, noBrowser bool) error {
	if a.stepUp != nil {
		return a.stepUp(ctx)
	}
	return a.replaceSignIn(ctx, loginOptions{MFA: true, NoBrowser: noBrowser, ExtraScopes: []string{scopeElevate}})
}

// replaceSignIn is `warden login --mfa` (with opts; elevation adds the
// scope "elevate"): a new device login whatever is cached, which replaces
// the cached sign-in (the old one is revoked once the new one succeeds).
func (a *App) replaceSignIn(ctx context.Context, opts loginOptions) error {
	cfg, err := a.LoadConfig()
	if err != nil {
		return err
	}
	if cfg.IdPURL == "" {
		return ErrNotConfigured
	}
	unlock, err := a.Lock(ctx, tokenLockName)
	if err != nil {
		return err
	}
	defer unlock()
	old, hadOld := a.readToken(cfg.IdPURL)
	if _, err := a.deviceLogin(ctx, cfg.IdPURL, opts); err != nil {
		return err
	}
	if hadOld && old.RefreshToken != "" {
		if d, err := a.Discovery(ctx); err == nil {
			_ = a.revoke(ctx, d, old.RefreshToken, "refresh_token")
		}
	}
	return nil
}

// --- role names ---

// accountLabel is a role's account as the user names it: its name, else ID.
func accountLabel(accountName, accountID string) string {
	if accountName != "" {
		return accountName
	}
	return accountID
}

// roleSpec is r as --role takes it: "account/role", or the ARN when the
// role's name is unknown.
func roleSpec(r Role) string {
	if r.RoleName == "" || (r.AccountName == "" && r.AccountID == "") {
		return r.RoleARN
	}
	return accountLabel(r.AccountName, r.AccountID) + "/" + r.RoleName
}

// eligibleLabels names each eligible role "account/role", or by its ARN
// when two eligible roles would share the short name.
func eligibleLabels(eligible []EligibleRole) map[string]string {
	count := map[string]int{}
	for _, r := range eligible {
		count[strings.ToLower(roleSpec(r.role()))]++
	}
	out := map[string]string{}
	for _, r := range eligible {
		s := roleSpec(r.role())
		if count[strings.ToLower(s)] > 1 {
			s = r.RoleARN
		}
		out[r.RoleARN] = s
	}
	return out
}

// labelOf names a role ARN with labels, else "account-id/role" from the ARN.
func labelOf(labels map[string]string, arn string) string {
	if s, ok := labels[arn]; ok {
		return s
	}
	if r, err := awsfed.ParseRoleARN(arn); err == nil {
		return r.Account + "/" + r.Name
	}
	return arn
}

func labelsOf(labels map[string]string, arns []string) string {
	out := make([]string, len(arns))
	for i, a := range arns {
		out[i] = labelOf(labels, a)
	}
	return strings.Join(out, ", ")
}

// eligibleHint is the line for a role that is eligible but not active.
func eligibleHint(spec string, maxSeconds int) string {
	d := time.Hour
	if maxSeconds > 0 && time.Duration(maxSeconds)*time.Second < d {
		d = time.Duration(maxSeconds) * time.Second
	}
	return fmt.Sprintf(`%s is eligible, not standing: run "warden elevate --role %s --for %s --reason ..."`, spec, spec, humanDuration(d))
}

// matchRoleSpec reports whether spec (an ARN, or account-id/role or
// account-name/role) names the role.
func matchRoleSpec(spec, arn, accountID, accountName, roleName string) bool {
	if strings.HasPrefix(spec, "arn:") {
		return spec == arn
	}
	account, name, ok := strings.Cut(spec, "/")
	return ok && (account == accountID || (accountName != "" && strings.EqualFold(account, accountName))) && name == roleName
}

// checkRoleSpec checks the form of --role.
func checkRoleSpec(spec string) error {
	if strings.HasPrefix(spec, "arn:") {
		if _, err := awsfed.ParseRoleARN(spec); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		return nil
	}
	account, name, ok := strings.Cut(spec, "/")
	if !ok || account == "" || name == "" {
		return fmt.Errorf("--role %q: want a role ARN, account-id/role or account-name/role", spec)
	}
	return nil
}

// eligibleFallback looks spec up among the roles the user may request (for
// the credential commands, when spec is not a standing role): an eligible
// role with an active elevation is returned (the cached roles listing may
// predate the approval); one without gives the line that says what to run.
// ok is false when spec is not eligible either, or elevation is not
// available.
func (a *App) eligibleFallback(ctx context.Context, spec string) (Role, bool, error) {
	l, _, err := a.elevList(ctx, false)
	if err != nil {
		return Role{}, false, nil
	}
	labels := eligibleLabels(l.Eligible)
	for _, r := range l.Eligible {
		if !matchRoleSpec(spec, r.RoleARN, r.AccountID, r.AccountName, r.RoleName) {
			continue
		}
		if a.activeNow(r.Active) {
			return r.role(), true, nil
		}
		return Role{}, true, errors.New(eligibleHint(labels[r.RoleARN], r.MaxSeconds))
	}
	return Role{}, false, nil
}

// resolveEligible resolves the --role flags of `warden elevate` against the
// eligible roles (standing roles are only looked at for the message).
func (a *App) resolveEligible(ctx context.Context, specs []string, l elevationList) ([]EligibleRole, error) {
	labels := eligibleLabels(l.Eligible)
	var out []EligibleRole
	for _, spec := range specs {
		if err := checkRoleSpec(spec); err != nil {
			return nil, err
		}
		var found []EligibleRole
		for _, r := range l.Eligible {
			if matchRoleSpec(spec, r.RoleARN, r.AccountID, r.AccountName, r.RoleName) {
				found = append(found, r)
			}
		}
		switch len(found) {
		case 1:
			if !slices.ContainsFunc(out, func(x EligibleRole) bool { return x.RoleARN == found[0].RoleARN }) {
				out = append(out, found[0])
			}
			continue
		case 0:
		default:
			arns := make([]string, len(found))
			for i, r := range found {
				arns[i] = r.RoleARN
			}
			return nil, fmt.Errorf("--role %s matches %d eligible roles: give the ARN (%s)", spec, len(found), strings.Join(arns, ", "))
		}
		// Not eligible: a standing role, or a typo.
		if roles, err := a.Roles(ctx, false); err == nil {
			for _, r := range roles {
				if matchRoleSpec(spec, r.RoleARN, r.AccountID, r.AccountName, r.RoleName) {
					return nil, fmt.Errorf("%s is a standing role: you hold it already, no elevation needed (warden creds --role %s)", spec, spec)
				}
			}
		}
		return nil, notEligibleError(spec, l.Eligible, labels)
	}
	return out, nil
}

// notEligibleError says that spec is not eligible and names the likely
// meant roles, else all the eligible ones.
func notEligibleError(spec string, eligible []EligibleRole, labels map[string]string) error {
	if len(eligible) == 0 {
		return fmt.Errorf("you are not eligible for %s: no role is eligible for you (`warden roles` lists the roles you hold)", spec)
	}
	account, name, _ := strings.Cut(spec, "/")
	if strings.HasPrefix(spec, "arn:") {
		if r, err := awsfed.ParseRoleARN(spec); err == nil {
			account, name = r.Account, r.Name
		}
	}
	var close []string
	for _, r := range eligible {
		sameName := strings.EqualFold(r.RoleName, name)
		sameAccount := account == r.AccountID || strings.EqualFold(account, r.AccountName)
		near := levenshtein(strings.ToLower(roleSpec(r.role())), strings.ToLower(account+"/"+name)) <= 2 ||
			(sameAccount && levenshtein(strings.ToLower(r.RoleName), strings.ToLower(name)) <= 2)
		if sameName || near {
			close = append(close, labels[r.RoleARN])
		}
	}
	if len(close) > 0 {
		slices.Sort(close)
		return fmt.Errorf("you are not eligible for %s; did you mean %s?", spec, strings.Join(close, " or "))
	}
	all := make([]string, 0, len(eligible))
	for _, r := range eligible {
		all = append(all, labels[r.RoleARN])
	}
	slices.Sort(all)
	if len(all) > 10 {
		all = append(all[:10], fmt.Sprintf("… (%d more: `warden roles`)", len(all)-10))
	}
	return fmt.Errorf("you are not eligible for %s; you may request: %s", spec, strings.Join(all, ", "))
}

// levenshtein is the edit distance of a and b (bytes; names are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// --- checks before sending ---

// elevationSeconds is --for in seconds (the smallest max of the roles when
// not given), checked against the roles' maximum.
func elevationSeconds(d time.Duration, roles []EligibleRole, labels map[string]string) (int, error) {
	maxS := 0
	for _, r := range roles {
		if r.MaxSeconds > 0 && (maxS == 0 || r.MaxSeconds < maxS) {
			maxS = r.MaxSeconds
		}
	}
	if d == 0 {
		if maxS == 0 {
			return 0, errors.New("--for is required (how long, e.g. 1h)")
		}
		return maxS, nil
	}
	if d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("--for %s: want a positive duration in whole seconds, e.g. 1h or 90m", fmtDur(d))
	}
	s := int(d / time.Second)
	if s < elevMinSeconds {
		return 0, fmt.Errorf("--for %s: an elevation lasts at least 15m (the shortest AWS session)", fmtDur(d))
	}
	for _, r := range roles {
		if r.MaxSeconds > 0 && s > r.MaxSeconds {
			return 0, fmt.Errorf("--for %s: %s allows at most %s", fmtDur(d), labels[r.RoleARN], fmtDur(time.Duration(r.MaxSeconds)*time.Second))
		}
	}
	return s, nil
}

// fmtDur prints whole minutes as humanDuration does ("1h30m"), else as Go.
func fmtDur(d time.Duration) string {
	if d > 0 && d%time.Minute == 0 {
		return humanDuration(d)
	}
	return d.String()
}

// checkReason mirrors the server's check of a reason against each role.
func checkReason(reason string, roles []EligibleRole, labels map[string]string) error {
	if utf8.RuneCountInString(reason) > elevMaxReason {
		return fmt.Errorf("--reason: at most %d characters", elevMaxReason)
	}
	for _, r := range roles {
		name := labels[r.RoleARN]
		if (r.RequireReason || r.ReasonPattern != "") && strings.TrimSpace(reason) == "" {
			if r.ReasonPattern != "" {
				return fmt.Errorf("%s needs a reason matching %s: add --reason \"...\"", name, r.ReasonPattern)
			}
			return fmt.Errorf("%s needs a reason: add --reason \"...\" (a ticket, an incident)", name)
		}
		if r.ReasonPattern == "" {
			continue
		}
		re, err := regexp.Compile(r.ReasonPattern)
		if err != nil {
			continue // the server's to judge
		}
		if !re.MatchString(reason) {
			return fmt.Errorf("--reason %q: %s wants a reason matching %s", reason, name, r.ReasonPattern)
		}
	}
	return nil
}

// parseStart reads --start: RFC 3339, or +duration from now.
func parseStart(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("--start %s: want +duration (+2h) or a time (2026-12-07T09:00:00Z)", s)
		}
		t = now.Add(d)
	} else {
		var err error
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, fmt.Errorf("--start %s: want a time as 2026-12-07T09:00:00Z (or +01:00), or +duration (+2h)", s)
		}
	}
	if t.Before(now.Add(-time.Minute)) {
		return time.Time{}, fmt.Errorf("--start %s is in the past", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

// --- the commands ---

type elevateFlags struct {
	roles                          []string
	duration                       time.Duration
	reason, start                  string
	noWait, end, asJSON, noBrowser bool
}

func elevateCmd(a *App) *cobra.Command {
	var f elevateFlags
	cmd := &cobra.Command{
		Use:   "elevate --role ROLE --reason TEXT [--for 1h] [flags]   |   warden elevate --end [ID]",
		Short: "Request an eligible role for a limited time (time-boxed elevation), or end one",
		Long: `Requests an eligible role for a window: --for (default: the longest the role
allows) with a reason (--reason; some roles want a ticket ID). Several --role
flags make one request (the same role in several accounts). --start plans the
window for later (2026-12-07T09:00:00Z, or +2h).

Elevation needs a fresh second factor: when the IdP asks for one, warden starts
a new sign-in (a device code, as "warden login --mfa"), which replaces the
cached one, and sends the request again.

Then it waits for the decision (unless --no-wait), showing the time left, and
says what to run once approved. Ctrl-C stops waiting; the request stays
pending ("warden elevations" shows it).

--end ends your active elevation early (give its ID when several are active).`,
		Example: `  warden elevate --role prod/Admin --for 1h --reason "INC-123"
  warden elevate --role prod/Admin --role staging/Admin --for 30m --reason "CHG-42" --start +2h --no-wait
  warden elevate --end`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.end {
				if len(f.roles) > 0 || f.reason != "" || f.start != "" || cmd.Flags().Changed("for") {
					return errors.New("--end takes no --role, --for, --reason or --start: only the ID of the elevation to end")
				}
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				return a.endElevation(ctx, id, f)
			}
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q (only --end takes an ID)", args[0])
			}
			return a.elevate(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.roles, "role", "r", nil, "eligible role: an ARN, account-id/role or account-name/role (repeat for several accounts)")
	fl.DurationVar(&f.duration, "for", 0, "how long, e.g. 1h or 90m (default: the longest the role allows)")
	fl.StringVar(&f.reason, "reason", "", "why (kept in the record; some roles want a ticket ID)")
	fl.StringVar(&f.start, "start", "", "planned start: a time (2026-12-07T09:00:00Z) or +duration (+2h); default: at approval")
	fl.BoolVar(&f.noWait, "no-wait", false, "send the request and return without waiting for the decision")
	fl.BoolVar(&f.end, "end", false, "end your active elevation (give its ID when several are active)")
	fl.BoolVar(&f.asJSON, "json", false, "print the request (after the decision, unless --no-wait) as JSON on stdout")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "when a new sign-in is needed, do not open a browser")
	a.completeRoleFlag(cmd, "role", true)
	return cmd
}

func (a *App) interactive() bool { return a.IsTerminal != nil && a.IsTerminal() }

func (a *App) elevate(ctx context.Context, f elevateFlags) error {
	if len(f.roles) == 0 {
		return errors.New("--role is required: an eligible role (`warden roles` lists them), e.g. --role prod/Admin")
	}
	interactive := a.interactive()
	if _, err := a.AccessToken(ctx, false); errors.Is(err, ErrLoginRequired) && interactive {
		// Not signed in: one sign-in, with the second factor, serves the
		// listing and the request.
		if err := a.runStepUp(ctx, f.noBrowser); err != nil {
			return err
		}
	}
	var l elevationList
	err := a.withStepUp(ctx, f.noBrowser, func() (err error) {
		l, _, err = a.elevList(ctx, interactive)
		return err
	})
	if err != nil {
		return err
	}
	roles, err := a.resolveEligible(ctx, f.roles, l)
	if err != nil {
		return err
	}
	if len(roles) > elevMaxRoles {
		return fmt.Errorf("one request covers at most %d roles", elevMaxRoles)
	}
	labels := eligibleLabels(l.Eligible)
	seconds, err := elevationSeconds(f.duration, roles, labels)
	if err != nil {
		return err
	}
	if err := checkReason(f.reason, roles, labels); err != nil {
		return err
	}
	start, err := parseStart(f.start, a.Now())
	if err != nil {
		return err
	}
	for _, r := range roles {
		if a.activeNow(r.Active) && start.IsZero() {
			fmt.Fprintf(a.Stderr, "Note: %s is already active until %s (request %s).\n", labels[r.RoleARN], a.clock(r.Active.EndsAt), shortID(r.Active.ID))
		}
	}
	body := struct {
		Roles   []string `json:"roles"`
		Seconds int      `json:"seconds"`
		Reason  string   `json:"reason,omitempty"`
		StartAt string   `json:"start_at,omitempty"`
	}{Seconds: seconds, Reason: f.reason}
	for _, r := range roles {
		body.Roles = append(body.Roles, r.RoleARN)
	}
	if !start.IsZero() {
		body.StartAt = start.Format(time.RFC3339)
	}
	var e Elevation
	err = a.withStepUp(ctx, f.noBrowser, func() error {
		_, err := a.elevCall(ctx, interactive, http.MethodPost, "/api/elevations", body, &e)
		return err
	})
	if err != nil {
		return err
	}
	names := labelsOf(labels, e.Roles)
	if e.State == elevPending {
		who := "an approver"
		var approvers approverList
		for _, r := range roles {
			for _, g := range r.Approvers {
				if !slices.Contains(approvers, g) {
					approvers = append(approvers, g)
				}
			}
		}
		if len(approvers) > 0 {
			who = "a member of " + approvers.String()
		}
		fmt.Fprintf(a.Stderr, "Requested %s for %s (request %s); %s decides by %s.\n", names,
			fmtDur(time.Duration(e.Seconds)*time.Second), shortID(e.ID), who, a.clock(e.Deadline))
		if f.noWait {
			fmt.Fprintln(a.Stderr, "Not waiting: `warden elevations` shows the request and its decision.")
			return a.printElevationJSON(f.asJSON, e)
		}
		if e, err = a.waitElevation(ctx, e); err != nil {
			return err
		}
	}
	if err := a.reportDecision(e, labels); err != nil {
		return err
	}
	return a.printElevationJSON(f.asJSON, e)
}

func (a *App) printElevationJSON(asJSON bool, e Elevation) error {
	if !asJSON {
		return nil
	}
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(e)
}

// reportDecision prints an approved request's window and what to run next,
// or returns the error of a request that ended otherwise.
func (a *App) reportDecision(e Elevation, labels map[string]string) error {
	names := labelsOf(labels, e.Roles)
	by := ""
	if e.Decider != "" && e.Decider != e.Username {
		by = " by " + e.Decider
	}
	if e.Comment != "" {
		by += fmt.Sprintf(" (%q)", e.Comment)
	}
	switch e.State {
	case elevApproved:
		_ = os.Remove(a.rolesPath()) // the roles listing may now hold the role
		now := a.Now()
		if e.StartsAt.After(now) {
			fmt.Fprintf(a.Stderr, "Approved%s: %s from %s until %s.\n", by, names, a.clock(e.StartsAt), a.clock(e.EndsAt))
		} else {
			fmt.Fprintf(a.Stderr, "Approved%s: %s active until %s (%s left).\n", by, names, a.clock(e.EndsAt),
				humanDuration(e.EndsAt.Sub(now).Round(time.Minute)))
		}
		fmt.Fprintln(a.Stderr, "Next:")
		for _, arn := range e.Roles {
			n := labelOf(labels, arn)
			fmt.Fprintf(a.Stderr, "  warden console --role %s\n  warden creds --role %s\n", n, n)
		}
		return nil
	case elevDenied:
		return fmt.Errorf("request %s for %s was denied%s", shortID(e.ID), names, by)
	case elevExpired:
		return fmt.Errorf("request %s for %s expired: nobody decided it by %s; send a new one", shortID(e.ID), names, a.clock(e.Deadline))
	case elevEnded:
		return fmt.Errorf("request %s for %s was ended by %s", shortID(e.ID), names, orUnknown(e.EndedBy))
	}
	return fmt.Errorf("request %s for %s is %s", shortID(e.ID), names, e.State)
}

// waitElevation polls the request until it is decided, with a spinner on
// a terminal and a line a minute otherwise. Ctrl-C stops waiting and
// leaves the request as it is.
func (a *App) waitElevation(ctx context.Context, e Elevation) (Elevation, error) {
	interval := a.elevPoll
	if interval <= 0 {
		interval = elevPollDefault
	}
	tty := a.interactive()
	stop := func() {}
	if tty {
		fmt.Fprintln(a.Stderr, "Waiting for the decision (Ctrl-C stops waiting; the request stays pending).")
		stop = spinnerWith(a.Stderr, "Waiting for the decision…", e.Deadline, a.Now)
	} else {
		fmt.Fprintf(a.Stderr, "Waiting for the decision (%s left; Ctrl-C stops waiting)…\n", a.left(e.Deadline))
	}
	defer stop()
	stopped := func() (Elevation, error) {
		stop()
		fmt.Fprintf(a.Stderr, "\nStopped waiting. Request %s is not cancelled: it stays pending until decided or %s; `warden elevations` shows it.\n",
			shortID(e.ID), a.clock(e.Deadline))
		return e, &ExitError{Code: 130}
	}
	lastLine := a.Now()
	delay := interval
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return stopped()
		case <-t.C:
		}
		var cur Elevation
		_, err := a.elevCall(ctx, false, http.MethodGet, "/api/elevations/"+url.PathEscape(e.ID), nil, &cur)
		if ctx.Err() != nil {
			return stopped()
		}
		var ae *APIError
		var ue *unreachableError
		switch {
		case err == nil:
		case errors.As(err, &ae) && ae.temporary(), errors.As(err, &ue):
			if a.Now().After(e.Deadline.Add(5 * time.Minute)) {
				stop()
				return e, fmt.Errorf("gave up waiting for request %s: %w; `warden elevations` shows it", shortID(e.ID), err)
			}
			delay = min(2*delay, elevPollMax)
			if ae != nil && ae.RetryAfter > delay {
				delay = min(ae.RetryAfter, 2*elevPollMax)
			}
			continue
		default:
			stop()
			return e, fmt.Errorf("while waiting for request %s: %w", shortID(e.ID), err)
		}
		delay = interval
		if cur.ID == "" {
			cur.ID = e.ID
		}
		e = cur
		if e.State != elevPending {
			stop()
			return e, nil
		}
		if !tty && a.Now().Sub(lastLine) >= time.Minute {
			lastLine = a.Now()
			fmt.Fprintf(a.Stderr, "Still waiting for the decision (%s left)…\n", a.left(e.Deadline))
		}
	}
}

// endElevation ends the elevation id (a prefix will do), or the only
// active one.
func (a *App) endElevation(ctx context.Context, id string, f elevateFlags) error {
	interactive := a.interactive()
	var l elevationList
	err := a.withStepUp(ctx, f.noBrowser, func() (err error) {
		l, _, err = a.elevList(ctx, interactive)
		return err
	})
	if err != nil {
		return err
	}
	labels := eligibleLabels(l.Eligible)
	now := a.Now()
	var target Elevation
	if id != "" {
		var found []Elevation
		for _, e := range l.Elevations {
			if strings.HasPrefix(e.ID, id) {
				found = append(found, e)
			}
		}
		switch {
		case len(found) == 1:
			target = found[0]
		case len(found) > 1:
			return fmt.Errorf("%s matches %d of your requests: give more of the ID", id, len(found))
		case len(id) == 32:
			target = Elevation{ID: id}
		default:
			return fmt.Errorf("none of your requests has the ID %s: `warden elevations` lists them", id)
		}
	} else {
		var active []Elevation
		for _, e := range l.Elevations {
			if e.State == elevApproved && e.EndsAt.After(now) {
				active = append(active, e)
			}
		}
		switch len(active) {
		case 0:
			return errors.New("you have no active elevation to end")
		case 1:
			target = active[0]
		default:
			fmt.Fprintln(a.Stderr, "Active elevations:")
			tw := tabwriter.NewWriter(a.Stderr, 0, 4, 2, ' ', 0)
			for _, e := range active {
				fmt.Fprintf(tw, "  %s\t%s\tuntil %s\n", shortID(e.ID), labelsOf(labels, e.Roles), a.clock(e.EndsAt))
			}
			_ = tw.Flush()
			return fmt.Errorf("%d elevations are active: give the ID of the one to end (warden elevate --end ID)", len(active))
		}
	}
	var ended Elevation
	err = a.withStepUp(ctx, f.noBrowser, func() error {
		_, err := a.elevCall(ctx, interactive, http.MethodPost, "/api/elevations/"+url.PathEscape(target.ID)+"/end", struct{}{}, &ended)
		return err
	})
	if err != nil {
		return err
	}
	if ended.ID == "" {
		ended = target
	}
	roles := ended.Roles
	if len(roles) == 0 {
		roles = target.Roles
	}
	// Credentials cached for the roles would outlive the elevation here.
	for _, arn := range roles {
		for _, via := range []string{ViaSAML, ViaWebIdentity} {
			_ = os.Remove(a.credsPath(credsKey(via, arn)))
		}
	}
	_ = os.Remove(a.rolesPath())
	fmt.Fprintf(a.Stderr, "Ended elevation %s (%s) and removed its cached credentials.", shortID(target.ID), labelsOf(labels, roles))
	if !target.EndsAt.IsZero() {
		fmt.Fprintf(a.Stderr, " AWS sessions already issued for it last until they expire (%s at the latest).", a.clock(target.EndsAt))
	}
	fmt.Fprintln(a.Stderr)
	return a.printElevationJSON(f.asJSON, ended)
}

func elevationsCmd(a *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "elevations",
		Short: "List your elevation requests: pending, active (time left) and past",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, raw, err := a.elevList(cmd.Context(), a.interactive())
			if err != nil {
				return err
			}
			if asJSON {
				var b bytes.Buffer
				if json.Indent(&b, raw, "", "  ") != nil {
					b.Reset()
					b.Write(raw)
				}
				b.WriteByte('\n')
				_, err := a.Stdout.Write(b.Bytes())
				return err
			}
			return a.printElevations(l)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the IdP's JSON answer (eligible roles and requests)")
	return cmd
}

// elevRow is one line of `warden elevations`.
type elevRow struct {
	group                         int // 0 pending, 1 active, 2 scheduled, 3 past
	id, state, roles, dur, reason string
	detail                        string
}

func (a *App) printElevations(l elevationList) error {
	if len(l.Elevations) == 0 {
		if len(l.Eligible) == 0 {
			fmt.Fprintln(a.Stderr, "You have no elevation requests, and no role is eligible for you.")
		} else {
			fmt.Fprintln(a.Stderr, "You have no elevation requests; `warden roles` lists the roles you may request.")
		}
		return nil
	}
	labels := eligibleLabels(l.Eligible)
	now := a.Now()
	var rows []elevRow
	for _, e := range l.Elevations {
		r := elevRow{id: shortID(e.ID), state: e.State, roles: labelsOf(labels, e.Roles),
			dur: fmtDur(time.Duration(e.Seconds) * time.Second), reason: e.Reason, group: 3}
		if utf8.RuneCountInString(r.reason) > 40 {
			r.reason = string([]rune(r.reason)[:39]) + "…"
		}
		if r.reason == "" {
			r.reason = "-"
		}
		r.reason = oneLine(r.reason)
		by := func(who string, at time.Time) string {
			s := "by " + orUnknown(who)
			if !at.IsZero() {
				s += " at " + a.clock(at)
			}
			return s
		}
		switch e.State {
		case elevPending:
			r.group = 0
			r.detail = fmt.Sprintf("decide by %s (%s left)", a.clock(e.Deadline), a.left(e.Deadline))
			if !e.StartAt.IsZero() {
				r.detail += ", planned from " + a.clock(e.StartAt)
			}
		case elevApproved:
			approved := ""
			if e.Decider != "" && e.Decider != e.Username {
				approved = ", approved by " + e.Decider
			}
			switch {
			case e.activeAt(now):
				r.group, r.state = 1, "active"
				r.detail = fmt.Sprintf("until %s (%s left)%s", a.clock(e.EndsAt), a.left(e.EndsAt), approved)
			case e.StartsAt.After(now):
				r.group, r.state = 2, "scheduled"
				r.detail = fmt.Sprintf("from %s until %s%s", a.clock(e.StartsAt), a.clock(e.EndsAt), approved)
			default:
				r.state = "over"
				r.detail = fmt.Sprintf("ran until %s%s", a.clock(e.EndsAt), approved)
			}
		case elevDenied:
			r.detail = by(e.Decider, e.DecidedAt)
			if e.Comment != "" {
				r.detail += ": " + oneLine(e.Comment)
			}
		case elevExpired:
			r.detail = "undecided, expired at " + a.clock(e.Deadline)
		case elevEnded:
			r.detail = "early " + by(e.EndedBy, e.EndedAt)
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(x, y elevRow) int { return x.group - y.group })
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tROLES\tFOR\tREASON\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.id, r.state, r.roles, r.dur, r.reason, r.detail)
	}
	return tw.Flush()
}

// printEligible is the eligible part of `warden roles`.
func (a *App) printEligible(w io.Writer, eligible []EligibleRole) error {
	fmt.Fprintln(w, "\nELIGIBLE (warden elevate --role ACCOUNT/ROLE --for 1h --reason ...)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT NAME\tACCOUNT ID\tROLE\tMAX\tAPPROVAL\tREASON\tSTATUS")
	for _, r := range eligible {
		name := r.AccountName
		if name == "" {
			name = "-"
		}
		maxS := "-"
		if r.MaxSeconds > 0 {
			maxS = fmtDur(time.Duration(r.MaxSeconds) * time.Second)
		}
		approval := "self-service"
		if len(r.Approvers) > 0 {
			approval = r.Approvers.String()
		}
		reason := "-"
		switch {
		case r.ReasonPattern != "":
			reason = r.ReasonPattern
		case r.RequireReason:
			reason = "required"
		}
		status := "-"
		if a.activeNow(r.Active) {
			status = "active"
			if !r.Active.EndsAt.IsZero() {
				status += " until " + a.clock(r.Active.EndsAt)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, r.AccountID, r.RoleName, maxS, approval, reason, status)
	}
	return tw.Flush()
}

// shortID is the first 8 characters of a request ID (`--end` takes a
// prefix).
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// clock prints t in local time: 15:04 today, Jan 2 15:04 this year, else
// with the year.
func (a *App) clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	now := a.Now().Local()
	t = t.Local()
	switch {
	case t.Year() == now.Year() && t.YearDay() == now.YearDay():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// left is the time from now until t, to the minute ("42m", "1h5m", "<1m").
func (a *App) left(t time.Time) string {
	d := t.Sub(a.Now())
	if d < time.Minute {
		if d <= 0 {
			return "none"
		}
		return "<1m"
	}
	return humanDuration(d.Truncate(time.Minute))
}
