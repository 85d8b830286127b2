package embedded

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ldifRecord is one entry of an LDIF file: its DN and attributes in file
// order.
type ldifRecord struct {
	line  int
	dn    string
	attrs []attr
}

// parseLDIF reads the content records of an LDIF file (RFC 2849): comments,
// folded lines, "attr: value", "attr:: base64". Change records other than
// "changetype: add" and URL values ("attr:< file") are refused with the
// line number, as is anything that is not valid UTF-8.
func parseLDIF(r io.Reader) ([]ldifRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var (
		out     []ldifRecord
		cur     *ldifRecord
		logical strings.Builder
		start   int // line of the logical line being built
		lineNo  int
	)
	flush := func() error {
		if logical.Len() == 0 {
			return nil
		}
		text := logical.String()
		logical.Reset()
		if strings.HasPrefix(text, "#") {
			return nil
		}
		name, value, err := parseLDIFLine(text)
		if err != nil {
			return fmt.Errorf("ldif line %d: %w", start, err)
		}
		switch {
		case cur == nil && strings.EqualFold(name, "version"):
			if value != "1" {
				return fmt.Errorf("ldif line %d: unsupported version %q", start, value)
			}
			return nil
		case cur == nil:
			if !strings.EqualFold(name, "dn") {
				return fmt.Errorf("ldif line %d: a record must start with dn:, not %q", start, name)
			}
			out = append(out, ldifRecord{line: start, dn: value})
			cur = &out[len(out)-1]
			return nil
		case strings.EqualFold(name, "dn"):
			return fmt.Errorf("ldif line %d: second dn: in one record (missing blank line?)", start)
		case strings.EqualFold(name, "changetype"):
			if !strings.EqualFold(value, "add") {
				return fmt.Errorf("ldif line %d: changetype %q is not supported (content records only)", start, value)
			}
			return nil
		}
		for i := range cur.attrs {
			if strings.EqualFold(cur.attrs[i].name, name) {
				cur.attrs[i].vals = append(cur.attrs[i].vals, value)
				return nil
			}
		}
		cur.attrs = append(cur.attrs, attr{name: name, vals: []string{value}})
		return nil
	}
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "":
			if err := flush(); err != nil {
				return nil, err
			}
			cur = nil
		case line[0] == ' ':
			if logical.Len() == 0 {
				return nil, fmt.Errorf("ldif line %d: continuation line without a line to continue", lineNo)
			}
			logical.WriteString(line[1:])
		default:
			if err := flush(); err != nil {
				return nil, err
			}
			start = lineNo
			logical.WriteString(line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ldif: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseLDIFLine(text string) (name, value string, err error) {
	name, rest, ok := strings.Cut(text, ":")
	if !ok || name == "" {
		return "", "", fmt.Errorf("expected attr: value, got %q", text)
	}
	switch {
	case strings.HasPrefix(rest, ":"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", "", fmt.Errorf("%s: bad base64: %w", name, err)
		}
		value = string(raw)
	case strings.HasPrefix(rest, "<"):
		return "", "", fmt.Errorf("%s: URL values are not supported", name)
	default:
		value = strings.TrimLeft(rest, " ")
	}
	if !utf8.ValidString(value) {
		return "", "", fmt.Errorf("%s: value is not UTF-8", name)
	}
	return name, value, nil
}
