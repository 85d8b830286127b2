package elevation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

const whTestSecret = "s3cr3t-webhook-key"

// whAudit records audit events and hands each to a channel.
type whAudit struct {
	mu     sync.Mutex
	events []audit.Event
	ch     chan audit.Event
}

func newWHAudit() *whAudit { return &whAudit{ch: make(chan audit.Event, 100)} }

func (a *whAudit) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	a.events = append(a.events, e)
	a.mu.Unlock()
	a.ch <- e
}

func (a *whAudit) all() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

func (a *whAudit) next(t *testing.T) audit.Event {
	t.Helper()
	select {
	case e := <-a.ch:
		return e
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("no audit event")
		return audit.Event{}
	}
}

// whSafeBuffer is a log sink safe for concurrent writes.
type whSafeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *whSafeBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *whSafeBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func whElevation() store.Elevation {
	created := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	return store.Elevation{
		ElevationRequest: store.ElevationRequest{
			ID:       "0123456789abcdef0123456789abcdef",
			UserID:   "u-1",
			Username: "alice",
			Roles:    []string{"arn:aws:iam::111122223333:role/Admin"},
			Seconds:  3600,
			Reason:   "INC-123 db failover",
			ClientIP: "127.0.0.1",
			Created:  created,
			Deadline: created.Add(time.Hour),
		},
		State:     store.ElevationApproved,
		Decider:   "bob",
		DecidedAt: created.Add(time.Minute),
		StartsAt:  created.Add(time.Minute),
		EndsAt:    created.Add(time.Minute + time.Hour),
	}
}

func whEvent(typ string) Event {
	return Event{
		Type:      typ,
		Elevation: whElevation(),
		Actor:     "bob",
		Time:      time.Date(2026, 5, 1, 9, 1, 0, 0, time.UTC),
		Link:      "https://warden.example.com/elevations/0123456789abcdef0123456789abcdef",
	}
}

type whHit struct {
	header http.Header
	body   []byte
}

// whServer answers with status(n) for the n-th request (from 1) and sends
// every request to the returned channel.
func whServer(t *testing.T, status func(n int) int) (*httptest.Server, chan whHit, *atomic.Int32) {
	t.Helper()
	hits := make(chan whHit, 100)
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := int(count.Add(1))
		hits <- whHit{header: r.Header.Clone(), body: body}
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	return srv, hits, &count
}

