package passkeys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
)

// memCreds is a map-based store.WebAuthnCredentials for these tests.
type memCreds struct {
	mu sync.Mutex
	m  map[string]store.WebAuthnCredential
	// order keeps insertion order for "oldest first".
	order []string
}

var _ store.WebAuthnCredentials = (*memCreds)(nil)

func newMemCreds() *memCreds { return &memCreds{m: map[string]store.WebAuthnCredential{}} }

func cloneCred(c store.WebAuthnCredential) store.WebAuthnCredential {
	c.ID, c.AAGUID, c.Data = bytes.Clone(c.ID), bytes.Clone(c.AAGUID), bytes.Clone(c.Data)
	return c
}

func (s *memCreds) CreateWebAuthnCredential(_ context.Context, c store.WebAuthnCredential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[string(c.ID)]; ok {
		return store.ErrConflict
	}
	s.m[string(c.ID)] = cloneCred(c)
	s.order = append(s.order, string(c.ID))
	return nil
}

func (s *memCreds) GetWebAuthnCredential(_ context.Context, id []byte) (store.WebAuthnCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[string(id)]
	if !ok {
		return store.WebAuthnCredential{}, store.ErrNotFound
	}
	return cloneCred(c), nil
}

func (s *memCreds) ListWebAuthnCredentials(_ context.Context, subject string) ([]store.WebAuthnCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.WebAuthnCredential
	for _, id := range s.order {
		if c, ok := s.m[id]; ok && c.Subject == subject {
			out = append(out, cloneCred(c))
		}
	}
	return out, nil
}

func (s *memCreds) UpdateWebAuthnCredentialUse(_ context.Context, id []byte, signCount uint32, usedAt time.Time, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[string(id)]
	if !ok {
		return store.ErrNotFound
	}
	c.SignCount, c.LastUsedAt, c.Data = signCount, usedAt, bytes.Clone(data)
	s.m[string(id)] = c
	return nil
}

func (s *memCreds) RenameWebAuthnCredential(_ context.Context, subject string, id []byte, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[string(id)]
	if !ok || c.Subject != subject {
		return store.ErrNotFound
	}
	c.Name = name
	s.m[string(id)] = c
	return nil
}

func (s *memCreds) FlagWebAuthnCredential(_ context.Context, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[string(id)]
	if !ok {
		return store.ErrNotFound
	}
	c.Flagged = true
	s.m[string(id)] = c
	return nil
}

func (s *memCreds) DeleteWebAuthnCredential(_ context.Context, subject string, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[string(id)]
	if !ok || c.Subject != subject {
		return store.ErrNotFound
	}
	delete(s.m, string(id))
	s.order = slices.DeleteFunc(s.order, func(k string) bool { return k == string(id) })
	return nil
}

func (s *memCreds) DeleteWebAuthnCredentialsOf(_ context.Context, subject string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, c := range s.m {
		if c.Subject == subject {
			delete(s.m, k)
			n++
		}
	}
	s.order = slices.DeleteFunc(s.order, func(k string) bool { _, ok := s.m[k]; return !ok })
	return n, nil
}

const (
	testRPID   = "sso.hopital.fr"
	testOrigin = "https://sso.hopital.fr"
)

var (
	testKey    = bytes.Repeat([]byte{7}, 32)
	testAAGUID = [16]byte{0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8}
	// testAAGUIDString is testAAGUID in canonical form.
	testAAGUIDString = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
	testRP           = virtualwebauthn.RelyingParty{ID: testRPID, Name: "Garde", Origin: testOrigin}
	alice            = Person{Subject: "alice", Username: "alice@hopital.fr", DisplayName: "Alice Martin"}
	bob              = Person{Subject: "bob", Username: "bob@hopital.fr", DisplayName: "Bob Durand"}
)

// fixture is a service over in-memory stores with a settable clock.
type fixture struct {
	t     testing.TB
	svc   *Service
	creds store.WebAuthnCredentials
	now   time.Time
	mu    sync.Mutex
	seq   int
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// credsFactory builds the credential store under test; tests run against
// memCreds, and against sqlite when that backend implements the interface.
var credsFactory = func(t testing.TB) store.WebAuthnCredentials { return newMemCreds() }

func newFixture(t testing.TB, p Policy) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), creds: credsFactory(t)}
	if p.RPID == "" {
		p.RPID = testRPID
	}
	if p.RPName == "" {
		p.RPName = "Garde"
	}
	if p.Origins == nil {
		p.Origins = []string{testOrigin}
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	eph := memory.New(f.clock)
	t.Cleanup(func() { eph.Close() })
	svc, err := New(p, f.creds, eph, testKey, f.clock)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.svc = svc
	return f
}

