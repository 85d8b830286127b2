package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
)

const (
	testChromeUA  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	testFirefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	testSafariUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)

// codecSession is a signed-in session as Create makes it: times in
// milliseconds, the clock's own location (UTC here, Local for some).
func codecSession() Session {
	t0 := time.UnixMilli(1_893_456_000_123).UTC()
	return Session{
		Key: "0123456789abcdef0123456789abcdef",
		User: identity.User{ID: "0b7c1a52-3f0e-4c8e-9d1e-6c0f6f1a2b3c", Username: "bob", DisplayName: "Bob Brown",
			Email: "bob@example.org", DN: "uid=bob,ou=people,dc=example,dc=org",
			Groups: []identity.Group{
				{DN: "cn=company,ou=groups,dc=example,dc=org", Name: "company"},
				{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true},
				{DN: "cn=engineering,ou=groups,dc=example,dc=org", Name: "engineering"},
				{DN: "cn=staff,ou=groups,dc=example,dc=org", Name: "staff"},
			}},
		CreatedAt: t0, LastSeen: t0.Add(90 * time.Second), ExpiresAt: t0.Add(12 * time.Hour), CheckedAt: t0.Add(time.Minute),
		ClientIP: "203.0.113.45", UserAgent: testChromeUA,
		Authn: identity.Authn{Method: identity.MethodTOTP, Time: t0.Add(-20 * time.Second), FactorTime: t0},
	}
}

// TestSessionCodecRoundTrip: whatever a session holds comes back exactly
// (the times to the millisecond, in UTC or Local as they were).
func TestSessionCodecRoundTrip(t *testing.T) {
	local := time.UnixMilli(1_893_456_000_999) // Local, as from time.Now
	cases := map[string]func(s *Session){
		"typical": func(*Session) {},
		"empty": func(s *Session) {
			*s = Session{Key: s.Key}
		},
		"local_times": func(s *Session) {
			s.CreatedAt, s.LastSeen, s.ExpiresAt, s.CheckedAt = local, local, local.Add(time.Hour), local
		},
		"mixed_locations": func(s *Session) { s.LastSeen = local },
		"times_before_creation_and_1970": func(s *Session) {
			s.Authn.Time = s.CreatedAt.Add(-48 * time.Hour)
			s.CheckedAt = time.UnixMilli(-5).UTC()
		},
		"legacy_zero_checked_and_authn": func(s *Session) { s.CheckedAt, s.Authn = time.Time{}, identity.Authn{} },
		"webauthn_uv":                   func(s *Session) { s.Authn.Method, s.Authn.UserVerified = identity.MethodWebAuthn, true },
		"unknown_method_and_pending":    func(s *Session) { s.Authn.Method, s.Pending = "smartcard", "something" },
		"pending_factor":                func(s *Session) { s.Pending = PendingFactor },
		"pending_enroll":                func(s *Session) { s.Pending = PendingEnroll },
		"id_not_uuid":                   func(s *Session) { s.User.ID = "11111111-aaaa" },
		"id_upper_case_uuid":            func(s *Session) { s.User.ID = strings.ToUpper(s.User.ID) },
		"id_uuid_in_braces":             func(s *Session) { s.User.ID = "{" + s.User.ID + "}" },
		"ipv6":                          func(s *Session) { s.ClientIP = "2001:db8::7" },
		"ipv4_mapped":                   func(s *Session) { s.ClientIP = "::ffff:192.0.2.1" },
		"ipv6_not_canonical":            func(s *Session) { s.ClientIP = "2001:DB8:0::7" },
		"ipv6_zone":                     func(s *Session) { s.ClientIP = "fe80::1%eth0" },
		"ip_not_an_address":             func(s *Session) { s.ClientIP = "unknown" },
		"ipv4_leading_zero":             func(s *Session) { s.ClientIP = "192.0.2.01" },
		"firefox":                       func(s *Session) { s.UserAgent = testFirefoxUA },
		"safari":                        func(s *Session) { s.UserAgent = testSafariUA },
		"ua_with_tab":                   func(s *Session) { s.UserAgent = "curl/8.0\tx" },
		"ua_with_code_bytes":            func(s *Session) { s.UserAgent = "Mozilla/5.0 (\x01\x1f" + testChromeUA },
		"ua_not_utf8":                   func(s *Session) { s.UserAgent = "Mozilla/5.0 (\xff\xfe) Chrome/" },
		"ua_only_dictionary":            func(s *Session) { s.UserAgent = strings.Join(uaDict[:], "") },
		"ua_long":                       func(s *Session) { s.UserAgent = strings.Repeat("Chrome/1 ", 56) },
		"dn_odd": func(s *Session) {
			s.User.DN = `cn=Smith\, John,ou=people,dc=example,dc=org`
			s.User.Groups = []identity.Group{
				{DN: ",leading,comma", Name: "x"},
				{DN: "trailing,comma,", Name: ""},
				{DN: "a,,b", Name: "a"},
				{DN: ",", Name: ","},
				{DN: "noequals", Name: "noequals"},
				{DN: "cn=", Name: ""},
				{DN: "CN=Domain Users,CN=Users,DC=example,DC=test", Name: "Domain Users", Direct: true},
				{DN: "cn=named,ou=groups,dc=example,dc=org", Name: "other-name"},
				{DN: "cn=Sales, ou=groups, dc=example, dc=org", Name: "Sales"},
				{DN: "CN=x,OU=y,DC=z", Name: "X"},
				{DN: "", Name: "no-dn"},
				{DN: "o=Org,c=DE,l=Berlin,st=BE,uid=u", Name: "Org"},
			}
		},
		"dn_only_groups": func(s *Session) { s.User.DN = "" },
		"many_groups": func(s *Session) {
			s.User.Groups = nil
			for i := range 300 {
				s.User.Groups = append(s.User.Groups, identity.Group{DN: "cn=g" + itoa3(i) + ",ou=groups,dc=example,dc=org", Name: "g" + itoa3(i)})
			}
		},
		"attributes": func(s *Session) {
			s.User.Attributes = map[string][]string{"department": {"R&D"}, "mail": {"a@x", "b@x"}, "empty": {}, "": {""}}
		},
		"unicode": func(s *Session) { s.User.DisplayName, s.User.Username = "Jürgen Groß", "jürgen" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			want := codecSession()
			mod(&want)
			val := encodeSession(want)
			if val[0] != codecV1 {
				t.Fatalf("format byte %d", val[0])
			}
			got, err := decodeSession(val, want.Key)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if want.User.Attributes != nil && len(want.User.Attributes) == 0 {
				want.User.Attributes = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
			}
			if again := encodeSession(got); !bytes.Equal(again, val) {
				t.Fatal("encoding the decoded session gives other bytes")
			}
			ls, ex, ok := storedTimes(val)
			if !ok || !ls.Equal(want.LastSeen) || !ex.Equal(want.ExpiresAt) {
				t.Fatalf("storedTimes = %v %v %v", ls, ex, ok)
			}
		})
	}
}

