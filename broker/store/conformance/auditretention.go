package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
)

// testAuditQueryFilters covers the filters added for the admin console and
// `garde audit query`: several types, client address exact or CIDR.
func testAuditQueryFilters(t *testing.T, s store.Durable) {
	addrs := []string{"10.1.2.3", "10.1.200.7", "10.2.0.1", "192.0.2.1", "2001:db8::1", "2001:db8:1::5", "2001:db9::1", "", "unknown", "10.1.2.30"}
	var evs []store.AuditEvent
	for i, a := range addrs {
		typ := []string{"signin.success", "signin.failure", "token.issued"}[i%3]
		evs = append(evs, store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Type: typ, ClientAddr: a, Outcome: "success"})
	}
	appendEvents(t, s, evs...)
	idx := func(got []store.AuditEvent) []int {
		var out []int
		for _, e := range got {
			for i, a := range addrs {
				if e.ClientAddr == a && e.Time.Equal(evs[i].Time) {
					out = append(out, i)
				}
			}
		}
		return out
	}
	cases := []struct {
		q    store.AuditQuery
		want []int
	}{
		{store.AuditQuery{ClientAddr: "10.1.2.3"}, []int{0}}, // exact: not 10.1.2.30
		{store.AuditQuery{ClientAddr: "::ffff:10.1.2.3"}, []int{0}},
		{store.AuditQuery{ClientAddr: "2001:DB8::1"}, []int{4}},
		{store.AuditQuery{ClientAddr: "unknown"}, []int{8}},
		{store.AuditQuery{ClientAddr: "10.1.0.0/16"}, []int{0, 1, 9}},
		{store.AuditQuery{ClientAddr: "10.0.0.0/8"}, []int{0, 1, 2, 9}},
		{store.AuditQuery{ClientAddr: "10.1.2.0/27"}, []int{0, 9}},
		{store.AuditQuery{ClientAddr: "10.1.2.3/32"}, []int{0}},
		{store.AuditQuery{ClientAddr: "10.1.128.0/17"}, []int{1}},
		{store.AuditQuery{ClientAddr: "0.0.0.0/0"}, []int{0, 1, 2, 3, 9}},
		{store.AuditQuery{ClientAddr: "::ffff:10.1.0.0/112"}, []int{0, 1, 9}},
		{store.AuditQuery{ClientAddr: "2001:db8::/32"}, []int{4, 5}},
		{store.AuditQuery{ClientAddr: "2001:db8::/48"}, []int{4}},
		{store.AuditQuery{ClientAddr: "10.1.0.0/16", Limit: 2}, []int{0, 1}},
		{store.AuditQuery{ClientAddr: "10.1.0.0/16", Type: "signin.success"}, []int{0, 9}},
		{store.AuditQuery{Types: []string{"signin.failure", "token.issued"}}, []int{1, 2, 4, 5, 7, 8}},
		{store.AuditQuery{Types: []string{"signin.failure"}, Type: "signin.failure"}, []int{1, 4, 7}},
		{store.AuditQuery{Types: []string{"signin.failure"}, Type: "token.issued"}, nil},
		{store.AuditQuery{Types: []string{"token.issued"}, ClientAddr: "10.0.0.0/8"}, []int{2}},
	}
	for _, c := range cases {
		if got := idx(listEvents(t, s, c.q)); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("ListAuditEvents(%+v) = events %v, want %v", c.q, got, c.want)
		}
	}
	all := listEvents(t, s, store.AuditQuery{})
	page := listEvents(t, s, store.AuditQuery{ClientAddr: "10.1.0.0/16", AfterID: all[0].ID, Limit: 1})
	if len(page) != 1 || page[0].ID != all[1].ID {
		t.Errorf("second page of 10.1.0.0/16 = %+v", page)
	}
	for _, bad := range []string{"10.1.0.0/33", "10.1/16", "::ffff:0:0/90"} {
		if _, err := s.ListAuditEvents(context.Background(), store.AuditQuery{ClientAddr: bad}); err == nil {
			t.Errorf("ClientAddr %q: no error", bad)
		}
	}

	// A prefix whose matches are far apart: more than a page of other
	// events between them.
	var filler []store.AuditEvent
	for range 700 {
		filler = append(filler, store.AuditEvent{Time: base, Type: "token.issued", ClientAddr: "192.0.2.9", Outcome: "success"})
	}
	appendEvents(t, s, filler...)
	appendEvents(t, s, store.AuditEvent{Time: base, Type: "logout", ClientAddr: "2001:db8:ffff::1", Outcome: "success"})
	got := listEvents(t, s, store.AuditQuery{ClientAddr: "2001:db8::/32", AfterID: all[4].ID, Limit: 5})
	if len(got) != 2 || got[0].ClientAddr != "2001:db8:1::5" || got[1].ClientAddr != "2001:db8:ffff::1" {
		t.Errorf("2001:db8::/32 across 700 other events = %+v", got)
	}
}

