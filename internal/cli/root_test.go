package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   func(string) bool
	}{
		{[]string{"version"}, func(s string) bool { return strings.HasPrefix(s, "warden ") && strings.Contains(s, "go1.") }},
		{[]string{"version", "--json"}, func(s string) bool {
			var v map[string]any
			return json.Unmarshal([]byte(s), &v) == nil && v["version"] != "" && v["go"] != nil
		}},
	} {
		var out bytes.Buffer
		root := Root(testApp(t))
		root.SetOut(&out)
		root.SetArgs(tc.args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !tc.ok(out.String()) {
			t.Errorf("%v: unexpected output %q", tc.args, out.String())
		}
	}
	root := Root(testApp(t))
	root.SetArgs([]string{"version", "extra"})
	root.SetOut(&bytes.Buffer{})
	if err := root.Execute(); err == nil {
		t.Error("extra argument must be refused")
	}
}
