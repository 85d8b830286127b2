package app

import (
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenidp/warden/internal/testenv"
)

var (
	keysLinkRE = regexp.MustCompile(`class="keys small" href="([^"]+)"`)
	keyFormRE  = regexp.MustCompile(`(?s)<section class="keyform" id="form-([a-z_]+)">.*?<pre data-copy class="keys">(.*?)</pre>`)
)

// TestAccessKeysAgainstMoto: bob opens the Access keys panel of a role
// from the portal, picks 15 minutes and gets keys that wardend minted at
// STS (moto, through aws-sdk-go-v2); the bash form, run in bash, gives
// awscli credentials that moto knows, in the role's account. A length beyond
// the role's maximum, a role bob does not hold, and a POST without the
// CSRF token are refused; the audit records the issuance; no secret
// reaches the log.
func TestAccessKeysAgainstMoto(t *testing.T) {
	moto := testenv.Moto(t)
	aws := testenv.Binary(t, "aws")
	o := portalOptions(t)
	logs := &lockedBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.AccessKeys.STSEndpoint = moto
	base := startApp(t, o)
	b := newBrowser(t, base)
	b.signIn("bob", os.Getenv("LDAP_USER_PW"))
	home := b.waitRoles()

	const role = "arn:aws:iam::111122223333:role/ReadOnly"
	var link string
	for _, m := range keysLinkRE.FindAllStringSubmatch(home, -1) {
		if l := html.UnescapeString(m[1]); strings.Contains(l, url.QueryEscape(role)) {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("no Access keys link for %s on the portal:\n%s", role, home)
	}
	code, page, _ := b.get(link)
	if code != http.StatusOK || !strings.Contains(page, `<option value="900">15 min</option>`) || !strings.Contains(page, `id="get-keys"`) {
		t.Fatalf("panel: %d\n%s", code, page)
	}
	csrf := csrfRE.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no csrf_token in the panel")
	}

	// Refusals first: nothing is minted.
	if code, page, _ := b.post("/aws/keys", url.Values{"csrf_token": {csrf[1]}, "role": {role}, "duration": {"43200"}}); code != http.StatusBadRequest || !strings.Contains(page, "Not that long") {
		t.Errorf("12 h on a 1 h role: %d", code)
	}
	if code, _, _ := b.post("/aws/keys", url.Values{"csrf_token": {csrf[1]}, "role": {"arn:aws:iam::111122223333:role/AdministratorAccess"}, "duration": {"900"}}); code != http.StatusForbidden {
		t.Errorf("a role bob does not hold: %d", code)
	}
	if code, _, _ := b.post("/aws/keys", url.Values{"role": {role}, "duration": {"900"}}); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
	if code, _, _ := b.post("/aws/keys", url.Values{"csrf_token": {csrf[1]}, "role": {role}, "duration": {"soon"}}); code != http.StatusBadRequest {
		t.Errorf("duration not a number: %d", code)
	}

	code, page, hdr := b.post("/aws/keys", url.Values{"csrf_token": {csrf[1]}, "role": {role}, "duration": {"900"}})
	if code != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("get keys: %d %q\n%s", code, hdr.Get("Cache-Control"), page)
	}
	forms := map[string]string{}
	for _, m := range keyFormRE.FindAllStringSubmatch(page, -1) {
		forms[m[1]] = html.UnescapeString(m[2])
	}
	for _, id := range []string{"bash", "fish", "powershell", "credentials", "credential_process"} {
		if forms[id] == "" {
			t.Errorf("no %s form:\n%s", id, page)
		}
	}
	// The keys work: awscli, given them by the bash form, asks moto's STS
	// who it is.
	cmd := exec.Command("bash", "-c", forms["bash"]+`exec "$AWS" sts get-caller-identity --endpoint-url "$MOTO" --region us-east-1 --output json`)
	home2 := t.TempDir()
	cmd.Env = []string{"HOME=" + home2, "PATH=/usr/bin:/bin", "AWS=" + aws, "MOTO=" + moto, "AWS_PAGER=",
		"AWS_CONFIG_FILE=" + home2 + "/config", "AWS_SHARED_CREDENTIALS_FILE=" + home2 + "/credentials"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws sts get-caller-identity with the keys: %v\n%s", err, out)
	}
	// moto answers GetCallerIdentity with its own user name, but in the
	// account its STS issued the keys for: the role's, not moto's default
	// (123456789012).
	var who struct{ Account string }
	if err := json.Unmarshal(out, &who); err != nil || who.Account != "111122223333" {
		t.Errorf("caller account %q (%v): %s", who.Account, err, out)
	}

	secret := regexp.MustCompile(`AWS_SECRET_ACCESS_KEY='([^']+)'`).FindStringSubmatch(forms["bash"])
	token := regexp.MustCompile(`AWS_SESSION_TOKEN='([^']+)'`).FindStringSubmatch(forms["bash"])
	if secret == nil || token == nil {
		t.Fatalf("bash form:\n%s", forms["bash"])
	}
	log := logs.String()
	if strings.Contains(log, secret[1]) || strings.Contains(log, token[1]) {
		t.Error("a secret of the minted keys is in the log")
	}
	if !strings.Contains(log, `"action":"aws.access_keys"`) || !strings.Contains(log, `"result":"success"`) || !strings.Contains(log, `"flow":"access-keys"`) {
		t.Errorf("no audit of the issuance in the log")
	}
}