func itoa3(i int) string {
	return string([]byte{'0' + byte(i/100), '0' + byte(i/10%10), '0' + byte(i%10)})
}

// TestSessionCodecSize: a typical session (four groups, a desktop
// browser, a TOTP sign-in) stays small, and far smaller than the JSON of
// older Wardens. The bound is the allocator size class Redis puts it in
// (192 bytes, with the string's 4-byte header): see BenchmarkSessionBytes.
func TestSessionCodecSize(t *testing.T) {
	sess := codecSession()
	val := encodeSession(sess)
	old, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compact %d bytes, JSON %d bytes", len(val), len(old))
	if len(val) > 188 {
		t.Errorf("a typical session takes %d bytes, want at most 188", len(val))
	}
	if ua, ok := uaCompress(testChromeUA); !ok || len(ua) != 7 {
		t.Errorf("Chrome's user agent takes %d bytes (%v), want 7", len(ua), ok)
	}
	// Each group sharing the others' tail costs its own first part and a
	// few bytes, not its DN and name again.
	more := sess
	more.User.Groups = append(slices0(sess.User.Groups), identity.Group{DN: "cn=aws-prod-admins,ou=groups,dc=example,dc=org", Name: "aws-prod-admins"})
	if d := len(encodeSession(more)) - len(val); d > len("aws-prod-admins")+5 {
		t.Errorf("one more group costs %d bytes", d)
	}
}

func slices0(g []identity.Group) []identity.Group { return append([]identity.Group(nil), g...) }

// TestSessionCodecDictionary: the user-agent codes are control characters
// a header cannot hold (never a tab), one per entry, and no entry holds a
// code.
func TestSessionCodecDictionary(t *testing.T) {
	if len(uaDict) > 30 {
		t.Fatalf("%d entries, at most 30 codes", len(uaDict))
	}
	seen := map[byte]bool{}
	for i, w := range uaDict {
		c := uaCode(i)
		if c == 0 || c == '\t' || c >= 0x20 || seen[c] || uaIndex(c) != i {
			t.Errorf("entry %d: code %#x", i, c)
		}
		seen[c] = true
		if w == "" {
			t.Errorf("entry %d is empty", i)
		}
		for j := 0; j < len(w); j++ {
			if uaIndex(w[j]) >= 0 {
				t.Errorf("entry %d holds a code byte", i)
			}
		}
	}
	if uaIndex('\t') >= 0 || uaIndex(0) >= 0 || uaIndex(' ') >= 0 {
		t.Error("a byte that may be in a header value is a code")
	}
	if len(rdnTypes) > 15 {
		t.Errorf("%d attribute types, at most 15", len(rdnTypes))
	}
}

