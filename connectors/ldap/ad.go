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

	goldap "github.com/go-ldap/ldap/v3"

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

// AD attributes holding the account state.
const (
	attrUAC         = "userAccountControl"
	attrUACComputed = "msDS-User-Account-Control-Computed"
	attrExpires     = "accountExpires"
	attrPwdLastSet  = "pwdLastSet"
	attrLockoutTime = "lockoutTime"
)

// stateAttributes are read with every person's entry.
var stateAttributes = []string{attrUAC, attrUACComputed, attrExpires, attrPwdLastSet, attrLockoutTime}

// adState holds an entry's account state attributes, as read ("" when
// absent).
type adState struct {
	uac, uacComputed, accountExpires, pwdLastSet, lockoutTime string
}

func stateOf(e *goldap.Entry) adState {
	return adState{
		uac:            e.GetEqualFoldAttributeValue(attrUAC),
		uacComputed:    e.GetEqualFoldAttributeValue(attrUACComputed),
		accountExpires: e.GetEqualFoldAttributeValue(attrExpires),
		pwdLastSet:     e.GetEqualFoldAttributeValue(attrPwdLastSet),
		lockoutTime:    e.GetEqualFoldAttributeValue(attrLockoutTime),
	}
}

// accountState checks the AD account attributes of a person. Login calls
// it once the password is proven, with password true: OpenLDAP test
// directories do not produce AD's bind sub-codes, and AD itself lets a
// bind through in some states (e.g. a lockout flag set by hand), so the
// attributes are checked as well. Lookup calls it with password false: no
// bind happened, so the attributes are all there is, and the password's
// own state (expired, must change) is no obstacle to passwordless sign-in.
//
// Disabled, locked and expired accounts are reported before an expired
// password, whatever is asked: changing the password would not let such
// an account in. Absent attributes mean nothing to check; unreadable ones
// refuse the account.
//
// AD does not maintain the LOCKOUT and PASSWORD_EXPIRED bits of
// userAccountControl: it computes them in msDS-User-Account-Control-
// Computed, which is read as well. Where that is absent, a non-zero
// lockoutTime counts as locked (it may outlast an automatic unlock; failing
// closed then is the price of not binding).
func accountState(st adState, now time.Time, password bool) error {
	var flags uint32
	for _, a := range []struct{ name, v string }{{attrUAC, st.uac}, {attrUACComputed, st.uacComputed}} {
		if a.v == "" {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(a.v), 10, 64)
		if err != nil {
			return fmt.Errorf("unreadable %s %q: %w", a.name, a.v, connectors.ErrAccountDisabled)
		}
		flags |= uint32(v) // AD stores them as signed 32-bit integers
	}
	switch {
	case flags&uacAccountDisable != 0:
		return connectors.ErrAccountDisabled
	case flags&uacLockout != 0:
		return connectors.ErrAccountLocked
	}
	if st.uacComputed == "" && st.lockoutTime != "" {
		v, err := strconv.ParseInt(strings.TrimSpace(st.lockoutTime), 10, 64)
		if err != nil {
			return fmt.Errorf("unreadable lockoutTime %q: %w", st.lockoutTime, connectors.ErrAccountLocked)
		}
		if v != 0 {
			return fmt.Errorf("lockoutTime set: %w", connectors.ErrAccountLocked)
		}
	}
	if st.accountExpires != "" {
		v, err := strconv.ParseInt(strings.TrimSpace(st.accountExpires), 10, 64)
		if err != nil {
			return fmt.Errorf("unreadable accountExpires %q: %w", st.accountExpires, connectors.ErrAccountExpired)
		}
		if v != 0 && v != filetimeNever && !now.Before(filetimeToTime(v)) {
			return connectors.ErrAccountExpired
		}
	}
	if !password {
		return nil
	}
	if flags&uacPasswordExpired != 0 {
		return connectors.ErrPasswordExpired
	}
	// pwdLastSet 0 is how AD says "user must change password at next
	// logon"; AD also refuses such a bind with 773.
	if strings.TrimSpace(st.pwdLastSet) == "0" {
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

// parseGUID is the inverse of formatGUID for the canonical form: it turns
// "3f2504e0-4f89-11d3-9a0c-0305e82c3301" (either case, no braces) into the
// 16 bytes AD stores, first three fields little-endian. ok is false for
// anything else.
func parseGUID(s string) ([]byte, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, false
	}
	b, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil || len(b) != 16 {
		return nil, false
	}
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b, true
}

// escapeBytes renders raw as an RFC 4515 filter value with every byte
// escaped (\xx), the form AD expects for binary attributes like
// objectGUID.
func escapeBytes(raw []byte) string {
	var b strings.Builder
	b.Grow(3 * len(raw))
	for _, c := range raw {
		fmt.Fprintf(&b, "\\%02x", c)
	}
	return b.String()
}
