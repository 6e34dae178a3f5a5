// Package keys holds Garde's token-signing keys: it creates them, seals them
// under the master key into the durable store, rotates them safely across
// replicas, publishes the JWKS and signs tokens for fosite.
//
// Life of a key, per algorithm (RS256, ES256):
//
//  1. created: generation n+1 is inserted into the store when generation n is
//     older than RotationPeriod. The store's unique (alg, generation) makes
//     exactly one replica win a concurrent rotation.
//  2. published: from creation it is in the JWKS, but not yet used to sign
//     until PublishBefore has passed, so that relying parties that cache the
//     JWKS (and the other replicas, which reload every minute) know it before
//     they see a token signed with it.
//  3. signing: the newest key whose publication delay is over signs.
//  4. retired: once a newer key signs, the old one stays published for
//     RetainAfterRotation (the longest lifetime of anything it signed) plus
//     a reload interval, then is deleted from the store.
//
// Everything a request needs (signing keys, JWKS bytes) is in an immutable
// snapshot behind an atomic pointer, rebuilt only when the key set changes.
package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// Supported JWS algorithms.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Defaults for Options.
const (
	DefaultRotationPeriod      = 30 * 24 * time.Hour
	DefaultRetainAfterRotation = 24 * time.Hour
	// DefaultPublishBefore is long enough for relying parties that refresh
	// their JWKS cache on a fixed schedule (often hourly, some daily) rather
	// than on an unknown kid. It costs nothing with a 30-day rotation.
	DefaultPublishBefore  = 24 * time.Hour
	DefaultReloadInterval = time.Minute
)

// NoPublishDelay, as Options.PublishBefore, makes a new key sign at once.
const NoPublishDelay time.Duration = -1

// rsaBits is the size of generated RSA keys. 2048 bits is 112-bit security,
// acceptable to NIST until 2030; a key signs for one rotation period and its
// signatures only need to hold for a token's lifetime, so 3072 would buy
// nothing that matters here while making every RS256 signature ~3x slower.
const rsaBits = 2048

// ErrUnsupportedAlg is returned when asked to sign with an algorithm that is
// not configured.
var ErrUnsupportedAlg = errors.New("keys: unsupported signing algorithm")