// signedTrail appends n events (times base + i ms) and checkpoints the ones
// at the given indexes.
func signedTrail(t *testing.T, s store.Durable, n int, at ...int) ([]store.AuditEvent, ed25519.PrivateKey) {
	t.Helper()
	all := chainEvents(t, s, n)
	key := audit.DeriveCheckpointKey(bytes.Repeat([]byte{7}, 32))
	for _, i := range at {
		if err := s.AddAuditCheckpoint(context.Background(), audit.SignCheckpoint(key, all[i].ID, all[i].Hash, base)); err != nil {
			t.Fatal(err)
		}
	}
	return all, key
}

func verifyCheckpoints(t *testing.T, s store.Durable, key ed25519.PrivateKey) audit.CheckpointReport {
	t.Helper()
	rep, err := audit.VerifyCheckpoints(context.Background(), s, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("VerifyCheckpoints: %v", err)
	}
	return rep
}

func testAuditPurge(t *testing.T, s store.Durable) {
	ctx := context.Background()
	all, key := signedTrail(t, s, 30, 9, 19)
	clock := base.Add(time.Hour)
	p := audit.NewPurger(s, key.Public().(ed25519.PublicKey), func() time.Time { return clock }, nil)

	// Nothing older than the first checkpointed event: nothing purged.
	if res, err := p.PurgeAuditEvents(ctx, base.Add(9*time.Millisecond)); err != nil || res.Through != 0 || res.Deleted != 0 {
		t.Fatalf("purge before any signed event = %+v, %v", res, err)
	}
	// Events 0..14 are older; the newest signed one among them is 9.
	res, err := p.PurgeAuditEvents(ctx, base.Add(15*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 10 || res.From != all[0].ID || res.Through != all[9].ID || res.Anchor.EventID != all[9].ID {
		t.Fatalf("purge = %+v", res)
	}
	kept := listEvents(t, s, store.AuditQuery{Limit: 100})
	if len(kept) != 21 || kept[0].ID != all[10].ID {
		t.Fatalf("after the purge: %d events from %d", len(kept), kept[0].ID)
	}
	rec := kept[20]
	if rec.ID != all[29].ID+1 || rec.Type != audit.Purged || rec.Outcome != audit.Success || !bytes.Equal(rec.PrevHash, all[29].Hash) ||
		rec.Details["through"] != strconv.FormatInt(all[9].ID, 10) || rec.Details["from"] != strconv.FormatInt(all[0].ID, 10) ||
		rec.Details["anchor_hash"] != fmt.Sprintf("%x", all[9].Hash) || !sameTime(rec.Time, clock) {
		t.Fatalf("purge record = %+v", rec)
	}
	checkChain(t, s, 0, store.ChainReport{Start: all[10].ID, Checked: 21, LastID: rec.ID, LastHash: rec.Hash, Anchor: all[9].ID, AnchorHash: all[9].Hash})
	if id, h, err := s.AuditChainAnchor(ctx); err != nil || id != all[9].ID || !bytes.Equal(h, all[9].Hash) {
		t.Fatalf("AuditChainAnchor = %d, %x, %v", id, h, err)
	}
	cps, err := s.ListAuditCheckpoints(ctx, 0, 0)
	if err != nil || len(cps) != 2 || cps[0].EventID != all[9].ID {
		t.Fatalf("checkpoints after the purge = %+v, %v (the anchor's is kept)", cps, err)
	}
	if rep := verifyCheckpoints(t, s, key); rep.Problem != "" || rep.Checked != 2 || rep.Anchor != all[9].ID {
		t.Fatalf("VerifyCheckpoints after the purge = %+v", rep)
	}
	// The same cutoff again: nothing more to purge.
	if res, err := p.PurgeAuditEvents(ctx, base.Add(15*time.Millisecond)); err != nil || res.Through != 0 {
		t.Fatalf("second purge = %+v, %v", res, err)
	}
	// Appends go on from the head.
	appendEvents(t, s, store.AuditEvent{Time: base.Add(time.Hour), Type: "logout", Outcome: "success"})
	if rep := verifyChain(t, s, 0); rep.Problem != "" || rep.Checked != 22 {
		t.Fatalf("after an append: %+v", rep)
	}

	// The store refuses an anchor no stored checkpoint signs, and one
	// before the current anchor.
	other := audit.SignCheckpoint(key, all[15].ID, all[15].Hash, base)
	if _, err := s.PurgeAuditEvents(ctx, other, store.AuditEvent{Time: base, Type: audit.Purged}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("purge at an unsigned event: %v, want ErrConflict", err)
	}
	wrong := cps[1]
	wrong.Hash = all[18].Hash
	if _, err := s.PurgeAuditEvents(ctx, wrong, store.AuditEvent{Time: base, Type: audit.Purged}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("purge with a checkpoint of another hash: %v, want ErrConflict", err)
	}
	if n := len(listEvents(t, s, store.AuditQuery{Limit: 100})); n != 22 {
		t.Fatalf("refused purges deleted events: %d left", n)
	}

	// Everything older than a cutoff past the end, up to the last
	// checkpoint (event 19); events after it stay.
	res, err = p.PurgeAuditEvents(ctx, base.Add(48*time.Hour))
	if err != nil || res.Through != all[19].ID || res.From != all[10].ID || res.Deleted != 10 {
		t.Fatalf("second purge = %+v, %v", res, err)
	}
	if rep := verifyChain(t, s, 0); rep.Problem != "" || rep.Anchor != all[19].ID || rep.Start != all[20].ID {
		t.Fatalf("after the second purge: %+v", rep)
	}
	if rep := verifyCheckpoints(t, s, key); rep.Problem != "" || rep.Anchor != all[19].ID {
		t.Fatalf("VerifyCheckpoints after the second purge = %+v", rep)
	}

	// Tampering after a purge is still found: an event deleted after the
	// anchor...
	db := rawDB(t, s)
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", all[22].ID))
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[23].ID || rep.Problem != store.ChainMissing {
		t.Fatalf("after deleting event %d past the anchor: %+v", all[22].ID, rep)
	}
	// ...the first kept event deleted...
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", all[20].ID))
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[21].ID || rep.Problem != store.ChainMissing || rep.Checked != 0 {
		t.Fatalf("after deleting the first kept event: %+v", rep)
	}
	// ...the anchor's checkpoint deleted.
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_checkpoints WHERE event_id = %d", all[19].ID))
	if rep := verifyCheckpoints(t, s, key); rep.Problem != audit.CheckpointAnchorUnsigned || rep.EventID != all[19].ID {
		t.Fatalf("VerifyCheckpoints without the anchor's checkpoint = %+v", rep)
	}
}

// A purge the purger refuses, and purges faked with SQL.
func testAuditPurgeTampered(t *testing.T, s store.Durable) {
	ctx := context.Background()
	all, key := signedTrail(t, s, 30, 9, 19)
	db := rawDB(t, s)
	p := audit.NewPurger(s, key.Public().(ed25519.PublicKey), nil, nil)

	// A broken chain is not purged: that would erase the evidence.
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET person = 'x' WHERE id = %d", all[3].ID))
	if _, err := p.PurgeAuditEvents(ctx, base.Add(time.Hour)); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("purge of a broken chain: %v, want ErrChainBroken", err)
	}
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET person = '%s' WHERE id = %d", all[3].Person, all[3].ID))
	// Nor with a forged checkpoint.
	tamper(t, db, fmt.Sprintf("UPDATE audit_checkpoints SET signature = %s WHERE event_id = %d", blobLiteral(db, make([]byte, 64)), all[19].ID))
	if _, err := p.PurgeAuditEvents(ctx, base.Add(time.Hour)); !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("purge with a forged checkpoint: %v, want ErrChainBroken", err)
	}
	if n := len(listEvents(t, s, store.AuditQuery{Limit: 100})); n != 30 {
		t.Fatalf("refused purges deleted events: %d left", n)
	}
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_checkpoints WHERE event_id = %d", all[19].ID))

	// Faked purge 1: events 0..4 deleted and the anchor set to event 4,
	// which no checkpoint signs. The chain links; the anchor is unsigned.
	tamper(t, db, fmt.Sprintf("UPDATE audit_chain SET anchor_id = %d, anchor_hash = %s", all[4].ID, blobLiteral(db, all[4].Hash)))
	if _, err := db.ExecContext(ctx, fmt.Sprintf("DELETE FROM audit_events WHERE id <= %d", all[4].ID)); err != nil {
		t.Fatal(err)
	}
	if rep := verifyChain(t, s, 0); rep.Problem != "" || rep.Anchor != all[4].ID {
		t.Fatalf("chain after a faked purge: %+v", rep)
	}
	if rep := verifyCheckpoints(t, s, key); rep.Problem != audit.CheckpointAnchorUnsigned || rep.EventID != all[4].ID {
		t.Fatalf("VerifyCheckpoints after a faked purge to an unsigned event = %+v", rep)
	}

	// Faked purge 2: up to the genuine checkpoint of event 9, but no
	// audit.purged event records it.
	tamper(t, db, fmt.Sprintf("UPDATE audit_chain SET anchor_id = %d, anchor_hash = %s", all[9].ID, blobLiteral(db, all[9].Hash)))
	if _, err := db.ExecContext(ctx, fmt.Sprintf("DELETE FROM audit_events WHERE id <= %d", all[9].ID)); err != nil {
		t.Fatal(err)
	}
	if rep := verifyChain(t, s, 0); rep.Problem != "" {
		t.Fatalf("chain after a faked purge: %+v", rep)
	}
	if rep := verifyCheckpoints(t, s, key); rep.Problem != audit.CheckpointPurgeUnrecorded || rep.EventID != all[9].ID {
		t.Fatalf("VerifyCheckpoints after an unrecorded purge = %+v", rep)
	}

	// The anchor hash rewritten: the first kept event no longer links.
	tamper(t, db, fmt.Sprintf("UPDATE audit_chain SET anchor_hash = %s", blobLiteral(db, all[8].Hash)))
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[10].ID || rep.Problem == "" {
		t.Fatalf("chain with a rewritten anchor hash: %+v", rep)
	}
	// The anchor removed altogether: the events before the first kept one
	// are missing.
	tamper(t, db, "UPDATE audit_chain SET anchor_id = 0, anchor_hash = NULL")
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[10].ID || rep.Problem != store.ChainMissing {
		t.Fatalf("chain with the anchor removed: %+v", rep)
	}
}

