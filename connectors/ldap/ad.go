package ldap

// Active Directory specifics: the sub-codes AD puts in a failed bind's
// diagnostic message, the userAccountControl flags, FILETIME dates and the
// byte order of objectGUID.

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/garde-sso/garde/connectors"
)

// AD bind failure sub-codes (the "data XXX" of an invalidCredentials
// diagnostic, e.g. "80090308: LdapErr: DSID-0C09044E, comment:
// AcceptSecurityContext error, data 52e, v4563"). They are Win32 error
// codes in hexadecimal.
const (
	adNoSuchUser         = 0x525 // ERROR_NO_SUCH_USER
	adWrongPassword      = 0x52e // ERROR_LOGON_FAILURE
	adLogonHours         = 0x530 // ERROR_INVALID_LOGON_HOURS
	adWorkstation        = 0x531 // ERROR_INVALID_WORKSTATION
	adPasswordExpired    = 0x532 // ERROR_PASSWORD_EXPIRED
	adAccountDisabled    = 0x533 // ERROR_ACCOUNT_DISABLED
	adAccountExpired     = 0x701 // ERROR_ACCOUNT_EXPIRED
	adPasswordMustChange = 0x773 // ERROR_PASSWORD_MUST_CHANGE
	adAccountLocked      = 0x775 // ERROR_ACCOUNT_LOCKED_OUT
)

// parseADError extracts the sub-code from an AD bind diagnostic message:
// the hexadecimal number after the word "data". ok is false when the
// message carries none (OpenLDAP, other directories).
func parseADError(msg string) (code uint32, ok bool) {
	// Look at each "data" that starts a word; AD puts exactly one, but a
	// comment could contain the word elsewhere ("metadata").
	lower := strings.ToLower(msg)
	for i := 0; i < len(lower); {
		j := strings.Index(lower[i:], "data")
		if j < 0 {
			return 0, false
		}
		start := i + j
		i = start + len("data")
		if start > 0 && isAlnum(lower[start-1]) {
			continue
		}
		rest := lower[i:]
		trimmed := strings.TrimLeft(rest, " \t:=")
		if len(trimmed) == len(rest) {
			continue // "database", "data52e": not the sub-code
		}
		n := 0
		for n < len(trimmed) && n < 9 && isHex(trimmed[n]) {
			n++
		}
		if n == 0 || n > 8 || (n < len(trimmed) && isAlnum(trimmed[n])) {
			continue
		}
		v, err := strconv.ParseUint(trimmed[:n], 16, 32)
		if err != nil {
			continue
		}
		return uint32(v), true
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// adBindError maps an AD sub-code to the connector error. AD returns the
// account-state codes only once the password was checked (except 775,
// which it returns for a locked account whatever the password, and which
// therefore reveals nothing the directory did not already decide to tell).
// Unknown codes are treated as a failed password, so that they count
// towards throttling.
func adBindError(code uint32) error {
	switch code {
	case adPasswordExpired, adPasswordMustChange:
		return connectors.ErrPasswordExpired
	case adAccountDisabled:
		return connectors.ErrAccountDisabled
	case adLogonHours, adWorkstation:
		// Logon restricted to other hours or workstations: the closest
		// sentinel; the message says why.
		return fmt.Errorf("logon not permitted now or from here: %w", connectors.ErrAccountDisabled)
	case adAccountExpired:
		return connectors.ErrAccountExpired
	case adAccountLocked:
		return connectors.ErrAccountLocked
	}
	return connectors.ErrInvalidCredentials
}

// userAccountControl flags Garde checks.
const (
	uacAccountDisable  = 0x2
	uacLockout         = 0x10
	uacPasswordExpired = 0x800000
)

// FILETIME values that mean "never" for accountExpires.
const (
	filetimeNever = 0x7FFFFFFFFFFFFFFF
	// 100 ns intervals between 1601-01-01 and 1970-01-01.
	filetimeUnixEpoch = 116444736000000000
)

// accountState checks the AD account attributes of an entry whose password
// was just proven correct. OpenLDAP test directories do not produce AD's
// bind sub-codes, and AD itself lets a bind through in some states (e.g. a
// lockout flag set by hand), so the attributes are checked as well.
// Absent attributes mean nothing to check.
func accountState(uac, accountExpires, pwdLastSet string, now time.Time) error {
	if uac != "" {
		v, err := strconv.ParseInt(strings.TrimSpace(uac), 10, 64)
		if err != nil {
			return fmt.Errorf("unreadable userAccountControl %q: %w", uac, connectors.ErrAccountDisabled)
		}
		flags := uint32(v) // AD stores it as a signed 32-bit integer
		switch {
		case flags&uacAccountDisable != 0:
			return connectors.ErrAccountDisabled
		case flags&uacLockout != 0:
			return connectors.ErrAccountLocked
		case flags&uacPasswordExpired != 0:
			return connectors.ErrPasswordExpired
		}
	}
	if accountExpires != "" {
		v, err := strconv.ParseInt(strings.TrimSpace(accountExpires), 10, 64)
		if err != nil {
			return fmt.Errorf("unreadable accountExpires %q: %w", accountExpires, connectors.ErrAccountExpired)
		}
		if v != 0 && v != filetimeNever && !now.Before(filetimeToTime(v)) {
			return connectors.ErrAccountExpired
		}
	}
	// pwdLastSet 0 is how AD says "user must change password at next
	// logon"; AD also refuses such a bind with 773.
	if strings.TrimSpace(pwdLastSet) == "0" {
		return connectors.ErrPasswordExpired
	}
	return nil
}

// filetimeToTime converts a Windows FILETIME (100 ns since 1601-01-01 UTC).
func filetimeToTime(ft int64) time.Time {
	d := ft - filetimeUnixEpoch
	return time.Unix(d/10_000_000, (d%10_000_000)*100).UTC()
}

// formatGUID renders an AD objectGUID (16 bytes, first three fields
// little-endian) in canonical lower-case form. ok is false for values that
// are neither 16 bytes nor already a canonical GUID string.
func formatGUID(raw []byte) (string, bool) {
	if len(raw) == 16 {
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
			binary.LittleEndian.Uint32(raw[0:4]),
			binary.LittleEndian.Uint16(raw[4:6]),
			binary.LittleEndian.Uint16(raw[6:8]),
			raw[8:10], raw[10:16]), true
	}
	// Some gateways and test directories hand out the text form.
	s := strings.Trim(strings.ToLower(string(raw)), "{}")
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		if _, err := hex.DecodeString(strings.ReplaceAll(s, "-", "")); err == nil {
			return s, true
		}
	}
	return "", false
}
