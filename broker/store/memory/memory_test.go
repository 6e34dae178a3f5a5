package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/conformance"

	"github.com/garde-sso/garde/internal/testutil"
)

func newClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

func TestConformance(t *testing.T) {
	conformance.RunEphemeral(t, func(t *testing.T) (store.Ephemeral, func(time.Duration)) {
		c := newClock()
		s := New(c.Now)
		t.Cleanup(func() { s.Close() })
		return s, c.Advance
	})
}

// The suite runs on a fake clock; this runs it once more on the real one.
func TestConformanceRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	conformance.RunEphemeral(t, func(t *testing.T) (store.Ephemeral, func(time.Duration)) {
		s := New(nil)
		t.Cleanup(func() { s.Close() })
		return s, nil
	})
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := New(c.Now)
	defer s.Close()
	for i := range 100 {
		ttl := time.Minute
		if i%2 == 0 {
			ttl = time.Second
		}
		if err := s.Set(ctx, strconv.Itoa(i), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Incr(ctx, "counter", time.Second); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	if n := s.Sweep(); n != 51 {
		t.Fatalf("Sweep removed %d entries, want 51", n)
	}
	if n := s.Len(); n != 50 {
		t.Fatalf("Len = %d after sweep, want 50", n)
	}
}

func TestBackgroundSweep(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newStore(c.Now, time.Millisecond)
	if err := s.Set(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background sweeper did not remove the expired entry")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestIncrOnText(t *testing.T) {
	ctx := context.Background()
	s := New(nil)
	defer s.Close()
	if err := s.Set(ctx, "n", []byte("41"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr(ctx, "n", time.Hour); n != 42 || err != nil {
		t.Fatalf("Incr = %d, %v; want 42", n, err)
	}
	if err := s.Set(ctx, "t", []byte("text"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "t", time.Hour); err != ErrNotInteger {
		t.Fatalf("Incr(text) error = %v, want ErrNotInteger", err)
	}
}

func TestAllocations(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	ctx := context.Background()
	s := New(nil)
	defer s.Close()
	v := []byte("a value of some thirty-two bytes")
	_ = s.Set(ctx, "k", v, time.Minute)
	if n := testing.AllocsPerRun(100, func() { _ = s.Set(ctx, "k", v, time.Minute) }); n > 0 {
		t.Errorf("Set over an existing key allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Get(ctx, "k") }); n > 1 {
		t.Errorf("Get allocates %v times, want 1 (the copy)", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.CompareAndSwap(ctx, "k", v, v) }); n > 0 {
		t.Errorf("CompareAndSwap allocates %v times, want 0", n)
	}
}

func BenchmarkSetGet(b *testing.B) {
	ctx := context.Background()
	s := New(nil)
	defer s.Close()
	v := []byte("a flow state of about sixty-four bytes, like a small JSON blob..")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := benchKeys[i%len(benchKeys)]
			i++
			if err := s.Set(ctx, k, v, time.Minute); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCompareAndSwap(b *testing.B) {
	ctx := context.Background()
	s := New(nil)
	defer s.Close()
	a, z := []byte("unused:0123456789abcdef"), []byte("used:0123456789abcdef")
	for _, k := range benchKeys {
		_ = s.Set(ctx, k, a, time.Hour)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := benchKeys[i%len(benchKeys)]
			// One swap per op, back and forth; under contention some
			// fail, which costs the same compare.
			prev, next := a, z
			if (i/len(benchKeys))%2 == 1 {
				prev, next = z, a
			}
			i++
			if _, err := s.CompareAndSwap(ctx, k, prev, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "flow:" + strconv.Itoa(i)
	}
	return keys
}()
