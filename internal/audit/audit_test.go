package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestSlogLogger(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		ev   Event
		want map[string]any
	}{
		{
			name: "zero time uses clock, detail grouped",
			ev: Event{Actor: "alice", Action: "login", Result: "success", ClientIP: "192.0.2.1",
				RequestID: "r1", Object: "sess", Detail: map[string]string{"b": "2", "a": "1"}},
			want: map[string]any{"msg": "audit", "audit_time": "2025-01-02T03:04:05Z", "actor": "alice",
				"action": "login", "result": "success", "client_ip": "192.0.2.1", "request_id": "r1",
				"object": "sess", "detail": map[string]any{"a": "1", "b": "2"}},
		},
		{
			name: "explicit time, empty optional fields omitted",
			ev:   Event{Time: now.Add(time.Hour), Actor: "anonymous", Action: "csrf.reject", Result: "rejected"},
			want: map[string]any{"msg": "audit", "audit_time": "2025-01-02T04:04:05Z", "actor": "anonymous",
				"action": "csrf.reject", "result": "rejected"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
						return slog.Attr{}
					}
					return a
				}}))
			NewSlog(log, fixedClock(now)).Record(context.Background(), tc.ev)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("log line is not JSON: %v: %s", err, buf.Bytes())
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if !bytes.Equal(gj, wj) {
				t.Errorf("got %s\nwant %s", gj, wj)
			}
		})
	}
	var _ Logger = Discard{}
}

// recorder keeps the events it is given.
type recorder struct{ got []Event }

func (r *recorder) Record(_ context.Context, e Event) { r.got = append(r.got, e) }

func TestMulti(t *testing.T) {
	a, b, c := &recorder{}, &recorder{}, &recorder{}
	m := Multi(a, nil, Multi(b, c), Discard{})
	ev := Event{Actor: "alice", Action: "rules.save", Result: "success", Before: "x: 1", After: "x: 2"}
	m.Record(context.Background(), ev)
	m.Record(context.Background(), Event{Actor: "bob"})
	for name, r := range map[string]*recorder{"a": a, "b": b, "c": c} {
		if len(r.got) != 2 || r.got[0].Actor != "alice" || r.got[0].After != "x: 2" || r.got[1].Actor != "bob" {
			t.Errorf("%s got %+v", name, r.got)
		}
	}
	Multi().Record(context.Background(), ev) // no loggers: no-op
}

func TestSlogBeforeAfter(t *testing.T) {
	long := strings.Repeat("é", MaxLoggedChange) // 2 bytes a rune
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	NewSlog(log, nil).Record(context.Background(), Event{Actor: "alice", Action: "rule.update", Result: "success",
		Before: `{"id":"r1"}`, After: long})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["before"] != `{"id":"r1"}` {
		t.Errorf("before = %v", got["before"])
	}
	after, _ := got["after"].(string)
	want := strings.Repeat("é", MaxLoggedChange/2) + "…[truncated, " + strconv.Itoa(len(long)) + " bytes]"
	if after != want {
		t.Errorf("after has %d bytes, want the clipped %d", len(after), len(want))
	}
	if _, ok := got["audit_time"]; !ok {
		t.Error("nil clock: no audit_time")
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…[truncated, 4 bytes]"},
		{"aé", 2, "a…[truncated, 3 bytes]"}, // never cuts a rune in half
		{"", 0, ""},
	}
	for _, tc := range tests {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestEventJSON(t *testing.T) {
	ev := Event{Time: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), Actor: "alice", Action: "login", Result: "success",
		Detail: map[string]string{"k": "v"}}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2030-01-02T03:04:05.000000006Z","actor":"alice","action":"login","result":"success","detail":{"k":"v"}}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}
