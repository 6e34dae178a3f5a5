// Package connectors defines what an upstream identity source gives Garde:
// an Identity that says who the person is and how they authenticated. Each
// connector lives in its own sub-package and implements only the capability
// interfaces it can honour (PasswordConnector, LookupConnector; redirect-
// and certificate-based connectors later). Connectors know nothing of tokens,
// applications or policies.
package connectors

import (
	"context"
	"errors"
	"time"

	"github.com/garde-sso/garde/internal/assurance"
)

// Identity is what a connector returns after a successful authentication.
//
// Unlike Dex's Identity it carries how the person authenticated (AMR,
// Assurance, AuthTime): that is what lets Garde pass an upstream level of
// assurance on to applications and step up only what is missing.
type Identity struct {
	// Connector is the configured id of the connector that authenticated
	// the person (e.g. "ad", "static").
	Connector string `json:"connector"`
	// Subject is stable and unique within the connector (for AD the
	// objectGUID, else the entry DN; for the static directory the username).
	Subject string `json:"subject"`
	// Username is the login name the person typed or the directory holds.
	Username string `json:"username,omitempty"`
	// NationalID is the idNat_PS (e.g. "8" + RPPS) when the source knows it.
	NationalID string `json:"national_id,omitempty"`
	// NationalIDType is "rpps", "adeli", "structure" or "" (see
	// NationalIDTypeOf).
	NationalIDType string   `json:"national_id_type,omitempty"`
	GivenName      string   `json:"given_name,omitempty"`
	FamilyName     string   `json:"family_name,omitempty"`
	DisplayName    string   `json:"name,omitempty"`
	Email          string   `json:"email,omitempty"`
	Groups         []string `json:"groups,omitempty"`
	// Professions are what the person practises, as the national
	// directory (through Pro Santé Connect) or the CPS card says: empty for
	// sources that do not know (AD, the static directory).
	Professions []Profession `json:"professions,omitempty"`
	// Structure is the structure id of a staff card (CPE/CPA: the
	// certificate's OU), or of a structure-based national id.
	Structure string `json:"structure,omitempty"`
	// AuthMode is how an upstream provider says the person authenticated
	// there (Pro Santé Connect's authMode: CARD, MOBILE, ...).
	AuthMode string `json:"auth_mode,omitempty"`
	// Upstream is the provider session behind this sign-in, for upstream
	// logout (nil for local sources).
	Upstream *Upstream `json:"upstream,omitempty"`
	// Method is Garde's name for how this sign-in was made: "password",
	// "key" (a password then a security key), "passkey", "card", "psc".
	// The broker sets it; connectors leave it empty. Policies accept or
	// refuse applications by it.
	Method string `json:"method,omitempty"`
	// AMR lists the RFC 8176 methods this authentication used.
	AMR []string `json:"amr"`
	// Assurance is the eIDAS level these factors reach on their own.
	Assurance assurance.Level `json:"assurance"`
	// AuthTime is when the person proved the factors.
	AuthTime time.Time `json:"auth_time"`
}

// Profession is one exercise of a health professional (PSC's
// SubjectRefPro.exercices[], or a CPS card's title).
type Profession struct {
	// Code is the profession code from the national nomenclature
	// (TRE_G15: "10" médecin, "21" pharmacien, "60" infirmier...).
	Code string `json:"code,omitempty"`
	// Label is the profession as text (a card's title, "Médecin").
	Label string `json:"label,omitempty"`
	// Category is codeCategorieProfessionnelle (C civil, M military...).
	Category string `json:"category,omitempty"`
	// Specialties are codeSavoirFaire values (e.g. "SM26").
	Specialties []string `json:"specialties,omitempty"`
	// Activities are where the person practises it.
	Activities []Activity `json:"activities,omitempty"`
}

// Activity is one place of practice.
type Activity struct {
	// FinessSite is the FINESS of the site (établissement géographique).
	FinessSite string `json:"finess_site,omitempty"`
	// FinessLegal is the FINESS of the legal entity (établissement
	// juridique).
	FinessLegal string `json:"finess_legal,omitempty"`
	// SiteName is the site's raison sociale.
	SiteName string `json:"site_name,omitempty"`
	// Role is the person's role there (fonction / mode d'exercice code).
	Role string `json:"role,omitempty"`
}

