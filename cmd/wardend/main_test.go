package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunArguments(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("server:\n  listn: x\ndirectory:\n  type: nosuch\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // expected in stdout+stderr
	}{
		{"no mode", nil, 2, "need -config FILE or -dev"},
		{"dev and config", []string{"-dev", "-config", bad}, 2, "do not go together"},
		{"stray argument", []string{"-dev", "extra"}, 2, "unexpected argument"},
		{"unknown flag", []string{"-nosuch"}, 2, "flag provided but not defined"},
		{"version", []string{"version"}, 0, "wardend "},
		{"check-config without file", []string{"check-config"}, 2, "usage: wardend check-config"},
		{"check-config missing file", []string{"check-config", "-config", filepath.Join(dir, "none.yaml")}, 2, "none.yaml"},
		{"check-config problems", []string{"check-config", "-config", bad}, 1, "server.listn"},
		{"bad config refuses to start", []string{"-config", bad}, 1, "server.listn"},
		{"dev refuses a public address", []string{"-dev", "-listen", "0.0.0.0:0"}, 1, "dev mode refuses"},
		{"users without a command", []string{"users"}, 2, "wardend users revoke -config FILE USERNAME"},
		{"users unknown command", []string{"users", "delete"}, 2, `unknown command "delete"`},
		{"users help", []string{"users", "help"}, 0, "records one audit event"},
		{"users revoke without a user", []string{"users", "revoke", "-config", bad}, 2, "exactly one of USERNAME or -id"},
		{"users revoke with both", []string{"users", "revoke", "-config", bad, "-id", "x", "carol"}, 2, "exactly one of USERNAME or -id"},
		{"users revoke without config", []string{"users", "revoke", "carol"}, 2, "need -config FILE"},
		{"users revoke bad config", []string{"users", "revoke", "-config", bad, "carol"}, 1, "server.listn"},
		{"keys unknown command", []string{"keys", "shred"}, 2, `wardend keys: unknown command "shred"`},
		{"aws unknown command", []string{"aws", "teardown"}, 2, `wardend aws: unknown command "teardown"`},
		{"unknown command", []string{"frobnicate"}, 2, `wardend: unknown command "frobnicate"`},
		{"unknown command lists the commands", []string{"key", "list"}, 2, "\n  keys list "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, all)
			}
			if !strings.Contains(all, tc.out) {
				t.Errorf("output lacks %q:\n%s", tc.out, all)
			}
		})
	}
}

// TestHelpListsEveryCommand: wardend --help (and help, -h, and an unknown
// command) names every command, one line each, and the server's flags.
func TestHelpListsEveryCommand(t *testing.T) {
	lines := []string{
		"\n  check-config   report every problem in a configuration file",
		"\n  keys list      show every signing key",
		"\n  keys rotate    make a next signing key",
		"\n  keys promote   make the next key sign",
		"\n  aws setup      print the IAM commands and trust policies",
		"\n  users revoke   end all access of a user at once",
		"\n  version        print the version",
		"\n  help           print this help",
		"\n  -config string", // the server's flags
		"\n  -dev\n",
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"-help"}, 0},
		{[]string{"-h"}, 0},
		{[]string{"help"}, 0},
		{[]string{"nosuch"}, 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			help := out.String()
			if tc.code != 0 {
				help = errb.String() // an error: the list goes with it to stderr
			} else if errb.Len() > 0 {
				t.Errorf("asked-for help wrote to stderr: %s", errb.String())
			}
			for _, l := range lines {
				if !strings.Contains(help, l) {
					t.Errorf("help lacks %q:\n%s", l, help)
				}
			}
		})
	}
	// Every command that run dispatches is in the list.
	var out bytes.Buffer
	run([]string{"help"}, &out, &out)
	for name := range commands {
		if !strings.Contains(out.String(), "\n  "+name+" ") {
			t.Errorf("help does not list %q:\n%s", name, out.String())
		}
	}
}
