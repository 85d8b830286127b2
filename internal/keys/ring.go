package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Names inside the key directory. Files whose name starts with tmpPrefix are
// unfinished writes (a crash mid-write) and are never read.
const (
	manifestFile = "manifest.json"
	lockFile     = ".lock"
	tmpPrefix    = ".tmp-"
)

// Errors of the rotation commands; test with errors.Is.
var (
	// ErrNoRing: the directory holds no manifest (and no step-1 key pair);
	// wardend creates the ring on its first start.
	ErrNoRing = errors.New("no key ring")
	// ErrNextExists: Rotate was called while a next key waits for Promote.
	ErrNextExists = errors.New("a next key already exists")
	// ErrNoNext: Promote was called without a next key (run Rotate first).
	ErrNoNext = errors.New("no next key to promote")
)

// manifest is the JSON file that names every key of the ring and its state.
// Key files are written before the manifest that names them, and the
// manifest is replaced atomically, so a reader sees either the old ring or
// the new one.
type manifest struct {
	Version int           `json:"version"`
	Keys    []manifestKey `json:"keys"`
}

type manifestKey struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
	KeyFile   string    `json:"key_file"`
	CertFile  string    `json:"cert_file"`
}

// ring is one immutable snapshot: the manifest bytes and its loaded keys,
// current first, then next, then previous ones (most recently retired first).
type ring struct {
	raw     []byte // the manifest
	src     []byte // what the store holds (the manifest, or Redis's sealed bundle): a reload that finds the same bytes changes nothing
	signers []Signer
	jwk     map[string][]byte // public JWK JSON by key ID, built at load
}

// Ring is the key ring of one Store (a directory or Redis). Its methods are
// safe for concurrent use; Watch swaps in a new snapshot when the stored
// ring changes.
type Ring struct {
	st    Store
	cfg   Config
	now   func() time.Time
	state atomic.Pointer[ring]
}

// Open loads the ring in dir (Dir(dir)). On first start it creates dir
// (0700) and the ring under a lock, so that replicas starting together on
// one shared directory end with one key: the step-1 pair (signing-key.pem
// and signing-cert.pem, kept as they are) becomes the current key when
// present, else a new key of cfg.Size is generated. A manifest that names a
// missing or damaged file is an error, never a reason to make a new key.
// cfg is defaulted and validated here.
func Open(dir string, cfg Config, opts Options) (*Ring, error) {
	return OpenStore(context.Background(), Dir(dir), cfg, opts)
}

// OpenStore loads the ring kept in st, creating it on first start (once
// among replicas starting together).
func OpenStore(ctx context.Context, st Store, cfg Config, opts Options) (*Ring, error) {
	return openStore(ctx, st, cfg, opts, true)
}

// LoadStore loads the ring kept in st without ever creating it: when st
// holds none yet the ring is empty (no current key, nothing published), and
// Watch takes it in once another process made it (the ES256 ring, made by
// `wardend keys rotate -alg ES256` or by a replica that signs with it).
func LoadStore(ctx context.Context, st Store, cfg Config, opts Options) (*Ring, error) {
	return openStore(ctx, st, cfg, opts, false)
}

// openStore is OpenStore (create the ring when st holds none) and
// LoadStore (an empty ring then).
func openStore(ctx context.Context, st Store, cfg Config, opts Options, create bool) (*Ring, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keys: config: %w", err)
	}
	opts = opts.withDefaults()
	r := &Ring{st: st, cfg: cfg, now: opts.Now}
	rg, err := st.load(ctx)
	switch {
	case errors.Is(err, ErrNoRing) && create:
		// Read without the lock first: a read-only mount of an existing
		// ring (a Kubernetes secret) needs no lock file.
		rg, err = st.create(ctx, func() (Signer, []byte, []byte, error) { return newSigner(opts, st.alg(), cfg.Size, cfg.CertValidity) })
	case errors.Is(err, ErrNoRing):
		rg, err = &ring{jwk: map[string][]byte{}}, nil
	}
	if err != nil {
		return nil, err
	}
	r.state.Store(rg)
	return r, nil
}

// Alg is the algorithm of the ring's keys (AlgRS256 or AlgES256).
func (r *Ring) Alg() string { return r.st.alg() }

// Current is the key that signs now; a zero Signer (nil Private) while a
// ring opened by LoadStore is still empty.
func (r *Ring) Current() Signer {
	if st := r.state.Load(); len(st.signers) > 0 {
		return st.signers[0]
	}
	return Signer{}
}

// Next is the key that is published but does not sign yet, if any.
func (r *Ring) Next() (Signer, bool) {
	for _, s := range r.state.Load().signers {
		if s.State == StateNext {
			return s, true
		}
	}
	return Signer{}, false
}

// Published is every key a relying party should accept: current first, then
// next, then the previous keys retired less than PublishPrevious ago.
func (r *Ring) Published() []Signer {
	return published(r.state.Load().signers, r.cfg.PublishPrevious, r.now())
}

// All is every key in the manifest, including previous keys no longer
// published.
func (r *Ring) All() []Signer { return slices.Clone(r.state.Load().signers) }

