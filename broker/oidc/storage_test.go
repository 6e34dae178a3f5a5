package oidc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
	redisstore "github.com/garde-sso/garde/broker/store/redis"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/internal/testutil"
)

const (
	testClientID = "dossier-patient"
	testRedirect = "https://dossier.chu.test/callback"
)

// Credentials a client sends in request forms. None may be stored.
var secretForm = map[string]string{
	"client_secret":    "cs-4f9a1c7e2b8d4e6fa0b1c2d3e4f5a6b7",
	"code_verifier":    "cv-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8",
	"refresh_token":    "ory_rt_rt0123456789abcdefRefreshSecret",
	"code":             "ory_ac_codeSecret0123456789abcdef",
	"client_assertion": "eyJhbGciOiJSUzI1NiJ9.assertionSecretPayload.sig",
	"password":         "Hunter2-Password-Value",
	"token":            "ory_at_tokenSecret0123456789",
}

func testClient() *Client {
	return NewClient(ClientConfig{
		ID:           testClientID,
		Name:         "Dossier patient",
		SecretSHA256: SecretDigest("irrelevant"),
		RedirectURIs: []string{testRedirect},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "profile", "offline_access"},
	})
}

// form is a realistic token or authorization request form, carrying every
// credential sanitizeForm must drop.
func form() url.Values {
	f := url.Values{
		"grant_type":   {"authorization_code"},
		"redirect_uri": {testRedirect},
		"scope":        {"openid profile offline_access"},
		"state":        {"state-abc"},
		"nonce":        {"nonce-xyz"},
	}
	for k, v := range secretForm {
		f.Set(k, v)
	}
	return f
}

func newRequest(id string) *fosite.Request {
	sess := NewSession()
	sess.Subject = "ad:alice"
	sess.SID = "sid-" + id
	sess.Claims.Subject = "ad:alice"
	sess.Claims.Extra = map[string]any{"sid": sess.SID, "name": "Alice Martin"}
	return &fosite.Request{
		ID:             id,
		RequestedAt:    time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC),
		Client:         testClient(),
		RequestedScope: fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:   fosite.Arguments{"openid", "profile", "offline_access"},
		Form:           form(),
		Session:        sess,
	}
}

func newAuthorizeRequest(id string) *fosite.AuthorizeRequest {
	u, _ := url.Parse(testRedirect)
	return &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{"code"},
		RedirectURI:          u,
		State:                "state-abc",
		ResponseMode:         fosite.ResponseModeQuery,
		HandledResponseTypes: fosite.Arguments{},
		Request:              *newRequest(id),
	}
}

// backend is an ephemeral store with a way to read the raw bytes stored
// under one of Storage's keys, and the clock to give Storage.
type backend struct {
	eph   store.Ephemeral
	raw   func(key string) []byte
	clock func() time.Time
}

func memoryBackend(t *testing.T) backend {
	c := testutil.NewClock(time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC))
	m := memory.New(c.Now)
	t.Cleanup(func() { m.Close() })
	return backend{eph: m, clock: c.Now, raw: func(key string) []byte {
		b, err := m.Get(context.Background(), key)
		if err != nil {
			t.Fatalf("raw %s: %v", key, err)
		}
		return b
	}}
}

func redisBackend(t *testing.T) backend {
	c, prefix := testutil.RedisClient(t)
	return backend{eph: redisstore.New(c, prefix), raw: func(key string) []byte {
		b, err := c.Get(context.Background(), prefix+key).Bytes()
		if err != nil {
			t.Fatalf("raw %s: %v", key, err)
		}
		return b
	}}
}

func sqliteRefresh(t *testing.T) store.RefreshTokens {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "garde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStorage(t *testing.T, b backend) *Storage {
	return NewStorage(StorageOptions{
		Clients:         []*Client{testClient()},
		Ephemeral:       b.eph,
		RefreshTokens:   sqliteRefresh(t),
		Clock:           b.clock,
		CodeLifetime:    time.Minute,
		AccessLifetime:  5 * time.Minute,
		RefreshLifetime: 24 * time.Hour,
	})
}

