package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/wardenidp/warden/internal/access"
	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/config"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/elevation"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/oidcop"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
)

const usersUsage = `usage:
  wardend users revoke -config FILE USERNAME   end all access of a user at once
  wardend users revoke -config FILE -id ID     the same, by directory ID (entryUUID / objectGUID)

revoke ends the user's browser sessions, every CLI sign-in (OIDC refresh
tokens and the access tokens minted from them) and the device codes they
approved that the CLI has not picked up yet, on every replica at once (the
state is in Redis), and records one audit event "access.revoke" with cause
"operator". The user is found in the directory by USERNAME; a user the
directory no longer knows is found by the name they last signed in with.
It does not change the directory: disable or delete the account there too,
or the user can sign in again. AWS sessions already issued keep working
until they end; docs/admin.md ("Offboarding") says how to cut them.
`

// usersCmd runs `wardend users ...`.
func usersCmd(args []string, stdout, stderr io.Writer) int {
	if sub, code := subcommand("users", usersUsage, []string{"revoke"}, args, stdout, stderr); sub == "" {
		return code
	}
	fs := flag.NewFlagSet("wardend users revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usersUsage+"\nflags:\n"); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "configuration file (the directory and redis blocks are used)")
	id := fs.String("id", "", "the user's directory ID instead of USERNAME")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var username string
	switch {
	case fs.NArg() == 1 && *id == "":
		username = fs.Arg(0)
	case fs.NArg() == 0 && *id != "":
	default:
		fmt.Fprintln(stderr, "wardend users revoke: give exactly one of USERNAME or -id ID")
		fs.Usage()
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "wardend users revoke: need -config FILE")
		return 2
	}
	c, err := config.Load(*cfgPath, os.LookupEnv)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "wardend users revoke: %s:\n%v\n", *cfgPath, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, u, err := revokeUser(ctx, c, username, *id, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wardend users revoke: %v\n", err)
		return 1
	}
	name := u.Username
	if name == "" {
		name = u.ID
	}
	fmt.Fprintf(stdout, "revoked %s (id %s): %d browser session(s), %d CLI sign-in(s), %d device code(s), %d elevation(s)\n",
		name, u.ID, res.Sessions, res.Grants, res.Devices, res.Elevations)
	return 0
}

func revokeUser(ctx context.Context, c *config.Config, username, id string, stderr io.Writer) (access.Result, identity.User, error) {
	logger := slog.New(c.Log.Handler(stderr)).With("command", "wardend users revoke")
	st, err := store.Open(ctx, c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		return access.Result{}, identity.User{}, fmt.Errorf("redis: %w", err)
	}
	defer st.Close()
	sessions, err := store.NewSessions(st, c.Session, nil, nil)
	if err != nil {
		return access.Result{}, identity.User{}, err
	}
	u := identity.User{ID: id, Username: username}
	if id == "" {
		u, err = findUser(ctx, c.Directory, sessions, username, logger)
		if err != nil {
			return access.Result{}, identity.User{}, err
		}
	}
	subKey, err := st.SharedSecret(ctx, "oidc-sub", 32)
	if err != nil {
		return access.Result{}, identity.User{}, err
	}
	auditTo := audit.Multi(audit.NewSlog(logger, nil), store.NewAuditStream(st, store.DefaultAuditMaxLen))
	acc, err := access.New(access.Deps{Directory: noDirectory{}, Sessions: sessions,
		Grants: oidcop.NewGrantRevoker(st, subKey), Audit: auditTo, Logger: logger})
	if err != nil {
		return access.Result{}, identity.User{}, err
	}
	// Elevations end too (webhooks are not sent from here: the audit log
	// records each end).
	elev, err := elevation.New(elevation.Deps{Config: c.Elevation, Store: store.NewElevations(st, nil), Rules: &rolemap.Holder{},
		Audit: auditTo, Logger: logger})
	if err != nil {
		return access.Result{}, identity.User{}, err
	}
	acc.SetElevations(elev)
	actor := "operator"
	if who := os.Getenv("SUDO_USER"); who != "" {
		actor += ":" + who
	} else if who := os.Getenv("USER"); who != "" {
		actor += ":" + who
	}
	res, err := acc.Revoke(ctx, u, access.CauseOperator, access.Request{Actor: actor, Via: "wardend users revoke"})
	return res, u, err
}

// findUser finds the directory ID of username: in the directory, or, for a
// user it no longer knows, from the name they last signed in with.
func findUser(ctx context.Context, dc ldap.Config, sessions *store.Sessions, username string, logger *slog.Logger) (identity.User, error) {
	dir, err := ldap.New(dc, ldap.WithLogger(logger))
	if err != nil {
		return identity.User{}, fmt.Errorf("directory: %w", err)
	}
	defer dir.Close()
	u, err := dir.Lookup(ctx, username)
	if err == nil {
		return u, nil
	}
	if !identity.IsGone(err) {
		return identity.User{}, fmt.Errorf("directory: %w (give -id ID to revoke without it)", err)
	}
	if identity.IsRejection(err) {
		// Disabled, locked...: the entry exists; Lookup refuses it but the
		// name index knows the ID of the sign-ins to end.
		logger.Info("the directory refuses this user already", "user", username, "answer", err.Error())
	}
	idOf, ierr := sessions.UserIDByName(ctx, username)
	switch {
	case ierr == nil:
		return identity.User{ID: idOf, Username: username}, nil
	case errors.Is(ierr, store.ErrNotFound):
		return identity.User{}, fmt.Errorf("%q: the directory does not know this user and nobody signed in with this name within the last %d days; give -id ID", username, int(store.UserNameTTL.Hours()/24))
	}
	return identity.User{}, ierr
}

// noDirectory: Revoke needs no look-up.
type noDirectory struct{}

func (noDirectory) Lookup(context.Context, string) (identity.User, error) {
	return identity.User{}, identity.ErrDirectoryUnavailable
}
