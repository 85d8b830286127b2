package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/store"
)

func TestRedisLog(t *testing.T) {
	var buf bytes.Buffer
	l := store.RedisLog{L: slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: failed to dial after %d attempts", 2)
	if !strings.Contains(buf.String(), `"msg":"redis: failed to dial after 2 attempts"`) ||
		!strings.Contains(buf.String(), `"component":"go-redis"`) {
		t.Fatalf("log line: %s", buf.String())
	}
}
