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

// RunDurable runs the store.Durable suite. newStore returns a new, empty
// store for one sub-test and closes it at cleanup.
func RunDurable(t *testing.T, newStore func(t *testing.T) store.Durable) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Durable)
	}{
		{"Ping", testDurablePing},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyConflicts", testSigningKeyConflicts},
		{"RefreshTokens", testRefreshTokens},
		{"DeactivateRefreshToken", testDeactivateRefreshToken},
		{"RevokeRefreshTokenFamily", testRevokeFamily},
		{"RevokeRefreshTokensOfSession", testRevokeSession},
		{"DeleteExpiredRefreshTokens", testDeleteExpired},
		{"TimesAreUTC", testTimesAreUTC},
		{"AuditAppendList", testAuditAppendList},
		{"AuditQuery", testAuditQuery},
		{"AuditPaging", testAuditPaging},
		{"RaceDeactivateRefreshToken", testRaceDeactivate},
		{"RaceInsertSigningKey", testRaceInsertSigningKey},
		{"RaceAppendAuditEvents", testRaceAppendAudit},
		{"AuditChain", testAuditChain},
		{"AuditChainAltered", testAuditChainAltered},
		{"AuditChainMissing", testAuditChainMissing},
		{"AuditChainReordered", testAuditChainReordered},
		{"AuditCheckpoints", testAuditCheckpoints},
		{"AuditQueryFilters", testAuditQueryFilters},
		{"AuditPurge", testAuditPurge},
		{"AuditPurgeTampered", testAuditPurgeTampered},
		{"AuditPurgeAll", testAuditPurgeAll},
		{"AuditExportCursors", testAuditExportCursors},
		{"WebAuthnCredentials", testWebAuthnCredentials},
		{"WebAuthnCredentialConflicts", testWebAuthnCredentialConflicts},
		{"UpdateWebAuthnCredentialUse", testUpdateWebAuthnCredentialUse},
		{"RenameWebAuthnCredential", testRenameWebAuthnCredential},
		{"DeleteWebAuthnCredential", testDeleteWebAuthnCredential},
		{"FlagWebAuthnCredential", testFlagWebAuthnCredential},
		{"DeleteWebAuthnCredentialsOf", testDeleteWebAuthnCredentialsOf},
		{"EnrollmentCodes", testEnrollmentCodes},
		{"EnrollmentCodeRefusals", testEnrollmentCodeRefusals},
		{"ListEnrollmentCodes", testListEnrollmentCodes},
		{"RaceUseEnrollmentCode", testRaceUseEnrollmentCode},
		{"IdentityLinks", testIdentityLinks},
		{"RaceCreateIdentityLink", testRaceCreateIdentityLink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// base is a fixed instant with microseconds, in a zone other than UTC, so
// that the tests see both precision and normalisation.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600))

func testDurablePing(t *testing.T, s store.Durable) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func sameTime(a, b time.Time) bool {
	return a.Equal(b) && a.Location() == time.UTC
}

func checkKey(t *testing.T, got, want store.SigningKey) {
	t.Helper()
	if got.KID != want.KID || got.Alg != want.Alg || got.Generation != want.Generation ||
		!bytes.Equal(got.Sealed, want.Sealed) || !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("signing key = %+v,\nwant %+v (CreatedAt in UTC)", got, want)
	}
}

func listKeys(t *testing.T, s store.Durable) []store.SigningKey {
	t.Helper()
	keys, err := s.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	return keys
}

func testSigningKeys(t *testing.T, s store.Durable) {
	ctx := context.Background()
	if keys := listKeys(t, s); len(keys) != 0 {
		t.Fatalf("new store has keys: %+v", keys)
	}
	rs2 := store.SigningKey{KID: "rs-2", Alg: "RS256", Generation: 2, Sealed: []byte{0, 1, 2, 0xff}, CreatedAt: base.Add(time.Hour)}
	es1 := store.SigningKey{KID: "es-1", Alg: "ES256", Generation: 1, Sealed: []byte("sealed es"), CreatedAt: base}
	rs1 := store.SigningKey{KID: "rs-1", Alg: "RS256", Generation: 1, Sealed: bytes.Repeat([]byte{7}, 4096), CreatedAt: base}
	rs10 := store.SigningKey{KID: "rs-10", Alg: "RS256", Generation: 10, Sealed: []byte("x"), CreatedAt: base}
	for _, k := range []store.SigningKey{rs2, rs10, es1, rs1} {
		if err := s.InsertSigningKey(ctx, k); err != nil {
			t.Fatalf("InsertSigningKey(%s): %v", k.KID, err)
		}
	}
	want := []store.SigningKey{es1, rs1, rs2, rs10} // by Alg, then Generation (as a number)
	keys := listKeys(t, s)
	if len(keys) != len(want) {
		t.Fatalf("ListSigningKeys returned %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		checkKey(t, keys[i], want[i])
	}

	if err := s.DeleteSigningKey(ctx, "rs-1"); err != nil {
		t.Fatalf("DeleteSigningKey: %v", err)
	}
	if err := s.DeleteSigningKey(ctx, "rs-1"); err != nil {
		t.Fatalf("DeleteSigningKey(missing): %v", err)
	}
	keys = listKeys(t, s)
	if len(keys) != 3 || keys[0].KID != "es-1" || keys[1].KID != "rs-2" || keys[2].KID != "rs-10" {
		t.Fatalf("after delete: %+v", keys)
	}
	// The freed generation can be used again.
	if err := s.InsertSigningKey(ctx, store.SigningKey{KID: "rs-1b", Alg: "RS256", Generation: 1, Sealed: []byte("y"), CreatedAt: base}); err != nil {
		t.Fatalf("InsertSigningKey(reused generation): %v", err)
	}
}

func testSigningKeyConflicts(t *testing.T, s store.Durable) {
	ctx := context.Background()
	k := store.SigningKey{KID: "k1", Alg: "RS256", Generation: 1, Sealed: []byte("a"), CreatedAt: base}
	if err := s.InsertSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	sameGen := store.SigningKey{KID: "k2", Alg: "RS256", Generation: 1, Sealed: []byte("b"), CreatedAt: base}
	if err := s.InsertSigningKey(ctx, sameGen); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertSigningKey(same alg and generation) = %v, want ErrConflict", err)
	}
	sameKID := store.SigningKey{KID: "k1", Alg: "ES256", Generation: 7, Sealed: []byte("c"), CreatedAt: base}
	if err := s.InsertSigningKey(ctx, sameKID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertSigningKey(same kid) = %v, want ErrConflict", err)
	}
	otherAlg := store.SigningKey{KID: "k3", Alg: "ES256", Generation: 1, Sealed: []byte("d"), CreatedAt: base}
	if err := s.InsertSigningKey(ctx, otherAlg); err != nil {
		t.Fatalf("InsertSigningKey(same generation, other alg): %v", err)
	}
	keys := listKeys(t, s)
	if len(keys) != 2 {
		t.Fatalf("keys = %+v, want k3 and k1", keys)
	}
	checkKey(t, keys[0], otherAlg)
	checkKey(t, keys[1], k)
}

func token(sig, request, session string) store.RefreshToken {
	return store.RefreshToken{
		Signature: sig,
		RequestID: request,
		ClientID:  "client-" + request,
		Subject:   "subject-" + request,
		SessionID: session,
		Active:    true,
		Data:      []byte(`{"request":"` + request + `","sig":"` + sig + `"}`),
		CreatedAt: base,
		ExpiresAt: base.Add(30 * 24 * time.Hour),
	}
}

func createTokens(t *testing.T, s store.Durable, toks ...store.RefreshToken) {
	t.Helper()
	for _, tok := range toks {
		if err := s.CreateRefreshToken(context.Background(), tok); err != nil {
			t.Fatalf("CreateRefreshToken(%s): %v", tok.Signature, err)
		}
	}
}

func checkToken(t *testing.T, s store.Durable, want store.RefreshToken) {
	t.Helper()
	got, err := s.GetRefreshToken(context.Background(), want.Signature)
	if err != nil {
		t.Fatalf("GetRefreshToken(%s): %v", want.Signature, err)
	}
	if got.Signature != want.Signature || got.RequestID != want.RequestID || got.ClientID != want.ClientID ||
		got.Subject != want.Subject || got.SessionID != want.SessionID || got.Active != want.Active ||
		!bytes.Equal(got.Data, want.Data) || !sameTime(got.CreatedAt, want.CreatedAt) ||
		!sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("GetRefreshToken = %+v,\nwant %+v (times in UTC)", got, want)
	}
}

