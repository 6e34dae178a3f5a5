package siem

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/broker/store/sqlstore"
	"github.com/garde-sso/garde/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var t0 = time.Date(2026, 3, 3, 9, 0, 0, 123456000, time.UTC)

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSyslogMessage(t *testing.T) {
	f := Format{Hostname: "garde-1", Facility: Facilities["local4"]}
	e := store.AuditEvent{ID: 42, Time: t0, Type: audit.SignInFailure, Person: "ad:x", App: "dpi", ClientAddr: "10.1.2.3",
		Outcome: audit.Failure, Reason: "cloned_authenticator", Hash: []byte{0xab, 0xcd},
		Details: map[string]string{"severity": "high", "method": "passkey", "odd key=]\"": `va"l]ue\`, "é": "ü\xff"}}
	m, err := parseMessage(f.Message(e))
	if err != nil {
		t.Fatalf("%v\n%s", err, f.Message(e))
	}
	if m.pri != 20*8+SeverityCritical || m.version != "1" || m.timestamp != "2026-03-03T09:00:00.123456Z" || m.hostname != "garde-1" ||
		m.app != "garde" || m.procid != "-" || m.msgid != "signin.failure" {
		t.Fatalf("header = %+v", m)
	}
	sd := m.sd["garde@32473"]
	want := map[string]string{"id": "42", "type": "signin.failure", "person": "ad:x", "app": "dpi", "client_addr": "10.1.2.3",
		"outcome": "failure", "reason": "cloned_authenticator", "session_id": "", "time": "2026-03-03T09:00:00.123456Z", "hash": "abcd"}
	for k, v := range want {
		if got, ok := sd[k]; !ok || got != v {
			t.Errorf("SD %s = %q, want %q", k, got, v)
		}
	}
	d := m.sd["details@32473"]
	if d["severity"] != "high" || d["method"] != "passkey" || d["odd_key___"] != `va"l]ue\` || d["__"] != "ü\uFFFD" {
		t.Errorf("details SD = %q", d)
	}
	var j audit.JSONEvent
	if err := json.Unmarshal([]byte(m.msg), &j); err != nil || j.ID != 42 || j.Details["method"] != "passkey" {
		t.Errorf("MSG = %q (%v)", m.msg, err)
	}
	for _, c := range []struct {
		e    store.AuditEvent
		want int
	}{
		{store.AuditEvent{Type: audit.SignInSuccess, Outcome: audit.Success}, SeverityInformational},
		{store.AuditEvent{Type: audit.SignInFailure, Outcome: audit.Failure}, SeverityWarning},
		{store.AuditEvent{Type: audit.TokenReuse, Outcome: audit.Failure}, SeverityCritical},
		{store.AuditEvent{Type: audit.Purged, Outcome: audit.Success}, SeverityNotice},
	} {
		if got := Severity(c.e); got != c.want {
			t.Errorf("Severity(%s) = %d, want %d", c.e.Type, got, c.want)
		}
	}
	// No details: one SD element; empty hostname and type become "-".
	m, err = parseMessage(Format{Hostname: "h"}.Message(store.AuditEvent{ID: 1, Time: t0}))
	if err != nil || len(m.sd) != 1 || m.msgid != "-" || m.pri != 10*8+SeverityInformational {
		t.Fatalf("bare event: %+v %v", m, err)
	}
	if got := string(Frame([]byte("abc"))); got != "3 abc" {
		t.Fatal(got)
	}
}

// exporter wires an Exporter for tests: fast polls and backoff.
func exporter(t *testing.T, name string, s Source, sink Sink, holder string, clock func() time.Time, stats Stats) *Exporter {
	t.Helper()
	x, err := New(Options{Name: name, Sink: sink, Store: s, Holder: holder, Batch: 16, Poll: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, SendTimeout: 5 * time.Second,
		Clock: clock, Logger: quiet, Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func ids(msgs []message) map[int64]int {
	out := map[int64]int{}
	for _, m := range msgs {
		id, _ := strconv.ParseInt(m.sd["garde@32473"]["id"], 10, 64)
		out[id]++
	}
	return out
}

func covers(n int64) func([]message) bool {
	return func(msgs []message) bool {
		got := ids(msgs)
		for id := int64(1); id <= n; id++ {
			if got[id] == 0 {
				return false
			}
		}
		return true
	}
}

// The SIEM goes down while sign-ins go on, then comes back: recording
// never waits for it, and every event arrives.
func TestSyslogOutageAndRecovery(t *testing.T) {
	p := newPKI(t)
	col := newCollector(t, p)
	s := openStore(t)
	rec := audit.New(s, quiet, nil, 0)
	sink, err := NewSyslog(SyslogOptions{Address: col.addr, TLS: p.clientTLS(), Format: Format{Hostname: "garde-test"}})
	if err != nil {
		t.Fatal(err)
	}
	var errorsSeen, sent atomic.Int64
	var lag atomic.Int64
	x := exporter(t, "siem", s, sink, "", nil, Stats{
		Sent:  func(string, int) {},
		Error: func(string) { errorsSeen.Add(1) },
		Lag:   func(_ string, l int64) { lag.Store(l) },
	})
	x.o.Stats.Sent = func(_ string, n int) { sent.Add(int64(n)) }
	rec.AfterWrite(x.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { x.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	record := func(from, to int) {
		for i := from; i < to; i++ {
			rec.Record(store.AuditEvent{Type: audit.SignInSuccess, Person: "p" + strconv.Itoa(i), Outcome: audit.Success,
				Details: map[string]string{"method": "password", "n": strconv.Itoa(i)}})
		}
		if err := rec.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	record(0, 20)
	col.waitFor("the first 20 events", covers(20))

	col.stop()     // the SIEM is down
	record(20, 60) // sign-ins go on: Record and Flush do not wait for the SIEM
	for errorsSeen.Load() == 0 {
		time.Sleep(10 * time.Millisecond) // the exporter notices the outage
	}
	if l := lag.Load(); l == 0 {
		t.Errorf("lag during the outage = %d, want > 0", l)
	}
	col.restart()
	msgs := col.waitFor("every event after the outage", covers(60))
	got := ids(msgs)
	for id := int64(1); id <= 60; id++ {
		if got[id] != 1 {
			t.Errorf("event %d received %d times", id, got[id])
		}
	}
	// The messages carry the events as stored.
	stored, err := s.ListAuditEvents(context.Background(), store.AuditQuery{AfterID: 44, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.sd["garde@32473"]["id"] == "45" {
			if m.sd["garde@32473"]["person"] != stored[0].Person || m.sd["details@32473"]["n"] != "44" ||
				m.sd["garde@32473"]["hash"] != audit.ToJSON(stored[0]).Hash || m.hostname != "garde-test" {
				t.Errorf("message of event 45 = %+v", m)
			}
		}
	}
	// The cursor moves once the batch is sent, a moment after the
	// collector has it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		cur, err := s.AuditExportCursor(context.Background(), "siem")
		if err != nil {
			t.Fatal(err)
		}
		if cur == 60 && lag.Load() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor = %d, lag %d; want 60, 0", cur, lag.Load())
		}
	}
	if sent.Load() < 60 {
		t.Errorf("sent = %d", sent.Load())
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A collector whose certificate is not from the configured CA gets
// nothing, and the events wait in the store.
func TestSyslogRefusesUntrustedCollector(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	col := newCollector(t, p)
	s := openStore(t)
	if err := s.AppendAuditEvents(context.Background(), []store.AuditEvent{{Time: t0, Type: audit.Logout, Outcome: audit.Success}}); err != nil {
		t.Fatal(err)
	}
	cfg := other.clientTLS()
	sink, _ := NewSyslog(SyslogOptions{Address: col.addr, TLS: cfg})
	x := exporter(t, "siem", s, sink, "", nil, Stats{})
	if _, err := x.Step(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Step against an untrusted collector: %v", err)
	}
	// Nor another name than the one configured.
	bad := p.clientTLS()
	bad.ServerName = "siem.elsewhere"
	sink2, _ := NewSyslog(SyslogOptions{Address: col.addr, TLS: bad})
	if err := sink2.Send(context.Background(), []store.AuditEvent{{ID: 1, Time: t0}}); err == nil {
		t.Fatal("sent to a collector with another name")
	}
	// Without a client certificate the collector refuses the handshake.
	nocert := p.clientTLS()
	nocert.Certificates = nil
	sink3, _ := NewSyslog(SyslogOptions{Address: col.addr, TLS: nocert})
	_ = sink3.Send(context.Background(), []store.AuditEvent{{ID: 1, Time: t0}})
	if msgs, _ := col.snapshot(); len(msgs) != 0 {
		t.Fatalf("the collector got %d messages", len(msgs))
	}
	if cur, _ := s.AuditExportCursor(context.Background(), "siem"); cur != 0 {
		t.Fatalf("cursor moved to %d", cur)
	}
	if _, err := NewSyslog(SyslogOptions{Address: "nohost", TLS: &tls.Config{}}); err == nil {
		t.Error("address without port accepted")
	}
	if _, err := NewSyslog(SyslogOptions{Address: "h:6514"}); err == nil {
		t.Error("syslog without TLS accepted")
	}
}

func readLines(t *testing.T, paths ...string) []audit.JSONEvent {
	t.Helper()
	var out []audit.JSONEvent
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var e audit.JSONEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %q: %v", p, sc.Text(), err)
			}
			out = append(out, e)
		}
	}
	return out
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	clock := testutil.NewClock(time.Date(2026, 3, 3, 23, 0, 0, 0, time.UTC))
	f, err := NewFile(FileOptions{Path: path, MaxSize: 1500, Daily: true, MaxFiles: 3, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id int) store.AuditEvent {
		return store.AuditEvent{ID: int64(id), Time: t0, Type: audit.TokenIssued, Outcome: audit.Success, Details: map[string]string{"grant_type": "authorization_code"}}
	}
	var batch []store.AuditEvent
	for i := 1; i <= 10; i++ {
		batch = append(batch, ev(i))
	}
	if err := f.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Millisecond)
	rotated, _ := Rotated(path)
	if len(rotated) == 0 {
		t.Fatal("no size rotation")
	}
	for _, p := range append(rotated, path) {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 1500 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", p, fi, err)
		}
	}
	all := readLines(t, append(rotated, path)...)
	if len(all) != 10 || all[0].ID != 1 || all[9].ID != 10 {
		t.Fatalf("lines across files: %d", len(all))
	}
	// A new day rotates at the next write, even though the file is small.
	before, _ := os.ReadFile(path)
	clock.Advance(2 * time.Hour)
	if err := f.Send(context.Background(), []store.AuditEvent{ev(11)}); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); len(got) != 1 || got[0].ID != 11 {
		t.Fatalf("after midnight the file holds %+v", got)
	}
	rotated, _ = Rotated(path)
	if last, _ := os.ReadFile(rotated[len(rotated)-1]); !bytes.Equal(last, before) {
		t.Error("the day's file was not rotated whole")
	}
	// Many more: only MaxFiles rotated files are kept, the newest.
	for i := 12; i <= 60; i++ {
		clock.Advance(time.Millisecond)
		if err := f.Send(context.Background(), []store.AuditEvent{ev(i)}); err != nil {
			t.Fatal(err)
		}
	}
	rotated, _ = Rotated(path)
	if len(rotated) != 3 {
		t.Fatalf("%d rotated files kept, want 3", len(rotated))
	}
	kept := readLines(t, append(rotated, path)...)
	for i := 1; i < len(kept); i++ {
		if kept[i].ID != kept[i-1].ID+1 {
			t.Fatalf("kept files are not the newest, in order: %d then %d", kept[i-1].ID, kept[i].ID)
		}
	}
	if kept[len(kept)-1].ID != 60 {
		t.Fatalf("last kept = %d", kept[len(kept)-1].ID)
	}
	// A restart appends to the existing file.
	f.Close()
	if err := f.Send(context.Background(), nil); err == nil {
		t.Error("Send after Close")
	}
	f2, _ := NewFile(FileOptions{Path: path, MaxSize: 1500, Clock: clock.Now})
	n := len(readLines(t, path))
	if err := f2.Send(context.Background(), []store.AuditEvent{ev(61)}); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); len(got) != n+1 && len(got) != 1 {
		t.Fatalf("after reopen: %d lines, had %d", len(got), n)
	}
	f2.Close()
	if _, err := NewFile(FileOptions{Path: filepath.Join(dir, "missing", "a.jsonl")}); err == nil {
		t.Error("a file in a missing directory accepted")
	}
}

// Two replicas export to one sink: one holds the lease and sends; the
// other takes over when the lease expires and goes on from the cursor.
func TestExportLease(t *testing.T) {
	s := openStore(t)
	var evs []store.AuditEvent
	for i := range 40 {
		evs = append(evs, store.AuditEvent{Time: t0, Type: audit.TokenIssued, Outcome: audit.Success, Details: map[string]string{"i": strconv.Itoa(i)}})
	}
	if err := s.AppendAuditEvents(context.Background(), evs[:20]); err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock(t0)
	dir := t.TempDir()
	fa, _ := NewFile(FileOptions{Path: filepath.Join(dir, "a.jsonl")})
	fb, _ := NewFile(FileOptions{Path: filepath.Join(dir, "b.jsonl")})
	a := exporter(t, "file", s, fa, "replica-a", clock.Now, Stats{})
	b := exporter(t, "file", s, fb, "replica-b", clock.Now, Stats{})
	ctx := context.Background()
	for range 3 {
		for _, x := range []*Exporter{a, b} {
			if _, err := x.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := len(readLines(t, filepath.Join(dir, "a.jsonl"))); got != 20 {
		t.Fatalf("replica a exported %d events, want 20", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.jsonl")); err == nil {
		t.Fatal("replica b exported while a held the lease")
	}
	// a stops (dies without releasing); its lease runs out.
	if err := s.AppendAuditEvents(ctx, evs[20:]); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Second)
	for range 3 {
		if _, err := b.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := readLines(t, filepath.Join(dir, "b.jsonl"))
	if len(got) != 20 || got[0].ID != 21 || got[19].ID != 40 {
		t.Fatalf("replica b exported %d events from %d", len(got), got[0].ID)
	}
	// a comes back: it no longer holds the lease.
	if _, err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, filepath.Join(dir, "a.jsonl"))); got != 20 {
		t.Fatalf("replica a exported again: %d", got)
	}
	// A clean stop releases the lease at once.
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(rctx) }()
	cancel()
	wg.Wait()
	if ok, err := s.AcquireAuditExportLease(ctx, "file", "replica-c", clock.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("after b stopped, the lease is not free: %v %v", ok, err)
	}
}

// FuzzParamValue: any recorded value survives the SD-PARAM escaping: the
// message parses, and the value reads back (as valid UTF-8).
func FuzzParamValue(f *testing.F) {
	for _, s := range []string{"", `"`, `\`, `]`, `\"]`, "a b=c", "new\nline", "é\xff", `\\]]""`, "[x@1 a=\"b\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got := UnescapeParamValue(EscapeParamValue(v)); got != strings.ToValidUTF8(v, "\uFFFD") {
			t.Fatalf("round trip of %q gave %q", v, got)
		}
		e := store.AuditEvent{ID: 1, Time: t0, Type: "x", Person: v, Details: map[string]string{"k": v}}
		m, err := parseMessage(Format{Hostname: "h"}.Message(e))
		if err != nil {
			t.Fatalf("message with %q does not parse: %v", v, err)
		}
		want := strings.ToValidUTF8(v, "\uFFFD")
		if m.sd["garde@32473"]["person"] != want || m.sd["details@32473"]["k"] != want {
			t.Fatalf("value %q read back as %q / %q", v, m.sd["garde@32473"]["person"], m.sd["details@32473"]["k"])
		}
	})
}
