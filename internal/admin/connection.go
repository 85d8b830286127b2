package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/web"
)

// ConnectionTester is the optional capability of a Directory behind "Test
// connection": every configured server checked on its own (dial, TLS,
// service bind, searches, and optionally one user's look-up).
// *ldap.Directory implements it; a Directory without it gets a page that
// says so.
type ConnectionTester interface {
	TestConnection(ctx context.Context, user string) []ldap.ServerCheck
}

// maxConnectionTest bounds the whole test (each server has its own
// dial_timeout and timeouts inside it).
const maxConnectionTest = 60 * time.Second

// connectionView is one server's line for the page.
type connectionView struct {
	URL, TLS, Step, Error, Hint string
	OK                          bool
	Took                        time.Duration
	User                        string // "uid=bob,...: ID ..., groups a, b (nested)"
}

// connectionPage is the page data: the common admin page plus the results.
type connectionPage struct {
	page
	Available bool
	Ran       bool
	TestUser  string
	Checks    []connectionView
	Failed    int
}

func (a *Admin) newConnectionPage() connectionPage {
	_, ok := a.dir.(ConnectionTester)
	return connectionPage{page: a.newPage("connection"), Available: ok}
}

// pageConnection shows the "Test connection" form.
func (a *Admin) pageConnection(c *gin.Context) {
	web.Render(c, http.StatusOK, "connection.html", a.newConnectionPage())
}

// postConnection runs the test on every server and shows one line each; the
// run is audited (directory.test_connection) with each server's outcome.
func (a *Admin) postConnection(c *gin.Context) {
	p := a.newConnectionPage()
	p.TestUser = strings.TrimSpace(c.Request.PostForm.Get("user"))
	if len(p.TestUser) > maxUsername {
		p.Fields["user"] = []string{"A username has at most 256 bytes."}
		web.Render(c, http.StatusUnprocessableEntity, "connection.html", p)
		return
	}
	t, ok := a.dir.(ConnectionTester)
	if !ok {
		web.Render(c, http.StatusNotImplemented, "connection.html", p)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), maxConnectionTest)
	defer cancel()
	checks := t.TestConnection(ctx, p.TestUser)
	p.Ran = true
	detail := map[string]string{}
	if p.TestUser != "" {
		detail["user"] = p.TestUser
	}
	for _, ch := range checks {
		v := connectionView{URL: ch.URL, TLS: ch.TLS, OK: ch.OK, Step: ch.Step, Hint: ch.Hint,
			Took: ch.Took.Round(time.Millisecond)}
		if ch.Err != nil {
			v.Error = ch.Err.Error()
			p.Failed++
			detail[ch.URL] = "failed at " + ch.Step
		} else {
			detail[ch.URL] = "ok"
		}
		if u := ch.User; u != nil {
			v.User = u.DN + ": ID " + u.ID + ", groups: " + ch.Groups()
		}
		p.Checks = append(p.Checks, v)
	}
	result := "success"
	if p.Failed > 0 {
		result = "failure"
	}
	a.record(c, "directory.test_connection", "directory", result, "", "", detail)
	web.Render(c, http.StatusOK, "connection.html", p)
}
