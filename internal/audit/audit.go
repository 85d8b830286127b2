// Package audit records who did what to which object, from where, and with
// what result. Events are facts for operators and auditors: they never carry
// secrets (passwords, session tokens, cookie values, CSRF tokens, keys).
//
// Loggers: SlogLogger writes events to a log/slog logger, store.AuditStream
// (package store) to a Redis stream that the admin UI queries, and Multi
// sends each event to several of them.
package audit

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one audited action.
//
// The JSON form (field names in snake case, empty fields omitted) is how
// store.AuditStream keeps an event.
type Event struct {
	// Time is when the action happened; the zero time means "now" to a Logger.
	Time time.Time `json:"time"`
	// Actor is who acted: the canonical username after sign-in, the name as
	// typed for a failed sign-in, "anonymous" when nobody is known.
	Actor string `json:"actor"`
	// Action is a dotted verb: "login", "logout", "csrf.reject".
	Action string `json:"action"`
	// Object is what the action was about (a session key, a rule ID); may be empty.
	Object string `json:"object,omitempty"`
	// Result is a short outcome: "success", "invalid_credentials", "locked", ...
	Result    string `json:"result"`
	ClientIP  string `json:"client_ip,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Detail holds extra non-secret facts.
	Detail map[string]string `json:"detail,omitempty"`
	// Before and After are, for a change an admin made, the changed object
	// as it was and as it became (JSON or YAML; empty for a creation or a
	// deletion respectively). Keep them to the one object changed (a rule,
	// an account), not a whole rule set: rule-set versions carry their own
	// diff. The slog logger writes at most MaxLoggedChange bytes of each.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// MaxLoggedChange bounds Before and After in a SlogLogger's line; a longer
// value is cut there and marked with its full length, never silently.
const MaxLoggedChange = 4096

// Clip returns s if it has at most n bytes, else its first n bytes (cut at
// a UTF-8 boundary) followed by "…[truncated, <len> bytes]".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated, " + strconv.Itoa(len(s)) + " bytes]"
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

// Record implements Logger. Nothing is formatted for a log that drops
// Info records.
func (l *SlogLogger) Record(ctx context.Context, e Event) {
	if !l.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
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
	if e.Before != "" {
		attrs = append(attrs, slog.String("before", Clip(e.Before, MaxLoggedChange)))
	}
	if e.After != "" {
		attrs = append(attrs, slog.String("after", Clip(e.After, MaxLoggedChange)))
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

// Multi returns a Logger that records each event with every one of
// loggers, in order (nil loggers are skipped). Since a Logger never fails
// its caller, one that cannot store an event does not keep the others from
// recording it: wire the slog logger first and the Redis stream second,
// and an event recorded while Redis is down is still in the log.
func Multi(loggers ...Logger) Logger {
	var m multi
	for _, l := range loggers {
		switch l := l.(type) {
		case nil:
		case multi:
			m = append(m, l...)
		default:
			m = append(m, l)
		}
	}
	return m
}

type multi []Logger

func (m multi) Record(ctx context.Context, e Event) {
	for _, l := range m {
		l.Record(ctx, e)
	}
}
