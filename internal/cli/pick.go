package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/wardenidp/warden/internal/awsfed"
)

// resolveRole turns --role into a Role: a role ARN is taken as is (no
// network, so credential_process with cached credentials stays offline);
// "account-id/role" and "account-name/role" are looked up in the user's
// roles; an empty spec opens the picker on a terminal. listed reports
// that the role came from the roles listing (an ARN's does not).
func (a *App) resolveRole(ctx context.Context, spec string, interactive bool) (role Role, listed bool, err error) {
	if strings.HasPrefix(spec, "arn:") {
		arn, err := awsfed.ParseRoleARN(spec)
		if err != nil {
			return Role{}, false, fmt.Errorf("--role: %w", err)
		}
		return Role{RoleARN: spec, AccountID: arn.Account, RoleName: arn.Name, Partition: arn.Partition}, false, nil
	}
	if spec == "" && !interactive {
		return Role{}, false, errors.New("--role is required when not on a terminal (an ARN, account-id/role or account-name/role)")
	}
	account, name, ok := strings.Cut(spec, "/")
	if spec != "" && (!ok || account == "" || name == "") {
		return Role{}, false, fmt.Errorf("--role %q: want a role ARN, account-id/role or account-name/role", spec)
	}
	roles, err := a.Roles(ctx, interactive)
	if err != nil {
		return Role{}, false, err
	}
	if spec == "" {
		if len(roles) == 0 {
			return Role{}, false, errors.New("you hold no AWS roles")
		}
		r, err := a.pickRole(roles)
		return r, err == nil, err
	}
	var found []Role
	for _, r := range roles {
		if (r.AccountID == account || strings.EqualFold(r.AccountName, account)) && r.RoleName == name {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		// Not standing: an eligible role (active now, or to request).
		if r, ok, err := a.eligibleFallback(ctx, spec); ok {
			return r, false, err
		}
		if near := didYouMean(spec, roles); len(near) > 0 {
			return Role{}, false, fmt.Errorf("you do not hold role %s; did you mean %s?", spec, strings.Join(near, " or "))
		}
		return Role{}, false, fmt.Errorf("you do not hold role %s; `warden roles` lists yours", spec)
	case 1:
		return found[0], true, nil
	}
	return Role{}, false, fmt.Errorf("--role %s matches %d roles (%s, …): give the role ARN", spec, len(found), found[0].RoleARN)
}

// didYouMean names the roles that spec ("account/role") was likely meant
// to be: those whose "account-name/role" or "account-id/role" is within
// an edit distance of 2 of it (case-insensitive; 1 for specs up to 6
// characters), or whose role name is that close in the account named.
// At most three, closest first (ties in the listing's order).
func didYouMean(spec string, roles []Role) []string {
	account, name, _ := strings.Cut(strings.ToLower(spec), "/")
	limit := 2
	if len(spec) <= 6 {
		limit = 1
	}
	type cand struct {
		label string
		dist  int
	}
	var cs []cand
	seen := map[string]bool{}
	for _, r := range roles {
		best := limit + 1
		for _, acct := range []string{strings.ToLower(r.AccountName), r.AccountID} {
			if acct == "" {
				continue
			}
			best = min(best, levenshtein(account+"/"+name, acct+"/"+strings.ToLower(r.RoleName)))
			if acct == account {
				best = min(best, levenshtein(name, strings.ToLower(r.RoleName)))
			}
		}
		label := roleSpec(r)
		if best <= limit && !seen[label] {
			seen[label] = true
			cs = append(cs, cand{label, best})
		}
	}
	slices.SortStableFunc(cs, func(x, y cand) int { return x.dist - y.dist })
	out := make([]string, 0, 3)
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].label)
	}
	return out
}

func roleLabel(r Role) string {
	acct := r.AccountID
	if r.AccountName != "" {
		acct = r.AccountName + " (" + r.AccountID + ")"
	}
	return acct + "  " + r.RoleName
}

// Match classes of the picker, best first.
const (
	matchWordStarts = iota // each letter run starts a word: "pow" PowerUser, "devro" dev ReadOnly
	matchSubstring         // a contiguous piece: "user" in PowerUser
	matchScattered         // the letters in order: "pvo" in prod ViewOnly
	noMatch
)

// labelWords splits a role's label into words, lowercased: at anything
// but letters and digits, between a lower-case letter and an upper-case
// one (ReadOnly: read, only), and between letters and digits.
func labelWords(s string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, c := range s {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case len(cur) > 0 && (unicode.IsUpper(c) && unicode.IsLower(prev) || unicode.IsDigit(c) != unicode.IsDigit(prev)):
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
		prev = c
	}
	flush()
	return words
}

