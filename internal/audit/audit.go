// Package audit records who did what to which object, from where, and with
// what result. Events are facts for operators and auditors: they never carry
// secrets (passwords, session tokens, cookie values, CSRF tokens, keys).
//
// This step writes events to a log/slog logger; a later step adds a Redis
// stream behind the same Logger interface.
package audit

import (
	"context"
	"log/slog"
	"sort"
	"time"
)

// Event is one audited action.
type Event struct {
	// Time is when the action happened; the zero time means "now" to a Logger.
	Time time.Time
	// Actor is who acted: the canonical username after sign-in, the name as
	// typed for a failed sign-in, "anonymous" when nobody is known.
	Actor string
	// Action is a dotted verb: "login", "logout", "csrf.reject".
	Action string
	// Object is what the action was about (a session key, a rule ID); may be empty.
	Object string
	// Result is a short outcome: "success", "invalid_credentials", "locked", ...
	Result    string
	ClientIP  string
	RequestID string
	// Detail holds extra non-secret facts.
	Detail map[string]string
}

// Logger records events. Record must not block for long and must not fail the
// caller: an implementation that cannot store an event reports that itself.
type Logger interface {
	Record(ctx context.Context, e Event)
}

// Clock gives the time for events recorded with a zero Time.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SlogLogger writes each event as one log line with the message "audit".
type SlogLogger struct {
	log   *slog.Logger
	clock Clock
}

// NewSlog returns a Logger that writes to log. A nil clock means the system clock.
func NewSlog(log *slog.Logger, clock Clock) *SlogLogger {
	if clock == nil {
		clock = systemClock{}
	}
	return &SlogLogger{log: log, clock: clock}
}

// Record implements Logger.
func (l *SlogLogger) Record(ctx context.Context, e Event) {
	t := e.Time
	if t.IsZero() {
		t = l.clock.Now()
	}
	attrs := []slog.Attr{
		slog.String("audit_time", t.UTC().Format(time.RFC3339Nano)),
		slog.String("actor", e.Actor),
		slog.String("action", e.Action),
		slog.String("result", e.Result),
	}
	if e.Object != "" {
		attrs = append(attrs, slog.String("object", e.Object))
	}
	if e.ClientIP != "" {
		attrs = append(attrs, slog.String("client_ip", e.ClientIP))
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	if len(e.Detail) > 0 {
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := make([]any, 0, len(keys))
		for _, k := range keys {
			d = append(d, slog.String(k, e.Detail[k]))
		}
		attrs = append(attrs, slog.Group("detail", d...))
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// Discard is a Logger that drops every event (tests, tools).
type Discard struct{}

// Record implements Logger.
func (Discard) Record(context.Context, Event) {}