func wantNoToken(t *testing.T, s store.Durable, sig string) {
	t.Helper()
	if got, err := s.GetRefreshToken(context.Background(), sig); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRefreshToken(%s) = %+v, %v; want ErrNotFound", sig, got, err)
	}
}

func testRefreshTokens(t *testing.T, s store.Durable) {
	ctx := context.Background()
	wantNoToken(t, s, "missing")
	a := token("sig-a", "req-1", "sid-1")
	createTokens(t, s, a)
	checkToken(t, s, a)

	dup := token("sig-a", "req-2", "sid-2")
	if err := s.CreateRefreshToken(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateRefreshToken(existing signature) = %v, want ErrConflict", err)
	}
	checkToken(t, s, a)

	// Empty fields round-trip.
	empty := store.RefreshToken{Signature: "sig-empty", Active: true, CreatedAt: base, ExpiresAt: base}
	createTokens(t, s, empty)
	checkToken(t, s, empty)

	if err := s.DeleteRefreshToken(ctx, "sig-a"); err != nil {
		t.Fatalf("DeleteRefreshToken: %v", err)
	}
	wantNoToken(t, s, "sig-a")
	if err := s.DeleteRefreshToken(ctx, "sig-a"); err != nil {
		t.Fatalf("DeleteRefreshToken(missing): %v", err)
	}
	checkToken(t, s, empty)
	// A deleted signature can be created again.
	createTokens(t, s, a)
	checkToken(t, s, a)
}

func testDeactivateRefreshToken(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a, b := token("sig-a", "req-1", "sid-1"), token("sig-b", "req-1", "sid-1")
	createTokens(t, s, a, b)
	ok, err := s.DeactivateRefreshToken(ctx, "sig-a")
	if !ok || err != nil {
		t.Fatalf("DeactivateRefreshToken(active) = %v, %v; want true", ok, err)
	}
	a.Active = false
	checkToken(t, s, a)
	checkToken(t, s, b)
	ok, err = s.DeactivateRefreshToken(ctx, "sig-a")
	if ok || err != nil {
		t.Fatalf("DeactivateRefreshToken(inactive) = %v, %v; want false, nil", ok, err)
	}
	checkToken(t, s, a)
	ok, err = s.DeactivateRefreshToken(ctx, "missing")
	if ok || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeactivateRefreshToken(missing) = %v, %v; want ErrNotFound", ok, err)
	}
}

