package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/audit"
)

// DefaultAuditMaxLen is how many events the audit stream keeps by default.
const DefaultAuditMaxLen = 100_000

const (
	// maxAuditChange bounds Before and After of an event kept in the
	// stream (longer values are clipped with a visible marker).
	maxAuditChange = 64 << 10
	// auditPage is how many entries Query reads from Redis at a time;
	// auditScanBudget how many it examines at most in one call before it
	// returns what it found with a cursor to continue.
	auditPage       = 500
	auditScanBudget = 20_000
	// Query's Limit: default and maximum.
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

// AuditStream keeps audit events in the Redis stream prefix+"audit", for
// the admin UI's audit log. Each entry has one field, "e", holding the
// event's JSON (audit.Event); its stream ID is the Redis server's time in
// milliseconds when the event was stored. The stream is capped at about
// maxLen entries (XADD MAXLEN ~: Redis trims whole nodes, so slightly more
// may remain); the oldest go first. It is durable data: run Redis with AOF.
//
// AuditStream implements audit.Logger. Record never fails its caller: when
// Redis is unavailable the event is not stored here, and a warning (without
// the event's content) goes to the store's log. Wire it behind the slog
// logger with audit.Multi(slogLogger, stream), so that every event is in
// the log whatever happens to Redis.
type AuditStream struct {
	store  *Store
	key    string
	maxLen int64
	now    func() time.Time

	// Background mode (Background): Record queues, one writer appends in
	// batches. mu orders Record's non-blocking sends against stop.
	mu       sync.RWMutex
	queue    chan auditEntry // nil: Record writes itself
	flushReq chan chan struct{}
	stopReq  chan struct{}
}

// auditEntry is one encoded event waiting for the writer.
type auditEntry struct{ val, action, requestID string }

// auditQueueLen bounds the events waiting in background mode; when it is
// full, Record writes the event itself (nothing is dropped). auditBatch is
// how many events the writer appends in one pipeline.
const (
	auditQueueLen = 4096
	auditBatch    = 128
)

// NewAuditStream returns the stream; maxLen <= 0 means DefaultAuditMaxLen.
func NewAuditStream(st *Store, maxLen int64) *AuditStream {
	if maxLen <= 0 {
		maxLen = DefaultAuditMaxLen
	}
	return &AuditStream{store: st, key: st.Key("audit"), maxLen: maxLen, now: time.Now}
}

var _ audit.Logger = (*AuditStream)(nil)

// Record appends e to the stream (a zero Time becomes now). It is
// recorded even when ctx is cancelled (the request ended), within the
// store's operation timeout.
func (a *AuditStream) Record(ctx context.Context, e audit.Event) {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	e.Time = e.Time.UTC()
	e.Before = audit.Clip(e.Before, maxAuditChange)
	e.After = audit.Clip(e.After, maxAuditChange)
	val, err := json.Marshal(e)
	if err != nil { // cannot happen for strings and a map of strings
		a.store.logger.WarnContext(ctx, "audit stream: encode event", "action", e.Action, "err", err)
		return
	}
	entry := auditEntry{val: string(val), action: e.Action, requestID: e.RequestID}
	a.mu.RLock()
	queued := false
	if a.queue != nil {
		select {
		case a.queue <- entry:
			queued = true
		default: // full: write it here
		}
	}
	a.mu.RUnlock()
	if !queued {
		a.write(context.WithoutCancel(ctx), []auditEntry{entry})
	}
}

// write appends entries to the stream in one pipeline; failures are
// logged (the events are in the audit log).
func (a *AuditStream) write(ctx context.Context, entries []auditEntry) {
	ctx, cancel := a.store.op(ctx)
	defer cancel()
	pipe := a.store.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: a.key, MaxLen: a.maxLen, Approx: true, ID: "*", Values: []string{"e", e.val},
		})
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			a.store.logger.WarnContext(ctx, "audit stream: event not stored in redis (it is in the audit log)",
				"action", entries[i].action, "request_id", entries[i].requestID, "err", err)
		}
	}
}

// Background makes Record queue events for one writer goroutine, which
// appends them in batches (one Redis round trip for many events, none on
// the request's path). Query first waits for what was queued before it, so
// that a reader on this replica sees every event recorded before its query.
// Events are in the audit log synchronously whatever happens here; a full
// queue makes Record write the event itself. stop writes what is queued
// and returns to synchronous writes; call it before closing the store.
func (a *AuditStream) Background() (stop func()) {
	a.mu.Lock()
	if a.queue != nil {
		a.mu.Unlock()
		return func() {}
	}
	q, flush, quit := make(chan auditEntry, auditQueueLen), make(chan chan struct{}), make(chan struct{})
	a.queue, a.flushReq, a.stopReq = q, flush, quit
	a.mu.Unlock()
	done := make(chan struct{})
	go a.writer(q, flush, quit, done)
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.queue, a.flushReq, a.stopReq = nil, nil, nil // no Record sends to q from now on
			a.mu.Unlock()
			close(quit)
			<-done
		})
	}
}

