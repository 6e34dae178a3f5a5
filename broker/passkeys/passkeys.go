// Package passkeys holds Garde's WebAuthn ceremonies: registering security
// keys and passkeys, and signing in with them as a second factor (after a
// password) or without a password (discoverable credentials with user
// verification). It sits on github.com/go-webauthn/webauthn and adds what
// the library leaves to the relying party: single-use challenges bound to a
// ceremony id, refusal of cloned authenticators, AAGUID and synced-passkey
// policy, an offline FIDO metadata (MDS3) blob, and the RFC 8176 amr values
// and eIDAS level a ceremony proves.
package passkeys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
)

// Sentinel errors callers branch on. They are wrapped with detail for the
// log; a person only ever sees a translated message.
var (
	// ErrChallengeNotFound: the ceremony's challenge expired, was already
	// used (a replayed answer), or the answer belongs to another ceremony.
	ErrChallengeNotFound = errors.New("passkeys: challenge not found, expired or already used")
	// ErrNoCredential: the person has no usable credential.
	ErrNoCredential = errors.New("passkeys: no credential")
	// ErrUnknownCredential: the answer names a credential Garde does not
	// know.
	ErrUnknownCredential = errors.New("passkeys: unknown credential")
	// ErrWrongPerson: a second factor was answered with another person's key.
	ErrWrongPerson = errors.New("passkeys: credential belongs to another person")
	// ErrCredentialFlagged: the credential was flagged as possibly cloned
	// and signs nobody in until an admin removes it.
	ErrCredentialFlagged = errors.New("passkeys: credential flagged as possibly cloned")
	// ErrClonedAuthenticator: the signature counter did not increase; the
	// credential has just been flagged. Audit at high severity.
	ErrClonedAuthenticator = errors.New("passkeys: signature counter regression, possible cloned authenticator")
	// ErrUserVerificationRequired: the authenticator did not verify the user
	// (PIN, biometrics) where the ceremony required it.
	ErrUserVerificationRequired = errors.New("passkeys: user verification required")
	// ErrOriginOrRPID: the answer was made for another origin or RP ID (a
	// phishing site, a misconfigured proxy).
	ErrOriginOrRPID = errors.New("passkeys: wrong origin or RP ID")
	// ErrNotAllowedByPolicy: the authenticator is refused by policy (AAGUID
	// lists, synced passkeys, FIDO metadata status or absence).
	ErrNotAllowedByPolicy = errors.New("passkeys: authenticator not allowed by policy")
	// ErrVerification: anything else the library refused.
	ErrVerification = errors.New("passkeys: verification failed")
)

// DefaultName labels a credential registered without a name.
const DefaultName = "Clé de sécurité"

// maxNameRunes bounds a credential's label.
const maxNameRunes = 64

// Policy configures the relying party and what Garde accepts.
type Policy struct {
	// RPID is the WebAuthn relying party id: the registrable domain the
	// credentials are scoped to (e.g. "sso.hopital.fr" or "hopital.fr").
	// An IP address is refused (browsers refuse it too); use "localhost"
	// in tests and demos.
	RPID string
	// RPName is shown by the browser when creating a credential.
	RPName string
	// Origins are the exact origins the browser may report, e.g.
	// "https://sso.hopital.fr". https only, except http://localhost[:port].
	Origins []string
	// SecondFactorUV is the user verification asked of a second-factor key
	// (default "preferred"). Passwordless always requires it.
	SecondFactorUV protocol.UserVerificationRequirement
	// Attestation is the attestation conveyance asked at registration
	// (default "none"). With "none" the AAGUID is the authenticator's own
	// unverified claim: the AAGUID lists and the metadata checks then guard
	// against mistakes and honest-but-unwanted models, not against a
	// software authenticator lying about its model.
	Attestation protocol.ConveyancePreference
	// AllowAAGUIDs, when not empty, lists the only authenticator models
	// accepted (canonical UUID strings). DenyAAGUIDs are always refused and
	// win over AllowAAGUIDs.
	AllowAAGUIDs, DenyAAGUIDs []string
	// AllowSynced accepts backup-eligible (synced) passkeys. Without it
	// only device-bound keys are accepted.
	AllowSynced bool
	// MetadataFile is a local FIDO MDS3 blob (the JWT as downloaded from
	// https://mds3.fidoalliance.org/), read at New and ReloadMetadata; Garde
	// never fetches it (hospital networks are often offline). Empty: no
	// metadata.
	MetadataFile string
	// MetadataRoots verify the blob's x5c chain (the FIDO root in
	// production). Required with MetadataFile.
	MetadataRoots *x509.CertPool
	// RequireMetadata refuses authenticators absent from the blob. Needs
	// MetadataFile.
	RequireMetadata bool
	// ChallengeTTL bounds a ceremony (default 5 minutes).
	ChallengeTTL time.Duration
	// Logger receives warnings (stale metadata). Nil: slog.Default().
	Logger *slog.Logger
}

