package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardenidp/warden/internal/testenv"
)

// TestBrowserWorkloads drives a real Chromium against the real stack:
// alice creates a workload from a pasted PEM key with a generated client
// secret, sees the secret once, finds the workload in the list and in
// "who gets what", disables and enables it, is told why a private key is
// refused, and deletes the workload.
func TestBrowserWorkloads(t *testing.T) {
	chromium := testenv.Binary(t, "chromium")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	s := realStack(t)
	base := s.base
	shots := artifactsDir(t)

	// The account, through the API of another session.
	api := newClient(t, base)
	api.login("alice", s.userPW)
	api.get("/admin")
	if res := api.api("POST", "/admin/api/accounts", map[string]any{"id": "111122223333", "name": "prod", "saml_provider": "warden"},
		"If-Match", "0"); res.code != http.StatusCreated {
		t.Fatalf("account: %d %s", res.code, res.body)
	}

	br := newAdminBrowser(t, chromium, shots, "admin-workloads-")
	do, get, check := br.do, br.get, br.check
	// confirmAll answers the page's confirm() questions (data-confirm) yes.
	confirmAll := func() { get("confirm", chromedp.Evaluate[string](`window.confirm = () => true; "ok"`)) }
	type css = chromedp.CSS

	do("sign in",
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), "alice"),
		chromedp.SendKeys(css("#password"), s.userPW),
		chromedp.Click(css(`button[type="submit"]`)),
		chromedp.WaitNotPresent(css("#password")),
		chromedp.WaitVisible(css("#count-workloads")),
	)

	// A private key first: refused, with the reason, and not shown again.
	do("new workload",
		chromedp.Click(css(`.adminnav a[href="/admin/workloads"]`)),
		chromedp.WaitVisible(css("#new-workload")),
		chromedp.Click(css("#new-workload")),
		chromedp.WaitVisible(css("#f-keys")),
		chromedp.SendKeys(css("#f-id"), "orders-worker"),
		chromedp.SendKeys(css("#f-description"), "Sends order events"),
		chromedp.SendKeys(css("#f-roles"), arnOrders+" 7200"),
		chromedp.SendKeys(css("#f-tags"), "team=orders"),
		chromedp.SetValue(css("#f-keys"), pemPrivate(t, testECKey)),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#f-keys-err")),
	)
	msg := get("private key message", chromedp.Text(css("#f-keys-err")))
	check("private key message", strings.Contains(msg, "is a private key") && strings.Contains(msg, "public half"), "message %q", msg)
	val := get("keys field", chromedp.Value(css("#f-keys")))
	check("private key not shown again", val == "", "the keys field holds %q", val)

	// The public key, and a generated secret: shown once.
	do("fix the key",
		chromedp.SetValue(css("#f-keys"), "kid: k1\n"+pemPublic(t, &testECKey.PublicKey)),
		chromedp.Click(css("#f-secret-generate")),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#client-secret")),
	)
	secret := strings.TrimSpace(get("secret", chromedp.Text(css("#client-secret"))))
	check("secret shown", len(secret) == 43, "secret %q", secret)
	w, _ := storedRealWorkload(t, s, "orders-worker")
	check("hash stored", w.SecretSHA256 == secretHash(secret) && w.JWKS != nil && w.JWKS.Keys[0].Kid == "k1", "stored %+v", w)
	do("to the list", chromedp.Click(css("#done")), chromedp.WaitVisible(css("#workloads")))
	row := get("row", chromedp.Text(css("#workload-orders-worker")))
	check("row", strings.Contains(row, "orders-worker") && strings.Contains(row, arnOrders) && strings.Contains(row, "k1 (EC P-256)") &&
		strings.Contains(row, "client secret") && !strings.Contains(row, secret), "row %q", row)

	// Edit: keep the secret without typing it.
	do("edit",
		chromedp.Click(css(`a[href="/admin/workloads/orders-worker/edit"]`)),
		chromedp.WaitVisible(css("#f-secret-keep")),
	)
	kept := get("keep checked", chromedp.Evaluate[string](`String(document.querySelector("#f-secret-keep").checked)`))
	check("keep checked", kept == "true", "keep is %s", kept)
	do("save with the kept secret",
		chromedp.Clear(css("#f-description")),
		chromedp.SendKeys(css("#f-description"), "Order events"),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#notice")),
	)
	w, _ = storedRealWorkload(t, s, "orders-worker")
	check("secret kept", w.SecretSHA256 == secretHash(secret) && w.Description == "Order events", "stored %+v", w)

	// Who gets what for the role.
	do("who gets the role",
		chromedp.Navigate(base+"/admin/whogets"),
		chromedp.WaitVisible(css("#f-role")),
		chromedp.SendKeys(css("#f-role"), arnOrders),
		chromedp.Click(css("#lookup-role")),
		chromedp.WaitVisible(css("#role-workloads")),
	)
	who := get("role workloads", chromedp.Text(css("#role-workloads")))
	check("role workloads", strings.Contains(who, "orders-worker") && strings.Contains(who, "7200"), "workloads %q", who)

	// Disable, then enable.
	do("list", chromedp.Navigate(base+"/admin/workloads"), chromedp.WaitVisible(css("#disable-orders-worker")))
	confirmAll()
	do("disable", chromedp.Click(css("#disable-orders-worker")), chromedp.WaitVisible(css("#enable-orders-worker")))
	status := get("status", chromedp.Text(css("#status-orders-worker")))
	check("disabled", strings.EqualFold(status, "disabled"), "status %q", status)
	w, _ = storedRealWorkload(t, s, "orders-worker")
	check("stored disabled", w.Disabled, "stored %+v", w)
	do("who gets it now", chromedp.Navigate(base+"/admin/whogets?role="+arnOrders), chromedp.WaitVisible(css("#role-workloads")))
	who = get("role workloads", chromedp.Text(css("#role-workloads")))
	check("marked disabled", strings.Contains(strings.ToLower(who), "disabled"), "workloads %q", who)
	do("list again", chromedp.Navigate(base+"/admin/workloads"), chromedp.WaitVisible(css("#enable-orders-worker")))
	do("enable", chromedp.Click(css("#enable-orders-worker")), chromedp.WaitVisible(css("#disable-orders-worker")))

	// Delete.
	do("edit to delete", chromedp.Navigate(base+"/admin/workloads/orders-worker/edit"), chromedp.WaitVisible(css("#delete")))
	confirmAll()
	do("delete", chromedp.Click(css("#delete")), chromedp.WaitVisible(css("#no-workloads")))
	if _, ok := storedRealWorkload(t, s, "orders-worker"); ok {
		t.Error("the workload is still stored")
	}
}
