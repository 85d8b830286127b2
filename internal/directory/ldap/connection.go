package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// The steps of a connection test (ServerCheck.Step), in order.
const (
	StepDial        = "dial"
	StepTLS         = "tls"      // ldaps:// handshake
	StepStartTLS    = "starttls" // ldap:// with start_tls
	StepServiceBind = "service bind"
	StepBaseSearch  = "base search"
	StepUserSearch  = "user search"
)

// stepError tags an error with the step of connecting that failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// ServerCheck is what TestConnection found on one server.
type ServerCheck struct {
	URL string
	// OK: every step passed.
	OK bool
	// Step is the step that failed (one of the Step constants), "" when OK.
	Step string
	// Err is the failure; Hint says what to check in the configuration
	// (may be empty). Neither contains a password.
	Err  error
	Hint string
	// TLS says how the connection was protected: "ldaps", "starttls" or
	// "no TLS".
	TLS string
	// Took is the time of all steps together.
	Took time.Duration
	// User is the user looked up (TestConnection with a user), nil otherwise.
	User *identity.User
}

// String is the one-line report of check-config -connect.
func (c ServerCheck) String() string {
	var b strings.Builder
	b.WriteString(c.URL)
	if !c.OK {
		fmt.Fprintf(&b, ": FAILED at %s: %v", c.Step, c.Err)
		if c.Hint != "" {
			b.WriteString(" (" + c.Hint + ")")
		}
		return b.String()
	}
	fmt.Fprintf(&b, ": OK in %s (dial, %s, service bind, base search", c.Took.Round(time.Millisecond), c.TLS)
	if c.User != nil {
		b.WriteString(", user search")
	}
	b.WriteString(")")
	if u := c.User; u != nil {
		fmt.Fprintf(&b, "; user %s: DN %s, ID %s, groups: %s", u.Username, u.DN, u.ID, c.Groups())
	}
	return b.String()
}