// Person is who registers a credential.
type Person struct {
	// Subject is Garde's stable id for the person (the issued `sub`).
	Subject string
	// Username and DisplayName are shown by the authenticator's account
	// picker; they are not used for any decision.
	Username, DisplayName string
}

// Result is what a successful sign-in proves.
type Result struct {
	// Subject is the person signed in.
	Subject string
	// Credential is the record after this use (new sign count).
	Credential store.WebAuthnCredential
	// AMR are the RFC 8176 values this ceremony adds. For a second factor
	// they are the key's only: the flow merges them with "pwd" and adds
	// "mfa".
	AMR []string
	// Level is the eIDAS level the ceremony supports; see levelFor.
	Level assurance.Level
	// UserVerified is set when the authenticator verified the user (PIN,
	// biometrics).
	UserVerified bool
}

// Service runs WebAuthn ceremonies for one relying party.
type Service struct {
	policy   Policy
	wa       *webauthn.WebAuthn
	creds    store.WebAuthnCredentials
	eph      store.Ephemeral
	key      []byte
	now      func() time.Time
	log      *slog.Logger
	rpIDHash [32]byte
	allow    map[uuid.UUID]bool
	deny     map[uuid.UUID]bool

	mu  sync.RWMutex
	mds *mdsIndex // nil without MetadataFile
}

