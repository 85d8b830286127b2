package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// AWSSetupAccounts turns a rule set into the input of awsfed.BuildSetup:
// every catalogued account with the roles that grant rules name (sorted,
// each once, with the longest session given to it; o.SessionSeconds). Roles of
// pattern rules cannot be listed: each pattern rule gives a note instead,
// with the MFA condition of o when the rule requires MFA, and the accounts
// it may give roles in get it as a SetupPattern.
//
// A role's trust policy must let in everyone whom some rule gives it, so
// it requires MFA only when every grant rule naming it does, and accepts
// the methods any of them accepts (any, when one names none). When the
// rules disagree a note says that only Warden enforces the requirement. (A
// user's grant is the strictest of the rules that apply to that user; see
// rolemap.Grant.)
//
// The roles of workloads (enabled or not: a disabled one may come back)
// are listed too, with a session covering their max_session_seconds (AWS's
// one hour when unset). A workload has no second factor, so the trust
// policy of a role a workload gets never requires MFA; a note says so
// when a grant rule requires it for the role. Workloads get their roles
// through web identity only: without an OIDC issuer in o a note says that
// they cannot; a role that only workloads get has no SAML statement.
//
// `wardend aws setup` uses it through AWSSetup.
func AWSSetupAccounts(rs rolemap.RuleSet, o awsfed.SetupOptions) ([]awsfed.SetupAccount, []string) {
	type mfaSeen struct {
		all, some bool     // every / some rule naming the role requires MFA
		anyMethod bool     // some rule requiring MFA accepts any method
		methods   []string // union of the methods of the rules that name some
		with      []string // IDs of the rules requiring MFA
		without   []string // IDs of the rules not requiring it
	}
	byID := map[string]*awsfed.SetupAccount{}
	seen := map[string]int{} // role ARN → index in its account's Roles
	mfa := map[string]*mfaSeen{}
	out := make([]awsfed.SetupAccount, len(rs.Accounts))
	for k, a := range rs.Accounts {
		out[k] = awsfed.SetupAccount{ID: a.ID, Name: a.Name, Partition: a.PartitionID(), SAMLProvider: a.SAMLProvider}
		byID[a.ID] = &out[k]
	}
	var notes []string
	for _, g := range rs.Grants {
		for _, r := range g.Roles {
			arn, err := awsfed.ParseRoleARN(r.ARN)
			if err != nil {
				notes = append(notes, fmt.Sprintf("grant rule %s: %v", g.ID, err))
				continue
			}
			acct := byID[arn.Account]
			if acct == nil {
				notes = append(notes, fmt.Sprintf("grant rule %s: role %s is in no catalogued account", g.ID, r.ARN))
				continue
			}
			require, methods := r.MFA()
			m := mfa[r.ARN]
			if m == nil {
				m = &mfaSeen{all: true}
				mfa[r.ARN] = m
			}
			m.all, m.some = m.all && require, m.some || require
			if require {
				m.with = append(m.with, g.ID)
				m.anyMethod = m.anyMethod || len(methods) == 0
				m.methods = append(m.methods, methods...)
			} else {
				m.without = append(m.without, g.ID)
			}
			secs := o.SessionSeconds(r.MaxSessionSeconds)
			if k, ok := seen[r.ARN]; ok {
				acct.Roles[k].SessionSeconds = max(acct.Roles[k].SessionSeconds, secs)
				continue
			}
			seen[r.ARN] = len(acct.Roles)
			acct.Roles = append(acct.Roles, awsfed.SetupRole{ARN: r.ARN, SessionSeconds: secs})
		}
	}
	workloads := map[string][]string{} // role ARN → IDs of the workloads that get it
	for _, w := range rs.Workloads {
		for _, r := range w.Roles {
			arn, err := awsfed.ParseRoleARN(r.ARN)
			if err != nil {
				notes = append(notes, fmt.Sprintf("workload %s: %v", w.ID, err))
				continue
			}
			acct := byID[arn.Account]
			if acct == nil {
				notes = append(notes, fmt.Sprintf("workload %s: role %s is in no catalogued account", w.ID, r.ARN))
				continue
			}
			if !slices.Contains(workloads[r.ARN], w.ID) {
				workloads[r.ARN] = append(workloads[r.ARN], w.ID)
			}
			secs := r.MaxSessionSeconds
			if secs <= 0 {
				secs = 3600 // AWS's default DurationSeconds
			}
			if k, ok := seen[r.ARN]; ok {
				acct.Roles[k].SessionSeconds = max(acct.Roles[k].SessionSeconds, secs)
				continue
			}
			seen[r.ARN] = len(acct.Roles)
			acct.Roles = append(acct.Roles, awsfed.SetupRole{ARN: r.ARN, SessionSeconds: secs, WebIdentityOnly: true})
		}
	}
	if len(workloads) > 0 && o.Issuer == "" {
		notes = append(notes, "workloads get their roles through web identity (AssumeRoleWithWebIdentity), but no OIDC issuer is set "+
			"(oidc.issuer): the trust policies lack the web-identity statement, so AWS refuses the workloads")
	}
	for i := range out {
		for j := range out[i].Roles {
			r := &out[i].Roles[j]
			m, ws := mfa[r.ARN], workloads[r.ARN]
			switch {
			case m == nil || !m.some:
			case m.all && len(ws) == 0:
				r.RequireMFA = true
				if !m.anyMethod {
					r.MFAMethods = orderMethods(m.methods)
				}
			default:
				if len(m.without) > 0 {
					notes = append(notes, fmt.Sprintf("role %s requires MFA in %s but not in %s: its trust policy cannot require MFA "+
						"(AWS would refuse the members of the groups that get it without), so only Warden enforces it",
						r.ARN, ruleList("grant rule", m.with), ruleList("grant rule", m.without)))
				}
				if len(ws) > 0 {
					notes = append(notes, fmt.Sprintf("role %s requires MFA in %s, but %s also get%s it: its trust policy cannot require MFA "+
						"(a workload has no second factor, so AWS would refuse it), so only Warden enforces it for users",
						r.ARN, ruleList("grant rule", m.with), ruleList("workload", ws), map[bool]string{true: "s", false: ""}[len(ws) == 1]))
				}
			}
		}
	}
	for _, p := range rs.Patterns {
		require, methods := p.MFA()
		in := 0
		for i := range out {
			if patternMayName(p.RoleARN, out[i]) {
				in++
				out[i].Patterns = append(out[i].Patterns, awsfed.SetupPattern{RuleID: p.ID, RoleARN: p.RoleARN,
					SessionSeconds: o.SessionSeconds(p.MaxSessionSeconds), RequireMFA: require, MFAMethods: methods})
			}
		}
		note := fmt.Sprintf("pattern rule %s gives roles %s, which cannot be listed in advance: the downloads have a block "+
			"to fill in with their names (a shell function, a Terraform variable, CloudFormation metadata) that gives each "+
			"the trust policy with its own name in aws:RequestTag/%s", p.ID, p.RoleARN, awsfed.TagRole)
		if in == 0 {
			note += "; it names no catalogued account"
		}
		if require {
			values, _ := o.MFAValues(methods)
			if tag := o.MFATag(); tag != "" {
				note += fmt.Sprintf(`; the rule requires MFA, so add "aws:RequestTag/%s": ["%s"] to the StringEquals of both statements`+
					" (the downloads do)", tag, strings.Join(values, `", "`))
			} else {
				note += "; the rule requires MFA, but mfa.session_tag is \"-\": Warden sends no session tag saying how the user signed in, " +
					"so AWS cannot enforce the rule's MFA requirement (only Warden does)"
			}
		}
		notes = append(notes, note)
	}
	sort.Strings(notes)
	return out, notes
}

