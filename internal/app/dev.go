package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/wardenidp/warden/internal/directory/embedded"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/mfa"
)

// DemoUser is a login of the dev directory, for the start banner.
type DemoUser struct {
	Username string
	Groups   []string // direct groups
}

type devDirectory struct {
	config ldap.Config
	users  []DemoUser
	close  func() error
}

// startDevDirectory serves the dev LDIF from an in-process LDAP server and
// returns the ldap.Config that reaches it: dev mode then uses the same LDAP
// client code as production.
func startDevDirectory(ctx context.Context, o *DevOptions, log *slog.Logger) (*devDirectory, error) {
	data := o.LDIF
	if o.LDIFPath != "" {
		b, err := os.ReadFile(o.LDIFPath)
		if err != nil {
			return nil, fmt.Errorf("app: dev directory: %w", err)
		}
		data = b
	}
	srv, err := embedded.StartLDIF(ctx, data, log)
	if err != nil {
		return nil, fmt.Errorf("app: dev directory: %w", err)
	}
	return &devDirectory{config: srv.Config(), users: demoUsers(data), close: srv.Close}, nil
}

// demoUsers lists the uid of every person in an LDIF and the groups that
// name them as members. It reads only what the banner needs.
func demoUsers(ldif []byte) []DemoUser {
	type entry struct {
		dn, uid string
		members []string
		cn      string
	}
	var entries []entry
	var cur entry
	flush := func() {
		if cur.dn != "" {
			entries = append(entries, cur)
		}
		cur = entry{}
	}
	sc := bufio.NewScanner(bytes.NewReader(ldif))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if b64, isB64 := strings.CutPrefix(v, ":"); isB64 { // RFC 2849 base64 value
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil {
				continue
			}
			v = string(raw)
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "dn":
			cur.dn = strings.ToLower(v)
		case "uid":
			cur.uid = v
		case "cn":
			if cur.cn == "" {
				cur.cn = v
			}
		case "member":
			cur.members = append(cur.members, strings.ToLower(v))
		}
	}
	flush()
	groupsOf := map[string][]string{}
	for _, e := range entries {
		for _, m := range e.members {
			groupsOf[m] = append(groupsOf[m], e.cn)
		}
	}
	var out []DemoUser
	for _, e := range entries {
		if e.uid == "" || strings.HasPrefix(e.uid, "svc-") {
			continue
		}
		g := groupsOf[e.dn]
		sort.Strings(g)
		out = append(out, DemoUser{Username: e.uid, Groups: g})
	}
	return out
}

func printDevBanner(w io.Writer, url string, users []DemoUser, mfaCfg mfa.Config) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nWarden is running in DEV MODE at %s\n\n", url)
	fmt.Fprintf(&b, "Demo logins (password: warden-dev, unless -dev-ldif says otherwise):\n")
	for _, u := range users {
		g := "no groups"
		if len(u.Groups) > 0 {
			g = strings.Join(u.Groups, ", ")
		}
		fmt.Fprintf(&b, "  %-10s %s\n", u.Username, g)
	}
	if mfaCfg.Required != "" && mfaCfg.Required != mfa.RequiredNone {
		fmt.Fprintf(&b, "\nSecond factor (required for: %s): alice has a TOTP authenticator with the secret\n  %s\nAdd it to any authenticator app, or get a code with: oathtool --totp -b %s\n",
			mfaWho(mfaCfg), DevTOTPSecret, DevTOTPSecret)
	}
	fmt.Fprintf(&b, "\nTime-boxed elevation: developers (bob) may request prod/AdministratorAccess for up to 1h with a reason like INC-1\n"+
		"(after setting up a second factor at /account/security); admins (alice) approve at /elevations.\n")
	fmt.Fprintf(&b, "\nThe directory and Redis live in this process and vanish when it stops. Ctrl-C to stop.\n\n")
	io.WriteString(w, b.String())
}

func mfaWho(c mfa.Config) string {
	if c.Required == mfa.RequiredAll {
		return "everyone"
	}
	return "members of " + strings.Join(c.Groups, ", ")
}
