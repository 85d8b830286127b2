package ldap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// inChainRule is LDAP_MATCHING_RULE_IN_CHAIN (MS-ADTS 3.1.1.3.4.4.3): it
// walks the member links transitively on the server.
const inChainRule = "1.2.840.113556.1.4.1941"

// orBatch bounds how many member clauses one nested-group search ORs
// together.
const orBatch = 64

// groupSet collects groups, deduplicated by normalized DN.
type groupSet struct {
	byKey map[string]*identity.Group
	dns   *dnCache
	// named: a group's Name is the value of Attributes.GroupName, given to
	// add or setName (never the RDN value, which in Active Directory is not
	// unique in the domain); otherwise Name is the first RDN value.
	named bool
}

func newGroupSet(named bool, dns *dnCache) *groupSet {
	return &groupSet{byKey: map[string]*identity.Group{}, named: named, dns: dns}
}

// add records dn and reports whether it is new. A group seen as direct stays
// direct. name is the group's name attribute where it was read ("" when
// not); it is ignored when the set is not named.
func (s *groupSet) add(dn, name string, direct bool) bool {
	key, rdn := s.dns.norm(dn)
	if g, ok := s.byKey[key]; ok {
		g.Direct = g.Direct || direct
		if s.named && g.Name == "" {
			g.Name = name
		}
		return false
	}
	if !s.named {
		name = rdn
	}
	s.byKey[key] = &identity.Group{DN: dn, Name: name, Direct: direct}
	return true
}

// setName records the name attribute of a group already in the set.
func (s *groupSet) setName(dn, name string) {
	if !s.named || name == "" {
		return
	}
	key, _ := s.dns.norm(dn)
	if g, ok := s.byKey[key]; ok && g.Name == "" {
		g.Name = name
	}
}

// unnamed returns the DNs of the groups whose name has not been read yet.
func (s *groupSet) unnamed() []string {
	if !s.named {
		return nil
	}
	var out []string
	for _, g := range s.byKey {
		if g.Name == "" {
			out = append(out, g.DN)
		}
	}
	sort.Strings(out)
	return out
}

func (s *groupSet) has(dn string) bool {
	key, _ := s.dns.norm(dn)
	_, ok := s.byKey[key]
	return ok
}

// sorted returns the groups sorted by normalized DN.
func (s *groupSet) sorted() []identity.Group {
	if len(s.byKey) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s.byKey))
	for k := range s.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]identity.Group, len(keys))
	for i, k := range keys {
		out[i] = *s.byKey[k]
	}
	return out
}

// normDN returns a comparison key for dn (RFC 4514 parsed, attribute types
// and values lowercased, spaces and escapes normalized) and the value of its
// first RDN (the group's name). A DN that does not parse is compared as
// lowercased text.
func normDN(dn string) (key, name string) {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 || len(p.RDNs[0].Attributes) == 0 {
		return strings.ToLower(strings.TrimSpace(dn)), dn
	}
	return strings.ToLower(p.String()), p.RDNs[0].Attributes[0].Value
}

// dnCache memoizes normDN: the same group DNs come back at every sign-in
// and look-up, and parsing them was a third of a look-up's CPU. It holds at
// most maxDNCache DNs and starts over when full. A nil *dnCache does not
// cache.
type dnCache struct {
	mu sync.RWMutex
	m  map[string][2]string
}

const maxDNCache = 50_000

func newDNCache() *dnCache { return &dnCache{m: map[string][2]string{}} }

func (c *dnCache) norm(dn string) (key, name string) {
	if c == nil {
		return normDN(dn)
	}
	c.mu.RLock()
	v, ok := c.m[dn]
	c.mu.RUnlock()
	if ok {
		return v[0], v[1]
	}
	key, name = normDN(dn)
	c.mu.Lock()
	if len(c.m) >= maxDNCache {
		clear(c.m)
	}
	c.m[dn] = [2]string{key, name}
	c.mu.Unlock()
	return key, name
}

// groups resolves the user's groups according to Config.GroupSource.
//
// A group's Name is the value of Attributes.GroupName where that is set (the
// Active Directory preset: sAMAccountName, read with the groups at no extra
// round trip in in_chain and search, and with the nesting, cached alike, in
// memberof), else the value of the first RDN. A group whose name attribute
// cannot be read keeps an empty Name: only rules naming its DN match it.
func (d *Directory) groups(ctx context.Context, e *goldap.Entry, typed string) ([]identity.Group, error) {
	var (
		set *groupSet
		err error
	)
	switch d.cfg.GroupSource {
	case GroupSourceMemberOf:
		set, err = d.groupsMemberOf(ctx, e)
	case GroupSourceSearch:
		set, err = d.groupsSearch(ctx, e, typed)
	case GroupSourceInChain:
		set, err = d.groupsInChain(ctx, e)
	default:
		err = fmt.Errorf("unknown group_source %q", d.cfg.GroupSource)
	}
	if err != nil {
		return nil, unavailable("groups", err)
	}
	return set.sorted(), nil
}

