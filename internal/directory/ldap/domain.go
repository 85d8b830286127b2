package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// What Warden knows about the Active Directory domain, for the ways a user
// may type a login name there: sAMAccountName (bob), userPrincipalName
// (bob@example.test) and the down-level logon name DOMAIN\bob (MS-ADTS
// 3.1.1.3.1.2.4 and [MS-DTYP] 2.2.37's "NetBIOS domain name\user name").

// domainRetry is how long a failed or empty domain discovery is remembered
// before it is tried again.
const domainRetry = 5 * time.Minute

// domainOutageRetry: after a discovery that no server answered, callers get
// that error for this long without another try, so that they do not queue
// up behind the lock, one timeout each, during an outage.
const domainOutageRetry = 5 * time.Second

// domainInfo is what the directory says about its domain.
type domainInfo struct {
	netbios  string   // nETBIOSName of the domain's crossRef ("EXAMPLE")
	suffixes []string // dnsRoot of the crossRef and uPNSuffixes of CN=Partitions, lowercased
}

// domainCache holds the discovered domainInfo. Discovery runs once; a
// discovery that found nothing (no crossRef, no right to read it) is tried
// again after domainRetry, one that failed because no server answered at
// the next sign-in that needs it.
type domainCache struct {
	mu       sync.Mutex
	done     bool
	info     domainInfo
	retryAt  time.Time
	outage   error // the last discovery's ErrDirectoryUnavailable, until outageTo
	outageTo time.Time
}

// domain returns the discovered domain information (Active Directory only).
// The error wraps identity.ErrDirectoryUnavailable when no server answered.
func (d *Directory) domain(ctx context.Context) (domainInfo, error) {
	dc := &d.dom
	dc.mu.Lock()
	defer dc.mu.Unlock()
	now := d.now()
	if dc.done || now.Before(dc.retryAt) {
		return dc.info, nil
	}
	if dc.outage != nil && now.Before(dc.outageTo) {
		return domainInfo{}, dc.outage
	}
	info, err := d.discoverDomain(ctx)
	switch {
	case errors.Is(err, identity.ErrDirectoryUnavailable):
		if ctx.Err() == nil { // the caller's own deadline is not an outage
			dc.outage, dc.outageTo = err, d.now().Add(domainOutageRetry)
		}
		return domainInfo{}, err
	case err != nil:
		d.log.WarnContext(ctx, "ldap: cannot read the domain's NetBIOS name; DOMAIN\\user sign-ins work only with directory.netbios_domain set",
			"retry_in", domainRetry.String(), "error", err.Error())
		dc.retryAt = now.Add(domainRetry)
		return domainInfo{}, nil
	}
	dc.info, dc.done, dc.outage = info, true, nil
	d.log.InfoContext(ctx, "ldap: domain discovered", "netbios_domain", info.netbios, "upn_suffixes", strings.Join(info.suffixes, ","))
	return info, nil
}

// discoverDomain reads the configuration naming context from the root DSE,
// then, under CN=Partitions of it, the crossRef whose nCName is the domain
// of BaseDN (nETBIOSName, dnsRoot) and the partitions container itself
// (uPNSuffixes, the extra UPN suffixes of the forest). MS-ADTS 6.1.1.2.1.1.
//
// The error wraps identity.ErrDirectoryUnavailable when no server answered;
// any other error is the directory's answer that it has no such domain
// information (or will not show it to the service account).
func (d *Directory) discoverDomain(ctx context.Context) (domainInfo, error) {
	var (
		info     domainInfo
		answered error // the directory answered, without the information
	)
	// refused reports whether err is a definitive LDAP answer (the entry is
	// not there, not visible, elsewhere): not a server failure.
	refused := func(err error) bool {
		for _, code := range []uint16{goldap.LDAPResultNoSuchObject, goldap.LDAPResultInsufficientAccessRights,
			goldap.LDAPResultReferral, goldap.LDAPResultUnwillingToPerform} {
			if goldap.IsErrorWithCode(err, code) {
				return true
			}
		}
		return false
	}
	err := d.do(ctx, kindSearch, "discover domain", func(c *conn, srv string) error {
		answered = nil
		start := time.Now()
		res, err := c.l.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"configurationNamingContext", "defaultNamingContext"}, nil))
		d.observe("search", srv, time.Since(start), err)
		if refused(err) {
			answered = fmt.Errorf("read the root DSE: %w", err)
			return nil
		}
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			answered = errors.New("no root DSE")
			return nil
		}
		root := res.Entries[0]
		configNC := root.GetEqualFoldAttributeValue("configurationNamingContext")
		if configNC == "" {
			answered = errors.New("the root DSE has no configurationNamingContext (not Active Directory?)")
			return nil
		}
		domainDN := domainDNOf(d.cfg.BaseDN)
		if domainDN == "" {
			domainDN = root.GetEqualFoldAttributeValue("defaultNamingContext")
		}
		// The DN is escaped here, once, where the filter is built.
		filter := "(|(objectClass=crossRefContainer)(&(objectClass=crossRef)(nCName=" + goldap.EscapeFilter(domainDN) + ")))"
		start = time.Now()
		res, err = c.l.Search(goldap.NewSearchRequest("CN=Partitions,"+configNC, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			0, 0, false, filter, []string{"objectClass", "nETBIOSName", "dnsRoot", "uPNSuffixes"}, nil))
		d.observe("search", srv, time.Since(start), err)
		if refused(err) {
			answered = fmt.Errorf("search CN=Partitions,%s: %w", configNC, err)
			return nil
		}
		if err != nil {
			return err
		}
		for _, e := range res.Entries {
			for _, s := range e.GetEqualFoldAttributeValues("uPNSuffixes") {
				info.suffixes = append(info.suffixes, strings.ToLower(s))
			}
			if nb := e.GetEqualFoldAttributeValue("nETBIOSName"); nb != "" {
				info.netbios = nb
				if r := e.GetEqualFoldAttributeValue("dnsRoot"); r != "" {
					info.suffixes = append(info.suffixes, strings.ToLower(r))
				}
			}
		}
		if info.netbios == "" {
			answered = fmt.Errorf("no crossRef with a nETBIOSName for %s under CN=Partitions,%s", domainDN, configNC)
		}
		return nil
	})
	if err != nil {
		return domainInfo{}, unavailable("discover domain", err)
	}
	if answered != nil {
		return domainInfo{}, answered
	}
	return info, nil
}

