package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
)

func TestConfigSaveLoad(t *testing.T) {
	a := testApp(t)
	a.ConfigDir = filepath.Join(t.TempDir(), "warden")
	c, err := a.LoadConfig()
	if err != nil || c.Region != "us-east-1" || c.Partition != "aws" || c.Via != ViaSAML || c.IdPURL != "" {
		t.Fatalf("defaults without a file: %+v %v", c, err)
	}
	want := Config{IdPURL: "https://idp.example.com/", Region: "eu-west-1", SessionSeconds: 7200, Via: ViaWebIdentity,
		FederationEndpoint: "https://fed.example.com/federation",
		Partitions:         map[string]PartitionConfig{"aws-us-gov": {Region: "us-gov-east-1", Via: ViaSAML}}}
	if err := a.SaveConfig(want); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, a.ConfigDir); m != 0o700 {
		t.Errorf("config dir mode %o", m)
	}
	if m := mode(t, a.configPath()); m != 0o600 {
		t.Errorf("config file mode %o", m)
	}
	got, err := a.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	want.IdPURL, want.Partition = "https://idp.example.com", "aws"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestConfigStrictAndValid(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"unknown key", "idp_url: https://idp.example.com\nregoin: eu-west-1\n", "regoin"},
		{"http off loopback", "idp_url: http://idp.example.com\n", "plain http only on loopback"},
		{"http on loopback", "idp_url: http://127.0.0.1:8080\n", ""},
		{"not a URL", "idp_url: idp.example.com\n", "want https://"},
		{"query", "idp_url: https://idp.example.com/?x=1\n", "want https://"},
		{"partition", "partition: aws-moon\n", "partition \"aws-moon\""},
		{"region of another partition", "partition: aws-us-gov\nregion: eu-west-1\n", "region"},
		{"gov default region", "partition: aws-us-gov\n", ""},
		{"session too short", "session_seconds: 60\n", "session_seconds 60"},
		{"session too long", "session_seconds: 50000\n", "session_seconds 50000"},
		{"via", "via: carrier-pigeon\n", "via \"carrier-pigeon\""},
		{"sts endpoint", "sts_endpoint: ftp://x\n", "sts_endpoint"},
		{"two problems at once", "via: x\nsession_seconds: 1\n", "session_seconds 1"},
		{"empty file", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testApp(t)
			if err := os.WriteFile(a.configPath(), []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := a.LoadConfig()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigureFlags(t *testing.T) {
	a := testApp(t)
	root := Root(a)
	root.SetArgs([]string{"configure", "--idp-url", "https://idp.example.com", "--region", "eu-central-1", "--session-seconds", "1800"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	c, err := a.LoadConfig()
	if err != nil || c.IdPURL != "https://idp.example.com" || c.Region != "eu-central-1" || c.SessionSeconds != 1800 {
		t.Fatalf("%+v %v", c, err)
	}
	if out := a.Stdout.(*bytes.Buffer).String(); out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	// A second run changes only what it is given.
	root = Root(a)
	root.SetArgs([]string{"configure", "--via", "web-identity"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.LoadConfig(); c.Region != "eu-central-1" || c.Via != ViaWebIdentity {
		t.Fatalf("after second run: %+v", c)
	}
	// Bad values are refused and the file is unchanged.
	for _, args := range [][]string{{"--region", "mars-1"}, {"--idp-url", "http://idp.example.com"}, {"--session-seconds", "5"}} {
		root = Root(a)
		root.SetArgs(append([]string{"configure"}, args...))
		if err := root.Execute(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if c, _ := a.LoadConfig(); c.Region != "eu-central-1" || c.SessionSeconds != 1800 {
		t.Fatalf("refused values changed the file: %+v", c)
	}
	// Without an IdP URL there is nothing to configure.
	b := testApp(t)
	root = Root(b)
	root.SetArgs([]string{"configure", "--region", "eu-west-1"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--idp-url") {
		t.Fatalf("no IdP URL: %v", err)
	}
}

func TestConfigurePrompts(t *testing.T) {
	a := testApp(t)
	a.IsTerminal = func() bool { return true }
	// IdP URL, partition (default), region, session, via (default).
	a.Stdin = strings.NewReader("https://idp.example.org\n\neu-north-1\n3600\n\n")
	root := Root(a)
	root.SetArgs([]string{"configure"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	c, _ := a.LoadConfig()
	if c.IdPURL != "https://idp.example.org" || c.Partition != "aws" || c.Region != "eu-north-1" || c.SessionSeconds != 3600 || c.Via != ViaSAML {
		t.Fatalf("%+v", c)
	}
	errOut := a.Stderr.(*bytes.Buffer).String()
	if !strings.Contains(errOut, "IdP URL: ") || !strings.Contains(errOut, "Default region [us-east-1]: ") {
		t.Errorf("prompts on stderr: %q", errOut)
	}
	// A flag is not asked for again.
	a.Stderr = &bytes.Buffer{}
	a.Stdin = strings.NewReader("\n\n\n\n")
	root = Root(a)
	root.SetArgs([]string{"configure", "--region", "eu-west-3"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.Stderr.(*bytes.Buffer).String(), "Default region") {
		t.Error("asked for a value given as a flag")
	}
	if c, _ := a.LoadConfig(); c.Region != "eu-west-3" || c.IdPURL != "https://idp.example.org" {
		t.Fatalf("%+v", c)
	}
}

func TestQRHalfBlocks(t *testing.T) {
	q := qrHalfBlocks("https://idp.example.com/device?user_code=BCDF-GHJK")
	lines := strings.Split(strings.TrimSuffix(q, "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("%d lines", len(lines))
	}
	w := len([]rune(lines[0]))
	for _, l := range lines {
		if len([]rune(l)) != w {
			t.Fatal("ragged QR code")
		}
		if strings.Trim(l, " █▀▄") != "" {
			t.Fatalf("unexpected characters in %q", l)
		}
	}
	// The quiet zone (light) is all blocks on the first line.
	if strings.Trim(lines[0], "█") != "" {
		t.Errorf("first line %q is not quiet zone", lines[0])
	}
	// Decoding the half blocks back gives the library's module matrix.
	q2, err := qrcode.New("https://idp.example.com/device?user_code=BCDF-GHJK", qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	bm := q2.Bitmap()
	if w != len(bm) || len(lines) != (len(bm)+1)/2 {
		t.Fatalf("size %dx%d lines for a %d-module code", w, len(lines), len(bm))
	}
	for y, l := range lines {
		for x, r := range []rune(l) {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			if top != !bm[2*y][x] || (2*y+1 < len(bm) && bottom != !bm[2*y+1][x]) {
				t.Fatalf("module (%d,%d) rendered wrong", x, 2*y)
			}
		}
	}
}
