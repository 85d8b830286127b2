package web

import (
	"bytes"
	"html"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
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

func postFrameKey(nav []NavLink, relay bool) string {
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

// frame returns the frame for nav and relay, rendering it on first use;
// nil when it cannot (the cache is full, or the template failed).
func (s *Server) postFrame(nav []NavLink, relay bool) *postFrame {
	key := postFrameKey(nav, relay)
	s.frames.mu.RLock()
	f, ok := s.frames.m[key]
	s.frames.mu.RUnlock()
	if ok {
		return f
	}
	t, found := s.views.pages["saml_post.html"]
	if !found {
		return nil
	}
	m := func(f postField) string { return postMarker + strconv.Itoa(int(f)) + "Z" }
	page := consolePage{RoleName: m(pfRole), AccountName: m(pfAccountName), AccountID: m(pfAccountID),
		Post: ConsolePost{URL: m(pfURL), SAMLResponse: m(pfResponse)}}
	if relay {
		page.Post.RelayState = m(pfRelay)
	}
	var buf bytes.Buffer
	user := identity.User{Username: m(pfUser)}
	if err := t.ExecuteTemplate(&buf, "layout", view{User: &user, Nav: nav, Console: &page, RequestID: m(pfRequestID)}); err != nil {
		return nil
	}
	f = cutFrame(buf.String())
	s.frames.mu.Lock()
	defer s.frames.mu.Unlock()
	if s.frames.m == nil {
		s.frames.m = map[string]*postFrame{}
	}
	if len(s.frames.m) >= maxPostFrames {
		return nil
	}
	s.frames.m[key] = f
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

// attrValue is what valueAttr puts between the quotes of value="…".
func attrValue(v string) string {
	for i := 0; i < len(v); i++ {
		if !base64Char[v[i]] {
			return html.EscapeString(v)
		}
	}
	return v
}

// renderPost writes saml_post.html for v (render's view of a console
// click) from its frame, or through render when a value or the cache says
// so.
func (s *Server) renderPost(c *gin.Context, v view) {
	v.RequestID = state(c).id
	if v.User != nil && v.Nav == nil {
		v.Nav = s.nav(*v.User)
	}
	p := v.Console
	vals := [pfCount]string{pfRole: p.RoleName, pfAccountName: p.AccountName, pfAccountID: p.AccountID,
		pfURL: p.Post.URL, pfRequestID: v.RequestID}
	if v.User != nil {
		vals[pfUser] = v.User.Username
	}
	var f *postFrame
	if v.User != nil && v.RequestID != "" && postURL(p.Post.URL) &&
		postText(vals[pfUser]) && postText(p.RoleName) && postText(p.AccountName) && postText(p.AccountID) && postText(v.RequestID) {
		f = s.postFrame(v.Nav, p.Post.RelayState != "")
	}
	if f == nil {
		s.render(c, http.StatusOK, "saml_post.html", v)
		return
	}
	resp, relay := attrValue(p.Post.SAMLResponse), attrValue(p.Post.RelayState)
	vals[pfResponse], vals[pfRelay] = resp, relay
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
