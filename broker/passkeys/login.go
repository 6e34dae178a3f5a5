package passkeys

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
)

// BeginLogin starts a second-factor sign-in for subject, who has already
// given a password: allowCredentials lists the person's credentials that are
// not flagged (ErrNoCredential if there are none). It returns the JSON for
// navigator.credentials.get ({"publicKey": {...}}).
func (s *Service) BeginLogin(ctx context.Context, subject, ceremony string) ([]byte, error) {
	if subject == "" {
		return nil, errors.New("passkeys: login: empty subject")
	}
	list, err := s.creds.ListWebAuthnCredentials(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("passkeys: list credentials: %w", err)
	}
	var usable []webauthn.Credential
	for _, rec := range list {
		if rec.Flagged {
			continue
		}
		c, err := libCredential(rec)
		if err != nil {
			s.log.Warn("passkeys: unreadable credential record skipped", "subject", subject, "err", err)
			continue
		}
		usable = append(usable, c)
	}
	if len(usable) == 0 {
		return nil, fmt.Errorf("%w: %s has no usable credential", ErrNoCredential, subject)
	}
	u := &user{id: UserHandle(s.key, subject), name: subject, displayName: subject, creds: usable}
	assertion, sd, err := s.wa.BeginLogin(u, webauthn.WithUserVerification(s.policy.SecondFactorUV))
	if err != nil {
		return nil, fmt.Errorf("passkeys: begin login: %w", err)
	}
	return s.saveAssertion(ctx, ceremony, pending{Kind: kindSecondFactor, Subject: subject, Session: *sd}, assertion)
}

// BeginPasswordless starts a sign-in without username or password: the
// browser offers the discoverable credentials it holds for the RP ID, and
// user verification is required. conditional asks for mediation
// "conditional" (passkeys offered in the username field's autofill).
func (s *Service) BeginPasswordless(ctx context.Context, ceremony string, conditional bool) ([]byte, error) {
	mediation := protocol.MediationDefault
	if conditional {
		mediation = protocol.MediationConditional
	}
	assertion, sd, err := s.wa.BeginDiscoverableMediatedLogin(mediation, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkeys: begin passwordless: %w", err)
	}
	return s.saveAssertion(ctx, ceremony, pending{Kind: kindPasswordless, Session: *sd}, assertion)
}

func (s *Service) saveAssertion(ctx context.Context, ceremony string, p pending, assertion *protocol.CredentialAssertion) ([]byte, error) {
	if err := s.savePending(ctx, ceremony, p); err != nil {
		return nil, err
	}
	b, err := json.Marshal(assertion)
	if err != nil {
		return nil, fmt.Errorf("passkeys: encode options: %w", err)
	}
	return b, nil
}

