package awsfed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SetProfile sets keys of one profile in the AWS config file at path
// (~/.aws/config, item 49): the section "[profile <profile>]" ("[default]"
// for "default"). Each key of kv replaces the line holding that key in
// the section, or is added at the section's end; other keys of the
// section, every other section, comment and blank line stay byte for
// byte. A missing section is appended. The file is written atomically
// (temporary file and rename) with its mode kept (0600 for a new file, in
// a 0700 directory made if needed), and the previous content is kept in
// path + ".warden.bak".
func SetProfile(path, profile string, kv [][2]string) error {
	if profile == "" || strings.ContainsAny(profile, "[]\r\n") || strings.TrimSpace(profile) != profile {
		return fmt.Errorf("awsconfig: %q is not a usable profile name", profile)
	}
	for _, p := range kv {
		if p[0] == "" || strings.ContainsAny(p[0], "=[]\r\n \t#;") || strings.ContainsAny(p[1], "\r\n") {
			return fmt.Errorf("awsconfig: bad setting %q", p[0])
		}
	}
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o600)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("awsconfig: %w", err)
		}
	case err != nil:
		return fmt.Errorf("awsconfig: %w", err)
	default:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	header := "profile " + profile
	if profile == "default" {
		header = "default"
	}
	out := setSection(old, header, kv)
	if old != nil {
		if err := writeAtomic(path+".warden.bak", old, 0o600); err != nil {
			return err
		}
	}
	return writeAtomic(path, out, mode)
}

// sectionName returns the name inside a "[ name ]" line, or false.
func sectionName(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if len(t) < 2 || t[0] != '[' || t[len(t)-1] != ']' {
		return "", false
	}
	return strings.Join(strings.Fields(t[1:len(t)-1]), " "), true
}

func lineKey(line string) string {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' || t[0] == ';' || line[0] == ' ' || line[0] == '\t' {
		return "" // comments and continuation lines of nested values
	}
	k, _, ok := strings.Cut(t, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(k)
}

func setSection(old []byte, header string, kv [][2]string) []byte {
	nl := "\n"
	if bytes.Contains(old, []byte("\r\n")) {
		nl = "\r\n"
	}
	text := string(old)
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	start, end := -1, len(lines)
	for i, l := range lines {
		name, ok := sectionName(l)
		if !ok {
			continue
		}
		if start >= 0 {
			end = i
			break
		}
		if name == header {
			start = i
		}
	}
	set := func(k, v string) string { return k + " = " + v + nl }
	var b strings.Builder
	if start < 0 {
		b.WriteString(text)
		if text != "" && !strings.HasSuffix(text, "\n") {
			b.WriteString(nl)
		}
		if text != "" {
			b.WriteString(nl)
		}
		b.WriteString("[" + header + "]" + nl)
		for _, p := range kv {
			b.WriteString(set(p[0], p[1]))
		}
		return []byte(b.String())
	}
	done := make(map[string]bool)
	want := make(map[string]string)
	for _, p := range kv {
		want[p[0]] = p[1]
	}
	// The section ends after its last non-blank line: new keys go there,
	// before the blank lines that separate it from the next section.
	last := start
	for i := start + 1; i < end; i++ {
		if strings.TrimSpace(lines[i]) != "" {
			last = i
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if i > start && i < end {
			if k := lineKey(l); k != "" {
				if v, ok := want[k]; ok {
					if !done[k] {
						b.WriteString(set(k, v))
						done[k] = true
					}
					// drop the old line and its indented continuation lines
					for i+1 < end && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') && strings.TrimSpace(lines[i+1]) != "" {
						i++
					}
					if i == last {
						l = ""
					} else {
						continue
					}
				}
			}
		}
		if l != "" {
			b.WriteString(l)
			if i == last && !strings.HasSuffix(l, "\n") {
				b.WriteString(nl)
			}
		}
		if i == last {
			for _, p := range kv {
				if !done[p[0]] {
					b.WriteString(set(p[0], p[1]))
					done[p[0]] = true
				}
			}
		}
	}
	return []byte(b.String())
}

// writeAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("awsconfig: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("awsconfig: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("awsconfig: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("awsconfig: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("awsconfig: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("awsconfig: %w", err)
	}
	return nil
}