func testRevokeFamily(t *testing.T, s store.Durable) {
	ctx := context.Background()
	fam1 := []store.RefreshToken{token("f1-a", "req-1", "sid-1"), token("f1-b", "req-1", "sid-1"), token("f1-c", "req-1", "sid-2")}
	fam2 := []store.RefreshToken{token("f2-a", "req-2", "sid-1"), token("f2-b", "req-2", "sid-1")}
	near := token("f3-a", "req-1x", "sid-1") // a request id sharing a prefix
	createTokens(t, s, fam1...)
	createTokens(t, s, fam2...)
	createTokens(t, s, near)
	if _, err := s.DeactivateRefreshToken(ctx, "f1-a"); err != nil {
		t.Fatal(err)
	}
	n, err := s.RevokeRefreshTokenFamily(ctx, "req-1")
	if err != nil || n != 3 {
		t.Fatalf("RevokeRefreshTokenFamily = %d, %v; want 3 (active or not)", n, err)
	}
	for _, tok := range fam1 {
		wantNoToken(t, s, tok.Signature)
	}
	for _, tok := range fam2 {
		checkToken(t, s, tok)
	}
	checkToken(t, s, near)
	if n, err := s.RevokeRefreshTokenFamily(ctx, "req-1"); err != nil || n != 0 {
		t.Fatalf("RevokeRefreshTokenFamily(again) = %d, %v; want 0", n, err)
	}
	if n, err := s.RevokeRefreshTokenFamily(ctx, "unknown"); err != nil || n != 0 {
		t.Fatalf("RevokeRefreshTokenFamily(unknown) = %d, %v; want 0", n, err)
	}
}

