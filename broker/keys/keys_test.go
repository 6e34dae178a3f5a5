package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/garde-sso/garde/broker/store"

	"github.com/garde-sso/garde/internal/testutil"
)

// newTestStore returns an empty signing-key store. The durable stores are not
// written yet, so this is a minimal in-memory implementation of the
// interface (memSigningKeys below); point it at SQLite once that exists. The
// tests use the store only through store.SigningKeys.
var newTestStore = func(t testing.TB) store.SigningKeys { return &memSigningKeys{} }

// memSigningKeys implements store.SigningKeys in memory with the documented
// semantics: ErrConflict on a duplicate (Alg, Generation) or KID.
type memSigningKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (s *memSigningKeys) InsertSigningKey(_ context.Context, k store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.keys {
		if e.KID == k.KID || (e.Alg == k.Alg && e.Generation == k.Generation) {
			return store.ErrConflict
		}
	}
	k.Sealed = bytes.Clone(k.Sealed)
	s.keys = append(s.keys, k)
	return nil
}

func (s *memSigningKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.SigningKey, len(s.keys))
	for i, k := range s.keys {
		k.Sealed = bytes.Clone(k.Sealed)
		out[i] = k
	}
	slices.SortFunc(out, func(a, b store.SigningKey) int {
		if c := strings.Compare(a.Alg, b.Alg); c != 0 {
			return c
		}
		return int(a.Generation - b.Generation)
	})
	return out, nil
}

func (s *memSigningKeys) DeleteSigningKey(_ context.Context, kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = slices.DeleteFunc(s.keys, func(k store.SigningKey) bool { return k.KID == kid })
	return nil
}

func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
}

func testMasterKey(b byte) []byte { return bytes.Repeat([]byte{b}, MasterKeySize) }

func mustNew(t testing.TB, o Options) *Manager {
	t.Helper()
	if o.MasterKey == nil {
		o.MasterKey = testMasterKey(1)
	}
	if o.PublishBefore == 0 {
		o.PublishBefore = NoPublishDelay
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func list(t testing.TB, st store.SigningKeys) []store.SigningKey {
	t.Helper()
	ks, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

type publishedKey struct {
	Kty, Use, Alg, Kid, Crv, X, Y, N, E, D, P, Q string
}

func jwksKeys(t testing.TB, m *Manager) map[string]publishedKey {
	t.Helper()
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	out := map[string]publishedKey{}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS publishes private parameter %q", private)
			}
		}
		out[k["kid"]] = publishedKey{Kty: k["kty"], Use: k["use"], Alg: k["alg"], Kid: k["kid"], Crv: k["crv"], X: k["x"], Y: k["y"], N: k["n"], E: k["e"]}
	}
	return out
}

