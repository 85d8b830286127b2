package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
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
