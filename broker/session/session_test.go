package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
	redisstore "github.com/garde-sso/garde/broker/store/redis"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

const (
	lifetime = 8 * time.Hour
	idle     = 30 * time.Minute
)

// recording remembers every key and value written, so that tests can read
// what the store holds.
type recording struct {
	store.Ephemeral
	mu     sync.Mutex
	values map[string][]byte
	sets   int
}

func (r *recording) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.values[key] = append([]byte(nil), value...)
	r.sets++
	r.mu.Unlock()
	return r.Ephemeral.Set(ctx, key, value, ttl)
}

func (r *recording) writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sets
}

type fixture struct {
	m     *Manager
	clock *testutil.Clock
	rec   *recording
}

func newFixture(t *testing.T, lifetime, idle time.Duration) fixture {
	t.Helper()
	c := testutil.NewClock(time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC))
	mem := memory.New(c.Now)
	t.Cleanup(func() { mem.Close() })
	rec := &recording{Ephemeral: mem, values: map[string][]byte{}}
	return fixture{m: NewManager(rec, lifetime, idle, c.Now), clock: c, rec: rec}
}

// realistic is a hospital doctor signed in with a password and a smart
// card: a large but ordinary identity.
func realistic(at time.Time) connectors.Identity {
	groups := make([]string, 10)
	for i := range groups {
		groups[i] = fmt.Sprintf("GG-CHU-Service-%02d-Praticiens", i)
	}
	return connectors.Identity{
		Connector:      "ad",
		Subject:        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		Username:       "claire.martin-dupont",
		NationalID:     "810001234567",
		NationalIDType: "rpps",
		GivenName:      "Claire-Élisabeth",
		FamilyName:     "Martin-Dupont",
		DisplayName:    "Dr Claire-Élisabeth Martin-Dupont (Cardiologie)",
		Email:          "claire-elisabeth.martin-dupont@chu-exemple.fr",
		Groups:         groups,
		AMR:            []string{assurance.AMRPassword, assurance.AMRSmartCard, assurance.AMRPIN, assurance.AMRMultiFactor},
		Assurance:      assurance.High,
		AuthTime:       at,
	}
}

func TestCreateGet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	now := f.clock.Now()
	id := realistic(now.Add(-time.Second))
	s, secret, err := f.m.Create(ctx, "ad:"+id.Subject, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 43 || s.ID == "" || s.ID == secret {
		t.Fatalf("secret %q / sid %q: want a 256-bit secret distinct from the sid", secret, s.ID)
	}
	got, err := f.m.Get(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID || got.Subject != "ad:"+id.Subject || got.Level != assurance.High ||
		!slices.Equal(got.AMR, id.AMR) || !slices.Equal(got.Identity.Groups, id.Groups) ||
		got.Identity.NationalID != id.NationalID || !got.AuthTime.Equal(id.AuthTime) ||
		!got.CreatedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(lifetime)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	// The session's AMR is its own copy: the caller's slice changing later
	// does not change it.
	id.AMR[0] = "changed"
	if s.AMR[0] != assurance.AMRPassword {
		t.Fatalf("session shares the identity's AMR slice")
	}

	// Two sessions never share a secret or an id.
	s2, secret2, err := f.m.Create(ctx, "ad:other", realistic(now))
	if err != nil {
		t.Fatal(err)
	}
	if secret2 == secret || s2.ID == s.ID {
		t.Fatal("two sessions share a secret or an id")
	}

	for _, bad := range []string{"", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret)} {
		if _, err := f.m.Get(ctx, bad); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Get(%q) = %v, want ErrNoSession", bad, err)
		}
	}
}

