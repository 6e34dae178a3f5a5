package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
)

// rawDB returns the SQL database under a store that exposes one (DB()),
// for tampering with rows behind the store's back; it skips otherwise.
func rawDB(t *testing.T, s store.Durable) *sql.DB {
	t.Helper()
	r, ok := s.(interface{ DB() *sql.DB })
	if !ok {
		t.Skip("the store exposes no SQL database to tamper with")
	}
	return r.DB()
}

// tamper runs raw SQL statements (no placeholders: they differ by
// database), each expected to change exactly one row.
func tamper(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		res, err := db.ExecContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("%s: %d rows changed (%v), want 1", q, n, err)
		}
	}
}

func verifyChain(t *testing.T, s store.Durable, fromID int64) store.ChainReport {
	t.Helper()
	rep, err := s.VerifyAuditChain(context.Background(), fromID)
	if err != nil {
		t.Fatalf("VerifyAuditChain(%d): %v", fromID, err)
	}
	return rep
}

func checkChain(t *testing.T, s store.Durable, fromID int64, want store.ChainReport) {
	t.Helper()
	got := verifyChain(t, s, fromID)
	if got.Start != want.Start || got.Checked != want.Checked || got.FirstBad != want.FirstBad ||
		got.Problem != want.Problem || got.LastID != want.LastID || !bytes.Equal(got.LastHash, want.LastHash) {
		t.Fatalf("VerifyAuditChain(%d) = %+v,\nwant %+v", fromID, got, want)
	}
}

// chainEvents appends n events in batches of various sizes and returns them
// as stored.
func chainEvents(t *testing.T, s store.Durable, n int) []store.AuditEvent {
	t.Helper()
	var batch []store.AuditEvent
	for i := range n {
		batch = append(batch, store.AuditEvent{Time: base.Add(time.Duration(i) * time.Millisecond), Type: "token.issued",
			Person: "p-" + strconv.Itoa(i), App: "wiki", Outcome: "success", Reason: "r-" + strconv.Itoa(i),
			Details: map[string]string{"i": strconv.Itoa(i), "z": "last", "a": "first"}})
		if len(batch) == 1+i%7 || i == n-1 {
			appendEvents(t, s, batch...)
			batch = batch[:0]
		}
	}
	all := listEvents(t, s, store.AuditQuery{Limit: n + 10})
	if len(all) != n {
		t.Fatalf("%d events stored, want %d", len(all), n)
	}
	return all
}

func testAuditChain(t *testing.T, s store.Durable) {
	ctx := context.Background()
	if id, h, err := s.AuditChainHead(ctx); err != nil || id != 0 || h != nil {
		t.Fatalf("AuditChainHead of an empty store = %d, %x, %v", id, h, err)
	}
	empty := verifyChain(t, s, 0)
	if empty.Checked != 0 || empty.FirstBad != 0 || empty.Problem != "" || empty.Start != 1 {
		t.Fatalf("VerifyAuditChain of an empty store = %+v", empty)
	}
	all := chainEvents(t, s, 60)
	// Odd details: JSON-escaped, non-ASCII, invalid UTF-8 (stored
	// replaced), empty key.
	appendEvents(t, s, store.AuditEvent{Time: base.In(time.FixedZone("X", -7200)).Add(789 * time.Nanosecond), Type: "signin.failure",
		ClientAddr: "2001:db8::1", Outcome: "failure", Reason: "invalid_credentials", SessionID: "sid",
		Details: map[string]string{"quote\"d": "new\nline <&>", "é": "\u2028ü", "bad": "\xff\xfe", "": "\x00"}})
	all = listEvents(t, s, store.AuditQuery{Limit: 1000})
	prev := store.AuditGenesis
	for i, e := range all {
		if i > 0 && e.ID != all[i-1].ID+1 {
			t.Fatalf("IDs not consecutive: %d then %d", all[i-1].ID, e.ID)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("event %d: PrevHash %x, want %x", e.ID, e.PrevHash, prev)
		}
		if want := store.AuditEventHash(prev, e); !bytes.Equal(e.Hash, want) {
			t.Fatalf("event %d: Hash %x, want SHA-256(prev || canonical) = %x", e.ID, e.Hash, want)
		}
		prev = e.Hash
	}
	last := all[len(all)-1]
	if id, h, err := s.AuditChainHead(ctx); err != nil || id != last.ID || !bytes.Equal(h, last.Hash) {
		t.Fatalf("AuditChainHead = %d, %x, %v; want %d, %x", id, h, err, last.ID, last.Hash)
	}
	n := int64(len(all))
	checkChain(t, s, 0, store.ChainReport{Start: all[0].ID, Checked: n, LastID: last.ID, LastHash: last.Hash})
	checkChain(t, s, -5, store.ChainReport{Start: all[0].ID, Checked: n, LastID: last.ID, LastHash: last.Hash})
	checkChain(t, s, all[10].ID, store.ChainReport{Start: all[0].ID, Checked: n - 10, LastID: last.ID, LastHash: last.Hash})
	checkChain(t, s, last.ID+1, store.ChainReport{Start: all[0].ID})
}

