package rolemap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wardenidp/warden/internal/awsfed"
)

// Workloads are programs, not people: a service outside AWS that signs in
// to the token endpoint as an OAuth client (client_credentials grant)
// with its own key pair (private_key_jwt, RFC 7523) or a client secret,
// and exchanges the access token for a role-scoped web-identity token of
// one of its roles. The rule set names each workload, its credentials and
// its roles; removing a workload, disabling it or taking a role away
// takes effect at its next token request, on every replica, because the
// rules are what every request is checked against.

// Limits of the workloads section.
const (
	MaxWorkloads        = 10_000
	MaxWorkloadKeys     = 10 // two during a rotation; room for several instances
	MaxWorkloadRoles    = 100
	MaxWorkloadTags     = 45 // AWS's 50 session tags less Warden's own
	maxJWKSURL          = 2048
	MinWorkloadSecret   = 32 // bytes of a client secret (checked when it is used)
	WorkloadSubjectPref = "workload:"
)

// Workload is one workload client.
type Workload struct {
	// ID is the OAuth client_id: [a-z0-9-]{1,64}, unique among workloads.
	// Only the client_credentials grant looks workloads up, so an ID equal
	// to an oidc.clients entry's names two different clients of two
	// different grants; better avoided.
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Disabled refuses every token request of the workload, at once,
	// without forgetting its registration.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// JWKS holds the workload's public keys (private_key_jwt): its
	// assertions must verify with one of them. Two keys with distinct kids
	// let a workload rotate without downtime.
	JWKS *WorkloadJWKS `yaml:"jwks,omitempty" json:"jwks,omitempty"`
	// JWKSURL is where the workload publishes its public keys instead
	// (https, or http on a loopback host); wardend fetches and caches it.
	JWKSURL string `yaml:"jwks_url,omitempty" json:"jwks_url,omitempty"`
	// SecretSHA256 is the hex SHA-256 of the workload's client secret
	// (client_secret_basic or client_secret_post), for clients that cannot
	// sign. A secret must be at least MinWorkloadSecret bytes.
	SecretSHA256 string `yaml:"secret_sha256,omitempty" json:"secret_sha256,omitempty"`
	// Roles are the roles the workload may get, in catalogued accounts.
	Roles []WorkloadRole `yaml:"roles" json:"roles"`
	// Tags are session tags of every role session of the workload, besides
	// Warden's own (WardenRole, WardenAccount, WardenWorkload).
	Tags map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// WorkloadJWKS is a JSON Web Key Set (RFC 7517 §5) of public keys.
type WorkloadJWKS struct {
	Keys []JWK `yaml:"keys" json:"keys"`
}

// JWK is one public key (RFC 7517): RSA (kty RSA, n, e; 2048 bits or
// more) or EC P-256 (kty EC, crv P-256, x, y). Private members are not
// fields, so a private key pasted by mistake is refused by the parser.
type JWK struct {
	Kty string `yaml:"kty" json:"kty"`
	Kid string `yaml:"kid,omitempty" json:"kid,omitempty"`
	Use string `yaml:"use,omitempty" json:"use,omitempty"`
	Alg string `yaml:"alg,omitempty" json:"alg,omitempty"`
	Crv string `yaml:"crv,omitempty" json:"crv,omitempty"`
	X   string `yaml:"x,omitempty" json:"x,omitempty"`
	Y   string `yaml:"y,omitempty" json:"y,omitempty"`
	N   string `yaml:"n,omitempty" json:"n,omitempty"`
	E   string `yaml:"e,omitempty" json:"e,omitempty"`
}

// JWKFromKey returns the public JWK of an RSA or EC public key, with kid
// (RFC 7638 thumbprint when kid is empty).
func JWKFromKey(pub any, kid string) (JWK, error) {
	k := jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		k.Algorithm = string(jose.RS256)
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return JWK{}, fmt.Errorf("rolemap: only P-256 EC keys are supported")
		}
		k.Algorithm = string(jose.ES256)
	default:
		return JWK{}, fmt.Errorf("rolemap: an RSA or EC P-256 public key is needed, got %T", pub)
	}
	if kid == "" {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return JWK{}, err
		}
		k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	b, err := k.MarshalJSON()
	if err != nil {
		return JWK{}, err
	}
	var j JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return JWK{}, err
	}
	return j, nil
}

