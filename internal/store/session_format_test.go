package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/store"
)

// TestSessionFormatJSON: with session.format json new sessions are what
// Wardens before the compact format wrote and read (json.Marshal(Session)
// under the hex SHA-256 of the token), on creation and on every rewrite,
// so that old replicas beside new ones during a rolling upgrade read them;
// the new Warden reads, lists and ends them as its own.
func TestSessionFormatJSON(t *testing.T) {
	st := openReal(t)
	ctx := context.Background()
	clk := newClock()
	cfg := sessCfg
	cfg.Format = store.SessionFormatJSON
	s, err := store.NewSessions(st, cfg, clk.Now, nil)
	mustf(t, err, "new sessions")
	bob := identity.User{ID: "5d1f3c2a-9b8e-4f7a-8c6d-0e1f2a3b4c5d", Username: "bob", DN: "uid=bob,ou=people,dc=example,dc=org",
		Groups: []identity.Group{{DN: "cn=developers,ou=groups,dc=example,dc=org", Name: "developers", Direct: true}}}
	tok, sess, err := s.Create(ctx, bob, store.SessionMeta{ClientIP: "192.0.2.9", UserAgent: "Mozilla/5.0 old"})
	mustf(t, err, "create")
	sum := sha256.Sum256([]byte(tok))
	legacy := hex.EncodeToString(sum[:])
	if sess.Key != legacy {
		t.Fatalf("key %q, want the 64-digit %q", sess.Key, legacy)
	}
	// what an older Warden does with the value: json.Unmarshal into Session
	readOld := func() store.Session {
		t.Helper()
		val, err := st.Client().Get(ctx, st.Key("sess:"+legacy)).Bytes()
		mustf(t, err, "read the stored value")
		var old store.Session
		if err := json.Unmarshal(val, &old); err != nil {
			t.Fatalf("an older Warden cannot read %q: %v", val, err)
		}
		return old
	}
	if old := readOld(); old.User.Username != "bob" || old.User.Groups[0].DN != bob.Groups[0].DN || old.UserAgent != "Mozilla/5.0 old" || !old.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Fatalf("as an older Warden reads it: %+v", old)
	}

	// a refresh writes JSON again
	clk.Add(20 * time.Minute)
	got, err := s.Get(ctx, tok)
	mustf(t, err, "get")
	if got.Key != legacy || !got.LastSeen.Equal(clk.Now().Truncate(time.Millisecond)) {
		t.Fatalf("get: %+v", got)
	}
	if old := readOld(); !old.LastSeen.Equal(got.LastSeen) {
		t.Fatalf("refresh not stored as JSON: last seen %v, want %v", old.LastSeen, got.LastSeen)
	}
	list, err := s.ListUser(ctx, bob.ID)
	mustf(t, err, "list")
	if len(list) != 1 || list[0].Key != legacy {
		t.Fatalf("list: %+v", list)
	}
	n, err := s.RevokeUser(ctx, bob.ID)
	mustf(t, err, "revoke")
	if n != 1 {
		t.Fatalf("revoked %d", n)
	}
	if _, err := s.Get(ctx, tok); err == nil {
		t.Fatal("session lives after revoke")
	}

	// the default stays compact
	c, err := store.NewSessions(st, sessCfg, clk.Now, nil)
	mustf(t, err, "new sessions")
	_, sess, err = c.Create(ctx, bob, store.SessionMeta{})
	mustf(t, err, "create")
	if len(sess.Key) != 32 {
		t.Fatalf("default key %q", sess.Key)
	}
	bad := sessCfg
	bad.Format = "xml"
	if _, err := store.NewSessions(st, bad, clk.Now, nil); err == nil || !strings.Contains(err.Error(), "format: must be compact or json") {
		t.Fatalf("format xml: %v", err)
	}
}
