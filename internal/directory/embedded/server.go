// Package embedded is the dev-mode directory: an in-process LDAP server
// (github.com/jimlambrt/gldap) that serves the entries of an LDIF file on
// 127.0.0.1. Dev mode reaches it with the production client,
// ldap.New(server.Config()), so the same code runs against it as against
// OpenLDAP or Active Directory.
//
// It behaves like a small OpenLDAP with the memberof and ppolicy overlays:
//   - simple bind (RFC 4513 section 5.1): anonymous (empty name and
//     password) succeeds, a name with an empty password (unauthenticated
//     bind) is refused with unwillingToPerform; userPassword is cleartext or
//     {SSHA}; unknown DN or wrong password gives invalidCredentials (49);
//   - password policy response control (draft-behera-ldap-password-policy-10),
//     when the bind asks for it: pwdAccountLockedTime present -> 49 with
//     accountLocked; pwdChangedTime older than the pwdMaxAge of the entry's
//     pwdPolicySubentry -> 49 with passwordExpired; pwdReset TRUE -> success
//     with changeAfterReset;
//   - search with base, one and subtree scope, size limit, and the filters
//     the client sends: and, or, not, equality (DN-syntax attributes compare
//     normalized DNs; others caseIgnoreMatch), presence, substrings;
//     extensible matches (AD's in-chain rule) are undefined, as on OpenLDAP;
//   - memberOf computed at load time, direct membership only (like the
//     memberof overlay): the client's group_source memberof follows nesting;
//   - entryUUID derived from the DN (UUIDv5), stable across restarts;
//   - the root DSE, readable anonymously; everything else only after a bind
//     (anonymous searches get insufficientAccessRights);
//   - userPassword is never returned and never matches a filter.
//
// Not emulated: TLS (loopback only), writes (add, modify, delete), paging
// (the control is ignored and every entry returned in one page), referrals,
// ppolicy lockout by failure count, grace logins, and the restriction of a
// pwdReset session to password changes.
package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/wardenidp/warden/internal/directory/ldap"
)

const ppolicyOID = "1.3.6.1.4.1.42.2.27.8.5.1"

// Option configures Start.
type Option func(*options)

type options struct {
	addr       string
	bindDN     string
	bindPW     string
	now        func() time.Time
	serviceSet bool
}

// WithAddr sets the listen address (default 127.0.0.1:0, a free port).
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithServiceAccount sets the bind DN and password that Config returns
// (default: cn=svc-idp,ou=people,<base> with its cleartext userPassword).
func WithServiceAccount(dn, password string) Option {
	return func(o *options) { o.bindDN, o.bindPW, o.serviceSet = dn, password, true }
}

// WithClock sets the clock used for password expiry.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Server is a running embedded directory.
type Server struct {
	log   *slog.Logger
	store *store
	opts  options
	gl    *gldap.Server
	ln    net.Listener
	url   string

	mu     sync.Mutex
	bound  map[int]string // gldap connection ID -> bound DN ("" anonymous)
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	stop   func() bool
}

// Start loads the LDIF file and serves it until Close (or until ctx ends).
func Start(ctx context.Context, ldifPath string, logger *slog.Logger, opts ...Option) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{addr: "127.0.0.1:0", now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	f, err := os.Open(ldifPath)
	if err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	defer f.Close()
	return start(ctx, ldifPath, f, logger, o)
}

// StartLDIF is Start for LDIF content already in memory (the dev directory
// built into wardend).
func StartLDIF(ctx context.Context, ldif []byte, logger *slog.Logger, opts ...Option) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{addr: "127.0.0.1:0", now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return start(ctx, "dev directory", bytes.NewReader(ldif), logger, o)
}

func start(ctx context.Context, ldifPath string, r io.Reader, logger *slog.Logger, o options) (*Server, error) {
	recs, err := parseLDIF(r)
	if err != nil {
		return nil, fmt.Errorf("embedded: %s: %w", ldifPath, err)
	}
	st, err := newStore(recs)
	if err != nil {
		return nil, fmt.Errorf("embedded: %s: %w", ldifPath, err)
	}
	if !o.serviceSet {
		o.bindDN = "cn=svc-idp,ou=people," + st.base
		k, _ := normDN(o.bindDN)
		if e := st.byKey[k]; e != nil {
			o.bindPW = e.first("userPassword")
		}
		if o.bindPW == "" || strings.HasPrefix(o.bindPW, "{") {
			return nil, fmt.Errorf("embedded: %s: no %s with a cleartext userPassword; use WithServiceAccount", ldifPath, o.bindDN)
		}
	}
	s := &Server{log: logger, store: st, opts: o, bound: map[int]string{}, conns: map[net.Conn]struct{}{}}
	if err := s.start(); err != nil {
		return nil, err
	}
	s.stop = context.AfterFunc(ctx, func() { _ = s.Close() })
	logger.Info("embedded directory serving", "url", s.url, "ldif", ldifPath, "entries", len(st.entries), "base_dn", st.base)
	return s, nil
}

