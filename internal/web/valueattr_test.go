package web

import (
	"bytes"
	"html/template"
	"strings"
	"testing"
)

// TestValueAttr: base64 goes out as it is; anything else is escaped, so a
// value can never leave its attribute.
func TestValueAttr(t *testing.T) {
	tmpl := template.Must(template.New("f").Funcs(template.FuncMap{"valueAttr": valueAttr}).
		Parse(`<input type="hidden" name="x" {{valueAttr .}}>`))
	for in, want := range map[string]string{
		"PHNhbWxwOlJlc3BvbnNlLz4+/w==": `<input type="hidden" name="x" value="PHNhbWxwOlJlc3BvbnNlLz4+/w==">`,
		"":                             `<input type="hidden" name="x" value="">`,
		`"><script>alert(1)</script>`:  `<input type="hidden" name="x" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">`,
		"relay state&x='1'":            `<input type="hidden" name="x" value="relay state&amp;x=&#39;1&#39;">`,
	} {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, in); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%q:\n got %s\nwant %s", in, b.String(), want)
		}
		if strings.Count(b.String(), `"`) != 6 {
			t.Errorf("%q broke out of its attribute: %s", in, b.String())
		}
	}
}
