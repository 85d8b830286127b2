package store

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

// The stored form of a Session, the value of its key.
//
// Wardens before this format stored json.Marshal(Session), which begins
// with '{'; decodeSession still reads it, so sessions written before an
// upgrade live on (and are rewritten in the compact form at their next
// refresh). Every new write is format 1 below: about a fifth of the JSON
// for a typical user, with nothing left out.
//
// Format 1: a byte 1, then, in this order (varint: encoding/binary's
// unsigned varint; zvarint: its signed, zig-zag one; string: a varint
// length and the bytes):
//
//	byte     flags (flag*)
//	byte     which times are set (bit i for time i, in the order below)
//	byte     which times are in UTC (same bits; the others decode in Local)
//	zvarint  for each time set, in this order: CreatedAt in Unix ms, then
//	         the distance from CreatedAt (0 when it is not set) in ms of
//	         LastSeen, ExpiresAt, CheckedAt, Authn.Time, Authn.FactorTime
//	ID       16 bytes (flagUUID: a canonical lower-case UUID) or a string
//	string   Username, DisplayName, Email
//	varint   number of DN parts, then each: varint parent<<4 | type
//	         (parent 0: none, else the number of an earlier part, from 1;
//	         type 0, or the number of an rdnTypes prefix of the text, from
//	         1) and string text (without that prefix)
//	varint   the user's DN (0: "", else the part it ends at, from 1)
//	varint   number of groups, then each: varint DN (as above), byte
//	         (groupDirect, groupNameIsRDN) and, without groupNameIsRDN,
//	         string Name
//	varint   number of attributes, then each (by name): string name,
//	         varint number of values, strings
//	ClientIP byte length and 4 or 16 bytes (flagIPBinary) or a string
//	string   UserAgent (flagUADict: with uaDict substitutions)
//	byte     Authn.Method (a methodCodes index, or codeOther and a string)
//	byte     Pending (likewise, pendingCodes)
//
// A DN is its comma-separated parts chained from the last one (the parts
// are not parsed, so any string comes back as it was): the DNs of one user
// mostly share their tails (",ou=groups,dc=example,dc=org"), stored once.
// A group's Name is mostly the value of its DN's first part (CN or
// sAMAccountName), then not stored again. The key is not stored: it is the
// key's name.
//
// Times keep their milliseconds (Create truncates to them, so a session
// reads back as it was made). Never change what a code, a flag or an entry
// of uaDict or rdnTypes means: stored sessions depend on it. A new meaning
// takes a new format number.
const (
	codecJSON = '{'
	codecV1   = 1
)

const (
	flagUV       = 1 << iota // Authn.UserVerified
	flagUUID                 // the user ID as 16 bytes
	flagIPBinary             // ClientIP as 4 or 16 bytes
	flagUADict               // UserAgent with uaDict substitutions
)

const (
	groupDirect    = 1 << iota // Group.Direct
	groupNameIsRDN             // Name is the value of the DN's first part
)

// Indexes of the times of a session in format 1.
const (
	timeCreated = iota
	timeLastSeen
	timeExpires
	timeChecked
	timeAuthn
	timeFactor
	numTimes
)

// codeOther is the code of a method or pending state outside the table,
// stored as a string after it.
const codeOther = 0xff

var (
	methodCodes  = []string{"", identity.MethodPassword, identity.MethodTOTP, identity.MethodWebAuthn, identity.MethodRecovery}
	pendingCodes = []string{"", PendingFactor, PendingEnroll}
)

// uaDict is substituted in user agents: entry i by the byte uaCode(i). The
// codes are control characters, which an HTTP header value cannot hold
// (RFC 9110 5.5); a user agent that holds one anyway is stored as it is.
// The entries are what browsers send most (whole runs where a browser
// sends them together), so a desktop Chrome's 117 bytes become 7.
var uaDict = [...]string{
	"Mozilla/5.0 (",
	"Macintosh; Intel Mac OS X 10_15_7",
	"Windows NT 10.0; Win64; x64",
	"X11; Linux x86_64",
	") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
	".0.0.0 Safari/537.36",
	".0.0.0 Mobile Safari/537.36",
	") Gecko/20100101 Firefox/",
	") AppleWebKit/605.1.15 (KHTML, like Gecko) Version/",
	" Safari/605.1.15",
	" Mobile/15E148 Safari/604.1",
	"iPhone; CPU iPhone OS ",
	" like Mac OS X",
	"Linux; Android 10; K",
	" Edg/",
	"; rv:",
	".0.0.0",
	"Macintosh; Intel Mac OS X ",
	"Windows NT 10.0",
	"X11; Ubuntu; Linux x86_64",
	"iPad; CPU OS ",
	" OPR/",
	".0) Gecko/20100101 Firefox/",
	"AppleWebKit/",
	"(KHTML, like Gecko)",
	" Safari/",
	"Chrome/",
	"Firefox/",
	"Mozilla/5.0 ",
	" Mobile",
}