// TestSessionCodecLegacyJSON: sessions stored by older Wardens (JSON) are
// read as they were, and only under their own key.
func TestSessionCodecLegacyJSON(t *testing.T) {
	sess := codecSession()
	sess.Key = strings.Repeat("ab", 32)
	sess.CreatedAt = sess.CreatedAt.Add(123456 * time.Nanosecond) // JSON kept nanoseconds
	val, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSession(val, sess.Key)
	if err != nil || !reflect.DeepEqual(got, sess) {
		t.Fatalf("legacy session: %v\n got %#v\nwant %#v", err, got, sess)
	}
	if _, err := decodeSession(val, strings.Repeat("cd", 32)); err == nil {
		t.Error("a legacy session was read under another key")
	}
	ls, ex, ok := storedTimes(val)
	if !ok || !ls.Equal(sess.LastSeen) || !ex.Equal(sess.ExpiresAt) {
		t.Errorf("storedTimes of JSON = %v %v %v", ls, ex, ok)
	}
}

// TestSessionCodecCorrupt: a damaged value is an error, never a panic or
// a huge allocation: every truncation, every single-byte change that
// still decodes gives a session that encodes back to those bytes, and
// values that are not sessions.
func TestSessionCodecCorrupt(t *testing.T) {
	s := codecSession()
	s.User.Attributes = map[string][]string{"a": {"b"}}
	s.ClientIP = "unknown"
	s.Authn.Method = "other"
	val := encodeSession(s)
	for n := range len(val) {
		if _, err := decodeSession(val[:n], s.Key); err == nil {
			t.Errorf("a value cut to %d of %d bytes decoded", n, len(val))
		}
		if _, _, ok := storedTimes(val[:n]); ok && n < 8 {
			t.Errorf("storedTimes of %d bytes succeeded", n)
		}
	}
	if _, err := decodeSession(append(bytes.Clone(val), 0), s.Key); err == nil {
		t.Error("trailing bytes accepted")
	}
	for i := range val {
		for _, b := range []byte{0x00, 0x7f, 0x80, 0xff, val[i] ^ 1} {
			v := bytes.Clone(val)
			v[i] = b
			got, err := decodeSession(v, s.Key)
			if err == nil && !bytes.Equal(encodeSession(got), v) {
				// Other bytes may decode (a flag flipped, a length that
				// still fits): then they are that session exactly.
				if !reflect.DeepEqual(mustDecode(t, encodeSession(got), s.Key), got) {
					t.Errorf("byte %d = %#x: decodes to a session that does not round-trip", i, b)
				}
			}
		}
	}
	for _, v := range []string{"", "\x02", "\x01", "x", "{", "{}", "null", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if _, err := decodeSession([]byte(v), s.Key); err == nil {
			t.Errorf("%q decoded", v)
		}
	}
}

func mustDecode(t *testing.T, val []byte, key string) Session {
	t.Helper()
	s, err := decodeSession(val, key)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return s
}

// FuzzSessionCodec: any strings and times round-trip, and no input makes
// the decoder panic.
func FuzzSessionCodec(f *testing.F) {
	f.Add("0b7c1a52-3f0e-4c8e-9d1e-6c0f6f1a2b3c", "cn=a,ou=groups,dc=x", "a", testChromeUA, "192.0.2.1", int64(1_893_456_000_123), int64(60_000), []byte{1, 0})
	f.Add("", "", "", "", "", int64(0), int64(0), []byte("{}"))
	f.Add("x", ",", ",", "\x01", "::1", int64(-1), int64(-1<<62), []byte{1, 4, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, id, dn, name, ua, ip string, ms, delta int64, raw []byte) {
		if _, err := decodeSession(raw, "k"); err == nil {
			// Whatever decodes is a session; decoding cannot panic.
			_ = encodeSession(mustDecode(t, raw, "k"))
		}
		storedTimes(raw)
		ms %= 1 << 50
		delta %= 1 << 42 // as a Duration in ns, it must not overflow
		t0 := time.UnixMilli(ms).UTC()
		want := Session{Key: "k", User: identity.User{ID: id, DN: dn, Username: name,
			Groups: []identity.Group{{DN: dn, Name: name}, {DN: name + "," + dn, Name: dn}}},
			CreatedAt: t0, LastSeen: t0.Add(time.Duration(delta) * time.Millisecond), ClientIP: ip, UserAgent: ua,
			Authn: identity.Authn{Method: name}, Pending: id}
		got := mustDecode(t, encodeSession(want), "k")
		if want.CreatedAt.IsZero() {
			want.CreatedAt = time.Time{}
		}
		if want.LastSeen.IsZero() {
			want.LastSeen = time.Time{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
		}
	})
}

// BenchmarkSessionCodec: encoding (Create, a refresh) and decoding (every
// Get) a typical session, compact and as the JSON of older Wardens.
//
//	go test -run '^$' -bench SessionCodec ./internal/store
func BenchmarkSessionCodec(b *testing.B) {
	sess := codecSession()
	compact := encodeSession(sess)
	legacy, err := json.Marshal(sess)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode/compact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeSession(sess)
		}
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(sess); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, val := range map[string][]byte{"compact": compact, "json": legacy} {
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeSession(val, sess.Key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