// Options configures a Manager.
type Options struct {
	// Store persists the sealed keys; shared by all replicas.
	Store store.SigningKeys
	// MasterKey (32 bytes, see LoadMasterKey) seals private keys.
	MasterKey []byte
	// Algs to sign with: a subset of RS256 and ES256; default both. Keys of
	// other algorithms found in the store are still published and verify,
	// but neither sign nor rotate.
	Algs []string
	// RotationPeriod is the age at which a key gets a successor; default 30
	// days.
	RotationPeriod time.Duration
	// RetainAfterRotation is how long a retired key stays published after
	// its successor took over: pass the longest lifetime of anything signed
	// (ID token, JWT access token). Default 24h.
	RetainAfterRotation time.Duration
	// PublishBefore is how long a new key is published in the JWKS before it
	// signs. Zero means DefaultPublishBefore, or a quarter of RotationPeriod
	// if that is shorter; NoPublishDelay (any negative value) disables it.
	// It must be shorter than RotationPeriod.
	PublishBefore time.Duration
	// ReloadInterval is how often Run reloads the store (jittered by ±20%);
	// default one minute.
	ReloadInterval time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnCreate, when set, is told of every key this replica creates (the
	// first key of an algorithm, or a rotation), e.g. to audit it. Keys
	// created by other replicas are reported by those replicas.
	OnCreate func(kid, alg string, generation int64)
}

// Manager owns the signing keys. It is safe for concurrent use.
type Manager struct {
	store         store.SigningKeys
	aead          cipher.AEAD
	algs          []string
	period        time.Duration
	retain        time.Duration
	publishBefore time.Duration
	reload        time.Duration
	clock         func() time.Time
	log           *slog.Logger
	onCreate      func(kid, alg string, generation int64)

	// mu serializes changes (reload, rotate, prune); readers only load snap.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

// key is one opened signing key. Immutable once built.
type key struct {
	kid       string
	alg       string
	gen       int64
	createdAt time.Time
	// activeAt is when the key may start signing (createdAt+PublishBefore).
	activeAt time.Time
	priv     crypto.Signer
	pub      crypto.PublicKey
	// header is the encoded protected header {"alg","kid","typ":"JWT"} used
	// when the caller adds no header of its own (the common case).
	header string
	// sealed is kept to notice a record replaced under the same kid.
	sealed []byte
}

// snapshot is an immutable view of the key set.
type snapshot struct {
	byKID map[string]*key
	// byAlg lists each algorithm's keys by ascending generation.
	byAlg map[string][]*key
	jwks  []byte
}

// New loads the keys from the store, creating the first key of each
// algorithm that has none. Start Run afterwards: it picks up other replicas'
// changes, rotates and prunes.
func New(ctx context.Context, o Options) (*Manager, error) {
	m, err := newManager(o)
	if err != nil {
		return nil, err
	}
	m.snap.Store(&snapshot{byKID: map[string]*key{}, byAlg: map[string][]*key{}, jwks: []byte(`{"keys":[]}`)})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return nil, err
	}
	created := false
	for _, alg := range m.algs {
		if len(m.snap.Load().byAlg[alg]) > 0 {
			continue
		}
		err := m.createKey(ctx, alg, 1)
		switch {
		case errors.Is(err, store.ErrConflict):
			// Another replica started at the same moment and won; its
			// key is loaded below.
		case err != nil:
			return nil, err
		}
		created = true
	}
	if created {
		if err := m.reloadLocked(ctx); err != nil {
			return nil, err
		}
	}
	for _, alg := range m.algs {
		if len(m.snap.Load().byAlg[alg]) == 0 {
			return nil, fmt.Errorf("keys: no %s key in the store after creating one", alg)
		}
	}
	return m, nil
}

func newManager(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("keys: Options.Store is required")
	}
	aead, err := sealingKey(o.MasterKey)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		store:         o.Store,
		aead:          aead,
		period:        cmp.Or(o.RotationPeriod, DefaultRotationPeriod),
		retain:        cmp.Or(o.RetainAfterRotation, DefaultRetainAfterRotation),
		publishBefore: o.PublishBefore,
		reload:        cmp.Or(o.ReloadInterval, DefaultReloadInterval),
		clock:         o.Clock,
		log:           o.Logger,
		onCreate:      o.OnCreate,
	}
	if m.clock == nil {
		m.clock = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	algs := o.Algs
	if len(algs) == 0 {
		algs = []string{RS256, ES256}
	}
	for _, a := range algs {
		if a != RS256 && a != ES256 {
			return nil, fmt.Errorf("keys: Options.Algs: unsupported algorithm %q (want RS256 or ES256)", a)
		}
		if !slices.Contains(m.algs, a) {
			m.algs = append(m.algs, a)
		}
	}
	if m.period < 0 || m.retain < 0 || m.reload < 0 {
		return nil, errors.New("keys: Options: negative RotationPeriod, RetainAfterRotation or ReloadInterval")
	}
	switch {
	case m.publishBefore < 0:
		m.publishBefore = 0
	case m.publishBefore == 0:
		m.publishBefore = min(DefaultPublishBefore, m.period/4)
	case m.publishBefore >= m.period:
		return nil, fmt.Errorf("keys: Options.PublishBefore (%s) must be shorter than RotationPeriod (%s)", m.publishBefore, m.period)
	}
	return m, nil
}

// createKey generates a key, seals it and inserts it as generation gen. It
// returns store.ErrConflict (wrapped) if that generation exists.
func (m *Manager) createKey(ctx context.Context, alg string, gen int64) error {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return fmt.Errorf("%w: %s", ErrUnsupportedAlg, alg)
	}
	if err != nil {
		return fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("keys: encode %s key: %w", alg, err)
	}
	kid := newKID()
	rec := store.SigningKey{
		KID:        kid,
		Alg:        alg,
		Generation: gen,
		Sealed:     seal(m.aead, der, kid, alg),
		// Whole seconds survive every store's time type unchanged.
		CreatedAt: m.clock().UTC().Truncate(time.Second),
	}
	clear(der)
	if err := m.store.InsertSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("keys: insert %s key generation %d: %w", alg, gen, err)
	}
	m.log.InfoContext(ctx, "signing key created", "kid", kid, "alg", alg, "generation", gen,
		"signs_from", rec.CreatedAt.Add(m.publishBefore))
	if m.onCreate != nil {
		m.onCreate(kid, alg, gen)
	}
	return nil
}

// newKID returns a random, URL-safe key id (128 bits).
func newKID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Reload reads the keys from the store and swaps in a new snapshot if they
// changed. On error the current snapshot stays in use.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked(ctx)
}

