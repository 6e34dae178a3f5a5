package psc

import (
	"slices"
	"strings"

	"github.com/garde-sso/garde/internal/assurance"
)

// AssuranceRule maps what PSC says about a sign-in (its acr claim and its
// authMode) to Garde's level and RFC 8176 amr. An empty ACR or AuthMode
// matches any value; both compare case-insensitively. The first matching
// rule of a table wins.
type AssuranceRule struct {
	ACR      string
	AuthMode string
	Level    assurance.Level
	AMR      []string
}

// DefaultAssurance is the table used when none is configured.
//
// It keys on authMode, not acr: PSC is asked for eidas1 and has answered
// eidas3 for a card sign-in (and an old token held acr twice), so acr says
// little about the means actually used. A CPS card with its PIN is a
// hardware smart card and a knowledge factor: high, the same amr that ANS
// accepts from delegated providers for a card. The e-CPS app is a software
// key on a phone unlocked by a PIN: substantial. Anything else, including
// an authMode PSC may introduce later, is low until someone decides
// otherwise: a new means must never be trusted by accident.
func DefaultAssurance() []AssuranceRule {
	return []AssuranceRule{
		{AuthMode: "CARD", Level: assurance.High, AMR: []string{assurance.AMRSmartCard, assurance.AMRPIN, assurance.AMRHardwareKey, assurance.AMRMultiFactor}},
		{AuthMode: "MOBILE", Level: assurance.Substantial, AMR: []string{assurance.AMRSoftwareKey, assurance.AMRPIN, assurance.AMRMultiFactor}},
		{Level: assurance.Low, AMR: []string{}},
	}
}

// match returns the first rule matching acr and authMode; with no match,
// low and no amr (PSC did authenticate the person, but how is unknown).
func match(rules []AssuranceRule, acr, authMode string) (assurance.Level, []string) {
	for _, r := range rules {
		if (r.ACR == "" || strings.EqualFold(r.ACR, acr)) && (r.AuthMode == "" || strings.EqualFold(r.AuthMode, authMode)) {
			return r.Level, slices.Clone(r.AMR)
		}
	}
	return assurance.Low, []string{}
}

// assess applies the table to every acr value the ID token carried. When
// a token holds acr more than once with different values (seen at PSC),
// JSON parsers keep the last one, which may not be what PSC meant: Garde
// takes the weakest result instead, so an ambiguous token never raises
// the level.
func assess(rules []AssuranceRule, acrs []string, authMode string) (assurance.Level, []string) {
	if len(acrs) == 0 {
		acrs = []string{""}
	}
	level, amr := match(rules, acrs[0], authMode)
	for _, a := range acrs[1:] {
		if l, m := match(rules, a, authMode); l < level {
			level, amr = l, m
		}
	}
	return level, amr
}
