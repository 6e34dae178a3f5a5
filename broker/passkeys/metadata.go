package passkeys

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/garde-sso/garde/internal/assurance"
)

// The FIDO MDS3 blob is read from a local file and verified here rather
// than with the library's metadata.Decoder: the decoder trusts a single
// root given as a string (Garde configures a pool, and tests their own CA),
// and it checks revocation of the signing chain by fetching CRLs over the
// network, which hospital networks often cannot reach. Garde verifies the
// JWT's x5c chain with crypto/x509 against Policy.MetadataRoots, then parses
// the payload with the library's types. The signing chain's revocation is
// not checked (offline): the operator who downloads the blob is trusted to
// take it from https://mds3.fidoalliance.org/.

// undesiredStatuses refuse an authenticator model at registration and at
// sign-in. Each says the model can no longer prove what a key must prove:
// its user verification can be bypassed, its attestation key or its users'
// keys have leaked, or FIDO revoked its certification.
var undesiredStatuses = []metadata.AuthenticatorStatus{
	metadata.Revoked,
	metadata.UserVerificationBypass,
	metadata.AttestationKeyCompromise,
	metadata.UserKeyRemoteCompromise,
	metadata.UserKeyPhysicalCompromise,
}

// blobAlgorithms are the JWS algorithms accepted for the blob (FIDO signs
// with RS256; "none" and HMAC are never accepted).
var blobAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// mdsIndex is a verified blob, indexed by AAGUID.
type mdsIndex struct {
	number     int
	nextUpdate time.Time
	entries    map[uuid.UUID]*metadata.Entry
	skipped    int
}

// MetadataInfo describes the loaded blob, for the admin page and health
// checks.
type MetadataInfo struct {
	Loaded     bool
	Number     int
	NextUpdate time.Time
	Entries    int
	// Skipped entries could not be parsed and are treated as absent.
	Skipped int
	// Stale is set when nextUpdate has passed: download a new blob.
	Stale bool
}

// MetadataInfo returns what is loaded.
func (s *Service) MetadataInfo() MetadataInfo {
	idx := s.metadata()
	if idx == nil {
		return MetadataInfo{}
	}
	return MetadataInfo{
		Loaded:     true,
		Number:     idx.number,
		NextUpdate: idx.nextUpdate,
		Entries:    len(idx.entries),
		Skipped:    idx.skipped,
		Stale:      !s.now().Before(idx.nextUpdate),
	}
}

func (s *Service) metadata() *mdsIndex {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mds
}

// ReloadMetadata reads Policy.MetadataFile again, verifies it and replaces
// the index. On error the previous index stays in use. A blob past its
// nextUpdate is still used, with a warning: hospitals run offline and a
// stale list of known models is better than refusing every key; the
// operator is told to fetch a new one (MetadataInfo().Stale).
func (s *Service) ReloadMetadata() error {
	if s.policy.MetadataFile == "" {
		return nil
	}
	raw, err := os.ReadFile(s.policy.MetadataFile)
	if err != nil {
		return fmt.Errorf("passkeys: metadata: %w", err)
	}
	now := s.now()
	idx, err := parseBlob(raw, s.policy.MetadataRoots, now)
	if err != nil {
		return fmt.Errorf("passkeys: metadata %s: %w", s.policy.MetadataFile, err)
	}
	if idx.skipped > 0 {
		s.log.Warn("passkeys: metadata entries could not be parsed and are treated as absent", "file", s.policy.MetadataFile, "skipped", idx.skipped)
	}
	if !now.Before(idx.nextUpdate) {
		s.log.Warn("passkeys: FIDO metadata blob is stale, still using it: download a new one", "file", s.policy.MetadataFile, "no", idx.number, "nextUpdate", idx.nextUpdate.Format(time.DateOnly))
	}
	s.mu.Lock()
	s.mds = idx
	s.mu.Unlock()
	return nil
}