// Groups lists the found user's groups by name, nested ones marked, or
// "none".
func (c ServerCheck) Groups() string {
	if c.User == nil || len(c.User.Groups) == 0 {
		return "none"
	}
	names := make([]string, 0, len(c.User.Groups))
	for _, g := range c.User.Groups {
		n := g.Name
		if !g.Direct {
			n += " (nested)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// TestConnection checks every configured server on its own, all at once,
// each within DialTimeout + 3 x Timeout: dial, TLS (ldaps:// or StartTLS,
// with the configured CA file and server name), the service bind, a base
// search of the user base DN and, when user is not empty, the user's
// look-up (user filter, ID, groups) pinned to that server. The results are
// in URL order. It uses fresh connections, never the pools, and does not
// change a server's up/down state.
func (d *Directory) TestConnection(ctx context.Context, user string) []ServerCheck {
	out := make([]ServerCheck, len(d.servers))
	var wg sync.WaitGroup
	for i, s := range d.servers {
		wg.Go(func() { out[i] = d.testServer(ctx, s, user) })
	}
	wg.Wait()
	return out
}

func (d *Directory) testServer(ctx context.Context, s *server, user string) (res ServerCheck) {
	res.URL = s.url
	switch {
	case s.ldaps:
		res.TLS = "ldaps"
	case s.startTLS:
		res.TLS = "starttls"
	default:
		res.TLS = "no TLS"
	}
	start := time.Now()
	defer func() {
		res.Took = time.Since(start)
		res.OK = res.Err == nil
		if res.Err != nil {
			res.Hint = hint(res.Step, res.Err, s)
		}
	}()
	fail := func(step string, err error) ServerCheck {
		var se *stepError
		if errors.As(err, &se) {
			step = se.step
		}
		res.Step, res.Err = step, err
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout+3*d.cfg.Timeout)
	defer cancel()

	p := s.pools[kindSearch]
	c, err := p.dialConn(ctx)
	if err != nil {
		return fail(StepDial, err)
	}
	defer c.close()
	err = c.run(ctx, d.cfg.Timeout, func(c *conn) error {
		_, err := c.l.SimpleBind(&goldap.SimpleBindRequest{Username: d.cfg.BindDN, Password: d.cfg.BindPassword})
		return err
	})
	if err != nil {
		return fail(StepServiceBind, fmt.Errorf("service bind as %s: %w", d.cfg.BindDN, err))
	}
	err = c.run(ctx, d.cfg.Timeout, func(c *conn) error {
		_, err := c.l.Search(goldap.NewSearchRequest(d.cfg.UserBaseDN, goldap.ScopeBaseObject,
			goldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
		return err
	})
	if err != nil {
		return fail(StepBaseSearch, fmt.Errorf("base search of %s: %w", d.cfg.UserBaseDN, err))
	}
	if user == "" {
		return res
	}
	// The user's look-up through the same code as a sign-in, pinned to
	// this server: a directory of one URL.
	one := d.cfg
	one.URLs = []string{s.url}
	od, err := New(one, WithLogger(d.log), WithClock(d.now))
	if err != nil {
		return fail(StepUserSearch, err)
	}
	defer od.Close()
	u, err := od.Lookup(ctx, user)
	if err != nil {
		return fail(StepUserSearch, fmt.Errorf("user %q: %w", user, err))
	}
	res.User = &u
	return res
}

// hint says what to check in the configuration for a failed step.
func hint(step string, err error, s *server) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		ne        net.Error
		le        *goldap.Error
		te        *timeoutError
	)
	switch {
	case errors.As(err, &unknownCA):
		return "the server certificate is not signed by a CA in directory.ca_file, or in the system roots when ca_file is empty"
	case errors.As(err, &hostname):
		name := "the host in the URL"
		if s.tls != nil && s.tls.ServerName != "" {
			name = fmt.Sprintf("%q", s.tls.ServerName)
		}
		return fmt.Sprintf("the server certificate does not name %s: set directory.server_name to a name in the certificate, or use that name in the URL", name)
	case errors.As(err, &invalid):
		return "the server certificate is not valid (expired, not yet valid, or not for TLS servers)"
	case errors.As(err, &record):
		return "the server does not speak TLS on this port: ldaps:// against a plain LDAP port?"
	case step == StepTLS && errors.Is(err, io.EOF):
		return "the server closed the connection during the TLS handshake: ldaps:// against a plain LDAP port?"
	case errors.As(err, &te):
		return "the server accepted the connection but did not answer within directory.timeout: hung or overloaded"
	case errors.Is(err, identity.ErrUserNotFound):
		return "no entry matches directory.user_filter under directory.user_base_dn"
	case errors.As(err, &le) && le.ResultCode == goldap.LDAPResultInvalidCredentials && step == StepServiceBind:
		return "check directory.bind_dn and bind_password; the service account may also be locked or expired"
	case errors.As(err, &le) && le.ResultCode == goldap.LDAPResultNoSuchObject:
		return "directory.user_base_dn (or base_dn) does not exist on this server"
	case errors.As(err, &le) && le.ResultCode == goldap.LDAPResultStrongAuthRequired:
		return "the server refuses binds without TLS: use ldaps:// or start_tls"
	case step == StepDial && errors.As(err, &ne) && ne.Timeout():
		return "no answer within directory.dial_timeout: a firewall, a wrong host, or a hung server"
	case step == StepDial:
		return "check the host and port in directory.urls"
	case step == StepStartTLS:
		return "the server refused StartTLS or its certificate: check directory.ca_file and server_name"
	}
	return ""
}

// GroupDNsByCN returns the DNs of the groups (groupOfNames,
// groupOfUniqueNames, posixGroup or group entries) under the group base DN
// whose cn is name, at most 10. More than one means a grant rule that names
// the group by bare CN matches the members of each of them.
func (d *Directory) GroupDNsByCN(ctx context.Context, name string) ([]string, error) {
	filter := "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=group))(cn=" +
		goldap.EscapeFilter(name) + "))"
	req := goldap.NewSearchRequest(d.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		10, 0, false, filter, []string{"1.1"}, nil)
	var dns []string
	err := d.do(ctx, kindSearch, "groups by cn", func(c *conn, srv string) error {
		start := time.Now()
		res, err := c.l.Search(req)
		d.observe("search", srv, time.Since(start), err)
		if err != nil && goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
			err = nil
		}
		if err != nil {
			return err
		}
		dns = dns[:0]
		for _, e := range res.Entries {
			dns = append(dns, e.DN)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("groups by cn", err)
	}
	return dns, nil
}
