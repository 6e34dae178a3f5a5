package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)

func openStore(t *testing.T) store.AuditLog {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitCtx bounds a Flush or Close so that a bug hangs one test, not the run.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// listAll pages through every event.
func listAll(t *testing.T, log store.AuditLog) []store.AuditEvent {
	t.Helper()
	var all []store.AuditEvent
	var after int64
	for {
		page, err := log.ListAuditEvents(context.Background(), store.AuditQuery{AfterID: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

func closeRecorder(t *testing.T, r *Recorder) {
	t.Cleanup(func() {
		if err := r.Close(waitCtx(t)); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func TestRecordFlush(t *testing.T) {
	log := openStore(t)
	r := New(log, quiet, func() time.Time { return t0 }, 0)
	closeRecorder(t, r)

	paris := time.FixedZone("CET", 3600)
	events := []store.AuditEvent{
		{Type: SignInFailure, App: "dossier-patient", ClientAddr: "198.51.100.7", Outcome: Failure, Reason: "invalid_credentials",
			Details: map[string]string{"method": "password", "connector": "ad"}},
		{Type: SignInSuccess, Person: "ad:alice", App: "dossier-patient", ClientAddr: "198.51.100.7", Outcome: Success, SessionID: "sid-1",
			Time: time.Date(2026, 3, 3, 10, 30, 0, 0, paris)},
		{Type: TokenIssued, Person: "ad:alice", App: "dossier-patient", Outcome: Success, SessionID: "sid-1",
			Details: map[string]string{"grant_type": "authorization_code", "scope": "openid profile"}},
	}
	for _, e := range events {
		r.Record(e)
	}
	if err := r.Flush(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, log)
	if len(got) != len(events) {
		t.Fatalf("after Flush %d events are readable, want %d", len(got), len(events))
	}
	for i, g := range got {
		w := events[i]
		if g.Type != w.Type || g.Person != w.Person || g.App != w.App || g.ClientAddr != w.ClientAddr ||
			g.Outcome != w.Outcome || g.Reason != w.Reason || g.SessionID != w.SessionID || len(g.Details) != len(w.Details) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
		for k, v := range w.Details {
			if g.Details[k] != v {
				t.Fatalf("event %d detail %s = %q, want %q", i, k, g.Details[k], v)
			}
		}
		if i > 0 && g.ID <= got[i-1].ID {
			t.Fatalf("IDs not increasing: %d after %d", g.ID, got[i-1].ID)
		}
	}
	// An unset time is stamped with the recorder's clock; a set one is
	// kept, in UTC.
	if !got[0].Time.Equal(t0) || !got[2].Time.Equal(t0) {
		t.Fatalf("stamped times %v, %v, want %v", got[0].Time, got[2].Time, t0)
	}
	if !got[1].Time.Equal(events[1].Time) || got[1].Time.Location() != time.UTC {
		t.Fatalf("given time came back as %v", got[1].Time)
	}

	// Flush with nothing queued returns at once.
	if err := r.Flush(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentRecordsAllLand(t *testing.T) {
	log := openStore(t)
	// A small queue: producers block on it, which must not lose events.
	r := New(log, quiet, nil, 16)
	closeRecorder(t, r)

	const writers, each = 10, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range each {
				r.Record(store.AuditEvent{Type: TokenIssued, App: "app-" + strconv.Itoa(g), Outcome: Success,
					Details: map[string]string{"n": strconv.Itoa(n)}})
			}
		})
	}
	wg.Wait()
	if err := r.Flush(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := listAll(t, log)
	if len(got) != writers*each {
		t.Fatalf("%d events stored, want %d", len(got), writers*each)
	}
	// Every (writer, n) exactly once, and each writer's events in the order
	// it recorded them.
	next := map[string]int{}
	for _, e := range got {
		n, err := strconv.Atoi(e.Details["n"])
		if err != nil {
			t.Fatalf("event %d: %v", e.ID, err)
		}
		if n != next[e.App] {
			t.Fatalf("%s: event %d stored where %d was expected (lost, duplicated or reordered)", e.App, n, next[e.App])
		}
		next[e.App]++
	}
	for g := range writers {
		if k := "app-" + strconv.Itoa(g); next[k] != each {
			t.Fatalf("%s: %d events, want %d", k, next[k], each)
		}
	}
}

func TestCloseFlushes(t *testing.T) {
	log := openStore(t)
	r := New(log, quiet, nil, 0)
	const n = 300 // more than one batch
	for i := range n {
		r.Record(store.AuditEvent{Type: Logout, Person: fmt.Sprintf("ad:p%d", i), Outcome: Success})
	}
	if err := r.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, log); len(got) != n {
		t.Fatalf("after Close %d events stored, want %d", len(got), n)
	}
	// Close is idempotent.
	if err := r.Close(waitCtx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// flaky fails its first `fail` appends (or while down is set), then writes
// through. It records every batch it was handed.
type flaky struct {
	store.AuditLog
	fail    atomic.Int64
	down    atomic.Bool
	calls   atomic.Int64
	refused atomic.Int64
}

var errBlink = errors.New("database blinked")

func (f *flaky) AppendAuditEvents(ctx context.Context, events []store.AuditEvent) error {
	f.calls.Add(1)
	if f.down.Load() || f.fail.Add(-1) >= 0 {
		f.refused.Add(1)
		return errBlink
	}
	return f.AuditLog.AppendAuditEvents(ctx, events)
}

func TestFailingStoreRetried(t *testing.T) {
	log := openStore(t)
	f := &flaky{AuditLog: log}
	f.fail.Store(3)
	r := New(f, quiet, nil, 0)
	closeRecorder(t, r)

	const n = 20
	for i := range n {
		r.Record(store.AuditEvent{Type: TokenFailure, App: "labo", Outcome: Failure, Reason: "invalid_client",
			Details: map[string]string{"i": strconv.Itoa(i)}})
	}
	if err := r.Flush(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if f.refused.Load() != 3 {
		t.Fatalf("store refused %d appends, want 3 (the test double is wrong)", f.refused.Load())
	}
	got := listAll(t, log)
	if len(got) != n {
		t.Fatalf("%d events stored after 3 failures, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Details["i"] != strconv.Itoa(i) {
			t.Fatalf("event %d holds %q: lost, duplicated or reordered", i, e.Details["i"])
		}
	}
}

// While the store is down Flush cannot succeed, and nothing is dropped:
// once it is back, every event lands.
func TestStoreDownThenBack(t *testing.T) {
	log := openStore(t)
	f := &flaky{AuditLog: log}
	f.down.Store(true)
	r := New(f, quiet, nil, 0)
	closeRecorder(t, r)

	for i := range 5 {
		r.Record(store.AuditEvent{Type: SignInSuccess, Person: "ad:x" + strconv.Itoa(i), Outcome: Success})
	}
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush while the store is down = %v, want the context's error", err)
	}
	if got := listAll(t, log); len(got) != 0 {
		t.Fatalf("%d events stored while the store was down", len(got))
	}
	f.down.Store(false)
	r.Record(store.AuditEvent{Type: Logout, Person: "ad:x5", Outcome: Success})
	if err := r.Flush(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, log); len(got) != 6 {
		t.Fatalf("%d events stored once the store is back, want 6", len(got))
	}
}

// A store that never comes back must not hold shutdown forever: Close gives
// up when its context ends and reports it.
func TestCloseGivesUpOnDeadStore(t *testing.T) {
	f := &flaky{AuditLog: openStore(t)}
	f.down.Store(true)
	r := New(f, quiet, nil, 0)
	r.Record(store.AuditEvent{Type: TokenIssued, Outcome: Success})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close on a dead store = %v, want the context's deadline", err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer kept retrying after Close gave up")
	}
	if f.refused.Load() == 0 {
		t.Fatal("the writer never tried the store")
	}
}
