package elevation

// Webhook notifications of elevation events (requested, approved, denied,
// expired, ended).
//
// Each configured webhook receives a POST per matching event, in the
// background: Notify only enqueues, a small pool of workers delivers. A
// delivery is an HTTP POST of a JSON body (or a Slack incoming-webhook
// payload {"text": ...}) with these headers:
//
//	Content-Type:        application/json
//	User-Agent:          Warden-Webhook/1
//	X-Warden-Event:      the event type
//	X-Warden-Delivery:   the delivery ID (also "id" in the JSON body; the
//	                     same for every attempt, so receivers can ignore a
//	                     repeat)
//	X-Warden-Signature:  Sign(secret, time of the attempt, body) when the
//	                     webhook has a secret
//
// A 2xx answer is delivered. 5xx, 429, network errors and timeouts are
// tried again (WebhookConfig.Retries times, with backoff); any other answer
// (4xx, 3xx: redirects are not followed) fails at once. A delivery that
// fails, or is dropped (queue full, shut down), is counted, logged and
// audited as action "elevation.webhook"; the logs and the audit name the
// URL's host only (a Slack webhook URL's path is its secret), never the
// secret or the body (the body carries the user's reason).

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/store"
)

// Event types: the values of Event.Type, WebhookConfig.Events and the
// X-Warden-Event header.
const (
	EventRequested = "requested"
	EventApproved  = "approved"
	EventDenied    = "denied"
	EventExpired   = "expired"
	EventEnded     = "ended"
)

// EventTypes lists every event type.
var EventTypes = []string{EventRequested, EventApproved, EventDenied, EventExpired, EventEnded}

// Webhook formats: the values of WebhookConfig.Format.
const (
	WebhookFormatJSON  = "json"
	WebhookFormatSlack = "slack"
)

// Webhook defaults and limits.
const (
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 3
	MaxWebhookTimeout     = time.Minute
	MaxWebhookRetries     = 10
	DefaultWebhookQueue   = 1000

	webhookMaxSecretSize = 64 << 10
	webhookMaxBackoff    = time.Minute
	webhookUserAgent     = "Warden-Webhook/1"
	webhookAuditAction   = "elevation.webhook"
	webhookAuditActor    = "warden"
)

// Results of a delivery: the values of
// warden_elevation_webhooks_total{result} and of the audit event's Result
// (failed and dropped only).
const (
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
	WebhookDropped   = "dropped"
)

// WebhookConfig is one entry of elevation.webhooks in the wardend config.
type WebhookConfig struct {
	// URL receives the POSTs; http or https, required.
	URL string `yaml:"url"`
	// Secret is the HMAC-SHA256 key (white space around it trimmed) that
	// signs each body (X-Warden-Signature); in the config file usually
	// secret_file, read like every X_file key. Required unless Format is
	// slack.
	Secret string `yaml:"secret"`
	// Format is "json" (default) or "slack" (a Slack-compatible
	// incoming-webhook payload {"text": "..."}; still signed when a secret
	// is given).
	Format string `yaml:"format"`
	// Events are the event types sent (requested, approved, denied,
	// expired, ended); empty: all.
	Events []string `yaml:"events"`
	// Timeout bounds each attempt; default 5s, at most 1m.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is the number of further attempts after a first one that
	// failed with a 5xx, a 429, a network error or a timeout; 0 means the
	// default 3, -1 none, at most 10. The waits between attempts are 1s,
	// 2s, 4s, ... (at most 1m).
	Retries int `yaml:"retries"`
}