// start runs gldap on a private loopback port and a forwarder on the public
// address. The forwarder is ours so that Close can cut every client
// connection: gldap's Stop waits for its connections to end and cannot
// close idle ones itself.
func (s *Server) start() error {
	mux, err := gldap.NewMux()
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	_ = mux.Bind(s.handleBind)
	_ = mux.Search(s.handleSearch)
	_ = mux.DefaultRoute(s.handleOther)
	gl, err := gldap.NewServer(
		gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "gldap", Level: hclog.Off, Output: io.Discard})),
		gldap.WithOnClose(func(id int) {
			s.mu.Lock()
			delete(s.bound, id)
			s.mu.Unlock()
		}))
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	if err := gl.Router(mux); err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	// gldap listens itself and does not tell its port: pick a free one.
	var inner string
	var runErr chan error
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
		inner = l.Addr().String()
		_ = l.Close()
		runErr = make(chan error, 1)
		go func() { runErr <- gl.Run(inner) }()
		if waitListening(inner, runErr) {
			break
		}
		inner = ""
	}
	if inner == "" {
		return errors.New("embedded: gldap did not start")
	}
	ln, err := net.Listen("tcp", s.opts.addr)
	if err != nil {
		_ = gl.Stop()
		return fmt.Errorf("embedded: listen %s: %w", s.opts.addr, err)
	}
	s.gl, s.ln, s.url = gl, ln, "ldap://"+ln.Addr().String()
	s.wg.Add(1)
	go s.forward(ln, inner)
	return nil
}

func waitListening(addr string, runErr chan error) bool {
	for range 200 {
		select {
		case <-runErr:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func (s *Server) forward(ln net.Listener, inner string) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			in, err := net.DialTimeout("tcp", inner, 5*time.Second)
			if err != nil {
				return
			}
			defer in.Close()
			if !s.track(c, in) {
				return
			}
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(in, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, in); done <- struct{}{} }()
			<-done
			s.untrack(c, in)
		}()
	}
}

func (s *Server) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, c := range cs {
		s.conns[c] = struct{}{}
	}
	return true
}

func (s *Server) untrack(cs ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		delete(s.conns, c)
	}
}

// URL is the ldap:// URL the server listens on.
func (s *Server) URL() string { return s.url }

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// BaseDN is the DN of the first LDIF entry.
func (s *Server) BaseDN() string { return s.store.base }

// Config returns a ready client configuration for this server (type
// openldap, presets and defaults applied): ldap.New(s.Config()).
func (s *Server) Config() ldap.Config {
	c := ldap.Config{
		Type:         ldap.TypeOpenLDAP,
		URLs:         []string{s.url},
		BaseDN:       s.store.base,
		BindDN:       s.opts.bindDN,
		BindPassword: s.opts.bindPW,
		DialTimeout:  2 * time.Second,
		Timeout:      5 * time.Second,
	}
	// The example rules tag department (no dev user has one); read it, as
	// a configuration with those rules must.
	c.Attributes.Extra = []string{"department"}
	c.ApplyPreset()
	c.SetDefaults()
	return c
}

// Close stops the server and cuts every client connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	err := s.gl.Stop()
	s.log.Info("embedded directory stopped", "url", s.url)
	return err
}

func (s *Server) setBound(conn int, dn string) {
	s.mu.Lock()
	s.bound[conn] = dn
	s.mu.Unlock()
}

func (s *Server) boundDN(conn int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound[conn]
}

func (s *Server) handleOther(w *gldap.ResponseWriter, r *gldap.Request) {
	_ = w.Write(r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform),
		gldap.WithDiagnosticMessage("operation not supported by the embedded directory")))
}