// FinishLogin verifies the browser's answer (the PublicKeyCredential JSON)
// to the ceremony. subject is the person who gave a password for a second
// factor, "" for a passwordless sign-in. The challenge is consumed whatever
// the outcome. On ErrClonedAuthenticator the credential has been flagged:
// the caller audits it at high severity.
func (s *Service) FinishLogin(ctx context.Context, ceremony string, subject string, body []byte) (Result, error) {
	kind := kindSecondFactor
	if subject == "" {
		kind = kindPasswordless
	}
	pend, err := s.takePending(ctx, ceremony, kind, subject)
	if err != nil {
		return Result{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return Result{}, classify(err)
	}
	ad := parsed.Response.AuthenticatorData
	if err := s.checkClientData(&pend.Session, parsed.Response.CollectedClientData, ad.RPIDHash, ad.Flags, false); err != nil {
		return Result{}, err
	}

	rec, err := s.creds.GetWebAuthnCredential(ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("%w: %x", ErrUnknownCredential, parsed.RawID)
	}
	if err != nil {
		return Result{}, fmt.Errorf("passkeys: get credential: %w", err)
	}
	if rec.Flagged {
		return Result{}, fmt.Errorf("%w: credential %x of %s", ErrCredentialFlagged, rec.ID, rec.Subject)
	}
	handle := UserHandle(s.key, rec.Subject)
	if kind == kindSecondFactor {
		if rec.Subject != subject {
			return Result{}, fmt.Errorf("%w: credential %x of %s used as second factor for %s", ErrWrongPerson, rec.ID, rec.Subject, subject)
		}
	} else if !hmac.Equal(parsed.Response.UserHandle, handle) {
		// The authenticator names another account than the credential's
		// owner: a forged or corrupted answer.
		return Result{}, fmt.Errorf("%w: the user handle does not match credential %x of %s", ErrWrongPerson, rec.ID, rec.Subject)
	}
	// Passwordless stands in for the password: without user verification
	// it would be possession alone. A second factor needs it only when the
	// policy says so.
	uvRequired := kind == kindPasswordless || pend.Session.UserVerification == protocol.VerificationRequired
	if uvRequired && !ad.Flags.UserVerified() {
		return Result{}, fmt.Errorf("%w: the authenticator did not verify the user", ErrUserVerificationRequired)
	}
	if err := s.checkPolicy(rec.AAGUID, rec.BackupEligible); err != nil {
		return Result{}, err
	}

	cred, err := s.validate(ctx, kind, rec, handle, pend, parsed)
	if err != nil {
		return Result{}, classify(err)
	}

	// Only now, with the signature verified, may the counter condemn the
	// credential: an unsigned counter in a forged answer must not let
	// anyone lock a person's key. The library merely sets CloneWarning and
	// lets the sign-in through; Garde refuses (spec §7.2 step 21 leaves the
	// choice to the relying party) and flags the credential so that it
	// signs nobody in until an admin has looked at it.
	count := ad.Counter
	if cred.Authenticator.CloneWarning || (count <= rec.SignCount && (count != 0 || rec.SignCount != 0)) {
		if ferr := s.creds.FlagWebAuthnCredential(ctx, rec.ID); ferr != nil {
			return Result{}, fmt.Errorf("%w: counter %d after %d on credential %x of %s (and flagging failed: %w)", ErrClonedAuthenticator, count, rec.SignCount, rec.ID, rec.Subject, ferr)
		}
		return Result{}, fmt.Errorf("%w: counter %d after %d on credential %x of %s", ErrClonedAuthenticator, count, rec.SignCount, rec.ID, rec.Subject)
	}

	data, err := json.Marshal(cred)
	if err != nil {
		return Result{}, fmt.Errorf("passkeys: encode credential: %w", err)
	}
	now := s.now()
	if err := s.creds.UpdateWebAuthnCredentialUse(ctx, rec.ID, count, now, data); err != nil {
		return Result{}, fmt.Errorf("passkeys: record use: %w", err)
	}
	rec.SignCount, rec.LastUsedAt, rec.Data = count, now, data

	uv := ad.Flags.UserVerified()
	return Result{
		Subject:      rec.Subject,
		Credential:   rec,
		AMR:          s.amr(rec, ad.Flags.UserPresent(), uv, kind == kindPasswordless),
		Level:        levelFor(kind, uv),
		UserVerified: uv,
	}, nil
}

// validate hands the answer to the library: signature, challenge, origin,
// RP ID hash, flags, extensions.
func (s *Service) validate(ctx context.Context, kind string, rec store.WebAuthnCredential, handle []byte, pend *pending, parsed *protocol.ParsedCredentialAssertionData) (*webauthn.Credential, error) {
	if kind == kindPasswordless {
		c, err := libCredential(rec)
		if err != nil {
			return nil, err
		}
		// The library's discoverable path calls back with the user handle
		// the authenticator returned; it must name the credential's owner.
		handler := func(rawID, userHandle []byte) (webauthn.User, error) {
			if !hmac.Equal(rawID, rec.ID) || !hmac.Equal(userHandle, handle) {
				return nil, fmt.Errorf("%w: user handle does not match the credential's owner", ErrWrongPerson)
			}
			return &user{id: handle, name: rec.Subject, displayName: rec.Subject, creds: []webauthn.Credential{c}}, nil
		}
		_, cred, err := s.wa.ValidatePasskeyLogin(handler, pend.Session, parsed)
		return cred, err
	}
	// The session's allowCredentials must all belong to the user the
	// library is given: give it all of the person's credentials, flagged
	// ones included (the one used was checked above).
	list, err := s.creds.ListWebAuthnCredentials(ctx, rec.Subject)
	if err != nil {
		return nil, fmt.Errorf("passkeys: list credentials: %w", err)
	}
	creds := make([]webauthn.Credential, 0, len(list))
	for _, r := range list {
		if hmac.Equal(r.ID, rec.ID) {
			r = rec
		}
		c, err := libCredential(r)
		if err != nil {
			if hmac.Equal(r.ID, rec.ID) {
				return nil, err
			}
			continue
		}
		creds = append(creds, c)
	}
	return s.wa.ValidateLogin(&user{id: handle, name: rec.Subject, displayName: rec.Subject, creds: creds}, pend.Session, parsed)
}

// amr returns the RFC 8176 method references a credential proves.
//
//   - "hwk" for a device-bound key (not backup-eligible: the private key
//     never leaves the authenticator), "swk" for a synced passkey (the key
//     is a copy held by a cloud keychain).
//   - "user" when the authenticator asserted user presence: RFC 8176 defines
//     it as a user presence test (a touch), not as user verification.
//   - A user verification method only when the FIDO metadata tells which one
//     the authenticator uses: "pin" if its only method is a PIN or passcode,
//     "fpt" for fingerprint, "face" for face. The UV flag alone does not say
//     how the person was verified (a key with a fingerprint reader may fall
//     back to its PIN), so without metadata, or when the metadata lists
//     several methods, Garde claims none rather than guess.
//   - "mfa" for a passwordless sign-in with user verification: possession
//     of the key plus the PIN or biometric are two factors. For a second
//     factor the flow adds "mfa" itself, with "pwd".
func (s *Service) amr(rec store.WebAuthnCredential, up, uv, passwordless bool) []string {
	var amr []string
	if rec.BackupEligible {
		amr = append(amr, assurance.AMRSoftwareKey)
	} else {
		amr = append(amr, assurance.AMRHardwareKey)
	}
	if up {
		amr = append(amr, assurance.AMRUserPresence)
	}
	if uv {
		amr = append(amr, s.uvMethods(rec.AAGUID)...)
		if passwordless {
			amr = append(amr, assurance.AMRMultiFactor)
		}
	}
	return amr
}

// levelFor is the eIDAS level a ceremony supports.
//
// A phishing-resistant key after a password is substantial (domain README:
// "a password plus a phishing-resistant key is substantial"). A passwordless
// sign-in with user verification is two factors bound to the origin, also
// substantial — even with a device-bound hardware key: Garde reserves high
// for the CPS card, whose issuance (IGC-Santé, identity proofing by ANS)
// is what eIDAS high demands of the means, not only its strength.
func levelFor(kind string, uv bool) assurance.Level {
	if kind == kindPasswordless && !uv {
		return assurance.Low // never reached: passwordless requires UV
	}
	return assurance.Substantial
}