// Upstream is an upstream provider's session (Pro Santé Connect), kept so
// that ending the Garde session can end it too and the provider's
// back-channel logout can find the Garde session.
type Upstream struct {
	// Connector is the id of the connector of the provider (set by the
	// broker).
	Connector string `json:"connector,omitempty"`
	// Subject is the provider's `sub` (never used as the person's key).
	Subject string `json:"sub,omitempty"`
	// SessionID is the provider's `sid`, matched by back-channel logout.
	SessionID string `json:"sid,omitempty"`
	// IDToken is the provider's ID token, sent back as id_token_hint.
	IDToken string `json:"id_token,omitempty"`
}

// PasswordConnector checks a username and password.
type PasswordConnector interface {
	// Login returns the person's identity, or one of the errors below
	// (wrapped, so use errors.Is). Implementations must not let a caller
	// tell an unknown account from a wrong password: both are
	// ErrInvalidCredentials, in the same time as far as practical.
	Login(ctx context.Context, username, password string) (Identity, error)
}

// LookupConnector finds a person it authenticated before, by the
// Identity.Subject it returned, without credentials. Passwordless sign-in
// (a passkey) uses it: the credential proves who the person is, the
// connector says who they are now (names, groups, national id) and whether
// the account may still sign in.
type LookupConnector interface {
	// Lookup returns the person's current identity, with nothing proven:
	// AMR empty, Assurance None, AuthTime zero. Errors (wrapped, so use
	// errors.Is): ErrUnknownSubject when no account has this subject (any
	// more); ErrAccountDisabled, ErrAccountLocked or ErrAccountExpired when
	// the account may not sign in now; ErrUnavailable when the source
	// cannot answer. ErrPasswordExpired is never returned: an expired
	// password is no obstacle to signing in without one.
	Lookup(ctx context.Context, subject string) (Identity, error)
}

// NationalIDLookup finds the local account that holds a national id: this
// is how a Pro Santé Connect or CPS card sign-in finds the person's AD
// account (account linking).
type NationalIDLookup interface {
	// LookupNationalID returns the identity of the one account whose
	// national id attribute holds idNat, with nothing proven (as Lookup).
	// Errors (wrapped): ErrUnknownSubject when no account holds it (or the
	// connector reads no national id), ErrAmbiguous when several do, the
	// account state errors of Lookup, ErrUnavailable.
	LookupNationalID(ctx context.Context, idNat string) (Identity, error)
}

// ErrAmbiguous means several accounts match where one was expected: Garde
// links to none of them rather than guess.
var ErrAmbiguous = errors.New("several accounts match")

// UsernameLookup finds a person by the username they sign in with, without
// credentials. Administration tools use it (`garde policy test --person`)
// to see a person as the sign-in would; it never serves a sign-in, since it
// proves nothing.
type UsernameLookup interface {
	// LookupUsername returns the person's current identity, with nothing
	// proven (AMR empty, Assurance None, AuthTime zero), or an error as
	// Lookup's: ErrUnknownSubject when no account has this username,
	// ErrAccountDisabled, ErrAccountLocked, ErrAccountExpired,
	// ErrUnavailable.
	LookupUsername(ctx context.Context, username string) (Identity, error)
}

// ErrUnknownSubject is returned by Lookup for a subject that names no
// account: never known, deleted, or malformed.
var ErrUnknownSubject = errors.New("unknown subject")

// Errors a connector returns; the sign-in flow maps each to a message a
// person can read. Only ErrInvalidCredentials counts towards throttling as a
// guessed password.
var (
	ErrInvalidCredentials = errors.New("invalid username or password")
	ErrAccountDisabled    = errors.New("account disabled")
	ErrAccountLocked      = errors.New("account locked")
	ErrAccountExpired     = errors.New("account expired")
	ErrPasswordExpired    = errors.New("password expired or must be changed")
	ErrUnavailable        = errors.New("identity source unavailable")
)

// NationalIDTypeOf classifies an idNat_PS by its first character: 8 + RPPS,
// 0 + ADELI, 3/4/5/6 + structure id "/" local id. Test identities that fit
// none of these (e.g. "ANS20231122132732") are "other".
func NationalIDTypeOf(idNat string) string {
	if idNat == "" {
		return ""
	}
	switch idNat[0] {
	case '8':
		return "rpps"
	case '0':
		return "adeli"
	case '3', '4', '5', '6':
		return "structure"
	}
	return "other"
}