// Neither a dump of the store nor the public sid lets anyone ride a session.
func TestStoreKeyIsNotTheSecret(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	wantKey := "sess:" + base64.RawURLEncoding.EncodeToString(sum[:])
	if len(f.rec.values) != 2 {
		t.Fatalf("keys written: %d, want the session and its sid index", len(f.rec.values))
	}
	for k, v := range f.rec.values {
		if strings.Contains(k, secret) || strings.Contains(string(v), secret) {
			t.Fatalf("the cookie secret is stored in clear under %q", k)
		}
		switch k {
		case wantKey:
		case "sid:" + s.ID:
			if string(v) != wantKey {
				t.Fatalf("sid index holds %q, want the session key", v)
			}
		default:
			t.Fatalf("unexpected key %q", k)
		}
	}

	// What a store dump or an ID token reveals is useless as a cookie.
	for _, leaked := range []string{s.ID, wantKey, strings.TrimPrefix(wantKey, "sess:"), "sid:" + s.ID} {
		if _, err := f.m.Get(ctx, leaked); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Get with %q = %v, want ErrNoSession", leaked, err)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	_, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(idle - time.Second)
	if _, err := f.m.Get(ctx, secret); err != nil {
		t.Fatalf("just before the idle timeout: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("at the idle timeout Get = %v, want ErrNoSession", err)
	}
}

func TestTouchPushesIdleTimeoutBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	// Used every 20 minutes for two hours: never idle for 30.
	for range 6 {
		f.clock.Advance(20 * time.Minute)
		got, err := f.m.Get(ctx, secret)
		if err != nil {
			t.Fatalf("session expired although used every 20 minutes: %v", err)
		}
		if err := f.m.Touch(ctx, secret, got, "dossier-patient"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.m.Get(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(f.clock.Now()) || !got.CreatedAt.Equal(s.CreatedAt) {
		t.Fatalf("LastSeen %v CreatedAt %v after touches at %v", got.LastSeen, got.CreatedAt, f.clock.Now())
	}
}

// However often it is used, a session ends at its absolute lifetime.
func TestAbsoluteLifetime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, time.Hour, idle)
	_, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		f.clock.Advance(10 * time.Minute)
		s, err := f.m.Get(ctx, secret)
		if err != nil {
			t.Fatalf("expired early: %v", err)
		}
		if err := f.m.Touch(ctx, secret, s, ""); err != nil {
			t.Fatal(err)
		}
	}
	// 50 minutes in, last touched just now.
	f.clock.Advance(10*time.Minute - time.Second)
	s, err := f.m.Get(ctx, secret)
	if err != nil {
		t.Fatalf("a second before the lifetime: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("at the absolute lifetime Get = %v, want ErrNoSession", err)
	}
	// A Touch with a session read earlier cannot revive it.
	if err := f.m.Touch(ctx, secret, s, "late-app"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Touch after the lifetime = %v, want ErrNoSession", err)
	}
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Touch revived an expired session: %v", err)
	}
}

// The store's TTL alone must not be what ends a session: a value read after
// ExpiresAt is refused even if the store still holds it.
func TestExpiredRecordRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, time.Hour, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	s.ExpiresAt = f.clock.Now().Add(-time.Second)
	b, _ := json.Marshal(s)
	if err := f.rec.Ephemeral.Set(ctx, keyOf(secret), b, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Get of a record past ExpiresAt = %v, want ErrNoSession", err)
	}
}