// WorkloadRole is one role of a workload.
type WorkloadRole struct {
	ARN string `yaml:"arn" json:"arn"`
	// MaxSessionSeconds is the longest role session the workload may ask
	// for (0: AWS's default of 1h), 900–43200 otherwise.
	MaxSessionSeconds int `yaml:"max_session_seconds,omitempty" json:"max_session_seconds,omitempty"`
}

// WorkloadGrant is one role of a compiled workload.
type WorkloadGrant struct {
	RoleARN     string `json:"role_arn"`
	AccountID   string `json:"account_id"`
	AccountName string `json:"account_name"`
	Partition   string `json:"partition"`
	RoleName    string `json:"role_name"`
	// SessionSeconds is max_session_seconds (0: none set).
	SessionSeconds int `json:"session_seconds,omitempty"`
}

// CompiledWorkload is a validated workload, as the token endpoint uses it.
type CompiledWorkload struct {
	ID, Description string
	Disabled        bool
	// Keys are the inline public keys; JWKSURL the published ones.
	Keys    []jose.JSONWebKey
	JWKSURL string
	// SecretHash is the SHA-256 of the client secret; HasSecret says
	// whether one is registered.
	SecretHash [32]byte
	HasSecret  bool
	Grants     []WorkloadGrant // in the rule's order
	Tags       []Tag           // sorted by key, not transitive
}

// Grant returns the workload's grant of roleARN.
func (w *CompiledWorkload) Grant(roleARN string) (WorkloadGrant, bool) {
	for _, g := range w.Grants {
		if g.RoleARN == roleARN {
			return g, true
		}
	}
	return WorkloadGrant{}, false
}

// Workload returns the compiled workload id, if the rules have it.
func (e *Engine) Workload(id string) (*CompiledWorkload, bool) {
	w, ok := e.workloads[id]
	return w, ok
}

