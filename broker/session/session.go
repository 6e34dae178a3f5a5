// Package session keeps SSO sessions: who signed in, with which factors, at
// what level, when, and into which applications.
//
// A session lives in the ephemeral store under the SHA-256 of a random
// cookie secret, so neither a store dump nor a token's public `sid` lets
// anyone ride the session. It expires after an idle timeout (each use
// pushes it back) and in any case at its absolute lifetime.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// ErrNoSession means there is no valid session for the cookie or id.
var ErrNoSession = errors.New("no SSO session")

// Session is one SSO session.
type Session struct {
	// ID is the public session id (the `sid` claim).
	ID string `json:"sid"`
	// Subject is the person's stable identifier in tokens.
	Subject  string              `json:"sub"`
	Identity connectors.Identity `json:"idt"`
	// AMR and Level are what the session has proven so far.
	AMR       []string        `json:"amr"`
	Level     assurance.Level `json:"lvl"`
	AuthTime  time.Time       `json:"auth"`
	CreatedAt time.Time       `json:"created"`
	LastSeen  time.Time       `json:"seen"`
	ExpiresAt time.Time       `json:"exp"`
	// Apps are the clients that received tokens in this session.
	Apps []string `json:"apps,omitempty"`
	// Emergencies are the emergency accesses (bris de glace) declared in
	// this session, by application: each opens that application only,
	// until its end.
	Emergencies map[string]Emergency `json:"emg,omitempty"`
}

// Emergency is an emergency access declared for one application.
type Emergency struct {
	// Reason is the TRE_R248 access mode: bris_de_glace or centre_15.
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// EmergencyFor returns the emergency access declared for app, if it is
// still running at now.
func (s *Session) EmergencyFor(app string, now time.Time) (Emergency, bool) {
	em, ok := s.Emergencies[app]
	if !ok || !now.Before(em.Until) {
		return Emergency{}, false
	}
	return em, true
}

// Manager creates, finds and ends sessions.
type Manager struct {
	eph      store.Ephemeral
	lifetime time.Duration
	idle     time.Duration
	now      func() time.Time
}

// NewManager returns a Manager. lifetime is absolute; idle is the longest
// gap between two uses.
func NewManager(eph store.Ephemeral, lifetime, idle time.Duration, clock func() time.Time) *Manager {
	if clock == nil {
		clock = time.Now
	}
	return &Manager{eph: eph, lifetime: lifetime, idle: idle, now: clock}
}

func keyOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sess:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func sidKey(sid string) string { return "sid:" + sid }

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create opens a session for id and returns it with the cookie secret.
func (m *Manager) Create(ctx context.Context, subject string, id connectors.Identity) (*Session, string, error) {
	now := m.now().UTC()
	s := &Session{
		ID:        random(16),
		Subject:   subject,
		Identity:  id,
		AMR:       slices.Clone(id.AMR),
		Level:     id.Assurance,
		AuthTime:  id.AuthTime.UTC(),
		CreatedAt: now,
		LastSeen:  now,
		ExpiresAt: now.Add(m.lifetime),
	}
	secret := random(32)
	if err := m.save(ctx, s, keyOf(secret)); err != nil {
		return nil, "", err
	}
	// A session the person index does not list could not be ended by an
	// admin's global sign-out: without the index entry there is no session.
	if err := m.indexAdd(ctx, s); err != nil {
		_ = m.eph.Delete(ctx, keyOf(secret), sidKey(s.ID))
		return nil, "", err
	}
	return s, secret, nil
}

func (m *Manager) ttl(s *Session) time.Duration {
	return min(m.idle, s.ExpiresAt.Sub(m.now()))
}

func (m *Manager) save(ctx context.Context, s *Session, key string) error {
	ttl := m.ttl(s)
	if ttl <= 0 {
		return ErrNoSession
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	if err := m.eph.Set(ctx, key, b, ttl); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	// The sid index lets logout by id_token_hint find the session.
	if err := m.eph.Set(ctx, sidKey(s.ID), []byte(key), ttl); err != nil {
		return fmt.Errorf("store session index: %w", err)
	}
	return nil
}

func (m *Manager) load(ctx context.Context, key string) (*Session, error) {
	b, err := m.eph.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	} else if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	if !m.now().Before(s.ExpiresAt) {
		return nil, ErrNoSession
	}
	return &s, nil
}

// Get returns the session of a cookie secret.
func (m *Manager) Get(ctx context.Context, secret string) (*Session, error) {
	if secret == "" {
		return nil, ErrNoSession
	}
	return m.load(ctx, keyOf(secret))
}

// touchEvery bounds how often a use of the session is written back: an SSO
// sign-in to an application already in the session within this interval
// does not rewrite it. The idle timeout is therefore honoured to within
// this interval, in exchange for one store write less on the hot path.
const touchEvery = time.Minute

// Touch records a use of the session (idle timeout restarts) and that app
// received tokens in it.
func (m *Manager) Touch(ctx context.Context, secret string, s *Session, app string) error {
	now := m.now().UTC()
	if (app == "" || slices.Contains(s.Apps, app)) && now.Sub(s.LastSeen) < touchEvery && app != "" {
		return nil
	}
	s.LastSeen = now
	if app != "" && !slices.Contains(s.Apps, app) {
		s.Apps = append(s.Apps, app)
	}
	return m.save(ctx, s, keyOf(secret))
}

// Elevate replaces the session's proof with a fresh authentication (a new
// sign-in within the session, e.g. after prompt=login).
func (m *Manager) Elevate(ctx context.Context, secret string, s *Session, id connectors.Identity) error {
	s.Identity = id
	s.AMR = slices.Clone(id.AMR)
	s.Level = id.Assurance
	s.AuthTime = id.AuthTime.UTC()
	return m.Touch(ctx, secret, s, "")
}

// DeclareEmergency records an emergency access to app in the session.
func (m *Manager) DeclareEmergency(ctx context.Context, secret string, s *Session, app string, em Emergency) error {
	if s.Emergencies == nil {
		s.Emergencies = map[string]Emergency{}
	}
	em.Until = em.Until.UTC()
	s.Emergencies[app] = em
	s.LastSeen = m.now().UTC()
	return m.save(ctx, s, keyOf(secret))
}

// End deletes the session of a cookie secret.
func (m *Manager) End(ctx context.Context, secret string) (*Session, error) {
	s, err := m.Get(ctx, secret)
	if err != nil {
		return nil, err
	}
	if err := m.eph.Delete(ctx, keyOf(secret), sidKey(s.ID)); err != nil {
		return s, err
	}
	// The index entry of an ended session is only clutter: a failure to
	// remove it is harmless (listings skip and drop dead entries).
	_ = m.indexRemove(ctx, s)
	return s, nil
}

// EndByID deletes the session with public id sid (logout with an
// id_token_hint from another browser tab or a back-channel).
func (m *Manager) EndByID(ctx context.Context, sid string) (*Session, error) {
	key, err := m.eph.Get(ctx, sidKey(sid))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	} else if err != nil {
		return nil, err
	}
	s, err := m.load(ctx, string(key))
	if err != nil {
		_ = m.eph.Delete(ctx, sidKey(sid))
		return nil, err
	}
	if err := m.eph.Delete(ctx, string(key), sidKey(sid)); err != nil {
		return s, err
	}
	_ = m.indexRemove(ctx, s)
	return s, nil
}
