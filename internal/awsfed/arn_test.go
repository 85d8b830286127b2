package awsfed

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoleARN(t *testing.T) {
	name64 := strings.Repeat("n", 64)
	path510 := "/" + strings.Repeat("p", 510) + "/"
	valid := []struct {
		in   string
		want RoleARN
	}{
		{"arn:aws:iam::123456789012:role/Admin", RoleARN{"aws", "123456789012", "/", "Admin"}},
		{"arn:aws-us-gov:iam::000000000000:role/ReadOnly", RoleARN{"aws-us-gov", "000000000000", "/", "ReadOnly"}},
		{"arn:aws-cn:iam::123456789012:role/a", RoleARN{"aws-cn", "123456789012", "/", "a"}},
		{"arn:aws:iam::123456789012:role/team/ops/Deploy", RoleARN{"aws", "123456789012", "/team/ops/", "Deploy"}},
		{"arn:aws:iam::123456789012:role/!~:*/x", RoleARN{"aws", "123456789012", "/!~:*/", "x"}},
		{"arn:aws:iam::123456789012:role/a//b/x", RoleARN{"aws", "123456789012", "/a//b/", "x"}},
		{"arn:aws:iam::123456789012:role/A_b+c=d.e@f-g", RoleARN{"aws", "123456789012", "/", "A_b+c=d.e@f-g"}},
		{"arn:aws:iam::123456789012:role/" + name64, RoleARN{"aws", "123456789012", "/", name64}},
		{"arn:aws:iam::123456789012:role" + path510 + "x", RoleARN{"aws", "123456789012", path510, "x"}},
	}
	for _, tc := range valid {
		t.Run("valid/"+Quote(tc.in), func(t *testing.T) {
			got, err := ParseRoleARN(tc.in)
			if err != nil {
				t.Fatalf("ParseRoleARN: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
	invalid := []struct{ in, msg string }{
		{"", "not of the form"},
		{"arn:aws:iam::123456789012", "not of the form"},
		{"ARN:aws:iam::123456789012:role/x", "not of the form"},
		{"arn:aws-eu:iam::123456789012:role/x", "unknown partition"},
		{"arn:AWS:iam::123456789012:role/x", "unknown partition"},
		{"arn:aws:sts::123456789012:role/x", "service must be"},
		{"arn:aws:iam:us-east-1:123456789012:role/x", "no region"},
		{"arn:aws:iam::12345678901:role/x", "12 digits"},
		{"arn:aws:iam::1234567890123:role/x", "12 digits"},
		{"arn:aws:iam::12345678901a:role/x", "12 digits"},
		{"arn:aws:iam::１23456789012:role/x", "12 digits"},
		{"arn:aws:iam::123456789012:user/x", `start with "role/"`},
		{"arn:aws:iam::123456789012:Role/x", `start with "role/"`},
		{"arn:aws:iam::123456789012:role/", "role name is empty"},
		{"arn:aws:iam::123456789012:role/team/", "role name is empty"},
		{"arn:aws:iam::123456789012:role//x", "empty between"},
		{"arn:aws:iam::123456789012:role/a b/x", "outside ! to ~"},
		{"arn:aws:iam::123456789012:role/a\x7f/x", "outside ! to ~"},
		{"arn:aws:iam::123456789012:role/ü/x", "outside ! to ~"},
		{"arn:aws:iam::123456789012:role/" + name64 + "n", "longer than 64"},
		{"arn:aws:iam::123456789012:role/a:b", "outside [A-Za-z0-9_+=,.@-]"},
		{"arn:aws:iam::123456789012:role/a b", "outside [A-Za-z0-9_+=,.@-]"},
		{"arn:aws:iam::123456789012:role/a*", "outside [A-Za-z0-9_+=,.@-]"},
		{"arn:aws:iam::123456789012:role/jürgen", "outside [A-Za-z0-9_+=,.@-]"},
		{"arn:aws:iam::123456789012:role/ x", "outside [A-Za-z0-9_+=,.@-]"},
		{"arn:aws:iam::123456789012:role/x\n", "outside [A-Za-z0-9_+=,.@-]"},
		// Legal in IAM, refused by Warden: the SAML Role attribute is
		// "<role ARN>,<provider ARN>".
		{"arn:aws:iam::123456789012:role/A_b+c=d,e.f@g-h", `role name "A_b+c=d,e.f@g-h" has a comma at byte 7`},
		{"arn:aws:iam::123456789012:role/,", "has a comma at byte 0"},
		{"arn:aws:iam::123456789012:role/team,ops/Deploy", `role path "/team,ops/" has a comma at byte 5`},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("n", 63) + ",", "rename it"},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("p", 500) + ",/x", "move it to a path without one"},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("p/", 256) + "x", "role path longer than 512"},
		{"arn:aws:iam::123456789012:role/" + strings.Repeat("p", 2100), "longer than 2048"},
	}
	for _, tc := range invalid {
		t.Run("invalid/"+Quote(tc.in), func(t *testing.T) {
			got, err := ParseRoleARN(tc.in)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, ErrInvalidARN) {
				t.Fatalf("error %v does not wrap ErrInvalidARN", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error too long (%d bytes): %q", len(err.Error()), err)
			}
		})
	}
}

func TestRoleARNStringEmptyPath(t *testing.T) {
	a := RoleARN{Partition: "aws", Account: "123456789012", Name: "x"}
	if got := a.String(); got != "arn:aws:iam::123456789012:role/x" {
		t.Fatalf("String() = %q", got)
	}
}

func TestProviderARN(t *testing.T) {
	got, err := ProviderARN("aws-us-gov", "123456789012", "Warden_idp.prod-1")
	if err != nil || got != "arn:aws-us-gov:iam::123456789012:saml-provider/Warden_idp.prod-1" {
		t.Fatalf("ProviderARN = %q, %v", got, err)
	}
	for _, tc := range []struct{ p, a, n, msg string }{
		{"aws-xx", "123456789012", "warden", "unknown partition"},
		{"aws", "12345678901", "warden", "12 digits"},
		{"aws", "123456789012", "", "SAML provider name"},
		{"aws", "123456789012", "war den", "SAML provider name"},
		{"aws", "123456789012", "a+b", "SAML provider name"},
		{"aws", "123456789012", strings.Repeat("w", 129), "SAML provider name"},
	} {
		if _, err := ProviderARN(tc.p, tc.a, tc.n); err == nil || !errors.Is(err, ErrInvalidARN) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ProviderARN(%q, %q, %q) error = %v, want %q", tc.p, tc.a, tc.n, err, tc.msg)
		}
	}
	if _, err := ProviderARN("aws", "123456789012", strings.Repeat("w", 128)); err != nil {
		t.Errorf("128-character provider name refused: %v", err)
	}
}

func TestLookupPartition(t *testing.T) {
	for _, id := range PartitionIDs() {
		p, ok := LookupPartition(id)
		if !ok || p.ID != id || !strings.HasPrefix(p.SAMLAudience, "https://"+p.SigninHost+"/") || p.ConsoleHost == "" {
			t.Errorf("LookupPartition(%q) = %+v, %v", id, p, ok)
		}
	}
	if _, ok := LookupPartition("AWS"); ok {
		t.Error("partition lookup is case-sensitive, as in ARNs")
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("abc"); got != `"abc"` {
		t.Errorf("Quote = %s", got)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	got := Quote(long)
	if !strings.HasSuffix(got, "…") || strings.Contains(got, `\x`) {
		t.Errorf("Quote cut a rune or did not mark the cut: %s", got)
	}
}

func FuzzParseRoleARN(f *testing.F) {
	for _, s := range []string{
		"arn:aws:iam::123456789012:role/Admin",
		"arn:aws-us-gov:iam::123456789012:role/a/b/c",
		"arn:aws-cn:iam::123456789012:role/!/x",
		"arn:aws:iam::123456789012:role//x",
		"arn:aws:iam::123456789012:role/",
		"arn:aws:iam:::role/x",
		"arn:aws:iam::123456789012:role/a,b",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseRoleARN(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidARN) {
				t.Fatalf("error does not wrap ErrInvalidARN: %v", err)
			}
			return
		}
		if a.String() != s {
			t.Fatalf("String() = %q, parsed from %q", a.String(), s)
		}
		b, err := ParseRoleARN(a.String())
		if err != nil || b != a {
			t.Fatalf("re-parse: %+v, %v; want %+v", b, err, a)
		}
		// Independent checks of what was accepted.
		if len(s) > MaxARNLength || len(a.Name) == 0 || len(a.Name) > 64 || len(a.Account) != 12 {
			t.Fatalf("accepted out-of-range ARN %q", s)
		}
		for _, c := range []byte(s) {
			if c < 0x21 || c > 0x7E {
				t.Fatalf("accepted ARN with byte %#x: %q", c, s)
			}
		}
		if strings.ContainsAny(a.Name, "/:!*?,") || strings.Contains(a.Path, ",") {
			t.Fatalf("accepted a bad name %q", a.Name)
		}
	})
}

func TestNoComma(t *testing.T) {
	if err := NoComma("/team/", "Deploy+x=y.z@w-v"); err != nil {
		t.Errorf("no comma, refused: %v", err)
	}
	for _, tc := range []struct{ path, name, msg string }{
		{"/", "a,b", `role name "a,b" has a comma at byte 1`},
		{"/a,b/", "x", `role path "/a,b/" has a comma at byte 2`},
		{"/a,b/", "c,d", "role name"}, // the name is reported first
	} {
		err := NoComma(tc.path, tc.name)
		if err == nil || !errors.Is(err, ErrInvalidARN) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), `"<role ARN>,<provider ARN>"`) {
			t.Errorf("NoComma(%q, %q) = %v, want %q and the reason", tc.path, tc.name, err, tc.msg)
		}
	}
}