// SetDefaults fills in the format, timeout and retries.
func (w *WebhookConfig) SetDefaults() {
	if w.Format == "" {
		w.Format = WebhookFormatJSON
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.Retries == 0 {
		w.Retries = DefaultWebhookRetries
	}
}

// Validate reports every problem at once. path is the entry's key path
// ("elevation.webhooks[0]"), which each message starts with
// ("elevation.webhooks[0].url: ..."). It does not read the secret file
// (NewNotifier does). Messages never quote the URL: a webhook URL may be a
// secret itself.
func (w WebhookConfig) Validate(path string) error {
	key := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	var errs []error
	if w.URL == "" {
		errs = append(errs, fmt.Errorf("%s: required", key("url")))
	} else if _, err := webhookParseURL(w.URL); err != nil {
		errs = append(errs, fmt.Errorf("%s: %v", key("url"), err))
	}
	switch w.Format {
	case "", WebhookFormatJSON:
		if strings.TrimSpace(w.Secret) == "" {
			errs = append(errs, fmt.Errorf("%s: required for format json (the key that signs each delivery; give it as secret_file)", key("secret")))
		}
	case WebhookFormatSlack:
	default:
		errs = append(errs, fmt.Errorf("%s: %q is not one of json, slack", key("format"), w.Format))
	}
	seen := map[string]bool{}
	for i, e := range w.Events {
		switch {
		case !slices.Contains(EventTypes, e):
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not one of %s", key("events"), i, e, strings.Join(EventTypes, ", ")))
		case seen[e]:
			errs = append(errs, fmt.Errorf("%s[%d]: %q is listed twice", key("events"), i, e))
		}
		seen[e] = true
	}
	if w.Timeout < 0 || w.Timeout > MaxWebhookTimeout {
		errs = append(errs, fmt.Errorf("%s: must be between 0 (default %s) and %s", key("timeout"), DefaultWebhookTimeout, MaxWebhookTimeout))
	}
	if w.Retries < -1 || w.Retries > MaxWebhookRetries {
		errs = append(errs, fmt.Errorf("%s: must be between -1 (none) and %d; 0 means the default %d", key("retries"), MaxWebhookRetries, DefaultWebhookRetries))
	}
	return errors.Join(errs...)
}

func webhookParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL: leave it out.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("must be an http or https URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("must name a host")
	}
	return u, nil
}

// Event is something that happened to an elevation request.
type Event struct {
	// Type is one of EventRequested, ... .
	Type      string
	Elevation store.Elevation
	// Actor is who caused it: the requester, the approver, an admin,
	// "warden" for an expiry, "directory".
	Actor string
	// Time is when it happened; zero: when Notify was called.
	Time time.Time
	// Link is the absolute URL of the request's page; may be empty.
	Link string
}

// NotifierOptions are the dependencies of a Notifier; all optional.
type NotifierOptions struct {
	// Audit records failed and dropped deliveries (action
	// "elevation.webhook", Object the elevation ID).
	Audit audit.Logger
	// Logger: nil discards.
	Logger *slog.Logger
	// Metrics gets warden_elevation_webhooks_total{result}; nil: none.
	Metrics prometheus.Registerer
	// Client sends the requests; nil: a client that follows no redirects.
	// Attempts are bounded by WebhookConfig.Timeout, not by the client.
	Client *http.Client
	// Now is the clock (signatures, events without a time); nil: time.Now.
	Now func() time.Time
	// QueueSize bounds the deliveries waiting for a worker; default 1000.
	QueueSize int
	// Backoff is the wait before retry attempt+1 (attempt counts from 0);
	// nil: 1s<<attempt, at most 1m.
	Backoff func(attempt int) time.Duration
}

// Notifier sends elevation events to the configured webhooks.
type Notifier struct {
	hooks   []*webhook
	drops   chan webhookJob // dropped by Notify, to be audited off the caller's goroutine
	audit   audit.Logger
	log     *slog.Logger
	client  *http.Client
	now     func() time.Time
	backoff func(int) time.Duration
	results *prometheus.CounterVec // nil: no metrics

	ctx    context.Context // canceled when Close gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.RWMutex // guards closed and the sends on queue and drops
	closed    bool
	closeOnce sync.Once
	done      chan struct{} // closed when workers and the drop reporter are gone
}

type webhook struct {
	// queue is this webhook's own, with one worker: a slow or hung
	// receiver delays only its own deliveries, which arrive in order.
	queue  chan webhookJob
	index  int
	cfg    WebhookConfig
	url    string
	host   string // for logs and audit: never the path or query
	secret []byte
	events map[string]bool // nil: all
}

type webhookJob struct {
	hook *webhook
	ev   Event
	id   string
}