// parseBlob verifies the blob's signature chain against roots at now and
// indexes its entries.
func parseBlob(raw []byte, roots *x509.CertPool, now time.Time) (*mdsIndex, error) {
	parser := jwt.NewParser(jwt.WithValidMethods(blobAlgorithms), jwt.WithoutClaimsValidation())
	token, err := parser.Parse(strings.TrimSpace(string(raw)), func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["x5u"]; ok {
			return nil, errors.New("x5u header not supported")
		}
		x5c, ok := t.Header["x5c"].([]any)
		if !ok || len(x5c) == 0 {
			return nil, errors.New("missing x5c header")
		}
		certs := make([]*x509.Certificate, len(x5c))
		for i, v := range x5c {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("x5c[%d] is not a string", i)
			}
			der, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("x5c[%d]: %w", i, err)
			}
			if certs[i], err = x509.ParseCertificate(der); err != nil {
				return nil, fmt.Errorf("x5c[%d]: %w", i, err)
			}
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		// The anchor comes from configuration, never from the blob: a
		// self-signed certificate in x5c chains to nothing.
		if _, err := certs[0].Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			return nil, fmt.Errorf("signing certificate: %w", err)
		}
		return certs[0].PublicKey, nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify blob: %w", err)
	}
	parts := strings.Split(token.Raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed blob")
	}
	body, err := parser.DecodeSegment(parts[1])
	if err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	var payload metadata.PayloadJSON
	if err := json.Unmarshal(body, &payload); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	idx := &mdsIndex{number: payload.Number, entries: make(map[uuid.UUID]*metadata.Entry, len(payload.Entries))}
	if idx.nextUpdate, err = time.Parse(time.DateOnly, payload.NextUpdate); err != nil {
		return nil, fmt.Errorf("nextUpdate %q: %w", payload.NextUpdate, err)
	}
	for _, ej := range payload.Entries {
		e, err := ej.Parse()
		if err != nil {
			// The production blob has carried entries the library cannot
			// parse; one bad entry must not disable every other model.
			idx.skipped++
			continue
		}
		if e.AaGUID == uuid.Nil {
			continue // U2F (key identifiers) and UAF entries: no AAGUID
		}
		idx.entries[e.AaGUID] = &e
	}
	return idx, nil
}

func (s *Service) entry(aaguid []byte) *metadata.Entry {
	idx := s.metadata()
	if idx == nil || len(aaguid) != 16 {
		return nil
	}
	id, err := uuid.FromBytes(aaguid)
	if err != nil || id == uuid.Nil {
		return nil
	}
	return idx.entries[id]
}

// checkMetadata refuses a model whose status reports an undesired status,
// or one absent from the blob when RequireMetadata is set (the zero AAGUID,
// sent by U2F keys and by browsers hiding the model, is then refused too).
func (s *Service) checkMetadata(aaguid uuid.UUID) error {
	idx := s.metadata()
	if idx == nil {
		return nil
	}
	e := idx.entries[aaguid]
	if e == nil {
		if s.policy.RequireMetadata {
			return fmt.Errorf("%w: authenticator model %s is not in the FIDO metadata", ErrNotAllowedByPolicy, aaguid)
		}
		return nil
	}
	if err := metadata.ValidateStatusReportsAt(e.StatusReports, nil, undesiredStatuses, s.now()); err != nil {
		return fmt.Errorf("%w: authenticator model %s (%s): %v", ErrNotAllowedByPolicy, aaguid, e.MetadataStatement.Description, err)
	}
	return nil
}

// Model returns the authenticator model's name from the metadata (French
// if the blob has it), or "" when unknown: for the key-management page.
func (s *Service) Model(aaguid []byte) string {
	e := s.entry(aaguid)
	if e == nil {
		return ""
	}
	st := e.MetadataStatement
	for _, lang := range []string{"fr-FR", "fr"} {
		if n := st.FriendlyNames[lang]; n != "" {
			return n
		}
	}
	return st.Description
}

// uvMethods returns the amr values of the user verification the model
// performs, when the metadata leaves no doubt about which one was used:
// userVerificationDetails lists alternatives (any one of them may be used),
// each a combination of methods. If every alternative that verifies the
// user maps to the same set of known methods, that set is returned;
// otherwise (several possible methods, unknown methods, no metadata)
// nothing is.
func (s *Service) uvMethods(aaguid []byte) []string {
	e := s.entry(aaguid)
	if e == nil {
		return nil
	}
	var agreed []string
	seen := false
	for _, alternative := range e.MetadataStatement.UserVerificationDetails {
		var methods []string
		verifies := false
		for _, m := range alternative {
			switch kind, _, _ := strings.Cut(m.UserVerificationMethod, "_"); kind {
			case "presence", "none":
				continue // presence is not verification
			case "passcode":
				methods = append(methods, assurance.AMRPIN)
			case "fingerprint":
				methods = append(methods, assurance.AMRFingerprint)
			case "faceprint":
				methods = append(methods, assurance.AMRFace)
			default:
				return nil // a method RFC 8176 values here cannot name
			}
			verifies = true
		}
		if !verifies {
			continue
		}
		slices.Sort(methods)
		methods = slices.Compact(methods)
		if seen && !slices.Equal(agreed, methods) {
			return nil
		}
		agreed, seen = methods, true
	}
	return agreed
}
