package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	yaml "go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// Workloads (rolemap.Workload) are the fourth kind of object of the rule
// set: programs that sign in to the token endpoint as OAuth clients and
// exchange their token for a role. They are edited like the other kinds
// (forms, the JSON API, the history), with three additions:
//
//   - the public keys may be pasted as a JWKS, one JWK or PEM blocks, and
//     are stored as a JWKS; a private key is refused, not stored;
//   - a client secret is made by the server (secretBytes random bytes,
//     base64url): only its SHA-256 is stored, and the secret is shown once,
//     on the answer to the form (or in the API's answer), never logged or
//     audited;
//   - disable / enable: a rules change that refuses (or again allows) every
//     token request of the workload from the next one on.

// Form fields of a workload. roles: one "ARN [max_session_seconds]" per
// line; tags: one key=value per line; keys: a JWKS, a JWK or PEM public
// keys; secret: one of secretNone, secretKeep, secretGenerate; has_secret
// (hidden) is the start of the stored secret's hash, for the form's
// "keep" choice on redisplay (display only: keeping reads the stored one).
var workloadFields = []string{"id", "description", "disabled", "roles", "tags", "keys", "jwks_url", "secret", "has_secret"}

// Choices of a workload form's client secret.
const (
	secretNone     = "none"
	secretKeep     = "keep"
	secretGenerate = "generate"
)

// secretBytes is the length of a generated client secret, before base64url.
const secretBytes = 32

// workloadFromForm reads the workload fields of a form (the secret is
// workloadSecret's). Problems go to fields by form field name.
func workloadFromForm(f url.Values, fields map[string][]string, val func(string) string) rolemap.Workload {
	w := rolemap.Workload{ID: val("id"), Description: val("description"), Disabled: f.Get("disabled") != "",
		JWKSURL: val("jwks_url")}
	for n, line := range strings.Split(strings.ReplaceAll(val("roles"), "\r\n", "\n"), "\n") {
		parts := strings.Fields(line)
		switch {
		case len(parts) == 0:
			continue
		case len(parts) > 2:
			fields["roles"] = append(fields["roles"], fmt.Sprintf("Line %d: write the role ARN, optionally followed by a session length in seconds (900–43200).", n+1))
			continue
		}
		r := rolemap.WorkloadRole{ARN: parts[0]}
		if len(parts) == 2 {
			secs, err := strconv.Atoi(parts[1])
			if err != nil {
				fields["roles"] = append(fields["roles"], fmt.Sprintf("Line %d: %q is not a number of seconds.", n+1, parts[1]))
				continue
			}
			r.MaxSessionSeconds = secs
		}
		w.Roles = append(w.Roles, r)
	}
	for n, line := range strings.Split(strings.ReplaceAll(val("tags"), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		_, dup := w.Tags[k]
		switch {
		case !ok || k == "":
			fields["tags"] = append(fields["tags"], fmt.Sprintf("Line %d: write key=value.", n+1))
			continue
		case dup:
			fields["tags"] = append(fields["tags"], fmt.Sprintf("Line %d: the key %s is given twice.", n+1, k))
			continue
		}
		if w.Tags == nil {
			w.Tags = map[string]string{}
		}
		w.Tags[k] = v
	}
	keys, problems, _ := parseKeys(val("keys"))
	fields["keys"] = append(fields["keys"], problems...)
	if len(fields["keys"]) == 0 {
		delete(fields, "keys")
	}
	if len(keys) > 0 {
		w.JWKS = &rolemap.WorkloadJWKS{Keys: keys}
	}
	return w
}

// workloadSecret applies the form's secret choice to obj: none clears
// it, keep keeps the stored one (keep true: changeObject copies it in),
// generate makes a new secret, stores its hash in obj and returns it. A
// secret is made only when the form has no problems so far.
func workloadSecret(f url.Values, editing bool, obj *object, fields map[string][]string) (secret string, keep bool) {
	obj.workload.SecretSHA256 = ""
	switch f.Get("secret") {
	case "", secretNone:
		return "", false
	case secretKeep:
		if !editing {
			fields["secret"] = append(fields["secret"], "A new workload has no secret to keep: generate one, or choose none.")
			return "", false
		}
		return "", true
	case secretGenerate:
		if len(fields) > 0 {
			return "", false
		}
		secret = newSecret()
		obj.workload.SecretSHA256 = secretHash(secret)
		return secret, false
	}
	fields["secret"] = append(fields["secret"], "Choose none, keep or generate.")
	return "", false
}

// newSecret returns a fresh client secret: secretBytes random bytes,
// base64url without padding.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secretHash is what secret_sha256 holds: the hex SHA-256 of the secret
// as the client sends it.
func secretHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Key input formats.
var (
	// kidLine names the kid of the PEM block after it: "kid: k1" or "kid=k1".
	kidLine = regexp.MustCompile(`(?m)^\s*kid\s*[:=]\s*(\S+)\s*$`)
	// privateMembers are the JWK members of private and symmetric keys
	// (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
	privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
)

const keysUsage = `Paste a JWKS (JSON with "keys"), one JWK (JSON), the jwks block that warden workload keygen prints (YAML), or one or more PEM public keys (-----BEGIN PUBLIC KEY-----).`

// parseKeys reads the keys field: a JWKS, a JWK, a JSON array of JWKs, or
// PEM blocks (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE; a line "kid: NAME"
// before a block names its kid, else it is the key's RFC 7638
// thumbprint). It refuses private keys. Key checks that the rules make
// (size, curve, duplicate kids) are left to them. Messages never quote
// key material. private is true when a private key was pasted.
func parseKeys(text string) (keys []rolemap.JWK, problems []string, private bool) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return nil, nil, false
	case text[0] == '{' || text[0] == '[':
		return parseJWKs(text)
	case strings.Contains(text, "-----BEGIN "):
		return parsePEMKeys(text)
	}
	if js, ok := yamlKeys(text); ok {
		return parseJWKs(js)
	}
	return nil, []string{keysUsage}, strings.Contains(text, "PRIVATE KEY")
}

