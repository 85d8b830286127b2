package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wardenidp/warden/internal/rolemap"
	"github.com/wardenidp/warden/internal/store"
	"github.com/wardenidp/warden/internal/web"
)

// historyView is one rules version for display.
type historyView struct {
	store.RuleVersion
	Lines []diffLine
}

// diffLine is one line of a unified diff with its CSS class.
type diffLine struct{ Class, Text string }

func diffLines(d string) []diffLine {
	if d == "" {
		return nil
	}
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
		cls := "ctx"
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			cls = "hdr"
		case strings.HasPrefix(l, "@@"):
			cls = "hunk"
		case strings.HasPrefix(l, "+"):
			cls = "add"
		case strings.HasPrefix(l, "-"):
			cls = "del"
		}
		out = append(out, diffLine{cls, l})
	}
	return out
}

const historyPage = 20

func (a *Admin) pageHistory(c *gin.Context) {
	p := a.newPage("history")
	before, _ := strconv.ParseInt(c.Query("before"), 10, 64)
	if before < 0 {
		before = 0
	}
	cur, _, err := a.rules.Current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	vs, err := a.rules.History(c.Request.Context(), before, historyPage)
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p.Version, p.Current = cur.Version, cur
	for _, v := range vs {
		p.History = append(p.History, historyView{RuleVersion: v})
	}
	if len(vs) == historyPage && vs[len(vs)-1].Version > 1 {
		p.NextCursor = strconv.FormatInt(vs[len(vs)-1].Version, 10)
	}
	a.render(c, http.StatusOK, "history.html", p)
}

func parseVersion(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v > 0
}

func (a *Admin) pageVersion(c *gin.Context) {
	n, ok := parseVersion(c.Param("version"))
	if !ok {
		web.Fail(c, http.StatusNotFound, "There is no such rules version.", nil)
		return
	}
	v, _, err := a.rules.Get(c.Request.Context(), n)
	if errors.Is(err, store.ErrNotFound) {
		web.Fail(c, http.StatusNotFound, "There is no such rules version.", nil)
		return
	}
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	cur, _, err := a.rules.Current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("history")
	p.Version, p.Current = cur.Version, cur
	p.VersionV = &historyView{RuleVersion: v, Lines: diffLines(v.Diff)}
	a.render(c, http.StatusOK, "version.html", p)
}

// restore makes a new version with the document of version n.
func (a *Admin) restore(c *gin.Context, expected, n int64, comment string) (store.RuleVersion, error) {
	_, before, err := a.rules.Current(c.Request.Context())
	if err != nil {
		return store.RuleVersion{}, err
	}
	_, doc, err := a.rules.Get(c.Request.Context(), n)
	if err != nil {
		return store.RuleVersion{}, err
	}
	// An old version was valid under the rules of its day; it must still
	// be valid (and compile) to become current.
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		return store.RuleVersion{}, asProblems(err)
	}
	if ps := a.validate(rs); len(ps) > 0 {
		return store.RuleVersion{}, &problemsError{problems: ps}
	}
	v, err := a.rules.Restore(c.Request.Context(), expected, n, changeMeta(c, comment))
	object := "v" + strconv.FormatInt(n, 10)
	if err != nil {
		return v, err
	}
	a.record(c, "rules.restore", object, "success", string(before), string(doc),
		map[string]string{"version": strconv.FormatInt(v.Version, 10), "restored_from": strconv.FormatInt(n, 10)})
	return v, nil
}

// asProblems turns a rolemap parse error into a problemsError.
func asProblems(err error) error {
	var re *rolemap.Error
	if errors.As(err, &re) {
		return &problemsError{problems: re.Problems}
	}
	return &problemsError{problems: []rolemap.Problem{{Message: "The document is not a valid rule set."}}}
}

func (a *Admin) postRestore(c *gin.Context) {
	n, ok := parseVersion(c.Param("version"))
	expected, eok := formVersion(c)
	if !ok || !eok {
		web.Fail(c, http.StatusBadRequest, "The form lacks the rules version it was loaded from. Reload the page and try again.", nil)
		return
	}
	v, err := a.restore(c, expected, n, strings.TrimSpace(c.Request.PostForm.Get("comment")))
	var pe *problemsError
	switch {
	case err == nil:
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/history?done=restored&v=%d", v.Version))
	case errors.Is(err, store.ErrConflict):
		a.record(c, "rules.restore", "v"+strconv.FormatInt(n, 10), "conflict", "", "", nil)
		a.conflictPage(c, "/admin/history/"+strconv.FormatInt(n, 10))
	case errors.Is(err, store.ErrNotFound):
		web.Fail(c, http.StatusNotFound, "There is no such rules version.", nil)
	case errors.As(err, &pe):
		a.record(c, "rules.restore", "v"+strconv.FormatInt(n, 10), "invalid", "", "", nil)
		web.Fail(c, http.StatusUnprocessableEntity, "This version cannot be restored: it is not valid under today's rules ("+
			pe.Error()+").", nil)
	default:
		a.storeFailed(c, err)
	}
}