func (m *Manager) reloadLocked(ctx context.Context) error {
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	old := m.snap.Load()
	var ks []*key
	changed := false
	for _, r := range recs {
		if k := old.byKID[r.KID]; k != nil && k.alg == r.Alg && k.gen == r.Generation &&
			k.createdAt.Equal(r.CreatedAt) && bytes.Equal(k.sealed, r.Sealed) {
			ks = append(ks, k)
			continue
		}
		if r.Alg == AlgSAMLIdP {
			continue // the SAML IdP's key pair: broker/saml's, not a JWS key
		}
		if r.Alg != RS256 && r.Alg != ES256 {
			// Written by a newer version during a rolling upgrade, say:
			// not ours to use or to fail on.
			m.log.WarnContext(ctx, "ignoring signing key of unknown algorithm", "kid", r.KID, "alg", r.Alg)
			continue
		}
		k, err := m.openKey(r)
		if err != nil {
			return err
		}
		ks = append(ks, k)
		changed = true
	}
	if !changed && len(ks) == len(old.byKID) {
		return nil // same keys: keep the snapshot (and its JWKS bytes)
	}
	s, err := buildSnapshot(ks)
	if err != nil {
		return err
	}
	m.snap.Store(s)
	return nil
}

// openKey unseals and parses a stored key, checking it fits its algorithm.
func (m *Manager) openKey(r store.SigningKey) (*key, error) {
	der, err := open(m.aead, r.Sealed, r.KID, r.Alg)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s (%s generation %d): %w", r.KID, r.Alg, r.Generation, err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: parse: %w", r.KID, err)
	}
	k := &key{
		kid:       r.KID,
		alg:       r.Alg,
		gen:       r.Generation,
		createdAt: r.CreatedAt,
		activeAt:  r.CreatedAt.Add(m.publishBefore),
		sealed:    r.Sealed,
	}
	switch p := p.(type) {
	case *rsa.PrivateKey:
		if r.Alg != RS256 || p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("keys: signing key %s: %d-bit RSA key does not fit %s", r.KID, p.N.BitLen(), r.Alg)
		}
		k.priv, k.pub = p, &p.PublicKey
	case *ecdsa.PrivateKey:
		if r.Alg != ES256 || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("keys: signing key %s: EC key on %s does not fit %s", r.KID, p.Curve.Params().Name, r.Alg)
		}
		k.priv, k.pub = p, &p.PublicKey
	default:
		return nil, fmt.Errorf("keys: signing key %s: unexpected key type %T", r.KID, p)
	}
	h, err := json.Marshal(map[string]string{"alg": k.alg, "kid": k.kid, "typ": "JWT"})
	if err != nil {
		return nil, err
	}
	k.header = base64.RawURLEncoding.EncodeToString(h)
	return k, nil
}

// jwk is the public part of a key as published (RFC 7517, 7518).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

