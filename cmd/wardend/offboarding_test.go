package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Offboarding (DESIGN.md flow 5, "taking access away works on every path,
// at once"): a table over paths × events, on OpenLDAP and on Samba AD,
// against a real wardend. Every cell has a fresh user of its own (member of
// the group of role A, of role B, and of an admin group), signed in twice
// in the browser and once in the CLI (a device login), with one more
// device code approved but not yet redeemed. Then the event happens, the
// path is taken once, and the cell asserts the documented outcome of that
// path, then what the event leaves of the user's other access and the
// audit log.
//
// Paths: console click, deep link, /saml/sso for AWS and for a generic SP,
// device approval, an admin API change, token exchange (SAML and web
// identity), refresh, browser page. Events: removed from the group of role
// A (and, for the admin path, from the admin group), deleted, disabled
// (OpenLDAP: ppolicy lock; AD: userAccountControl ACCOUNTDISABLE), admin
// revoke-all, `wardend users revoke` (and, on OpenLDAP, deleted and then
// `wardend users revoke`, the usual order of an offboarding).
//
// Run it: set -a; . /tmp/warden-testenv/env; set +a;
// go test -race -count=1 -run Offboarding ./cmd/wardend/ (-v prints the
// matrix with each cell's outcome).

// offbKind is what an event does to the user's access.
type offbKind int

const (
	// offbRemoved: the user exists with fewer groups; nothing is revoked.
	offbRemoved offbKind = iota
	// offbGone: the directory no longer lets the user in; the first path
	// that looks the user up revokes everything.
	offbGone
	// offbRevoked: everything was revoked by an admin or the operator; the
	// directory still lets the user in (unless the event says gone).
	offbRevoked
)

// offbCell is one user's state through a cell.
type offbCell struct {
	user    string
	b1, b2  *offbBrowser // two browser sessions; paths use b1
	tok     offbTokens   // the CLI's sign-in from before the event
	pending string       // a device code approved, not yet redeemed
	// path state prepared before the event
	deviceCode, userCode string
	csrf                 string
	version              int64
}

type offbEvent struct {
	name  string
	kind  offbKind
	cause string // the access.revoke cause ("" for offbRemoved; the directory's for "disabled")
	apply func(t *testing.T, w *offbWardend, c *offbCell)
	only  string // when set, the event applies to this path only
	// gone: the directory refuses the user too (they cannot sign in again).
	gone bool
}

type offbPath struct {
	name string
	// want is the documented outcome, by kind of event.
	want map[offbKind]string
	// prep runs before the event (path state, and a baseline that the
	// path works for the user now).
	prep func(t *testing.T, w *offbWardend, c *offbCell)
	// run takes the path once after the event and says what came of it.
	run func(t *testing.T, w *offbWardend, c *offbCell) string
}

func TestOffboardingOpenLDAP(t *testing.T) {
	offbLong(t)
	offbMatrix(t, offbOpenLDAP(t))
}

func TestOffboardingActiveDirectory(t *testing.T) {
	offbLong(t)
	offbMatrix(t, offbActiveDirectory(t))
}

// offbLong skips in -short mode, before the test changes the directory.
func offbLong(t *testing.T) {
	if testing.Short() {
		t.Skip("wardend end to end skipped in -short mode")
	}
}

func offbPaths() []offbPath {
	deepLink := "/aws/console?role=" + offbAccountName + "/" + offbRoleName(offbRoleA)
	console := func(t *testing.T, w *offbWardend, c *offbCell, role string) offbResp {
		return c.b1.post(t, "/aws/console", url.Values{"csrf_token": {c.b1.csrf}, "role": {role}})
	}
	consoleOutcome := func(r offbResp) string {
		switch {
		case r.code >= 300 && r.code < 400:
			return fmt.Sprintf("%d %s", r.code, r.location())
		case r.code == http.StatusForbidden && strings.Contains(r.body, "Not your role"):
			return "403 Not your role"
		case r.code == http.StatusOK && strings.Contains(r.body, `name="SAMLResponse"`):
			return "200 SAML response"
		}
		return strconv.Itoa(r.code)
	}
	signIn := "303 /login"
	return []offbPath{{
		name: "console click",
		want: map[offbKind]string{offbRemoved: "403 Not your role", offbGone: signIn, offbRevoked: signIn},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := consoleOutcome(console(t, w, c, offbRoleA)); got != "200 SAML response" {
				t.Fatalf("baseline: console click for role A: %s", got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			got := consoleOutcome(console(t, w, c, offbRoleA))
			if got == "403 Not your role" { // the other role still opens the console
				if b := consoleOutcome(console(t, w, c, offbRoleB)); b != "200 SAML response" {
					t.Errorf("console click for role B (still held): %s", b)
				}
			}
			return got
		},
	}, {
		name: "deep link",
		want: map[offbKind]string{offbRemoved: "403 Not your role", offbGone: signIn, offbRevoked: signIn},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := consoleOutcome(c.b1.get(t, deepLink)); got != "200 SAML response" {
				t.Fatalf("baseline: GET %s: %s", deepLink, got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			return consoleOutcome(c.b1.get(t, deepLink))
		},
	}, {
		name: "saml sso aws",
		want: map[offbKind]string{offbRemoved: "answered to " + offbAWSACS + " roles=OffbB",
			offbGone: "sign-in page", offbRevoked: "sign-in page"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := w.sso(t, c.b1, offbAWSEntity, offbAWSACS); got != "answered to "+offbAWSACS+" roles=OffbA,OffbB" {
				t.Fatalf("baseline: /saml/sso from AWS: %s", got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			return w.sso(t, c.b1, offbAWSEntity, offbAWSACS)
		},
	}, {
		name: "saml sso generic",
		want: map[offbKind]string{offbRemoved: "answered to " + offbGenericACS,
			offbGone: "sign-in page", offbRevoked: "sign-in page"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := w.sso(t, c.b1, offbGenericEntity, offbGenericACS); got != "answered to "+offbGenericACS {
				t.Fatalf("baseline: /saml/sso from the generic SP: %s", got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			return w.sso(t, c.b1, offbGenericEntity, offbGenericACS)
		},
	}, {
		// The code is typed and confirmed before the event; the event
		// happens while the Approve button is on the screen.
		name: "device approval",
		want: map[offbKind]string{offbRemoved: "approved, poll 200",
			offbGone: "303 /login, poll 400 authorization_pending", offbRevoked: "303 /login, poll 400 authorization_pending"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			c.deviceCode, c.userCode = w.deviceStart(t)
			c.b1.deviceConfirm(t, c.userCode)
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			r := c.b1.deviceApprove(t, c.userCode)
			var got string
			switch {
			case r.code == http.StatusOK && strings.Contains(r.body, "You can return to your terminal"):
				got = "approved"
			case r.code >= 300 && r.code < 400:
				got = fmt.Sprintf("%d %s", r.code, r.location())
			default:
				got = strconv.Itoa(r.code)
			}
			code, tok := w.poll(t, c.deviceCode)
			return got + ", poll " + offbOutcome(code, tok.Error)
		},
	}, {
		name: "admin api change",
		want: map[offbKind]string{offbRemoved: "201", offbGone: "401", offbRevoked: "401"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			c.csrf, c.version = c.b1.apiCSRF(t), c.b1.rulesVersion(t)
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			code, msg := c.b1.adminChange(t, c.csrf, c.version)
			if code >= 400 {
				t.Logf("admin change: %d %q", code, msg)
			}
			return strconv.Itoa(code)
		},
	}, {
		name: "token exchange saml",
		want: map[offbKind]string{offbRemoved: "400 invalid_target", offbGone: "400 invalid_grant", offbRevoked: "400 invalid_request"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := w.exchange(t, c.tok.AccessToken, offbSAML2, offbRoleA); got != "200" {
				t.Fatalf("baseline: SAML token exchange for role A: %s", got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			got := w.exchange(t, c.tok.AccessToken, offbSAML2, offbRoleA)
			if got == "400 invalid_target" {
				if b := w.exchange(t, c.tok.AccessToken, offbSAML2, offbRoleB); b != "200" {
					t.Errorf("SAML token exchange for role B (still held): %s", b)
				}
			}
			return got
		},
	}, {
		name: "token exchange web identity",
		want: map[offbKind]string{offbRemoved: "400 invalid_target", offbGone: "400 invalid_grant", offbRevoked: "400 invalid_request"},
		prep: func(t *testing.T, w *offbWardend, c *offbCell) {
			if got := w.exchange(t, c.tok.AccessToken, offbIDToken, offbRoleA); got != "200" {
				t.Fatalf("baseline: web-identity token exchange for role A: %s", got)
			}
		},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			got := w.exchange(t, c.tok.AccessToken, offbIDToken, offbRoleA)
			if got == "400 invalid_target" {
				if b := w.exchange(t, c.tok.AccessToken, offbIDToken, offbRoleB); b != "200" {
					t.Errorf("web-identity token exchange for role B (still held): %s", b)
				}
			}
			return got
		},
	}, {
		name: "refresh",
		want: map[offbKind]string{offbRemoved: "200", offbGone: "400 invalid_grant", offbRevoked: "400 invalid_grant"},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			got, tok := w.refresh(t, c.tok.RefreshToken)
			if got == "200" {
				c.tok = tok // rotated
			}
			return got
		},
	}, {
		// The home page after the recheck interval (no timing asserted:
		// the cell only waits past it).
		name: "browser page",
		want: map[offbKind]string{offbRemoved: "200 roles=OffbB", offbGone: signIn, offbRevoked: signIn},
		run: func(t *testing.T, w *offbWardend, c *offbCell) string {
			time.Sleep(offbRecheck + 200*time.Millisecond)
			r := c.b1.get(t, "/")
			if r.code == http.StatusOK {
				return "200 roles=" + offbHomeRoles(r.body)
			}
			return fmt.Sprintf("%d %s", r.code, r.location())
		},
	}}
}

func offbEvents(d *offbDir) []offbEvent {
	evs := []offbEvent{{
		name: "removed from group",
		kind: offbRemoved,
		apply: func(t *testing.T, w *offbWardend, c *offbCell) {
			d.removeFromGroup(t, c.user, d.groupA)
		},
	}, {
		// The admin path once more, for the admin group: then it is 403.
		name: "removed from admin group",
		kind: offbRemoved,
		only: "admin api change",
		apply: func(t *testing.T, w *offbWardend, c *offbCell) {
			d.removeFromGroup(t, c.user, d.groupAdm)
		},
	}, {
		name:  "deleted",
		kind:  offbGone,
		cause: "directory.deleted",
		apply: func(t *testing.T, w *offbWardend, c *offbCell) { d.deleteUser(t, c.user) },
	}, {
		name:  "disabled",
		kind:  offbGone,
		cause: d.cause,
		apply: func(t *testing.T, w *offbWardend, c *offbCell) { d.disableAccount(t, c.user) },
	}, {
		name:  "admin revoke-all",
		kind:  offbRevoked,
		cause: "admin",
		apply: func(t *testing.T, w *offbWardend, c *offbCell) {
			got := w.adminRevokeAll(t, c.user)
			want := map[string]int{"revoked": 4, "sessions": 2, "grants": 1, "device_codes": 1, "elevations": 0}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("revoke-all answered %v, want %v", got, want)
			}
		},
	}, {
		name:  "wardend users revoke",
		kind:  offbRevoked,
		cause: "operator",
		apply: func(t *testing.T, w *offbWardend, c *offbCell) {
			out := w.operatorRevoke(t, c.user)
			if want := "2 browser session(s), 1 CLI sign-in(s), 1 device code(s)"; !strings.Contains(out, "revoked "+c.user+" ") || !strings.Contains(out, want) {
				t.Errorf("wardend users revoke printed %q, want %q", out, want)
			}
		},
	}, {
		// The usual offboarding order: the account is deleted in the
		// directory first, then the operator ends what Warden gave out
		// (the command finds the user's ID by the name they signed in
		// with: the store's name index, the same on every directory, so
		// this row runs on OpenLDAP only). No path has looked the user up
		// in between.
		name:  "deleted, then wardend users revoke",
		kind:  offbRevoked,
		cause: "operator",
		gone:  true,
		apply: func(t *testing.T, w *offbWardend, c *offbCell) {
			d.deleteUser(t, c.user)
			out := w.operatorRevoke(t, c.user)
			if want := "2 browser session(s), 1 CLI sign-in(s), 1 device code(s)"; !strings.Contains(out, "revoked "+c.user+" ") || !strings.Contains(out, want) {
				t.Errorf("wardend users revoke printed %q, want %q", out, want)
			}
		},
	}}
	if d.kind != "openldap" {
		evs = evs[:len(evs)-1]
	}
	return evs
}

// offbParallel is how many cells run at once: they wait on the servers
// more than they compute.
const offbParallel = 4

func offbMatrix(t *testing.T, d *offbDir) {
	w := offbStart(t, d)
	t.Logf("wardend at %s; directory %s; disabled = %s", w.base, d.kind, d.disable)
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, offbParallel)
		mu    sync.Mutex
		table []string
	)
	for _, ev := range offbEvents(d) {
		for _, p := range offbPaths() {
			if ev.only != "" && ev.only != p.name {
				continue
			}
			want := p.want[ev.kind]
			if ev.only != "" {
				want = "403" // not an admin any more
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				var got string
				ok := t.Run(ev.name+"/"+p.name, func(t *testing.T) {
					got = offbRunCell(t, w, ev, p, want)
				})
				mu.Lock()
				table = append(table, fmt.Sprintf("%-36s %-28s %-5v %s", ev.name, p.name, ok, got))
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	t.Logf("%s: event / path / passed / outcome\n%s", d.kind, strings.Join(table, "\n"))
}

// offbRunCell runs one cell and returns the path's outcome.
func offbRunCell(t *testing.T, w *offbWardend, ev offbEvent, p offbPath, want string) string {
	d := w.dir
	c := &offbCell{user: d.addUser(t)}
	c.b1, c.b2 = w.browser(t), w.browser(t)
	if got := offbHomeRoles(c.b1.signIn(t, c.user, d.pw)); got != "OffbA,OffbB" {
		t.Fatalf("%s's home page lists roles %q, want OffbA,OffbB", c.user, got)
	}
	c.b2.signIn(t, c.user, d.pw)
	c.tok = w.cliLogin(t, c.b2)
	c.pending = w.approveDevice(t, c.b2)
	if p.prep != nil {
		p.prep(t, w, c)
	}

	ev.apply(t, w, c)
	got := p.run(t, w, c)
	if got != want {
		t.Errorf("%s after %q: %s, want %s", p.name, ev.name, got, want)
	}

	switch ev.kind {
	case offbRemoved:
		// Nothing is revoked: the other session, the CLI's tokens and the
		// approved device code all still work.
		if r := c.b2.get(t, "/"); r.code != http.StatusOK {
			t.Errorf("the other browser session: GET / = %d, want 200", r.code)
		}
		if code := w.userinfo(t, c.tok.AccessToken); code != http.StatusOK {
			t.Errorf("/oauth/userinfo with the CLI's access token: %d, want 200", code)
		}
		if code, tok := w.poll(t, c.pending); code != http.StatusOK {
			t.Errorf("poll of the approved device code: %s, want 200", offbOutcome(code, tok.Error))
		}
		if evs := w.revokeEvents(t, c.user); len(evs) != 0 {
			t.Errorf("access.revoke events after %q: %+v, want none", ev.name, evs)
		}
		return got

	case offbGone, offbRevoked:
		// The event (admin, operator) or the path's refusal (directory)
		// ended everything at once, with one audit event: the two browser
		// sessions, the CLI sign-in, the approved device code.
		offbOneRevokeEvent(t, w, c.user, ev.cause)
		// And none of it works any more.
		if r := c.b2.get(t, "/"); r.code != http.StatusSeeOther || r.location() != "/login" {
			t.Errorf("the other browser session: GET / = %d to %q, want 303 to /login", r.code, r.hdr.Get("Location"))
		}
		if code := w.userinfo(t, c.tok.AccessToken); code != http.StatusUnauthorized {
			t.Errorf("/oauth/userinfo with the access token from before: %d, want 401", code)
		}
		if got, _ := w.refresh(t, c.tok.RefreshToken); got != "400 invalid_grant" {
			t.Errorf("refresh with the refresh token from before: %s, want 400 invalid_grant", got)
		}
		if code, tok := w.poll(t, c.pending); offbOutcome(code, tok.Error) != "400 access_denied" {
			t.Errorf("poll of the device code approved before: %s, want 400 access_denied", offbOutcome(code, tok.Error))
		}
		// Still the one event: later refusals find nothing left to end.
		if evs := w.revokeEvents(t, c.user); len(evs) != 1 {
			t.Errorf("after the other paths were refused: %d access.revoke events for %s, want still 1: %+v", len(evs), c.user, evs)
		}
	}

	switch {
	case ev.gone:
		if !w.browser(t).signInRefused(t, c.user, d.pw) {
			t.Errorf("%s signed in again after %q", c.user, ev.name)
		}
	case ev.kind == offbRevoked:
		// The directory still lets the user in: they can sign in again.
		if got := offbHomeRoles(w.browser(t).signIn(t, c.user, d.pw)); got != "OffbA,OffbB" {
			t.Errorf("signed in again after %q: roles %q, want OffbA,OffbB", ev.name, got)
		}
	}
	return got
}

// offbOneRevokeEvent asserts that the audit log holds exactly one
// access.revoke event for user, with cause, that ended two browser
// sessions, one CLI sign-in and one approved device code.
func offbOneRevokeEvent(t *testing.T, w *offbWardend, user, cause string) {
	t.Helper()
	evs := w.revokeEvents(t, user)
	if len(evs) != 1 {
		t.Errorf("%d access.revoke events for %s, want exactly 1: %+v", len(evs), user, evs)
	}
	if len(evs) == 0 {
		return
	}
	e := evs[len(evs)-1] // the oldest
	det := e.Detail
	if det["cause"] != cause || e.Result != "success" || det["sessions"] != "2" || det["grants"] != "1" || det["devices"] != "1" {
		t.Errorf("access.revoke event: result %q, detail %v; want cause %s, sessions 2, grants 1, devices 1", e.Result, det, cause)
	}
	t.Logf("access.revoke: actor %q, detail %v", e.Actor, det)
}

// TestOffboardingConcurrentRefusals: a deleted user's CLI and browser
// keep going at once (several credential_process calls, a console click,
// a refresh). Every request is refused, everything is revoked, and the
// audit log holds one access.revoke event (internal/access: "many requests
// of a deleted user may find it gone at the same moment; the first ends
// everything and records it").
//
// Concurrent Access.Check calls of a gone user share one revocation, so
// one event holds everything that was ended.
func TestOffboardingConcurrentRefusals(t *testing.T) {
	offbLong(t)
	d := offbOpenLDAP(t)
	w := offbStart(t, d)
	const rounds, requests = 10, 8
	for round := range rounds {
		c := &offbCell{user: d.addUser(t)}
		c.b1, c.b2 = w.browser(t), w.browser(t)
		c.b1.signIn(t, c.user, d.pw)
		c.b2.signIn(t, c.user, d.pw)
		c.tok = w.cliLogin(t, c.b2)
		c.pending = w.approveDevice(t, c.b2)
		d.deleteUser(t, c.user)
		got := make([]string, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 4 {
				case 0:
					got[i] = "exchange saml " + w.exchange(t, c.tok.AccessToken, offbSAML2, offbRoleA)
				case 1:
					r := c.b1.post(t, "/aws/console", url.Values{"csrf_token": {c.b1.csrf}, "role": {offbRoleA}})
					got[i] = fmt.Sprintf("console %d %s", r.code, r.location())
				case 2:
					o, _ := w.refresh(t, c.tok.RefreshToken)
					got[i] = "refresh " + o
				case 3:
					got[i] = "exchange web identity " + w.exchange(t, c.tok.AccessToken, offbIDToken, offbRoleA)
				}
			}()
		}
		wg.Wait()
		for _, g := range got {
			if strings.HasSuffix(g, " 200") || strings.Contains(g, "200 ") {
				t.Errorf("round %d: a deleted user's request was served: %s", round, g)
			}
		}
		evs := w.revokeEvents(t, c.user)
		if len(evs) != 1 {
			var details []string
			for _, e := range evs {
				details = append(details, fmt.Sprint(e.Detail))
			}
			t.Errorf("round %d: %d access.revoke events, want 1:\n%s", round, len(evs), strings.Join(details, "\n"))
		}
	}
}