// yamlKeys turns the YAML that `warden workload keygen` prints ("jwks:"
// with "keys:" under it), or a bare "keys:" mapping, into JSON for
// parseJWKs.
func yamlKeys(text string) (string, bool) {
	if len(text) > 64<<10 {
		return "", false
	}
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return "", false
	}
	if inner, ok := doc["jwks"].(map[string]any); ok && len(doc) == 1 {
		doc = inner
	}
	if _, ok := doc["keys"]; !ok {
		return "", false
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// scrubPrivateKeys empties the keys field of a form to show again when it
// holds a private key: the page does not send a secret back.
func scrubPrivateKeys(form map[string]string) {
	if _, _, private := parseKeys(form["keys"]); private {
		form["keys"] = ""
	}
}

func parseJWKs(text string) ([]rolemap.JWK, []string, bool) {
	var raws []json.RawMessage
	dec := json.NewDecoder(strings.NewReader(text))
	if text[0] == '[' {
		if err := dec.Decode(&raws); err != nil {
			return nil, []string{"Not valid JSON: " + jsonProblem(err) + ". " + keysUsage}, false
		}
	} else {
		var top map[string]json.RawMessage
		if err := dec.Decode(&top); err != nil {
			return nil, []string{"Not valid JSON: " + jsonProblem(err) + ". " + keysUsage}, false
		}
		if ks, ok := top["keys"]; ok {
			if err := json.Unmarshal(ks, &raws); err != nil {
				return nil, []string{`"keys" must be a list of JWKs.`}, false
			}
		} else {
			b, _ := json.Marshal(top)
			raws = []json.RawMessage{b}
		}
	}
	if dec.More() {
		return nil, []string{"There is more after the JSON: paste one JWKS or one JWK."}, false
	}
	if len(raws) == 0 {
		return nil, []string{"The key set has no keys."}, false
	}
	var out []rolemap.JWK
	var problems []string
	private := false
	for i, raw := range raws {
		var members map[string]any
		if err := json.Unmarshal(raw, &members); err != nil {
			problems = append(problems, fmt.Sprintf("Key %d is not a JSON object.", i+1))
			continue
		}
		if members["kty"] == "oct" {
			private = true
			problems = append(problems, fmt.Sprintf("Key %d is a symmetric key (kty oct): register the public half of a key pair (RSA or EC P-256); it was not saved.", i+1))
			continue
		}
		if m := slices.IndexFunc(privateMembers, func(m string) bool { _, ok := members[m]; return ok }); m >= 0 {
			private = true
			problems = append(problems, fmt.Sprintf("Key %d is a private key (it has the member %q): paste only its public half; it was not saved.", i+1, privateMembers[m]))
			continue
		}
		// Other members (x5c, key_ops, ext, …) are not kept.
		var k rolemap.JWK
		if err := json.Unmarshal(raw, &k); err != nil {
			problems = append(problems, fmt.Sprintf("Key %d: %s.", i+1, jsonProblem(err)))
			continue
		}
		out = append(out, k)
	}
	return out, problems, private
}

func parsePEMKeys(text string) ([]rolemap.JWK, []string, bool) {
	var out []rolemap.JWK
	var problems []string
	private := strings.Contains(text, "PRIVATE KEY")
	rest := []byte(text)
	for n := 1; ; n++ {
		start := bytes.Index(rest, []byte("-----BEGIN "))
		if start < 0 {
			if s := strings.TrimSpace(string(rest)); s != "" && !kidLine.MatchString(s) {
				problems = append(problems, "There is text after the last PEM block. "+keysUsage)
			}
			break
		}
		before := rest[:start]
		// One block: from this BEGIN to the end of the next END line (so
		// that a broken block is reported, not skipped by pem.Decode).
		end := bytes.Index(rest[start:], []byte("-----END "))
		if end >= 0 {
			end += start
			if nl := bytes.IndexByte(rest[end:], '\n'); nl >= 0 {
				end += nl + 1
			} else {
				end = len(rest)
			}
		}
		var block *pem.Block
		if end >= 0 {
			block, _ = pem.Decode(rest[start:end])
		}
		if block == nil {
			problems = append(problems, fmt.Sprintf("Key %d is not a complete PEM block (-----BEGIN …----- to -----END …-----).", n))
			break
		}
		rest = rest[end:]
		if strings.TrimSpace(string(before)) != "" && !kidLine.Match(before) {
			problems = append(problems, fmt.Sprintf("Key %d: there is text before it; only a line kid: NAME may come before a block.", n))
			continue
		}
		kid := ""
		if m := kidLine.FindAllSubmatch(before, -1); len(m) > 0 {
			kid = string(m[len(m)-1][1])
		}
		pub, msg := pemPublicKey(block)
		if msg != "" {
			problems = append(problems, fmt.Sprintf("Key %d %s", n, msg))
			continue
		}
		k, err := rolemap.JWKFromKey(pub, kid)
		if err != nil {
			problems = append(problems, fmt.Sprintf("Key %d is not usable: only RSA (2048 bits or more) and EC P-256 keys are accepted.", n))
			continue
		}
		out = append(out, k)
	}
	return out, problems, private
}

// pemPublicKey returns the public key of a PEM block, or what is wrong
// with it (a sentence without its subject: "is …").
func pemPublicKey(b *pem.Block) (any, string) {
	var pub any
	var err error
	switch {
	case strings.Contains(b.Type, "PRIVATE KEY"):
		return nil, fmt.Sprintf("is a private key (%s): paste only its public half (openssl pkey -in key.pem -pubout prints it). It was not saved.", b.Type)
	case b.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(b.Bytes)
	case b.Type == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case b.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Sprintf("is a PEM block of type %s; paste PUBLIC KEY blocks.", awsfed.Quote(b.Type))
	}
	if err != nil {
		return nil, fmt.Sprintf("is not a valid %s block.", b.Type)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 {
			return nil, fmt.Sprintf("is an RSA key of %d bits; at least 2048 are needed.", bits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Sprintf("is an EC key on the curve %s; only P-256 (ES256) is accepted.", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		return nil, "is an Ed25519 key; only RSA (2048 bits or more) and EC P-256 keys are accepted."
	default:
		return nil, "is not an RSA or EC P-256 public key."
	}
	return pub, ""
}

// workloadToForm is the form of a stored workload.
func workloadToForm(w rolemap.Workload) map[string]string {
	var roles, tags []string
	for _, r := range w.Roles {
		line := r.ARN
		if r.MaxSessionSeconds != 0 {
			line += " " + strconv.Itoa(r.MaxSessionSeconds)
		}
		roles = append(roles, line)
	}
	for _, k := range slices.Sorted(maps.Keys(w.Tags)) {
		tags = append(tags, k+"="+w.Tags[k])
	}
	form := map[string]string{"id": w.ID, "description": w.Description, "disabled": checkbox(w.Disabled),
		"roles": strings.Join(roles, "\n"), "tags": strings.Join(tags, "\n"), "jwks_url": w.JWKSURL, "secret": secretNone}
	if w.JWKS != nil {
		b, err := json.MarshalIndent(w.JWKS, "", "  ")
		if err == nil {
			form["keys"] = string(b)
		}
	}
	if w.SecretSHA256 != "" {
		form["secret"], form["has_secret"] = secretKeep, shortHash(w.SecretSHA256)
	}
	return form
}

// shortHash is the start of a hex hash, for display.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// workloadFormField maps a problem path relative to a workload to its
// form field: "roles[1].arn" -> "roles" ("Role 2: …"), "jwks.keys[0]" ->
// "keys" ("Key 1: …"), "tags.team" -> "tags" ("team: …").
func workloadFormField(rel, msg string) (string, string) {
	name, rest, _ := strings.Cut(rel, ".")
	index := func(s string) (string, int) {
		i := strings.IndexByte(s, '[')
		if i < 0 {
			return s, -1
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s[i+1:], "]"))
		if err != nil {
			return s[:i], -1
		}
		return s[:i], n
	}
	switch base, n := index(name); {
	case base == "roles" && n >= 0:
		if rest == "max_session_seconds" {
			msg = "session length: " + msg
		}
		return "roles", fmt.Sprintf("Role %d: %s", n+1, msg)
	case base == "roles":
		return "roles", msg
	case base == "jwks":
		seg, field, _ := strings.Cut(rest, ".")
		if kb, kn := index(seg); kb == "keys" && kn >= 0 {
			if field != "" {
				msg = field + ": " + msg
			}
			return "keys", fmt.Sprintf("Key %d: %s", kn+1, msg)
		}
		return "keys", msg
	case base == "tags" && rest != "":
		return "tags", rest + ": " + msg
	case base == "secret_sha256":
		return "secret", msg
	case slices.Contains(workloadFields, base):
		return base, msg
	}
	return "", rel + ": " + msg
}

// workloadView is a workload in the list: its keys described.
type workloadView struct {
	rolemap.Workload
	Keys       []string // "k1 (EC P-256)", "k2 (RSA 2048 bits)"
	SecretHash string   // the start of secret_sha256
}

func workloadViews(ws []rolemap.Workload) []workloadView {
	out := make([]workloadView, 0, len(ws))
	for _, w := range ws {
		v := workloadView{Workload: w, SecretHash: shortHash(w.SecretSHA256)}
		if w.JWKS != nil {
			for _, k := range w.JWKS.Keys {
				v.Keys = append(v.Keys, keyLabel(k))
			}
		}
		out = append(out, v)
	}
	return out
}

// keyLabel names a JWK by kid and type.
func keyLabel(k rolemap.JWK) string {
	kid := k.Kid
	if kid == "" {
		kid = "(no kid)"
	}
	switch k.Kty {
	case "EC":
		return kid + " (EC " + k.Crv + ")"
	case "RSA":
		if n, err := base64.RawURLEncoding.DecodeString(k.N); err == nil {
			return fmt.Sprintf("%s (RSA %d bits)", kid, new(big.Int).SetBytes(n).BitLen())
		}
		return kid + " (RSA)"
	}
	return kid + " (" + k.Kty + ")"
}

func (a *Admin) pageWorkloads(c *gin.Context) {
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("workloads")
	p.Version, p.Workloads = cur.version.Version, workloadViews(cur.rs.Workloads)
	a.render(c, http.StatusOK, "workloads.html", p)
}

func (a *Admin) postWorkloadCreate(c *gin.Context) { a.postObject(c, kindWorkload, "", false) }
func (a *Admin) postWorkloadUpdate(c *gin.Context) {
	a.postObject(c, kindWorkload, c.Param("id"), false)
}
func (a *Admin) postWorkloadDelete(c *gin.Context) {
	a.postObject(c, kindWorkload, c.Param("id"), true)
}

// secretPage is the data of workload_secret.html.
type secretPage struct {
	page
	Secret        string
	TokenEndpoint string // "" when the server did not say (SetAWSSetup)
}

// showSecret answers a saved workload form that generated a client
// secret: the secret, this once (never stored, logged or audited; the
// page is not cached).
func (a *Admin) showSecret(c *gin.Context, ed edited, secret string) {
	p := secretPage{page: a.formPage(kindWorkload), Secret: secret}
	p.Version, p.ID = ed.version.Version, ed.after.id()
	p.Notice = fmt.Sprintf("Saved: the rules are now version %d.", ed.version.Version)
	if o := a.awsSetup.p.Load(); o != nil && o.Issuer != "" {
		p.TokenEndpoint = strings.TrimSuffix(o.Issuer, "/") + "/oauth/token"
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	web.Render(c, http.StatusOK, "workload_secret.html", p)
}

// apiSecret reads ?generate_secret= of an API create or update: true
// makes a client secret, puts its hash into obj and returns it, for the
// answer. false: the request was answered (a bad value).
func (a *Admin) apiSecret(c *gin.Context, k kind, obj *object) (string, bool) {
	q := c.Query("generate_secret")
	if q == "" {
		return "", true
	}
	gen, err := strconv.ParseBool(q)
	switch {
	case err != nil:
		a.jsonError(c, http.StatusBadRequest, "generate_secret must be true or false.", nil)
		return "", false
	case k != kindWorkload || obj == nil:
		a.jsonError(c, http.StatusBadRequest, "generate_secret is for creating or updating a workload.", nil)
		return "", false
	case !gen:
		return "", true
	}
	secret := newSecret()
	obj.workload.SecretSHA256 = secretHash(secret)
	c.Header("Cache-Control", "no-store")
	return secret, true
}

// postWorkloadToggle disables (or enables) a workload: a rules change,
// so that its next token request, on any replica, is refused (allowed).
func (a *Admin) postWorkloadToggle(disable bool) gin.HandlerFunc {
	verb := map[bool]string{true: "disable", false: "enable"}[disable]
	return func(c *gin.Context) {
		id := c.Param("id")
		action := kindWorkload.action() + "." + verb
		expected, ok := formVersion(c)
		if !ok {
			web.Fail(c, http.StatusBadRequest, "The form lacks the rules version it was loaded from. Reload the page and try again.", nil)
			return
		}
		var ed edited
		err := a.change(c.Request.Context(), expected, changeMeta(c, ""), func(rs *rolemap.RuleSet) error {
			i := find(rs, kindWorkload, id)
			if i < 0 {
				return errNoObject
			}
			before := get(rs, kindWorkload, i)
			after := before
			after.workload.Disabled = disable
			put(rs, after, i)
			ed.before, ed.after, ed.index = &before, &after, i
			return nil
		}, &ed.version)
		var pe *problemsError
		switch {
		case err == nil:
			a.record(c, action, id, "success", objectJSON(ed.before), objectJSON(ed.after),
				map[string]string{"version": strconv.FormatInt(ed.version.Version, 10)})
			c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/workloads?done=%sd&v=%d", verb, ed.version.Version))
		case errors.Is(err, store.ErrConflict):
			a.record(c, action, id, "conflict", "", "", nil)
			a.conflictPage(c, "/admin/workloads")
		case errors.Is(err, errNoObject):
			a.record(c, action, id, "not_found", "", "", nil)
			web.Fail(c, http.StatusNotFound, "There is no workload with this ID (it may have been deleted meanwhile).", nil)
		case errors.As(err, &pe):
			a.record(c, action, id, "invalid", "", "", nil)
			web.Fail(c, http.StatusUnprocessableEntity, "The rules do not validate, so nothing was saved ("+pe.Error()+").", nil)
		default:
			a.record(c, action, id, "error", "", "", nil)
			a.storeFailed(c, err)
		}
	}
}

// roleView is "who gets a role": the grant rules that name it, the
// pattern rules that may give it, and the workloads that may get it.
type roleView struct {
	ARN       string
	Grants    []roleGrant
	Patterns  []rolemap.PatternRule
	Workloads []roleWorkload
	Version   int64
}

// roleWorkload is a workload that may get the role.
type roleWorkload struct {
	ID, Description string
	Disabled        bool
	SessionSeconds  int // its max_session_seconds for the role (0: none)
}

// roleGrant is a grant rule naming the role, with its terms for it.
type roleGrant struct {
	Rule rolemap.GrantRule
	Role rolemap.RoleRef
}

// whoGetsRole answers ?role=ARN of the "who gets what" page.
func (a *Admin) whoGetsRole(c *gin.Context, p page) {
	if _, err := awsfed.ParseRoleARN(p.Role); err != nil || len(p.Role) > 2048 {
		p.Fields["role"] = []string{"Write a role ARN, e.g. arn:aws:iam::111122223333:role/Name."}
		a.render(c, http.StatusUnprocessableEntity, "whogets.html", p)
		return
	}
	cur, err := a.current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	rv := &roleView{ARN: p.Role, Version: cur.version.Version}
	for _, w := range cur.engine.WorkloadsWithRole(p.Role) {
		g, _ := w.Grant(p.Role)
		rv.Workloads = append(rv.Workloads, roleWorkload{ID: w.ID, Description: w.Description, Disabled: w.Disabled,
			SessionSeconds: g.SessionSeconds})
	}
	for _, g := range cur.rs.Grants {
		for _, r := range g.Roles {
			if r.ARN == p.Role {
				rv.Grants = append(rv.Grants, roleGrant{Rule: g, Role: r})
			}
		}
	}
	for _, pr := range cur.rs.Patterns {
		if templateMayBe(pr.RoleARN, p.Role) {
			rv.Patterns = append(rv.Patterns, pr)
		}
	}
	p.RoleView = rv
	a.render(c, http.StatusOK, "whogets.html", p)
}

// templateMayBe reports whether the role_arn template tmpl of a pattern
// rule may expand to arn: its literal parts match, each ${…} standing for
// one or more characters.
func templateMayBe(tmpl, arn string) bool {
	var re strings.Builder
	re.WriteString("^")
	for rest := tmpl; rest != ""; {
		i := strings.Index(rest, "${")
		j := strings.IndexByte(rest[max(i, 0):], '}')
		if i < 0 || j < 0 {
			re.WriteString(regexp.QuoteMeta(rest))
			break
		}
		re.WriteString(regexp.QuoteMeta(rest[:i]) + ".+")
		rest = rest[i+j+1:]
	}
	re.WriteString("$")
	m, err := regexp.MatchString(re.String(), arn)
	return err == nil && m
}