func TestEphemeralMemory(t *testing.T) { runEphemeral(t, memoryBackend) }
func TestEphemeralRedis(t *testing.T)  { runEphemeral(t, redisBackend) }

func runEphemeral(t *testing.T, open func(*testing.T) backend) {
	ctx := context.Background()

	t.Run("AuthorizeCode", func(t *testing.T) {
		s := newStorage(t, open(t))
		if _, err := s.GetAuthorizeCodeSession(ctx, "unknown", NewSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.CreateAuthorizeCodeSession(ctx, "sig-1", newRequest("req-1")); err != nil {
			t.Fatal(err)
		}
		sess := NewSession()
		got, err := s.GetAuthorizeCodeSession(ctx, "sig-1", sess)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetID() != "req-1" || got.GetClient().GetID() != testClientID || !got.GetGrantedScopes().Has("offline_access") ||
			sess.Subject != "ad:alice" || sess.SID != "sid-req-1" || got.GetSession() != sess {
			t.Fatalf("Get = %+v (session %+v)", got, sess)
		}
		if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-1"); err != nil {
			t.Fatalf("first invalidation: %v", err)
		}
		if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-1"); !errors.Is(err, errCodeReused) {
			t.Fatalf("second invalidation = %v, want errCodeReused", err)
		}
		// A used code still reads, with the request, so that fosite can
		// revoke what the first redemption issued.
		got, err = s.GetAuthorizeCodeSession(ctx, "sig-1", NewSession())
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Fatalf("Get of a used code = %v, want ErrInvalidatedAuthorizeCode", err)
		}
		if got == nil || got.GetID() != "req-1" {
			t.Fatalf("Get of a used code returned request %v, want req-1", got)
		}
		if id, err := s.codeRequestID(ctx, "sig-1"); err != nil || id != "req-1" {
			t.Fatalf("codeRequestID = %q, %v", id, err)
		}
	})

	t.Run("AuthorizeCodeRace", func(t *testing.T) {
		s := newStorage(t, open(t))
		if err := s.CreateAuthorizeCodeSession(ctx, "sig-race", newRequest("req-race")); err != nil {
			t.Fatal(err)
		}
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.InvalidateAuthorizeCodeSession(ctx, "sig-race")
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, errCodeReused):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent redemptions won, want exactly 1", wins, n)
		}
	})

	t.Run("AccessTokenRevocation", func(t *testing.T) {
		b := open(t)
		s := newStorage(t, b)
		if err := s.CreateAccessTokenSession(ctx, "at-before", newRequest("grant-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(ctx, "at-other-grant", newRequest("grant-2")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-before", NewSession()); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		if err := s.RevokeAccessToken(ctx, "grant-1"); err != nil {
			t.Fatal(err)
		}
		// The order is on the wall clock's nanoseconds: let it pass the
		// tombstone before issuing the next token, as any real request
		// would.
		at, err := strconv.ParseInt(string(b.raw(keyAccessRevok+"grant-1")), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		for time.Now().UnixNano() <= at {
			runtime.Gosched()
		}
		if err := s.CreateAccessTokenSession(ctx, "at-after", newRequest("grant-1")); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetAccessTokenSession(ctx, "at-before", NewSession()); !errors.Is(err, fosite.ErrInactiveToken) || got != nil {
			t.Fatalf("token issued before revocation = %v, %v; want ErrInactiveToken", got, err)
		}
		if got, err := s.GetAccessTokenSession(ctx, "at-after", NewSession()); err != nil || got.GetID() != "grant-1" {
			t.Fatalf("token issued after revocation = %v, %v", got, err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-other-grant", NewSession()); err != nil {
			t.Fatalf("another grant's token was revoked: %v", err)
		}
		if err := s.DeleteAccessTokenSession(ctx, "at-after"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-after", NewSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("deleted token = %v, want ErrNotFound", err)
		}
	})

	t.Run("ClientAssertionJTI", func(t *testing.T) {
		s := newStorage(t, open(t))
		exp := time.Now().Add(5 * time.Minute)
		if err := s.ClientAssertionJWTValid(ctx, "jti-1"); err != nil {
			t.Fatalf("fresh jti: %v", err)
		}
		if err := s.SetClientAssertionJWT(ctx, "jti-1", exp); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClientAssertionJWT(ctx, "jti-1", exp); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Fatalf("replayed jti: SetClientAssertionJWT = %v, want ErrJTIKnown", err)
		}
		if err := s.ClientAssertionJWTValid(ctx, "jti-1"); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Fatalf("replayed jti: ClientAssertionJWTValid = %v, want ErrJTIKnown", err)
		}
		if err := s.ClientAssertionJWTValid(ctx, "jti-2"); err != nil {
			t.Fatalf("another jti: %v", err)
		}
		// An exp already past still records the jti (for a moment).
		if err := s.SetClientAssertionJWT(ctx, "jti-past", time.Now().Add(-time.Hour)); err != nil {
			t.Fatalf("past exp: %v", err)
		}
		if err := s.SetClientAssertionJWT(ctx, "jti-past", time.Now().Add(-time.Hour)); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Fatalf("past exp, replayed: %v", err)
		}
		// Concurrent replays of one assertion: exactly one passes.
		const n = 10
		var wins sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range n {
			wins.Go(func() {
				err := s.SetClientAssertionJWT(ctx, "jti-race", exp)
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, fosite.ErrJTIKnown) {
					t.Error(err)
				}
			})
		}
		wins.Wait()
		if ok != 1 {
			t.Fatalf("%d of %d concurrent uses of one jti accepted", ok, n)
		}
	})

	// fosite passes the assertion's own exp, whatever the client signed:
	// centuries ahead must neither fail the store nor skip the replay
	// check.
	t.Run("ClientAssertionFarFutureExp", func(t *testing.T) {
		s := newStorage(t, open(t))
		exp := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.SetClientAssertionJWT(ctx, "jti-far", exp); err != nil {
			t.Fatalf("SetClientAssertionJWT with exp %v = %v", exp, err)
		}
		if err := s.SetClientAssertionJWT(ctx, "jti-far", exp); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Fatalf("replayed far-future jti = %v, want ErrJTIKnown", err)
		}
	})

	t.Run("NoCredentialsStored", func(t *testing.T) {
		b := open(t)
		s := newStorage(t, b)
		keys := map[string]func() error{
			keyCode + "c":     func() error { return s.CreateAuthorizeCodeSession(ctx, "c", newRequest("g")) },
			keyPKCE + "c":     func() error { return s.CreatePKCERequestSession(ctx, "c", newRequest("g")) },
			keyOIDCReq + "c":  func() error { return s.CreateOpenIDConnectSession(ctx, "c", newRequest("g")) },
			keyAccess + "a":   func() error { return s.CreateAccessTokenSession(ctx, "a", newRequest("g")) },
			keyPAR + "urn:pr": func() error { return s.CreatePARSession(ctx, "urn:pr", newAuthorizeRequest("g")) },
		}
		for key, create := range keys {
			if err := create(); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			raw := b.raw(key)
			if !bytes.Contains(raw, []byte("nonce-xyz")) {
				t.Fatalf("%s: the test reads the wrong bytes: %q", key, raw)
			}
			for name, secret := range secretForm {
				if bytes.Contains(raw, []byte(secret)) {
					t.Errorf("%s stores the %s form value", key, name)
				}
			}
		}
		// The caller's form is left alone.
		r := newRequest("g")
		if err := s.CreateAuthorizeCodeSession(ctx, "c2", r); err != nil {
			t.Fatal(err)
		}
		if r.Form.Get("client_secret") == "" {
			t.Fatal("sanitizeForm modified the caller's form")
		}
	})

	t.Run("PAR", func(t *testing.T) {
		s := newStorage(t, open(t))
		if err := s.CreatePARSession(ctx, "urn:ietf:params:oauth:request_uri:abc", newAuthorizeRequest("par-1")); err != nil {
			t.Fatal(err)
		}
		ar, err := s.GetPARSession(ctx, "urn:ietf:params:oauth:request_uri:abc")
		if err != nil {
			t.Fatal(err)
		}
		if ar.GetID() != "par-1" || ar.GetRedirectURI().String() != testRedirect || ar.GetState() != "state-abc" ||
			!ar.GetResponseTypes().ExactOne("code") || ar.GetResponseMode() != fosite.ResponseModeQuery {
			t.Fatalf("PAR round trip = %+v", ar)
		}
		if err := s.DeletePARSession(ctx, "urn:ietf:params:oauth:request_uri:abc"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPARSession(ctx, "urn:ietf:params:oauth:request_uri:abc"); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("deleted PAR = %v", err)
		}
	})

	t.Run("PKCEAndOIDC", func(t *testing.T) {
		s := newStorage(t, open(t))
		if err := s.CreatePKCERequestSession(ctx, "p", newRequest("g")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOpenIDConnectSession(ctx, "p", newRequest("g")); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetPKCERequestSession(ctx, "p", NewSession()); err != nil || r.GetRequestForm().Get("nonce") != "nonce-xyz" {
			t.Fatalf("PKCE = %v, %v", r, err)
		}
		if r, err := s.GetOpenIDConnectSession(ctx, "p", newRequest("x")); err != nil || r.GetID() != "g" {
			t.Fatalf("OIDC = %v, %v", r, err)
		}
		_ = s.DeletePKCERequestSession(ctx, "p")
		_ = s.DeleteOpenIDConnectSession(ctx, "p")
		if _, err := s.GetPKCERequestSession(ctx, "p", NewSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("deleted PKCE = %v", err)
		}
		if _, err := s.GetOpenIDConnectSession(ctx, "p", newRequest("x")); err == nil {
			t.Fatal("deleted OIDC session still reads")
		}
	})
}

