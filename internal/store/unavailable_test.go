package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wardenidp/warden/internal/store"
)

// TestIsUnavailable: every way go-redis reports an unreachable or silent
// Redis counts as an outage, wrapped or not; an answer does not.
func TestIsUnavailable(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"redis.Nil", redis.Nil, false},
		{"wrapped redis.Nil", fmt.Errorf("x: %w", redis.Nil), false},
		{"reply error", errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"ErrUnavailable", store.Unavailable("op", errors.New("x")), true},
		{"context deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"i/o timeout", timeout, true},
		{"connection refused", refused, true},
		{"bare ECONNREFUSED", syscall.ECONNREFUSED, true},
		{"connection reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"client closed", redis.ErrClosed, true},
		{"EOF", io.EOF, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := store.IsUnavailable(c.err); got != c.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
