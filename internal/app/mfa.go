package app

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/directory/ldap"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/keys"
	"github.com/wardenidp/warden/internal/mfa"
	"github.com/wardenidp/warden/internal/store"
)

// DevTOTPSecret is the TOTP secret of alice's demo factor in dev mode
// (printed at start: any authenticator app, or oathtool --totp -b).
const DevTOTPSecret = "WARDENDEVTOTPSECRETFORALICE23456"

// mfaKeys is the key that encrypts factor secrets, and earlier keys that
// still decrypt: mfa.encryption_key_file; else, with the signing keys in
// Redis (replicas without a shared disk), a key derived from
// keys.encryption_key_file, which every replica has, with a data_dir/mfa.key
// of an earlier single-host start kept as a previous key; else
// data_dir/mfa.key, created at first start.
func mfaKeys(cfg mfa.Config, o Options) ([]byte, [][]byte, error) {
	random := func(b []byte) error { _, err := rand.Read(b); return err }
	local := filepath.Join(o.DataDir, "mfa.key")
	var (
		key      []byte
		previous [][]byte
		err      error
	)
	switch {
	case cfg.EncryptionKeyFile != "":
		key, err = mfa.LoadKey(cfg.EncryptionKeyFile, false, nil)
	case o.Keys.Store == keys.StoreRedis:
		var kek []byte
		if kek, err = keys.LoadAESKey(o.Keys.EncryptionKeyFile, false, nil); err != nil {
			return nil, nil, fmt.Errorf("app: mfa: keys.encryption_key_file: %w", err)
		}
		if key, err = hkdf.Key(sha256.New, kek, nil, "warden mfa factor secrets v1", keys.AESKeySize); err != nil {
			return nil, nil, fmt.Errorf("app: mfa: %w", err)
		}
		if old, lerr := mfa.LoadKey(local, false, nil); lerr == nil {
			previous = append(previous, old)
		}
	default:
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("app: mfa: %w", err)
		}
		key, err = mfa.LoadKey(local, true, random)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	return key, previous, nil
}

// buildMFA makes the factor store, the policy and the pages. The
// encryption key comes from mfa.encryption_key_file, or DataDir/mfa.key
// (created at first start); previous keys still decrypt.
func buildMFA(ctx context.Context, o Options, st *store.Store, dir *ldap.Directory, auditTo audit.Logger, log *slog.Logger) (*mfa.Policy, *mfa.UI, error) {
	cfg := o.MFA
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("app: mfa: %w", err)
	}
	key, previous, err := mfaKeys(cfg, o)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range cfg.PreviousEncryptionKeyFiles {
		k, err := mfa.LoadKey(p, false, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("app: mfa previous key: %w", err)
		}
		previous = append(previous, k)
	}
	factors, err := mfa.New(st, key, o.Now, nil, previous...)
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	policy := mfa.NewPolicy(cfg, factors)
	pub, err := url.Parse(o.Server.PublicURL)
	if err != nil {
		return nil, nil, fmt.Errorf("app: mfa: server.public_url: %w", err)
	}
	// WebAuthn binds credentials to a domain name (the RP ID): a public URL
	// with an IP address cannot have passkeys (browsers refuse).
	var passkey *mfa.WebAuthn
	if net.ParseIP(pub.Hostname()) == nil && slices.Contains(cfg.Methods, identity.MethodWebAuthn) {
		passkey, err = factors.WebAuthn(mfa.WebAuthnConfig{RPID: pub.Hostname(), RPName: cfg.Issuer,
			Origins: []string{pub.Scheme + "://" + pub.Host}})
		if err != nil {
			return nil, nil, fmt.Errorf("app: %w", err)
		}
	} else if net.ParseIP(pub.Hostname()) != nil {
		log.Info("passkeys and security keys are off: server.public_url has an IP address, not a host name (try http://localhost:PORT)",
			"public_url", o.Server.PublicURL)
	}
	limiter, err := store.NewNamedLimiter(st, "mfa", cfg.Limits, o.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("app: mfa: %w", err)
	}
	admins := identity.NewGroupMatcher(o.Admin.Groups)
	ui, err := mfa.NewUI(mfa.UIDeps{Policy: policy, Factors: factors, Passkey: passkey, Limiter: limiter,
		Audit: auditTo, Logger: log, Clock: o.Now, IsAdmin: admins.Match})
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	if o.Dev != nil {
		// alice (an admin, who must use MFA in dev mode) gets a TOTP factor
		// with a known secret, so that the second step is seen at once.
		if alice, err := dir.Lookup(ctx, "alice"); err == nil {
			if _, err := factors.ImportTOTP(ctx, alice.ID, "Dev authenticator", DevTOTPSecret); err != nil {
				log.Warn("dev mode: alice's TOTP factor", "err", err.Error())
			}
		}
	}
	return policy, ui, nil
}