func buildSnapshot(ks []*key) (*snapshot, error) {
	slices.SortFunc(ks, func(a, b *key) int {
		return cmp.Or(cmp.Compare(a.alg, b.alg), cmp.Compare(a.gen, b.gen))
	})
	s := &snapshot{byKID: make(map[string]*key, len(ks)), byAlg: map[string][]*key{}}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range ks {
		s.byKID[k.kid] = k
		s.byAlg[k.alg] = append(s.byAlg[k.alg], k)
		j := jwk{Use: "sig", Alg: k.alg, Kid: k.kid}
		switch p := k.pub.(type) {
		case *rsa.PublicKey:
			j.Kty = "RSA"
			j.N = base64.RawURLEncoding.EncodeToString(p.N.Bytes())
			j.E = base64.RawURLEncoding.EncodeToString(big.NewInt(int64(p.E)).Bytes())
		case *ecdsa.PublicKey:
			b, err := p.Bytes() // 0x04 || X || Y, each padded to 32 bytes
			if err != nil {
				return nil, fmt.Errorf("keys: encode public key %s: %w", k.kid, err)
			}
			j.Kty, j.Crv = "EC", "P-256"
			j.X = base64.RawURLEncoding.EncodeToString(b[1:33])
			j.Y = base64.RawURLEncoding.EncodeToString(b[33:])
		}
		set.Keys = append(set.Keys, j)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	s.jwks = b
	return s, nil
}

// signingKey returns the key that signs alg at time now: the newest whose
// publication delay is over or, if none is (a fresh install, or the signing
// key was deleted by hand), the oldest.
func (s *snapshot) signingKey(alg string, now time.Time) *key {
	ks := s.byAlg[alg]
	for i := len(ks) - 1; i >= 0; i-- {
		if !now.Before(ks[i].activeAt) {
			return ks[i]
		}
	}
	if len(ks) > 0 {
		return ks[0]
	}
	return nil
}

// MaybeRotate gives each algorithm whose newest key is older than
// RotationPeriod a successor. When another replica rotated first (the insert
// conflicts) it reloads and uses that replica's key.
func (m *Manager) MaybeRotate(ctx context.Context) error { return m.rotate(ctx, false) }

// Rotate gives every algorithm a successor now, whatever the age of its keys.
// The successor still waits PublishBefore before it signs; to stop using a
// compromised key at once, delete it from the store and Reload.
func (m *Manager) Rotate(ctx context.Context) error { return m.rotate(ctx, true) }

func (m *Manager) rotate(ctx context.Context, force bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap.Load()
	now := m.clock()
	var errs []error
	dirty := false
	for _, alg := range m.algs {
		var gen int64 = 1
		if ks := s.byAlg[alg]; len(ks) > 0 {
			newest := ks[len(ks)-1]
			if !force && now.Sub(newest.createdAt) < m.period {
				continue
			}
			gen = newest.gen + 1
		}
		err := m.createKey(ctx, alg, gen)
		switch {
		case err == nil:
			dirty = true
		case errors.Is(err, store.ErrConflict):
			m.log.InfoContext(ctx, "another replica rotated first", "alg", alg, "generation", gen)
			dirty = true
		default:
			errs = append(errs, err)
		}
	}
	if dirty {
		errs = append(errs, m.reloadLocked(ctx))
	}
	return errors.Join(errs...)
}

// Prune deletes keys retired for longer than RetainAfterRotation, plus one
// reload interval: another replica may sign with the old key until its next
// reload if PublishBefore is shorter than that.
func (m *Manager) Prune(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap.Load()
	now := m.clock()
	slack := m.reload + m.reload/5
	var errs []error
	deleted := false
	for alg, ks := range s.byAlg {
		// A key retires when any newer key starts signing.
		var retiredAt time.Time
		for i := len(ks) - 1; i > 0; i-- {
			if next := ks[i].activeAt; retiredAt.IsZero() || next.Before(retiredAt) {
				retiredAt = next
			}
			old := ks[i-1]
			if now.Before(retiredAt.Add(slack + m.retain)) {
				continue
			}
			if err := m.store.DeleteSigningKey(ctx, old.kid); err != nil {
				errs = append(errs, fmt.Errorf("keys: delete retired key %s: %w", old.kid, err))
				continue
			}
			deleted = true
			m.log.InfoContext(ctx, "retired signing key deleted", "kid", old.kid, "alg", alg,
				"generation", old.gen, "retired_at", retiredAt)
		}
	}
	if deleted {
		errs = append(errs, m.reloadLocked(ctx))
	}
	return errors.Join(errs...)
}

// Run reloads, rotates and prunes now and then every ReloadInterval
// (jittered, so replicas do not hit the store in step) until ctx is done.
// Errors are logged; the keys in memory stay in use.
func (m *Manager) Run(ctx context.Context) error {
	for {
		m.tick(ctx)
		// ±20% jitter.
		d := m.reload*4/5 + time.Duration(mrand.Int64N(int64(m.reload*2/5)+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (m *Manager) tick(ctx context.Context) {
	if err := m.Reload(ctx); err != nil {
		m.log.ErrorContext(ctx, "reload signing keys", "err", err)
		return // do not rotate on a stale view
	}
	if err := m.MaybeRotate(ctx); err != nil {
		m.log.ErrorContext(ctx, "rotate signing keys", "err", err)
	}
	if err := m.Prune(ctx); err != nil {
		m.log.ErrorContext(ctx, "prune signing keys", "err", err)
	}
}

// JWKS returns the JSON Web Key Set of every published key: {"keys":[...]}
// with kty, use=sig, alg, kid and the public parameters only. The bytes are
// shared: do not modify them.
func (m *Manager) JWKS() []byte { return m.snap.Load().jwks }

// PublicKey returns the public key and algorithm of a published key, to
// verify Garde's own tokens (an id_token_hint at logout, for instance).
func (m *Manager) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	k := m.snap.Load().byKID[kid]
	if k == nil {
		return nil, "", false
	}
	return k.pub, k.alg, true
}

// SigningKID returns the kid that signs alg now, or "" if alg has no key.
func (m *Manager) SigningKID(alg string) string {
	if k := m.snap.Load().signingKey(alg, m.clock()); k != nil {
		return k.kid
	}
	return ""
}
