package store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// IsUnavailable reports whether err means that Redis could not be used:
// ErrUnavailable (what every store method wraps its failures in), or a
// raw client error that reached the caller unwrapped: a deadline, a pool
// timeout, a closed client, a refused, reset or timed-out connection
// (net.Error covers "i/o timeout" and dial errors). redis.Nil (no such
// key) and Redis error replies are answers, not outages.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