// NewNotifier checks the webhooks (defaults applied to a copy), reads their
// secret files and starts the workers. Errors name the key path
// ("elevation.webhooks[1].url: ..."). With no webhooks the
// Notifier does nothing.
func NewNotifier(hooks []WebhookConfig, opts NotifierOptions) (*Notifier, error) {
	var errs []error
	n := &Notifier{
		audit:   opts.Audit,
		log:     opts.Logger,
		client:  opts.Client,
		now:     opts.Now,
		backoff: opts.Backoff,
		done:    make(chan struct{}),
	}
	for i, cfg := range hooks {
		path := fmt.Sprintf("elevation.webhooks[%d]", i)
		cfg.SetDefaults()
		if err := cfg.Validate(path); err != nil {
			errs = append(errs, err)
			continue
		}
		u, _ := webhookParseURL(cfg.URL)
		h := &webhook{index: i, cfg: cfg, url: cfg.URL, host: u.Host}
		if secret := strings.TrimSpace(cfg.Secret); secret != "" {
			h.secret = []byte(secret)
		}
		if len(cfg.Events) > 0 {
			h.events = map[string]bool{}
			for _, e := range cfg.Events {
				h.events[e] = true
			}
		}
		n.hooks = append(n.hooks, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if n.audit == nil {
		n.audit = audit.Discard{}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.client == nil {
		n.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.backoff == nil {
		n.backoff = webhookDefaultBackoff
	}
	if opts.Metrics != nil {
		c, err := webhookRegisterMetrics(opts.Metrics)
		if err != nil {
			return nil, err
		}
		n.results = c
	}
	size := opts.QueueSize
	if size <= 0 {
		size = DefaultWebhookQueue
	}
	n.drops = make(chan webhookJob, 100)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, h := range n.hooks {
		h.queue = make(chan webhookJob, size)
		n.wg.Go(func() { n.work(h) })
	}
	if len(n.hooks) > 0 {
		n.wg.Go(n.reportDrops)
	}
	return n, nil
}

func webhookDefaultBackoff(attempt int) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	if attempt >= 6 { // 64s
		return webhookMaxBackoff
	}
	return min(time.Second<<attempt, webhookMaxBackoff)
}

func webhookRegisterMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_elevation_webhooks_total",
		Help: "Elevation webhook deliveries by result: delivered, failed (after its retries), dropped (queue full or shut down).",
	}, []string{"result"})
	if err := reg.Register(c); err != nil {
		// A second Notifier on the same registry (a reload) shares the counter.
		var are prometheus.AlreadyRegisteredError
		existing, ok := c, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
		}
		if !ok {
			return nil, fmt.Errorf("elevation: register webhook metrics: %w", err)
		}
		c = existing
	}
	for _, r := range []string{WebhookDelivered, WebhookFailed, WebhookDropped} {
		c.WithLabelValues(r) // export zeros
	}
	return c, nil
}

// Notify queues ev for every webhook that wants its type. It never blocks:
// when the queue is full (or the Notifier closed) the delivery is dropped,
// counted and audited. A nil Notifier does nothing.
func (n *Notifier) Notify(ev Event) {
	if n == nil || len(n.hooks) == 0 {
		return
	}
	if !slices.Contains(EventTypes, ev.Type) {
		n.log.Warn("elevation webhook: unknown event type, not sent", "event", ev.Type, "elevation", ev.Elevation.ID)
		return
	}
	if ev.Time.IsZero() {
		ev.Time = n.now()
	}
	ev.Elevation.Roles = slices.Clone(ev.Elevation.Roles) // the caller may reuse its slice
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, h := range n.hooks {
		if h.events != nil && !h.events[ev.Type] {
			continue
		}
		j := webhookJob{hook: h, ev: ev, id: webhookDeliveryID()}
		if n.closed {
			n.dropped(j, "notifier closed")
			continue
		}
		select {
		case h.queue <- j:
		default:
			n.count(WebhookDropped)
			select {
			case n.drops <- j:
			default:
				n.log.Warn("elevation webhook: queue full, delivery dropped (not audited: too many drops)",
					"host", h.host, "event", ev.Type, "elevation", ev.Elevation.ID, "delivery", j.id)
			}
		}
	}
}

// Close stops accepting events and delivers what is queued until ctx ends;
// then the attempts in flight are abandoned and what is left is dropped
// (counted and audited). It returns when the workers are gone. Calling it
// again waits likewise. A nil Notifier does nothing.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		for _, h := range n.hooks {
			close(h.queue)
		}
		close(n.drops)
		n.mu.Unlock()
		go func() {
			n.wg.Wait()
			close(n.done)
		}()
	})
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		<-n.done
	}
	n.cancel()
}

func (n *Notifier) work(h *webhook) {
	for j := range h.queue {
		n.deliver(j)
	}
}

func (n *Notifier) reportDrops() {
	for j := range n.drops {
		n.report(j, WebhookDropped, "queue full", 0)
	}
}

func (n *Notifier) count(result string) {
	if n.results != nil {
		n.results.WithLabelValues(result).Inc()
	}
}

// dropped counts, logs and audits a delivery that is not attempted (again).
func (n *Notifier) dropped(j webhookJob, why string) {
	n.count(WebhookDropped)
	n.report(j, WebhookDropped, why, 0)
}