// WorkloadsWithRole lists the workloads (enabled or not) that may get
// roleARN, in ID order: the workload half of "who gets what".
func (e *Engine) WorkloadsWithRole(roleARN string) []*CompiledWorkload {
	var out []*CompiledWorkload
	for _, w := range e.workloads {
		if _, ok := w.Grant(roleARN); ok {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b *CompiledWorkload) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// workloads validates and compiles the workloads section.
func (b *builder) workloads(list []Workload) {
	if len(list) > MaxWorkloads {
		b.add("workloads", "%d workloads; at most %d are allowed", len(list), MaxWorkloads)
		return
	}
	b.e.workloads = make(map[string]*CompiledWorkload, len(list))
	ids := make(map[string]string, len(list))
	for i, w := range list {
		path := "workloads[" + strconv.Itoa(i) + "]"
		cw := &CompiledWorkload{ID: w.ID, Description: w.Description, Disabled: w.Disabled, JWKSURL: w.JWKSURL}
		ok := true
		switch {
		case w.ID == "":
			b.add(path+".id", "is required")
			ok = false
		case len(w.ID) > maxIDLength || strings.TrimLeft(w.ID, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
			b.add(path+".id", "must be 1–%d characters of a-z, 0-9 and -, got %s", maxIDLength, awsfed.Quote(w.ID))
			ok = false
		default:
			if prev, dup := ids[w.ID]; dup {
				b.add(path+".id", "duplicate workload ID %q (also %s)", w.ID, prev)
				ok = false
			} else {
				ids[w.ID] = path
			}
		}
		if msg := checkOptionalText(w.Description, maxDescription, true); msg != "" {
			b.add(path+".description", "%s", msg)
		}
		if w.JWKS == nil && w.JWKSURL == "" && w.SecretSHA256 == "" {
			b.add(path, "a workload needs a way to authenticate: jwks (its public keys), jwks_url, or secret_sha256")
		}
		if w.JWKS != nil && w.JWKSURL != "" {
			b.add(path+".jwks_url", "give the keys either inline (jwks) or by URL (jwks_url), not both")
		}
		if w.JWKS != nil {
			cw.Keys = b.workloadKeys(path+".jwks.keys", w.JWKS.Keys)
		}
		if w.JWKSURL != "" {
			if msg := checkJWKSURL(w.JWKSURL); msg != "" {
				b.add(path+".jwks_url", "%s", msg)
			}
		}
		if w.SecretSHA256 != "" {
			h, err := hex.DecodeString(w.SecretSHA256)
			if err != nil || len(h) != 32 || strings.ToLower(w.SecretSHA256) != w.SecretSHA256 {
				b.add(path+".secret_sha256", "must be 64 lower-case hex digits (the SHA-256 of the secret: printf %%s \"$SECRET\" | sha256sum)")
			} else {
				copy(cw.SecretHash[:], h)
				cw.HasSecret = true
			}
		}
		cw.Grants = b.workloadRoles(path, w.Roles)
		cw.Tags = b.workloadTags(path+".tags", w.Tags)
		if ok {
			b.e.workloads[w.ID] = cw
		}
	}
}

func (b *builder) workloadKeys(path string, keys []JWK) []jose.JSONWebKey {
	switch {
	case len(keys) == 0:
		b.add(path, "jwks needs at least one key")
		return nil
	case len(keys) > MaxWorkloadKeys:
		b.add(path, "%d keys; at most %d are allowed", len(keys), MaxWorkloadKeys)
		return nil
	}
	out := make([]jose.JSONWebKey, 0, len(keys))
	kids := make(map[string]int, len(keys))
	for i, k := range keys {
		kp := path + "[" + strconv.Itoa(i) + "]"
		if len(keys) > 1 && k.Kid == "" {
			b.add(kp+".kid", "is required when there are several keys (a rotation): the assertion's kid picks the key")
		}
		if k.Kid != "" {
			if prev, dup := kids[k.Kid]; dup {
				b.add(kp+".kid", "duplicate kid %s (also [%d])", awsfed.Quote(k.Kid), prev)
				continue
			}
			kids[k.Kid] = i
		}
		jk, msg := parseJWK(k)
		if msg != "" {
			b.add(kp, "%s", msg)
			continue
		}
		out = append(out, jk)
	}
	return out
}

// parseJWK turns a JWK into a verified public key, or says what is wrong.
func parseJWK(k JWK) (jose.JSONWebKey, string) {
	if len(k.Kid) > 256 {
		return jose.JSONWebKey{}, "kid is longer than 256 bytes"
	}
	switch k.Use {
	case "", "sig":
	default:
		return jose.JSONWebKey{}, fmt.Sprintf("use must be \"sig\" (or absent), got %s", awsfed.Quote(k.Use))
	}
	switch {
	case k.Kty == "RSA" && (k.Alg == "" || k.Alg == string(jose.RS256)):
	case k.Kty == "EC" && (k.Alg == "" || k.Alg == string(jose.ES256)):
	case k.Kty == "RSA" || k.Kty == "EC":
		return jose.JSONWebKey{}, fmt.Sprintf("alg %s: only RS256 (RSA keys) and ES256 (EC P-256 keys) are accepted", awsfed.Quote(k.Alg))
	case k.Kty == "oct":
		return jose.JSONWebKey{}, "a symmetric key (kty oct) cannot be registered: register the public half of a key pair (RSA or EC P-256)"
	default:
		return jose.JSONWebKey{}, fmt.Sprintf("kty must be RSA or EC, got %s", awsfed.Quote(k.Kty))
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return jose.JSONWebKey{}, "not a valid key"
	}
	var jk jose.JSONWebKey
	if err := jk.UnmarshalJSON(raw); err != nil {
		return jose.JSONWebKey{}, "not a valid " + k.Kty + " public key: " + strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
	}
	switch pub := jk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return jose.JSONWebKey{}, fmt.Sprintf("an RSA key of %d bits; at least 2048 are needed", pub.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return jose.JSONWebKey{}, "only the P-256 curve is accepted (ES256)"
		}
	default:
		return jose.JSONWebKey{}, "not a public key"
	}
	return jk, ""
}

// ParseJWKS reads a JWKS document (a workload's jwks_url): the keys
// usable for assertions, and what is wrong with the others (by index).
func ParseJWKS(doc []byte) ([]jose.JSONWebKey, []string) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, []string{"not a JWKS document (JSON with a keys list)"}
	}
	if len(set.Keys) > 100 {
		return nil, []string{fmt.Sprintf("%d keys; at most 100 are read", len(set.Keys))}
	}
	var keys []jose.JSONWebKey
	var problems []string
	for i, raw := range set.Keys {
		var k JWK
		if err := json.Unmarshal(raw, &k); err != nil {
			problems = append(problems, fmt.Sprintf("keys[%d]: not a JWK", i))
			continue
		}
		jk, msg := parseJWK(k)
		if msg != "" {
			problems = append(problems, fmt.Sprintf("keys[%d]: %s", i, msg))
			continue
		}
		keys = append(keys, jk)
	}
	return keys, problems
}

