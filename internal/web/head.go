package web

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// HEAD wherever GET is served (RFC 9110 §9.3.2): gin routes by method and
// registers no HEAD by itself, so every GET route without a HEAD route of
// its own gets one here, made of the same middleware and handler behind
// headOnly. The handler runs exactly as for a GET, so a HEAD can do nothing
// that the GET would not; the client gets the GET's status and headers
// (Content-Length included) and no body.

// withHead returns rs with a HEAD route added for every GET route whose
// path has no HEAD route, and records those paths in s.headOf.
func (s *Server) withHead(rs []mountedRoute) []mountedRoute {
	head := map[string]bool{}
	s.headOf = map[string]bool{}
	for _, r := range rs {
		if r.method == http.MethodHead {
			head[r.path] = true
		}
	}
	out := rs
	for _, r := range rs {
		if r.method != http.MethodGet || head[r.path] {
			continue
		}
		hs := append([]gin.HandlerFunc{headOnly}, r.handlers...)
		out = append(out, mountedRoute{method: http.MethodHead, path: r.path, handlers: hs, maxBody: r.maxBody})
		head[r.path], s.headOf[r.path] = true, true
	}
	return out
}

// headOnly runs the rest of the chain as the GET of the same URL and drops
// the body it writes. The handlers see a shallow copy of the request with
// the method GET (a handler that dispatches on the method, as a wrapped
// router does, would refuse a HEAD); the middleware in front, and
// net/http, keep the real request, so that the access log says HEAD and no
// body goes out.
func headOnly(c *gin.Context) {
	orig, w := c.Request, &headWriter{ResponseWriter: c.Writer}
	get := orig.WithContext(orig.Context())
	get.Method = http.MethodGet
	c.Request, c.Writer = get, w
	defer func() { c.Request, c.Writer = orig, w.ResponseWriter }()
	c.Next()
	w.finish()
}

// headWriter counts the body instead of sending it. The headers go out when
// the handler flushes them itself or, after it, with gin's final
// WriteHeaderNow; finish adds the Content-Length the GET would have had.
type headWriter struct {
	gin.ResponseWriter
	n       int  // body bytes the GET would have sent
	wrote   bool // the handler wrote a body (possibly empty)
	flushed bool // the handler flushed: the GET streams, its length is unknown
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.wrote = true
	w.n += len(p)
	return len(p), nil
}

func (w *headWriter) WriteString(s string) (int, error) {
	w.wrote = true
	w.n += len(s)
	return len(s), nil
}

// Written reports whether the GET would have sent something by now.
func (w *headWriter) Written() bool { return w.wrote || w.ResponseWriter.Written() }

func (w *headWriter) Flush() {
	w.flushed = true
	w.ResponseWriter.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sets the Content-Length of the GET's body when the handler set
// none and the headers have not gone out yet (net/http would count a GET's
// body itself, but sees none here).
func (w *headWriter) finish() {
	if w.flushed || w.ResponseWriter.Written() {
		return
	}
	h := w.Header()
	if h.Get("Content-Length") != "" || h.Get("Transfer-Encoding") != "" || !bodyAllowed(w.Status()) {
		return
	}
	h.Set("Content-Length", strconv.Itoa(w.n))
}

// bodyAllowed: the statuses whose responses may carry a body (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
