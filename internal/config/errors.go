package config

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem in a configuration, at a key path such as
// "directory.urls[1]". Its Error text is "key.path: message"; the message
// carries the line in the file where that helps ("unknown key (line 12)").
// It never contains a secret value.
type FieldError struct {
	// Path is the full key path; empty for the document as a whole.
	Path string
	// Line is the line in the file (1-based), 0 when not known.
	Line int
	Msg  string
	// Err is the underlying error, if any (a component's Validate error, a
	// file read error).
	Err error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func (e *FieldError) Unwrap() error { return e.Err }

// joinProblems joins problems into one error (nil for none); its text has
// one problem per line.
func joinProblems(ps []*FieldError) error {
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// flatten returns the leaves of err: an errors.Join result is opened up
// (recursively), anything else is a leaf. Only true joins are opened: an
// error with Unwrap() []error whose text is not exactly its children's texts
// one per line (fmt.Errorf with several %w, which adds its own words) is
// kept whole so that no text is lost.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	kids := j.Unwrap()
	texts := make([]string, 0, len(kids))
	for _, k := range kids {
		if k != nil {
			texts = append(texts, k.Error())
		}
	}
	if strings.Join(texts, "\n") != err.Error() {
		return []error{err}
	}
	var out []error
	for _, k := range kids {
		out = append(out, flatten(k)...)
	}
	return out
}

// sortProblems orders problems by key path (indices numerically, so that
// urls[2] comes before urls[10]), keeping the order of problems at the
// same path, and drops exact duplicates.
func sortProblems(ps []*FieldError) []*FieldError {
	slices.SortStableFunc(ps, func(a, b *FieldError) int { return comparePaths(a.Path, b.Path) })
	return slices.CompactFunc(ps, func(a, b *FieldError) bool { return a.Error() == b.Error() })
}

// comparePaths compares key paths, runs of digits by their value.
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			// "." sorts before "[" and letters, so that a block's own
			// keys group together: "server.tls" < "server.tls_x".
			return rank(a[0]) - rank(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func rank(c byte) int {
	if c == '.' {
		return -1
	}
	return int(c)
}
