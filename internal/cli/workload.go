package cli

// `warden workload`: AWS credentials for a program, not a person. A
// workload registered in the rules (rolemap.Workload) signs in at the token
// endpoint as an OAuth client with the client_credentials grant, proving
// itself with its own key (private_key_jwt, RFC 7523 §2.2) or a client
// secret (RFC 6749 §2.3.1), exchanges the access token for a role-scoped
// web-identity token (RFC 8693), and hands that to STS
// AssumeRoleWithWebIdentity. None of it prompts, and none of it reads or
// writes the user's configuration or caches.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/rolemap"
)

// The client_credentials grant and its JWT client assertion (RFC 7523 §2.2).
const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionLifetime is how long a client assertion is valid: wardend
	// takes at most five minutes, and the assertion is sent at once.
	assertionLifetime = time.Minute
	// workloadRSABits is the size of RSA keys that keygen makes.
	workloadRSABits = 3072
	// minRSABits is the smallest RSA key that wardend takes for RS256.
	minRSABits = 2048
)

// Environment variables read by the workload commands for a flag that is
// not given on the command line.
const (
	envWorkloadIdP        = "WARDEN_IDP"
	envWorkloadClientID   = "WARDEN_CLIENT_ID"
	envWorkloadKeyFile    = "WARDEN_KEY_FILE"
	envWorkloadSecretFile = "WARDEN_SECRET_FILE"
	envWorkloadRoleARN    = "WARDEN_ROLE_ARN"
)

// Refreshing the token file: how long the first retry waits, and the
// longest wait between retries.
const (
	tokenFileFirstRetry = time.Second
	tokenFileMaxRetry   = 30 * time.Second
	tokenFileMinRefresh = time.Second
)

func workloadCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workload",
		Short: "AWS credentials for a program (a workload client) instead of a person",
		Long: `Commands for workloads: programs outside AWS that wardend knows as OAuth
clients (the workloads section of the rules). A workload proves itself with
its own key pair (or a client secret), gets a web-identity token for one of
its roles, and trades it with AWS STS for temporary credentials. Nothing is
prompted for and nothing of your own sign-in is used.

  warden workload keygen --out key.pem          # make a key, print its JWKS for the rules
  warden workload creds --idp https://idp.example.com --client-id orders-worker \
      --key key.pem --role arn:aws:iam::111122223333:role/orders-sqs
  warden workload token-file --out /var/run/warden/token ...   # for AWS_WEB_IDENTITY_TOKEN_FILE

The flags --idp, --client-id, --key, --secret-file and --role may come from
WARDEN_IDP, WARDEN_CLIENT_ID, WARDEN_KEY_FILE, WARDEN_SECRET_FILE and
WARDEN_ROLE_ARN; a flag wins over its variable.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(workloadKeygenCmd(a), workloadCredsCmd(a), workloadTokenCmd(a), workloadTokenFileCmd(a))
	return cmd
}

// ---- keygen ----

func workloadKeygenCmd(a *App) *cobra.Command {
	var out, alg, kid string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make a workload key pair: the private key to a file, the public JWKS for the rules to stdout",
		Long: "Make a key pair for a workload: the private key goes to --out (PEM, PKCS#8, mode 0600),\n" +
			"the public key is printed as the jwks entry of the workload in the rules (YAML; --json: a JWKS).\n" +
			"The kid is the key's RFC 7638 thumbprint unless --kid names one; `workload creds` uses the same\n" +
			"default, so --kid is needed there only for a kid of your own.",
		Example: "  warden workload keygen --out orders-worker.pem\n  warden workload keygen --out k2.pem --alg RS256 --kid 2025-06 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required: the file for the private key")
			}
			key, err := newWorkloadKey(alg)
			if err != nil {
				return err
			}
			jwk, err := rolemap.JWKFromKey(key.Public(), kid)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
			if err := writeNewKeyFile(out, pemBytes, force); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Wrote the private key to %s (mode 0600, kid %s). Keep it secret; register the public key below\n"+
				"under the workload's jwks in the rules.\n", out, jwk.Kid)
			return printJWKS(a.Stdout, jwk, asJSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "out", "o", "", "file for the private key (PEM, PKCS#8, written with mode 0600)")
	fl.StringVar(&alg, "alg", string(jose.ES256), "ES256 (an EC P-256 key) or RS256 (an RSA key of 3072 bits)")
	fl.StringVar(&kid, "kid", "", "key ID (default: the RFC 7638 thumbprint of the public key)")
	fl.BoolVar(&force, "force", false, "replace --out when it exists")
	fl.BoolVar(&asJSON, "json", false, "print the public key as a JWKS (JSON) instead of the rules' YAML")
	_ = cmd.RegisterFlagCompletionFunc("alg", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{string(jose.ES256), string(jose.RS256)}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// newWorkloadKey makes a private key for alg (ES256 or RS256).
func newWorkloadKey(alg string) (crypto.Signer, error) {
	switch strings.ToUpper(alg) {
	case string(jose.ES256):
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case string(jose.RS256):
		return rsa.GenerateKey(rand.Reader, workloadRSABits)
	}
	return nil, fmt.Errorf("--alg %q: want ES256 (EC P-256) or RS256 (RSA)", alg)
}

// writeNewKeyFile writes a private key with mode 0600: only to a new file,
// unless force, which replaces an existing one (atomically).
func writeNewKeyFile(path string, data []byte, force bool) error {
	if force {
		if err := writeFileReplace(path, data); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("keygen: %s exists; give another --out, or --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}

// printJWKS prints the public key as the workload's jwks entry of the
// rules (YAML), or as a JWKS document (JSON).
func printJWKS(w io.Writer, jwk rolemap.JWK, asJSON bool) error {
	set := rolemap.WorkloadJWKS{Keys: []rolemap.JWK{jwk}}
	if asJSON {
		b, err := json.MarshalIndent(set, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("# the workload's public key, for its entry under workloads: in the rules\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]rolemap.WorkloadJWKS{"jwks": set}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ---- key loading ----

// loadWorkloadKey reads the workload's private key from a PEM file:
// PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE
// KEY"), an RSA key of 2048 bits or more (RS256) or an EC P-256 key
// (ES256), the algorithms wardend takes.
func loadWorkloadKey(path string) (crypto.Signer, jose.SignatureAlgorithm, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("--key: %w", err)
	}
	bad := func(format string, args ...any) (crypto.Signer, jose.SignatureAlgorithm, error) {
		return nil, "", fmt.Errorf("--key %s: %s", path, fmt.Sprintf(format, args...))
	}
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return bad("no private key in it (want a PEM file: PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY; `warden workload keygen` makes one)")
		}
		var key any
		switch block.Type {
		case "EC PARAMETERS":
			continue // `openssl ecparam -genkey` writes it before the key
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return bad("the key is encrypted; warden needs it unencrypted (openssl pkcs8 -in %s -out plain.pem), kept with mode 0600", path)
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return bad("this is a %s, the public half; give the private key", strings.ToLower(block.Type))
		case "OPENSSH PRIVATE KEY":
			return bad("an OpenSSH key; give a PEM key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY), e.g. from `warden workload keygen`")
		default:
			return bad("a PEM block of type %q, not a private key", block.Type)
		}
		if err != nil {
			return bad("the %s does not parse: %v", strings.ToLower(block.Type), err)
		}
		signer, alg, msg := workloadSigner(key)
		if msg != "" {
			return bad("%s", msg)
		}
		return signer, alg, nil
	}
}

// workloadSigner checks that key can sign a client assertion that wardend
// takes, and names its algorithm; msg says why not.
func workloadSigner(key any) (crypto.Signer, jose.SignatureAlgorithm, string) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, "", fmt.Sprintf("an RSA key of %d bits; wardend takes %d or more (`warden workload keygen --alg RS256` makes one of %d)",
				bits, minRSABits, workloadRSABits)
		}
		return k, jose.RS256, ""
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Sprintf("an EC key on %s; wardend takes P-256 only (ES256)", k.Curve.Params().Name)
		}
		return k, jose.ES256, ""
	case ed25519.PrivateKey:
		return nil, "", "an Ed25519 key; wardend takes RSA (RS256) and EC P-256 (ES256) keys"
	}
	return nil, "", fmt.Sprintf("a %T; wardend takes RSA (RS256) and EC P-256 (ES256) keys", key)
}

// ---- flags ----

// workloadFlags are the flags shared by creds, token and token-file.
type workloadFlags struct {
	idp, clientID, keyFile, kid, secretFile, role string
}

func (f *workloadFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.idp, "idp", "", "wardend's URL, https://idp.example.com (env "+envWorkloadIdP+")")
	fl.StringVar(&f.clientID, "client-id", "", "the workload's ID in the rules (env "+envWorkloadClientID+")")
	fl.StringVar(&f.keyFile, "key", "", "the workload's private key, PEM (env "+envWorkloadKeyFile+")")
	fl.StringVar(&f.kid, "kid", "", "the key's kid in the rules (default: its RFC 7638 thumbprint, as keygen makes it)")
	fl.StringVar(&f.secretFile, "secret-file", "", "a file holding the workload's client secret, instead of --key (env "+envWorkloadSecretFile+")")
	fl.StringVarP(&f.role, "role", "r", "", "the role's ARN, one of the workload's roles (env "+envWorkloadRoleARN+")")
}

// fromEnv fills the flags not given on the command line from the
// environment (lookup is os.LookupEnv). --key and --secret-file are taken
// together: when either is on the command line, neither is read from the
// environment, so that a flag always decides how the workload signs in.
func (f *workloadFlags) fromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) {
	get := func(flag, env string, v *string) {
		if cmd.Flags().Changed(flag) {
			return
		}
		if s, ok := lookup(env); ok && s != "" {
			*v = s
		}
	}
	get("idp", envWorkloadIdP, &f.idp)
	get("client-id", envWorkloadClientID, &f.clientID)
	get("role", envWorkloadRoleARN, &f.role)
	if !cmd.Flags().Changed("key") && !cmd.Flags().Changed("secret-file") {
		get("key", envWorkloadKeyFile, &f.keyFile)
		get("secret-file", envWorkloadSecretFile, &f.secretFile)
	}
}

// check reports every missing or malformed flag at once.
func (f *workloadFlags) check() error {
	var errs []error
	f.idp = strings.TrimRight(f.idp, "/")
	switch {
	case f.idp == "":
		errs = append(errs, errors.New("--idp (or "+envWorkloadIdP+") is required: wardend's URL"))
	case validIdPURL(f.idp) != nil:
		errs = append(errs, fmt.Errorf("--idp %q: want https://host[/path] (plain http only on a loopback host)", f.idp))
	}
	switch {
	case f.clientID == "":
		errs = append(errs, errors.New("--client-id (or "+envWorkloadClientID+") is required: the workload's ID in the rules"))
	case !validWorkloadID(f.clientID):
		errs = append(errs, fmt.Errorf("--client-id %q: a workload ID is 1–64 characters of a-z, 0-9 and -", f.clientID))
	}
	switch {
	case f.keyFile == "" && f.secretFile == "":
		errs = append(errs, errors.New("--key (or "+envWorkloadKeyFile+") is required: the workload's private key; or --secret-file for a client secret"))
	case f.keyFile != "" && f.secretFile != "":
		errs = append(errs, errors.New("give --key or --secret-file, not both"))
	case f.secretFile != "" && f.kid != "":
		errs = append(errs, errors.New("--kid goes with --key, not with --secret-file"))
	}
	switch {
	case f.role == "":
		errs = append(errs, errors.New("--role (or "+envWorkloadRoleARN+") is required: the ARN of one of the workload's roles"))
	default:
		if _, err := awsfed.ParseRoleARN(f.role); err != nil {
			errs = append(errs, fmt.Errorf("--role: %w", err))
		}
	}
	return errors.Join(errs...)
}

// validWorkloadID: [a-z0-9-]{1,64}, as rolemap checks a workload's ID.
func validWorkloadID(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// ---- the client ----

// workloadClient gets role tokens from wardend for one workload.
type workloadClient struct {
	a        *App
	idp, id  string
	key      crypto.Signer // nil when the workload signs in with a secret
	alg      jose.SignatureAlgorithm
	kid      string
	secret   string
	disc     Discovery // zero until fetched
	withKey  bool
	keyLabel string // how the advice names the credential: "the key" or "the secret"
	// maxSeconds is the last exchange's max_session_seconds (0: none).
	maxSeconds int
}

// newWorkloadClient loads the key or secret that f names; f is checked.
func (a *App) newWorkloadClient(f workloadFlags) (*workloadClient, error) {
	w := &workloadClient{a: a, idp: f.idp, id: f.clientID}
	if f.keyFile != "" {
		key, alg, err := loadWorkloadKey(f.keyFile)
		if err != nil {
			return nil, err
		}
		w.key, w.alg, w.kid, w.withKey, w.keyLabel = key, alg, f.kid, true, "the key"
		if w.kid == "" {
			jwk, err := rolemap.JWKFromKey(key.Public(), "")
			if err != nil {
				return nil, fmt.Errorf("--key %s: %w", f.keyFile, err)
			}
			w.kid = jwk.Kid
		}
		return w, nil
	}
	b, err := os.ReadFile(f.secretFile)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	w.secret, w.keyLabel = strings.TrimSpace(string(b)), "the secret"
	if len(w.secret) < rolemap.MinWorkloadSecret {
		return nil, fmt.Errorf("--secret-file %s: the secret is %d bytes long; a workload secret has at least %d", f.secretFile, len(w.secret), rolemap.MinWorkloadSecret)
	}
	return w, nil
}

// discovery is wardend's OpenID configuration, fetched once (again after
// a failure). It is not cached on disk: that cache is the user's.
func (w *workloadClient) discovery(ctx context.Context) (Discovery, error) {
	if w.disc.TokenEndpoint != "" {
		return w.disc, nil
	}
	d, err := w.a.fetchDiscovery(ctx, w.idp)
	if err != nil {
		if _, ok := netReason(err); ok {
			return Discovery{}, unreachable("discovery", "wardend", w.idp, "--idp", err)
		}
		return Discovery{}, err
	}
	w.disc = d
	return d, nil
}

// assertion is a client assertion for the token endpoint aud (RFC 7523
// §3): iss and sub the workload, aud the endpoint, a minute of validity,
// a fresh jti (wardend takes each once), kid in the header.
func (w *workloadClient) assertion(aud string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: w.alg, Key: jose.JSONWebKey{Key: w.key, KeyID: w.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	now := w.a.Now()
	claims := jwt.Claims{Issuer: w.id, Subject: w.id, Audience: jwt.Audience{aud}, ID: base64.RawURLEncoding.EncodeToString(jti),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime))}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	return s, nil
}

// WorkloadError is an error answered by wardend's token endpoint to a
// workload (RFC 6749 §5.2, RFC 8693 §2.2.2).
type WorkloadError struct {
	Exchange bool // the token exchange, not client_credentials
	Status   int
	Code     string // invalid_client, invalid_target, slow_down, …
	// Description and RequestID are wardend's error_description and
	// request_id (the request ID is in wardend's log too).
	Description, RequestID string
	RetryAfter             time.Duration // 429/503: the server's Retry-After
	ClientID, RoleARN      string
	// Credential names what the workload signed in with: "the key" or
	// "the secret".
	Credential string
}

// Temporary reports whether trying again later may work: a rate limit or
// an outage, not a refusal.
func (e *WorkloadError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Code == "slow_down" || e.Code == "temporarily_unavailable"
}

func (e *WorkloadError) Error() string {
	desc := ""
	if e.Description != "" {
		desc = ": " + e.Description
	}
	var msg string
	switch {
	case e.Code == "slow_down" || e.Status == http.StatusTooManyRequests:
		msg = fmt.Sprintf("wardend is rate-limiting workload %s", e.ClientID)
		if e.RetryAfter > 0 {
			msg += fmt.Sprintf("; try again in %s", e.RetryAfter)
		} else {
			msg += "; try again in a moment"
		}
	case e.Code == "temporarily_unavailable" || e.Code == "" && e.Status >= 500:
		msg = "wardend is temporarily unavailable" + desc + "; try again in a moment"
	case e.Code == "invalid_client":
		msg = fmt.Sprintf("wardend refused the workload's credentials%s; check --client-id, %s and its registration in the rules", desc, e.Credential)
	case e.Code == "unauthorized_client":
		msg = fmt.Sprintf("wardend does not let client %s use this grant%s; is it registered under workloads in the rules?", e.ClientID, desc)
	case e.Code == "unsupported_grant_type":
		msg = "wardend does not take workload clients (" + e.grant() + ")" + desc + "; check --idp, or upgrade wardend"
	case e.Code == "invalid_target":
		msg = fmt.Sprintf("workload %s may not have role %s%s; check --role, or add the role to the workload's roles in the rules", e.ClientID, e.RoleARN, desc)
	case e.Code == "invalid_grant":
		msg = fmt.Sprintf("wardend refused workload %s at the token exchange%s; it may have been disabled or removed in the rules", e.ClientID, desc)
	case e.Code == "":
		msg = fmt.Sprintf("%s: wardend answered HTTP %d", e.grant(), e.Status)
	default:
		msg = fmt.Sprintf("%s: wardend answered %s%s", e.grant(), e.Code, desc)
	}
	if e.RequestID != "" {
		msg += " (request ID " + e.RequestID + ")"
	}
	return msg
}

func (e *WorkloadError) grant() string {
	if e.Exchange {
		return "token exchange"
	}
	return "client_credentials"
}

// tokenAnswer is a token endpoint's answer, success or error.
type tokenAnswer struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	IssuedTokenType string `json:"issued_token_type"`
	ExpiresIn       any    `json:"expires_in"`
	// MaxSessionSeconds is the longest role session the rules give the
	// workload (wardend's exchange; absent: none set).
	MaxSessionSeconds int    `json:"max_session_seconds"`
	Error             string `json:"error"`
	ErrorDescription  string `json:"error_description"`
	RequestID         string `json:"request_id"`
}

// post sends form to the token endpoint (with HTTP Basic client
// authentication when the workload has a secret and basic is set) and
// returns the answer, or a *WorkloadError for an error answer.
func (w *workloadClient) post(ctx context.Context, endpoint string, form url.Values, exchange bool, role string) (tokenAnswer, error) {
	step := "client_credentials"
	if exchange {
		step = "token exchange"
	}
	var auth func(*http.Request)
	if !exchange && !w.withKey {
		// RFC 6749 §2.3.1: each part form-urlencoded before Basic.
		auth = func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(w.id), url.QueryEscape(w.secret)) }
	}
	status, hdr, body, err := w.a.postForm(ctx, endpoint, form, auth)
	if err != nil {
		return tokenAnswer{}, unreachable(step, "wardend", endpoint, "--idp", err)
	}
	var ans tokenAnswer
	jerr := json.Unmarshal(body, &ans)
	if status != http.StatusOK || ans.Error != "" {
		e := &WorkloadError{Exchange: exchange, Status: status, Code: ans.Error, Description: oneLine(ans.ErrorDescription),
			RequestID: oneLine(ans.RequestID), ClientID: w.id, RoleARN: role, Credential: w.keyLabel}
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return tokenAnswer{}, e
	}
	if jerr != nil || ans.AccessToken == "" {
		return tokenAnswer{}, fmt.Errorf("%s: wardend answered no access_token", step)
	}
	return ans, nil
}

// accessToken gets an access token for the workload (client_credentials).
func (w *workloadClient) accessToken(ctx context.Context) (string, error) {
	d, err := w.discovery(ctx)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {grantClientCredentials}, "client_id": {w.id}}
	if w.withKey {
		as, err := w.assertion(d.TokenEndpoint)
		if err != nil {
			return "", err
		}
		form.Set("client_assertion_type", assertionTypeJWTBearer)
		form.Set("client_assertion", as)
	}
	ans, err := w.post(ctx, d.TokenEndpoint, form, false, "")
	if err != nil {
		if _, ok := netReason(err); ok {
			w.disc = Discovery{} // fetch it again next time
		}
		return "", err
	}
	return ans.AccessToken, nil
}

// roleToken gets a web-identity token of role for the workload: a new
// access token, exchanged (RFC 8693) for an ID token of the STS audience.
// ttl is its lifetime (expires_in, else its exp claim, else five minutes).
func (w *workloadClient) roleToken(ctx context.Context, role string) (token string, ttl time.Duration, err error) {
	at, err := w.accessToken(ctx)
	if err != nil {
		return "", 0, err
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"client_id":            {w.id},
		"subject_token":        {at},
		"subject_token_type":   {tokenTypeAccess},
		"requested_token_type": {tokenTypeIDToken},
		"resource":             {role},
	}
	ans, err := w.post(ctx, w.disc.TokenEndpoint, form, true, role)
	if err != nil {
		return "", 0, err
	}
	if ans.IssuedTokenType != tokenTypeIDToken {
		return "", 0, fmt.Errorf("token exchange: wardend answered a token of type %q, not an ID token", oneLine(ans.IssuedTokenType))
	}
	w.maxSeconds = ans.MaxSessionSeconds
	if secs := extraSeconds(ans.ExpiresIn); secs > 0 {
		return ans.AccessToken, time.Duration(secs) * time.Second, nil
	}
	if exp := jwtExpiry(ans.AccessToken); !exp.IsZero() && exp.After(w.a.Now()) {
		return ans.AccessToken, exp.Sub(w.a.Now()), nil
	}
	return ans.AccessToken, 5 * time.Minute, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it: for timing
// a refresh only; STS verifies the token.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(c.Exp, 0)
}

// setup reads the environment into f, checks it, and loads the
// workload's credential.
func (a *App) workloadSetup(cmd *cobra.Command, f *workloadFlags) (*workloadClient, error) {
	f.fromEnv(cmd, os.LookupEnv)
	if err := f.check(); err != nil {
		return nil, err
	}
	return a.newWorkloadClient(*f)
}

// ---- creds ----

func workloadCredsCmd(a *App) *cobra.Command {
	var f workloadFlags
	var format, region, stsEndpoint string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "Print temporary AWS credentials for one of the workload's roles",
		Long: "Get a role's credentials for the workload: an access token (client_credentials), a web-identity token\n" +
			"for the role, then STS AssumeRoleWithWebIdentity (RoleSessionName: the workload's ID). Every call mints\n" +
			"new credentials; nothing is cached. --format process prints credential_process JSON, so that a profile\n" +
			"in ~/.aws/config can run it:\n\n" +
			"  [profile orders]\n" +
			"  credential_process = warden workload creds --format process --idp https://idp.example.com --client-id orders-worker --key /etc/orders/key.pem --role arn:aws:iam::111122223333:role/orders-sqs",
		Example: "  eval \"$(warden workload creds --idp https://idp.example.com --client-id orders-worker --key key.pem \\\n" +
			"      --role arn:aws:iam::111122223333:role/orders-sqs --format env)\"",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			switch format {
			case "json", "env", "process", "credential-process":
			default:
				errs = append(errs, fmt.Errorf("--format %q: want json, env or process", format))
			}
			secs := 0
			if duration != 0 {
				secs = int(duration / time.Second)
				if duration%time.Second != 0 || secs < 900 || secs > 43200 {
					errs = append(errs, fmt.Errorf("--duration %s: want 15m to 12h", duration))
				}
			}
			if err := validEndpoint("--sts-endpoint", stsEndpoint); err != nil {
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			w, err := a.workloadSetup(cmd, &f)
			if err != nil {
				return err
			}
			opts, err := workloadSTS(f.role, region, stsEndpoint, os.LookupEnv)
			if err != nil {
				return err
			}
			opts.HTTPClient = a.HTTP
			ctx := cmd.Context()
			tok, _, err := w.roleToken(ctx, f.role)
			if err != nil {
				return err
			}
			// The rules' max_session_seconds bounds the session: asked
			// for more, refused here; not asked, the shorter of it and
			// STS's default hour.
			switch m := w.maxSeconds; {
			case m > 0 && secs > m:
				return fmt.Errorf("--duration %s is longer than the rules allow this workload for the role (%s); ask for %s or less",
					duration, time.Duration(m)*time.Second, time.Duration(m)*time.Second)
			case m > 0 && secs == 0 && m < 3600:
				secs = m
			}
			c, err := awsfed.AssumeRoleWithWebIdentity(ctx, opts, f.role, awsfed.SessionName(w.id), tok, secs)
			if err != nil {
				return stsProblem(err, opts)
			}
			if c.AccountID == "" {
				if r, err := awsfed.ParseRoleARN(f.role); err == nil {
					c.AccountID = r.Account
				}
			}
			switch format {
			case "env":
				envRegion := ""
				if region != "" {
					envRegion = opts.Region
				}
				for _, kv := range credEnv(c, envRegion) {
					k, v, _ := strings.Cut(kv, "=")
					fmt.Fprintf(a.Stdout, "export %s=%s\n", k, shellQuote(v))
				}
			case "json":
				b, err := json.MarshalIndent(struct {
					AccessKeyID     string `json:"AccessKeyId"`
					SecretAccessKey string `json:"SecretAccessKey"`
					SessionToken    string `json:"SessionToken"`
					Expiration      string `json:"Expiration"`
					RoleARN         string `json:"RoleArn"`
				}{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339), f.role}, "", "  ")
				if err != nil {
					return err
				}
				_, err = a.Stdout.Write(append(b, '\n'))
				return err
			default:
				_, err = a.Stdout.Write(processJSON(c))
			}
			return err
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "f", "json", "output: json, env (shell exports) or process (credential_process JSON)")
	fl.DurationVarP(&duration, "duration", "d", 0, "session length, 15m to 12h, at most the role's (default: STS's, 1h)")
	fl.StringVar(&region, "region", "", "AWS region of the role's partition, for the regional STS endpoint (default: AWS_REGION when it is one, else the partition's)")
	fl.StringVar(&stsEndpoint, "sts-endpoint", "", "STS endpoint URL (private, or a test server; default: the regional endpoint of the role's partition)")
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"json", "env", "process"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// workloadSTS says how to reach STS for role: its partition, the region
// (--region, else AWS_REGION or AWS_DEFAULT_REGION when it is a region of
// that partition, else the partition's default) and the endpoint.
func workloadSTS(role, region, endpoint string, lookup func(string) (string, bool)) (awsfed.STSOptions, error) {
	r, err := awsfed.ParseRoleARN(role)
	if err != nil {
		return awsfed.STSOptions{}, fmt.Errorf("--role: %w", err)
	}
	p, _ := awsfed.LookupPartition(r.Partition)
	o := awsfed.STSOptions{Partition: r.Partition, Region: p.DefaultRegion, Endpoint: endpoint}
	if region != "" {
		if err := awsfed.ValidRegion(r.Partition, region); err != nil {
			return awsfed.STSOptions{}, fmt.Errorf("--region %q: not a region of the role's partition %s (like %s)", region, r.Partition, p.DefaultRegion)
		}
		o.Region = region
		return o, nil
	}
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v, ok := lookup(env); ok && v != "" {
			if awsfed.ValidRegion(r.Partition, v) == nil {
				o.Region = v
			}
			break
		}
	}
	return o, nil
}

// ---- token ----

func workloadTokenCmd(a *App) *cobra.Command {
	var f workloadFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a web-identity token for one of the workload's roles",
		Long: "Print the workload's web-identity token for a role (a JWT for STS AssumeRoleWithWebIdentity,\n" +
			"valid for a few minutes), and nothing else, for scripts. It is a credential: do not log it.",
		Example: "  aws sts assume-role-with-web-identity --role-arn \"$ROLE\" --role-session-name orders-worker \\\n" +
			"      --web-identity-token \"$(warden workload token --role \"$ROLE\")\"",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := a.workloadSetup(cmd, &f)
			if err != nil {
				return err
			}
			tok, _, err := w.roleToken(cmd.Context(), f.role)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.Stdout, tok)
			return err
		},
	}
	f.register(cmd)
	return cmd
}

// ---- token-file ----

func workloadTokenFileCmd(a *App) *cobra.Command {
	var f workloadFlags
	var out string
	var once bool
	cmd := &cobra.Command{
		Use:   "token-file --out FILE",
		Short: "Keep a file holding a fresh web-identity token, for AWS_WEB_IDENTITY_TOKEN_FILE",
		Long: `Keep FILE holding a fresh web-identity token of the role, so that the web-identity
