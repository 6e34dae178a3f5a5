package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ory/fosite/token/jwt"
)

// Signer returns a fosite jwt.Signer that signs with the Manager's current
// keys and verifies with any published key.
//
// Generate signs with the algorithm named by the header's "alg" entry (the
// OIDC layer sets it per client), or defaultAlg ("" means RS256), and sets
// "kid". Decode and Validate accept only compact JWS whose kid is published
// and whose alg is that key's algorithm: never "none", never an algorithm
// the token chose for a key of another type.
func (m *Manager) Signer(defaultAlg string) jwt.Signer {
	if defaultAlg == "" {
		defaultAlg = RS256
	}
	return &signer{m: m, defaultAlg: defaultAlg}
}

type signer struct {
	m          *Manager
	defaultAlg string
}

var _ jwt.Signer = (*signer)(nil)

var b64 = base64.RawURLEncoding

// Generate signs claims and returns the token and its signature part.
//
// It encodes the JWS itself rather than going through go-jose: go-jose
// builds a signer (and inspects the key) on every call, which costs more
// than an ES256 signature. The output is plain compact JWS that go-jose,
// and so fosite's Decode, parses.
func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil {
		return "", "", errors.New("keys: cannot sign nil claims")
	}
	if h, ok := header.(*jwt.Headers); ok && h == nil {
		header = nil
	}
	alg := s.defaultAlg
	var extra map[string]any
	if header != nil {
		// jwt.Headers.ToMap drops "alg", so ask for it by name.
		if a, ok := header.Get("alg").(string); ok && a != "" {
			alg = a
		}
		extra = header.ToMap()
		delete(extra, "alg")
		delete(extra, "kid")
	}
	// A client registered for ES256 cannot verify RS256: fail rather than
	// fall back to another algorithm.
	if !slices.Contains(s.m.algs, alg) {
		return "", "", fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	k := s.m.snap.Load().signingKey(alg, s.m.clock())
	if k == nil {
		return "", "", fmt.Errorf("%w: no %s key", ErrUnsupportedAlg, alg)
	}

	hdr := k.header
	if len(extra) > 0 {
		hm := make(map[string]any, len(extra)+3)
		hm["typ"] = "JWT" // as fosite does; the caller may override it (at+jwt)
		for name, v := range extra {
			hm[name] = v
		}
		hm["alg"], hm["kid"] = k.alg, k.kid
		hb, err := json.Marshal(hm)
		if err != nil {
			return "", "", fmt.Errorf("keys: encode JWT header: %w", err)
		}
		hdr = b64.EncodeToString(hb)
	}
	payload, err := json.Marshal(map[string]any(claims))
	if err != nil {
		return "", "", fmt.Errorf("keys: encode JWT claims: %w", err)
	}

	buf := make([]byte, 0, len(hdr)+1+b64.EncodedLen(len(payload))+1+b64.EncodedLen(512))
	buf = append(buf, hdr...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	sig, err := signDigest(k.priv, digest[:])
	if err != nil {
		return "", "", fmt.Errorf("keys: sign with %s: %w", k.kid, err)
	}
	buf = append(buf, '.')
	n := len(buf)
	buf = b64.AppendEncode(buf, sig)
	token := string(buf)
	return token, token[n:], nil
}

func signDigest(priv crypto.Signer, digest []byte) ([]byte, error) {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(nil, p, crypto.SHA256, digest)
	case *ecdsa.PrivateKey:
		// JWS wants R || S, each as 32 bytes (RFC 7518 §3.4), not ASN.1.
		r, s, err := ecdsa.Sign(rand.Reader, p, digest)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	default:
		return nil, fmt.Errorf("unexpected key type %T", priv)
	}
}

// Decode verifies a token's signature with the published key named by its
// kid and validates its time claims, like fosite's DefaultSigner.Decode: an
// expired but authentic token comes back with a ValidationErrorExpired (the
// id_token_hint case relies on that).
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	// go-jose also parses the JSON serialization, whose unprotected header
	// could carry kid or alg: accept only the compact form we issue.
	if strings.Count(token, ".") != 2 || strings.HasPrefix(token, "{") {
		return &jwt.Token{}, &jwt.ValidationError{Errors: jwt.ValidationErrorMalformed,
			Inner: errors.New("keys: token is not a compact JWS")}
	}
	snap := s.m.snap.Load()
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		if t.Method == jwt.SigningMethodNone {
			return nil, &jwt.ValidationError{Errors: jwt.ValidationErrorSignatureInvalid,
				Inner: errors.New("keys: unsigned token (alg none)")}
		}
		kid, _ := t.Header["kid"].(string)
		k := snap.byKID[kid]
		if k == nil {
			return nil, &jwt.ValidationError{Errors: jwt.ValidationErrorUnverifiable,
				Inner: fmt.Errorf("keys: unknown signing key %q", kid)}
		}
		if string(t.Method) != k.alg {
			return nil, &jwt.ValidationError{Errors: jwt.ValidationErrorSignatureInvalid,
				Inner: fmt.Errorf("keys: token alg %q does not match key %s (%s)", t.Method, k.kid, k.alg)}
		}
		return k.pub, nil
	})
}

// Validate verifies a token like Decode and returns its signature part.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// GetSignature returns the signature part of a token, unverified.
func (s *signer) GetSignature(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("keys: header, body and signature must all be set")
	}
	return parts[2], nil
}

// Hash is SHA-256, as fosite's DefaultSigner: fosite computes at_hash and
// c_hash itself from the ID token's alg, and for RS256 and ES256 that is
// SHA-256 too.
func (s *signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	return h[:], nil
}

// GetSigningMethodLength is the size of Hash's output.
func (s *signer) GetSigningMethodLength(ctx context.Context) int {
	return sha256.Size
}
