package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	webassets "github.com/wardenidp/warden/web"
)

// asset is one static file, held in memory (they are a few kB).
type asset struct {
	body        []byte
	contentType string
	etag        string
	hashed      string // warden.3f2a9c1b0d4e.css
}

// assets serves the embedded static files under content-hashed names, so
// that they can be cached for a year: a changed file gets a new name.
type assets struct {
	byHashed map[string]*asset
	byName   map[string]*asset
}

func loadAssets() (*assets, error) {
	a := &assets{byHashed: map[string]*asset{}, byName: map[string]*asset{}}
	fsys := webassets.Static()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(p, "/") {
			return fmt.Errorf("web: static file %s: subdirectories are not served", p)
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("web: read static %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:6])
		ext := path.Ext(p)
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		as := &asset{body: body, contentType: ct, etag: `"` + h + `"`, hashed: strings.TrimSuffix(p, ext) + "." + h + ext}
		a.byName[p] = as
		a.byHashed[as.hashed] = as
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load static files: %w", err)
	}
	return a, nil
}

// url is the template function "asset": the cacheable URL of a static file.
// An unknown name is an error, so a typo fails at template execution in tests.
func (a *assets) url(name string) (string, error) {
	as, ok := a.byName[name]
	if !ok {
		return "", fmt.Errorf("unknown static file %q", name)
	}
	return "/static/" + as.hashed, nil
}

// handleStatic serves a hashed name with a one-year immutable lifetime and a
// plain name (for bookmarks, old pages) with a short one.
func (s *Server) handleStatic(c *gin.Context) {
	name := c.Param("name")
	cache := "public, max-age=31536000, immutable"
	as, ok := s.assets.byHashed[name]
	if !ok {
		if as, ok = s.assets.byName[name]; !ok {
			s.renderError(c, http.StatusNotFound)
			return
		}
		cache = "public, max-age=300"
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", cache)
	h.Set("ETag", as.etag)
	h.Set("Content-Type", as.contentType)
	if match := c.GetHeader("If-None-Match"); match != "" && strings.Contains(match, as.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(as.body)))
	c.Status(http.StatusOK)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(as.body)
	}
}
