// Package conformance holds the black-box test suites every store backend
// must pass: RunEphemeral for store.Ephemeral and RunDurable for
// store.Durable. A backend's test file calls them with a constructor.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// racers is how many goroutines the concurrency tests race.
const racers = 50

// rounds is how many times each race is run: one round can pass by luck.
const rounds = 10

// ephemeralEnv is one fresh store under test and its clock.
type ephemeralEnv struct {
	s       store.Ephemeral
	advance func(time.Duration)
}

// fake reports whether the store's clock can be advanced. A store without
// one (Redis) expires on real time: the suite then sleeps, with TTLs long
// enough to be reliable and short enough to be quick.
func (e *ephemeralEnv) fake() bool { return e.advance != nil }

// wait lets d pass on the store's clock.
func (e *ephemeralEnv) wait(d time.Duration) {
	if e.advance != nil {
		e.advance(d)
		return
	}
	time.Sleep(d)
}

// RunEphemeral runs the store.Ephemeral suite. newStore returns a new,
// empty store for one sub-test (closing it at cleanup) and a function that
// advances that store's clock, or nil if it runs on real time: expiry is
// then tested with short real TTLs, those sub-tests running in parallel.
func RunEphemeral(t *testing.T, newStore func(t *testing.T) (store.Ephemeral, func(time.Duration))) {
	tests := []struct {
		name string
		// sleeps marks tests that sleep on a real clock: they run in
		// parallel so the suite takes the longest sleep, not their sum.
		sleeps bool
		fn     func(t *testing.T, e *ephemeralEnv)
	}{
		{"SetGet", false, testSetGet},
		{"ValuesAreCopied", false, testValuesAreCopied},
		{"OpaqueKeys", false, testOpaqueKeys},
		{"Expiry", true, testExpiry},
		{"SetNX", false, testSetNX},
		{"SetNXExpired", true, testSetNXExpired},
		{"Take", false, testTake},
		{"CompareAndSwap", false, testCompareAndSwap},
		{"CompareAndSwapKeepsTTL", true, testCompareAndSwapKeepsTTL},
		{"Delete", false, testDelete},
		{"Incr", false, testIncr},
		{"IncrFixedWindow", true, testIncrFixedWindow},
		{"Ping", false, testEphemeralPing},
		{"RaceTake", false, testRaceTake},
		{"RaceCompareAndSwap", false, testRaceCompareAndSwap},
		{"RaceSetNX", false, testRaceSetNX},
		{"RaceIncr", false, testRaceIncr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, advance := newStore(t)
			if tc.sleeps && advance == nil {
				t.Parallel()
			}
			tc.fn(t, &ephemeralEnv{s: s, advance: advance})
		})
	}
}

const hour = time.Hour