func (f *fixture) ceremony() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("flow%d:passkey", f.seq)
}

// newAuthenticator returns a software authenticator with the test AAGUID.
func newAuthenticator(opts virtualwebauthn.AuthenticatorOptions) *virtualwebauthn.Authenticator {
	a := virtualwebauthn.NewAuthenticatorWithOptions(opts)
	a.Aaguid = testAAGUID
	return &a
}

// register runs a registration ceremony and returns the error of Finish.
func (f *fixture) register(auth *virtualwebauthn.Authenticator, p Person, discoverable bool, name string) (store.WebAuthnCredential, error) {
	return f.registerWith(testRP, auth, p, discoverable, name)
}

func (f *fixture) registerWith(rp virtualwebauthn.RelyingParty, auth *virtualwebauthn.Authenticator, p Person, discoverable bool, name string) (store.WebAuthnCredential, error) {
	f.t.Helper()
	ctx := context.Background()
	c := f.ceremony()
	opts, err := f.svc.BeginRegistration(ctx, p, discoverable, c)
	if err != nil {
		f.t.Fatalf("BeginRegistration: %v", err)
	}
	ao, err := virtualwebauthn.ParseAttestationOptions(string(opts))
	if err != nil {
		f.t.Fatalf("ParseAttestationOptions: %v", err)
	}
	cred := newCred()
	body := virtualwebauthn.CreateAttestationResponse(rp, *auth, cred, *ao)
	rec, err := f.svc.FinishRegistration(ctx, p, c, name, []byte(body))
	if err == nil {
		auth.AddCredential(cred)
	}
	return rec, err
}

func (f *fixture) mustRegister(auth *virtualwebauthn.Authenticator, p Person, discoverable bool) store.WebAuthnCredential {
	f.t.Helper()
	rec, err := f.register(auth, p, discoverable, "")
	if err != nil {
		f.t.Fatalf("register %s: %v", p.Subject, err)
	}
	return rec
}

// assertion answers options with the authenticator's credential idx,
// advancing its counter by step first.
func assertion(t testing.TB, rp virtualwebauthn.RelyingParty, auth *virtualwebauthn.Authenticator, idx int, step int, opts []byte) []byte {
	t.Helper()
	ao, err := virtualwebauthn.ParseAssertionOptions(string(opts))
	if err != nil {
		t.Fatalf("ParseAssertionOptions: %v", err)
	}
	cred := &auth.Credentials[idx]
	cred.Counter = uint32(int(cred.Counter) + step)
	return []byte(virtualwebauthn.CreateAssertionResponse(rp, *auth, *cred, *ao))
}

// secondFactor runs a complete second-factor login for subject with the
// authenticator's credential idx.
func (f *fixture) secondFactor(auth *virtualwebauthn.Authenticator, subject string, idx, step int) (Result, error) {
	f.t.Helper()
	ctx := context.Background()
	c := f.ceremony()
	opts, err := f.svc.BeginLogin(ctx, subject, c)
	if err != nil {
		f.t.Fatalf("BeginLogin: %v", err)
	}
	return f.svc.FinishLogin(ctx, c, subject, assertion(f.t, testRP, auth, idx, step, opts))
}

func (f *fixture) passwordless(rp virtualwebauthn.RelyingParty, auth *virtualwebauthn.Authenticator, idx, step int) (Result, error) {
	f.t.Helper()
	ctx := context.Background()
	c := f.ceremony()
	opts, err := f.svc.BeginPasswordless(ctx, c, false)
	if err != nil {
		f.t.Fatalf("BeginPasswordless: %v", err)
	}
	return f.svc.FinishLogin(ctx, c, "", assertion(f.t, rp, auth, idx, step, opts))
}

func newTestEphemeral(t *testing.T) store.Ephemeral {
	eph := memory.New(nil)
	t.Cleanup(func() { eph.Close() })
	return eph
}

// newCred returns a software credential. virtualwebauthn encodes P-256
// coordinates without their leading zero bytes, which the library rightly
// refuses (about one key in 128): draw keys until both are full length.
func newCred() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}
