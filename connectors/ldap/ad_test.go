package ldap

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
)

func TestParseADError(t *testing.T) {
	tests := []struct {
		msg    string
		code   uint32
		ok     bool
		mapped error
	}{
		{"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563\x00", 0x52e, true, connectors.ErrInvalidCredentials},
		{"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 525, v1db1", 0x525, true, connectors.ErrInvalidCredentials},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 530, v3839", 0x530, true, connectors.ErrAccountDisabled},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 531, v3839", 0x531, true, connectors.ErrAccountDisabled},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 532, v3839", 0x532, true, connectors.ErrPasswordExpired},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 533, v3839", 0x533, true, connectors.ErrAccountDisabled},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 701, v3839", 0x701, true, connectors.ErrAccountExpired},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 773, v3839", 0x773, true, connectors.ErrPasswordExpired},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 775, v3839", 0x775, true, connectors.ErrAccountLocked},
		{"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 568, v3839", 0x568, true, connectors.ErrInvalidCredentials},
		// Samba AD.
		{"80090308: LdapErr: DSID-0C0904DC, comment: AcceptSecurityContext error, data 773, v1db1", 0x773, true, connectors.ErrPasswordExpired},
		{"AcceptSecurityContext error, DATA 533", 0x533, true, connectors.ErrAccountDisabled},
		// Not AD: OpenLDAP and friends.
		{"", 0, false, nil},
		{"Invalid credentials", 0, false, nil},
		{"database error, metadata 533", 0, false, nil},
		{"data", 0, false, nil},
		{"data ", 0, false, nil},
		{"data zz", 0, false, nil},
		{"data52e", 0, false, nil},
		{"data 52eg", 0, false, nil},
		{"data 123456789", 0, false, nil},
		{"comment: data loss, data 775, v1", 0x775, true, connectors.ErrAccountLocked},
	}
	for _, tt := range tests {
		code, ok := parseADError(tt.msg)
		if code != tt.code || ok != tt.ok {
			t.Errorf("parseADError(%q) = %x, %v; want %x, %v", tt.msg, code, ok, tt.code, tt.ok)
			continue
		}
		if ok && !errors.Is(adBindError(code), tt.mapped) {
			t.Errorf("adBindError(%x) = %v; want %v", code, adBindError(code), tt.mapped)
		}
	}
}

func FuzzParseADError(f *testing.F) {
	for _, s := range []string{
		"80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563",
		"data 775", "metadata 1", "data ffffffff", "data  ,", "DATA:701", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		code, ok := parseADError(msg)
		if !ok {
			if code != 0 {
				t.Fatalf("code %x without ok", code)
			}
			return
		}
		// The code must be written in the message, after a "data".
		hex := strconv.FormatUint(uint64(code), 16)
		lower := strings.ToLower(msg)
		if !strings.Contains(lower, "data") || !strings.Contains(lower, strings.TrimLeft(hex, "0")) {
			t.Fatalf("parseADError(%q) = %x: not in the message", msg, code)
		}
		if err := adBindError(code); err == nil {
			t.Fatal("adBindError returned nil")
		}
	})
}

// FuzzUserFilter checks that no username changes the shape of the filter:
// after escaping, the compiled filter holds the username as a value and
// nothing else.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"jdupont", "*", ")(", "\x00", "a)(|(objectClass=*", `\2a`, "j*", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, username string) {
		if !utf8.ValidString(username) {
			return // Login refuses these before searching
		}
		filter := userFilter(DefaultUserFilter, username)
		packet, err := goldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", filter, err)
		}
		got, err := goldap.DecompileFilter(packet)
		if err != nil {
			t.Fatalf("DecompileFilter: %v", err)
		}
		esc := goldap.EscapeFilter(username)
		want := "(&(objectClass=user)(|(sAMAccountName=" + esc + ")(userPrincipalName=" + esc + ")))"
		if got != want {
			t.Fatalf("username %q: filter %q, want %q", username, got, want)
		}
	})
}

