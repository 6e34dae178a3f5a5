package saml

import (
	"errors"
	"slices"

	"github.com/garde-sso/garde/internal/assurance"
)

// Authentication context classes of saml-authn-context-2.0 that SPs
// commonly ask for.
const (
	ClassPasswordProtectedTransport = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	ClassPassword                   = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	ClassUnspecified                = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	ClassX509                       = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
	ClassSmartcardPKI               = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
	ClassMobileTwoFactorContract    = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
	ClassTimeSyncToken              = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"
	ClassRefedsMFA                  = "https://refeds.org/profile/mfa"
)

// ClassLevels is the mapping from the AuthnContextClassRef values an SP may
// request to Garde's levels (documented in docs/saml.md). Garde's levels
// are eIDAS levels, which are ordered: a higher level satisfies a request
// for a lower one. A class absent from this table is unknown and never
// satisfied.
var ClassLevels = map[string]assurance.Level{
	assurance.ACRLow:                assurance.Low,
	assurance.ACRSubstantial:        assurance.Substantial,
	assurance.ACRHigh:               assurance.High,
	ClassUnspecified:                assurance.Low,
	ClassPassword:                   assurance.Low,
	ClassPasswordProtectedTransport: assurance.Low,
	ClassMobileTwoFactorContract:    assurance.Substantial,
	ClassTimeSyncToken:              assurance.Substantial,
	ClassRefedsMFA:                  assurance.Substantial,
	ClassX509:                       assurance.High,
	ClassSmartcardPKI:               assurance.High,
}

// Comparisons of a RequestedAuthnContext (saml-core §3.3.2.2.1).
const (
	CompareExact   = "exact"
	CompareMinimum = "minimum"
	CompareBetter  = "better"
	CompareMaximum = "maximum"
)

// errNoAuthnContext: the request cannot be satisfied (status
// NoAuthnContext).
var errNoAuthnContext = errors.New("requested authentication context cannot be satisfied")

// authnContext is a parsed RequestedAuthnContext.
type authnContext struct {
	Comparison string
	Classes    []string
}

// requestedLevel is the level to ask the sign-in flow for, or an error if
// no requested class is known or the comparison is not one of the four.
func (c authnContext) requestedLevel() (assurance.Level, error) {
	if len(c.Classes) == 0 {
		return assurance.None, nil
	}
	lo, known := assurance.High, false
	for _, cl := range c.Classes {
		if l, ok := ClassLevels[cl]; ok {
			lo, known = min(lo, l), true
		}
	}
	if !known {
		return assurance.None, errNoAuthnContext
	}
	switch c.Comparison {
	case CompareExact, CompareMinimum, "":
		return lo, nil
	case CompareBetter:
		if lo >= assurance.High {
			return assurance.None, errNoAuthnContext // nothing is stronger
		}
		return lo + 1, nil
	case CompareMaximum:
		// The weakest possible sign-in: the flow has no upper bound, the
		// answer checks it (answer).
		return assurance.None, nil
	}
	return assurance.None, errNoAuthnContext
}

// answer returns the AuthnContextClassRef to assert for a session of
// level have, or errNoAuthnContext.
//
//   - exact, minimum: the strongest requested class whose level the
//     session reaches (a level implies those below it); the SP gets back a
//     value it asked for.
//   - better: Garde's eIDAS class for the session, if it is stronger than
//     at least one requested class (saml-core: "stronger than any one of
//     the authentication contexts specified").
//   - maximum: if the session is no stronger than the strongest requested
//     class, a requested class of the session's level, else Garde's class.
//
// With no request, Garde's eIDAS class of the session.
func (c authnContext) answer(have assurance.Level) (string, error) {
	own := have.ACR()
	if own == "" {
		own = ClassUnspecified
	}
	if len(c.Classes) == 0 {
		return own, nil
	}
	best, bestLevel := "", assurance.None
	lo, hi := assurance.High, assurance.None
	for _, cl := range c.Classes {
		l, ok := ClassLevels[cl]
		if !ok {
			continue
		}
		lo, hi = min(lo, l), max(hi, l)
		if l <= have && (best == "" || l > bestLevel) {
			best, bestLevel = cl, l
		}
	}
	switch c.Comparison {
	case CompareExact, CompareMinimum, "":
		if best != "" {
			return best, nil
		}
	case CompareBetter:
		if have > lo {
			return own, nil
		}
	case CompareMaximum:
		if hi != assurance.None && have <= hi {
			// A requested class of exactly the session's level if there
			// is one (the SP's own vocabulary), else Garde's class.
			if best != "" && bestLevel == have && !slices.Contains(c.Classes, own) {
				return best, nil
			}
			return own, nil
		}
	}
	return "", errNoAuthnContext
}