// patternMayName reports whether the role_arn template tmpl of a pattern
// rule may expand to a role of account a: its partition and account are
// a's, or a ${…} that may become them.
func patternMayName(tmpl string, a awsfed.SetupAccount) bool {
	f := strings.SplitN(tmpl, ":", 6)
	if len(f) != 6 {
		return false
	}
	part := a.Partition
	if part == "" {
		part = "aws"
	}
	return (f[1] == part || strings.Contains(f[1], "$")) && (f[4] == a.ID || strings.Contains(f[4], "$"))
}

// orderMethods returns the distinct methods of ms, strongest first.
func orderMethods(ms []string) []string {
	var out []string
	for _, m := range identity.SecondFactors {
		if slices.Contains(ms, m) {
			out = append(out, m)
		}
	}
	return out
}

// ruleList is "grant rule a" or "grant rules a, b".
func ruleList(what string, ids []string) string {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 1 {
		return what + " " + ids[0]
	}
	return what + "s " + strings.Join(ids, ", ")
}

// AWSSetup builds the setup of the rule set rs for the Warden described
// by o (the source identity option is taken from rs). o.MFAMethods nil
// means every second factor (mfa.methods' default).
func AWSSetup(rs rolemap.RuleSet, o awsfed.SetupOptions) (awsfed.Setup, error) {
	if o.MFAMethods == nil {
		o.MFAMethods = slices.Clone(identity.SecondFactors)
	}
	accts, notes := AWSSetupAccounts(rs, o)
	o.SourceIdentity = rs.Tags.SourceIdentity != ""
	s, err := awsfed.BuildSetup(accts, o)
	if err != nil {
		return awsfed.Setup{}, err
	}
	s.Notes = append(s.Notes, notes...)
	return s, nil
}

// awsSetupOptions holds what the AWS setup page needs to know of the
// server (SetAWSSetup).
type awsSetupOptions struct {
	p atomic.Pointer[awsfed.SetupOptions]
}

// SetAWSSetup tells the AWS setup page (/admin/aws-setup) Warden's SAML
// metadata URL, its SAML sign-in partition and region, its OIDC issuer and
// STS audience, and its MFA session tag and methods (mfa.session_tag and
// mfa.methods). Until it is called the page says it is not configured.
func (a *Admin) SetAWSSetup(o awsfed.SetupOptions) { a.awsSetup.p.Store(&o) }