func TestFirstStartCreatesSealedKeysAndSecondStartLoadsThem(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	m1 := mustNew(t, Options{Store: st})

	recs := list(t, st)
	if len(recs) != 2 {
		t.Fatalf("store holds %d keys, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Generation != 1 || r.CreatedAt.IsZero() || r.KID == "" {
			t.Errorf("record %+v: want generation 1, a kid and a creation time", r.KID)
		}
		if strings.ContainsAny(r.KID, "+/=") {
			t.Errorf("kid %q is not URL-safe", r.KID)
		}
		k := m1.snap.Load().byKID[r.KID]
		if k == nil {
			t.Fatalf("kid %s not loaded", r.KID)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		secrets := [][]byte{der}
		switch p := k.priv.(type) {
		case *rsa.PrivateKey:
			if r.Alg != RS256 || p.N.BitLen() != rsaBits {
				t.Errorf("RSA key for %s of %d bits", r.Alg, p.N.BitLen())
			}
			secrets = append(secrets, p.D.Bytes(), p.Primes[0].Bytes(), p.Primes[1].Bytes())
		case *ecdsa.PrivateKey:
			if r.Alg != ES256 || p.Curve != elliptic.P256() {
				t.Errorf("EC key for %s on %s", r.Alg, p.Curve.Params().Name)
			}
			raw, err := p.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, raw)
		}
		for _, s := range secrets {
			if bytes.Contains(r.Sealed, s) || bytes.Contains(r.Sealed, []byte(base64.StdEncoding.EncodeToString(s))) {
				t.Errorf("sealed %s key contains private key material in clear", r.Alg)
			}
		}
		aead, _ := sealingKey(testMasterKey(1))
		pt, err := open(aead, r.Sealed, r.KID, r.Alg)
		if err != nil || !bytes.Equal(pt, der) {
			t.Errorf("sealed %s key does not open to its PKCS#8 form: %v", r.Alg, err)
		}
	}

	pub := jwksKeys(t, m1)
	if len(pub) != 2 {
		t.Fatalf("JWKS has %d keys, want 2: %s", len(pub), m1.JWKS())
	}
	for kid, k := range pub {
		if k.Use != "sig" {
			t.Errorf("%s: use %q", kid, k.Use)
		}
		switch k.Alg {
		case RS256:
			if k.Kty != "RSA" || k.N == "" || k.E != "AQAB" {
				t.Errorf("RSA JWK %+v", k)
			}
		case ES256:
			if k.Kty != "EC" || k.Crv != "P-256" || len(k.X) != 43 || len(k.Y) != 43 {
				t.Errorf("EC JWK %+v", k)
			}
		default:
			t.Errorf("unexpected alg %q", k.Alg)
		}
		if _, alg, ok := m1.PublicKey(kid); !ok || alg != k.Alg {
			t.Errorf("PublicKey(%s) = %q, %v", kid, alg, ok)
		}
	}

	m2 := mustNew(t, Options{Store: st})
	if got := len(list(t, st)); got != 2 {
		t.Errorf("second start: store holds %d keys, want still 2", got)
	}
	if !bytes.Equal(m1.JWKS(), m2.JWKS()) {
		t.Errorf("second manager publishes another JWKS:\n%s\n%s", m1.JWKS(), m2.JWKS())
	}
	for _, alg := range []string{RS256, ES256} {
		if m1.SigningKID(alg) != m2.SigningKID(alg) || m1.SigningKID(alg) == "" {
			t.Errorf("%s signing kid %q vs %q", alg, m1.SigningKID(alg), m2.SigningKID(alg))
		}
	}
	// A token from one replica verifies on the other.
	tok, _, err := m1.Signer(ES256).Generate(ctx, testClaims(time.Now()), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Signer(RS256).Validate(ctx, tok); err != nil {
		t.Errorf("token from replica 1 rejected by replica 2: %v", err)
	}
	// Reloading an unchanged store keeps the very same snapshot.
	before := m2.snap.Load()
	if err := m2.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if m2.snap.Load() != before {
		t.Error("Reload of an unchanged store rebuilt the snapshot")
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	mustNew(t, Options{Store: st, Algs: []string{ES256}, MasterKey: testMasterKey(1)})

	_, err := New(ctx, Options{Store: st, Algs: []string{ES256}, MasterKey: testMasterKey(2)})
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("New with another master key: %v, want ErrWrongMasterKey", err)
	}
	if !strings.Contains(err.Error(), "wrong master key") {
		t.Errorf("error does not say what is wrong: %v", err)
	}
	if got := len(list(t, st)); got != 1 {
		t.Errorf("failed start changed the store: %d keys", got)
	}

	_, err = New(ctx, Options{Store: st, MasterKey: []byte("short")})
	if err == nil || !strings.Contains(err.Error(), "32") {
		t.Errorf("short master key: %v", err)
	}
}

func TestSealedKeyCannotMoveToAnotherRow(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t)
	m := mustNew(t, Options{Store: src, Algs: []string{ES256}, RotationPeriod: time.Hour})
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs := list(t, src)
	if len(recs) != 2 {
		t.Fatalf("%d keys after Rotate", len(recs))
	}
	// Copy generation 2's sealed key into generation 1's row.
	dst := newTestStore(t)
	forged := recs[0]
	forged.Sealed = recs[1].Sealed
	if err := dst.InsertSigningKey(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Store: dst, Algs: []string{ES256}, MasterKey: testMasterKey(1)}); !errors.Is(err, ErrWrongMasterKey) {
		t.Errorf("sealed blob under another kid opened: %v", err)
	}
}