func testAuditChainAltered(t *testing.T, s store.Durable) {
	all := chainEvents(t, s, 30)
	db := rawDB(t, s)
	victim := all[12]
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET reason = 'nothing_to_see' WHERE id = %d", victim.ID))
	rep := verifyChain(t, s, 0)
	if rep.FirstBad != victim.ID || rep.Problem != store.ChainAltered || rep.Checked != 12 || rep.LastID != all[11].ID {
		t.Fatalf("after UPDATE of event %d: %+v, want it altered after 12 good events", victim.ID, rep)
	}
	// Verifying from after it trusts the stored hash before: intact.
	checkChain(t, s, victim.ID+1, store.ChainReport{Start: all[0].ID, Checked: 17, LastID: all[29].ID, LastHash: all[29].Hash})

	// Recomputing the altered event's hash (no key is needed for that)
	// moves the break to the next event, whose link no longer matches.
	victim.Reason = "nothing_to_see"
	h := store.AuditEventHash(victim.PrevHash, victim)
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET hash = %s WHERE id = %d", blobLiteral(db, h), victim.ID))
	rep = verifyChain(t, s, 0)
	if rep.FirstBad != all[13].ID || rep.Problem != store.ChainAltered {
		t.Fatalf("after rehashing event %d: %+v, want event %d altered", victim.ID, rep, all[13].ID)
	}

	// A row whose hash was removed is altered too.
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET hash = NULL WHERE id = %d", all[3].ID))
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[3].ID || rep.Problem != store.ChainAltered {
		t.Fatalf("after nulling event %d's hash: %+v", all[3].ID, rep)
	}
}

// blobLiteral writes b as a SQL literal for the database behind db.
func blobLiteral(db *sql.DB, b []byte) string {
	if fmt.Sprintf("%T", db.Driver()) == "*sqlite.Driver" {
		return fmt.Sprintf("X'%x'", b)
	}
	return fmt.Sprintf(`'\x%x'::bytea`, b)
}

