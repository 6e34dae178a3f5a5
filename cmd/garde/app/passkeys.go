package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/passkeys"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/internal/assurance"
)

// authenticators adapts passkeys.Service to what the sign-in flow needs.
type authenticators struct{ s *passkeys.Service }

var _ flow.Authenticators = authenticators{}

func (a authenticators) HasCredentials(ctx context.Context, subject string) (bool, error) {
	return a.s.HasCredentials(ctx, subject)
}

func (a authenticators) BeginLogin(ctx context.Context, subject, ceremony string) ([]byte, error) {
	return a.s.BeginLogin(ctx, subject, ceremony)
}

func (a authenticators) BeginPasswordless(ctx context.Context, ceremony string, conditional bool) ([]byte, error) {
	return a.s.BeginPasswordless(ctx, ceremony, conditional)
}

func (a authenticators) FinishLogin(ctx context.Context, ceremony, subject string, body []byte) (flow.KeyResult, error) {
	r, err := a.s.FinishLogin(ctx, ceremony, subject, body)
	if err != nil {
		return flow.KeyResult{}, err
	}
	return flow.KeyResult{Subject: r.Subject, AMR: r.AMR, Level: r.Level, CredentialName: r.Credential.Name, CredentialID: r.Credential.ID}, nil
}

// Enrollment always creates a discoverable credential (a passkey, or a
// FIDO2 key holding it with its PIN): the same key then also signs in
// without a password.
func (a authenticators) BeginRegistration(ctx context.Context, p flow.KeyPerson, ceremony string) ([]byte, error) {
	return a.s.BeginRegistration(ctx, passkeys.Person{Subject: p.Subject, Username: p.Username, DisplayName: p.DisplayName}, true, ceremony)
}

func (a authenticators) FinishRegistration(ctx context.Context, p flow.KeyPerson, ceremony, name string, body []byte) (flow.KeyResult, error) {
	c, err := a.s.FinishRegistration(ctx, passkeys.Person{Subject: p.Subject, Username: p.Username, DisplayName: p.DisplayName}, ceremony, name, body)
	if err != nil {
		return flow.KeyResult{}, err
	}
	// Registration required user presence and verification on a key bound
	// to this origin: as a second factor it is worth what a sign-in with
	// the key is worth.
	kind := assurance.AMRHardwareKey
	if c.BackupEligible {
		kind = assurance.AMRSoftwareKey
	}
	return flow.KeyResult{Subject: c.Subject, AMR: []string{kind, assurance.AMRUserPresence}, Level: assurance.Substantial,
		CredentialName: c.Name, CredentialID: c.ID}, nil
}

func (a authenticators) Classify(err error) (key, reason string, high bool) {
	switch {
	case errors.Is(err, passkeys.ErrClonedAuthenticator):
		return "webauthn_cloned", "cloned_authenticator", true
	case errors.Is(err, passkeys.ErrCredentialFlagged):
		return "webauthn_cloned", "credential_flagged", true
	case errors.Is(err, passkeys.ErrChallengeNotFound):
		return "webauthn_challenge_expired", "challenge_not_found", false
	case errors.Is(err, passkeys.ErrNoCredential):
		return "webauthn_no_credential", "no_credential", false
	case errors.Is(err, passkeys.ErrUnknownCredential):
		return "webauthn_no_credential", "unknown_credential", false
	case errors.Is(err, passkeys.ErrWrongPerson):
		return "webauthn_wrong_person", "wrong_person", false
	case errors.Is(err, passkeys.ErrUserVerificationRequired):
		return "webauthn_uv_required", "user_verification_missing", false
	case errors.Is(err, passkeys.ErrOriginOrRPID):
		return "webauthn_security", "wrong_origin_or_rp_id", true
	case errors.Is(err, passkeys.ErrNotAllowedByPolicy):
		return "webauthn_not_allowed", "authenticator_not_allowed", false
	}
	return "webauthn_failed", "verification_failed", false
}

// newPasskeys builds the WebAuthn service, or nil when WebAuthn is off or
// cannot run on this issuer (an IP address cannot be an RP ID).
func newPasskeys(cfg *config.Config, creds store.WebAuthnCredentials, eph store.Ephemeral, key []byte, clock func() time.Time, o Options, logger *slog.Logger) (*passkeys.Service, error) {
	w := cfg.WebAuthn
	if !w.Enabled {
		return nil, nil
	}
	if net.ParseIP(w.RPID) != nil {
		if w.SecondFactor == "required" {
			return nil, fmt.Errorf("webauthn: second_factor is required but the RP ID %q is an IP address, which browsers refuse: give the issuer a host name", w.RPID)
		}
		logger.Warn("WebAuthn disabled: the issuer's host is an IP address, which browsers refuse as an RP ID; use a host name", "rp_id", w.RPID)
		return nil, nil
	}
	p := passkeys.Policy{
		RPID:            w.RPID,
		RPName:          w.RPName,
		Origins:         w.Origins,
		SecondFactorUV:  protocol.UserVerificationRequirement(w.UserVerification),
		Attestation:     protocol.ConveyancePreference(w.Attestation),
		AllowAAGUIDs:    w.AAGUIDAllow,
		DenyAAGUIDs:     w.AAGUIDDeny,
		AllowSynced:     w.AllowSynced,
		RequireMetadata: w.RequireMetadata,
		Logger:          logger,
	}
	if w.MetadataFile != "" {
		p.MetadataFile = resolve(o.BaseDir, w.MetadataFile)
		pem, err := os.ReadFile(resolve(o.BaseDir, w.MetadataRootFile))
		if err != nil {
			return nil, fmt.Errorf("webauthn metadata_root_file: %w", err)
		}
		p.MetadataRoots = x509.NewCertPool()
		if !p.MetadataRoots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webauthn metadata_root_file %s holds no PEM certificate", w.MetadataRootFile)
		}
	}
	s, err := passkeys.New(p, creds, eph, key, clock)
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return s, nil
}
