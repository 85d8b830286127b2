package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes of CheckConfig.
const (
	CheckOK         = 0 // the file is valid (it may have warnings)
	CheckProblems   = 1 // the file has problems
	CheckUnreadable = 2 // the file cannot be read
)

// CheckConfig implements `wardend check-config -config FILE`: it loads and
// validates the file at path and writes to w every problem, one per line
// with its key path, followed by a count; or "config OK"; then any warnings
// as "warning: key.path: message". It returns the process exit code
// (CheckOK, CheckProblems, CheckUnreadable). env is as for Parse.
//
// Problems found while decoding (unknown keys, wrong types, unset
// variables, unreadable secret files) come first, in file order; then the
// validation problems, by key path, among them those of the rule file that
// admin.rules_file names (which Validate does not read). A validation
// problem at a key that already has a decoding problem is left out: it
// would only repeat it.
func CheckConfig(path string, env func(string) (string, bool), w io.Writer) int {
	if env == nil {
		env = os.LookupEnv
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(w, "%s: cannot read config file: %s\n", path, fileErrorText(err))
		return CheckUnreadable
	}
	c, problems := parse(data, env, readSecretFile)
	var warnings []string
	if c != nil {
		rules, warning := c.rulesFileProblems()
		problems = append(problems, without(sortProblems(append(c.problems(), rules...)), problems)...)
		warnings = c.Warnings()
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	for _, p := range problems {
		fmt.Fprintln(w, p.Error())
	}
	if n := len(problems); n > 0 {
		s := "s"
		if n == 1 {
			s = ""
		}
		fmt.Fprintf(w, "%s: %d problem%s\n", path, n, s)
	} else {
		fmt.Fprintf(w, "%s: config OK\n", path)
	}
	for _, warning := range warnings {
		fmt.Fprintln(w, "warning: "+warning)
	}
	if len(problems) > 0 {
		return CheckProblems
	}
	return CheckOK
}

// without returns the problems in ps whose key path is not at or under the
// path of a problem in seen (X_file counting as X).
func without(ps, seen []*FieldError) []*FieldError {
	var out []*FieldError
next:
	for _, p := range ps {
		for _, s := range seen {
			sp := strings.TrimSuffix(s.Path, "_file")
			if s.Path != "" && (p.Path == sp || strings.HasPrefix(p.Path, sp+".") || strings.HasPrefix(p.Path, sp+"[")) {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}
