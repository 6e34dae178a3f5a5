package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// The person index lets an admin find and end every session of a person
// (global sign-out). The ephemeral store has no sets and no key scan, so
// the index is a JSON list of sids per person, updated with
// CompareAndSwap, which works the same on memory and on Redis.
//
// CompareAndSwap keeps a key's TTL, so a list created for an early session
// could expire before a later session added to it. Lists are therefore
// kept per person and per time bucket: a session goes in the bucket of its
// creation time (one bucket spans the absolute lifetime), and the bucket's
// key lives until the end of the next bucket, after which every session
// created in it has expired. A listing reads the current and the previous
// bucket. Sessions that ended early (idle timeout) stay listed until a
// listing drops them.
//
// There is deliberately no index of all sessions: one list written by
// every sign-in would be a hot key and a contention point; admins search
// by person.

// maxIndexRetries bounds the CompareAndSwap loop: beyond it, concurrent
// sign-ins of one person are not plausible, a broken store is.
const maxIndexRetries = 32

func (m *Manager) bucket(t time.Time) int64 {
	span := m.lifetime
	if span <= 0 {
		span = time.Hour
	}
	return t.UnixNano() / int64(span)
}

func indexKey(subject string, bucket int64) string {
	return "sessidx:" + strconv.FormatInt(bucket, 10) + ":" + subject
}

// indexTTL is what a bucket's key must live from now: until the end of the
// following bucket.
func (m *Manager) indexTTL(bucket int64) time.Duration {
	span := m.lifetime
	if span <= 0 {
		span = time.Hour
	}
	end := time.Unix(0, (bucket+2)*int64(span))
	return max(end.Sub(m.now()), time.Second)
}

// updateIndex applies change to the list under key with CompareAndSwap,
// creating the key when absent.
func (m *Manager) updateIndex(ctx context.Context, key string, ttl time.Duration, change func([]string) []string) error {
	for range maxIndexRetries {
		prev, err := m.eph.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			next := change(nil)
			if len(next) == 0 {
				return nil
			}
			b, _ := json.Marshal(next)
			ok, err := m.eph.SetNX(ctx, key, b, ttl)
			if err != nil {
				return fmt.Errorf("create session index: %w", err)
			}
			if ok {
				return nil
			}
			continue // another replica created it first
		} else if err != nil {
			return fmt.Errorf("read session index: %w", err)
		}
		var sids []string
		if err := json.Unmarshal(prev, &sids); err != nil {
			return fmt.Errorf("decode session index: %w", err)
		}
		next := change(sids)
		b, _ := json.Marshal(next)
		ok, err := m.eph.CompareAndSwap(ctx, key, prev, b)
		if err != nil {
			return fmt.Errorf("update session index: %w", err)
		}
		if ok {
			return nil
		}
	}
	return errors.New("update session index: too much contention")
}

func (m *Manager) indexAdd(ctx context.Context, s *Session) error {
	b := m.bucket(s.CreatedAt)
	return m.updateIndex(ctx, indexKey(s.Subject, b), m.indexTTL(b), func(sids []string) []string {
		if slices.Contains(sids, s.ID) {
			return sids
		}
		return append(sids, s.ID)
	})
}

func (m *Manager) indexRemove(ctx context.Context, s *Session) error {
	b := m.bucket(s.CreatedAt)
	return m.updateIndex(ctx, indexKey(s.Subject, b), m.indexTTL(b), func(sids []string) []string {
		return slices.DeleteFunc(sids, func(id string) bool { return id == s.ID })
	})
}

// GetByID returns the live session with public id sid, or ErrNoSession.
func (m *Manager) GetByID(ctx context.Context, sid string) (*Session, error) {
	if sid == "" {
		return nil, ErrNoSession
	}
	key, err := m.eph.Get(ctx, sidKey(sid))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	} else if err != nil {
		return nil, fmt.Errorf("read session index: %w", err)
	}
	s, err := m.load(ctx, string(key))
	if err != nil {
		return nil, err
	}
	if s.ID != sid {
		return nil, ErrNoSession
	}
	return s, nil
}

// ListBySubject returns the person's live sessions, oldest first. Entries
// of sessions that have ended are dropped from the index on the way.
func (m *Manager) ListBySubject(ctx context.Context, subject string) ([]*Session, error) {
	if subject == "" {
		return nil, nil
	}
	now := m.bucket(m.now())
	var out []*Session
	for _, b := range []int64{now - 1, now} {
		raw, err := m.eph.Get(ctx, indexKey(subject, b))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read session index: %w", err)
		}
		var sids []string
		if err := json.Unmarshal(raw, &sids); err != nil {
			return nil, fmt.Errorf("decode session index: %w", err)
		}
		var dead []string
		for _, sid := range sids {
			s, err := m.GetByID(ctx, sid)
			switch {
			case errors.Is(err, ErrNoSession):
				dead = append(dead, sid)
			case err != nil:
				return nil, err
			case s.Subject == subject:
				out = append(out, s)
			}
		}
		if len(dead) > 0 {
			// Best effort: a failed cleanup only leaves entries that the
			// next listing skips again.
			_ = m.updateIndex(ctx, indexKey(subject, b), m.indexTTL(b), func(sids []string) []string {
				return slices.DeleteFunc(sids, func(id string) bool { return slices.Contains(dead, id) })
			})
		}
	}
	slices.SortFunc(out, func(a, b *Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}
