// Package credcache is the part of the warden CLI's credential cache that
// the warden-credentials binary reads on its own: the credentials files,
// the index that maps a `credential-process` command line to one of them,
// and the credential_process JSON. It imports only small packages of the
// standard library (a test checks), because every package linked into
// warden-credentials costs start-up time at each start of an AWS tool.
package credcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// MinRemaining: cached credentials are reused while more than this
// remains (botocore refreshes at 15 minutes, item 47).
const MinRemaining = 15 * time.Minute

// ConfigDir is the CLI's config directory: WARDEN_CONFIG_DIR, else
// os.UserConfigDir()/warden, else "" (none).
func ConfigDir() string {
	if d := os.Getenv("WARDEN_CONFIG_DIR"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "warden")
	}
	return ""
}

// CacheDir is the CLI's cache directory: WARDEN_CACHE_DIR, else
// os.UserCacheDir()/warden, else "" (none).
func CacheDir() string {
	if d := os.Getenv("WARDEN_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "warden")
	}
	return ""
}

// ConfigPath is the config file in configDir.
func ConfigPath(configDir string) string { return filepath.Join(configDir, "config.yaml") }

// Creds is one role's cached credentials, cacheDir/creds/<key>.json, where
// key is the hex SHA-256 of via + role ARN (computed by the CLI: this
// package links no crypto).
type Creds struct {
	RoleARN string `json:"role_arn"`
	Via     string `json:"via"`
	// Seconds is the session length they were minted for (DurationSeconds
	// sent to STS); 0: unknown (STS's default, or an older cache file).
	Seconds int `json:"seconds,omitempty"`
	// Minted is when the CLI received them (zero in older files).
	Minted          time.Time `json:"minted,omitzero"`
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Expiration      time.Time `json:"expiration"`
	AccountID       string    `json:"account_id,omitempty"`
}

// CredsPath is the credentials file of key in cacheDir.
func CredsPath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "creds", key+".json")
}

// Fresh reports whether c may be handed out at now: more than
// MinRemaining left.
func (c Creds) Fresh(now time.Time) bool { return c.Expiration.Sub(now) > MinRemaining }

// Serves reports whether c may be handed out at now for a request of
// seconds (0: no particular session length asked for): Fresh, and when a
// length is asked for, minted for about that length (SameSeconds).
func (c Creds) Serves(seconds int, now time.Time) bool {
	return c.Fresh(now) && (seconds == 0 || SameSeconds(c.Seconds, seconds))
}

// SameSeconds reports whether credentials minted for a session of minted
// seconds answer a request for asked seconds: they differ by at most a
// tenth of the asked length, so that `--duration 1h` reuses what
// `--duration 1h` minted while `--duration 4h` does not take a 1 h
// credential (nor `--duration 1h` a 4 h one). Unknown (0) is never the
// same as a length asked for.
func SameSeconds(minted, asked int) bool {
	if minted <= 0 || asked <= 0 {
		return false
	}
	d := minted - asked
	if d < 0 {
		d = -d
	}
	return d*10 <= asked
}

// CredentialProcessJSON renders c as the output of an AWS
// credential_process (item 45 of the AWS federation rules; botocore
// ProcessProvider and aws-sdk-go-v2 processcreds), for warden and
// warden-credentials alike: {"Version":1,"AccessKeyId","SecretAccessKey",
// "SessionToken","Expiration":RFC 3339 UTC} plus "AccountId" when known,
// and a newline.
func CredentialProcessJSON(c Creds) []byte {
	out := struct {
		Version         int    `json:"Version"`
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
		Expiration      string `json:"Expiration"`
		AccountID       string `json:"AccountId,omitempty"`
	}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339), c.AccountID}
	b, _ := json.Marshal(out) // strings and an int: cannot fail
	return append(b, '\n')
}