func mustSet(t *testing.T, s store.Ephemeral, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(context.Background(), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, s store.Ephemeral, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, s store.Ephemeral, key string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

func testSetGet(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	wantMissing(t, s, "never-set")

	mustSet(t, s, "k", []byte("v1"), hour)
	wantValue(t, s, "k", []byte("v1"))
	mustSet(t, s, "k", []byte("v2, longer than v1"), hour)
	wantValue(t, s, "k", []byte("v2, longer than v1"))
	mustSet(t, s, "k", []byte("v3"), hour)
	wantValue(t, s, "k", []byte("v3"))

	// An empty value is a value, not an absence.
	mustSet(t, s, "empty", []byte{}, hour)
	wantValue(t, s, "empty", []byte{})
	mustSet(t, s, "nil", nil, hour)
	wantValue(t, s, "nil", []byte{})

	// Values are bytes, not text.
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\n', 0, '"', '\\'}
	mustSet(t, s, "binary", bin, hour)
	wantValue(t, s, "binary", bin)

	big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	mustSet(t, s, "big", big, hour)
	wantValue(t, s, "big", big)

	// Get does not consume.
	for range 3 {
		if _, err := s.Get(ctx, "k"); err != nil {
			t.Fatalf("Get again: %v", err)
		}
	}
}

func testValuesAreCopied(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	v := []byte("original")
	mustSet(t, e.s, "k", v, hour)
	copy(v, "XXXXXXXX")
	wantValue(t, e.s, "k", []byte("original"))

	got, err := e.s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "YYYYYYYY")
	wantValue(t, e.s, "k", []byte("original"))

	prev, next := []byte("original"), []byte("next")
	if ok, err := e.s.CompareAndSwap(ctx, "k", prev, next); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	copy(next, "ZZZZ")
	wantValue(t, e.s, "k", []byte("next"))

	if ok, err := e.s.SetNX(ctx, "nx", v, hour); !ok || err != nil {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	copy(v, "original")
	wantValue(t, e.s, "nx", []byte("XXXXXXXX"))
}

func testOpaqueKeys(t *testing.T, e *ephemeralEnv) {
	keys := []string{
		"a", "A", "a:b", "a:b:", "{a}", "{a}:b", "{a}:c", "{b}:b", "a b",
		"é", "キー", "a*", "a?", "[a]", "\x00", "line\nbreak", "",
	}
	for i, k := range keys {
		mustSet(t, e.s, k, []byte(strconv.Itoa(i)), hour)
	}
	for i, k := range keys {
		wantValue(t, e.s, k, []byte(strconv.Itoa(i)))
	}
}

func testExpiry(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	mustSet(t, s, "long", []byte("stays"), hour)
	if e.fake() {
		mustSet(t, s, "short", []byte("goes"), 10*time.Second)
		if ok, err := s.SetNX(ctx, "nx", []byte("goes"), 10*time.Second); !ok || err != nil {
			t.Fatalf("SetNX = %v, %v", ok, err)
		}
		mustSet(t, s, "take", []byte("goes"), 10*time.Second)
		mustSet(t, s, "cas", []byte("goes"), 10*time.Second)
		e.wait(10*time.Second - time.Millisecond)
		wantValue(t, s, "short", []byte("goes"))
		wantValue(t, s, "nx", []byte("goes"))
		e.wait(2 * time.Millisecond)
	} else {
		mustSet(t, s, "short", []byte("goes"), 50*time.Millisecond)
		if ok, err := s.SetNX(ctx, "nx", []byte("goes"), 50*time.Millisecond); !ok || err != nil {
			t.Fatalf("SetNX = %v, %v", ok, err)
		}
		mustSet(t, s, "take", []byte("goes"), 50*time.Millisecond)
		mustSet(t, s, "cas", []byte("goes"), 50*time.Millisecond)
		e.wait(200 * time.Millisecond)
	}
	wantMissing(t, s, "short")
	wantMissing(t, s, "nx")
	if v, err := s.Take(ctx, "take"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Take(expired) = %q, %v; want ErrNotFound", v, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "cas", []byte("goes"), []byte("back")); ok || err != nil {
		t.Errorf("CompareAndSwap(expired) = %v, %v; want false", ok, err)
	}
	wantMissing(t, s, "cas")
	wantValue(t, s, "long", []byte("stays"))

	// A Set renews the TTL.
	mustSet(t, s, "renewed", []byte("1"), hour)
	mustSet(t, s, "renewed", []byte("2"), hour)
	wantValue(t, s, "renewed", []byte("2"))
}

func testSetNX(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	ok, err := s.SetNX(ctx, "k", []byte("first"), hour)
	if !ok || err != nil {
		t.Fatalf("SetNX(new) = %v, %v; want true", ok, err)
	}
	ok, err = s.SetNX(ctx, "k", []byte("second"), hour)
	if ok || err != nil {
		t.Fatalf("SetNX(existing) = %v, %v; want false", ok, err)
	}
	wantValue(t, s, "k", []byte("first"))

	mustSet(t, s, "set", []byte("by set"), hour)
	if ok, err := s.SetNX(ctx, "set", []byte("nx"), hour); ok || err != nil {
		t.Fatalf("SetNX(after Set) = %v, %v; want false", ok, err)
	}
	wantValue(t, s, "set", []byte("by set"))

	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetNX(ctx, "k", []byte("third"), hour); !ok || err != nil {
		t.Fatalf("SetNX(after Delete) = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "k", []byte("third"))
}

func testSetNXExpired(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	ttl := 50 * time.Millisecond
	if e.fake() {
		ttl = time.Minute
	}
	if ok, err := e.s.SetNX(ctx, "k", []byte("first"), ttl); !ok || err != nil {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	e.wait(ttl + 150*time.Millisecond)
	if ok, err := e.s.SetNX(ctx, "k", []byte("after expiry"), hour); !ok || err != nil {
		t.Fatalf("SetNX(expired) = %v, %v; want true", ok, err)
	}
	wantValue(t, e.s, "k", []byte("after expiry"))
}

func testTake(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	if v, err := s.Take(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take(missing) = %q, %v; want ErrNotFound", v, err)
	}
	mustSet(t, s, "k", []byte("once"), hour)
	v, err := s.Take(ctx, "k")
	if err != nil || string(v) != "once" {
		t.Fatalf("Take = %q, %v; want once", v, err)
	}
	wantMissing(t, s, "k")
	if v, err := s.Take(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take(taken) = %q, %v; want ErrNotFound", v, err)
	}
	// A taken key can be set again.
	if ok, err := s.SetNX(ctx, "k", []byte("again"), hour); !ok || err != nil {
		t.Fatalf("SetNX(taken) = %v, %v; want true", ok, err)
	}
	mustSet(t, s, "empty", nil, hour)
	if v, err := s.Take(ctx, "empty"); err != nil || len(v) != 0 {
		t.Fatalf("Take(empty) = %q, %v; want empty value", v, err)
	}
}

func testCompareAndSwap(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	cas := func(key, prev, next string, want bool) {
		t.Helper()
		ok, err := s.CompareAndSwap(ctx, key, []byte(prev), []byte(next))
		if err != nil || ok != want {
			t.Fatalf("CompareAndSwap(%q, %q, %q) = %v, %v; want %v", key, prev, next, ok, err, want)
		}
	}
	cas("missing", "", "x", false)
	cas("missing", "a", "x", false)
	wantMissing(t, s, "missing")

	mustSet(t, s, "code", []byte("unused"), hour)
	cas("code", "other", "used", false)
	cas("code", "unuse", "used", false)
	cas("code", "unused!", "used", false)
	wantValue(t, s, "code", []byte("unused"))
	cas("code", "unused", "used", true)
	wantValue(t, s, "code", []byte("used"))
	cas("code", "unused", "used again", false)
	wantValue(t, s, "code", []byte("used"))
	cas("code", "used", "a much longer value than before", true)
	cas("code", "a much longer value than before", "", true)
	wantValue(t, s, "code", []byte{})
	cas("code", "", "back", true)
	wantValue(t, s, "code", []byte("back"))
}

func testCompareAndSwapKeepsTTL(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	// Set with ttl, swap part-way, then wait past the original deadline:
	// the key must be gone (the swap kept the deadline, neither dropping
	// it nor restarting it).
	ttl, before, after := 10*time.Second, 6*time.Second, 5*time.Second
	if !e.fake() {
		ttl, before, after = time.Second, 400*time.Millisecond, 800*time.Millisecond
	}
	mustSet(t, s, "code", []byte("unused"), ttl)
	e.wait(before)
	if ok, err := s.CompareAndSwap(ctx, "code", []byte("unused"), []byte("used")); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "code", []byte("used"))
	e.wait(after)
	wantMissing(t, s, "code")
}

func testDelete(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	if err := s.Delete(ctx); err != nil {
		t.Fatalf("Delete(): %v", err)
	}
	if err := s.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	// Keys in different hash slots: a Cluster must still delete them all.
	keys := []string{"a", "{x}:1", "{y}:2", "{x}:3", "zz"}
	for _, k := range keys {
		mustSet(t, s, k, []byte(k), hour)
	}
	mustSet(t, s, "kept", []byte("kept"), hour)
	if err := s.Delete(ctx, append(keys, "missing", "a")...); err != nil {
		t.Fatalf("Delete(%q): %v", keys, err)
	}
	for _, k := range keys {
		wantMissing(t, s, k)
	}
	wantValue(t, s, "kept", []byte("kept"))
	if _, err := s.Incr(ctx, "counter", hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "counter"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "counter", hour); n != 1 || err != nil {
		t.Fatalf("Incr(after Delete) = %d, %v; want 1", n, err)
	}
}

func testIncr(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	for want := int64(1); want <= 5; want++ {
		n, err := s.Incr(ctx, "c", hour)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	if n, err := s.Incr(ctx, "other", hour); n != 1 || err != nil {
		t.Fatalf("Incr(other) = %d, %v; want 1", n, err)
	}
	// A counter reads as decimal text.
	wantValue(t, s, "c", []byte("5"))
	if v, err := s.Take(ctx, "c"); err != nil || string(v) != "5" {
		t.Fatalf("Take(counter) = %q, %v; want 5", v, err)
	}
	if n, err := s.Incr(ctx, "c", hour); n != 1 || err != nil {
		t.Fatalf("Incr(after Take) = %d, %v; want 1", n, err)
	}
}

func testIncrFixedWindow(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	s := e.s
	// window, then one increment part-way, then past the first deadline but
	// before a deadline the second increment would have set if it extended
	// the window.
	window, step := 10*time.Second, 6*time.Second
	if !e.fake() {
		window, step = time.Second, 600*time.Millisecond
	}
	incr := func(want int64) {
		t.Helper()
		n, err := s.Incr(ctx, "c", window)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	incr(1)
	e.wait(step)
	incr(2)
	e.wait(step)
	incr(1) // a new window
	incr(2)
	if e.fake() {
		e.wait(window - time.Millisecond)
		incr(3)
		e.wait(time.Millisecond)
		incr(1)
	}
}

func testEphemeralPing(t *testing.T, e *ephemeralEnv) {
	if err := e.s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// race runs fn in racers goroutines released together and returns their
// results.
func race[T any](fn func(i int) T) []T {
	out := make([]T, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range racers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			out[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return out
}

type result struct {
	ok  bool
	v   []byte
	err error
}

func testRaceTake(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	for r := range rounds {
		key := fmt.Sprintf("flow-%d", r)
		mustSet(t, e.s, key, []byte("completion"), hour)
		res := race(func(int) result {
			v, err := e.s.Take(ctx, key)
			return result{v: v, err: err}
		})
		got := 0
		for _, x := range res {
			switch {
			case x.err == nil:
				got++
				if string(x.v) != "completion" {
					t.Errorf("Take = %q", x.v)
				}
			case !errors.Is(x.err, store.ErrNotFound):
				t.Errorf("Take: %v", x.err)
			}
		}
		if got != 1 {
			t.Fatalf("round %d: %d of %d racing Takes got the value, want exactly 1", r, got, racers)
		}
	}
}

func testRaceCompareAndSwap(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	for r := range rounds {
		key := fmt.Sprintf("code-%d", r)
		mustSet(t, e.s, key, []byte("unused"), hour)
		res := race(func(i int) result {
			ok, err := e.s.CompareAndSwap(ctx, key, []byte("unused"), []byte("used by "+strconv.Itoa(i)))
			return result{ok: ok, err: err}
		})
		winner := -1
		for i, x := range res {
			if x.err != nil {
				t.Fatalf("CompareAndSwap: %v", x.err)
			}
			if x.ok {
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both swapped", r, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer swapped", r)
		}
		wantValue(t, e.s, key, []byte("used by "+strconv.Itoa(winner)))
	}
}

func testRaceSetNX(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	for r := range rounds {
		key := fmt.Sprintf("jti-%d", r)
		res := race(func(i int) result {
			ok, err := e.s.SetNX(ctx, key, []byte(strconv.Itoa(i)), hour)
			return result{ok: ok, err: err}
		})
		winner := -1
		for i, x := range res {
			if x.err != nil {
				t.Fatalf("SetNX: %v", x.err)
			}
			if x.ok {
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both won SetNX", r, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer won SetNX", r)
		}
		wantValue(t, e.s, key, []byte(strconv.Itoa(winner)))
	}
}

func testRaceIncr(t *testing.T, e *ephemeralEnv) {
	ctx := context.Background()
	type incr struct {
		n   int64
		err error
	}
	res := race(func(int) incr {
		n, err := e.s.Incr(ctx, "counter", hour)
		return incr{n, err}
	})
	seen := make(map[int64]bool)
	for _, x := range res {
		if x.err != nil {
			t.Fatalf("Incr: %v", x.err)
		}
		if x.n < 1 || x.n > racers || seen[x.n] {
			t.Fatalf("racing Incr returned %d (seen before: %v); want each of 1..%d once", x.n, seen[x.n], racers)
		}
		seen[x.n] = true
	}
	wantValue(t, e.s, "counter", []byte(strconv.Itoa(racers)))
}
