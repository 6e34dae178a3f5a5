// Package throttle limits password attempts per account and per client
// address, counted in the ephemeral store so that every replica counts
// together.
//
// The per-account limit must stay below the directory's own lockout
// threshold: an attacker guessing passwords through Garde is stopped by
// Garde, and Garde is never the reason an AD account locks.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// ErrThrottled is returned when too many attempts failed recently.
var ErrThrottled = errors.New("too many failed attempts")

// Limiter counts failed password attempts.
type Limiter struct {
	eph        store.Ephemeral
	accountMax int64
	addressMax int64
	window     time.Duration
}

// New returns a Limiter allowing accountMax failures per account and
// addressMax per client address within window.
func New(eph store.Ephemeral, accountMax, addressMax int, window time.Duration) *Limiter {
	return &Limiter{eph: eph, accountMax: int64(accountMax), addressMax: int64(addressMax), window: window}
}

// accountKey hashes the normalised username: the counter must not reveal
// usernames (or passwords typed in the username field) to whoever reads
// Redis.
func accountKey(username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return "thr:acct:" + hex.EncodeToString(sum[:16])
}

func addressKey(addr string) string { return "thr:addr:" + addr }

func (l *Limiter) count(ctx context.Context, key string) (int64, error) {
	b, err := l.eph.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("read attempt counter: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attempt counter %q: %w", key, err)
	}
	return n, nil
}

// Check reserves an attempt for the account, or returns ErrThrottled when
// the account or the address has used up its attempts; the password is then
// not even sent to the directory.
//
// The reservation is the atomic increment itself: of concurrent attempts on
// one account, at most the limit get through, so racing requests cannot
// push the directory past its own lockout threshold. A successful sign-in
// clears the account's count (Success); a failed one stays counted.
func (l *Limiter) Check(ctx context.Context, username, addr string) error {
	if addr != "" {
		n, err := l.count(ctx, addressKey(addr))
		if err != nil {
			return err
		}
		if n >= l.addressMax {
			return ErrThrottled
		}
	}
	n, err := l.eph.Incr(ctx, accountKey(username), l.window)
	if err != nil {
		return fmt.Errorf("count attempt: %w", err)
	}
	if n > l.accountMax {
		return ErrThrottled
	}
	return nil
}

// Failure records a failed attempt from the address (Check already counted
// it for the account).
func (l *Limiter) Failure(ctx context.Context, _ string, addr string) error {
	if addr == "" {
		return nil
	}
	if _, err := l.eph.Incr(ctx, addressKey(addr), l.window); err != nil {
		return fmt.Errorf("count failed attempt: %w", err)
	}
	return nil
}

// Success clears the account's counter (not the address's: one good
// password must not reset a spray from that address).
func (l *Limiter) Success(ctx context.Context, username string) error {
	return l.eph.Delete(ctx, accountKey(username))
}