func testAuditChainMissing(t *testing.T, s store.Durable) {
	all := chainEvents(t, s, 30)
	db := rawDB(t, s)
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", all[20].ID))
	rep := verifyChain(t, s, 0)
	if rep.FirstBad != all[21].ID || rep.Problem != store.ChainMissing || rep.Checked != 20 {
		t.Fatalf("after DELETE of event %d: %+v, want missing at %d", all[20].ID, rep, all[21].ID)
	}
	// Verifying from just after the hole: the anchor is gone.
	if rep := verifyChain(t, s, all[21].ID); rep.FirstBad != all[21].ID || rep.Problem != store.ChainMissing {
		t.Fatalf("verify from %d: %+v", all[21].ID, rep)
	}
	// Deleting the first event.
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", all[0].ID))
	if rep := verifyChain(t, s, 0); rep.FirstBad != all[1].ID || rep.Problem != store.ChainMissing || rep.Checked != 0 {
		t.Fatalf("after DELETE of the first event: %+v", rep)
	}
	// New appends continue the chain from the last stored event.
	appendEvents(t, s, store.AuditEvent{Time: base, Type: "logout", Outcome: "success"})
	got := listEvents(t, s, store.AuditQuery{AfterID: all[29].ID})
	if len(got) != 1 || got[0].ID != all[29].ID+1 || !bytes.Equal(got[0].PrevHash, all[29].Hash) {
		t.Fatalf("append after the tampering: %+v", got)
	}
}

func testAuditChainReordered(t *testing.T, s store.Durable) {
	all := chainEvents(t, s, 30)
	db := rawDB(t, s)
	// Swap two whole rows (hashes with them): the chain sees event 8's
	// predecessor stored after it.
	a, b := all[8].ID, all[9].ID
	tamper(t, db,
		fmt.Sprintf("UPDATE audit_events SET id = -1 WHERE id = %d", a),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = %d", a, b),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = -1", b))
	rep := verifyChain(t, s, 0)
	if rep.FirstBad != a || rep.Problem != store.ChainReordered || rep.Checked != 8 {
		t.Fatalf("after swapping rows %d and %d: %+v, want %d reordered", a, b, rep, a)
	}
	// Swap them back, then swap the contents only (hashes stay put).
	tamper(t, db,
		fmt.Sprintf("UPDATE audit_events SET id = -1 WHERE id = %d", a),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = %d", a, b),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = -1", b))
	checkChain(t, s, 0, store.ChainReport{Start: all[0].ID, Checked: 30, LastID: all[29].ID, LastHash: all[29].Hash})
	c, d := all[20], all[25]
	tamper(t, db,
		fmt.Sprintf("UPDATE audit_events SET person = '%s', reason = '%s' WHERE id = %d", d.Person, d.Reason, c.ID),
		fmt.Sprintf("UPDATE audit_events SET person = '%s', reason = '%s' WHERE id = %d", c.Person, c.Reason, d.ID))
	rep = verifyChain(t, s, 0)
	if rep.FirstBad != c.ID || (rep.Problem != store.ChainAltered && rep.Problem != store.ChainReordered) {
		t.Fatalf("after swapping the contents of %d and %d: %+v, want %d altered or reordered", c.ID, d.ID, rep, c.ID)
	}
}