// report logs and audits a failed or dropped delivery: host, event,
// status or error; never the secret, the URL's path or query, the body.
func (n *Notifier) report(j webhookJob, result, errMsg string, status int) {
	detail := map[string]string{
		"host":     j.hook.host,
		"event":    j.ev.Type,
		"delivery": j.id,
	}
	attrs := []any{"host", j.hook.host, "event", j.ev.Type, "elevation", j.ev.Elevation.ID, "delivery", j.id}
	if status != 0 {
		detail["status"] = strconv.Itoa(status)
		attrs = append(attrs, "status", status)
	}
	if errMsg != "" {
		detail["error"] = errMsg
		attrs = append(attrs, "error", errMsg)
	}
	n.log.Warn("elevation webhook: "+result, attrs...)
	n.audit.Record(context.Background(), audit.Event{
		Time:   n.now(),
		Actor:  webhookAuditActor,
		Action: webhookAuditAction,
		Object: j.ev.Elevation.ID,
		Result: result,
		Detail: detail,
	})
}

type webhookOutcome struct {
	status int    // 0: no response
	err    string // why it failed (no URL in it)
	retry  bool
}

func (n *Notifier) deliver(j webhookJob) {
	if n.ctx.Err() != nil {
		n.dropped(j, "shut down before delivery")
		return
	}
	body, err := webhookBody(j)
	if err != nil { // cannot happen with the types involved
		n.count(WebhookFailed)
		n.report(j, WebhookFailed, "encode body: "+err.Error(), 0)
		return
	}
	attempts := 1 + max(j.hook.cfg.Retries, 0)
	var last webhookOutcome
	for a := range attempts {
		if a > 0 {
			if !n.sleep(n.backoff(a - 1)) {
				n.dropped(j, fmt.Sprintf("shut down while retrying (attempt %d: %s)", a, last.describe()))
				return
			}
		}
		out, ok := n.attempt(j, body)
		if ok {
			n.count(WebhookDelivered)
			n.log.Debug("elevation webhook: delivered", "host", j.hook.host, "event", j.ev.Type,
				"elevation", j.ev.Elevation.ID, "delivery", j.id, "status", out.status, "attempts", a+1)
			return
		}
		if n.ctx.Err() != nil {
			n.dropped(j, fmt.Sprintf("shut down during attempt %d", a+1))
			return
		}
		last = out
		n.log.Debug("elevation webhook: attempt failed", "host", j.hook.host, "event", j.ev.Type,
			"delivery", j.id, "attempt", a+1, "status", out.status, "error", out.err, "retry", out.retry && a+1 < attempts)
		if !out.retry {
			break
		}
	}
	n.count(WebhookFailed)
	n.report(j, WebhookFailed, last.err, last.status)
}

func (o webhookOutcome) describe() string {
	if o.status != 0 {
		return "status " + strconv.Itoa(o.status)
	}
	return o.err
}