// awsSetupPage is the data of awssetup.html.
type awsSetupPage struct {
	page
	Configured bool
	Setup      awsfed.Setup
	Policies   map[string]string // role ARN → indented trust policy
	// Eligible holds the eligible badge (and its title) of roles that
	// some grant rule names as eligible, by role ARN.
	Eligible map[string]*badge
	// Workloads names the workloads that get a role ("batch,
	// orders-worker"), by role ARN.
	Workloads map[string]string
	// Downloads are the files offered for all accounts.
	Downloads []awsDownload
}

// awsDownload is one format of the setup to download.
type awsDownload struct{ Format, Label, Hint string }

// awsDownloads are the formats the page offers, in its order.
var awsDownloads = []awsDownload{
	{"script", "Shell script", "run once per account with its credentials; safe to run again"},
	{"terraform", "Terraform", "one aliased provider per account"},
	{"cloudformation", "CloudFormation", "one template; each account creates only its own resources"},
	{"json", "JSON", "the data, for your own tooling"},
}

// badge is a label and its explanation (title attribute).
type badge struct{ Label, Title string }

// eligibleBadges returns the eligible badge of each role that a grant
// rule of rs names as eligible: that of the first such rule (by rule
// order), with a remark when other rules give the role standing, as then
// the members of their groups hold it outright.
func eligibleBadges(rs rolemap.RuleSet) map[string]*badge {
	out := map[string]*badge{}
	standing := map[string][]string{} // role ARN → IDs of the rules giving it standing
	for _, g := range rs.Grants {
		for _, r := range g.Roles {
			if !r.IsEligible() {
				standing[r.ARN] = append(standing[r.ARN], g.ID)
				continue
			}
			if _, ok := out[r.ARN]; !ok {
				out[r.ARN] = &badge{Label: eligibleLabel(r), Title: eligibleTitle(r)}
			}
		}
	}
	for arn, b := range out {
		if ids := standing[arn]; len(ids) > 0 {
			b.Label += " (standing in " + ruleList("grant rule", ids) + ")"
		}
	}
	return out
}

// pageAWSSetup shows the IAM setup for the current rules (the same as
// `wardend aws setup`); ?format=script, terraform, cloudformation or json
// downloads it, for one account with &account=ID.
func (a *Admin) pageAWSSetup(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := awsSetupPage{page: a.newPage("aws-setup"), Policies: map[string]string{}, Eligible: eligibleBadges(cur.rs), Downloads: awsDownloads,
		Workloads: map[string]string{}}
	for _, w := range cur.rs.Workloads {
		for _, r := range w.Roles {
			if s := p.Workloads[r.ARN]; s != "" {
				p.Workloads[r.ARN] = s + ", " + w.ID
			} else {
				p.Workloads[r.ARN] = w.ID
			}
		}
	}
	p.Current, p.Version = cur.version, cur.version.Version
	o := a.awsSetup.p.Load()
	if o != nil {
		p.Configured = true
		if p.Setup, err = AWSSetup(cur.rs, *o); err != nil {
			// Stored rules that passed Validate always build; say so if not.
			web.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
		for _, acct := range p.Setup.Accounts {
			for _, r := range acct.Roles {
				p.Policies[r.ARN] = r.TrustPolicy.JSON()
			}
		}
	}
	format, account := c.Query("format"), c.Query("account")
	if format == "" {
		if account != "" {
			web.Fail(c, http.StatusBadRequest, "account is for the downloads (with format).", nil)
			return
		}
		web.Render(c, http.StatusOK, "awssetup.html", p)
		return
	}
	if format == "text" { // the old name of script
		format = "script"
	}
	if !slices.ContainsFunc(awsDownloads, func(d awsDownload) bool { return d.Format == format }) {
		web.Fail(c, http.StatusBadRequest, "format must be script, terraform, cloudformation or json.", nil)
		return
	}
	if !p.Configured {
		web.Fail(c, http.StatusNotFound, "This server did not pass its SAML and OIDC settings: run wardend aws setup -config FILE instead.", nil)
		return
	}
	s := p.Setup
	name := "warden-aws-setup"
	if account != "" {
		if s, err = s.Only(account); err != nil {
			web.Fail(c, http.StatusBadRequest, "No account "+awsfed.Quote(account)+" in the catalogue.", nil)
			return
		}
		name += "-" + account
	}
	var b bytes.Buffer
	ctype := "text/plain; charset=utf-8"
	switch format {
	case "script":
		err, name = s.WriteScript(&b), name+".sh"
	case "terraform":
		err, name = s.WriteTerraform(&b), name+".tf"
	case "cloudformation":
		err, name, ctype = s.WriteCloudFormation(&b, awsfed.CloudFormationOptions{}), name+".cfn.json", "application/json; charset=utf-8"
	case "json":
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		err, name, ctype = enc.Encode(s), name+".json", "application/json; charset=utf-8"
	}
	if err != nil {
		web.Fail(c, http.StatusInternalServerError, "", err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, ctype, b.Bytes())
}