func TestTouchAddsApp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.Touch(ctx, secret, s, "dossier-patient"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Touch(ctx, secret, s, "laboratoire"); err != nil {
		t.Fatal(err)
	}
	got, err := f.m.Get(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Apps, []string{"dossier-patient", "laboratoire"}) {
		t.Fatalf("Apps = %q", got.Apps)
	}

	// A second sign-in to an app already in the session, within a minute,
	// is not written back; after a minute it is (the idle timer restarts).
	before := f.rec.writes()
	f.clock.Advance(30 * time.Second)
	if err := f.m.Touch(ctx, secret, got, "laboratoire"); err != nil {
		t.Fatal(err)
	}
	if f.rec.writes() != before {
		t.Fatalf("a touch within touchEvery rewrote the session")
	}
	f.clock.Advance(touchEvery)
	if err := f.m.Touch(ctx, secret, got, "laboratoire"); err != nil {
		t.Fatal(err)
	}
	got, err = f.m.Get(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(f.clock.Now()) || len(got.Apps) != 2 {
		t.Fatalf("after a touch past touchEvery: LastSeen %v (now %v), Apps %q", got.LastSeen, f.clock.Now(), got.Apps)
	}
}

func TestElevate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	id := realistic(f.clock.Now())
	id.AMR, id.Assurance = []string{assurance.AMRPassword}, assurance.Low
	s, secret, err := f.m.Create(ctx, "ad:alice", id)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Minute)
	stronger := realistic(f.clock.Now())
	if err := f.m.Elevate(ctx, secret, s, stronger); err != nil {
		t.Fatal(err)
	}
	got, err := f.m.Get(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != assurance.High || !slices.Equal(got.AMR, stronger.AMR) || !got.AuthTime.Equal(f.clock.Now()) || got.ID != s.ID {
		t.Fatalf("after Elevate: level %v amr %q auth %v", got.Level, got.AMR, got.AuthTime)
	}
}

func TestEnd(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	_, otherSecret, err := f.m.Create(ctx, "ad:bob", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.End(ctx, "not-a-secret"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("End with an unknown secret = %v", err)
	}
	ended, err := f.m.End(ctx, secret)
	if err != nil || ended.ID != s.ID {
		t.Fatalf("End = %v, %v", ended, err)
	}
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Get after End = %v", err)
	}
	if _, err := f.m.EndByID(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("End left the sid index behind: EndByID = %v", err)
	}
	if _, err := f.m.End(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("second End = %v", err)
	}
	// Only that session.
	if _, err := f.m.Get(ctx, otherSecret); err != nil {
		t.Fatalf("End removed another session: %v", err)
	}
}

func TestEndByID(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, secret, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.EndByID(ctx, "unknown-sid"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("EndByID(unknown) = %v", err)
	}
	// The secret is not an id.
	if _, err := f.m.EndByID(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("EndByID(secret) = %v", err)
	}
	ended, err := f.m.EndByID(ctx, s.ID)
	if err != nil || ended.ID != s.ID || ended.Subject != "ad:alice" {
		t.Fatalf("EndByID = %+v, %v", ended, err)
	}
	if _, err := f.m.Get(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Get after EndByID = %v", err)
	}
	if _, err := f.m.EndByID(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("second EndByID = %v", err)
	}
}

// The sid index expires with its session.
func TestEndByIDAfterExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	s, _, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(idle)
	if _, err := f.m.EndByID(ctx, s.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("EndByID of an expired session = %v", err)
	}
}

// maxSessionBytes is the product target: an SSO session fits in 2 KB in
// Redis.
const maxSessionBytes = 2048

