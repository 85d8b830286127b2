package cli

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"
)

// InterruptContext is signal.NotifyContext(context.Background(),
// os.Interrupt) with the handler installed on the first call to Done or
// Err: whoever waits on the context (a lock, an HTTP call, a poll) arms
// it first, and a path that never waits, like `credential-process` with
// cached credentials, skips the handler's goroutines and thread. Until
// then an interrupt ends the process as by default, which is harmless
// there: nothing is half written. stop releases the handler.
func InterruptContext() (ctx context.Context, stop func()) {
	c := &interruptCtx{}
	return c, c.stop
}

type interruptCtx struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func (c *interruptCtx) arm() {
	c.once.Do(func() { c.ctx, c.cancel = signal.NotifyContext(context.Background(), os.Interrupt) })
}

func (c *interruptCtx) stop() {
	c.once.Do(func() { c.ctx, c.cancel = context.WithCancel(context.Background()) })
	c.cancel()
}

func (c *interruptCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *interruptCtx) Done() <-chan struct{}       { c.arm(); return c.ctx.Done() }
func (c *interruptCtx) Err() error                  { c.arm(); return c.ctx.Err() }
func (c *interruptCtx) Value(any) any               { return nil }
func (c *interruptCtx) String() string              { return "cli.InterruptContext" }