// IndexVersion is Entry.Version; raise it when what the CLI does with
// the same command line and config changes, so that older entries stop
// matching. 2: the asked session length (Entry.Seconds) is part of the
// decision.
const IndexVersion = 2

// Entry is one index file: the full CLI wrote it after `warden
// credential-process Args...` printed the credentials of Key, with the
// config file ConfigPath holding exactly Config. The role and STS path
// follow from the command line and the config alone when --role is an
// ARN (the CLI writes entries for no other), so the same command line
// with the same config would read the same credentials file again.
type Entry struct {
	Version    int      `json:"version"`
	Args       []string `json:"args"` // after "credential-process"
	ConfigPath string   `json:"config_path"`
	Config     []byte   `json:"config"`
	Key        string   `json:"key"` // the credentials file's key
	RoleARN    string   `json:"role_arn"`
	Via        string   `json:"via"`
	// Seconds is the session length the command line asks for
	// (--duration); 0: none (Creds.Serves).
	Seconds int `json:"seconds,omitempty"`
}

// EntryPath is the index file for args and configPath in cacheDir:
// cacheDir/creds/index/<FNV-1a of both>.json. Two command lines with
// the same hash share a file; the last one written wins and the other
// finds a mismatch, which only costs it a start of the full CLI.
func EntryPath(cacheDir, configPath string, args []string) string {
	h := fnv.New64a()
	h.Write([]byte(configPath))
	for _, a := range args {
		h.Write([]byte{0})
		h.Write([]byte(a))
	}
	return filepath.Join(cacheDir, "creds", "index", strconv.FormatUint(h.Sum64(), 16)+".json")
}

// ErrMiss means that the index or the cache does not answer for this
// command line: the full CLI must.
var ErrMiss = errors.New("credcache: not cached")

// Lookup returns the credential_process output that `warden
// credential-process args...` would print, from the cache alone: the
// index entry for args must match them and the current config file
// byte for byte, and its credentials file must hold that role and path
// with more than MinRemaining left at now, minted for the session length
// the command line asks for (Creds.Serves). A command line asking for
// new credentials (--refresh) always misses. Anything else is ErrMiss
// (or a read error); it never writes.
func Lookup(cacheDir, configDir string, args []string, now time.Time) ([]byte, error) {
	if cacheDir == "" || configDir == "" || asksRefresh(args) {
		return nil, ErrMiss
	}
	cfgPath := ConfigPath(configDir)
	var e Entry
	if err := readJSON(EntryPath(cacheDir, cfgPath, args), &e); err != nil {
		return nil, err
	}
	if e.Version != IndexVersion || e.ConfigPath != cfgPath || !slices.Equal(e.Args, args) || !validKey(e.Key) ||
		e.RoleARN == "" || e.Via == "" || len(e.Config) == 0 {
		return nil, ErrMiss
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cfg, e.Config) {
		return nil, ErrMiss
	}
	var c Creds
	if err := readJSON(CredsPath(cacheDir, e.Key), &c); err != nil {
		return nil, err
	}
	if c.RoleARN != e.RoleARN || c.Via != e.Via || !c.Serves(e.Seconds, now) {
		return nil, ErrMiss
	}
	return CredentialProcessJSON(c), nil
}

// asksRefresh reports whether args hold --refresh (in any form the CLI's
// flag parser takes), which must reach the full CLI.
func asksRefresh(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if len(a) >= 9 && a[:9] == "--refresh" {
			return true
		}
	}
	return false
}

// validKey accepts a hex SHA-256, so that an entry names a file in
// cacheDir/creds and nothing else.
func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !('0' <= k[i] && k[i] <= '9' || 'a' <= k[i] && k[i] <= 'f') {
			return false
		}
	}
	return true
}

// readJSON reads path into v; a missing file or one that does not parse
// is ErrMiss.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ErrMiss
	}
	if err != nil {
		return err
	}
	if json.Unmarshal(b, v) != nil {
		return ErrMiss
	}
	return nil
}
