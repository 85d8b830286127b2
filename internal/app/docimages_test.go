package app

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docImageRE finds the pictures a Markdown file shows: ![alt](path) and
// <img src="path">.
var docImageRE = regexp.MustCompile(`!\[[^\]]*\]\(\s*([^)\s]+)|<img\s[^>]*\bsrc="([^"]+)"`)

// maxDocImage is the size a picture in docs/img may have at most.
const maxDocImage = 200 << 10

// TestDocImages: every picture README.md and docs/*.md show exists (make
// screenshots writes them into docs/img), none is larger than 200 KB, and
// docs/img holds no picture that nothing shows.
func TestDocImages(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	shown := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range docImageRE.FindAllStringSubmatch(string(data), -1) {
			ref := m[1] + m[2]
			if strings.Contains(ref, "://") {
				continue // a picture on the web: not ours to check
			}
			p := filepath.Clean(filepath.Join(filepath.Dir(f), strings.SplitN(ref, "#", 2)[0]))
			shown[p] = true
			st, err := os.Stat(p)
			switch {
			case err != nil:
				t.Errorf("%s shows %s: %v", filepath.Base(f), ref, err)
			case st.Size() > maxDocImage:
				t.Errorf("%s shows %s: %d KB, more than %d KB", filepath.Base(f), ref, st.Size()>>10, maxDocImage>>10)
			}
		}
	}
	if len(shown) < 10 {
		t.Fatalf("README.md and docs/ show only %d pictures; the pattern misses some?", len(shown))
	}
	imgs, err := filepath.Glob(filepath.Join(root, "docs", "img", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	for _, p := range imgs {
		if !shown[filepath.Clean(p)] {
			unused = append(unused, filepath.Base(p))
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("docs/img holds pictures no document shows: %v", unused)
	}
}
