package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/identity"
)

// publicText is the fixed text shown for a status: never an internal error.
func publicText(status int) (heading, message string) {
	switch status {
	case http.StatusBadRequest:
		return "Bad request", "The request could not be understood."
	case http.StatusForbidden:
		return "Not allowed", "You are not allowed to do this."
	case http.StatusNotFound:
		return "Page not found", "There is no page at this address."
	case http.StatusMethodNotAllowed:
		return "Method not allowed", "This page cannot be used this way."
	case http.StatusConflict:
		return "Changed in the meantime", "Someone else changed this since you loaded it."
	case http.StatusUnprocessableEntity:
		return "Not saved", "What was sent has problems."
	case http.StatusRequestEntityTooLarge:
		return "Request too large", "What was sent is larger than this server accepts."
	case http.StatusTooManyRequests:
		return "Too many attempts", "There were too many failed sign-in attempts. Please wait a while before you try again."
	case http.StatusServiceUnavailable:
		return "Service unavailable", "Sign-in is unavailable right now because a service it depends on does not answer. Please try again in a few minutes."
	default:
		return "Something went wrong", "An internal error occurred."
	}
}

// renderError answers status with the fixed public text (HTML or JSON) and
// aborts the handler chain.
func (s *Server) renderError(c *gin.Context, status int) {
	heading, message := publicText(status)
	s.renderErrorPage(c, status, heading, message, "")
}

// renderErrorPage answers with the error template, or with
// {"error": ..., "request_id": ...} for JSON clients and API paths.
func (s *Server) renderErrorPage(c *gin.Context, status int, heading, message, retry string) {
	defer c.Abort()
	if wantsJSON(c.Request) || state(c).api {
		c.JSON(status, gin.H{"error": message, "request_id": state(c).id})
		return
	}
	v := view{Heading: heading, Message: message, RetryLink: retry}
	if v.User = s.errorPageUser(c, status); v.User != nil {
		v.BodyClass = "app" // the header as on the signed-in pages
	}
	s.render(c, status, "error.html", v)
}

// errorPageUser is the signed-in user whose name and links the error page's
// header shows: the session the route loaded, else the one the session
// cookie names, read without a directory re-check (the header grants
// nothing). None for a 5xx (the session store may be what failed).
func (s *Server) errorPageUser(c *gin.Context, status int) *identity.User {
	if st := state(c); st.session != nil {
		u := st.session.User
		return &u
	}
	if status >= http.StatusInternalServerError {
		return nil
	}
	sess, _, err := s.storedSession(c)
	if err != nil {
		return nil
	}
	return &sess.User
}
