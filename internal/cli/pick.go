package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/wardenidp/warden/internal/awsfed"
)

// resolveRole turns --role into a Role: a role ARN is taken as is (no
// network, so credential_process with cached credentials stays offline);
// "account-id/role" and "account-name/role" are looked up in the user's
// roles; an empty spec opens the picker on a terminal.
func (a *App) resolveRole(ctx context.Context, spec string, interactive bool) (Role, error) {
	if strings.HasPrefix(spec, "arn:") {
		arn, err := awsfed.ParseRoleARN(spec)
		if err != nil {
			return Role{}, fmt.Errorf("--role: %w", err)
		}
		return Role{RoleARN: spec, AccountID: arn.Account, RoleName: arn.Name, Partition: arn.Partition}, nil
	}
	if spec == "" && !interactive {
		return Role{}, errors.New("--role is required when not on a terminal (an ARN, account-id/role or account-name/role)")
	}
	roles, err := a.Roles(ctx, interactive)
	if err != nil {
		return Role{}, err
	}
	if spec == "" {
		if len(roles) == 0 {
			return Role{}, errors.New("you hold no AWS roles")
		}
		return a.pickRole(roles)
	}
	account, name, ok := strings.Cut(spec, "/")
	if !ok || account == "" || name == "" {
		return Role{}, fmt.Errorf("--role %q: want a role ARN, account-id/role or account-name/role", spec)
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
			return r, err
		}
		return Role{}, fmt.Errorf("you do not hold role %s; `warden roles` lists yours", spec)
	case 1:
		return found[0], nil
	}
	return Role{}, fmt.Errorf("--role %s matches %d roles (%s, …): give the role ARN", spec, len(found), found[0].RoleARN)
}

func roleLabel(r Role) string {
	acct := r.AccountID
	if r.AccountName != "" {
		acct = r.AccountName + " (" + r.AccountID + ")"
	}
	return acct + "  " + r.RoleName
}

// filterRoles keeps the roles whose label holds the characters of q in
// order (case-insensitive), a simple fuzzy match.
func filterRoles(roles []Role, q string) []Role {
	q = strings.ToLower(q)
	var out []Role
	for _, r := range roles {
		s, ok := strings.ToLower(roleLabel(r)), true
		for _, c := range q {
			i := strings.IndexRune(s, c)
			if i < 0 {
				ok = false
				break
			}
			s = s[i+len(string(c)):]
		}
		if ok {
			out = append(out, r)
		}
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
		shown := filterRoles(roles, query)
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
