package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Store is where a key ring is kept: a directory (Dir; a local disk, a
// shared volume or a mounted Kubernetes secret) or Redis (RedisStore).
// Every replica reads the same ring; changes are made under the store's
// lock (a file lock, or Redis's optimistic transaction), so that concurrent
// starts create one key and concurrent rotations make one next key.
type Store interface {
	// load reads the ring; ErrNoRing when the store holds none.
	load(ctx context.Context) (*ring, error)
	// reload reads the ring when it differs from cur; nil when unchanged.
	reload(ctx context.Context, cur *ring) (*ring, error)
	// create makes the ring with one current key from gen, unless another
	// process made one first, and returns the stored ring.
	create(ctx context.Context, gen func() (Signer, []byte, []byte, error)) (*ring, error)
	// change runs fn on the manifest; files fn puts are stored with it,
	// and files the new manifest no longer names are deleted.
	change(ctx context.Context, fn func(m *manifest, put func(name string, data []byte)) error) (*ring, error)
	// String names the store in logs and messages.
	String() string
	// alg is the algorithm of the ring kept (AlgRS256 or AlgES256).
	alg() string
	// withAlg is the same place's ring of algorithm alg.
	withAlg(alg string) Store
}

// ForAlg is the ring of algorithm alg kept where st keeps its ring: st
// itself for AlgRS256; for AlgES256, manifest-es256.json in the same
// directory, or the Redis key with ":es256" appended.
func ForAlg(st Store, alg string) (Store, error) {
	if alg != AlgRS256 && alg != AlgES256 {
		return nil, fmt.Errorf("keys: algorithm %q not supported (%s, %s)", alg, AlgRS256, AlgES256)
	}
	return st.withAlg(alg), nil
}

// manifestName is the manifest of alg's ring in a directory.
func manifestName(alg string) string {
	if alg == AlgES256 {
		return "manifest-es256.json"
	}
	return manifestFile
}

// Dir is the RSA ring kept in a directory: manifest.json and one PEM file
// per key and certificate, each written atomically.
func Dir(dir string) Store { return dirStore{dir: dir, algo: AlgRS256} }

type dirStore struct{ dir, algo string }

func (d dirStore) String() string {
	if d.algo == AlgRS256 {
		return d.dir
	}
	return filepath.Join(d.dir, manifestName(d.algo))
}

func (d dirStore) alg() string                     { return d.algo }
func (d dirStore) withAlg(alg string) Store        { return dirStore{dir: d.dir, algo: alg} }
func (d dirStore) manifest() string                { return manifestName(d.algo) }
func (d dirStore) parse(raw []byte) (*ring, error) { return parseRing(raw, d.read, d.algo) }

func (d dirStore) read(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.dir, name))
}

func (d dirStore) load(context.Context) (*ring, error) {
	raw, err := d.read(d.manifest())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keys: %s: %w", d, ErrNoRing)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return d.parse(raw)
}

func (d dirStore) reload(_ context.Context, cur *ring) (*ring, error) {
	raw, err := d.read(d.manifest())
	if errors.Is(err, os.ErrNotExist) && cur.src == nil {
		return nil, nil // still no ring (LoadStore)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if bytes.Equal(raw, cur.src) {
		return nil, nil
	}
	return d.parse(raw)
}

func (d dirStore) create(ctx context.Context, gen func() (Signer, []byte, []byte, error)) (*ring, error) {
	dir := d.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rg, err := d.load(ctx)
	if !errors.Is(err, ErrNoRing) {
		return rg, err // another replica created it meanwhile, or a real error
	}
	kp, cp := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)
	found := false
	if d.algo == AlgRS256 { // the step-1 pair is RSA
		if found, err = pairExists(dir, kp, cp); err != nil {
			return nil, err
		}
	}
	m := manifest{Version: 1}
	if found {
		s, err := loadPair(kp, cp)
		if err != nil {
			return nil, err
		}
		m.Keys = append(m.Keys, manifestKey{ID: s.ID, State: StateCurrent, Created: s.Cert.NotBefore.UTC(), KeyFile: keyFile, CertFile: certFile})
	} else {
		s, kpem, cpem, err := gen()
		if err != nil {
			return nil, err
		}
		e := entryFor(s, StateCurrent)
		// the files before the manifest that names them: a crash here
		// leaves only unused files
		if err := writeAtomic(dir, e.KeyFile, kpem); err != nil {
			return nil, err
		}
		if err := writeAtomic(dir, e.CertFile, cpem); err != nil {
			return nil, err
		}
		m.Keys = append(m.Keys, e)
	}
	raw, err := encodeManifest(m)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(dir, d.manifest(), raw); err != nil {
		return nil, err
	}
	return d.load(ctx)
}

func (d dirStore) change(ctx context.Context, fn func(*manifest, func(string, []byte)) error) (*ring, error) {
	dir := d.dir
	if _, err := os.Stat(filepath.Join(dir, d.manifest())); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("keys: %s: %w", dir, ErrNoRing)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rg, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(rg.raw, d.manifest())
	if err != nil {
		return nil, err
	}
	before := named(m)
	var werr error
	put := func(name string, data []byte) {
		if werr == nil {
			werr = writeAtomic(dir, name, data)
		}
	}
	if err := fn(&m, put); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	raw, err := encodeManifest(m)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(dir, d.manifest(), raw); err != nil {
		return nil, err
	}
	// The manifest no longer names them: removing the files is hygiene (no
	// retired private key lying around); a failure leaves unused files.
	after := named(m)
	for name := range before {
		if !after[name] {
			os.Remove(filepath.Join(dir, name))
		}
	}
	return d.load(ctx)
}