func TestAccountState(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ft := func(t time.Time) string { return strconv.FormatInt(t.UnixNano()/100+filetimeUnixEpoch, 10) }
	tests := []struct {
		name string
		st   adState
		// want is Login's answer (password proven); lookup is Lookup's
		// (no password: password states are no obstacle).
		want, lookup error
	}{
		{"normal", adState{uac: "512", accountExpires: "0", pwdLastSet: "133800000000000000"}, nil, nil},
		{"absent", adState{}, nil, nil},
		{"never expires", adState{uac: "66048", accountExpires: "9223372036854775807", pwdLastSet: "1"}, nil, nil},
		{"future", adState{uac: "512", accountExpires: ft(now.Add(time.Hour))}, nil, nil},
		{"disabled", adState{uac: "514"}, connectors.ErrAccountDisabled, connectors.ErrAccountDisabled},
		{"locked", adState{uac: "528"}, connectors.ErrAccountLocked, connectors.ErrAccountLocked},
		{"password expired flag", adState{uac: "8389120"}, connectors.ErrPasswordExpired, nil},
		{"signed uac", adState{uac: "-2147483134"}, connectors.ErrAccountDisabled, connectors.ErrAccountDisabled},
		{"expired", adState{uac: "512", accountExpires: ft(now.Add(-time.Second))}, connectors.ErrAccountExpired, connectors.ErrAccountExpired},
		{"expires now", adState{uac: "512", accountExpires: ft(now)}, connectors.ErrAccountExpired, connectors.ErrAccountExpired},
		{"must change", adState{uac: "512", accountExpires: "0", pwdLastSet: "0"}, connectors.ErrPasswordExpired, nil},
		{"disabled wins", adState{uac: "514", accountExpires: ft(now.Add(-time.Hour)), pwdLastSet: "0"}, connectors.ErrAccountDisabled, connectors.ErrAccountDisabled},
		// An expired password must not hide an expired or locked account.
		{"expired wins over password", adState{uac: "8389120", accountExpires: ft(now.Add(-time.Hour)), pwdLastSet: "0"}, connectors.ErrAccountExpired, connectors.ErrAccountExpired},
		{"garbage uac", adState{uac: "x"}, connectors.ErrAccountDisabled, connectors.ErrAccountDisabled},
		{"garbage expires", adState{uac: "512", accountExpires: "soon"}, connectors.ErrAccountExpired, connectors.ErrAccountExpired},
		// AD computes LOCKOUT and PASSWORD_EXPIRED in
		// msDS-User-Account-Control-Computed.
		{"computed locked", adState{uac: "512", uacComputed: "16", lockoutTime: "133800000000000000"}, connectors.ErrAccountLocked, connectors.ErrAccountLocked},
		{"computed password expired", adState{uac: "512", uacComputed: "8388608"}, connectors.ErrPasswordExpired, nil},
		{"computed clear, lockout lapsed", adState{uac: "512", uacComputed: "0", lockoutTime: "133800000000000000"}, nil, nil},
		{"garbage computed", adState{uac: "512", uacComputed: "?"}, connectors.ErrAccountDisabled, connectors.ErrAccountDisabled},
		// Without the computed attribute, a lockoutTime counts.
		{"lockoutTime", adState{uac: "512", lockoutTime: "133800000000000000"}, connectors.ErrAccountLocked, connectors.ErrAccountLocked},
		{"lockoutTime zero", adState{uac: "512", lockoutTime: "0"}, nil, nil},
		{"garbage lockoutTime", adState{uac: "512", lockoutTime: "x"}, connectors.ErrAccountLocked, connectors.ErrAccountLocked},
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			password bool
			want     error
		}{{true, tt.want}, {false, tt.lookup}} {
			err := accountState(tt.st, now, mode.password)
			if (mode.want == nil) != (err == nil) || (mode.want != nil && !errors.Is(err, mode.want)) {
				t.Errorf("%s: accountState(password=%v) = %v, want %v", tt.name, mode.password, err, mode.want)
			}
			if !mode.password && errors.Is(err, connectors.ErrPasswordExpired) {
				t.Errorf("%s: ErrPasswordExpired without a password", tt.name)
			}
		}
	}
}

