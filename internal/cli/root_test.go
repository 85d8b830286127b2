package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
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

// TestRootFor: the tree RootFor builds for one command parses, helps and
// fails exactly as the whole tree of Root does, and RootFor falls back to
// the whole tree for anything that is not one of our commands.
func TestRootFor(t *testing.T) {
	exec := func(root *cobra.Command, args []string) string {
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return fmt.Sprintf("%s\nerr: %v", out.String(), err)
	}
	full := Root(testApp(t))
	if len(full.Commands()) != len(commands) {
		t.Fatalf("Root has %d commands, the table %d", len(full.Commands()), len(commands))
	}
	for _, c := range commands {
		built := c.build(testApp(t))
		if built.Name() != c.name || len(built.Aliases) != 0 {
			t.Errorf("table name %q: command %q, aliases %v", c.name, built.Name(), built.Aliases)
		}
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "--no-such-flag"}, {c.name, "-h", "extra"}} {
			want := exec(Root(testApp(t)), args)
			got := exec(RootFor(testApp(t), args), args)
			if got != want {
				t.Errorf("%v: RootFor gives\n%s\nRoot gives\n%s", args, got, want)
			}
		}
		if n := len(RootFor(testApp(t), []string{c.name}).Commands()); n != 1 {
			t.Errorf("RootFor(%q) has %d commands, want 1", c.name, n)
		}
	}
	want := exec(Root(testApp(t)), []string{"profile", "add", "--help"})
	if got := exec(RootFor(testApp(t), []string{"profile", "add", "--help"}), []string{"profile", "add", "--help"}); got != want {
		t.Errorf("profile add --help: RootFor gives\n%s\nRoot gives\n%s", got, want)
	}
	for _, args := range [][]string{nil, {"help"}, {"completion", "bash"}, {"__complete", "cre"}, {"credential-proces"}, {"--help"}} {
		if got, want := exec(RootFor(testApp(t), args), args), exec(Root(testApp(t)), args); got != want {
			t.Errorf("%v: RootFor gives\n%s\nRoot gives\n%s", args, got, want)
		}
	}
}

// TestInterruptContext: the context is not cancelled until an interrupt
// arrives after it was first waited on, or stop is called.
func TestInterruptContext(t *testing.T) {
	ctx, stop := InterruptContext()
	if _, ok := ctx.Deadline(); ok || ctx.Value("k") != nil {
		t.Error("want no deadline and no values")
	}
	done := ctx.Done() // installs the handler
	if ctx.Err() != nil {
		t.Fatalf("Err %v before any interrupt", ctx.Err())
	}
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupt did not end the context")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("Err %v, want context.Canceled", ctx.Err())
	}
	stop()

	ctx, stop = InterruptContext()
	stop() // never waited on: no handler was installed
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after stop: Err %v, want context.Canceled", ctx.Err())
	}
	child, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("child of a stopped context: Err %v", child.Err())
	}
}