// conflictPage tells the admin that someone else saved first.
func (a *Admin) conflictPage(c *gin.Context, reload string) {
	p := a.newPage("history")
	p.Conflict = true
	p.Error = reload
	a.render(c, http.StatusConflict, "conflict.html", p)
}

// getExport downloads the current rules as YAML.
func (a *Admin) getExport(c *gin.Context) {
	cur, doc, err := a.rules.Current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	if len(doc) == 0 {
		if doc, err = (rolemap.RuleSet{}).MarshalYAML(); err != nil {
			web.Fail(c, http.StatusInternalServerError, "", err)
			return
		}
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="warden-rules-v%d.yaml"`, cur.Version))
	c.Header("ETag", strconv.Quote(strconv.FormatInt(cur.Version, 10)))
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", doc)
}

func (a *Admin) pageImport(c *gin.Context) {
	if a.cfg.RulesReadOnly {
		web.Fail(c, http.StatusForbidden, a.readOnlyMessage(), nil)
		return
	}
	cur, _, err := a.rules.Current(c.Request.Context())
	if err != nil {
		a.storeFailed(c, err)
		return
	}
	p := a.newPage("import")
	p.Version = cur.Version
	a.render(c, http.StatusOK, "import.html", p)
}

// postImport replaces the whole rule set with an uploaded or pasted YAML document.
func (a *Admin) postImport(c *gin.Context) {
	p := a.newPage("import")
	f := c.Request.PostForm
	p.Comment = strings.TrimSpace(f.Get("comment"))
	expected, ok := formVersion(c)
	if !ok {
		web.Fail(c, http.StatusBadRequest, "The form lacks the rules version it was loaded from. Reload the page and try again.", nil)
		return
	}
	p.Version = expected
	doc := []byte(f.Get("yaml"))
	if c.Request.MultipartForm != nil {
		if fhs := c.Request.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			fh, err := fhs[0].Open()
			if err == nil {
				doc, err = io.ReadAll(io.LimitReader(fh, maxRulesBody))
				_ = fh.Close()
			}
			if err != nil {
				web.Fail(c, http.StatusBadRequest, "The uploaded file could not be read.", err)
				return
			}
		}
	}
	p.Import = string(doc)
	if strings.TrimSpace(string(doc)) == "" {
		p.Fields["yaml"] = []string{"Paste a YAML rule set or choose a file."}
		a.render(c, http.StatusUnprocessableEntity, "import.html", p)
		return
	}
	v, before, after, err := a.importDoc(c, expected, doc, p.Comment)
	var pe *problemsError
	switch {
	case err == nil:
		a.record(c, "rules.import", "rules", "success", before, after, map[string]string{"version": strconv.FormatInt(v.Version, 10)})
		c.Redirect(http.StatusSeeOther, fmt.Sprintf("/admin/rules?done=imported&v=%d", v.Version))
	case errors.Is(err, store.ErrConflict):
		a.record(c, "rules.import", "rules", "conflict", "", "", nil)
		p.Conflict = true
		a.render(c, http.StatusConflict, "import.html", p)
	case errors.As(err, &pe):
		a.record(c, "rules.import", "rules", "invalid", "", "", nil)
		for _, pr := range pe.problems {
			p.Problems = append(p.Problems, pr.String())
		}
		a.render(c, http.StatusUnprocessableEntity, "import.html", p)
	default:
		a.storeFailed(c, err)
	}
}

// importDoc parses, validates and saves a whole document.
func (a *Admin) importDoc(c *gin.Context, expected int64, doc []byte, comment string) (store.RuleVersion, string, string, error) {
	rs, err := rolemap.ParseYAML(doc)
	if err != nil {
		return store.RuleVersion{}, "", "", asProblems(err)
	}
	return a.replace(c, expected, rs, comment)
}

// replace saves rs as the whole rule set; it returns the old and new YAML.
func (a *Admin) replace(c *gin.Context, expected int64, rs rolemap.RuleSet, comment string) (store.RuleVersion, string, string, error) {
	var before []byte
	var v store.RuleVersion
	err := a.change(c.Request.Context(), expected, changeMeta(c, comment), func(cur *rolemap.RuleSet) error {
		b, err := cur.MarshalYAML()
		if err != nil {
			return fmt.Errorf("admin: marshal rules: %w", err)
		}
		before = b
		*cur = rs
		return nil
	}, &v)
	if err != nil {
		return v, "", "", err
	}
	after, _ := rs.MarshalYAML()
	return v, string(before), string(after), nil
}
