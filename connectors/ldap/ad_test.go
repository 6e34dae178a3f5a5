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
		name                 string
		uac, expires, pwdSet string
		want                 error
	}{
		{"normal", "512", "0", "133800000000000000", nil},
		{"absent", "", "", "", nil},
		{"never expires", "66048", "9223372036854775807", "1", nil},
		{"future", "512", ft(now.Add(time.Hour)), "", nil},
		{"disabled", "514", "", "", connectors.ErrAccountDisabled},
		{"locked", "528", "", "", connectors.ErrAccountLocked},
		{"password expired flag", "8389120", "", "", connectors.ErrPasswordExpired},
		{"signed uac", "-2147483134", "", "", connectors.ErrAccountDisabled},
		{"expired", "512", ft(now.Add(-time.Second)), "", connectors.ErrAccountExpired},
		{"expires now", "512", ft(now), "", connectors.ErrAccountExpired},
		{"must change", "512", "0", "0", connectors.ErrPasswordExpired},
		{"disabled wins", "514", ft(now.Add(-time.Hour)), "0", connectors.ErrAccountDisabled},
		{"garbage uac", "x", "", "", connectors.ErrAccountDisabled},
		{"garbage expires", "512", "soon", "", connectors.ErrAccountExpired},
	}
	for _, tt := range tests {
		err := accountState(tt.uac, tt.expires, tt.pwdSet, now)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: accountState = %v, want %v", tt.name, err, tt.want)
		}
	}
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