// New validates the policy, loads the metadata blob if configured and
// returns a service. userHandleKey (at least 32 bytes, secret, stable)
// derives the WebAuthn user handles; changing it makes every passkey
// unusable for passwordless sign-in. clock nil means time.Now.
func New(p Policy, creds store.WebAuthnCredentials, eph store.Ephemeral, userHandleKey []byte, clock func() time.Time) (*Service, error) {
	if creds == nil || eph == nil {
		return nil, errors.New("passkeys: credential store and ephemeral store are required")
	}
	if len(userHandleKey) < 32 {
		return nil, errors.New("passkeys: user handle key must be at least 32 bytes")
	}
	if clock == nil {
		clock = time.Now
	}
	if err := normalizePolicy(&p); err != nil {
		return nil, err
	}
	s := &Service{
		policy: p,
		creds:  creds,
		eph:    eph,
		key:    bytes.Clone(userHandleKey),
		now:    clock,
		log:    p.Logger,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.rpIDHash = sha256.Sum256([]byte(p.RPID))
	var err error
	if s.allow, err = parseAAGUIDs("AllowAAGUIDs", p.AllowAAGUIDs); err != nil {
		return nil, err
	}
	if s.deny, err = parseAAGUIDs("DenyAAGUIDs", p.DenyAAGUIDs); err != nil {
		return nil, err
	}
	if len(s.allow) > 0 && p.Attestation == protocol.PreferNoAttestation {
		// Browsers may zero the AAGUID when no attestation is asked for,
		// and an unattested AAGUID is only a claim: say so once.
		s.log.Warn("passkeys: AllowAAGUIDs with attestation \"none\": browsers may report a zero AAGUID (refused) and the model is not proven")
	}
	s.wa, err = webauthn.New(&webauthn.Config{
		RPID:          p.RPID,
		RPDisplayName: p.RPName,
		RPOrigins:     p.Origins,
		// The browser's timeout matches the challenge's lifetime; the
		// server-side expiry is ours (ephemeral TTL and the injected
		// clock), not the library's time.Now.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: p.ChallengeTTL, TimeoutUVD: p.ChallengeTTL},
			Registration: webauthn.TimeoutConfig{Timeout: p.ChallengeTTL, TimeoutUVD: p.ChallengeTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	if p.MetadataFile != "" {
		if err := s.ReloadMetadata(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func normalizePolicy(p *Policy) error {
	p.RPID = strings.ToLower(strings.TrimSpace(p.RPID))
	if p.RPID == "" {
		return errors.New("passkeys: RPID: required")
	}
	// Browsers refuse an IP address as RP ID, and so does the library:
	// fail at start-up rather than at the first ceremony.
	if net.ParseIP(strings.Trim(p.RPID, "[]")) != nil {
		return fmt.Errorf("passkeys: RPID %q: an IP address cannot be a WebAuthn RP ID (use a domain name, or localhost for tests)", p.RPID)
	}
	if err := protocol.ValidateRPID(p.RPID); err != nil {
		return fmt.Errorf("passkeys: RPID %q: %w", p.RPID, err)
	}
	if p.RPName == "" {
		return errors.New("passkeys: RPName: required")
	}
	if len(p.Origins) == 0 {
		return errors.New("passkeys: Origins: at least one origin is required")
	}
	for i, o := range p.Origins {
		canon, err := validateOrigin(o, p.RPID)
		if err != nil {
			return fmt.Errorf("passkeys: Origins[%d] %q: %w", i, o, err)
		}
		p.Origins[i] = canon
	}
	switch p.SecondFactorUV {
	case "":
		p.SecondFactorUV = protocol.VerificationPreferred
	case protocol.VerificationRequired, protocol.VerificationPreferred, protocol.VerificationDiscouraged:
	default:
		return fmt.Errorf("passkeys: SecondFactorUV %q: expected required, preferred or discouraged", p.SecondFactorUV)
	}
	switch p.Attestation {
	case "":
		p.Attestation = protocol.PreferNoAttestation
	case protocol.PreferNoAttestation, protocol.PreferIndirectAttestation, protocol.PreferDirectAttestation, protocol.PreferEnterpriseAttestation:
	default:
		return fmt.Errorf("passkeys: Attestation %q: expected none, indirect, direct or enterprise", p.Attestation)
	}
	if p.ChallengeTTL == 0 {
		p.ChallengeTTL = 5 * time.Minute
	}
	if p.ChallengeTTL < 0 {
		return fmt.Errorf("passkeys: ChallengeTTL %s: must be positive", p.ChallengeTTL)
	}
	if p.MetadataFile != "" && p.MetadataRoots == nil {
		return errors.New("passkeys: MetadataRoots: required with MetadataFile (the blob's signature must chain to a configured anchor)")
	}
	if p.RequireMetadata && p.MetadataFile == "" {
		return errors.New("passkeys: RequireMetadata: needs MetadataFile")
	}
	return nil
}

// validateOrigin checks an origin and returns its canonical form
// (lowercase scheme and host, no trailing slash).
func validateOrigin(o, rpID string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", errors.New("an origin is scheme://host[:port] only")
	}
	host := strings.ToLower(u.Hostname())
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		// Browsers treat http://localhost as a secure context; anything
		// else over http would let a network attacker run the ceremony.
		if host != "localhost" {
			return "", errors.New("must be https (http is only accepted for localhost)")
		}
	default:
		return "", errors.New("must be https")
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return "", fmt.Errorf("host is not %s or a subdomain of it: browsers would refuse the RP ID", rpID)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

func parseAAGUIDs(field string, list []string) (map[uuid.UUID]bool, error) {
	m := make(map[uuid.UUID]bool, len(list))
	for i, s := range list {
		id, err := uuid.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("passkeys: %s[%d] %q: not a UUID: %w", field, i, s, err)
		}
		m[id] = true
	}
	return m, nil
}

// UserHandle derives the WebAuthn user handle of subject:
// HMAC-SHA256(key, subject). It is stable (passwordless sign-in maps it back
// to the person) and reveals nothing about the subject to an authenticator
// or another relying party.
func UserHandle(key []byte, subject string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	return m.Sum(nil)
}

// HasCredentials reports whether subject has a usable (not flagged)
// credential.
func (s *Service) HasCredentials(ctx context.Context, subject string) (bool, error) {
	list, err := s.creds.ListWebAuthnCredentials(ctx, subject)
	if err != nil {
		return false, fmt.Errorf("passkeys: list credentials: %w", err)
	}
	for _, c := range list {
		if !c.Flagged {
			return true, nil
		}
	}
	return false, nil
}

// user adapts a person and their credentials to the library.
type user struct {
	id                []byte
	name, displayName string
	creds             []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.displayName }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// libCredential decodes the library record kept in a store record. The
// store's sign count is authoritative.
func libCredential(rec store.WebAuthnCredential) (webauthn.Credential, error) {
	var c webauthn.Credential
	if err := json.Unmarshal(rec.Data, &c); err != nil {
		return c, fmt.Errorf("passkeys: credential %x: decode record: %w", rec.ID, err)
	}
	if !bytes.Equal(c.ID, rec.ID) {
		return c, fmt.Errorf("passkeys: credential %x: record holds another id", rec.ID)
	}
	c.Authenticator.SignCount = rec.SignCount
	c.Authenticator.CloneWarning = false
	return c, nil
}

// Ceremony kinds, recorded with the challenge so that a registration
// challenge cannot finish a login and a second-factor challenge cannot
// finish a passwordless sign-in.
const (
	kindRegister     = "register"
	kindSecondFactor = "second-factor"
	kindPasswordless = "passwordless"
)

// pending is what waits in the ephemeral store between Begin and Finish.
type pending struct {
	Kind    string `json:"kind"`
	Subject string `json:"sub,omitempty"`
	// Discoverable records what registration asked for.
	Discoverable bool                 `json:"rk,omitempty"`
	Expires      time.Time            `json:"exp"`
	Session      webauthn.SessionData `json:"session"`
}

func ephemeralKey(ceremony string) string { return "passkeys:" + ceremony }

func (s *Service) savePending(ctx context.Context, ceremony string, p pending) error {
	if ceremony == "" {
		return errors.New("passkeys: empty ceremony id")
	}
	p.Expires = s.now().Add(s.policy.ChallengeTTL)
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("passkeys: encode session: %w", err)
	}
	// Set, not SetNX: beginning again under the same ceremony id (the
	// person clicked twice) replaces the earlier challenge, which then
	// cannot be answered any more.
	if err := s.eph.Set(ctx, ephemeralKey(ceremony), b, s.policy.ChallengeTTL); err != nil {
		return fmt.Errorf("passkeys: save session: %w", err)
	}
	return nil
}

// takePending consumes the ceremony's challenge: whatever happens next, it
// cannot be answered twice.
func (s *Service) takePending(ctx context.Context, ceremony, kind, subject string) (*pending, error) {
	if ceremony == "" {
		return nil, fmt.Errorf("%w: empty ceremony id", ErrChallengeNotFound)
	}
	b, err := s.eph.Take(ctx, ephemeralKey(ceremony))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: ceremony %q", ErrChallengeNotFound, ceremony)
	}
	if err != nil {
		return nil, fmt.Errorf("passkeys: take session: %w", err)
	}
	var p pending
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("passkeys: decode session: %w", err)
	}
	// The store's TTL already expires it; this also holds when the store's
	// clock and ours disagree.
	if !s.now().Before(p.Expires) {
		return nil, fmt.Errorf("%w: ceremony %q expired", ErrChallengeNotFound, ceremony)
	}
	if p.Kind != kind {
		return nil, fmt.Errorf("%w: ceremony %q is a %s, not a %s", ErrChallengeNotFound, ceremony, p.Kind, kind)
	}
	if p.Subject != subject {
		return nil, fmt.Errorf("%w: ceremony %q was begun for another person", ErrChallengeNotFound, ceremony)
	}
	return &p, nil
}

// checkClientData classifies the failures callers branch on before the
// library verifies everything again: a challenge that is not this
// ceremony's, an origin or RP ID that is not ours, missing user
// verification. The library's own errors carry these only as text.
func (s *Service) checkClientData(sd *webauthn.SessionData, cd protocol.CollectedClientData, rpIDHash []byte, flags protocol.AuthenticatorFlags, uvRequired bool) error {
	if !hmac.Equal([]byte(cd.Challenge), []byte(sd.Challenge)) {
		return fmt.Errorf("%w: the answer is for another challenge", ErrChallengeNotFound)
	}
	if !protocol.IsOriginInHaystack(cd.Origin, s.policy.Origins) {
		return fmt.Errorf("%w: origin %q is not one of %v", ErrOriginOrRPID, cd.Origin, s.policy.Origins)
	}
	if !hmac.Equal(rpIDHash, s.rpIDHash[:]) {
		return fmt.Errorf("%w: the authenticator signed for another RP ID than %q", ErrOriginOrRPID, s.policy.RPID)
	}
	if uvRequired && !flags.UserVerified() {
		return fmt.Errorf("%w: the authenticator did not verify the user", ErrUserVerificationRequired)
	}
	return nil
}

// classify maps a library error to a sentinel, keeping its detail.
func classify(err error) error {
	for _, sentinel := range []error{ErrChallengeNotFound, ErrUnknownCredential, ErrWrongPerson, ErrCredentialFlagged, ErrNotAllowedByPolicy} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		detail := pe.Details
		if pe.DevInfo != "" {
			detail += " (" + pe.DevInfo + ")"
		}
		switch {
		case strings.Contains(pe.Details, "origin"), strings.Contains(pe.DevInfo, "RP Hash mismatch"):
			return fmt.Errorf("%w: %s", ErrOriginOrRPID, detail)
		case strings.Contains(pe.DevInfo, "User verification required"):
			return fmt.Errorf("%w: %s", ErrUserVerificationRequired, detail)
		case pe.Type == protocol.ErrPolicyRestriction.Type, pe.Type == protocol.ErrMetadata.Type:
			return fmt.Errorf("%w: %s", ErrNotAllowedByPolicy, detail)
		}
		return fmt.Errorf("%w: %s", ErrVerification, detail)
	}
	return fmt.Errorf("%w: %v", ErrVerification, err)
}

// checkPolicy applies the authenticator policy to a credential, at
// registration and again at every sign-in: an administrator who denies a
// model, stops accepting synced passkeys or loads a blob that revokes a
// model expects existing credentials to stop working too, not only new
// registrations.
func (s *Service) checkPolicy(aaguidBytes []byte, backupEligible bool) error {
	aaguid := uuid.Nil
	if len(aaguidBytes) != 0 {
		var err error
		if aaguid, err = uuid.FromBytes(aaguidBytes); err != nil {
			return fmt.Errorf("%w: malformed AAGUID: %v", ErrNotAllowedByPolicy, err)
		}
	}
	if s.deny[aaguid] {
		return fmt.Errorf("%w: authenticator model %s is denied", ErrNotAllowedByPolicy, aaguid)
	}
	if len(s.allow) > 0 && !s.allow[aaguid] {
		return fmt.Errorf("%w: authenticator model %s is not in the allowed list", ErrNotAllowedByPolicy, aaguid)
	}
	if backupEligible && !s.policy.AllowSynced {
		return fmt.Errorf("%w: synced (backup-eligible) passkeys are not accepted", ErrNotAllowedByPolicy)
	}
	return s.checkMetadata(aaguid)
}

// cleanName trims a credential's label, defaults it and bounds its length.
func cleanName(name string) string {
	// Control and invisible characters have no place in a label shown on
	// the key-management page and in audit logs.
	name = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) || unicode.IsSpace(r) {
			return r
		}
		return -1
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if name == "" {
		return DefaultName
	}
	if r := []rune(name); len(r) > maxNameRunes {
		name = strings.TrimSpace(string(r[:maxNameRunes]))
	}
	return name
}