func testRevokeSession(t *testing.T, s store.Durable) {
	ctx := context.Background()
	inS1 := []store.RefreshToken{token("a", "req-1", "sid-1"), token("b", "req-2", "sid-1"), token("c", "req-2", "sid-1")}
	others := []store.RefreshToken{token("d", "req-2", "sid-2"), token("e", "req-3", "sid-2"), token("f", "req-4", "")}
	createTokens(t, s, inS1...)
	createTokens(t, s, others...)
	if _, err := s.DeactivateRefreshToken(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	n, err := s.RevokeRefreshTokensOfSession(ctx, "sid-1")
	if err != nil || n != 3 {
		t.Fatalf("RevokeRefreshTokensOfSession = %d, %v; want 3", n, err)
	}
	for _, tok := range inS1 {
		wantNoToken(t, s, tok.Signature)
	}
	for _, tok := range others {
		checkToken(t, s, tok)
	}
	if n, err := s.RevokeRefreshTokensOfSession(ctx, "sid-1"); err != nil || n != 0 {
		t.Fatalf("RevokeRefreshTokensOfSession(again) = %d, %v; want 0", n, err)
	}
}

func testDeleteExpired(t *testing.T, s store.Durable) {
	ctx := context.Background()
	now := base
	exp := func(sig string, at time.Time) store.RefreshToken {
		tok := token(sig, "req-"+sig, "sid")
		tok.ExpiresAt = at
		return tok
	}
	gone := []store.RefreshToken{exp("long-ago", now.Add(-365*24*time.Hour)), exp("hour-ago", now.Add(-time.Hour)), exp("just-before", now.Add(-time.Microsecond))}
	kept := []store.RefreshToken{exp("at-now", now), exp("just-after", now.Add(time.Microsecond)), exp("later", now.Add(time.Hour))}
	createTokens(t, s, gone...)
	createTokens(t, s, kept...)
	n, err := s.DeleteExpiredRefreshTokens(ctx, now)
	if err != nil || n != int64(len(gone)) {
		t.Fatalf("DeleteExpiredRefreshTokens = %d, %v; want %d", n, err, len(gone))
	}
	for _, tok := range gone {
		wantNoToken(t, s, tok.Signature)
	}
	for _, tok := range kept {
		checkToken(t, s, tok)
	}
	// Time zones do not matter, only instants.
	n, err = s.DeleteExpiredRefreshTokens(ctx, now.Add(90*time.Minute).In(time.FixedZone("X", -7*3600)))
	if err != nil || n != 3 {
		t.Fatalf("DeleteExpiredRefreshTokens(later) = %d, %v; want 3", n, err)
	}
}

func testTimesAreUTC(t *testing.T, s store.Durable) {
	ctx := context.Background()
	// Nanoseconds are not promised, microseconds are.
	withNanos := base.Add(789 * time.Nanosecond)
	tok := token("t", "req", "sid")
	tok.CreatedAt, tok.ExpiresAt = withNanos, withNanos.In(time.FixedZone("Far", 13*3600))
	createTokens(t, s, tok)
	got, err := s.GetRefreshToken(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range []time.Time{got.CreatedAt, got.ExpiresAt} {
		if tm.Location() != time.UTC {
			t.Errorf("time read back in %v, want UTC", tm.Location())
		}
		if d := tm.Sub(withNanos); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("time read back %v, want %v to the microsecond", tm, withNanos)
		}
	}
}

func appendEvents(t *testing.T, s store.Durable, events ...store.AuditEvent) {
	t.Helper()
	if err := s.AppendAuditEvents(context.Background(), events); err != nil {
		t.Fatalf("AppendAuditEvents: %v", err)
	}
}

func listEvents(t *testing.T, s store.Durable, q store.AuditQuery) []store.AuditEvent {
	t.Helper()
	events, err := s.ListAuditEvents(context.Background(), q)
	if err != nil {
		t.Fatalf("ListAuditEvents(%+v): %v", q, err)
	}
	for i := 1; i < len(events); i++ {
		if events[i].ID <= events[i-1].ID {
			t.Fatalf("ListAuditEvents(%+v): IDs not strictly increasing: %d then %d", q, events[i-1].ID, events[i].ID)
		}
	}
	return events
}

func checkEvent(t *testing.T, got, want store.AuditEvent) {
	t.Helper()
	ok := got.Type == want.Type && got.Person == want.Person && got.App == want.App &&
		got.ClientAddr == want.ClientAddr && got.Outcome == want.Outcome && got.Reason == want.Reason &&
		got.SessionID == want.SessionID && sameTime(got.Time, want.Time) && len(got.Details) == len(want.Details)
	for k, v := range want.Details {
		if got.Details[k] != v {
			ok = false
		}
	}
	if !ok {
		t.Errorf("audit event = %+v,\nwant %+v (ID aside, Time in UTC)", got, want)
	}
}

func testAuditAppendList(t *testing.T, s store.Durable) {
	if got := listEvents(t, s, store.AuditQuery{}); len(got) != 0 {
		t.Fatalf("new store has events: %+v", got)
	}
	appendEvents(t, s) // nothing: not an error
	batch1 := []store.AuditEvent{
		{Time: base, Type: "signin.success", Person: "jdupont", App: "wiki", ClientAddr: "192.0.2.1", Outcome: "success", SessionID: "sid-1",
			Details: map[string]string{"factors": "pwd,otp", "acr": "substantial", "quote\"d": "new\nline"}},
		{Time: base.Add(time.Second), Type: "signin.failure", ClientAddr: "2001:db8::1", Outcome: "failure", Reason: "invalid_credentials"},
		{Time: base.Add(time.Second), Type: "token.issued", Person: "jdupont", App: "wiki", Outcome: "success", SessionID: "sid-1",
			Details: map[string]string{}},
	}
	batch2 := []store.AuditEvent{
		{Time: base.Add(-time.Hour), Type: "logout", Person: "jdupont", Outcome: "success", SessionID: "sid-1"},
		{Time: base.Add(2 * time.Second), Type: "token.issued", Person: "émilie", App: "https://sp.example/saml", Outcome: "success",
			Details: map[string]string{"é": "ü"}},
	}
	appendEvents(t, s, batch1...)
	appendEvents(t, s, batch2...)
	want := append(append([]store.AuditEvent(nil), batch1...), batch2...)
	got := listEvents(t, s, store.AuditQuery{})
	if len(got) != len(want) {
		t.Fatalf("ListAuditEvents returned %d events, want %d", len(got), len(want))
	}
	for i := range want {
		checkEvent(t, got[i], want[i]) // insertion order, whatever the Time
	}
	if got[0].ID <= 0 {
		t.Errorf("first ID = %d, want positive", got[0].ID)
	}
}

func testAuditQuery(t *testing.T, s store.Durable) {
	ev := func(i int, typ, person, app, outcome string) store.AuditEvent {
		return store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Type: typ, Person: person, App: app,
			Outcome: outcome, Details: map[string]string{"i": strconv.Itoa(i)}}
	}
	all := []store.AuditEvent{
		ev(0, "signin.success", "alice", "wiki", "success"),
		ev(1, "signin.failure", "", "wiki", "failure"),
		ev(2, "token.issued", "alice", "mail", "success"),
		ev(3, "signin.success", "bob", "mail", "success"),
		ev(4, "signin.failure", "bob", "wiki", "failure"),
		ev(5, "token.issued", "alice", "wiki", "success"),
	}
	appendEvents(t, s, all...)
	ids := listEvents(t, s, store.AuditQuery{})
	if len(ids) != len(all) {
		t.Fatalf("got %d events, want %d", len(ids), len(all))
	}
	cases := []struct {
		q    store.AuditQuery
		want []int
	}{
		{store.AuditQuery{Person: "alice"}, []int{0, 2, 5}},
		{store.AuditQuery{Person: "ali"}, nil},
		{store.AuditQuery{App: "wiki"}, []int{0, 1, 4, 5}},
		{store.AuditQuery{Type: "signin.failure"}, []int{1, 4}},
		{store.AuditQuery{Outcome: "failure"}, []int{1, 4}},
		{store.AuditQuery{Person: "alice", App: "wiki"}, []int{0, 5}},
		{store.AuditQuery{Person: "bob", Type: "signin.success", Outcome: "success", App: "mail"}, []int{3}},
		{store.AuditQuery{Since: base.Add(2 * time.Minute)}, []int{2, 3, 4, 5}}, // inclusive
		{store.AuditQuery{Until: base.Add(2 * time.Minute)}, []int{0, 1}},       // exclusive
		{store.AuditQuery{Since: base.Add(time.Minute), Until: base.Add(4 * time.Minute)}, []int{1, 2, 3}},
		{store.AuditQuery{Since: base.Add(90 * time.Second).UTC()}, []int{2, 3, 4, 5}},
		{store.AuditQuery{AfterID: ids[3].ID}, []int{4, 5}},
		{store.AuditQuery{AfterID: ids[5].ID}, nil},
		{store.AuditQuery{Limit: 2}, []int{0, 1}},
		{store.AuditQuery{App: "wiki", AfterID: ids[0].ID, Limit: 2}, []int{1, 4}},
	}
	for _, c := range cases {
		got := listEvents(t, s, c.q)
		if len(got) != len(c.want) {
			t.Errorf("ListAuditEvents(%+v) returned %d events, want %d", c.q, len(got), len(c.want))
			continue
		}
		for i, w := range c.want {
			if got[i].ID != ids[w].ID {
				t.Errorf("ListAuditEvents(%+v)[%d] = event %s, want %d", c.q, i, got[i].Details["i"], w)
			}
			checkEvent(t, got[i], all[w])
		}
	}
}

