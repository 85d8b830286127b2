package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input makes the parser panic or hang, and every problem it
// reports has text. Secret files come from a fake reader, never the disk.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"server:\n  listen: :8080\n",
		"directory:\n  type: activedirectory\n  urls: [ldaps://a]\n  bind_password: ${PW:-x}\n",
		"redis:\n  password_file: /s\n  addrs: [\"${H}:1\"]\n",
		"a: &a [1, 2]\nb: *a\n",
		"log: {level: $$, format: ${}}\n",
		"- 1\n- 2\n",
		"server: !!binary aGVsbG8=\n",
		"directory:\n  pool_size: 99999999999999999999999\n  timeout: -5s\n",
		"x: y\n---\nz: w\n",
		"directory:\n  attributes:\n    extra: [a, {b: c}]\n",
	}
	if data, err := os.ReadFile(filepath.Join("..", "..", "config", "wardend.yaml")); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := envMap(map[string]string{"PW": "pw", "H": "${PW}", "EMPTY": ""})
	files := filesMap(map[string]string{"/s": "secret\n"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, problems := parse(data, env, files)
		for _, p := range problems {
			if strings.TrimSpace(p.Error()) == "" {
				t.Fatalf("empty problem for %q", data)
			}
			if strings.Contains(p.Error(), "secret") && !strings.Contains(string(data), "secret") {
				t.Fatalf("file contents in a problem: %q", p.Error())
			}
		}
		if c != nil {
			// Component validation reads the files these name (CA bundles,
			// key pairs): keep the fuzzer off the disk (/dev/stdin would block).
			c.Server.TLS.CertFile, c.Server.TLS.KeyFile = "", ""
			c.Directory.CAFile = ""
			c.Redis.TLS.CAFile, c.Redis.TLS.CertFile, c.Redis.TLS.KeyFile = "", "", ""
			_ = c.Validate()
			_ = c.Warnings()
			_ = c.String()
		}
	})
}