// wordStarts reports whether q (lowercase) is a concatenation of
// prefixes of words, taken in order from words[from:] ("stpow": "st" of
// staging, "pow" of power).
func wordStarts(q string, words []string, from int) bool {
	if q == "" {
		return true
	}
	for j := from; j < len(words); j++ {
		w := words[j]
		for k := min(len(q), len(w)); k >= 1; k-- {
			if q[:k] == w[:k] && wordStarts(q[k:], words, j+1) {
				return true
			}
		}
	}
	return false
}

// matchClass is how well the query term q (lowercase, no spaces) matches
// the label: word starts, substring, scattered letters, or not at all.
func matchClass(q, label string, words []string) int {
	low := strings.ToLower(label)
	switch {
	case wordStarts(q, words, 0):
		return matchWordStarts
	case strings.Contains(low, q):
		return matchSubstring
	}
	s := low
	for _, c := range q {
		i := strings.IndexRune(s, c)
		if i < 0 {
			return noMatch
		}
		s = s[i+utf8.RuneLen(c):]
	}
	return matchScattered
}

// rankRoles keeps the roles whose label matches every space-separated
// term of q (case-insensitive), ranked fzf-like by the worst class among
// the terms: word starts and prefixes first, then contiguous substrings,
// then scattered letters; ties keep the listing's order.
func rankRoles(roles []Role, q string) []Role {
	terms := strings.Fields(strings.ToLower(q))
	type ranked struct {
		r     Role
		class int
	}
	var rs []ranked
	for _, r := range roles {
		label := roleLabel(r)
		words := labelWords(label)
		class := matchWordStarts
		for _, t := range terms {
			class = max(class, matchClass(t, label, words))
		}
		if class != noMatch {
			rs = append(rs, ranked{r, class})
		}
	}
	slices.SortStableFunc(rs, func(x, y ranked) int { return x.class - y.class })
	out := make([]Role, len(rs))
	for i, x := range rs {
		out[i] = x.r
	}
	return out
}

// pickRole shows a filter-as-you-type list on the terminal (stdin in raw
// mode, drawn on stderr): type to filter, arrows to move, Enter to choose,
// Esc or Ctrl-C to cancel.
func (a *App) pickRole(roles []Role) (Role, error) {
	in, ok := a.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return Role{}, errors.New("--role is required when not on a terminal")
	}
	old, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return Role{}, fmt.Errorf("picker: %w", err)
	}
	defer term.Restore(int(in.Fd()), old)
	return runPicker(in, a.Stderr, roles)
}

// runPicker is the picker's loop over a raw byte stream; it is separate
// from the terminal so tests can drive it.
func runPicker(in io.Reader, out io.Writer, roles []Role) (Role, error) {
	const maxShown = 10
	query, sel, drawn := "", 0, 0
	buf := make([]byte, 16)
	for {
		shown := rankRoles(roles, query)
		if sel >= len(shown) {
			sel = max(len(shown)-1, 0)
		}
		// Redraw: move up over the last drawing and clear it.
		var b strings.Builder
		if drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", drawn)
		}
		b.WriteString("\r\x1b[J")
		fmt.Fprintf(&b, "Role (type to filter, ↑/↓, Enter): %s\r\n", query)
		lines := 1
		for i, r := range shown {
			if i == maxShown {
				fmt.Fprintf(&b, "  … %d more\r\n", len(shown)-maxShown)
				lines++
				break
			}
			mark := "  "
			if i == sel {
				mark = "> "
			}
			b.WriteString(mark + roleLabel(r) + "\r\n")
			lines++
		}
		drawn = lines
		io.WriteString(out, b.String())
		n, err := in.Read(buf)
		if err != nil {
			return Role{}, fmt.Errorf("picker: %w", err)
		}
		k := string(buf[:n])
		switch {
		case k == "\r" || k == "\n":
			if len(shown) == 0 {
				continue
			}
			return shown[sel], nil
		case k == "\x03" || k == "\x1b" || k == "\x04":
			return Role{}, errors.New("no role picked")
		case k == "\x1b[A" || k == "\x10":
			if sel > 0 {
				sel--
			}
		case k == "\x1b[B" || k == "\x0e":
			if sel < min(len(shown), maxShown)-1 {
				sel++
			}
		case k == "\x7f" || k == "\b":
			if query != "" {
				rs := []rune(query)
				query = string(rs[:len(rs)-1])
			}
		case strings.HasPrefix(k, "\x1b"):
		default:
			for _, c := range k {
				if c >= 0x20 && c != 0x7f {
					query += string(c)
				}
			}
			sel = 0
		}
	}
}