func (a *AuditStream) writer(q chan auditEntry, flush chan chan struct{}, quit, done chan struct{}) {
	defer close(done)
	ctx := context.Background()
	batch := make([]auditEntry, 0, auditBatch)
	// writeQueued writes batch plus what is queued, auditBatch at a time,
	// until the queue is empty.
	writeQueued := func() {
		for {
		fill:
			for len(batch) < auditBatch {
				select {
				case e := <-q:
					batch = append(batch, e)
				default:
					break fill
				}
			}
			if len(batch) == 0 {
				return
			}
			full := len(batch) == auditBatch
			a.write(ctx, batch)
			batch = batch[:0]
			if !full {
				return
			}
		}
	}
	for {
		select {
		case e := <-q:
			batch = append(batch, e)
			writeQueued()
		case ch := <-flush:
			writeQueued()
			close(ch)
		case <-quit:
			writeQueued()
			return
		}
	}
}

// flush waits until the events queued before it are written (background
// mode), or ctx ends.
func (a *AuditStream) flush(ctx context.Context) {
	a.mu.RLock()
	req, quit := a.flushReq, a.stopReq
	a.mu.RUnlock()
	if req == nil {
		return
	}
	ch := make(chan struct{})
	select {
	case req <- ch:
	case <-quit:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// AuditQuery selects events. Actor, Object and Action match exactly but
// case-insensitively ("" matches all). Since and Until (inclusive, to the
// millisecond; zero: unbounded) select by the time Redis stored the event
// (its stream ID), which for live events is within milliseconds of
// Event.Time. Limit is 1..1000 (0: 100). Cursor is "" for the newest
// events, or the cursor a previous Query returned, to continue with older
// events.
type AuditQuery struct {
	Actor, Object, Action string
	Since, Until          time.Time
	Limit                 int
	Cursor                string
}

var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// ErrBadQuery means an AuditQuery cannot be run (a malformed cursor, Until
// before Since); the error text says why and may be shown to the user.
var ErrBadQuery = errors.New("bad audit query")

// Query returns matching events, newest first, and the cursor of the next
// (older) page: "" when there are no older entries to examine. To bound
// the work of one call, Query examines at most 20,000 entries: a query
// whose filters match rarely may return fewer than Limit events with a
// non-empty cursor; continue with it to search further.
func (a *AuditStream) Query(ctx context.Context, q AuditQuery) ([]audit.Event, string, error) {
	a.flush(ctx)
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = auditDefaultLimit
	case limit > auditMaxLimit:
		limit = auditMaxLimit
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return nil, "", fmt.Errorf("store: audit query: until is before since: %w", ErrBadQuery)
	}
	// XREVRANGE end start: an ID without sequence means ms-0 as start and
	// ms-<max> as end, so both bounds include their whole millisecond.
	start, end := "-", "+"
	if !q.Since.IsZero() {
		start = strconv.FormatInt(max(q.Since.UnixMilli(), 0), 10)
	}
	if !q.Until.IsZero() {
		if q.Until.UnixMilli() < 0 {
			return nil, "", nil
		}
		end = strconv.FormatInt(q.Until.UnixMilli(), 10)
	}
	if q.Cursor != "" {
		ms, seq, ok := parseStreamID(q.Cursor)
		if !ok {
			return nil, "", fmt.Errorf("store: audit query: malformed cursor: %w", ErrBadQuery)
		}
		if ms == 0 && seq == 0 {
			return nil, "", nil // nothing is before the first possible ID
		}
		if q.Until.IsZero() || ms <= uint64(q.Until.UnixMilli()) {
			end = "(" + q.Cursor
		}
	}
	ctx, cancel := a.store.op(ctx)
	defer cancel()
	var out []audit.Event
	examined := 0
	for {
		msgs, err := a.store.client.XRevRangeN(ctx, a.key, end, start, auditPage).Result()
		if err != nil {
			return nil, "", Unavailable("store: audit query", err)
		}
		for _, m := range msgs {
			examined++
			e, ok := a.decode(ctx, m)
			if ok && match(e, q) {
				out = append(out, e)
				if len(out) == limit {
					return out, m.ID, nil
				}
			}
			if examined >= auditScanBudget {
				return out, m.ID, nil
			}
		}
		if len(msgs) < auditPage {
			return out, "", nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
}

// parseStreamID parses a stream ID "<ms>-<seq>" (two uint64s).
func parseStreamID(id string) (ms, seq uint64, ok bool) {
	if !streamID.MatchString(id) {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func (a *AuditStream) decode(ctx context.Context, m redis.XMessage) (audit.Event, bool) {
	raw, _ := m.Values["e"].(string)
	var e audit.Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		a.store.logger.WarnContext(ctx, "audit stream: undecodable entry skipped", "id", m.ID, "err", err)
		return audit.Event{}, false
	}
	return e, true
}

func match(e audit.Event, q AuditQuery) bool {
	return (q.Actor == "" || strings.EqualFold(e.Actor, q.Actor)) &&
		(q.Object == "" || strings.EqualFold(e.Object, q.Object)) &&
		(q.Action == "" || strings.EqualFold(e.Action, q.Action))
}