func (s *Server) handleBind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	defer func() { _ = w.Write(resp) }()
	s.setBound(r.ConnectionID(), "") // a bind resets the identity first (RFC 4511 4.2.1)
	m, err := r.GetSimpleBindMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultAuthMethodNotSupported)
		return
	}
	password := string(m.Password)
	if m.UserName == "" && password == "" {
		resp.SetResultCode(gldap.ResultSuccess) // anonymous
		return
	}
	if password == "" {
		// RFC 4513 5.1.2: unauthenticated bind, refused like slapd does.
		resp.SetResultCode(gldap.ResultUnwillingToPerform)
		resp.SetDiagnosticMessage("unauthenticated bind (DN with no password) disallowed")
		return
	}
	wantPP := false
	for _, c := range m.Controls {
		if c.GetControlType() == ppolicyOID {
			wantPP = true
		}
	}
	setPP := func(code uint) {
		if !wantPP {
			return
		}
		if c, err := gldap.NewControlBeheraPasswordPolicy(gldap.WithErrorCode(code)); err == nil {
			resp.SetControls(c)
		}
	}
	key, err := normDN(m.UserName)
	if err != nil {
		resp.SetResultCode(gldap.ResultInvalidDNSyntax)
		return
	}
	e := s.store.byKey[key]
	if e == nil {
		return // 49
	}
	if e.first("pwdAccountLockedTime") != "" {
		setPP(gldap.BeheraAccountLocked)
		return
	}
	ok := false
	for _, stored := range e.get("userPassword") {
		if checkPassword(stored, password) {
			ok = true
		}
	}
	if !ok {
		return
	}
	if s.store.expired(e, s.opts.now()) {
		setPP(gldap.BeheraPasswordExpired)
		return
	}
	if strings.EqualFold(e.first("pwdReset"), "TRUE") {
		setPP(gldap.BeheraChangeAfterReset)
	}
	resp.SetResultCode(gldap.ResultSuccess)
	s.setBound(r.ConnectionID(), e.dn)
}

func (s *Server) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	defer func() { _ = w.Write(done) }()
	m, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	if m.BaseDN == "" && m.Scope == gldap.BaseObject {
		s.writeEntry(w, r, s.rootDSE(), m.Attributes)
		return
	}
	if s.boundDN(r.ConnectionID()) == "" {
		done.SetResultCode(gldap.ResultInsufficientAccessRights)
		done.SetDiagnosticMessage("bind first")
		return
	}
	filter, err := goldap.CompileFilter(m.Filter)
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		done.SetDiagnosticMessage("bad filter")
		return
	}
	baseKey, err := normDN(m.BaseDN)
	if err != nil {
		done.SetResultCode(gldap.ResultInvalidDNSyntax)
		return
	}
	if _, ok := s.store.byKey[baseKey]; !ok {
		done.SetResultCode(gldap.ResultNoSuchObject)
		return
	}
	n := int64(0)
	for _, e := range s.store.entries {
		if !inScope(e, baseKey, int64(m.Scope)) || !match(filter, e) {
			continue
		}
		if m.SizeLimit > 0 && n >= m.SizeLimit {
			done.SetResultCode(gldap.ResultSizeLimitExceeded)
			return
		}
		s.writeEntry(w, r, e, m.Attributes)
		n++
	}
}

func (s *Server) rootDSE() *entry {
	return &entry{attrs: []attr{
		{name: "objectClass", vals: []string{"top"}},
		{name: "namingContexts", vals: []string{s.store.base}},
		{name: "supportedLDAPVersion", vals: []string{"3"}},
		{name: "supportedControl", vals: []string{ppolicyOID}},
		{name: "vendorName", vals: []string{"Warden embedded directory (dev only)"}},
	}}
}

// writeEntry sends e with the attributes asked for (RFC 4511 4.5.1.8): none
// for "1.1", all user attributes for an empty list or "*", operational ones
// by name or "+". userPassword is never sent.
func (s *Server) writeEntry(w *gldap.ResponseWriter, r *gldap.Request, e *entry, want []string) {
	all, oper := len(want) == 0, false
	names := map[string]bool{}
	for _, a := range want {
		switch a {
		case "*":
			all = true
		case "+":
			oper = true
		case "1.1":
		default:
			names[strings.ToLower(a)] = true
		}
	}
	resp := r.NewSearchResponseEntry(e.dn)
	for _, a := range e.attrs {
		l := strings.ToLower(a.name)
		if l == "userpassword" {
			continue
		}
		if operational[l] {
			if oper || names[l] {
				resp.AddAttribute(a.name, a.vals)
			}
			continue
		}
		if all || names[l] {
			resp.AddAttribute(a.name, a.vals)
		}
	}
	for _, a := range e.oper {
		if oper || names[strings.ToLower(a.name)] {
			resp.AddAttribute(a.name, a.vals)
		}
	}
	_ = w.Write(resp)
}
