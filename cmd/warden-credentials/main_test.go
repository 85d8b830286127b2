package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlySmallPackages: warden-credentials exists to start fast, and
// every linked package's initialisation runs at each start; it must link
// nothing of the network, crypto or templating, and no module package but
// credcache. Its behaviour is tested with warden's, in internal/cli
// (wardencreds_test.go).
func TestLinksOnlySmallPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	own := map[string]bool{
		"github.com/wardenidp/warden/cmd/warden-credentials": true,
		"github.com/wardenidp/warden/internal/cli/credcache": true,
	}
	denied := []string{"net", "crypto", "os/exec", "os/signal", "context", "compress", "regexp", "text/", "html",
		"mime", "log", "flag", "database", "debug", "archive", "image", "go/"}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, std, _ := strings.Cut(line, " ")
		n++
		if std != "true" {
			if !own[pkg] {
				t.Errorf("links %s", pkg)
			}
			continue
		}
		for _, d := range denied {
			if pkg == d || strings.HasPrefix(pkg, strings.TrimSuffix(d, "/")+"/") {
				t.Errorf("links %s", pkg)
			}
		}
	}
	if n < 10 {
		t.Errorf("go list -deps listed %d packages:\n%s", n, out)
	}
}