// Where says where the ring is kept (the directory, or "redis key K").
func (r *Ring) Where() string { return r.st.String() }

func published(all []Signer, keep time.Duration, now time.Time) []Signer {
	out := make([]Signer, 0, len(all))
	for _, s := range all {
		if s.State != StatePrevious || IsPublished(s, keep, now) {
			out = append(out, s)
		}
	}
	return out
}

// IsPublished reports whether s is published at now when retired keys stay
// published for keep.
func IsPublished(s Signer, keep time.Duration, now time.Time) bool {
	return s.State != StatePrevious || now.Before(s.RetiredAt.Add(keep))
}

// JWKS is the RFC 7517 JWK Set of Published(): {"keys":[...]}, each with
// "alg" the ring's, "use":"sig", kid = the RFC 7638 thumbprint, x5c = the
// certificate.
func (r *Ring) JWKS() []byte {
	b, _ := r.appendJWKs([]byte(`{"keys":[`), false)
	return append(b, "]}"...)
}

// appendJWKs appends the JWKs of Published() to b, comma-separated, with a
// comma first when more; it reports whether it appended any.
func (r *Ring) appendJWKs(b []byte, more bool) ([]byte, bool) {
	st := r.state.Load()
	for _, s := range published(st.signers, r.cfg.PublishPrevious, r.now()) {
		if more {
			b = append(b, ',')
		}
		b, more = append(b, st.jwk[s.ID]...), true
	}
	return b, more
}

// Watch re-reads the stored ring every ReloadInterval until ctx ends, so
// that a replica follows a rotation made by another process (on a shared
// directory, a mounted secret, or in Redis). A ring that does not load
// (half-written by hand, a missing key file, a wrong encryption key) keeps
// the last good ring and logs an error, once per distinct problem.
func (r *Ring) Watch(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(r.cfg.ReloadInterval)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.reload(ctx)
		switch {
		case err == nil:
			lastErr = ""
			if changed {
				log.Info("keys: reloaded", "store", r.st.String(), "current", r.Current().ID, "published", len(r.Published()))
			}
		case ctx.Err() != nil:
		case err.Error() != lastErr:
			lastErr = err.Error()
			log.Error("keys: reload failed; keeping the last good key ring", "store", r.st.String(), "err", err)
		}
	}
}

// reload swaps in the stored ring when it differs from the one loaded.
func (r *Ring) reload(ctx context.Context) (bool, error) {
	rg, err := r.st.reload(ctx, r.state.Load())
	if err != nil || rg == nil {
		return false, err
	}
	r.state.Store(rg)
	return true, nil
}

// parseRing checks a manifest and loads every key it names, reading the
// files through read: one current key, at most one next key, unique IDs,
// plain file names, and each ID equal to the thumbprint of the key in its
// file (a swapped file is an error, not a different key).
// Every key must be of alg (an RSA key in the ES256 ring is an error).
func parseRing(raw []byte, read func(name string) ([]byte, error), alg string) (*ring, error) {
	manifestFile := manifestName(alg)
	m, err := decodeManifest(raw, manifestFile)
	if err != nil {
		return nil, err
	}
	st := &ring{raw: raw, src: raw, jwk: map[string][]byte{}}
	for _, e := range m.Keys {
		s, err := loadPairFrom(read, e.KeyFile, e.CertFile)
		if err != nil {
			return nil, fmt.Errorf("keys: %s names key %s: %w", manifestFile, e.ID, err)
		}
		if s.ID != e.ID {
			return nil, fmt.Errorf("keys: %s: key %s: %s holds a different key (%s)", manifestFile, e.ID, e.KeyFile, s.ID)
		}
		if s.Alg != alg {
			return nil, fmt.Errorf("keys: %s: key %s: %s holds an %s key, not %s", manifestFile, e.ID, e.KeyFile, s.Alg, alg)
		}
		s.State, s.Created, s.RetiredAt = e.State, e.Created, e.RetiredAt
		if st.jwk[s.ID], err = json.Marshal(jwk(s)); err != nil {
			return nil, fmt.Errorf("keys: key %s: jwk: %w", s.ID, err)
		}
		st.signers = append(st.signers, s)
	}
	order := map[string]int{StateCurrent: 0, StateNext: 1, StatePrevious: 2}
	slices.SortStableFunc(st.signers, func(a, b Signer) int {
		if d := order[a.State] - order[b.State]; d != 0 {
			return d
		}
		return b.RetiredAt.Compare(a.RetiredAt)
	})
	return st, nil
}