// domainDNOf returns the trailing DC= components of dn (the domain's naming
// context: DC=example,DC=test of OU=Staff,DC=example,DC=test), or "".
func domainDNOf(dn string) string {
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return ""
	}
	i := len(p.RDNs)
	for i > 0 && len(p.RDNs[i-1].Attributes) == 1 && strings.EqualFold(p.RDNs[i-1].Attributes[0].Type, "DC") {
		i--
	}
	if i == len(p.RDNs) {
		return ""
	}
	return (&goldap.DN{RDNs: p.RDNs[i:]}).String()
}

// dnsDomainOf is the DNS name that the DC= components of dn spell
// (DC=example,DC=test: example.test), lowercased, or "".
func dnsDomainOf(dn string) string {
	p, err := goldap.ParseDN(domainDNOf(dn))
	if err != nil || len(p.RDNs) == 0 {
		return ""
	}
	labels := make([]string, len(p.RDNs))
	for i, r := range p.RDNs {
		labels[i] = r.Attributes[0].Value
	}
	return strings.ToLower(strings.Join(labels, "."))
}

// netbiosDomain is the configured NetBIOS domain name, else the discovered
// one ("" when neither is known).
func (d *Directory) netbiosDomain(ctx context.Context) (string, error) {
	if d.cfg.NetBIOSDomain != "" {
		return d.cfg.NetBIOSDomain, nil
	}
	info, err := d.domain(ctx)
	return info.netbios, err
}

// loginName turns what the user typed into the name given to the user
// filter. In Active Directory, DOMAIN\user becomes user when DOMAIN is this
// domain's NetBIOS name (compared case-insensitively); for any other
// domain, or when the NetBIOS name is not known, ok is false and the caller
// treats the name as an unknown user. Other names, and every name on other
// directory types, are passed through unchanged. err wraps
// identity.ErrDirectoryUnavailable when the NetBIOS name had to be read and
// no server answered.
func (d *Directory) loginName(ctx context.Context, typed string) (name string, ok bool, err error) {
	if d.cfg.Type != TypeActiveDirectory {
		return typed, true, nil
	}
	dom, user, found := strings.Cut(typed, `\`)
	if !found {
		return typed, true, nil
	}
	if dom == "" || user == "" || strings.Contains(user, `\`) {
		return "", false, nil
	}
	nb, err := d.netbiosDomain(ctx)
	if err != nil {
		return "", false, err
	}
	if nb == "" || !strings.EqualFold(dom, nb) {
		return "", false, nil
	}
	return user, true, nil
}

// LimitKey turns a typed login name into the key that the sign-in limiter
// counts failures under, so that the ways of typing one account's name share
// one counter. In Active Directory, DOMAIN\frank (this domain's NetBIOS
// name), frank@example.test (a UPN suffix of the domain: the DNS name that
// base_dn spells, dnsRoot, uPNSuffixes) and FRANK all give "frank". A
// userPrincipalName whose part before the @ is not the sAMAccountName still
// has a counter of its own. Elsewhere the key is the typed name,
// lowercased; the limiter normalizes it further (store.NormalizeUsername).
//
// It costs no LDAP request, except that the first DOMAIN\ name or UPN of an
// unknown suffix reads the domain's names once (NetBIOSDomain not set). It
// never fails: when that read fails, the typed name is the key.
func (d *Directory) LimitKey(ctx context.Context, username string) string {
	name := username
	if d.cfg.Type == TypeActiveDirectory {
		if n, ok, err := d.loginName(ctx, username); err == nil && ok {
			name = n
		}
		if i := strings.LastIndexByte(name, '@'); i > 0 && !strings.Contains(name, `\`) && d.isUPNSuffix(ctx, name[i+1:]) {
			name = name[:i]
		}
	}
	return strings.ToLower(name)
}

// isUPNSuffix reports whether suffix is a UPN suffix of the domain.
func (d *Directory) isUPNSuffix(ctx context.Context, suffix string) bool {
	suffix = strings.ToLower(suffix)
	if suffix == "" {
		return false
	}
	if suffix == dnsDomainOf(d.cfg.BaseDN) {
		return true
	}
	info, err := d.domain(ctx)
	if err != nil {
		return false
	}
	for _, s := range info.suffixes {
		if s == suffix {
			return true
		}
	}
	return false
}