provider of every AWS SDK and the AWS CLI (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)
gets credentials from it, as on EKS. It prints those variables at start,
refreshes the token at half its lifetime, and retries failures with a
growing pause (at most 30s) while the token in the file is still valid. It
logs one line per refresh to stderr (never the token) and ends, with status
0, on SIGINT or SIGTERM. With --once it writes the file once and exits (cron,
tests).

The file is replaced atomically (a temporary file in the same directory,
then a rename) and has mode 0600: run the program that reads it as the same
user. A failure that wardend will not change its mind about (the
workload's key refused, the role not the workload's) ends the command once
the token in the file has expired; an outage is retried for as long as it
lasts.`,
		Example: "  warden workload token-file --out /run/warden/token --idp https://idp.example.com \\\n" +
			"      --client-id orders-worker --key /etc/orders/key.pem --role arn:aws:iam::111122223333:role/orders-sqs",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required: the token file")
			}
			w, err := a.workloadSetup(cmd, &f)
			if err != nil {
				return err
			}
			path, err := filepath.Abs(out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.keepTokenFile(ctx, w, f.role, path, once)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "out", "o", "", "the token file (replaced atomically, mode 0600)")
	cmd.Flags().BoolVar(&once, "once", false, "write the token once and exit")
	return cmd
}

// keepTokenFile writes a token of role to path, then (unless once) keeps
// it fresh until ctx ends, which is not an error then. The first token
// must come: a failure ends it at once.
func (a *App) keepTokenFile(ctx context.Context, w *workloadClient, role, path string, once bool) error {
	tok, ttl, err := w.roleToken(ctx, role)
	if err != nil {
		return err
	}
	if err := writeFileReplace(path, []byte(tok)); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	fmt.Fprintf(a.Stdout, "export AWS_ROLE_ARN=%s\nexport AWS_WEB_IDENTITY_TOKEN_FILE=%s\nexport AWS_ROLE_SESSION_NAME=%s\n",
		shellQuote(role), shellQuote(path), shellQuote(awsfed.SessionName(w.id)))
	expires := a.Now().Add(ttl)
	next := refreshAfter(ttl)
	a.logTokenFile("wrote %s: a token of %s for %s, valid until %s", path, w.id, role, expires.UTC().Format(time.RFC3339))
	if once {
		return nil
	}
	retry := time.Duration(0)
	after := a.after
	if after == nil {
		after = time.After
	}
	for {
		select {
		case <-ctx.Done():
			a.logTokenFile("stopping; %s stays until its token expires at %s", path, expires.UTC().Format(time.RFC3339))
			return nil
		case <-after(next):
		}
		tok, ttl, err := w.roleToken(ctx, role)
		if err == nil {
			if werr := writeFileReplace(path, []byte(tok)); werr != nil {
				err = fmt.Errorf("token file: %w", werr)
			}
		}
		if ctx.Err() != nil {
			continue // the next select returns
		}
		if err != nil {
			now := a.Now()
			var we *WorkloadError
			refused := errors.As(err, &we) && !we.Temporary()
			if refused && !now.Before(expires) {
				return fmt.Errorf("the token in %s has expired and wardend refuses a new one: %w", path, err)
			}
			retry = nextRetry(retry)
			if we != nil && we.RetryAfter > retry {
				retry = min(we.RetryAfter, 5*time.Minute)
			}
			next = retry
			state := "the token in the file is valid until " + expires.UTC().Format(time.RFC3339)
			if !now.Before(expires) {
				state = "the token in the file expired at " + expires.UTC().Format(time.RFC3339)
			}
			a.logTokenFile("refresh failed: %v; retrying in %s (%s)", err, retry.Round(100*time.Millisecond), state)
			continue
		}
		retry = 0
		expires = a.Now().Add(ttl)
		next = refreshAfter(ttl)
		a.logTokenFile("refreshed %s: valid until %s", path, expires.UTC().Format(time.RFC3339))
	}
}

// refreshAfter is when to refresh a token of lifetime ttl: at half of it.
func refreshAfter(ttl time.Duration) time.Duration {
	return max(ttl/2, tokenFileMinRefresh)
}

// nextRetry doubles the pause after a failed refresh, from a second up to
// tokenFileMaxRetry, with jitter, so that many replicas of a workload do
// not come back to wardend in step after an outage.
func nextRetry(prev time.Duration) time.Duration {
	d := tokenFileFirstRetry
	if prev > 0 {
		d = min(2*prev, tokenFileMaxRetry)
	}
	return d - time.Duration(mrand.Int64N(int64(d/4)+1))
}

func (a *App) logTokenFile(format string, args ...any) {
	fmt.Fprintf(a.Stderr, "warden workload token-file: "+format+"\n", args...)
}

// writeFileReplace replaces path with data, mode 0600, atomically: a
// temporary file in the same directory, then a rename, so that a reader
// sees the old content or the new, never a part. It leaves the directory
// alone (a token file's may be a volume shared with another container);
// WriteFileAtomic also makes it, private, for the cache.
func writeFileReplace(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