// groupsMemberOf reads memberOf of the user (already in the entry), then of
// each group, level by level, up to MaxNesting levels above the direct
// groups. The OpenLDAP memberof overlay stores direct membership only, so
// this walk finds the nested groups; where memberOf is computed
// transitively (dynlist, AD) the walk finds nothing new and every group is
// marked direct (the server cannot tell). A group seen before is not read
// again, so membership cycles end.
func (d *Directory) groupsMemberOf(ctx context.Context, e *goldap.Entry) (*groupSet, error) {
	set := newGroupSet(d.cfg.Attributes.GroupName != "", d.dns)
	var frontier []string
	for _, g := range e.GetEqualFoldAttributeValues("memberOf") {
		if set.add(g, "", true) {
			frontier = append(frontier, g)
		}
	}
	if len(frontier) == 0 {
		return set, nil
	}
	err := d.do(ctx, kindSearch, "groups", func(c *conn, srv string) error {
		front := frontier
		for level := 0; level < d.cfg.MaxNesting && len(front) > 0; level++ {
			parents, err := d.readMemberOf(c, srv, front, set)
			if err != nil {
				return err
			}
			var next []string
			for _, p := range parents {
				if set.add(p, "", false) {
					next = append(next, p)
				}
			}
			front = next
		}
		// The groups past MaxNesting were not read: read their names.
		if rest := set.unnamed(); len(rest) > 0 {
			if _, err := d.readMemberOf(c, srv, rest, set); err != nil {
				return err
			}
		}
		return nil
	})
	return set, err
}

// maxCachedGroups bounds the group-parents cache; past it the cache starts
// over.
const maxCachedGroups = 10000

// groupCache remembers the memberOf values of groups (the nesting edges),
// and their names (Attributes.GroupName), for Config.GroupCacheTTL. Never
// users' memberships.
type groupCache struct {
	mu sync.RWMutex
	m  map[string]cachedParents
}

type cachedParents struct {
	parents []string
	name    string
	expires time.Time
}

func (gc *groupCache) get(key string, now time.Time) (cachedParents, bool) {
	gc.mu.RLock()
	defer gc.mu.RUnlock()
	p, ok := gc.m[key]
	if !ok || !now.Before(p.expires) {
		return cachedParents{}, false
	}
	return p, true
}

func (gc *groupCache) put(key string, p cachedParents) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.m == nil || len(gc.m) >= maxCachedGroups {
		gc.m = make(map[string]cachedParents)
	}
	gc.m[key] = p
}

