package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/broker/store/sqlstore"

	"github.com/garde-sso/garde/internal/testutil"
)

func openChainStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDeriveCheckpointKey(t *testing.T) {
	a := DeriveCheckpointKey(bytes.Repeat([]byte{1}, 32))
	if !a.Equal(DeriveCheckpointKey(bytes.Repeat([]byte{1}, 32))) {
		t.Fatal("not deterministic")
	}
	b := DeriveCheckpointKey(bytes.Repeat([]byte{2}, 32))
	if a.Equal(b) {
		t.Fatal("two master keys derive one checkpoint key")
	}
	ida, idb := CheckpointKeyID(a.Public().(ed25519.PublicKey)), CheckpointKeyID(b.Public().(ed25519.PublicKey))
	if len(ida) != 16 || ida == idb {
		t.Fatalf("key ids %q %q", ida, idb)
	}
	c := SignCheckpoint(a, 7, bytes.Repeat([]byte{9}, 32), t0.Add(1500*time.Nanosecond))
	if !ed25519.Verify(a.Public().(ed25519.PublicKey), CheckpointMessage(c), c.Signature) {
		t.Fatal("signature does not verify")
	}
	if c.KeyID != ida || !c.CreatedAt.Equal(t0.Add(time.Microsecond)) {
		t.Fatalf("checkpoint %+v", c)
	}
	// Every signed field is covered.
	for _, change := range []func(*store.AuditCheckpoint){
		func(c *store.AuditCheckpoint) { c.EventID++ },
		func(c *store.AuditCheckpoint) { c.Hash = bytes.Repeat([]byte{8}, 32) },
		func(c *store.AuditCheckpoint) { c.CreatedAt = c.CreatedAt.Add(time.Microsecond) },
	} {
		d := c
		change(&d)
		if ed25519.Verify(a.Public().(ed25519.PublicKey), CheckpointMessage(d), d.Signature) {
			t.Errorf("signature still verifies after changing %+v", d)
		}
	}
}

func appendN(t *testing.T, s store.AuditLog, n int) {
	t.Helper()
	batch := make([]store.AuditEvent, n)
	for i := range batch {
		batch[i] = store.AuditEvent{Time: t0, Type: TokenIssued, Outcome: Success}
	}
	if err := s.AppendAuditEvents(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	s := openChainStore(t)
	clock := testutil.NewClock(t0)
	key := DeriveCheckpointKey(bytes.Repeat([]byte{3}, 32))
	cp := NewCheckpointer(s, key, CheckpointerOptions{Every: 5, Interval: time.Minute, Clock: clock.Now, Logger: quiet})
	due := func(want bool) {
		t.Helper()
		got, err := cp.MaybeCheckpoint(ctx)
		if err != nil || got != want {
			t.Fatalf("MaybeCheckpoint = %v, %v; want %v", got, err, want)
		}
	}
	due(false) // no event
	appendN(t, s, 3)
	due(true) // the first checkpoint is due at once
	appendN(t, s, 3)
	due(false) // 3 < 5 events, 0 < 1 minute
	appendN(t, s, 2)
	due(true) // 5 events
	latest, err := s.LatestAuditCheckpoint(ctx)
	if err != nil || latest.EventID != 8 {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	clock.Advance(2 * time.Minute)
	due(false) // time passed, but nothing to sign
	appendN(t, s, 1)
	due(true) // one event, older than Interval
	appendN(t, s, 1)
	if c, ok, err := cp.Checkpoint(ctx); err != nil || !ok || c.EventID != 10 {
		t.Fatalf("Checkpoint = %+v, %v, %v", c, ok, err)
	}
	if _, ok, err := cp.Checkpoint(ctx); err != nil || ok {
		t.Fatalf("Checkpoint of a signed head = %v, %v", ok, err)
	}
	// A second replica's checkpointer agrees: nothing to do.
	other := NewCheckpointer(s, key, CheckpointerOptions{Every: 5, Interval: time.Minute, Clock: clock.Now, Logger: quiet})
	if _, ok, err := other.Checkpoint(ctx); err != nil || ok {
		t.Fatalf("other replica's Checkpoint = %v, %v", ok, err)
	}
	rep, err := VerifyCheckpoints(ctx, s, cp.PublicKey())
	if err != nil || rep.Checked != 4 || rep.FirstBad != 0 || rep.Latest.EventID != 10 {
		t.Fatalf("VerifyCheckpoints = %+v, %v", rep, err)
	}
}

// Run signs when due, and signs the head once more when stopped.
func TestCheckpointerRun(t *testing.T) {
	s := openChainStore(t)
	key := DeriveCheckpointKey(bytes.Repeat([]byte{4}, 32))
	cp := NewCheckpointer(s, key, CheckpointerOptions{Every: 10, Interval: time.Hour, Poll: 5 * time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	appendN(t, s, 4)
	cp.Kick()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := s.LatestAuditCheckpoint(context.Background()); err == nil && c.EventID == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of the first events")
		}
		time.Sleep(5 * time.Millisecond)
	}
	appendN(t, s, 3) // fewer than Every, well within Interval
	cancel()
	<-done
	c, err := s.LatestAuditCheckpoint(context.Background())
	if err != nil || c.EventID != 7 {
		t.Fatalf("after Run stopped, latest checkpoint = %+v, %v; want event 7", c, err)
	}
	rep, err := VerifyCheckpoints(context.Background(), s, cp.PublicKey())
	if err != nil || rep.Checked != 2 || rep.Problem != "" {
		t.Fatalf("VerifyCheckpoints = %+v, %v", rep, err)
	}
}