func TestRotationAndPruning(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	clk := newClock()
	const retain = 10 * time.Hour
	m := mustNew(t, Options{Store: st, Algs: []string{ES256}, Clock: clk.Now,
		RotationPeriod: 30 * 24 * time.Hour, RetainAfterRotation: retain})
	kid1 := m.SigningKID(ES256)
	oldToken, _, err := m.Signer(ES256).Generate(ctx, testClaims(time.Now()), jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(29 * 24 * time.Hour)
	if err := m.MaybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(list(t, st)); got != 1 {
		t.Fatalf("rotated before the period: %d keys", got)
	}

	clk.Advance(24*time.Hour + time.Second)
	if err := m.MaybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs := list(t, st)
	if len(recs) != 2 || recs[1].Generation != 2 {
		t.Fatalf("after the period: %+v, want generations 1 and 2", recs)
	}
	kid2 := m.SigningKID(ES256)
	if kid2 == kid1 || kid2 != recs[1].KID {
		t.Fatalf("signing kid %q, want the new key %q", kid2, recs[1].KID)
	}
	if err := m.MaybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(list(t, st)); got != 2 {
		t.Fatalf("rotated twice: %d keys", got)
	}

	// The retired key stays published while tokens it signed may live...
	slack := DefaultReloadInterval + DefaultReloadInterval/5
	clk.Advance(retain + slack - time.Second)
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := jwksKeys(t, m)[kid1]; !ok {
		t.Fatal("retired key left the JWKS before RetainAfterRotation")
	}
	if _, err := m.Signer(ES256).Validate(ctx, oldToken); err != nil {
		t.Errorf("token of the retired key no longer verifies: %v", err)
	}
	// ...and is deleted after.
	clk.Advance(time.Second)
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := jwksKeys(t, m)[kid1]; ok {
		t.Error("retired key still published after RetainAfterRotation")
	}
	if _, _, ok := m.PublicKey(kid1); ok {
		t.Error("PublicKey still knows the pruned key")
	}
	if recs := list(t, st); len(recs) != 1 || recs[0].KID != kid2 {
		t.Errorf("store after prune: %+v", recs)
	}
	if _, err := m.Signer(ES256).Validate(ctx, oldToken); err == nil {
		t.Error("token of a pruned key still verifies")
	}
	if m.SigningKID(ES256) != kid2 {
		t.Error("pruning changed the signing key")
	}
}

func TestSuccessorIsPublishedBeforeItSigns(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	clk := newClock()
	const publish = 2 * time.Hour
	m := mustNew(t, Options{Store: st, Algs: []string{ES256}, Clock: clk.Now,
		RotationPeriod: 24 * time.Hour, PublishBefore: publish, RetainAfterRotation: time.Hour})
	other := mustNew(t, Options{Store: st, Algs: []string{ES256}, Clock: clk.Now,
		RotationPeriod: 24 * time.Hour, PublishBefore: publish, RetainAfterRotation: time.Hour})
	kid1 := m.SigningKID(ES256)
	if kid1 == "" {
		t.Fatal("a fresh install must sign at once")
	}

	clk.Advance(24 * time.Hour)
	if err := m.MaybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	recs := list(t, st)
	kid2 := recs[1].KID
	for _, r := range []*Manager{m, other} {
		if _, ok := jwksKeys(t, r)[kid2]; !ok {
			t.Error("successor not published at once")
		}
		if got := r.SigningKID(ES256); got != kid1 {
			t.Errorf("successor signs before PublishBefore: %s", got)
		}
	}

	// Pruning counts from when the successor started signing.
	clk.Advance(publish - time.Second)
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if m.SigningKID(ES256) != kid1 || len(list(t, st)) != 2 {
		t.Fatal("switched or pruned too early")
	}
	clk.Advance(time.Second)
	for _, r := range []*Manager{m, other} {
		if got := r.SigningKID(ES256); got != kid2 {
			t.Errorf("after PublishBefore the signing key is %s, want %s", got, kid2)
		}
		tok, _, err := r.Signer(ES256).Generate(ctx, testClaims(time.Now()), jwt.NewHeaders())
		if err != nil {
			t.Fatal(err)
		}
		if h := tokenHeader(t, tok); h["kid"] != kid2 {
			t.Errorf("token signed with %v, want %s", h["kid"], kid2)
		}
	}
	clk.Advance(time.Hour + DefaultReloadInterval)
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if len(list(t, st)) != 2 {
		t.Fatal("pruned before RetainAfterRotation counted from activation")
	}
	clk.Advance(DefaultReloadInterval / 5)
	if err := m.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if recs := list(t, st); len(recs) != 1 || recs[0].KID != kid2 {
		t.Errorf("after retention: %+v", recs)
	}
}

func TestConcurrentRotationMakesOneGeneration(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	clk := newClock()
	opts := Options{Store: st, Clock: clk.Now, RotationPeriod: 24 * time.Hour}
	ms := []*Manager{mustNew(t, opts), mustNew(t, opts)}
	clk.Advance(25 * time.Hour)

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Go(func() {
			<-start
			errs[i] = m.MaybeRotate(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("manager %d: %v", i, err)
		}
	}

	gens := map[string][]int64{}
	for _, r := range list(t, st) {
		gens[r.Alg] = append(gens[r.Alg], r.Generation)
	}
	for _, alg := range []string{RS256, ES256} {
		if !slices.Equal(gens[alg], []int64{1, 2}) {
			t.Errorf("%s generations %v, want [1 2]", alg, gens[alg])
		}
		if a, b := ms[0].SigningKID(alg), ms[1].SigningKID(alg); a != b {
			t.Errorf("%s: managers sign with %s and %s", alg, a, b)
		}
	}
	if !bytes.Equal(ms[0].JWKS(), ms[1].JWKS()) {
		t.Error("managers publish different JWKS")
	}
}

func TestConcurrentFirstStartMakesOneKey(t *testing.T) {
	st := newTestStore(t)
	ms := make([]*Manager, 3)
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range ms {
		wg.Go(func() {
			<-start
			ms[i], errs[i] = New(context.Background(), Options{Store: st, Algs: []string{ES256},
				MasterKey: testMasterKey(1), Logger: slog.New(slog.DiscardHandler)})
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if recs := list(t, st); len(recs) != 1 {
		t.Fatalf("%d keys after concurrent first start, want 1", len(recs))
	}
	for _, m := range ms[1:] {
		if m == nil || m.SigningKID(ES256) != ms[0].SigningKID(ES256) {
			t.Fatal("replicas disagree on the first key")
		}
	}
}

func TestRunRotates(t *testing.T) {
	st := newTestStore(t)
	clk := newClock()
	m := mustNew(t, Options{Store: st, Algs: []string{ES256}, Clock: clk.Now,
		RotationPeriod: time.Hour, ReloadInterval: 10 * time.Millisecond})
	kid1 := m.SigningKID(ES256)
	clk.Advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for m.SigningKID(ES256) == kid1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if m.SigningKID(ES256) == kid1 {
		t.Error("Run did not rotate")
	}
}

func testClaims(now time.Time) jwt.MapClaims {
	c := &jwt.IDTokenClaims{
		JTI:                                 "0b5d3f0e-8a77-4c8a-9d37-5b8f0e2a4c11",
		Issuer:                              "https://sso.example.org",
		Subject:                             "248289761001",
		Audience:                            []string{"wiki.example.org"},
		Nonce:                               "n-0S6_WzA2Mj",
		ExpiresAt:                           now.Add(time.Hour),
		IssuedAt:                            now,
		RequestedAt:                         now,
		AuthTime:                            now.Add(-time.Minute),
		AccessTokenHash:                     "77QmUPtjPfzWtF2AnpK9RQ",
		AuthenticationContextClassReference: "urn:garde:loa:substantial",
		AuthenticationMethodsReferences:     []string{"pwd", "hwk"},
		Extra: map[string]any{
			"sid":                "f1e2d3c4-b5a6-4789-9abc-def012345678",
			"email":              "jane.doe@example.org",
			"email_verified":     true,
			"name":               "Jane Doe",
			"preferred_username": "jdoe",
			"groups":             []string{"staff", "wiki-editors"},
		},
	}
	return c.ToMapClaims()
}

func tokenHeader(t testing.TB, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTokensVerifyWithJWKS checks our JWS with two independent libraries,
// given only the published JWKS.
func TestTokensVerifyWithJWKS(t *testing.T) {
	ctx := context.Background()
	m := mustNew(t, Options{Store: newTestStore(t)})
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			h := jwt.NewHeaders()
			h.Add("alg", alg)
			tok, sig, err := m.Signer(RS256).Generate(ctx, testClaims(time.Now()), h)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(tok, "."+sig) {
				t.Error("returned signature is not the token's")
			}
			hdr := tokenHeader(t, tok)
			if hdr["alg"] != alg || hdr["typ"] != "JWT" || hdr["kid"] != m.SigningKID(alg) {
				t.Errorf("header %v", hdr)
			}

			// go-jose v3
			parsed, err := josejwt.ParseSigned(tok)
			if err != nil {
				t.Fatal(err)
			}
			keys := set.Key(parsed.Headers[0].KeyID)
			if len(keys) != 1 || keys[0].Algorithm != alg || !keys[0].IsPublic() {
				t.Fatalf("JWKS lookup: %+v", keys)
			}
			var cl josejwt.Claims
			if err := parsed.Claims(keys[0].Key, &cl); err != nil {
				t.Fatalf("go-jose: %v", err)
			}
			if cl.Subject != "248289761001" || cl.Issuer != "https://sso.example.org" {
				t.Errorf("claims %+v", cl)
			}

			// golang-jwt v5
			got, err := gjwt.Parse(tok, func(tk *gjwt.Token) (any, error) {
				kid, _ := tk.Header["kid"].(string)
				ks := set.Key(kid)
				if len(ks) != 1 {
					return nil, errors.New("unknown kid")
				}
				return ks[0].Key, nil
			}, gjwt.WithValidMethods([]string{alg}), gjwt.WithIssuer("https://sso.example.org"), gjwt.WithAudience("wiki.example.org"))
			if err != nil || !got.Valid {
				t.Fatalf("golang-jwt: %v", err)
			}

			// And our own Decode, via the fosite interface.
			dt, err := m.Signer(ES256).Decode(ctx, tok)
			if err != nil || !dt.Valid() || dt.Claims["sub"] != "248289761001" {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
}

func TestHeaderAlgSelectsKey(t *testing.T) {
	ctx := context.Background()
	m := mustNew(t, Options{Store: newTestStore(t)})
	s := m.Signer("") // RS256 by default
	for _, tc := range []struct {
		header jwt.Mapper
		alg    string
	}{
		{nil, RS256},
		{(*jwt.Headers)(nil), RS256},
		{jwt.NewHeaders(), RS256},
		{&jwt.Headers{Extra: map[string]any{"alg": ES256}}, ES256},
		{&jwt.Headers{Extra: map[string]any{"alg": RS256, "typ": "at+jwt", "kid": "forged"}}, RS256},
	} {
		tok, _, err := s.Generate(ctx, testClaims(time.Now()), tc.header)
		if err != nil {
			t.Fatalf("%v: %v", tc.header, err)
		}
		h := tokenHeader(t, tok)
		if h["alg"] != tc.alg || h["kid"] != m.SigningKID(tc.alg) {
			t.Errorf("%v: header %v, want alg %s", tc.header, h, tc.alg)
		}
		if hh, ok := tc.header.(*jwt.Headers); ok && hh != nil && hh.Extra["typ"] != nil && h["typ"] != hh.Extra["typ"] {
			t.Errorf("typ not kept: %v", h)
		}
		if _, err := s.Validate(ctx, tok); err != nil {
			t.Errorf("%v: %v", tc.header, err)
		}
	}

	onlyES := mustNew(t, Options{Store: newTestStore(t), Algs: []string{ES256}})
	for _, alg := range []string{"HS256", "none", RS256} {
		h := jwt.NewHeaders()
		h.Add("alg", alg)
		if _, _, err := onlyES.Signer(ES256).Generate(ctx, testClaims(time.Now()), h); !errors.Is(err, ErrUnsupportedAlg) {
			t.Errorf("alg %s: %v, want ErrUnsupportedAlg", alg, err)
		}
	}
}

func TestDecodeRejectsForgeries(t *testing.T) {
	ctx := context.Background()
	m := mustNew(t, Options{Store: newTestStore(t)})
	s := m.Signer(ES256)
	rsKID, esKID := m.SigningKID(RS256), m.SigningKID(ES256)
	claims := testClaims(time.Now())
	good, _, err := s.Generate(ctx, claims, jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	payload := parts[1]

	// Flip one bit of the signature.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 1
	flipped := parts[0] + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)

	// Signed with a key of our own making, under our kid.
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreign},
		(&jose.SignerOptions{}).WithHeader("kid", esKID))
	if err != nil {
		t.Fatal(err)
	}
	foreignTok, err := josejwt.Signed(fs).Claims(map[string]any(claims)).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	// HS256 keyed with the RSA public key (algorithm confusion).
	pub, _, _ := m.PublicKey(rsKID)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	hsInput := enc(map[string]string{"alg": "HS256", "kid": rsKID, "typ": "JWT"}) + "." + payload
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))
	hsTok := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// A valid ES256 signature presented as RS256 / under the RS256 kid.
	algSwap := enc(map[string]string{"alg": "ES256", "kid": rsKID, "typ": "JWT"}) + "." + payload + "." + parts[2]

	for name, tok := range map[string]string{
		"alg none":           enc(map[string]string{"alg": "none", "kid": esKID}) + "." + payload + ".",
		"alg none, no kid":   enc(map[string]string{"alg": "none"}) + "." + payload + ".",
		"flipped signature":  flipped,
		"foreign key":        foreignTok,
		"HS256 confusion":    hsTok,
		"kid of another alg": algSwap,
		"unknown kid":        enc(map[string]string{"alg": "ES256", "kid": "nope"}) + "." + payload + "." + parts[2],
		"no signature":       parts[0] + "." + payload + ".",
		"JSON serialization": `{"payload":"` + payload + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		"garbage":            "a.b.c",
		"empty":              "",
	} {
		if _, err := s.Decode(ctx, tok); err == nil {
			t.Errorf("%s: Decode accepted it", name)
		}
		if _, err := s.Validate(ctx, tok); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}

	// An authentic but expired token decodes with ValidationErrorExpired and
	// its claims (fosite accepts an expired id_token_hint).
	old := testClaims(time.Now().Add(-2 * time.Hour))
	expired, _, err := s.Generate(ctx, old, jwt.NewHeaders())
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.Decode(ctx, expired)
	var ve *jwt.ValidationError
	if !errors.As(err, &ve) || !ve.Has(jwt.ValidationErrorExpired) || tk == nil || tk.Claims["sub"] != "248289761001" {
		t.Errorf("expired token: %v", err)
	}
}

// TestFositeIDTokenStrategy signs through fosite's own OIDC strategy, with the
// header alg the OIDC layer sets for an ES256 client.
func TestFositeIDTokenStrategy(t *testing.T) {
	ctx := context.Background()
	m := mustNew(t, Options{Store: newTestStore(t)})
	strategy := &openid.DefaultStrategy{
		Signer: m.Signer(RS256),
		Config: &fosite.Config{IDTokenIssuer: "https://sso.example.org", MinParameterEntropy: 8},
	}
	sess := openid.NewDefaultSession()
	sess.Claims.Subject = "248289761001"
	sess.Headers.Add("alg", ES256)
	req := fosite.NewAccessRequest(sess)
	req.Client = &fosite.DefaultClient{ID: "wiki"}
	req.Form.Set("nonce", "abcdefghijkl")
	tok, err := strategy.GenerateIDToken(ctx, time.Hour, req)
	if err != nil {
		t.Fatal(err)
	}
	if h := tokenHeader(t, tok); h["alg"] != ES256 || h["kid"] != m.SigningKID(ES256) {
		t.Errorf("header %v", h)
	}

	// Our token as id_token_hint goes through Decode.
	req2 := fosite.NewAccessRequest(sess)
	req2.Client = &fosite.DefaultClient{ID: "wiki"}
	req2.Form.Set("id_token_hint", tok)
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, req2); err != nil {
		t.Errorf("id_token_hint: %v", err)
	}
}

func TestLoadMasterKey(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	dir := t.TempDir()
	file := filepath.Join(dir, "master.key")
	if err := os.WriteFile(file, []byte("\n  "+hex.EncodeToString(key)+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]string{
		"hex":     hex.EncodeToString(key),
		"HEX":     strings.ToUpper(hex.EncodeToString(key)),
		"std":     base64.StdEncoding.EncodeToString(key),
		"raw std": base64.RawStdEncoding.EncodeToString(key),
		"url":     base64.URLEncoding.EncodeToString(key),
		"raw url": " " + base64.RawURLEncoding.EncodeToString(key) + "\n",
	} {
		got, err := LoadMasterKey(env, "")
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := LoadMasterKey("", file); err != nil || !bytes.Equal(got, key) {
		t.Errorf("file: %v", err)
	}

	short := base64.StdEncoding.EncodeToString(key[:16])
	long := hex.EncodeToString(append(key, key...))
	for name, tc := range map[string]struct{ env, file, want string }{
		"16 bytes":    {short, "", "16 bytes"},
		"64 bytes":    {long, "", "64 bytes"},
		"not encoded": {"correct horse battery staple!!", "", "neither hex nor base64"},
		"bad hex":     {strings.Repeat("zz", 32), "", "not valid hex"},
		"both":        {short, file, "only one"},
		"none":        {"", "", "no master key"},
		"missing":     {"", filepath.Join(dir, "absent"), "no such file"},
	} {
		_, err := LoadMasterKey(tc.env, tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, tc.want)
			continue
		}
		if tc.env != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.env)) {
			t.Errorf("%s: error reveals the key: %v", name, err)
		}
	}
	if _, err := LoadMasterKey("", ""); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("none: %v", err)
	}

	gen := filepath.Join(dir, "generated.key")
	if err := GenerateMasterKeyFile(gen); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(gen)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	k1, err := LoadMasterKey("", gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := GenerateMasterKeyFile(gen); err != nil {
		t.Fatal(err)
	}
	if k2, _ := LoadMasterKey("", gen); !bytes.Equal(k1, k2) {
		t.Error("GenerateMasterKeyFile replaced an existing key")
	}
}

func TestOptionsValidation(t *testing.T) {
	ctx := context.Background()
	for name, o := range map[string]Options{
		"no store":          {MasterKey: testMasterKey(1)},
		"bad alg":           {Store: newTestStore(t), MasterKey: testMasterKey(1), Algs: []string{"HS256"}},
		"publish >= period": {Store: newTestStore(t), MasterKey: testMasterKey(1), RotationPeriod: time.Hour, PublishBefore: time.Hour},
	} {
		if _, err := New(ctx, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	m, err := newManager(Options{Store: newTestStore(t), MasterKey: testMasterKey(1), RotationPeriod: 2 * time.Hour})
	if err != nil || m.publishBefore != 30*time.Minute {
		t.Errorf("default PublishBefore for a 2h period: %v, %v", m.publishBefore, err)
	}
	m, err = newManager(Options{Store: newTestStore(t), MasterKey: testMasterKey(1)})
	if err != nil || m.publishBefore != DefaultPublishBefore || m.period != DefaultRotationPeriod || !slices.Equal(m.algs, []string{RS256, ES256}) {
		t.Errorf("defaults: %+v, %v", m, err)
	}
}

func benchmarkSign(b *testing.B, alg string) {
	ctx := context.Background()
	m := mustNew(b, Options{Store: newTestStore(b), Algs: []string{alg}})
	s := m.Signer(alg)
	claims := testClaims(time.Now())
	header := jwt.NewHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Generate(ctx, claims, header); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, ES256) }
func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, RS256) }

// BenchmarkFositeDefaultSignerES256 is the reference: fosite's DefaultSigner
// (go-jose) with the same key and claims.
func BenchmarkFositeDefaultSignerES256(b *testing.B) {
	ctx := context.Background()
	m := mustNew(b, Options{Store: newTestStore(b), Algs: []string{ES256}})
	priv := m.snap.Load().signingKey(ES256, time.Now()).priv
	s := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return priv, nil }}
	claims := testClaims(time.Now())
	header := jwt.NewHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Generate(ctx, claims, header); err != nil {
			b.Fatal(err)
		}
	}
}