func TestParseGUID(t *testing.T) {
	raw := []byte{0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01}
	for _, s := range []string{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3F2504E0-4F89-11D3-9A0C-0305E82C3301"} {
		got, ok := parseGUID(s)
		if !ok || string(got) != string(raw) {
			t.Errorf("parseGUID(%q) = %x, %v", s, got, ok)
		}
	}
	if got := escapeBytes(raw[:3]); got != `\e0\04\25` {
		t.Errorf("escapeBytes = %q", got)
	}
	for _, bad := range []string{"", "*", ")(", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
		"3f2504e0-4f89-11d3-9a0c-0305e82c330z", "3f2504e0-4f89-11d3-9a0c-0305e82c33011",
		"3f2504e04f8911d39a0c0305e82c3301", "3f2504e0-4f89-11d3-9a0c0-305e82c3301",
		"3f2504e0-4f89-11d3-9a0c-0305e82c33*)", "+f2504e0-4f89-11d3-9a0c-0305e82c3301"} {
		if _, ok := parseGUID(bad); ok {
			t.Errorf("parseGUID(%q) accepted", bad)
		}
	}
}

// FuzzParseGUID checks that parseGUID accepts exactly what formatGUID
// writes (up to case) and round-trips it.
func FuzzParseGUID(f *testing.F) {
	f.Add("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
	f.Add("0b6b7f4e-1c1a-4d8e-8d1e-000000000003")
	f.Add("*")
	f.Fuzz(func(t *testing.T, s string) {
		raw, ok := parseGUID(s)
		if !ok {
			return
		}
		back, ok := formatGUID(raw)
		if !ok || back != strings.ToLower(s) {
			t.Fatalf("parseGUID(%q) = %x, formatted back %q", s, raw, back)
		}
	})
}

func TestFormatGUID(t *testing.T) {
	// The example of [MS-DTYP] 2.3.4.3: bytes on the wire are
	// little-endian in the first three fields.
	raw := []byte{0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01}
	if got, ok := formatGUID(raw); !ok || got != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Errorf("formatGUID = %q, %v", got, ok)
	}
	if got, ok := formatGUID([]byte("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}")); !ok || got != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Errorf("formatGUID(text) = %q, %v", got, ok)
	}
	for _, bad := range []string{"", "short", "3f2504e0-4f89-11d3-9a0c-0305e82c330z"} {
		if _, ok := formatGUID([]byte(bad)); ok {
			t.Errorf("formatGUID(%q) accepted", bad)
		}
	}
}

func TestOpenValidation(t *testing.T) {
	base := Config{URLs: []string{"ldaps://dc1.hopital.test"}, BindDN: "cn=svc", BindPassword: "x", BaseDN: "dc=hopital,dc=test"}
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"ldaps", func(*Config) {}, true},
		{"plain refused", func(c *Config) { c.URLs = []string{"ldap://dc1"} }, false},
		{"plain with starttls", func(c *Config) { c.URLs = []string{"ldap://dc1"}; c.StartTLS = true }, true},
		{"plain allowed", func(c *Config) { c.URLs = []string{"ldap://dc1"}; c.InsecureNoTLS = true }, true},
		{"starttls on ldaps", func(c *Config) { c.StartTLS = true }, false},
		{"second url plain", func(c *Config) { c.URLs = append(c.URLs, "ldap://dc2") }, false},
		{"no urls", func(c *Config) { c.URLs = nil }, false},
		{"bad scheme", func(c *Config) { c.URLs = []string{"http://dc1"} }, false},
		{"no bind dn", func(c *Config) { c.BindDN = "" }, false},
		{"no bind password", func(c *Config) { c.BindPassword = "" }, false},
		{"no base", func(c *Config) { c.BaseDN = "" }, false},
		{"bad base", func(c *Config) { c.BaseDN = "not a dn" }, false},
		{"filter without placeholder", func(c *Config) { c.UserFilter = "(uid=x)" }, false},
		{"broken filter", func(c *Config) { c.UserFilter = "(uid={username}" }, false},
		{"nested mode", func(c *Config) { c.NestedGroups = "deep" }, false},
		{"negative pool", func(c *Config) { c.PoolSize = -1 }, false},
	}
	for _, tt := range tests {
		cfg := base
		cfg.URLs = append([]string(nil), base.URLs...)
		tt.change(&cfg)
		c, err := Open(cfg, nil)
		if (err == nil) != tt.ok {
			t.Errorf("%s: Open error = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}