// decodeManifest checks raw; manifestFile names it in errors.
func decodeManifest(raw []byte, manifestFile string) (manifest, error) {
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("keys: %s: %w", manifestFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, fmt.Errorf("keys: %s: data after the JSON object", manifestFile)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if m.Version != 1 {
		bad("version %d not supported (1)", m.Version)
	}
	count := map[string]int{}
	ids := map[string]bool{}
	for i, e := range m.Keys {
		count[e.State]++
		switch e.State {
		case StateCurrent, StateNext:
			if !e.RetiredAt.IsZero() {
				bad("keys[%d]: retired_at is only for previous keys", i)
			}
		case StatePrevious:
			if e.RetiredAt.IsZero() {
				bad("keys[%d]: a previous key needs retired_at", i)
			}
		default:
			bad("keys[%d]: state %q is not current, next or previous", i, e.State)
		}
		if e.ID == "" {
			bad("keys[%d]: id missing", i)
		}
		if ids[e.ID] {
			bad("keys[%d]: id %s listed twice", i, e.ID)
		}
		ids[e.ID] = true
		for _, f := range []struct{ key, name string }{{"key_file", e.KeyFile}, {"cert_file", e.CertFile}} {
			if f.name == "" || f.name != filepath.Base(f.name) || f.name == "." || f.name == ".." || strings.HasPrefix(f.name, tmpPrefix) {
				bad("keys[%d]: %s %q must be a plain file name in the key directory", i, f.key, f.name)
			}
		}
	}
	if count[StateCurrent] != 1 {
		bad("exactly one current key needed (found %d)", count[StateCurrent])
	}
	if count[StateNext] > 1 {
		bad("at most one next key allowed (found %d)", count[StateNext])
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("keys: %s: %w", manifestFile, err)
	}
	return m, nil
}

func encodeManifest(m manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return append(b, '\n'), nil
}

func entryFor(s Signer, state string) manifestKey {
	return manifestKey{ID: s.ID, State: state, Created: s.Created, KeyFile: "key-" + s.ID + ".pem", CertFile: "cert-" + s.ID + ".pem"}
}

// named is the set of files a manifest names.
func named(m manifest) map[string]bool {
	out := map[string]bool{}
	for _, e := range m.Keys {
		out[e.KeyFile], out[e.CertFile] = true, true
	}
	return out
}

// Rotate makes a next key in dir: published from the next reload on, not
// signing until Promote. ErrNextExists when one is waiting already.
func Rotate(dir string, cfg Config, opts Options) (Signer, error) {
	return RotateStore(context.Background(), Dir(dir), cfg, opts)
}

// RotateStore is Rotate on the ring kept in st.
func RotateStore(ctx context.Context, st Store, cfg Config, opts Options) (Signer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Signer{}, fmt.Errorf("keys: config: %w", err)
	}
	opts = opts.withDefaults()
	var s Signer
	_, err := st.change(ctx, func(m *manifest, put func(name string, data []byte)) error {
		for _, e := range m.Keys {
			if e.State == StateNext {
				return fmt.Errorf("keys: %w (%s); promote it first", ErrNextExists, e.ID)
			}
		}
		var (
			kpem, cpem []byte
			err        error
		)
		if s, kpem, cpem, err = newSigner(opts, st.alg(), cfg.Size, cfg.CertValidity); err != nil {
			return err
		}
		s.State = StateNext
		e := entryFor(s, StateNext)
		put(e.KeyFile, kpem)
		put(e.CertFile, cpem)
		m.Keys = append(m.Keys, e)
		return nil
	})
	if err != nil {
		return Signer{}, err
	}
	return s, nil
}

// Promote makes the next key current and the current key previous
// (RetiredAt now), and returns the new current key. Previous keys retired
// PublishPrevious ago or more are dropped from the manifest and their files
// deleted. ErrNoNext when there is no next key.
func Promote(dir string, cfg Config, opts Options) (Signer, error) {
	return PromoteStore(context.Background(), Dir(dir), cfg, opts)
}

// PromoteStore is Promote on the ring kept in st.
func PromoteStore(ctx context.Context, st Store, cfg Config, opts Options) (Signer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Signer{}, fmt.Errorf("keys: config: %w", err)
	}
	opts = opts.withDefaults()
	now := opts.Now().UTC()
	rg, err := st.change(ctx, func(m *manifest, _ func(string, []byte)) error {
		if !slices.ContainsFunc(m.Keys, func(e manifestKey) bool { return e.State == StateNext }) {
			return fmt.Errorf("keys: %w; run rotate first", ErrNoNext)
		}
		kept := m.Keys[:0]
		for _, e := range m.Keys {
			switch e.State {
			case StateCurrent:
				e.State, e.RetiredAt = StatePrevious, now
			case StateNext:
				e.State = StateCurrent
			case StatePrevious:
				if !now.Before(e.RetiredAt.Add(cfg.PublishPrevious)) {
					continue
				}
			}
			kept = append(kept, e)
		}
		m.Keys = kept
		return nil
	})
	if err != nil {
		return Signer{}, err
	}
	return rg.signers[0], nil
}

// List is every key of the ring in dir (current, next, previous), without
// creating anything. ErrNoRing when dir holds no manifest.
func List(dir string) ([]Signer, error) {
	return ListStore(context.Background(), Dir(dir))
}

// ListStore is List on the ring kept in st.
func ListStore(ctx context.Context, st Store) ([]Signer, error) {
	rg, err := st.load(ctx)
	if err != nil {
		return nil, err
	}
	return rg.signers, nil
}