// uaCode is the byte that stands for uaDict[i]: 0x01-0x08, then 0x0a-0x1f
// (0x09, a tab, may be in a header value).
func uaCode(i int) byte {
	if i < 8 {
		return byte(i + 1)
	}
	return byte(i + 2)
}

// uaIndex is the inverse of uaCode (-1 for a byte that is no code).
func uaIndex(c byte) int {
	switch {
	case c >= 0x01 && c <= 0x08:
		return int(c) - 1
	case c >= 0x0a && c <= 0x1f:
		return int(c) - 2
	}
	return -1
}

// uaByFirst lists the uaDict entries by their first byte.
var uaByFirst = func() (out [256][]int) {
	for i, w := range uaDict {
		out[w[0]] = append(out[w[0]], i)
	}
	return out
}()

// uaCompress substitutes uaDict entries in ua (the longest at each
// place), or returns ua and false when ua holds a code byte.
func uaCompress(ua string) (string, bool) {
	for i := 0; i < len(ua); i++ {
		if uaIndex(ua[i]) >= 0 {
			return ua, false
		}
	}
	var b strings.Builder
	b.Grow(len(ua))
	for i := 0; i < len(ua); {
		best := -1
		for _, j := range uaByFirst[ua[i]] {
			if w := uaDict[j]; strings.HasPrefix(ua[i:], w) && (best < 0 || len(w) > len(uaDict[best])) {
				best = j
			}
		}
		if best < 0 {
			b.WriteByte(ua[i])
			i++
			continue
		}
		b.WriteByte(uaCode(best))
		i += len(uaDict[best])
	}
	return b.String(), true
}

