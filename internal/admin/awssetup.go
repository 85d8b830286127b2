package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/web"
)

// AWSSetupAccounts turns a rule set into the input of awsfed.BuildSetup:
// every catalogued account with the roles that grant rules name (sorted,
// each once, with the largest max_session_seconds given to it). Roles of
// pattern rules cannot be listed: each pattern rule gives a note instead.
// `wardend aws setup` uses it too.
func AWSSetupAccounts(rs rolemap.RuleSet) ([]awsfed.SetupAccount, []string) {
	byID := map[string]*awsfed.SetupAccount{}
	seen := map[string]int{} // role ARN → index in its account's Roles
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
			if k, ok := seen[r.ARN]; ok {
				acct.Roles[k].SessionSeconds = max(acct.Roles[k].SessionSeconds, r.MaxSessionSeconds)
				continue
			}
			seen[r.ARN] = len(acct.Roles)
			acct.Roles = append(acct.Roles, awsfed.SetupRole{ARN: r.ARN, SessionSeconds: r.MaxSessionSeconds})
		}
	}
	for _, p := range rs.Patterns {
		notes = append(notes, fmt.Sprintf("pattern rule %s gives roles %s: give each such role the trust policy of a listed role "+
			"of its account, with its own role name and account in aws:RequestTag/%s and aws:RequestTag/%s",
			p.ID, p.RoleARN, awsfed.TagRole, awsfed.TagAccount))
	}
	sort.Strings(notes)
	return out, notes
}

// AWSSetup builds the setup of the rule set rs for the Warden described
// by o (the source identity option is taken from rs).
func AWSSetup(rs rolemap.RuleSet, o awsfed.SetupOptions) (awsfed.Setup, error) {
	accts, notes := AWSSetupAccounts(rs)
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
// STS audience. Until it is called the page says it is not configured.
func (a *Admin) SetAWSSetup(o awsfed.SetupOptions) { a.awsSetup.p.Store(&o) }

// awsSetupPage is the data of awssetup.html.
type awsSetupPage struct {
	page
	Configured bool
	Setup      awsfed.Setup
	Policies   map[string]string // role ARN → indented trust policy
}

// pageAWSSetup shows the IAM commands and trust policies for the current
// rules (the same as `wardend aws setup`); ?format=text or ?format=json
// downloads them.
func (a *Admin) pageAWSSetup(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := awsSetupPage{page: a.newPage("aws-setup"), Policies: map[string]string{}}
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
	switch c.Query("format") {
	case "":
	case "text":
		var b bytes.Buffer
		if p.Configured {
			_ = p.Setup.WriteText(&b)
		}
		c.Header("Content-Disposition", `attachment; filename="warden-aws-setup.sh"`)
		c.Data(http.StatusOK, "text/plain; charset=utf-8", b.Bytes())
		return
	case "json":
		c.Header("Content-Disposition", `attachment; filename="warden-aws-setup.json"`)
		c.JSON(http.StatusOK, p.Setup)
		return
	default:
		web.Fail(c, http.StatusBadRequest, "format must be text or json.", nil)
		return
	}
	web.Render(c, http.StatusOK, "awssetup.html", p)
}
