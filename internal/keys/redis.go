package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The sealed ring in Redis: sealMagic, a 12-byte nonce, then AES-256-GCM of
// the JSON bundle with sealAAD as additional data.
var (
	sealMagic = []byte("WKR1")
	sealAAD   = []byte("warden key ring v1")
)

// ErrSealed: the ring in Redis does not open with the encryption key nor
// any previous one (a wrong keys.encryption_key_file, or tampering).
var ErrSealed = errors.New("the key ring in Redis does not decrypt with keys.encryption_key_file nor a previous key")

// bundle is what is sealed: the manifest and every file it names.
type bundle struct {
	Manifest []byte            `json:"manifest"`
	Files    map[string][]byte `json:"files"`
}

// RedisStore keeps the ring in one Redis key, sealed with AES-256-GCM under
// the key of keys.encryption_key_file, so that replicas need no shared disk
// and Redis (and its backups) never hold a private key in the clear. A
// rotation is one optimistic transaction (WATCH/MULTI); replicas follow at
// their next poll (keys.reload_interval, 500ms by default for Redis).
type RedisStore struct {
	c      redis.UniversalClient
	key    string
	seal   cipher.AEAD
	opens  []cipher.AEAD // current key first, then the previous ones
	legacy Store         // a ring copied in when Redis holds none; may be nil
	algo   string        // AlgRS256, or AlgES256 under key+":es256"
}

