package portal

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/web"
)

// The SAML post page (saml_post.html in the layout) answers every console
// click. Executing the template costs about as much as the rest of the
// click's work outside the signature: each action is a reflective call of
// an escaper. So the page is rendered once per header (the nav links
// differ between users) with a marker in place of every value, cut at the
// markers, and filled in per click with the values escaped as html/template
// would escape them. Values with characters whose escaping depends on more
// than that (see postText, postURL) go through the template.
// TestPostPageMatchesTemplate compares the two for many inputs.

// postField numbers the values of the page, and its marker is
// postMarker + the number: letters and digits only, which every escaper
// of html/template leaves as they are.
type postField int

const (
	pfUser postField = iota
	pfRole
	pfAccountName
	pfAccountID
	pfURL
	pfResponse
	pfRelay
	pfRequestID
	pfCount
)

const postMarker = "wArDeNpOsTmArK"

// postFrame is the page cut at its markers: parts[0], value of fields[0],
// parts[1], …, parts[len(fields)].
type postFrame struct {
	parts  []string
	fields []postField
}

// postFrames caches frames by header and RelayState presence; a few
// distinct navs exist (admins, others), so it stays small, and past
// maxPostFrames the template serves.
type postFrames struct {
	mu sync.RWMutex
	m  map[string]*postFrame
}

const maxPostFrames = 64

func postFrameKey(nav []web.NavLink, relay bool) string {
	var b strings.Builder
	for _, n := range nav {
		b.WriteString(n.Path)
		b.WriteByte(0)
		b.WriteString(n.Label)
		b.WriteByte(0)
	}
	if relay {
		b.WriteByte(1)
	}
	return b.String()
}

// postFrame returns the frame for nav and relay, rendering it on first
// use; nil when it cannot (the cache is full, or the template failed).
func (p *UI) postFrame(c *gin.Context, nav []web.NavLink, relay bool) *postFrame {
	key := postFrameKey(nav, relay)
	p.frames.mu.RLock()
	f, ok := p.frames.m[key]
	p.frames.mu.RUnlock()
	if ok {
		return f
	}
	m := func(f postField) string { return postMarker + strconv.Itoa(int(f)) + "Z" }
	page := consolePage{RoleName: m(pfRole), AccountName: m(pfAccountName), AccountID: m(pfAccountID),
		Post: ConsolePost{URL: m(pfURL), SAMLResponse: m(pfResponse)}}
	if relay {
		page.Post.RelayState = m(pfRelay)
	}
	var buf bytes.Buffer
	user := identity.User{Username: m(pfUser)}
	if err := web.ExecutePage(c, &buf, pagePost, &page, web.PageFrame{User: &user, Nav: nav, RequestID: m(pfRequestID), Card: true}); err != nil {
		return nil
	}
	f = cutFrame(buf.String())
	p.frames.mu.Lock()
	defer p.frames.mu.Unlock()
	if p.frames.m == nil {
		p.frames.m = map[string]*postFrame{}
	}
	if len(p.frames.m) >= maxPostFrames {
		return nil
	}
	p.frames.m[key] = f
	return f
}

// cutFrame cuts page at its markers.
func cutFrame(page string) *postFrame {
	f := &postFrame{}
	var cur strings.Builder
	for {
		i := strings.Index(page, postMarker)
		if i < 0 {
			cur.WriteString(page)
			f.parts = append(f.parts, cur.String())
			return f
		}
		rest := page[i+len(postMarker):]
		j := strings.IndexByte(rest, 'Z')
		n, err := strconv.Atoi(rest[:max(j, 0)])
		if j < 0 || err != nil || n < 0 || n >= int(pfCount) {
			// not one of ours: keep it as text
			cur.WriteString(page[:i+len(postMarker)])
			page = rest
			continue
		}
		cur.WriteString(page[:i])
		f.parts = append(f.parts, cur.String())
		cur.Reset()
		f.fields = append(f.fields, postField(n))
		page = rest[j+1:]
	}
}

// postText reports whether html/template writes v in HTML text as it is
// (its HTML escaper changes only NUL, quotes, &, +, < and >), and so does
// every other escaper the page applies to text: valid UTF-8 without those
// or control characters.
func postText(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20, c == 0x7f, c == '"', c == '\'', c == '&', c == '+', c == '<', c == '>':
			return false
		case c >= 0x80:
			return utf8.ValidString(v[i:])
		}
	}
	return true
}

// postURL reports whether html/template writes v in a URL attribute as it
// is: an https URL of letters, digits and - . _ ~ : / only (an AWS ACS).
func postURL(v string) bool {
	if !strings.HasPrefix(v, "https://") {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~:/", c) >= 0) {
			return false
		}
	}
	return true
}

// renderPost writes saml_post.html for page (a console click of user)
// from its frame, or through the template (web.RenderCard) when a value or
// the cache says so.
func (p *UI) renderPost(c *gin.Context, user identity.User, page *consolePage) {
	rid := web.RequestID(c.Request.Context())
	nav := web.Nav(c, user)
	vals := [pfCount]string{pfUser: user.Username, pfRole: page.RoleName, pfAccountName: page.AccountName,
		pfAccountID: page.AccountID, pfURL: page.Post.URL, pfRequestID: rid}
	var f *postFrame
	if rid != "" && postURL(page.Post.URL) && postText(user.Username) && postText(page.RoleName) &&
		postText(page.AccountName) && postText(page.AccountID) && postText(rid) {
		f = p.postFrame(c, nav, page.Post.RelayState != "")
	}
	if f == nil {
		web.RenderCard(c, http.StatusOK, pagePost, page)
		return
	}
	vals[pfResponse], vals[pfRelay] = web.AttrValue(page.Post.SAMLResponse), web.AttrValue(page.Post.RelayState)
	n := 0
	for _, part := range f.parts {
		n += len(part)
	}
	for _, fld := range f.fields {
		n += len(vals[fld])
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	buf.Grow(n)
	for k, fld := range f.fields {
		buf.WriteString(f.parts[k])
		buf.WriteString(vals[fld])
	}
	buf.WriteString(f.parts[len(f.parts)-1])
	c.Header("Content-Length", strconv.Itoa(buf.Len()))
	c.Data(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