func realisticSession(t *testing.T, m *Manager, ctx context.Context, now time.Time) (*Session, string) {
	t.Helper()
	s, secret, err := m.Create(ctx, "ad:6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", realistic(now.Add(-2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	// A day's work: tokens for several applications.
	for _, app := range []string{"dossier-patient", "laboratoire", "planning", "pharmacie", "imagerie"} {
		if err := m.Touch(ctx, secret, s, app); err != nil {
			t.Fatal(err)
		}
	}
	return s, secret
}

func TestSessionSize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	_, secret := realisticSession(t, f.m, ctx, f.clock.Now())
	b := f.rec.values[keyOf(secret)]
	t.Logf("SSO session record: %d bytes of JSON (10 groups, national id, 4 amr, 5 apps)", len(b))
	if len(b) > maxSessionBytes {
		t.Fatalf("session record is %d bytes, over the %d-byte target:\n%s", len(b), maxSessionBytes, b)
	}
}

func TestSessionSizeRedis(t *testing.T) {
	ctx := context.Background()
	c, prefix := testutil.RedisClient(t)
	m := NewManager(redisstore.New(c, prefix), lifetime, idle, nil)
	s, secret := realisticSession(t, m, ctx, time.Now())
	if got, err := m.Get(ctx, secret); err != nil || got.ID != s.ID {
		t.Fatalf("Get on Redis = %v, %v", got, err)
	}
	sum := sha256.Sum256([]byte(secret))
	key := prefix + "sess:" + base64.RawURLEncoding.EncodeToString(sum[:])
	n, err := c.StrLen(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := c.StrLen(ctx, prefix+"sid:"+s.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	ttl := c.PTTL(ctx, key).Val()
	t.Logf("Redis STRLEN %s = %d bytes (+ sid index %d bytes), PTTL %v", key, n, idx, ttl)
	if n == 0 || n > maxSessionBytes {
		t.Fatalf("session in Redis is %d bytes, want 1..%d", n, maxSessionBytes)
	}
	if ttl <= 0 || ttl > idle {
		t.Fatalf("session key PTTL = %v, want within the idle timeout %v", ttl, idle)
	}
}

func TestPersonIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lifetime, idle)
	a1, _, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	a2, secret2, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	b1, _, err := f.m.Create(ctx, "ad:bob", realistic(f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(subject string) []string {
		t.Helper()
		ss, err := f.m.ListBySubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids("ad:alice"); !slices.Equal(got, []string{a1.ID, a2.ID}) {
		t.Fatalf("alice's sessions = %v, want %v", got, []string{a1.ID, a2.ID})
	}
	if got := ids("ad:bob"); !slices.Equal(got, []string{b1.ID}) {
		t.Fatalf("bob's sessions = %v", got)
	}
	if got := ids("ad:nobody"); len(got) != 0 {
		t.Fatalf("nobody's sessions = %v", got)
	}
	if s, err := f.m.GetByID(ctx, a1.ID); err != nil || s.Subject != "ad:alice" {
		t.Fatalf("GetByID = %v, %v", s, err)
	}
	if _, err := f.m.GetByID(ctx, "forged"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("GetByID(forged) = %v", err)
	}

	// Ending by id or by cookie removes the session from the listing.
	if _, err := f.m.EndByID(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.End(ctx, secret2); err != nil {
		t.Fatal(err)
	}
	if got := ids("ad:alice"); len(got) != 0 {
		t.Fatalf("after ending both, alice's sessions = %v", got)
	}
	if _, err := f.m.GetByID(ctx, a1.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("GetByID after end = %v", err)
	}
}

// A session created late in a bucket is still listed until it expires,
// though the list's key was created earlier (its TTL is kept by
// CompareAndSwap); idle-expired sessions drop out.
func TestPersonIndexOutlivesItsSessions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, time.Hour, 50*time.Minute)
	var last *Session
	var secret string
	for range 7 {
		s, sec, err := f.m.Create(ctx, "ad:alice", realistic(f.clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		last, secret = s, sec
		f.clock.Advance(10 * time.Minute)
	}
	// Keep the last one alive until just before its absolute lifetime.
	for range 5 {
		if err := f.m.Touch(ctx, secret, last, ""); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(9 * time.Minute)
	}
	ss, err := f.m.ListBySubject(ctx, "ad:alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].ID != last.ID {
		t.Fatalf("listed %d sessions, want only the one still alive (%s)", len(ss), last.ID)
	}
}

// Concurrent sign-ins of one person on several replicas all get indexed.
func TestPersonIndexConcurrent(t *testing.T) {
	ctx := context.Background()
	for name, eph := range map[string]store.Ephemeral{"memory": memory.New(nil), "redis": func() store.Ephemeral {
		c, prefix := testutil.RedisClient(t)
		return redisstore.New(c, prefix)
	}()} {
		t.Run(name, func(t *testing.T) {
			m := NewManager(eph, lifetime, idle, nil)
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					if _, _, err := m.Create(ctx, "ad:carol", realistic(time.Now())); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			ss, err := m.ListBySubject(ctx, "ad:carol")
			if err != nil {
				t.Fatal(err)
			}
			if len(ss) != 16 {
				t.Fatalf("listed %d sessions, want 16", len(ss))
			}
		})
	}
}
