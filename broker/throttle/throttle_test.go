package throttle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
	redisstore "github.com/garde-sso/garde/broker/store/redis"
	"github.com/garde-sso/garde/internal/testutil"
)

const (
	accountMax = 3
	addressMax = 10
	window     = 15 * time.Minute
)

// keyLog records every key written through it, so that a test can read
// what the limiter puts in the store.
type keyLog struct {
	store.Ephemeral
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) Incr(ctx context.Context, key string, w time.Duration) (int64, error) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
	return k.Ephemeral.Incr(ctx, key, w)
}

func (k *keyLog) written() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

// backend gives each subtest fresh limiters sharing one store (two
// replicas), the raw keys the store holds, and a way to move time forward
// (nil when the store cannot fake time).
type backend func(t *testing.T) (a, b *Limiter, keys func() []string, advance func(time.Duration))

func memoryBackend(t *testing.T) (a, b *Limiter, keys func() []string, advance func(time.Duration)) {
	c := testutil.NewClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	m := memory.New(c.Now)
	t.Cleanup(func() { m.Close() })
	log := &keyLog{Ephemeral: m}
	return New(log, accountMax, addressMax, window), New(log, accountMax, addressMax, window), log.written, c.Advance
}

// redisBackend gives the two limiters separate Redis clients on the same
// key prefix: two replicas of Garde.
func redisBackend(t *testing.T) (a, b *Limiter, keys func() []string, advance func(time.Duration)) {
	c1, prefix := testutil.RedisClient(t)
	c2, _ := testutil.RedisClient(t)
	keys = func() []string {
		ks, err := c1.Keys(context.Background(), prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS: %v", err)
		}
		return ks
	}
	return New(redisstore.New(c1, prefix), accountMax, addressMax, window),
		New(redisstore.New(c2, prefix), accountMax, addressMax, window), keys, nil
}

// fail is one failed sign-in: the attempt (Check) and its failure.
func fail(t *testing.T, l *Limiter, user, addr string) {
	t.Helper()
	if err := l.Check(context.Background(), user, addr); err != nil && !errors.Is(err, ErrThrottled) {
		t.Fatal(err)
	}
	if err := l.Failure(context.Background(), user, addr); err != nil {
		t.Fatal(err)
	}
}

func TestMemory(t *testing.T) { runSuite(t, memoryBackend) }

// On Redis the two limiters are two replicas: they count together.
func TestRedis(t *testing.T) { runSuite(t, redisBackend) }