func checkJWKSURL(s string) string {
	if len(s) > maxJWKSURL {
		return fmt.Sprintf("is %d bytes long; at most %d allowed", len(s), maxJWKSURL)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL, got " + awsfed.Quote(s)
	}
	if u.User != nil {
		return "must not carry a user name or password"
	}
	if u.Fragment != "" {
		return "must not have a fragment (#…)"
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return "must be https (http only on a loopback host), got " + awsfed.Quote(s)
	}
	return ""
}

func (b *builder) workloadRoles(path string, roles []WorkloadRole) []WorkloadGrant {
	switch {
	case len(roles) == 0:
		b.add(path+".roles", "a workload needs at least one role")
		return nil
	case len(roles) > MaxWorkloadRoles:
		b.add(path+".roles", "%d roles; at most %d per workload", len(roles), MaxWorkloadRoles)
		return nil
	}
	out := make([]WorkloadGrant, 0, len(roles))
	seen := make(map[string]int, len(roles))
	for j, r := range roles {
		rpath := path + ".roles[" + strconv.Itoa(j) + "]"
		if msg := checkSeconds(r.MaxSessionSeconds); msg != "" {
			b.add(rpath+".max_session_seconds", "%s", msg)
		}
		a, ok := b.roleARN(rpath, r.ARN, j, seen, "for this workload")
		if !ok {
			continue
		}
		acc := b.e.accounts[a.Account]
		out = append(out, WorkloadGrant{RoleARN: r.ARN, AccountID: a.Account, AccountName: acc.name,
			Partition: a.Partition, RoleName: a.Name, SessionSeconds: r.MaxSessionSeconds})
	}
	return out
}

// Warden's own session tag for workloads: the workload's ID.
const TagWorkload = "WardenWorkload"

func (b *builder) workloadTags(path string, tags map[string]string) []Tag {
	if len(tags) == 0 {
		return nil
	}
	if len(tags) > MaxWorkloadTags {
		b.add(path, "%d tags; at most %d are allowed (AWS takes 50 session tags, Warden sends its own)", len(tags), MaxWorkloadTags)
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Tag, 0, len(keys))
	folded := make(map[string]string, len(keys))
	for _, k := range keys {
		kp := path + "." + k
		if err := awsfed.ValidTagKey(k); err != nil {
			b.add(kp, "%v", err)
			continue
		}
		for _, own := range []string{awsfed.TagRole, awsfed.TagAccount, TagWorkload} {
			if strings.EqualFold(k, own) {
				b.add(kp, "%s is Warden's own session tag", own)
			}
		}
		if prev, dup := folded[strings.ToLower(k)]; dup {
			b.add(kp, "same key as %s (AWS compares tag keys regardless of case)", prev)
			continue
		}
		folded[strings.ToLower(k)] = k
		if err := awsfed.ValidTagValue(tags[k]); err != nil {
			b.add(kp, "%v", err)
			continue
		}
		out = append(out, Tag{Key: k, Value: tags[k]})
	}
	return out
}