// uaExpand is the inverse of uaCompress.
func uaExpand(s string) string {
	var b strings.Builder
	b.Grow(4 * len(s))
	for i := 0; i < len(s); i++ {
		if j := uaIndex(s[i]); j >= 0 && j < len(uaDict) {
			b.WriteString(uaDict[j])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// encodeSession returns the stored form of sess (format 1). The same
// session always gives the same bytes (Create compares them).
func encodeSession(sess Session) []byte {
	e := encoder{buf: make([]byte, 0, 256)}
	var flags byte
	if sess.Authn.UserVerified {
		flags |= flagUV
	}
	id, isUUID := uuidBytes(sess.User.ID)
	if isUUID {
		flags |= flagUUID
	}
	ip, ipErr := netip.ParseAddr(sess.ClientIP)
	ipBinary := ipErr == nil && ip.Zone() == "" && ip.String() == sess.ClientIP
	if ipBinary {
		flags |= flagIPBinary
	}
	ua, uaDictOK := uaCompress(sess.UserAgent)
	if uaDictOK {
		flags |= flagUADict
	}
	e.buf = append(e.buf, codecV1, flags)

	times := [numTimes]time.Time{sess.CreatedAt, sess.LastSeen, sess.ExpiresAt, sess.CheckedAt,
		sess.Authn.Time, sess.Authn.FactorTime}
	var set, utc byte
	for i, t := range times {
		if !t.IsZero() {
			set |= 1 << i
		}
		if t.Location() == time.UTC {
			utc |= 1 << i
		}
	}
	e.buf = append(e.buf, set, utc)
	base := int64(0)
	if set&1 != 0 {
		base = times[timeCreated].UnixMilli()
		e.zvarint(base)
	}
	for _, t := range times[1:] {
		if !t.IsZero() {
			e.zvarint(t.UnixMilli() - base)
		}
	}

	if isUUID {
		e.buf = append(e.buf, id[:]...)
	} else {
		e.string(sess.User.ID)
	}
	e.string(sess.User.Username)
	e.string(sess.User.DisplayName)
	e.string(sess.User.Email)

	var dns dnTable
	userDN := dns.add(sess.User.DN)
	groupDNs := make([]int, len(sess.User.Groups))
	for i, g := range sess.User.Groups {
		groupDNs[i] = dns.add(g.DN)
	}
	e.varint(uint64(len(dns.parts)))
	for _, p := range dns.parts {
		typ, text := rdnType(p.text)
		e.varint(uint64(p.parent)<<4 | uint64(typ))
		e.string(text)
	}
	e.varint(uint64(userDN))
	e.varint(uint64(len(sess.User.Groups)))
	for i, g := range sess.User.Groups {
		e.varint(uint64(groupDNs[i]))
		var gf byte
		if g.Direct {
			gf |= groupDirect
		}
		if g.Name != "" && g.Name == rdnValue(g.DN) {
			gf |= groupNameIsRDN
		}
		e.buf = append(e.buf, gf)
		if gf&groupNameIsRDN == 0 {
			e.string(g.Name)
		}
	}
	names := make([]string, 0, len(sess.User.Attributes))
	for name := range sess.User.Attributes {
		names = append(names, name)
	}
	slices.Sort(names)
	e.varint(uint64(len(names)))
	for _, name := range names {
		e.string(name)
		vals := sess.User.Attributes[name]
		e.varint(uint64(len(vals)))
		for _, v := range vals {
			e.string(v)
		}
	}

	if ipBinary {
		raw := ip.AsSlice()
		e.buf = append(e.buf, byte(len(raw)))
		e.buf = append(e.buf, raw...)
	} else {
		e.string(sess.ClientIP)
	}
	e.string(ua)
	e.code(sess.Authn.Method, methodCodes)
	e.code(sess.Pending, pendingCodes)
	return e.buf
}

// decodeSession reads a stored session (format 1, or the JSON of older
// Wardens) whose key names it by key.
func decodeSession(val []byte, key string) (Session, error) {
	if len(val) == 0 {
		return Session{}, errors.New("store: session: empty")
	}
	if val[0] == codecJSON {
		var sess Session
		if err := json.Unmarshal(val, &sess); err != nil {
			return Session{}, fmt.Errorf("store: session: %w", err)
		}
		if sess.Key != key {
			return Session{}, errors.New("store: session: stored under another key")
		}
		return sess, nil
	}
	d := decoder{buf: val}
	sess, err := d.session(key)
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	return sess, nil
}

// storedTimes returns LastSeen and ExpiresAt of the stored session val
// without decoding the rest of it (format 1: they come first), for evict.
func storedTimes(val []byte) (lastSeen, expiresAt time.Time, ok bool) {
	if len(val) == 0 {
		return time.Time{}, time.Time{}, false
	}
	if val[0] == codecJSON {
		return storedTimesJSON(val)
	}
	d := decoder{buf: val}
	_, times, err := d.header()
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	return times[timeLastSeen], times[timeExpires], true
}

type encoder struct{ buf []byte }

func (e *encoder) varint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) zvarint(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) string(s string) {
	e.varint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// code writes s as its index in table, or codeOther and s.
func (e *encoder) code(s string, table []string) {
	if i := slices.Index(table, s); i >= 0 {
		e.buf = append(e.buf, byte(i))
		return
	}
	e.buf = append(e.buf, codeOther)
	e.string(s)
}

var errTruncated = errors.New("truncated")

type decoder struct {
	buf []byte
	off int
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.buf) {
		return 0, errTruncated
	}
	d.off++
	return d.buf[d.off-1], nil
}

func (d *decoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(d.buf)-d.off {
		return nil, errTruncated
	}
	d.off += n
	return d.buf[d.off-n : d.off], nil
}

func (d *decoder) varint() (uint64, error) {
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	d.off += n
	return v, nil
}

func (d *decoder) zvarint() (int64, error) {
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		return 0, errors.New("bad varint")
	}
	d.off += n
	return v, nil
}

// count reads a number of items, each at least one byte long: never more
// than the bytes left, so that a corrupt value cannot make a huge slice.
func (d *decoder) count() (int, error) {
	v, err := d.varint()
	if err != nil {
		return 0, err
	}
	if v > uint64(len(d.buf)-d.off) {
		return 0, errTruncated
	}
	return int(v), nil
}

func (d *decoder) string() (string, error) {
	n, err := d.count()
	if err != nil {
		return "", err
	}
	b, err := d.bytes(n)
	return string(b), err
}

func (d *decoder) code(table []string) (string, error) {
	c, err := d.byte()
	if err != nil {
		return "", err
	}
	if c == codeOther {
		return d.string()
	}
	if int(c) >= len(table) {
		return "", fmt.Errorf("unknown code %d", c)
	}
	return table[c], nil
}

// header reads the version, the flags and the times.
func (d *decoder) header() (flags byte, times [numTimes]time.Time, err error) {
	v, err := d.byte()
	if err != nil {
		return 0, times, err
	}
	if v != codecV1 {
		return 0, times, fmt.Errorf("unknown format %d", v)
	}
	b, err := d.bytes(3)
	if err != nil {
		return 0, times, err
	}
	flags, set, utc := b[0], b[1], b[2]
	base := int64(0)
	for i := range numTimes {
		if set&(1<<i) == 0 {
			continue
		}
		ms, err := d.zvarint()
		if err != nil {
			return 0, times, err
		}
		if i != timeCreated {
			if (ms > 0 && base > math.MaxInt64-ms) || (ms < 0 && base < math.MinInt64-ms) {
				return 0, times, errors.New("time out of range")
			}
			ms += base
		} else {
			base = ms
		}
		t := time.UnixMilli(ms)
		if utc&(1<<i) != 0 {
			t = t.UTC()
		}
		times[i] = t
	}
	return flags, times, nil
}

func (d *decoder) session(key string) (Session, error) {
	flags, times, err := d.header()
	if err != nil {
		return Session{}, err
	}
	sess := Session{Key: key, CreatedAt: times[timeCreated], LastSeen: times[timeLastSeen],
		ExpiresAt: times[timeExpires], CheckedAt: times[timeChecked],
		Authn: identity.Authn{Time: times[timeAuthn], FactorTime: times[timeFactor], UserVerified: flags&flagUV != 0}}
	u := &sess.User
	if flags&flagUUID != 0 {
		raw, err := d.bytes(16)
		if err != nil {
			return Session{}, err
		}
		u.ID = uuidString(raw)
	} else if u.ID, err = d.string(); err != nil {
		return Session{}, err
	}
	for _, s := range []*string{&u.Username, &u.DisplayName, &u.Email} {
		if *s, err = d.string(); err != nil {
			return Session{}, err
		}
	}

	nparts, err := d.count()
	if err != nil {
		return Session{}, err
	}
	dns := make([]string, nparts)
	for i := range nparts {
		v, err := d.varint()
		if err != nil {
			return Session{}, err
		}
		text, err := d.string()
		if err != nil {
			return Session{}, err
		}
		parent, typ := v>>4, v&0xf
		if typ != 0 {
			if int(typ) > len(rdnTypes) {
				return Session{}, errors.New("unknown attribute type")
			}
			text = rdnTypes[typ-1] + text
		}
		switch {
		case parent == 0:
			dns[i] = text
		case parent <= uint64(i):
			dns[i] = text + "," + dns[parent-1]
		default:
			return Session{}, errors.New("DN part refers forward")
		}
	}
	dn := func() (string, error) {
		ref, err := d.varint()
		switch {
		case err != nil:
			return "", err
		case ref == 0:
			return "", nil
		case ref > uint64(len(dns)):
			return "", errors.New("unknown DN")
		}
		return dns[ref-1], nil
	}
	if u.DN, err = dn(); err != nil {
		return Session{}, err
	}
	ngroups, err := d.count()
	if err != nil {
		return Session{}, err
	}
	if ngroups > 0 {
		u.Groups = make([]identity.Group, ngroups)
	}
	for i := range u.Groups {
		g := &u.Groups[i]
		if g.DN, err = dn(); err != nil {
			return Session{}, err
		}
		gf, err := d.byte()
		if err != nil {
			return Session{}, err
		}
		g.Direct = gf&groupDirect != 0
		if gf&groupNameIsRDN != 0 {
			g.Name = rdnValue(g.DN)
		} else if g.Name, err = d.string(); err != nil {
			return Session{}, err
		}
	}
	nattrs, err := d.count()
	if err != nil {
		return Session{}, err
	}
	if nattrs > 0 {
		u.Attributes = make(map[string][]string, nattrs)
	}
	for range nattrs {
		name, err := d.string()
		if err != nil {
			return Session{}, err
		}
		n, err := d.count()
		if err != nil {
			return Session{}, err
		}
		vals := make([]string, n)
		for j := range vals {
			if vals[j], err = d.string(); err != nil {
				return Session{}, err
			}
		}
		u.Attributes[name] = vals
	}

	if flags&flagIPBinary != 0 {
		n, err := d.byte()
		if err != nil {
			return Session{}, err
		}
		if n != 4 && n != 16 {
			return Session{}, errors.New("bad address length")
		}
		raw, err := d.bytes(int(n))
		if err != nil {
			return Session{}, err
		}
		ip, _ := netip.AddrFromSlice(raw)
		sess.ClientIP = ip.String()
	} else if sess.ClientIP, err = d.string(); err != nil {
		return Session{}, err
	}
	if sess.UserAgent, err = d.string(); err != nil {
		return Session{}, err
	}
	if flags&flagUADict != 0 {
		sess.UserAgent = uaExpand(sess.UserAgent)
	}
	if sess.Authn.Method, err = d.code(methodCodes); err != nil {
		return Session{}, err
	}
	if sess.Pending, err = d.code(pendingCodes); err != nil {
		return Session{}, err
	}
	if d.off != len(d.buf) {
		return Session{}, errors.New("trailing bytes")
	}
	return sess, nil
}

// dnTable collects the parts of the DNs of one session (see the format).
type dnTable struct {
	parts []dnPart
	index map[dnPart]int // from dnTableScan parts on; else parts is searched
}

type dnPart struct {
	parent int // 0: none, else the number of an earlier part, from 1
	text   string
}

// dnTableScan is how many parts are searched one by one before a map
// pays (a user of a few groups has about ten).
const dnTableScan = 32

// add stores dn and returns its reference: 0 for "", else the number
// (from 1) of its first part.
func (t *dnTable) add(dn string) int {
	if dn == "" {
		return 0
	}
	ref := 0
	for rest := dn; ; {
		i := strings.LastIndexByte(rest, ',')
		ref = t.intern(dnPart{parent: ref, text: rest[i+1:]})
		if i < 0 {
			return ref
		}
		rest = rest[:i]
	}
}

// intern returns the number of p, from 1, adding it if new.
func (t *dnTable) intern(p dnPart) int {
	if t.index == nil {
		for i, q := range t.parts {
			if q == p {
				return i + 1
			}
		}
	} else if n, ok := t.index[p]; ok {
		return n
	}
	t.parts = append(t.parts, p)
	n := len(t.parts)
	switch {
	case t.index != nil:
		t.index[p] = n
	case n >= dnTableScan:
		t.index = make(map[dnPart]int, 2*n)
		for i, q := range t.parts {
			t.index[q] = i + 1
		}
	}
	return n
}

// rdnTypes are the attribute types of DN parts stored as a number: the
// part "cn=staff" is the number of "cn=" and "staff". At most 15.
var rdnTypes = [...]string{"cn=", "ou=", "dc=", "uid=", "o=", "c=", "l=", "st=", "CN=", "OU=", "DC=", "O=", "C=", "L=", "ST="}

// rdnType splits a DN part into the number (from 1) of its rdnTypes
// prefix and the rest, or returns 0 and part.
func rdnType(part string) (int, string) {
	for i, t := range rdnTypes {
		if rest, ok := strings.CutPrefix(part, t); ok {
			return i + 1, rest
		}
	}
	return 0, part
}

// rdnValue is the text after the first "=" of the first comma-separated
// part of dn, or "" (used only to compare with a group's Name, so escapes
// need no decoding: a Name that differs is stored).
func rdnValue(dn string) string {
	first, _, _ := strings.Cut(dn, ",")
	_, v, ok := strings.Cut(first, "=")
	if !ok {
		return ""
	}
	return v
}

// uuidBytes parses a canonical lower-case UUID (what both directories give
// as the user ID) exactly: any other string is not one.
func uuidBytes(s string) ([16]byte, bool) {
	var out [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return out, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return out, false
		}
	}
	if _, err := hex.Decode(out[:], []byte(h)); err != nil {
		return out, false
	}
	return out, true
}

func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
