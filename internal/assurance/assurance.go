// Package assurance is the shared vocabulary of authentication strength:
// eIDAS levels of assurance (Garde's acr values) and RFC 8176 authentication
// method references (amr). It is a leaf package so that connectors and
// policies can both speak it without depending on each other.
package assurance

import "fmt"

// Level is an eIDAS level of assurance. The zero value is None: nothing was
// proven yet. Levels are ordered, so comparisons (a >= b) mean "at least as
// strong as".
type Level int

const (
	None Level = iota
	Low
	Substantial
	High
)

// ACR values Garde puts in ID tokens and accepts in acr_values.
const (
	ACRLow         = "http://eidas.europa.eu/LoA/low"
	ACRSubstantial = "http://eidas.europa.eu/LoA/substantial"
	ACRHigh        = "http://eidas.europa.eu/LoA/high"
)

// RFC 8176 authentication method reference values used by Garde.
const (
	AMRPassword     = "pwd"
	AMRHardwareKey  = "hwk"
	AMRSoftwareKey  = "swk"
	AMRSmartCard    = "sc"
	AMRPIN          = "pin"
	AMRMultiFactor  = "mfa"
	AMROneTimeCode  = "otp"
	AMRUserPresence = "user"
	AMRFingerprint  = "fpt"
	AMRFace         = "face"
)

// ACR returns the acr value of a level ("" for None).
func (l Level) ACR() string {
	switch l {
	case Low:
		return ACRLow
	case Substantial:
		return ACRSubstantial
	case High:
		return ACRHigh
	}
	return ""
}

// String returns the short name used in configuration and logs.
func (l Level) String() string {
	switch l {
	case None:
		return "none"
	case Low:
		return "low"
	case Substantial:
		return "substantial"
	case High:
		return "high"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseACR maps an acr value to a level. Short names (low, substantial,
// high) are accepted too, as the configuration uses them.
func ParseACR(s string) (Level, bool) {
	switch s {
	case ACRLow, "low":
		return Low, true
	case ACRSubstantial, "substantial":
		return Substantial, true
	case ACRHigh, "high":
		return High, true
	}
	return None, false
}