func testAuditCheckpoints(t *testing.T, s store.Durable) {
	ctx := context.Background()
	if _, err := s.LatestAuditCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LatestAuditCheckpoint of an empty store: %v, want ErrNotFound", err)
	}
	if cs, err := s.ListAuditCheckpoints(ctx, 0, 0); err != nil || len(cs) != 0 {
		t.Fatalf("ListAuditCheckpoints of an empty store: %v, %v", cs, err)
	}
	key := audit.DeriveCheckpointKey(bytes.Repeat([]byte{7}, 32))
	pub := key.Public().(ed25519.PublicKey)
	all := chainEvents(t, s, 20)
	var signed []store.AuditCheckpoint
	for _, i := range []int{4, 9, 19} {
		c := audit.SignCheckpoint(key, all[i].ID, all[i].Hash, base.Add(time.Duration(i)*time.Second))
		if err := s.AddAuditCheckpoint(ctx, c); err != nil {
			t.Fatalf("AddAuditCheckpoint: %v", err)
		}
		signed = append(signed, c)
	}
	// One checkpoint per event.
	dup := audit.SignCheckpoint(key, all[19].ID, all[19].Hash, base)
	if err := s.AddAuditCheckpoint(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second checkpoint of event %d: %v, want ErrConflict", all[19].ID, err)
	}
	cs, err := s.ListAuditCheckpoints(ctx, 0, 0)
	if err != nil || len(cs) != 3 {
		t.Fatalf("ListAuditCheckpoints = %d, %v", len(cs), err)
	}
	for i, c := range cs {
		w := signed[i]
		if c.ID <= 0 || (i > 0 && c.ID <= cs[i-1].ID) || c.EventID != w.EventID || !bytes.Equal(c.Hash, w.Hash) ||
			!bytes.Equal(c.Signature, w.Signature) || c.KeyID != w.KeyID || !sameTime(c.CreatedAt, w.CreatedAt) {
			t.Errorf("checkpoint %d = %+v,\nwant %+v", i, c, w)
		}
	}
	if page, err := s.ListAuditCheckpoints(ctx, cs[0].ID, 1); err != nil || len(page) != 1 || page[0].ID != cs[1].ID {
		t.Fatalf("ListAuditCheckpoints(after %d, 1) = %+v, %v", cs[0].ID, page, err)
	}
	if latest, err := s.LatestAuditCheckpoint(ctx); err != nil || latest.ID != cs[2].ID {
		t.Fatalf("LatestAuditCheckpoint = %+v, %v", latest, err)
	}
	rep, err := audit.VerifyCheckpoints(ctx, s, pub)
	if err != nil || rep.Checked != 3 || rep.FirstBad != 0 || rep.Problem != "" || rep.Latest.ID != cs[2].ID {
		t.Fatalf("VerifyCheckpoints = %+v, %v", rep, err)
	}
	// Another master key's public key: the checkpoints are not its.
	other := audit.DeriveCheckpointKey(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	if rep, err := audit.VerifyCheckpoints(ctx, s, other); err != nil || rep.FirstBad != cs[0].ID || rep.Problem != audit.CheckpointUnknownKey {
		t.Fatalf("VerifyCheckpoints with another key = %+v, %v", rep, err)
	}

	// The signed event's hash rewritten: the checkpoint no longer matches.
	db := rawDB(t, s)
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET hash = %s WHERE id = %d", blobLiteral(db, make([]byte, 32)), all[9].ID))
	if rep, err := audit.VerifyCheckpoints(ctx, s, pub); err != nil || rep.FirstBad != cs[1].ID || rep.EventID != all[9].ID ||
		rep.Problem != audit.CheckpointHashMismatch || rep.Checked != 1 {
		t.Fatalf("VerifyCheckpoints after rewriting event %d's hash = %+v, %v", all[9].ID, rep, err)
	}
	tamper(t, db, fmt.Sprintf("UPDATE audit_events SET hash = %s WHERE id = %d", blobLiteral(db, all[9].Hash), all[9].ID))

	// A forged checkpoint: its signature does not verify.
	appendEvents(t, s, store.AuditEvent{Time: base, Type: "logout", Outcome: "success"})
	id, h, err := s.AuditChainHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged := audit.SignCheckpoint(key, id, h, base)
	forged.Signature[0] ^= 1
	if err := s.AddAuditCheckpoint(ctx, forged); err != nil {
		t.Fatal(err)
	}
	latest, err := s.LatestAuditCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyCheckpoints(ctx, s, pub)
	if err != nil || rep.FirstBad != latest.ID || rep.EventID != id || rep.Problem != audit.CheckpointBadSignature || rep.Checked != 3 {
		t.Fatalf("VerifyCheckpoints with a forged checkpoint %d = %+v, %v", latest.ID, rep, err)
	}
	// The signed event deleted.
	tamper(t, db, fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", all[4].ID))
	if rep, err := audit.VerifyCheckpoints(ctx, s, pub); err != nil || rep.FirstBad != cs[0].ID || rep.Problem != audit.CheckpointEventMissing {
		t.Fatalf("VerifyCheckpoints after deleting event %d = %+v, %v", all[4].ID, rep, err)
	}
}
