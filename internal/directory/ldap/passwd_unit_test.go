package ldap

import (
	"errors"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/wardenidp/warden/internal/identity"
)

// ldapResult builds the error go-ldap returns for an extended response
// with result code, diagnostic message and, when ppError >= 0, a password
// policy response control carrying that error, decoded from bytes as from
// the wire.
func ldapResult(t *testing.T, code int64, msg string, ppError int64) error {
	t.Helper()
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "messageID"))
	resp := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedResponse, nil, "ExtendedResponse")
	resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "resultCode"))
	resp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	resp.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	env.AppendChild(resp)
	if ppError >= 0 {
		// slapd sends 30 03 81 01 06 for passwordTooShort.
		val := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "PasswordPolicyResponseValue")
		val.AppendChild(ber.NewInteger(ber.ClassContext, ber.TypePrimitive, 1, ppError, "error"))
		ctrl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
		ctrl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, goldap.ControlTypeBeheraPasswordPolicy, "controlType"))
		ctrl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(val.Bytes()), "controlValue"))
		ctrls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
		ctrls.AppendChild(ctrl)
		env.AppendChild(ctrls)
	}
	p, err := ber.DecodePacketErr(env.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return goldap.GetLDAPError(p)
}

func TestPasswordModifyOutcome(t *testing.T) {
	tests := []struct {
		name   string
		code   int64
		pp     int64
		want   error
		reason identity.PasswordPolicyReason
	}{
		{"too short", 19, 6, identity.ErrPasswordPolicy, identity.PolicyTooShort},
		{"in history", 19, 8, identity.ErrPasswordPolicy, identity.PolicyInHistory},
		{"too young", 19, 7, identity.ErrPasswordPolicy, identity.PolicyTooYoung},
		{"quality", 19, 5, identity.ErrPasswordPolicy, identity.PolicyQuality},
		{"constraint, no control", 19, -1, identity.ErrPasswordPolicy, identity.PolicyUnspecified},
		{"user change not allowed", 50, 3, identity.ErrPasswordChangeUnsupported, 0},
		{"must supply old", 50, 4, identity.ErrPasswordChangeUnsupported, 0},
		{"locked", 50, 1, identity.ErrAccountLocked, 0},
		{"acl", 50, -1, identity.ErrPasswordChangeUnsupported, 0},
		{"unwilling (embedded directory)", 53, -1, identity.ErrPasswordChangeUnsupported, 0},
		{"exop unknown", 2, -1, identity.ErrPasswordChangeUnsupported, 0},
		{"busy", 51, -1, identity.ErrDirectoryUnavailable, 0},
		{"other", 80, -1, identity.ErrDirectoryUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code, _ := passwordModifyOutcome(ldapResult(t, tt.code, "diagnostic", tt.pp))
			if !errors.Is(got, tt.want) || code != int(tt.code) {
				t.Fatalf("got %v (%d), want %v", got, code, tt.want)
			}
			var pe *identity.PasswordPolicyError
			if errors.As(got, &pe) && pe.Reason != tt.reason {
				t.Errorf("reason %s, want %s", pe.Reason, tt.reason)
			}
		})
	}
	if got, _, _ := passwordModifyOutcome(nil); got != nil {
		t.Errorf("success: %v", got)
	}
}

func TestADChangeOutcome(t *testing.T) {
	le := func(code uint16, msg string) error { return &goldap.Error{ResultCode: code, Err: errors.New(msg)} }
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"samba wrong old", le(19, "00000056: Constraint violation - check_password_restrictions: The old password specified doesn't match!"), identity.ErrInvalidCredentials},
		{"windows wrong old", le(19, "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"), identity.ErrInvalidCredentials},
		{"samba too short", le(19, "0000052D: Constraint violation - check_password_restrictions: the password is too short."), identity.ErrPasswordPolicy},
		{"windows restriction", le(19, "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"), identity.ErrPasswordPolicy},
		{"entry gone", le(32, "0000208D: NameErr: DSID-03100288, problem 2001 (NO_OBJECT)"), identity.ErrInvalidCredentials},
		{"may not change", le(50, "00000005: SecErr: DSID-031A1254, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"), identity.ErrPasswordChangeUnsupported},
		{"not encrypted", le(53, "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"), identity.ErrPasswordChangeUnsupported},
		{"busy", le(51, ""), identity.ErrDirectoryUnavailable},
		{"plain error", errors.New("boom"), identity.ErrDirectoryUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := adChangeOutcome(tt.err)
			if !errors.Is(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			var pe *identity.PasswordPolicyError
			if errors.As(got, &pe) && pe.Reason != identity.PolicyUnspecified {
				t.Errorf("AD names no reason, got %s", pe.Reason)
			}
		})
	}
}

func TestADPassword(t *testing.T) {
	// MS-ADTS 3.1.1.3.1.5.1: "newPassword" in quotes, UTF-16LE.
	if got, want := adPassword("pä"), "\"\x00p\x00\xe4\x00\"\x00"; got != want {
		t.Errorf("adPassword = %q, want %q", got, want)
	}
	if got := adPassword("😀"); len(got) != 8 { // quote, surrogate pair, quote
		t.Errorf("adPassword(emoji) has %d bytes, want 8", len(got))
	}
}

func TestCanChangePassword(t *testing.T) {
	mk := func(typ string, urls []string, startTLS bool) *Directory {
		cfg := Config{Type: typ, URLs: urls, StartTLS: startTLS, BaseDN: "dc=example,dc=org",
			BindDN: "cn=svc,dc=example,dc=org", BindPassword: "x"}
		if typ == TypeCustom { // what the openldap preset fills, by hand
			cfg.Type = TypeOpenLDAP
			cfg.ApplyPreset()
			cfg.Type = TypeCustom
		}
		cfg.ApplyPreset()
		cfg.SetDefaults()
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	expired, must := identity.ErrPasswordExpired, identity.ErrMustChangePassword
	tests := []struct {
		name          string
		d             *Directory
		expired, must bool
	}{
		{"ad ldaps", mk(TypeActiveDirectory, []string{"ldaps://dc1.example.org"}, false), true, true},
		{"ad start_tls", mk(TypeActiveDirectory, []string{"ldap://dc1.example.org"}, true), true, true},
		{"ad one plain server", mk(TypeActiveDirectory, []string{"ldaps://dc1.example.org", "ldap://dc2.example.org"}, false), false, false},
		{"openldap", mk(TypeOpenLDAP, []string{"ldap://ldap.example.org"}, false), false, true},
		{"custom", mk(TypeCustom, []string{"ldaps://ldap.example.org"}, false), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.CanChangePassword(fmtWrap(expired)); got != tt.expired {
				t.Errorf("expired: %v, want %v", got, tt.expired)
			}
			if got := tt.d.CanChangePassword(fmtWrap(must)); got != tt.must {
				t.Errorf("must change: %v, want %v", got, tt.must)
			}
			if tt.d.CanChangePassword(identity.ErrAccountDisabled) || tt.d.CanChangePassword(nil) {
				t.Error("other reasons must not offer a change")
			}
		})
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("ldap: authenticate"), err) }