// NewRedisStore keeps the ring under key in c. kek seals; kek and previous
// open (a ring sealed with a previous key is sealed again with kek when
// loaded). When Redis holds no ring and importFrom holds one, that ring is
// copied in, so an install moving to Redis keeps the key its relying
// parties trust.
func NewRedisStore(c redis.UniversalClient, key string, kek []byte, previous [][]byte, importFrom Store) (*RedisStore, error) {
	s := &RedisStore{c: c, key: key, legacy: importFrom, algo: AlgRS256}
	for i, k := range append([][]byte{kek}, previous...) {
		block, err := aes.NewCipher(k)
		if err == nil && len(k) != AESKeySize {
			err = fmt.Errorf("want %d bytes, got %d", AESKeySize, len(k))
		}
		if err != nil {
			return nil, fmt.Errorf("keys: encryption key %d: %w", i, err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		s.opens = append(s.opens, g)
	}
	s.seal = s.opens[0]
	return s, nil
}

func (s *RedisStore) String() string { return "redis key " + s.key }

func (s *RedisStore) alg() string { return s.algo }

func (s *RedisStore) withAlg(alg string) Store {
	if alg == s.algo {
		return s
	}
	c := *s
	c.algo = alg
	c.key = strings.TrimSuffix(s.key, ":es256")
	if alg == AlgES256 {
		c.key += ":es256"
	}
	if s.legacy != nil {
		c.legacy = s.legacy.withAlg(alg)
	}
	return &c
}

func (s *RedisStore) sealBundle(b bundle) ([]byte, error) {
	plain, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	out := make([]byte, len(sealMagic)+s.seal.NonceSize(), len(sealMagic)+s.seal.NonceSize()+len(plain)+s.seal.Overhead())
	copy(out, sealMagic)
	if _, err := rand.Read(out[len(sealMagic):]); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return s.seal.Seal(out, out[len(sealMagic):], plain, sealAAD), nil
}

// open decrypts a sealed ring; stale when a previous key opened it.
func (s *RedisStore) open(sealed []byte) (b bundle, stale bool, err error) {
	n := len(sealMagic) + s.seal.NonceSize()
	if len(sealed) < n || !bytes.HasPrefix(sealed, sealMagic) {
		return b, false, fmt.Errorf("keys: %s: not a sealed key ring", s)
	}
	for i, g := range s.opens {
		plain, err := g.Open(nil, sealed[len(sealMagic):n], sealed[n:], sealAAD)
		if err != nil {
			continue
		}
		if err := json.Unmarshal(plain, &b); err != nil {
			return b, false, fmt.Errorf("keys: %s: %w", s, err)
		}
		return b, i > 0, nil
	}
	return b, false, fmt.Errorf("keys: %s: %w", s, ErrSealed)
}

// parse loads the ring of a sealed value.
func (s *RedisStore) parse(sealed []byte) (*ring, bool, error) {
	b, stale, err := s.open(sealed)
	if err != nil {
		return nil, false, err
	}
	rg, err := parseBundle(b, s.algo)
	if err != nil {
		return nil, false, err
	}
	rg.src = sealed
	return rg, stale, nil
}

func parseBundle(b bundle, alg string) (*ring, error) {
	return parseRing(b.Manifest, func(name string) ([]byte, error) {
		d, ok := b.Files[name]
		if !ok {
			return nil, fmt.Errorf("%s: missing from the sealed ring", name)
		}
		return d, nil
	}, alg)
}

func (s *RedisStore) get(ctx context.Context) ([]byte, error) {
	sealed, err := s.c.Get(ctx, s.key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("keys: %s: %w", s, ErrNoRing)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", s, err)
	}
	return sealed, nil
}

func (s *RedisStore) load(ctx context.Context) (*ring, error) {
	sealed, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	rg, stale, err := s.parse(sealed)
	if err != nil {
		return nil, err
	}
	if stale {
		// sealed under a previous encryption key: seal it again under the
		// current one, so that the previous key can be retired
		return s.change(ctx, func(*manifest, func(string, []byte)) error { return nil })
	}
	return rg, nil
}

func (s *RedisStore) reload(ctx context.Context, cur *ring) (*ring, error) {
	sealed, err := s.get(ctx)
	if errors.Is(err, ErrNoRing) && cur.src == nil {
		return nil, nil // still no ring (LoadStore)
	}
	if errors.Is(err, ErrNoRing) {
		// Redis lost the ring (flushed, or restarted without persistence):
		// put back this replica's copy rather than let a start make a new
		// key that no relying party trusts.
		if _, serr := s.c.SetNX(ctx, s.key, cur.src, 0).Result(); serr != nil {
			return nil, fmt.Errorf("keys: %s: the key ring is missing and could not be restored: %w", s, serr)
		}
		return nil, fmt.Errorf("keys: %s: the key ring was missing (Redis flushed, or restarted without persistence); restored from this replica's copy", s)
	}
	if err != nil {
		return nil, err
	}
	if bytes.Equal(sealed, cur.src) {
		return nil, nil
	}
	rg, _, err := s.parse(sealed)
	return rg, err
}

func (s *RedisStore) create(ctx context.Context, gen func() (Signer, []byte, []byte, error)) (*ring, error) {
	b, err := s.initial(ctx, gen)
	if err != nil {
		return nil, err
	}
	if _, err := parseBundle(b, s.algo); err != nil {
		return nil, err
	}
	sealed, err := s.sealBundle(b)
	if err != nil {
		return nil, err
	}
	// SET NX: of replicas starting together, one ring wins and all load it
	if _, err := s.c.SetNX(ctx, s.key, sealed, 0).Result(); err != nil {
		return nil, fmt.Errorf("keys: %s: %w", s, err)
	}
	return s.load(ctx)
}

// initial is the first ring: the one of the legacy store, else a new key.
func (s *RedisStore) initial(ctx context.Context, gen func() (Signer, []byte, []byte, error)) (bundle, error) {
	if d, ok := s.legacy.(dirStore); ok {
		rg, err := d.load(ctx)
		switch {
		case err == nil:
			m, err := decodeManifest(rg.raw, d.manifest())
			if err != nil {
				return bundle{}, err
			}
			b := bundle{Manifest: rg.raw, Files: map[string][]byte{}}
			for name := range named(m) {
				if b.Files[name], err = d.read(name); err != nil {
					return bundle{}, fmt.Errorf("keys: %w", err)
				}
			}
			return b, nil
		case !errors.Is(err, ErrNoRing):
			return bundle{}, fmt.Errorf("keys: copying the ring of %s into Redis: %w", d, err)
		}
	}
	sg, kpem, cpem, err := gen()
	if err != nil {
		return bundle{}, err
	}
	e := entryFor(sg, StateCurrent)
	raw, err := encodeManifest(manifest{Version: 1, Keys: []manifestKey{e}})
	if err != nil {
		return bundle{}, err
	}
	return bundle{Manifest: raw, Files: map[string][]byte{e.KeyFile: kpem, e.CertFile: cpem}}, nil
}

// maxChangeAttempts bounds the retries of a change that lost its optimistic
// transaction to another writer.
const maxChangeAttempts = 20

func (s *RedisStore) change(ctx context.Context, fn func(*manifest, func(string, []byte)) error) (*ring, error) {
	for range maxChangeAttempts {
		var out *ring
		err := s.c.Watch(ctx, func(tx *redis.Tx) error {
			sealed, err := tx.Get(ctx, s.key).Bytes()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("keys: %s: %w", s, ErrNoRing)
			}
			if err != nil {
				return fmt.Errorf("keys: %s: %w", s, err)
			}
			b, _, err := s.open(sealed)
			if err != nil {
				return err
			}
			m, err := decodeManifest(b.Manifest, manifestName(s.algo))
			if err != nil {
				return err
			}
			files := maps.Clone(b.Files)
			if err := fn(&m, func(name string, data []byte) { files[name] = data }); err != nil {
				return err
			}
			keep := named(m)
			maps.DeleteFunc(files, func(name string, _ []byte) bool { return !keep[name] })
			raw, err := encodeManifest(m)
			if err != nil {
				return err
			}
			next := bundle{Manifest: raw, Files: files}
			// checked before it is stored: a change never leaves a ring
			// that does not load
			rg, err := parseBundle(next, s.algo)
			if err != nil {
				return err
			}
			if rg.src, err = s.sealBundle(next); err != nil {
				return err
			}
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, s.key, rg.src, 0)
				return nil
			}); err != nil {
				return err
			}
			out = rg
			return nil
		}, s.key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("keys: %s: %d attempts lost to concurrent changes", s, maxChangeAttempts)
}
