package awsfed

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSetProfile(t *testing.T) {
	kv := [][2]string{{"credential_process", "/usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly"}, {"region", "eu-west-1"}}
	cases := []struct{ name, profile, in, want string }{
		{"new file", "dev", "", "[profile dev]\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\nregion = eu-west-1\n"},
		{"append keeps the rest", "dev",
			"# my config\n[default]\nregion=us-east-1 ; keep\n",
			"# my config\n[default]\nregion=us-east-1 ; keep\n\n[profile dev]\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\nregion = eu-west-1\n"},
		{"no final newline", "dev", "[default]\nregion=x",
			"[default]\nregion=x\n\n[profile dev]\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\nregion = eu-west-1\n"},
		{"replace in place", "dev",
			"[profile dev]\n# comment kept\nregion=us-east-1\noutput = json\ns3 =\n  max_concurrent_requests = 20\n\n[profile devx]\nregion = ap-south-1\n",
			"[profile dev]\n# comment kept\nregion = eu-west-1\noutput = json\ns3 =\n  max_concurrent_requests = 20\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\n\n[profile devx]\nregion = ap-south-1\n"},
		{"replace last line", "dev",
			"[profile  dev ]\ncredential_process = old\n[profile other]\ncredential_process = other\n",
			"[profile  dev ]\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\nregion = eu-west-1\n[profile other]\ncredential_process = other\n"},
		{"default profile", "default", "[profile default]\nregion=a\n",
			"[profile default]\nregion=a\n\n[default]\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\nregion = eu-west-1\n"},
		{"CRLF kept", "dev", "[default]\r\nregion=a\r\n",
			"[default]\r\nregion=a\r\n\r\n[profile dev]\r\ncredential_process = /usr/bin/warden credential-process --role arn:aws:iam::111122223333:role/ReadOnly\r\nregion = eu-west-1\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ".aws", "config")
			if tc.in != "" {
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := os.WriteFile(path, []byte(tc.in), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			if err := SetProfile(path, tc.profile, kv); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			st, _ := os.Stat(path)
			wantMode := os.FileMode(0o600)
			if tc.in != "" {
				wantMode = 0o640
				bak, err := os.ReadFile(path + ".warden.bak")
				if err != nil || string(bak) != tc.in {
					t.Errorf("backup %q, %v", bak, err)
				}
			}
			if st.Mode().Perm() != wantMode {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), wantMode)
			}
			// Idempotent.
			if err := SetProfile(path, tc.profile, kv); err != nil {
				t.Fatal(err)
			}
			if again, _ := os.ReadFile(path); string(again) != tc.want {
				t.Errorf("second run changed the file:\n%q", again)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) > 2 {
				t.Errorf("left files behind: %v", entries)
			}
		})
	}
	for _, bad := range []string{"", " dev", "a]b", "a\nb"} {
		if err := SetProfile(filepath.Join(t.TempDir(), "c"), bad, kv); err == nil {
			t.Errorf("profile %q accepted", bad)
		}
	}
	if err := SetProfile(filepath.Join(t.TempDir(), "c"), "p", [][2]string{{"k", "a\nb"}}); err == nil {
		t.Error("newline in value accepted")
	}
}