func TestRefreshTokens(t *testing.T) {
	ctx := context.Background()
	b := memoryBackend(t)
	refresh := sqliteRefresh(t)
	s := NewStorage(StorageOptions{Clients: []*Client{testClient()}, Ephemeral: b.eph, RefreshTokens: refresh,
		Clock: b.clock, CodeLifetime: time.Minute, AccessLifetime: 5 * time.Minute, RefreshLifetime: 24 * time.Hour})

	if _, err := s.GetRefreshTokenSession(ctx, "unknown", NewSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v", err)
	}
	if err := s.RotateRefreshToken(ctx, "grant-1", "unknown"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("Rotate(unknown) = %v", err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newRequest("grant-1")); err != nil {
		t.Fatal(err)
	}
	row, err := refresh.GetRefreshToken(ctx, "rt-1")
	if err != nil {
		t.Fatal(err)
	}
	if row.RequestID != "grant-1" || row.ClientID != testClientID || row.Subject != "ad:alice" || row.SessionID != "sid-grant-1" || !row.Active {
		t.Fatalf("stored row = %+v", row)
	}
	for name, secret := range secretForm {
		if bytes.Contains(row.Data, []byte(secret)) {
			t.Errorf("the refresh-token row stores the %s form value", name)
		}
	}
	sess := NewSession()
	if r, err := s.GetRefreshTokenSession(ctx, "rt-1", sess); err != nil || r.GetID() != "grant-1" || sess.Subject != "ad:alice" {
		t.Fatalf("Get active = %v, %v", r, err)
	}

	// Rotation: rt-1 is replaced by rt-2 in the same family.
	if err := s.RotateRefreshToken(ctx, "grant-1", "rt-1"); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-2", "at-2", newRequest("grant-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, "grant-1", "rt-1"); !errors.Is(err, fosite.ErrSerializationFailure) {
		t.Fatalf("second rotation = %v, want ErrSerializationFailure", err)
	}
	// A rotated token reads inactive, with its request, so that fosite
	// revokes the family on reuse.
	r, err := s.GetRefreshTokenSession(ctx, "rt-1", NewSession())
	if !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("Get rotated = %v, want ErrInactiveToken", err)
	}
	if r == nil || r.GetID() != "grant-1" {
		t.Fatalf("Get rotated returned request %v", r)
	}

	// Another grant, untouched by the revocation below.
	if err := s.CreateRefreshTokenSession(ctx, "rt-other", "at-o", newRequest("grant-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshToken(ctx, "grant-1"); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{"rt-1", "rt-2"} {
		if _, err := s.GetRefreshTokenSession(ctx, sig, NewSession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("%s after revoking the family = %v, want ErrNotFound", sig, err)
		}
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt-other", NewSession()); err != nil {
		t.Fatalf("another grant's token was revoked: %v", err)
	}
	if err := s.RevokeRefreshTokenMaybeGracePeriod(ctx, "grant-2", "rt-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt-other", NewSession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("no grace period: rt-other = %v", err)
	}
}

