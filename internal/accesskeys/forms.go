package accesskeys

import (
	"context"
	"strings"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
)

// SignerFunc adapts a function to Signer.
type SignerFunc func(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (string, error)

// STSResponse implements Signer.
func (f SignerFunc) STSResponse(ctx context.Context, user identity.User, authn identity.Authn, grant rolemap.Grant, res rolemap.Result) (string, error) {
	return f(ctx, user, authn, grant, res)
}

// Form is one way to use the keys: a label, a hint and the text to copy.
type Form struct {
	ID, Label, Hint, Text string
}

// Forms are k as environment variables (bash/zsh, fish, PowerShell), as a
// section of the AWS credentials file, and the credential_process profile
// that has the CLI fetch fresh ones instead (no keys in it).
func (k Keys) Forms() []Form {
	vars := [][2]string{{"AWS_ACCESS_KEY_ID", k.AccessKeyID}, {"AWS_SECRET_ACCESS_KEY", k.SecretAccessKey},
		{"AWS_SESSION_TOKEN", k.SessionToken}}
	lines := func(f func(name, value string) string) string {
		var b strings.Builder
		for _, v := range vars {
			b.WriteString(f(v[0], v[1]))
			b.WriteByte('\n')
		}
		return b.String()
	}
	profile := ProfileName(k.Grant)
	return []Form{
		{ID: "bash", Label: "bash / zsh", Hint: "Paste into your shell.",
			Text: lines(func(n, v string) string { return "export " + n + "=" + shellQuote(v) })},
		{ID: "fish", Label: "fish", Hint: "Paste into fish.",
			Text: lines(func(n, v string) string { return "set -gx " + n + " " + shellQuote(v) })},
		{ID: "powershell", Label: "PowerShell", Hint: "Paste into PowerShell.",
			Text: lines(func(n, v string) string { return "$Env:" + n + " = " + psQuote(v) })},
		{ID: "credentials", Label: "Credentials file", Hint: "Add to ~/.aws/credentials, then use --profile " + profile + ".",
			Text: "[" + profile + "]\naws_access_key_id = " + k.AccessKeyID + "\naws_secret_access_key = " + k.SecretAccessKey +
				"\naws_session_token = " + k.SessionToken + "\n"},
		{ID: "credential_process", Label: "Profile with the warden CLI", Hint: "Add to ~/.aws/config (or run warden profile add): the CLI then fetches fresh keys whenever they run out, so nothing here expires.",
			Text: ProcessProfile(k.Grant, k.Region)},
	}
}

// ProfileName is the profile name the forms use for grant, as `warden
// profile add` names it by default: account name (or ID), a dash, the
// role name.
func ProfileName(grant rolemap.Grant) string {
	acct := grant.AccountName
	if acct == "" {
		acct = grant.AccountID
	}
	name := acct + "-" + grant.RoleName
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '[' || r == ']' || r < 0x20 {
			return '_'
		}
		return r
	}, name)
}

// ProcessProfile is the ~/.aws/config section of a credential_process
// profile for grant (`warden profile add --role ARN` writes the same).
func ProcessProfile(grant rolemap.Grant, region string) string {
	return "[profile " + ProfileName(grant) + "]\ncredential_process = warden credential-process --role " + grant.RoleARN +
		"\nregion = " + region + "\n"
}

// shellQuote quotes s for POSIX shells and fish: single quotes, with a
// single quote in s closed, escaped and reopened. (fish reads '\” the
// same way; credentials never hold one.)
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// psQuote quotes s for PowerShell: single quotes, doubled inside.
func psQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