// readMemberOf returns memberOf of each group, and records its name in set
// (Attributes.GroupName, read in the same search): from the cache when
// GroupCacheTTL > 0 and fresh, otherwise with a base search. The
// searches are sent together on the one connection (LDAP allows several
// outstanding requests, RFC 4511 section 4.1.1) and answered together, so a
// level of nesting costs one round trip, not one per group. A group that no
// longer exists is skipped.
func (d *Directory) readMemberOf(c *conn, srv string, groups []string, set *groupSet) ([]string, error) {
	results := make([][]string, len(groups))
	names := make([]string, len(groups))
	errs := make([]error, len(groups))
	ttl := d.cfg.GroupCacheTTL
	attrs := []string{"memberOf"}
	if a := d.cfg.Attributes.GroupName; a != "" {
		attrs = append(attrs, a)
	}
	var out []string
	var miss []int
	now := d.now()
	for i, g := range groups {
		if ttl > 0 {
			key, _ := d.dns.norm(g)
			if p, ok := d.groupCache.get(key, now); ok {
				out = append(out, p.parents...)
				set.setName(g, p.name)
				continue
			}
		}
		miss = append(miss, i)
	}
	if len(miss) == 0 {
		return out, nil
	}
	read := func(i int) {
		start := time.Now()
		req := goldap.NewSearchRequest(groups[i], goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			1, 0, false, "(objectClass=*)", attrs, nil)
		res, err := c.l.Search(req)
		d.observe("search", srv, time.Since(start), err)
		switch {
		case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		case err != nil:
			errs[i] = fmt.Errorf("read memberOf of %s: %w", groups[i], err)
		case len(res.Entries) == 1:
			results[i] = res.Entries[0].GetEqualFoldAttributeValues("memberOf")
			if a := d.cfg.Attributes.GroupName; a != "" {
				names[i] = res.Entries[0].GetEqualFoldAttributeValue(a)
			}
		}
		if errs[i] == nil && ttl > 0 {
			key, _ := d.dns.norm(groups[i])
			d.groupCache.put(key, cachedParents{parents: results[i], name: names[i], expires: now.Add(ttl)})
		}
	}
	if len(miss) == 1 {
		read(miss[0])
	} else {
		var wg sync.WaitGroup
		for _, i := range miss {
			wg.Go(func() { read(i) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, i := range miss {
		out = append(out, results[i]...)
		set.setName(groups[i], names[i])
	}
	return out, nil
}

// groupsSearch searches groups with GroupFilter: first by the user's DN (and
// name), then level by level by the DNs of the groups found, up to
// MaxNesting levels. Nesting is followed only when the template has {dn}
// and not {username} (a memberUid-style filter names users, not groups).
func (d *Directory) groupsSearch(ctx context.Context, e *goldap.Entry, typed string) (*groupSet, error) {
	set := newGroupSet(d.cfg.Attributes.GroupName != "", d.dns)
	tmpl := d.cfg.GroupFilter
	nest := strings.Contains(tmpl, "{dn}") && !strings.Contains(tmpl, "{username}")
	username := e.GetEqualFoldAttributeValue(d.cfg.Attributes.Username)
	if username == "" {
		username = typed
	}
	err := d.do(ctx, kindSearch, "groups", func(c *conn, srv string) error {
		// The user's DN and name are escaped here, once, where the filter is
		// built.
		first := expandTemplate(tmpl, goldap.EscapeFilter(username), goldap.EscapeFilter(e.DN))
		found, err := d.searchGroups(c, srv, first)
		if err != nil {
			return err
		}
		var front []string
		for _, g := range found {
			if set.add(g.dn, g.name, true) {
				front = append(front, g.dn)
			}
		}
		for level := 0; nest && level < d.cfg.MaxNesting && len(front) > 0; level++ {
			var next []string
			for start := 0; start < len(front); start += orBatch {
				batch := front[start:min(start+orBatch, len(front))]
				var f strings.Builder
				f.WriteString("(|")
				for _, g := range batch {
					f.WriteString(expandTemplate(tmpl, "", goldap.EscapeFilter(g)))
				}
				f.WriteString(")")
				found, err := d.searchGroups(c, srv, f.String())
				if err != nil {
					return err
				}
				for _, g := range found {
					if set.add(g.dn, g.name, false) {
						next = append(next, g.dn)
					}
				}
			}
			front = next
		}
		return nil
	})
	return set, err
}

// groupsInChain asks Active Directory for every group the user is in,
// transitively, in one search. A group is direct when it is in the user's
// own memberOf.
func (d *Directory) groupsInChain(ctx context.Context, e *goldap.Entry) (*groupSet, error) {
	direct := newGroupSet(false, d.dns)
	for _, g := range e.GetEqualFoldAttributeValues("memberOf") {
		direct.add(g, "", true)
	}
	set := newGroupSet(d.cfg.Attributes.GroupName != "", d.dns)
	err := d.do(ctx, kindSearch, "groups", func(c *conn, srv string) error {
		// The user's DN is escaped here, once, where the filter is built.
		found, err := d.searchGroups(c, srv, "(member:"+inChainRule+":="+goldap.EscapeFilter(e.DN)+")")
		if err != nil {
			return err
		}
		for _, g := range found {
			set.add(g.dn, g.name, direct.has(g.dn))
		}
		return nil
	})
	return set, err
}

// foundGroup is a group found by searchGroups: its DN and, where
// Attributes.GroupName is set, that attribute's value.
type foundGroup struct{ dn, name string }

// searchGroups runs a subtree search under GroupBaseDN and returns the
// groups found (with their name attribute, if configured), paged when
// PageSize > 0. Referrals are ignored.
func (d *Directory) searchGroups(c *conn, srv, filter string) ([]foundGroup, error) {
	attrs := []string{"1.1"}
	if a := d.cfg.Attributes.GroupName; a != "" {
		attrs = []string{a}
	}
	req := goldap.NewSearchRequest(d.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		0, 0, false, filter, attrs, nil)
	start := time.Now()
	var (
		res *goldap.SearchResult
		err error
	)
	if d.cfg.PageSize > 0 {
		res, err = c.l.SearchWithPaging(req, uint32(d.cfg.PageSize))
	} else {
		res, err = c.l.Search(req)
	}
	d.observe("search", srv, time.Since(start), err)
	if err != nil {
		return nil, fmt.Errorf("search groups: %w", err)
	}
	out := make([]foundGroup, 0, len(res.Entries))
	for _, e := range res.Entries {
		g := foundGroup{dn: e.DN}
		if a := d.cfg.Attributes.GroupName; a != "" {
			g.name = e.GetEqualFoldAttributeValue(a)
		}
		out = append(out, g)
	}
	return out, nil
}