// Of concurrent refreshes with one token exactly one rotates it.
func TestRefreshRotationRace(t *testing.T) {
	ctx := context.Background()
	b := memoryBackend(t)
	s := newStorage(t, b)
	if err := s.CreateRefreshTokenSession(ctx, "rt-race", "", newRequest("grant-r")); err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.RotateRefreshToken(ctx, "grant-r", "rt-race") })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, fosite.ErrSerializationFailure):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent rotations won", wins, n)
	}
}

func TestSanitizeForm(t *testing.T) {
	f := form()
	f.Add("scope", "extra")
	got := sanitizeForm(f)
	for k := range secretForm {
		if _, ok := got[k]; ok {
			t.Errorf("sanitizeForm kept %s", k)
		}
	}
	if got.Get("redirect_uri") != testRedirect || len(got["scope"]) != 2 || got.Get("nonce") != "nonce-xyz" {
		t.Fatalf("sanitizeForm dropped ordinary fields: %v", got)
	}
	if len(sanitizeForm(nil)) != 0 {
		t.Fatal("sanitizeForm(nil) not empty")
	}
}

func TestDecodeRecord(t *testing.T) {
	rec, err := newRecord(newRequest("req-d"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeRecord(good)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != "req-d" || back.ClientID != testClientID || !bytes.Equal(back.Session, rec.Session) || back.Form.Get("nonce") != "nonce-xyz" {
		t.Fatalf("round trip = %+v", back)
	}

	n, k := binary.Uvarint(good)
	metaLen := int(n)
	bad := map[string][]byte{
		"empty":                  nil,
		"truncated varint":       {0x80},
		"varint overflow":        bytes.Repeat([]byte{0xff}, 11),
		"length past the end":    binary.AppendUvarint(nil, uint64(len(good))),
		"huge length":            binary.AppendUvarint(nil, 1<<62),
		"max uint64 length":      binary.AppendUvarint([]byte{}, ^uint64(0)),
		"metadata not JSON":      append(binary.AppendUvarint(nil, 3), "abc{}"...),
		"metadata cut short":     good[:k+metaLen-1],
		"plain JSON, no framing": []byte(`{"id":"x","client":"dossier-patient"}`),
	}
	for name, b := range bad {
		if r, err := decodeRecord(b); err == nil {
			t.Errorf("%s: decodeRecord accepted %q as %+v", name, b, r)
		}
	}
	// A record with nothing after the metadata has an empty session, and
	// is not an error of framing.
	if r, err := decodeRecord(good[:k+metaLen]); err != nil || len(r.Session) != 0 {
		t.Fatalf("record without session = %+v, %v", r, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	rec, err := newRecord(newRequest("req-f"))
	if err != nil {
		f.Fatal(err)
	}
	good, err := encodeRecord(rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add(append(binary.AppendUvarint(nil, 2), "{}"...))
	f.Add(append(binary.AppendUvarint(nil, 2), "{}{\"x\":1}"...))
	f.Add(binary.AppendUvarint(nil, ^uint64(0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		// What decodes re-encodes, and decodes to the same framing.
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("decode of re-encoded record: %v", err)
		}
		if !bytes.Equal(r2.Session, r.Session) || r2.ID != r.ID || r2.ClientID != r.ClientID {
			t.Fatalf("round trip changed the record: %+v vs %+v", r2, r)
		}
	})
}