// Purging every event: the purge record becomes the only one, linked to
// the anchor, and appends continue the IDs.
func testAuditPurgeAll(t *testing.T, s store.Durable) {
	ctx := context.Background()
	all, key := signedTrail(t, s, 12, 11)
	p := audit.NewPurger(s, key.Public().(ed25519.PublicKey), func() time.Time { return base.Add(time.Hour) }, nil)
	res, err := p.PurgeAuditEvents(ctx, base.Add(time.Hour))
	if err != nil || res.Deleted != 12 || res.Through != all[11].ID {
		t.Fatalf("purge all = %+v, %v", res, err)
	}
	appendEvents(t, s, store.AuditEvent{Time: base, Type: "logout", Outcome: "success"})
	got := listEvents(t, s, store.AuditQuery{})
	if len(got) != 2 || got[0].ID != all[11].ID+1 || !bytes.Equal(got[0].PrevHash, all[11].Hash) || got[1].ID != all[11].ID+2 {
		t.Fatalf("after purging all: %+v", got)
	}
	if rep := verifyChain(t, s, 0); rep.Problem != "" || rep.Checked != 2 {
		t.Fatalf("chain after purging all: %+v", rep)
	}
	if rep := verifyCheckpoints(t, s, key); rep.Problem != "" {
		t.Fatalf("checkpoints after purging all: %+v", rep)
	}
}