// sleep waits d, or less when Close gives up; false then.
func (n *Notifier) sleep(d time.Duration) bool {
	if d <= 0 {
		return n.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// attempt makes one POST; ok on a 2xx.
func (n *Notifier) attempt(j webhookJob, body []byte) (webhookOutcome, bool) {
	ctx, cancel := context.WithTimeout(n.ctx, j.hook.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.hook.url, bytes.NewReader(body))
	if err != nil {
		return webhookOutcome{err: "build request: " + webhookErrText(err)}, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", webhookUserAgent)
	req.Header.Set("X-Warden-Event", j.ev.Type)
	req.Header.Set("X-Warden-Delivery", j.id)
	if j.hook.secret != nil {
		req.Header.Set("X-Warden-Signature", Sign(j.hook.secret, n.now(), body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded && n.ctx.Err() == nil {
			return webhookOutcome{err: "timeout after " + j.hook.cfg.Timeout.String(), retry: true}, false
		}
		return webhookOutcome{err: webhookErrText(err), retry: true}, false
	}
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return webhookOutcome{status: c}, true
	case c >= 500 || c == http.StatusTooManyRequests:
		return webhookOutcome{status: c, err: "status " + strconv.Itoa(c), retry: true}, false
	default:
		return webhookOutcome{status: c, err: "status " + strconv.Itoa(c)}, false
	}
}

// webhookErrText is err without the URL that url.Error puts in it.
func webhookErrText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = audit.Clip(s, 200)
	}
	return s
}

func webhookDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// webhookPayload is the JSON body of format json.
type webhookPayload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Time      string          `json:"time"`
	Actor     string          `json:"actor"`
	Link      string          `json:"link,omitempty"`
	Elevation store.Elevation `json:"elevation"`
}

func webhookBody(j webhookJob) ([]byte, error) {
	var v any
	if j.hook.cfg.Format == WebhookFormatSlack {
		v = struct {
			Text string `json:"text"`
		}{slackText(j.ev)}
	} else {
		v = webhookPayload{
			ID:        j.id,
			Type:      j.ev.Type,
			Time:      j.ev.Time.UTC().Format(time.RFC3339),
			Actor:     j.ev.Actor,
			Link:      j.ev.Link,
			Elevation: j.ev.Elevation,
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// slackText is one line for people: who requested which roles for how
// long, the reason, the state, the link. Everything from users is escaped
// (no <!channel>, no links of theirs) and kept to one line.
func slackText(ev Event) string {
	e := ev.Elevation
	var b strings.Builder
	b.WriteString("Warden elevation ")
	b.WriteString(slackEscape(ev.Type))
	switch ev.Type {
	case EventApproved, EventDenied, EventEnded:
		if ev.Actor != "" {
			b.WriteString(" by " + slackEscape(ev.Actor))
		}
	case EventExpired:
		b.WriteString(" undecided")
	}
	b.WriteString(": ")
	b.WriteString(slackEscape(e.Username))
	b.WriteString(" requested ")
	roles := make([]string, len(e.Roles))
	for i, r := range e.Roles {
		roles[i] = slackEscape(webhookRoleLabel(r))
	}
	if len(roles) == 0 {
		roles = []string{"(no role)"}
	}
	b.WriteString(strings.Join(roles, ", "))
	b.WriteString(" for ")
	b.WriteString(webhookDuration(e.Seconds))
	if e.Reason != "" {
		b.WriteString(`, reason "` + slackEscape(webhookOneLine(e.Reason, 300)) + `"`)
	}
	b.WriteString("; state " + slackEscape(e.State))
	if e.State == store.ElevationApproved && !e.EndsAt.IsZero() {
		b.WriteString(" until " + e.EndsAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	b.WriteString(".")
	if ev.Link != "" {
		b.WriteString(" <" + slackEscape(webhookOneLine(strings.ReplaceAll(ev.Link, "|", "%7C"), 2000)) + "|Open request>")
	}
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// webhookOneLine replaces control characters and line breaks with spaces
// and cuts s to at most n runes.
func webhookOneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}

// webhookRoleLabel shows "arn:aws:iam::111122223333:role/ops/Admin" as
// "Admin (111122223333)"; anything else as it is.
func webhookRoleLabel(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[5], "role/") {
		return arn
	}
	name := parts[5][strings.LastIndexByte(parts[5], '/')+1:]
	return name + " (" + parts[4] + ")"
}

// webhookDuration shows seconds as "1h", "1h30m", "45m", "1m30s".
func webhookDuration(seconds int) string {
	if seconds <= 0 {
		return "0s"
	}
	h, m, s := seconds/3600, seconds/60%60, seconds%60
	var b strings.Builder
	if h > 0 {
		b.WriteString(strconv.Itoa(h) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.Itoa(m) + "m")
	}
	if s > 0 {
		b.WriteString(strconv.Itoa(s) + "s")
	}
	return b.String()
}

// Sign returns the X-Warden-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." + body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature verification errors (errors.Is).
var (
	ErrSignatureMalformed = errors.New("elevation webhook: malformed signature header")
	ErrSignatureExpired   = errors.New("elevation webhook: signature timestamp outside the tolerance")
	ErrSignatureMismatch  = errors.New("elevation webhook: signature does not match")
)

// DefaultSignatureTolerance is the tolerance VerifySignature uses when
// given none.
const DefaultSignatureTolerance = 5 * time.Minute

// VerifySignature checks an X-Warden-Signature header against body, for a
// receiver: the header must be "t=<unix seconds>,v1=<hex>" (several v1
// values are allowed, one must match; unknown keys are ignored), t within
// tolerance of now either way (older: a replay; tolerance <= 0 means
// DefaultSignatureTolerance), and the MAC is compared in constant time.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("elevation webhook: no secret to verify with")
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			if ts != "" || v == "" {
				return ErrSignatureMalformed
			}
			ts = v
		case "v1":
			mac, err := hex.DecodeString(v)
			if err != nil || len(mac) != sha256.Size {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, mac)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrSignatureMalformed
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix < 0 || strconv.FormatInt(unix, 10) != ts {
		return ErrSignatureMalformed
	}
	if skew := now.Sub(time.Unix(unix, 0)); skew > tolerance || skew < -tolerance {
		return ErrSignatureExpired
	}
	want := webhookMAC(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true // keep comparing: the same work whichever matches
		}
	}
	if !ok {
		return ErrSignatureMismatch
	}
	return nil
}