func runSuite(t *testing.T, open backend) {
	ctx := context.Background()

	t.Run("AccountLimit", func(t *testing.T) {
		l, _, _, _ := open(t)
		for i := range accountMax {
			if err := l.Check(ctx, "alice", "198.51.100.1"); err != nil {
				t.Fatalf("attempt %d refused early: %v", i+1, err)
			}
			// Each guess from a different address: the account counter
			// alone must stop a distributed guess.
			if err := l.Failure(ctx, "alice", "198.51.100."+string(rune('1'+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Check(ctx, "alice", "203.0.113.9"); !errors.Is(err, ErrThrottled) {
			t.Fatalf("after %d failures Check = %v, want ErrThrottled", accountMax, err)
		}
		// Only that account.
		if err := l.Check(ctx, "bob", "203.0.113.9"); err != nil {
			t.Fatalf("another account is throttled: %v", err)
		}
	})

	t.Run("UsernameNormalised", func(t *testing.T) {
		l, _, _, _ := open(t)
		for _, u := range []string{"Alice", " ALICE", "alice \t"} {
			fail(t, l, u, "")
		}
		for _, u := range []string{"alice", "ALICE ", "aLiCe"} {
			if err := l.Check(ctx, u, ""); !errors.Is(err, ErrThrottled) {
				t.Fatalf("Check(%q) = %v: variants of one username must count together", u, err)
			}
		}
		if err := l.Check(ctx, "alice2", ""); err != nil {
			t.Fatalf("a different username is throttled: %v", err)
		}
	})

	t.Run("AddressLimit", func(t *testing.T) {
		l, _, _, _ := open(t)
		const spray = "203.0.113.50"
		// A password spray: one failure on each of many accounts.
		for i := range addressMax {
			if err := l.Failure(ctx, "user"+string(rune('a'+i)), spray); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Check(ctx, "fresh-account", spray); !errors.Is(err, ErrThrottled) {
			t.Fatalf("after %d failures from one address Check = %v, want ErrThrottled", addressMax, err)
		}
		if err := l.Check(ctx, "fresh-account", "203.0.113.51"); err != nil {
			t.Fatalf("another address is throttled: %v", err)
		}
		// An unknown address ("") is not counted as one shared address.
		if err := l.Check(ctx, "fresh-account", ""); err != nil {
			t.Fatalf("empty address is throttled: %v", err)
		}
	})

	t.Run("SuccessClearsAccountNotAddress", func(t *testing.T) {
		l, _, _, _ := open(t)
		const addr = "203.0.113.60"
		for range accountMax {
			if err := l.Failure(ctx, "carol", addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Success(ctx, "Carol"); err != nil {
			t.Fatal(err)
		}
		if err := l.Check(ctx, "carol", ""); err != nil {
			t.Fatalf("Success did not clear the account counter: %v", err)
		}
		// The address counter still holds the three failures: seven more
		// from it reach the address limit.
		for range addressMax - accountMax {
			if err := l.Failure(ctx, "someone-else", addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Check(ctx, "carol", addr); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Success reset the address counter: Check = %v", err)
		}
	})

	t.Run("WindowExpires", func(t *testing.T) {
		l, _, _, advance := open(t)
		if advance == nil {
			t.Skip("this store cannot fake time; the memory store covers expiry")
		}
		for range accountMax {
			fail(t, l, "dave", "203.0.113.70")
		}
		advance(window - time.Second)
		if err := l.Check(ctx, "dave", ""); !errors.Is(err, ErrThrottled) {
			t.Fatalf("before the window ends Check = %v", err)
		}
		// An attempt late in the window does not extend it (fixed window).
		fail(t, l, "dave", "")
		advance(time.Second)
		if err := l.Check(ctx, "dave", "203.0.113.70"); err != nil {
			t.Fatalf("after the window Check = %v, want nil", err)
		}
	})

	t.Run("AccountKeyHidesUsername", func(t *testing.T) {
		l, _, keys, _ := open(t)
		// People type passwords in the username field.
		const typed = "Hunter2-Secret.Password"
		fail(t, l, typed, "203.0.113.80")
		ks := keys()
		if len(ks) != 2 {
			t.Fatalf("keys = %q, want one account and one address counter", ks)
		}
		var acct string
		for _, k := range ks {
			lk := strings.ToLower(k)
			if strings.Contains(lk, strings.ToLower(typed)) || strings.Contains(lk, "hunter2") {
				t.Fatalf("store key %q reveals the typed username", k)
			}
			if strings.Contains(k, "thr:acct:") {
				acct = k
			}
		}
		if acct == "" {
			t.Fatalf("no account counter among %q", ks)
		}
		if want := accountKey(" hunter2-secret.password "); !strings.HasSuffix(acct, want) {
			t.Fatalf("account key %q, want …%s (normalised username)", acct, want)
		}
	})

	t.Run("ReplicasCountTogether", func(t *testing.T) {
		a, b, _, _ := open(t)
		// Alternate replicas: neither alone sees accountMax failures.
		for i := range accountMax {
			l := a
			if i%2 == 1 {
				l = b
			}
			fail(t, l, "erin", "203.0.113.90")
		}
		for name, l := range map[string]*Limiter{"a": a, "b": b} {
			if err := l.Check(ctx, "erin", ""); !errors.Is(err, ErrThrottled) {
				t.Fatalf("replica %s: Check = %v, want ErrThrottled", name, err)
			}
		}
		if err := b.Success(ctx, "erin"); err != nil {
			t.Fatal(err)
		}
		if err := a.Check(ctx, "erin", ""); err != nil {
			t.Fatalf("a success on one replica is not seen by the other: %v", err)
		}
	})

	t.Run("ConcurrentAttemptsAllCounted", func(t *testing.T) {
		a, b, _, _ := open(t)
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				if err := l.Check(ctx, "frank", ""); err != nil && !errors.Is(err, ErrThrottled) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := a.count(ctx, accountKey("frank"))
		if err != nil || got != n {
			t.Fatalf("counter after %d concurrent attempts = %d, %v", n, got, err)
		}
	})
}

// A counter that is not a number is an error, not a silent zero (which
// would lift the limit).
func TestCorruptCounter(t *testing.T) {
	ctx := context.Background()
	m := memory.New(nil)
	t.Cleanup(func() { m.Close() })
	if err := m.Set(ctx, accountKey("grace"), []byte("lots"), time.Minute); err != nil {
		t.Fatal(err)
	}
	l := New(m, accountMax, addressMax, window)
	if err := l.Check(ctx, "grace", ""); err == nil || errors.Is(err, ErrThrottled) {
		t.Fatalf("Check on a corrupt counter = %v, want a read error", err)
	}
}

// Attempts that all pass Check before any of them fails must not exceed the
// limit: the package promises the per-account limit stays below the
// directory's lockout threshold, and concurrent guesses must respect it
// too.
func TestConcurrentGuessesBounded(t *testing.T) {
	ctx := context.Background()
	l, _, _, _ := memoryBackend(t)
	const attempts = 10
	reached := 0
	// The interleaving of `attempts` parallel sign-ins: every Check runs
	// before the directory answers any of them.
	for range attempts {
		if l.Check(ctx, "henry", "") == nil {
			reached++
		}
	}
	for range reached {
		if err := l.Failure(ctx, "henry", ""); err != nil {
			t.Fatal(err)
		}
	}
	if reached != accountMax {
		t.Fatalf("%d concurrent guesses reached the directory with a limit of %d", reached, accountMax)
	}
}