func testAuditExportCursors(t *testing.T, s store.Durable) {
	ctx := context.Background()
	cur := func(sink string) int64 {
		t.Helper()
		id, err := s.AuditExportCursor(ctx, sink)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if cur("siem") != 0 {
		t.Fatal("new cursor not 0")
	}
	for _, id := range []int64{5, 3, 9} {
		if err := s.AdvanceAuditExportCursor(ctx, "siem", id); err != nil {
			t.Fatal(err)
		}
	}
	if cur("siem") != 9 || cur("file") != 0 {
		t.Fatalf("cursors = %d, %d; want 9 (never backwards), 0", cur("siem"), cur("file"))
	}
	lease := func(sink, holder string, now time.Time) bool {
		t.Helper()
		ok, err := s.AcquireAuditExportLease(ctx, sink, holder, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("siem", "a", base) || lease("siem", "b", base.Add(time.Second)) || !lease("siem", "a", base.Add(30*time.Second)) {
		t.Fatal("lease: a takes it, b is refused, a renews")
	}
	if lease("siem", "b", base.Add(80*time.Second)) {
		t.Fatal("b took a lease renewed 50 s before, for a minute")
	}
	if !lease("siem", "b", base.Add(91*time.Second)) || lease("siem", "a", base.Add(92*time.Second)) {
		t.Fatal("expired lease: b takes it, a is refused")
	}
	if cur("siem") != 9 {
		t.Fatal("leasing moved the cursor")
	}
	if err := s.ReleaseAuditExportLease(ctx, "siem", "a"); err != nil || lease("siem", "a", base.Add(93*time.Second)) {
		t.Fatalf("a released b's lease (%v)", err)
	}
	if err := s.ReleaseAuditExportLease(ctx, "siem", "b"); err != nil || !lease("siem", "a", base.Add(94*time.Second)) {
		t.Fatalf("after b released, a cannot take the lease (%v)", err)
	}
	if !lease("file", "b", base) {
		t.Fatal("leases are per sink")
	}

	// Replicas racing for a new sink's lease: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AcquireAuditExportLease(ctx, "race", "r"+strconv.Itoa(i), base, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d replicas hold the lease, want 1", wins)
	}
}
