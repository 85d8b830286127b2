package accesskeys

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wardenidp/warden/internal/audit"
	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/identity"
	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/testenv"
)

var readOnly = rolemap.Grant{RoleARN: "arn:aws:iam::111122223333:role/ReadOnly", RoleName: "ReadOnly",
	AccountID: "111122223333", AccountName: "prod", ProviderARN: "arn:aws:iam::111122223333:saml-provider/warden"}

type events struct {
	mu  sync.Mutex
	all []audit.Event
}

func (e *events) Record(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func TestChoices(t *testing.T) {
	s, err := New(Config{}, Deps{Signer: SignerFunc(nil), DefaultSessionSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		secs int
		want []int
		def  int
	}{
		{0, []int{900, 1800, 3600}, 3600},
		{900, []int{900}, 900},
		{5400, []int{900, 1800, 3600, 5400}, 3600},
		{43200, []int{900, 1800, 3600, 7200, 14400, 28800, 43200}, 3600},
	} {
		g := readOnly
		g.SessionSeconds = c.secs
		if got := s.Choices(g); !slices.Equal(got, c.want) || s.DefaultChoice(g) != c.def {
			t.Errorf("%ds: choices %v default %d, want %v %d", c.secs, got, s.DefaultChoice(g), c.want, c.def)
		}
	}
}

// TestMintRefusals: a session length the role does not allow is refused
// before anything is signed; a refusal of the signer (a role that needs a
// second factor) stops before STS; an unreachable STS is ErrSTS. Each is
// audited, none with a secret.
func TestMintRefusals(t *testing.T) {
	var signed int
	errFactor := errors.New("needs a second factor")
	signer := SignerFunc(func(_ context.Context, _ identity.User, a identity.Authn, g rolemap.Grant, _ rolemap.Result) (string, error) {
		signed++
		if g.RequireMFA && a.Method == "" {
			return "", errFactor
		}
		return "PHNhbWxwOlJlc3BvbnNlLz4=", nil
	})
	// A port nothing listens on: STS cannot be reached.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	ev := &events{}
	s, err := New(Config{STSEndpoint: closed}, Deps{Signer: signer, Audit: ev})
	if err != nil {
		t.Fatal(err)
	}
	bob := identity.User{Username: "bob"}
	ctx := context.Background()
	if _, err := s.Mint(ctx, bob, identity.Authn{}, readOnly, rolemap.Result{}, 7200, "192.0.2.1", "r1"); !errors.Is(err, ErrDuration) || signed != 0 {
		t.Errorf("2h on a 1h role: %v (signed %d)", err, signed)
	}
	if _, err := s.Mint(ctx, bob, identity.Authn{}, readOnly, rolemap.Result{}, 600, "192.0.2.1", "r2"); !errors.Is(err, ErrDuration) || signed != 0 {
		t.Errorf("10 minutes: %v", err)
	}
	mfa := readOnly
	mfa.RequireMFA = true
	if _, err := s.Mint(ctx, bob, identity.Authn{}, mfa, rolemap.Result{}, 900, "192.0.2.1", "r3"); !errors.Is(err, errFactor) || signed != 1 {
		t.Errorf("MFA role without a factor: %v", err)
	}
	if _, err := s.Mint(ctx, bob, identity.Authn{}, readOnly, rolemap.Result{}, 900, "192.0.2.1", "r4"); !errors.Is(err, ErrSTS) || signed != 2 {
		t.Errorf("STS unreachable: %v", err)
	}
	results := []string{}
	for _, e := range ev.all {
		if e.Action != "aws.access_keys" || e.Actor != "bob" || e.Object != readOnly.RoleARN || e.ClientIP != "192.0.2.1" {
			t.Errorf("event %+v", e)
		}
		results = append(results, e.Result)
	}
	if !slices.Equal(results, []string{"bad_duration", "bad_duration", "refused", "error"}) {
		t.Errorf("audited %v", results)
	}
}

// TestForms: the shell forms set the variables in a real bash and fish
// (the secret holds a quote); awscli reads the credentials-file section and
// the credential_process profile.
func TestForms(t *testing.T) {
	k := Keys{Credentials: awsfed.Credentials{AccessKeyID: "ASIAEXAMPLE123", SecretAccessKey: "se/cr+et=key'x",
		SessionToken: "IQoJb3JpZ2luX2VjE+/token=="}, Grant: readOnly, Seconds: 3600, Region: "eu-west-1"}
	forms := map[string]string{}
	for _, f := range k.Forms() {
		forms[f.ID] = f.Text
	}
	want := k.AccessKeyID + "\n" + k.SecretAccessKey + "\n" + k.SessionToken + "\n"
	run := func(shell, script string) {
		t.Helper()
		out, err := exec.Command(shell, "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", shell, err, out)
		}
		if string(out) != want {
			t.Errorf("%s printed %q, want %q", shell, out, want)
		}
	}
	run(testenv.Binary(t, "bash"), forms["bash"]+`printf '%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN"`)
	run(testenv.Binary(t, "fish"), forms["fish"]+`printf '%s\n' $AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $AWS_SESSION_TOKEN`)
	// PowerShell is not packaged for Debian: its form is checked as text.
	if !strings.Contains(forms["powershell"], `$Env:AWS_SECRET_ACCESS_KEY = 'se/cr+et=key''x'`) {
		t.Errorf("PowerShell form:\n%s", forms["powershell"])
	}

	aws := testenv.Binary(t, "aws")
	home := t.TempDir()
	creds, cfg := filepath.Join(home, "credentials"), filepath.Join(home, "config")
	if err := os.WriteFile(creds, []byte(forms["credentials"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(forms["credential_process"]), 0o600); err != nil {
		t.Fatal(err)
	}
	get := func(key, profile string) string {
		cmd := exec.Command(aws, "configure", "get", key, "--profile", profile)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_CONFIG_FILE=" + cfg}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws configure get %s --profile %s: %v", key, profile, err)
		}
		return strings.TrimSpace(string(out))
	}
	p := ProfileName(readOnly)
	if p != "prod-ReadOnly" {
		t.Errorf("profile name %q", p)
	}
	if get("aws_access_key_id", p) != k.AccessKeyID || get("aws_secret_access_key", p) != k.SecretAccessKey ||
		get("aws_session_token", p) != k.SessionToken {
		t.Error("awscli reads other keys from the credentials-file form")
	}
	if got := get("credential_process", p); got != "warden credential-process --role "+readOnly.RoleARN || get("region", p) != "eu-west-1" {
		t.Errorf("credential_process profile: %q", got)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{STSEndpoint: "https://sts.eu-west-1.amazonaws.com", STSRegion: "eu-west-1"}, true},
		{Config{STSEndpoint: "http://127.0.0.1:5000"}, true},
		{Config{STSEndpoint: "http://sts.example.com"}, false},
		{Config{STSEndpoint: "http://127.0.0.1.evil.example"}, false},
		{Config{STSEndpoint: "http://[::1]:5000"}, true},
		{Config{STSEndpoint: "https://user:pw@sts.example.com"}, false},
		{Config{STSRegion: "moon-1"}, false},
	} {
		c.cfg.SetDefaults()
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}
