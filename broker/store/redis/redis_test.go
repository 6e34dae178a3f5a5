package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/conformance"
	"github.com/garde-sso/garde/internal/testutil"
)

// Redis cannot fake time: the suite gets a nil clock and tests expiry with
// short real TTLs.
func TestConformance(t *testing.T) {
	conformance.RunEphemeral(t, func(t *testing.T) (store.Ephemeral, func(time.Duration)) {
		c, prefix := testutil.RedisClient(t)
		s := New(c, prefix)
		t.Cleanup(func() { s.Close() })
		return s, nil
	})
}

func TestKeyPrefix(t *testing.T) {
	ctx := context.Background()
	c, prefix := testutil.RedisClient(t)
	a, b := New(c, prefix+"a:"), New(c, prefix+"b:")
	if err := a.Set(ctx, "k", []byte("in a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); err != store.ErrNotFound {
		t.Fatalf("another prefix sees the key: %v", err)
	}
	if v, err := c.Get(ctx, prefix+"a:k").Result(); err != nil || v != "in a" {
		t.Fatalf("raw key %sa:k = %q, %v", prefix, v, err)
	}
	// A sub-millisecond TTL is rounded up, not turned into "no expiry".
	if err := a.Set(ctx, "tiny", []byte("x"), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if ttl := c.PTTL(ctx, prefix+"a:tiny").Val(); ttl > time.Millisecond {
		t.Fatalf("PTTL of a 1µs key = %v", ttl)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	_, prefix := testutil.RedisClient(t)
	addr := testutil.RedisAddr()
	s, err := Open(ctx, Options{Addrs: []string{addr}, KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{},
		{Addrs: []string{addr}, KeyPrefix: "{garde}:"},
		{Addrs: []string{addr, addr}, DB: 2},
	} {
		if s, err := Open(ctx, o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", o)
		}
	}
}

func BenchmarkSetGet(b *testing.B) {
	ctx := context.Background()
	c, prefix := testutil.RedisClient(b)
	s := New(c, prefix)
	v := []byte("a flow state of about sixty-four bytes, like a small JSON blob..")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := "flow:" + strconv.Itoa(i%1024)
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
	c, prefix := testutil.RedisClient(b)
	s := New(c, prefix)
	a, z := []byte("unused:0123456789abcdef"), []byte("used:0123456789abcdef")
	for i := range 1024 {
		if err := s.Set(ctx, "code:"+strconv.Itoa(i), a, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := "code:" + strconv.Itoa(i%1024)
			prev, next := a, z
			if (i/1024)%2 == 1 {
				prev, next = z, a
			}
			i++
			if _, err := s.CompareAndSwap(ctx, k, prev, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}
