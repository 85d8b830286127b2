package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// readyTimeout bounds each readiness check.
const readyTimeout = 3 * time.Second

// handleHealthz: the process is alive and serving. No dependency is asked.
func (s *Server) handleHealthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// handleReadyz asks every health check at once. 200 when all answer; 503
// naming the failing dependencies, without their error text (logged).
func (s *Server) handleReadyz(c *gin.Context) {
	if s.draining.Load() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining", "request_id": state(c).id})
		return
	}
	ctx := c.Request.Context()
	errs := make([]error, len(s.health))
	var wg sync.WaitGroup
	for i, h := range s.health {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			errs[i] = h.Check(cctx)
		})
	}
	wg.Wait()
	checks := make(map[string]string, len(s.health))
	failing := []string{}
	for i, h := range s.health {
		if errs[i] != nil {
			checks[h.Name] = "fail"
			failing = append(failing, h.Name)
			s.log.LogAttrs(ctx, slog.LevelWarn, "readiness check failed",
				slog.String("check", h.Name), slog.String("err", errs[i].Error()))
			continue
		}
		checks[h.Name] = "ok"
	}
	if len(failing) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "failing": failing,
			"checks": checks, "request_id": state(c).id})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}