func whNotifier(t *testing.T, hooks []WebhookConfig, opts NotifierOptions) *Notifier {
	t.Helper()
	if opts.Backoff == nil {
		opts.Backoff = func(int) time.Duration { return 0 }
	}
	n, err := NewNotifier(hooks, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// whCounter reads warden_elevation_webhooks_total{result}.
func whCounter(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warden_elevation_webhooks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no warden_elevation_webhooks_total{result=%q}", result)
	return 0
}

func TestSignAndVerify(t *testing.T) {
	secret := []byte(whTestSecret)
	body := []byte(`{"type":"approved"}`)
	at := time.Unix(1_780_000_000, 0)
	sig := Sign(secret, at, body)
	if !strings.HasPrefix(sig, "t=1780000000,v1=") || len(sig) != len("t=1780000000,v1=")+64 {
		t.Fatalf("Sign = %q", sig)
	}
	if err := VerifySignature(secret, sig, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	// Another v1 (a rotated key) next to the right one.
	other := Sign([]byte("old key"), at, body)
	multi := sig + ",v1=" + strings.SplitN(other, "v1=", 2)[1]
	if err := VerifySignature(secret, multi, body, at, time.Minute); err != nil {
		t.Fatalf("one of two v1 matches: %v", err)
	}

	for name, tc := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		"replay (old timestamp)": {secret, sig, body, at.Add(6 * time.Minute), ErrSignatureExpired},
		"from the future":        {secret, sig, body, at.Add(-6 * time.Minute), ErrSignatureExpired},
		"modified body":          {secret, sig, []byte(`{"type":"denied"}`), at, ErrSignatureMismatch},
		"body with extra byte":   {secret, sig, append(append([]byte(nil), body...), ' '), at, ErrSignatureMismatch},
		"wrong secret":           {[]byte("other"), sig, body, at, ErrSignatureMismatch},
		"timestamp re-signed":    {secret, strings.Replace(sig, "t=1780000000", "t=1780000001", 1), body, at, ErrSignatureMismatch},
		"empty":                  {secret, "", body, at, ErrSignatureMalformed},
		"garbage":                {secret, "garbage", body, at, ErrSignatureMalformed},
		"no t":                   {secret, strings.SplitN(sig, ",", 2)[1], body, at, ErrSignatureMalformed},
		"no v1":                  {secret, "t=1780000000", body, at, ErrSignatureMalformed},
		"t not a number":         {secret, strings.Replace(sig, "t=1780000000", "t=abc", 1), body, at, ErrSignatureMalformed},
		"t signed":               {secret, strings.Replace(sig, "t=1780000000", "t=+1780000000", 1), body, at, ErrSignatureMalformed},
		"two t":                  {secret, "t=1780000000," + sig, body, at, ErrSignatureMalformed},
		"v1 not hex":             {secret, "t=1780000000,v1=zz", body, at, ErrSignatureMalformed},
		"v1 short":               {secret, "t=1780000000,v1=abcd", body, at, ErrSignatureMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			err := VerifySignature(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
	if err := VerifySignature(nil, sig, body, at, time.Minute); err == nil {
		t.Fatal("no secret: accepted")
	}
}

func TestNotifierSignedJSON(t *testing.T) {
	secret := []byte(whTestSecret)
	type check struct {
		err  error
		hit  whHit
		body map[string]any
	}
	got := make(chan check, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := check{hit: whHit{header: r.Header.Clone(), body: body}}
		c.err = VerifySignature(secret, r.Header.Get("X-Warden-Signature"), body, time.Now(), 5*time.Minute)
		if c.err == nil {
			c.err = json.Unmarshal(body, &c.body)
		}
		got <- c
		if c.err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	reg := prometheus.NewRegistry()
	aud := newWHAudit()
	n := whNotifier(t, []WebhookConfig{{URL: srv.URL + "/hook", Secret: "\n  " + whTestSecret + "\n"}},
		NotifierOptions{Audit: aud, Metrics: reg})
	ev := whEvent(EventApproved)
	n.Notify(ev)
	c := <-got
	if c.err != nil {
		t.Fatalf("receiver: %v (body %s)", c.err, c.hit.body)
	}
	h := c.hit.header
	for k, want := range map[string]string{
		"Content-Type":   "application/json",
		"User-Agent":     "Warden-Webhook/1",
		"X-Warden-Event": "approved",
	} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
	id, _ := c.body["id"].(string)
	if len(id) != 32 || h.Get("X-Warden-Delivery") != id {
		t.Errorf("id %q, X-Warden-Delivery %q", id, h.Get("X-Warden-Delivery"))
	}
	for k, want := range map[string]any{
		"type":  "approved",
		"time":  "2026-05-01T09:01:00Z",
		"actor": "bob",
		"link":  ev.Link,
	} {
		if c.body[k] != want {
			t.Errorf("body %s = %v, want %v", k, c.body[k], want)
		}
	}
	// The elevation is store.Elevation's own JSON.
	var el store.Elevation
	raw, _ := json.Marshal(c.body["elevation"])
	if err := json.Unmarshal(raw, &el); err != nil {
		t.Fatal(err)
	}
	want := ev.Elevation
	if el.ID != want.ID || el.Username != "alice" || el.Roles[0] != want.Roles[0] || el.Seconds != 3600 ||
		el.Reason != want.Reason || el.State != "approved" || !el.EndsAt.Equal(want.EndsAt) {
		t.Errorf("elevation = %+v", el)
	}
	if m := c.body["elevation"].(map[string]any); m["user_id"] != "u-1" || m["ends_at"] != "2026-05-01T10:01:00Z" {
		t.Errorf("elevation JSON = %v", m)
	}

	n.Close(context.Background())
	if v := whCounter(t, reg, WebhookDelivered); v != 1 {
		t.Errorf("delivered = %v", v)
	}
	if v := whCounter(t, reg, WebhookFailed) + whCounter(t, reg, WebhookDropped); v != 0 {
		t.Errorf("failed+dropped = %v", v)
	}
	if evs := aud.all(); len(evs) != 0 {
		t.Errorf("audit: %+v", evs)
	}
}

func TestNotifierHangingReceiver(t *testing.T) {
	release := make(chan struct{})
	hits := make(chan struct{}, 10)
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		count.Add(1)
		hits <- struct{}{}
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	reg := prometheus.NewRegistry()
	aud := newWHAudit()
	n := whNotifier(t, []WebhookConfig{{URL: srv.URL, Secret: whTestSecret, Timeout: 50 * time.Millisecond, Retries: 1}},
		NotifierOptions{Audit: aud, Metrics: reg})
	n.Notify(whEvent(EventRequested)) // returns while the receiver hangs
	<-hits                            // first attempt, hanging
	<-hits                            // it timed out and was tried again
	e := aud.next(t)
	if e.Action != "elevation.webhook" || e.Result != "failed" || e.Object != whElevation().ID || e.Actor != "warden" {
		t.Errorf("audit = %+v", e)
	}
	if !strings.Contains(e.Detail["error"], "timeout") || e.Detail["event"] != "requested" {
		t.Errorf("audit detail = %v", e.Detail)
	}
	n.Close(context.Background())
	if c := count.Load(); c != 2 {
		t.Errorf("attempts = %d, want 2", c)
	}
	if f, d := whCounter(t, reg, WebhookFailed), whCounter(t, reg, WebhookDelivered); f != 1 || d != 0 {
		t.Errorf("failed = %v, delivered = %v", f, d)
	}
}

func TestNotifierRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		statuses  []int
		retries   int
		attempts  int32
		delivered float64
		status    string // of the failure
	}{
		{"500 then 200", []int{500, 200}, 3, 2, 1, ""},
		{"429 then 503 then 202", []int{429, 503, 202}, 3, 3, 1, ""},
		{"400 not retried", []int{400, 200}, 3, 1, 0, "400"},
		{"404 not retried", []int{404, 200}, 3, 1, 0, "404"},
		{"redirect not followed", []int{302, 200}, 3, 1, 0, "302"},
		{"500 until retries run out", []int{500, 500, 500, 500}, 2, 3, 0, "500"},
		{"no retries", []int{503, 200}, -1, 1, 0, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits, count := whServer(t, func(n int) int {
				if n > len(tc.statuses) {
					return 200
				}
				return tc.statuses[n-1]
			})
			reg := prometheus.NewRegistry()
			aud := newWHAudit()
			var backoffs []int
			var mu sync.Mutex
			n := whNotifier(t, []WebhookConfig{{URL: srv.URL, Secret: whTestSecret, Retries: tc.retries}},
				NotifierOptions{Audit: aud, Metrics: reg, Backoff: func(a int) time.Duration {
					mu.Lock()
					backoffs = append(backoffs, a)
					mu.Unlock()
					return 0
				}})
			n.Notify(whEvent(EventApproved))
			n.Close(context.Background()) // delivers what is queued
			if c := count.Load(); c != tc.attempts {
				t.Errorf("attempts = %d, want %d", c, tc.attempts)
			}
			if d := whCounter(t, reg, WebhookDelivered); d != tc.delivered {
				t.Errorf("delivered = %v, want %v", d, tc.delivered)
			}
			if f := whCounter(t, reg, WebhookFailed); f != 1-tc.delivered {
				t.Errorf("failed = %v", f)
			}
			mu.Lock()
			if len(backoffs) != int(tc.attempts)-1 || (len(backoffs) > 0 && backoffs[0] != 0) {
				t.Errorf("backoff calls = %v", backoffs)
			}
			mu.Unlock()
			// Every attempt is the same delivery, signed afresh.
			close(hits)
			var id string
			for h := range hits {
				if id == "" {
					id = h.header.Get("X-Warden-Delivery")
				} else if h.header.Get("X-Warden-Delivery") != id {
					t.Errorf("delivery ID changed between attempts")
				}
				if err := VerifySignature([]byte(whTestSecret), h.header.Get("X-Warden-Signature"), h.body, time.Now(), time.Minute); err != nil {
					t.Errorf("attempt signature: %v", err)
				}
			}
			evs := aud.all()
			if tc.status == "" {
				if len(evs) != 0 {
					t.Errorf("audit: %+v", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Result != "failed" || evs[0].Detail["status"] != tc.status || evs[0].Object != whElevation().ID {
				t.Errorf("audit: %+v", evs)
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	for a, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := webhookDefaultBackoff(a); got != want {
			t.Errorf("backoff(%d) = %v, want %v", a, got, want)
		}
	}
	if got := webhookDefaultBackoff(30); got != time.Minute {
		t.Errorf("backoff(30) = %v", got)
	}
}

func TestNotifierQueueFull(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	defer srv.Close()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock() // before srv.Close, even when the test fails early

	reg := prometheus.NewRegistry()
	aud := newWHAudit()
	n := whNotifier(t, []WebhookConfig{{URL: srv.URL, Secret: whTestSecret, Timeout: time.Minute}},
		NotifierOptions{Audit: aud, Metrics: reg, QueueSize: 1})
	ev := whEvent(EventRequested)
	// Occupy the webhook's worker (the queue holds one more).
	n.Notify(ev)
	<-started
	n.Notify(ev) // waits in the queue
	ev.Elevation.ID = "ffffffffffffffffffffffffffffffff"
	n.Notify(ev) // queue full: dropped, and Notify did not block
	e := aud.next(t)
	if e.Action != "elevation.webhook" || e.Result != "dropped" || e.Object != ev.Elevation.ID || e.Detail["error"] != "queue full" {
		t.Errorf("audit = %+v", e)
	}
	if d := whCounter(t, reg, WebhookDropped); d != 1 {
		t.Errorf("dropped = %v", d)
	}
	unblock()
	n.Close(context.Background())
	if d, dr := whCounter(t, reg, WebhookDelivered), whCounter(t, reg, WebhookDropped); d != 2 || dr != 1 {
		t.Errorf("delivered = %v, dropped = %v", d, dr)
	}
	n.Notify(ev) // after Close: dropped, not a panic
	if dr := whCounter(t, reg, WebhookDropped); dr != 2 {
		t.Errorf("dropped after close = %v", dr)
	}
	if e := aud.next(t); e.Result != "dropped" || e.Detail["error"] != "notifier closed" {
		t.Errorf("audit = %+v", e)
	}
}

func TestNotifierCloseGivesUp(t *testing.T) {
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		started <- struct{}{}
		select { // hang until the client goes away
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	reg := prometheus.NewRegistry()
	aud := newWHAudit()
	n := whNotifier(t, []WebhookConfig{{URL: srv.URL, Secret: whTestSecret, Timeout: time.Minute}},
		NotifierOptions{Audit: aud, Metrics: reg})
	for range 4 {
		n.Notify(whEvent(EventEnded))
	}
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(ctx) // gives up at once: the one in flight and the three queued are dropped
	if d, f, dl := whCounter(t, reg, WebhookDropped), whCounter(t, reg, WebhookFailed), whCounter(t, reg, WebhookDelivered); d != 4 || f != 0 || dl != 0 {
		t.Errorf("dropped = %v, failed = %v, delivered = %v", d, f, dl)
	}
	for _, e := range aud.all() {
		if e.Result != "dropped" || !strings.Contains(e.Detail["error"], "shut down") {
			t.Errorf("audit = %+v", e)
		}
	}
	n.Close(context.Background()) // again: fine
}

func TestNotifierSlack(t *testing.T) {
	srv, hits, _ := whServer(t, func(int) int { return 200 })
	n := whNotifier(t, []WebhookConfig{
		{URL: srv.URL + "/services/T0/B0/XXXX", Format: "slack"},
		{URL: srv.URL + "/signed", Format: "slack", Secret: whTestSecret, Events: []string{"approved"}},
	}, NotifierOptions{})
	ev := whEvent(EventApproved)
	ev.Elevation.Roles = append(ev.Elevation.Roles, "arn:aws:iam::444455556666:role/ops/Admin")
	ev.Elevation.Seconds = 5400
	ev.Elevation.Reason = "INC-9 <!channel> & <https://evil.example|click>\nsecond line"
	n.Notify(ev)
	n.Close(context.Background())
	close(hits)
	var signed, unsigned int
	for h := range hits {
		var payload map[string]string
		if err := json.Unmarshal(h.body, &payload); err != nil {
			t.Fatalf("body %s: %v", h.body, err)
		}
		if len(payload) != 1 {
			t.Errorf("payload keys: %v", payload)
		}
		text := payload["text"]
		for _, want := range []string{
			"alice", "bob", "approved", "Admin (111122223333), Admin (444455556666)", "for 1h30m",
			"INC-9 &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; second line",
			"until 2026-05-01 10:01 UTC",
			"<" + ev.Link + "|Open request>",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("text %q lacks %q", text, want)
			}
		}
		if strings.Contains(text, "\n") || strings.Contains(text, "<!channel>") {
			t.Errorf("text %q: not one safe line", text)
		}
		if sig := h.header.Get("X-Warden-Signature"); sig != "" {
			signed++
			if err := VerifySignature([]byte(whTestSecret), sig, h.body, time.Now(), time.Minute); err != nil {
				t.Errorf("slack signature: %v", err)
			}
		} else {
			unsigned++
		}
		if h.header.Get("X-Warden-Event") != "approved" {
			t.Errorf("X-Warden-Event = %q", h.header.Get("X-Warden-Event"))
		}
	}
	if signed != 1 || unsigned != 1 {
		t.Errorf("signed %d, unsigned %d", signed, unsigned)
	}
}

func TestSlackText(t *testing.T) {
	ev := whEvent(EventRequested)
	ev.Actor = "alice"
	ev.Elevation.State = store.ElevationPending
	ev.Elevation.Seconds = 90
	ev.Link = ""
	got := slackText(ev)
	want := `Warden elevation requested: alice requested Admin (111122223333) for 1m30s, reason "INC-123 db failover"; state pending.`
	if got != want {
		t.Errorf("slackText =\n%s\nwant\n%s", got, want)
	}
	ev = whEvent(EventExpired)
	ev.Elevation.State = store.ElevationExpired
	if got := slackText(ev); !strings.HasPrefix(got, "Warden elevation expired undecided: alice requested") || !strings.Contains(got, "state expired.") {
		t.Errorf("slackText = %s", got)
	}
	for s, want := range map[int]string{3600: "1h", 5400: "1h30m", 2700: "45m", 3661: "1h1m1s", 0: "0s"} {
		if got := webhookDuration(s); got != want {
			t.Errorf("webhookDuration(%d) = %q, want %q", s, got, want)
		}
	}
}

func TestNotifierEventsFilter(t *testing.T) {
	srv, hits, _ := whServer(t, func(int) int { return 200 })
	secret := whTestSecret
	n := whNotifier(t, []WebhookConfig{
		{URL: srv.URL + "/decisions", Secret: secret, Events: []string{EventApproved, EventDenied}},
		{URL: srv.URL + "/all", Secret: secret},
	}, NotifierOptions{})
	for _, typ := range []string{EventRequested, EventApproved, EventDenied, EventExpired, EventEnded, "bogus"} {
		n.Notify(whEvent(typ))
	}
	n.Close(context.Background())
	close(hits)
	got := map[string][]string{}
	for h := range hits {
		var body struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(h.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != h.header.Get("X-Warden-Event") {
			t.Errorf("type %q, header %q", body.Type, h.header.Get("X-Warden-Event"))
		}
		got[body.Type] = append(got[body.Type], body.Type)
	}
	want := map[string]int{"requested": 1, "approved": 2, "denied": 2, "expired": 1, "ended": 1}
	for typ, c := range want {
		if len(got[typ]) != c {
			t.Errorf("%s: %d deliveries, want %d", typ, len(got[typ]), c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("types delivered: %v", got)
	}
}

func TestNotifierNeverLeaksSecrets(t *testing.T) {
	srv, _, _ := whServer(t, func(int) int { return 500 })
	logs := &whSafeBuffer{}
	aud := newWHAudit()
	n := whNotifier(t, []WebhookConfig{{URL: srv.URL + "/hooks/path-token?token=query-token", Secret: whTestSecret, Retries: 1}},
		NotifierOptions{Audit: aud, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	n.Notify(whEvent(EventDenied))
	n.Close(context.Background())
	// A network error too: the client's error names the URL.
	n2 := whNotifier(t, []WebhookConfig{{URL: "http://127.0.0.1:1/hooks/path-token?token=query-token", Secret: whTestSecret, Retries: -1}},
		NotifierOptions{Audit: aud, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	n2.Notify(whEvent(EventDenied))
	n2.Close(context.Background())

	evs := aud.all()
	if len(evs) != 2 {
		t.Fatalf("audit: %+v", evs)
	}
	var all strings.Builder
	all.WriteString(logs.String())
	for _, e := range evs {
		b, _ := json.Marshal(e)
		all.Write(b)
		if e.Detail["host"] == "" || strings.ContainsAny(e.Detail["host"], "/?") {
			t.Errorf("host detail = %q", e.Detail["host"])
		}
	}
	for _, secret := range []string{whTestSecret, "path-token", "query-token", "INC-123"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("logs or audit contain %q:\n%s", secret, all.String())
		}
	}
	if !strings.Contains(logs.String(), "status=500") || evs[1].Detail["error"] == "" {
		t.Errorf("logs:\n%s\naudit: %+v", logs.String(), evs)
	}
}

func TestNotifierNil(t *testing.T) {
	var n *Notifier
	n.Notify(whEvent(EventApproved))
	n.Close(context.Background())
	empty, err := NewNotifier(nil, NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	empty.Notify(whEvent(EventApproved))
	empty.Close(context.Background())
}

func TestNotifierSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	hooks := []WebhookConfig{{URL: "https://hooks.example.com/x", Format: "slack"}}
	a, err := NewNotifier(hooks, NotifierOptions{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	b, err := NewNotifier(hooks, NotifierOptions{Metrics: reg}) // a reload
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
}

func TestWebhookConfigValidate(t *testing.T) {
	secret := "/etc/warden/hook.key"
	for _, ok := range []WebhookConfig{
		{URL: "https://hooks.example.com/warden", Secret: secret},
		{URL: "http://10.0.0.1:8080/x", Secret: secret, Format: "json", Events: []string{"approved", "denied"}, Timeout: time.Second, Retries: -1},
		{URL: "https://hooks.slack.com/services/T0/B0/XXXX", Format: "slack"},
		{URL: "https://hooks.example.com/warden", Secret: secret, Retries: 10, Timeout: time.Minute},
	} {
		if err := ok.Validate("elevation.webhooks[0]"); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
		ok.SetDefaults()
		if err := ok.Validate("elevation.webhooks[0]"); err != nil {
			t.Errorf("after defaults %+v: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		cfg  WebhookConfig
		want []string
	}{
		{WebhookConfig{Secret: secret}, []string{"elevation.webhooks[2].url: required"}},
		{WebhookConfig{URL: "ftp://example.com/x", Secret: secret}, []string{"elevation.webhooks[2].url: must be an http or https URL"}},
		{WebhookConfig{URL: "https:///x", Secret: secret}, []string{"elevation.webhooks[2].url: must name a host"}},
		{WebhookConfig{URL: "https://exa mple.com/%zz?token=topsecret", Secret: secret}, []string{"elevation.webhooks[2].url: not a valid URL"}},
		{WebhookConfig{URL: "https://example.com"}, []string{"elevation.webhooks[2].secret: required"}},
		{WebhookConfig{URL: "https://example.com", Format: "xml"}, []string{`elevation.webhooks[2].format: "xml" is not one of json, slack`}},
		{WebhookConfig{URL: "https://example.com", Secret: secret, Events: []string{"approved", "granted", "approved"}},
			[]string{`elevation.webhooks[2].events[1]: "granted" is not one of`, `elevation.webhooks[2].events[2]: "approved" is listed twice`}},
		{WebhookConfig{URL: "https://example.com", Secret: secret, Timeout: -time.Second}, []string{"elevation.webhooks[2].timeout: must be between"}},
		{WebhookConfig{URL: "https://example.com", Secret: secret, Timeout: 2 * time.Minute}, []string{"elevation.webhooks[2].timeout: must be between"}},
		{WebhookConfig{URL: "https://example.com", Secret: secret, Retries: 11}, []string{"elevation.webhooks[2].retries: must be between"}},
		{WebhookConfig{URL: "https://example.com", Secret: secret, Retries: -2}, []string{"elevation.webhooks[2].retries: must be between"}},
		{WebhookConfig{Format: "xml", Retries: 99}, []string{".url: required", ".format:", ".retries:"}},
	} {
		err := tc.cfg.Validate("elevation.webhooks[2]")
		if err == nil {
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q lacks %q", tc.cfg, err, w)
			}
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("message quotes the URL: %v", err)
		}
	}
	if err := (WebhookConfig{}).Validate(""); err == nil || !strings.HasPrefix(err.Error(), "url: required") {
		t.Errorf("no path: %v", err)
	}
}

func TestSetDefaults(t *testing.T) {
	var w WebhookConfig
	w.SetDefaults()
	if w.Format != "json" || w.Timeout != 5*time.Second || w.Retries != 3 {
		t.Errorf("defaults: %+v", w)
	}
	w = WebhookConfig{Retries: -1}
	w.SetDefaults()
	if w.Retries != -1 {
		t.Errorf("retries -1 became %d", w.Retries)
	}
}

func TestNewNotifierErrors(t *testing.T) {
	_, err := NewNotifier([]WebhookConfig{
		{URL: "https://ok.example.com", Secret: whTestSecret},
		{URL: "https://a.example.com"},
		{URL: "https://b.example.com", Secret: " \n"},
		{URL: "gopher://d.example.com", Secret: whTestSecret},
	}, NotifierOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"elevation.webhooks[1].secret: required for format json",
		"elevation.webhooks[2].secret: required for format json",
		"elevation.webhooks[3].url: must be an http or https URL",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "elevation.webhooks[0]") || strings.Contains(err.Error(), whTestSecret) {
		t.Errorf("the good webhook is blamed, or a secret is shown: %v", err)
	}
}

// A receiver that hangs delays only its own deliveries: another webhook's
// arrive, in order.
func TestNotifierHungReceiverDelaysOnlyItself(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	srv, hits, _ := whServer(t, func(int) int { return 200 })
	n := whNotifier(t, []WebhookConfig{
		{URL: hung.URL, Secret: whTestSecret, Timeout: time.Minute, Retries: -1},
		{URL: srv.URL, Secret: whTestSecret},
	}, NotifierOptions{})
	for _, typ := range []string{EventRequested, EventApproved, EventEnded} {
		n.Notify(whEvent(typ))
	}
	for _, want := range []string{EventRequested, EventApproved, EventEnded} {
		h := <-hits
		var body struct{ Type string }
		if err := json.Unmarshal(h.body, &body); err != nil || body.Type != want {
			t.Fatalf("delivery %s (%v), want %s", h.body, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(ctx)
}