func testAuditPaging(t *testing.T, s store.Durable) {
	const total = 250
	events := make([]store.AuditEvent, total)
	for i := range events {
		events[i] = store.AuditEvent{Time: base, Type: "token.issued", Outcome: "success", Details: map[string]string{"i": strconv.Itoa(i)}}
	}
	appendEvents(t, s, events[:120]...)
	appendEvents(t, s, events[120:]...)
	first := listEvents(t, s, store.AuditQuery{})
	if len(first) != 100 {
		t.Fatalf("ListAuditEvents with Limit 0 returned %d events, want 100", len(first))
	}
	var got []store.AuditEvent
	var after int64
	for {
		page := listEvents(t, s, store.AuditQuery{AfterID: after, Limit: 70})
		if len(page) == 0 {
			break
		}
		if len(page) > 70 {
			t.Fatalf("page of %d events, limit 70", len(page))
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != total {
		t.Fatalf("paging returned %d events, want %d", len(got), total)
	}
	for i, e := range got {
		if e.Details["i"] != strconv.Itoa(i) {
			t.Fatalf("event %d is %s: out of order", i, e.Details["i"])
		}
		if i > 0 && e.ID <= got[i-1].ID {
			t.Fatalf("IDs not strictly increasing across pages")
		}
	}
}

func testRaceDeactivate(t *testing.T, s store.Durable) {
	ctx := context.Background()
	for r := range rounds / 2 {
		sig := fmt.Sprintf("sig-%d", r)
		createTokens(t, s, token(sig, "req", "sid"))
		res := race(func(int) result {
			ok, err := s.DeactivateRefreshToken(ctx, sig)
			return result{ok: ok, err: err}
		})
		won := 0
		for _, x := range res {
			if x.err != nil {
				t.Fatalf("DeactivateRefreshToken: %v", x.err)
			}
			if x.ok {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d racing rotations got true, want exactly 1", r, won, racers)
		}
	}
}

func testRaceInsertSigningKey(t *testing.T, s store.Durable) {
	ctx := context.Background()
	for gen := int64(1); gen <= rounds/2; gen++ {
		res := race(func(i int) error {
			return s.InsertSigningKey(ctx, store.SigningKey{
				KID: fmt.Sprintf("kid-%d-%d", gen, i), Alg: "ES256", Generation: gen,
				Sealed: []byte("sealed"), CreatedAt: base,
			})
		})
		won := 0
		for _, err := range res {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("InsertSigningKey: %v, want nil or ErrConflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("generation %d: %d of %d racing inserts succeeded, want exactly 1", gen, won, racers)
		}
	}
	if keys := listKeys(t, s); len(keys) != rounds/2 {
		t.Fatalf("%d keys stored, want %d", len(keys), rounds/2)
	}
}

func testRaceAppendAudit(t *testing.T, s store.Durable) {
	ctx := context.Background()
	const writers, batches, perBatch = 20, 5, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			for range batches {
				batch := make([]store.AuditEvent, perBatch)
				for i := range batch {
					batch[i] = store.AuditEvent{Time: base, Type: "token.issued", Person: "writer-" + strconv.Itoa(w),
						Outcome: "success", Details: map[string]string{"seq": strconv.Itoa(seq)}}
					seq++
				}
				if err := s.AppendAuditEvents(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("AppendAuditEvents: %v", err)
	}
	var all []store.AuditEvent
	var after int64
	for {
		page := listEvents(t, s, store.AuditQuery{AfterID: after, Limit: 1000})
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != writers*batches*perBatch {
		t.Fatalf("%d events stored, want %d: events lost", len(all), writers*batches*perBatch)
	}
	next := map[string]int{}
	for i, e := range all {
		if i > 0 && e.ID <= all[i-1].ID {
			t.Fatalf("IDs not strictly increasing: %d then %d", all[i-1].ID, e.ID)
		}
		// Each writer's events appear in the order it appended them.
		if e.Details["seq"] != strconv.Itoa(next[e.Person]) {
			t.Fatalf("%s: event seq %s, want %d", e.Person, e.Details["seq"], next[e.Person])
		}
		next[e.Person]++
	}
	// The racing appends made one linear chain.
	checkChain(t, s, 0, store.ChainReport{Start: all[0].ID, Checked: int64(len(all)),
		LastID: all[len(all)-1].ID, LastHash: all[len(all)-1].Hash})
}

func credential(id, subject string, created time.Time) store.WebAuthnCredential {
	return store.WebAuthnCredential{
		ID:             []byte("cred-" + id + "\x00\xff"),
		Subject:        subject,
		Name:           "Clé " + id,
		AAGUID:         bytes.Repeat([]byte{0xad}, 16),
		SignCount:      7,
		BackupEligible: true,
		Discoverable:   false,
		Data:           []byte(`{"publicKey":"` + id + `"}`),
		CreatedAt:      created,
	}
}

func createCredentials(t *testing.T, s store.Durable, creds ...store.WebAuthnCredential) {
	t.Helper()
	for _, c := range creds {
		if err := s.CreateWebAuthnCredential(context.Background(), c); err != nil {
			t.Fatalf("CreateWebAuthnCredential(%q): %v", c.ID, err)
		}
	}
}

func sameCredential(got, want store.WebAuthnCredential) bool {
	lastUsed := got.LastUsedAt.IsZero() && want.LastUsedAt.IsZero() || sameTime(got.LastUsedAt, want.LastUsedAt)
	return bytes.Equal(got.ID, want.ID) && got.Subject == want.Subject && got.Name == want.Name &&
		bytes.Equal(got.AAGUID, want.AAGUID) && got.SignCount == want.SignCount &&
		got.BackupEligible == want.BackupEligible && got.Discoverable == want.Discoverable &&
		got.Flagged == want.Flagged && bytes.Equal(got.Data, want.Data) &&
		sameTime(got.CreatedAt, want.CreatedAt) && lastUsed
}

func checkCredential(t *testing.T, s store.Durable, want store.WebAuthnCredential) {
	t.Helper()
	got, err := s.GetWebAuthnCredential(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("GetWebAuthnCredential(%q): %v", want.ID, err)
	}
	if !sameCredential(got, want) {
		t.Fatalf("GetWebAuthnCredential = %+v,\nwant %+v (times in UTC)", got, want)
	}
}

func wantNoCredential(t *testing.T, s store.Durable, id []byte) {
	t.Helper()
	if got, err := s.GetWebAuthnCredential(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWebAuthnCredential(%q) = %+v, %v; want ErrNotFound", id, got, err)
	}
}

func checkCredentialList(t *testing.T, s store.Durable, subject string, want ...store.WebAuthnCredential) {
	t.Helper()
	got, err := s.ListWebAuthnCredentials(context.Background(), subject)
	if err != nil {
		t.Fatalf("ListWebAuthnCredentials(%s): %v", subject, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListWebAuthnCredentials(%s) returned %d credentials, want %d: %+v", subject, len(got), len(want), got)
	}
	for i := range want {
		if !sameCredential(got[i], want[i]) {
			t.Fatalf("ListWebAuthnCredentials(%s)[%d] = %+v,\nwant %+v", subject, i, got[i], want[i])
		}
	}
}

func testWebAuthnCredentials(t *testing.T, s store.Durable) {
	checkCredentialList(t, s, "alice")
	wantNoCredential(t, s, []byte("missing"))

	late := credential("late", "alice", base.Add(time.Hour))
	late.LastUsedAt = base.Add(2 * time.Hour)
	late.Discoverable, late.BackupEligible = true, false
	early := credential("early", "alice", base)
	early.SignCount = 1<<32 - 1 // the whole uint32 range
	mid := credential("mid", "alice", base.Add(time.Minute))
	mid.Flagged = true
	bob := credential("bob", "bob", base.Add(-time.Hour))
	// Empty fields round-trip; no AAGUID (zero-length) is allowed.
	bare := store.WebAuthnCredential{ID: []byte{0}, Subject: "carol", CreatedAt: base}
	createCredentials(t, s, late, early, bob, mid, bare)

	for _, c := range []store.WebAuthnCredential{late, early, mid, bob, bare} {
		checkCredential(t, s, c)
	}
	// Oldest first, whatever the insertion order; another person's keys
	// never appear.
	checkCredentialList(t, s, "alice", early, mid, late)
	checkCredentialList(t, s, "bob", bob)
	checkCredentialList(t, s, "carol", bare)
	checkCredentialList(t, s, "ali")
	// An id is matched exactly, not as a prefix.
	wantNoCredential(t, s, []byte("cred-early"))
}

func testWebAuthnCredentialConflicts(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a := credential("k", "alice", base)
	createCredentials(t, s, a)
	again := credential("k", "alice", base.Add(time.Hour))
	again.Name = "another"
	if err := s.CreateWebAuthnCredential(ctx, again); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateWebAuthnCredential(existing id) = %v, want ErrConflict", err)
	}
	// The id is unique across people: registering someone else's
	// credential id must not create a second row (or take the first over).
	stolen := credential("k", "mallory", base)
	if err := s.CreateWebAuthnCredential(ctx, stolen); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateWebAuthnCredential(another person's id) = %v, want ErrConflict", err)
	}
	checkCredential(t, s, a)
	checkCredentialList(t, s, "alice", a)
	checkCredentialList(t, s, "mallory")
	// A deleted id can be registered again.
	if err := s.DeleteWebAuthnCredential(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	createCredentials(t, s, stolen)
	checkCredential(t, s, stolen)
}

func testUpdateWebAuthnCredentialUse(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a, b := credential("a", "alice", base), credential("b", "alice", base.Add(time.Second))
	a.Flagged = true
	createCredentials(t, s, a, b)
	used := base.Add(24*time.Hour + 789*time.Nanosecond).In(time.FixedZone("Far", 13*3600))
	data := []byte(`{"publicKey":"a","flags":{"backupState":true}}`)
	if err := s.UpdateWebAuthnCredentialUse(ctx, a.ID, 42, used, data); err != nil {
		t.Fatalf("UpdateWebAuthnCredentialUse: %v", err)
	}
	a.SignCount, a.LastUsedAt, a.Data = 42, used.Truncate(time.Microsecond), data
	checkCredential(t, s, a) // Flagged is kept
	checkCredential(t, s, b)
	// A later use overwrites; a counter of zero (authenticators without one)
	// is stored as such.
	used2 := used.Add(time.Minute)
	if err := s.UpdateWebAuthnCredentialUse(ctx, a.ID, 0, used2, []byte("v2")); err != nil {
		t.Fatalf("UpdateWebAuthnCredentialUse: %v", err)
	}
	a.SignCount, a.LastUsedAt, a.Data = 0, used2.Truncate(time.Microsecond), []byte("v2")
	checkCredential(t, s, a)
	checkCredentialList(t, s, "alice", a, b)
	if err := s.UpdateWebAuthnCredentialUse(ctx, []byte("missing"), 1, used, data); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateWebAuthnCredentialUse(missing) = %v, want ErrNotFound", err)
	}
	wantNoCredential(t, s, []byte("missing"))
}

func testRenameWebAuthnCredential(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a, b := credential("a", "alice", base), credential("b", "bob", base)
	createCredentials(t, s, a, b)
	if err := s.RenameWebAuthnCredential(ctx, "alice", a.ID, "Clé bleue"); err != nil {
		t.Fatalf("RenameWebAuthnCredential: %v", err)
	}
	a.Name = "Clé bleue"
	checkCredential(t, s, a)
	// Renaming to the same name is not "not found".
	if err := s.RenameWebAuthnCredential(ctx, "alice", a.ID, "Clé bleue"); err != nil {
		t.Fatalf("RenameWebAuthnCredential(same name): %v", err)
	}
	// A person can never touch another person's key.
	if err := s.RenameWebAuthnCredential(ctx, "bob", a.ID, "pwned"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RenameWebAuthnCredential(another person's key) = %v, want ErrNotFound", err)
	}
	if err := s.RenameWebAuthnCredential(ctx, "", a.ID, "pwned"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RenameWebAuthnCredential(empty subject) = %v, want ErrNotFound", err)
	}
	if err := s.RenameWebAuthnCredential(ctx, "alice", []byte("missing"), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RenameWebAuthnCredential(missing) = %v, want ErrNotFound", err)
	}
	checkCredential(t, s, a)
	checkCredential(t, s, b)
}

func testDeleteWebAuthnCredential(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a1, a2, b := credential("a1", "alice", base), credential("a2", "alice", base.Add(time.Second)), credential("b", "bob", base)
	createCredentials(t, s, a1, a2, b)
	// A person can never touch another person's key.
	if err := s.DeleteWebAuthnCredential(ctx, "bob", a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebAuthnCredential(another person's key) = %v, want ErrNotFound", err)
	}
	checkCredential(t, s, a1)
	checkCredentialList(t, s, "alice", a1, a2)
	if err := s.DeleteWebAuthnCredential(ctx, "alice", a1.ID); err != nil {
		t.Fatalf("DeleteWebAuthnCredential: %v", err)
	}
	wantNoCredential(t, s, a1.ID)
	checkCredentialList(t, s, "alice", a2)
	checkCredentialList(t, s, "bob", b)
	if err := s.DeleteWebAuthnCredential(ctx, "alice", a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebAuthnCredential(again) = %v, want ErrNotFound", err)
	}
}

func testFlagWebAuthnCredential(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a, b := credential("a", "alice", base), credential("b", "alice", base.Add(time.Second))
	createCredentials(t, s, a, b)
	if err := s.FlagWebAuthnCredential(ctx, a.ID); err != nil {
		t.Fatalf("FlagWebAuthnCredential: %v", err)
	}
	a.Flagged = true
	checkCredential(t, s, a)
	checkCredential(t, s, b)
	if err := s.FlagWebAuthnCredential(ctx, a.ID); err != nil {
		t.Fatalf("FlagWebAuthnCredential(already flagged): %v", err)
	}
	// A use does not clear the flag: only an admin removing the key does.
	if err := s.UpdateWebAuthnCredentialUse(ctx, a.ID, 99, base.Add(time.Hour), a.Data); err != nil {
		t.Fatal(err)
	}
	a.SignCount, a.LastUsedAt = 99, base.Add(time.Hour)
	checkCredential(t, s, a)
	// The contract leaves a missing credential open: either answer is
	// fine, as long as nothing is created.
	if err := s.FlagWebAuthnCredential(ctx, []byte("missing")); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FlagWebAuthnCredential(missing) = %v, want nil or ErrNotFound", err)
	}
	wantNoCredential(t, s, []byte("missing"))
}

func testDeleteWebAuthnCredentialsOf(t *testing.T, s store.Durable) {
	ctx := context.Background()
	a1, a2, a3 := credential("a1", "alice", base), credential("a2", "alice", base), credential("a3", "alice", base)
	b, near := credential("b", "bob", base), credential("n", "alice2", base)
	createCredentials(t, s, a1, a2, a3, b, near)
	n, err := s.DeleteWebAuthnCredentialsOf(ctx, "alice")
	if err != nil || n != 3 {
		t.Fatalf("DeleteWebAuthnCredentialsOf = %d, %v; want 3", n, err)
	}
	for _, c := range []store.WebAuthnCredential{a1, a2, a3} {
		wantNoCredential(t, s, c.ID)
	}
	checkCredentialList(t, s, "alice")
	checkCredentialList(t, s, "bob", b)
	checkCredentialList(t, s, "alice2", near)
	if n, err := s.DeleteWebAuthnCredentialsOf(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("DeleteWebAuthnCredentialsOf(again) = %d, %v; want 0", n, err)
	}
}

func enrollmentCode(code, subject string, created time.Time) store.EnrollmentCode {
	return store.EnrollmentCode{
		Hash:      []byte("sha256(" + code + ")\x00\xff"),
		Subject:   subject,
		CreatedBy: "admin",
		CreatedAt: created,
		ExpiresAt: created.Add(24 * time.Hour),
	}
}

func createCodes(t *testing.T, s store.Durable, codes ...store.EnrollmentCode) {
	t.Helper()
	for _, c := range codes {
		if err := s.CreateEnrollmentCode(context.Background(), c); err != nil {
			t.Fatalf("CreateEnrollmentCode(%q): %v", c.Hash, err)
		}
	}
}

func checkCodeList(t *testing.T, s store.Durable, subject string, want ...store.EnrollmentCode) {
	t.Helper()
	got, err := s.ListEnrollmentCodes(context.Background(), subject)
	if err != nil {
		t.Fatalf("ListEnrollmentCodes(%s): %v", subject, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListEnrollmentCodes(%s) returned %d codes, want %d: %+v", subject, len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		usedOK := g.UsedAt.IsZero() && w.UsedAt.IsZero() || sameTime(g.UsedAt, w.UsedAt)
		if !bytes.Equal(g.Hash, w.Hash) || g.Subject != w.Subject || g.CreatedBy != w.CreatedBy ||
			!sameTime(g.CreatedAt, w.CreatedAt) || !sameTime(g.ExpiresAt, w.ExpiresAt) || !usedOK {
			t.Fatalf("ListEnrollmentCodes(%s)[%d] = %+v,\nwant %+v (times in UTC)", subject, i, g, w)
		}
	}
}

func wantCodeRefused(t *testing.T, s store.Durable, what string, hash []byte, subject string, now time.Time) {
	t.Helper()
	if err := s.UseEnrollmentCode(context.Background(), hash, subject, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UseEnrollmentCode(%s) = %v, want ErrNotFound", what, err)
	}
}

func testEnrollmentCodes(t *testing.T, s store.Durable) {
	ctx := context.Background()
	checkCodeList(t, s, "alice")
	c := enrollmentCode("one", "alice", base)
	createCodes(t, s, c)
	checkCodeList(t, s, "alice", c)
	dup := enrollmentCode("one", "bob", base.Add(time.Hour))
	if err := s.CreateEnrollmentCode(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateEnrollmentCode(existing hash) = %v, want ErrConflict", err)
	}
	checkCodeList(t, s, "alice", c)
	checkCodeList(t, s, "bob")

	now := base.Add(time.Hour + 789*time.Nanosecond).In(time.FixedZone("Far", 13*3600))
	if err := s.UseEnrollmentCode(ctx, c.Hash, "alice", now); err != nil {
		t.Fatalf("UseEnrollmentCode: %v", err)
	}
	c.UsedAt = now.Truncate(time.Microsecond)
	checkCodeList(t, s, "alice", c)
	// Single use: a second use, even a moment later, is refused and does
	// not move UsedAt.
	wantCodeRefused(t, s, "used code", c.Hash, "alice", now.Add(time.Second))
	checkCodeList(t, s, "alice", c)
	wantCodeRefused(t, s, "missing code", []byte("missing"), "alice", now)
}

func testEnrollmentCodeRefusals(t *testing.T, s store.Durable) {
	ctx := context.Background()
	c := enrollmentCode("c", "alice", base)
	createCodes(t, s, c)
	// Expired: at ExpiresAt the code is already refused.
	wantCodeRefused(t, s, "expired code", c.Hash, "alice", c.ExpiresAt.Add(time.Hour))
	wantCodeRefused(t, s, "code at its expiry", c.Hash, "alice", c.ExpiresAt)
	// Another person's code, or a near subject.
	wantCodeRefused(t, s, "another person's code", c.Hash, "bob", base.Add(time.Minute))
	wantCodeRefused(t, s, "prefix of the subject", c.Hash, "ali", base.Add(time.Minute))
	wantCodeRefused(t, s, "empty subject", c.Hash, "", base.Add(time.Minute))
	// A hash is matched exactly.
	wantCodeRefused(t, s, "hash prefix", c.Hash[:len(c.Hash)-1], "alice", base.Add(time.Minute))
	// None of the refusals used the code up.
	checkCodeList(t, s, "alice", c)
	// Time zones do not matter, only instants: a microsecond before expiry,
	// in another zone, is still in time.
	last := c.ExpiresAt.Add(-time.Microsecond).In(time.FixedZone("X", -7*3600))
	if err := s.UseEnrollmentCode(ctx, c.Hash, "alice", last); err != nil {
		t.Fatalf("UseEnrollmentCode(just before expiry): %v", err)
	}
	c.UsedAt = last
	checkCodeList(t, s, "alice", c)
}

func testListEnrollmentCodes(t *testing.T, s store.Durable) {
	ctx := context.Background()
	oldest := enrollmentCode("oldest", "alice", base.Add(-48*time.Hour)) // expired by now
	older := enrollmentCode("older", "alice", base.Add(-time.Hour))
	newest := enrollmentCode("newest", "alice", base)
	newest.CreatedBy = "helpdesk"
	bob := enrollmentCode("bob", "bob", base.Add(time.Hour))
	createCodes(t, s, older, bob, oldest, newest)
	if err := s.UseEnrollmentCode(ctx, older.Hash, "alice", base); err != nil {
		t.Fatal(err)
	}
	older.UsedAt = base
	// Newest first, used and expired codes included.
	checkCodeList(t, s, "alice", newest, older, oldest)
	checkCodeList(t, s, "bob", bob)
	checkCodeList(t, s, "carol")
}

// enrollmentRacers is how many goroutines race to use one enrollment code.
const enrollmentRacers = 30

func testRaceUseEnrollmentCode(t *testing.T, s store.Durable) {
	ctx := context.Background()
	for r := range rounds {
		c := enrollmentCode(fmt.Sprintf("race-%d", r), "alice", base)
		createCodes(t, s, c)
		errs := make([]error, enrollmentRacers)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range enrollmentRacers {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				errs[i] = s.UseEnrollmentCode(ctx, c.Hash, "alice", base.Add(time.Duration(i+1)*time.Second))
			}()
		}
		start.Done()
		done.Wait()
		won, winner := 0, -1
		for i, err := range errs {
			switch {
			case err == nil:
				won, winner = won+1, i
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("UseEnrollmentCode: %v, want nil or ErrNotFound", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d racing uses succeeded, want exactly 1", r, won, enrollmentRacers)
		}
		// The code records the winner's use, not a loser's.
		codes, err := s.ListEnrollmentCodes(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range codes {
			if bytes.Equal(got.Hash, c.Hash) && !sameTime(got.UsedAt, base.Add(time.Duration(winner+1)*time.Second)) {
				t.Fatalf("round %d: UsedAt = %v, want the winner's %v", r, got.UsedAt, base.Add(time.Duration(winner+1)*time.Second))
			}
		}
	}
}
