package passkeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/garde-sso/garde/broker/store"
)

// BeginRegistration starts registering a credential for p and returns the
// JSON for navigator.credentials.create ({"publicKey": {...}}; binary
// fields are base64url). discoverable asks for a passkey usable without a
// password: a resident key with user verification, both required.
// ceremony is the opaque id the caller binds to the browser and the flow.
func (s *Service) BeginRegistration(ctx context.Context, p Person, discoverable bool, ceremony string) ([]byte, error) {
	if p.Subject == "" {
		return nil, errors.New("passkeys: register: empty subject")
	}
	existing, err := s.creds.ListWebAuthnCredentials(ctx, p.Subject)
	if err != nil {
		return nil, fmt.Errorf("passkeys: list credentials: %w", err)
	}
	// Excluding the person's credentials (flagged ones too) stops an
	// authenticator from registering twice for the same person.
	exclude := make([]protocol.CredentialDescriptor, 0, len(existing))
	for _, rec := range existing {
		if c, err := libCredential(rec); err == nil {
			exclude = append(exclude, c.Descriptor())
		} else {
			exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: rec.ID})
		}
	}
	sel := protocol.AuthenticatorSelection{
		ResidentKey:        protocol.ResidentKeyRequirementDiscouraged,
		RequireResidentKey: protocol.ResidentKeyNotRequired(),
		UserVerification:   s.policy.SecondFactorUV,
	}
	if discoverable {
		// A passkey replaces the password: the authenticator must hold the
		// credential (the browser offers it without a username) and must
		// verify the person, or it would be a single factor.
		sel = protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		}
	}
	creation, sd, err := s.wa.BeginRegistration(s.userOf(p, nil),
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(sel),
		webauthn.WithConveyancePreference(s.policy.Attestation),
	)
	if err != nil {
		return nil, fmt.Errorf("passkeys: begin registration: %w", err)
	}
	if err := s.savePending(ctx, ceremony, pending{Kind: kindRegister, Subject: p.Subject, Discoverable: discoverable, Session: *sd}); err != nil {
		return nil, err
	}
	b, err := json.Marshal(creation)
	if err != nil {
		return nil, fmt.Errorf("passkeys: encode options: %w", err)
	}
	return b, nil
}

// FinishRegistration verifies the browser's answer (the PublicKeyCredential
// JSON) to the ceremony begun for p, applies the authenticator policy and
// stores the credential under name (trimmed, at most 64 characters,
// DefaultName when empty).
func (s *Service) FinishRegistration(ctx context.Context, p Person, ceremony, name string, body []byte) (store.WebAuthnCredential, error) {
	var none store.WebAuthnCredential
	pend, err := s.takePending(ctx, ceremony, kindRegister, p.Subject)
	if err != nil {
		return none, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return none, classify(err)
	}
	ad := parsed.Response.AttestationObject.AuthData
	if err := s.checkClientData(&pend.Session, parsed.Response.CollectedClientData, ad.RPIDHash, ad.Flags,
		pend.Session.UserVerification == protocol.VerificationRequired); err != nil {
		return none, err
	}
	cred, err := s.wa.CreateCredential(s.userOf(p, nil), pend.Session, parsed)
	if err != nil {
		return none, classify(err)
	}
	if err := s.checkPolicy(cred.Authenticator.AAGUID, cred.Flags.BackupEligible); err != nil {
		return none, err
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return none, fmt.Errorf("passkeys: encode credential: %w", err)
	}
	now := s.now()
	rec := store.WebAuthnCredential{
		ID:             cred.ID,
		Subject:        p.Subject,
		Name:           cleanName(name),
		AAGUID:         cred.Authenticator.AAGUID,
		SignCount:      cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible,
		Discoverable:   pend.Discoverable,
		Data:           data,
		CreatedAt:      now,
		LastUsedAt:     now,
	}
	if err := s.creds.CreateWebAuthnCredential(ctx, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The authenticator returned a credential id that exists,
			// perhaps another person's: never overwrite it.
			return none, fmt.Errorf("%w: credential id already registered: %w", ErrVerification, err)
		}
		return none, fmt.Errorf("passkeys: store credential: %w", err)
	}
	return rec, nil
}

// userOf adapts a person to the library.
func (s *Service) userOf(p Person, creds []webauthn.Credential) *user {
	name := p.Username
	if name == "" {
		name = p.Subject
	}
	display := p.DisplayName
	if display == "" {
		display = name
	}
	return &user{id: UserHandle(s.key, p.Subject), name: name, displayName: display, creds: creds}
}
