package linking

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/connectors/static"
	"github.com/garde-sso/garde/internal/assurance"
)

var now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

type fixture struct {
	db    store.Durable
	rec   *audit.Recorder
	local *static.Connector
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "garde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	hash, err := static.HashPassword("Jeanne-1!")
	if err != nil {
		t.Fatal(err)
	}
	local, err := static.New("ad", []static.Person{
		{Username: "jdupont", PasswordHash: hash, GivenName: "Jeanne", FamilyName: "Dupont", Email: "j.dupont@hopital.test",
			NationalID: "810000000009", Groups: []string{"medecins"}},
		{Username: "twin-a", PasswordHash: hash, NationalID: "810000000777"},
		{Username: "twin-b", PasswordHash: hash, NationalID: "810000000777"},
		{Username: "nobody-nat", PasswordHash: hash, Groups: []string{"infirmiers"}},
		{Username: "other-nat", PasswordHash: hash, NationalID: "810000000555"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(db, slog.New(slog.DiscardHandler), func() time.Time { return now }, 0)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	return &fixture{db: db, rec: rec, local: local}
}

func (f *fixture) linker(noMatch string) *Linker {
	return New(Options{
		Links: f.db, NoMatch: noMatch, Audit: f.rec, Clock: func() time.Time { return now },
		Directories: []Directory{{ID: "ad", ByNationalID: f.local, BySubject: f.local}},
	})
}

// card is what the CPS connector returns for a card whose CN is idNat.
func card(idNat string) connectors.Identity {
	return connectors.Identity{
		Connector: "cps", Subject: idNat, NationalID: idNat, NationalIDType: connectors.NationalIDTypeOf(idNat),
		GivenName: "JEANNE", FamilyName: "DUPONT", Professions: []connectors.Profession{{Label: "Médecin"}},
		AMR: []string{"sc", "pin", "hwk", "mfa"}, Assurance: assurance.High, AuthTime: now,
	}
}

func psc(idNat string) connectors.Identity {
	id := card(idNat)
	id.Connector, id.AuthMode = "psc", "CARD"
	id.Upstream = &connectors.Upstream{Subject: "f:uuid:" + idNat, SessionID: "psc-sid"}
	return id
}

func (f *fixture) events(t *testing.T, typ string) []store.AuditEvent {
	t.Helper()
	if err := f.rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, err := f.db.ListAuditEvents(context.Background(), store.AuditQuery{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// The card finds the AD account by national id, the link is recorded, and
// PSC later resolves to the same person: one `sub` whatever the source.
func TestLinkByNationalID(t *testing.T) {
	f := newFixture(t)
	l := f.linker(NoMatchDeny)
	ctx := context.Background()

	id, err := l.Resolve(ctx, card("810000000009"), "10.0.0.1")
	if err != nil {
		t.Fatalf("Resolve(card): %v", err)
	}
	if id.Connector != "ad" || id.Subject != "jdupont" || id.Email != "j.dupont@hopital.test" || len(id.Groups) != 1 || id.Groups[0] != "medecins" {
		t.Errorf("card resolved to %+v, want the AD account with its groups", id)
	}
	if id.Assurance != assurance.High || len(id.AMR) != 4 || id.Professions[0].Label != "Médecin" || id.GivenName != "Jeanne" {
		t.Errorf("merged identity lost what the card proved or the AD names: %+v", id)
	}
	link, err := f.db.GetIdentityLink(ctx, "cps", "810000000009")
	if err != nil || link.Person != "ad:jdupont" || link.Method != MethodNationalID || !link.CreatedAt.Equal(now) {
		t.Fatalf("link = %+v, %v", link, err)
	}

	viaPSC, err := l.Resolve(ctx, psc("810000000009"), "10.0.0.1")
	if err != nil {
		t.Fatalf("Resolve(psc): %v", err)
	}
	if viaPSC.Connector+":"+viaPSC.Subject != "ad:jdupont" || viaPSC.Upstream == nil || viaPSC.AuthMode != "CARD" {
		t.Errorf("PSC resolved to %+v", viaPSC)
	}
	// Second card sign-in follows the stored link.
	again, err := l.Resolve(ctx, card("810000000009"), "10.0.0.1")
	if err != nil || again.Subject != "jdupont" {
		t.Errorf("second Resolve = %+v, %v", again, err)
	}
	evs := f.events(t, audit.IdentityLinked)
	if len(evs) != 2 || evs[0].Person != "ad:jdupont" || evs[0].Details["source"] != "cps" || evs[1].Details["source"] != "psc" {
		t.Errorf("identity.linked events = %+v, want one per source", evs)
	}
}

func TestNoMatch(t *testing.T) {
	ctx := context.Background()

	t.Run("deny", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.linker(NoMatchDeny).Resolve(ctx, card("899700075122"), "10.0.0.1")
		if !errors.Is(err, ErrNoLocalAccount) {
			t.Fatalf("Resolve = %v, want ErrNoLocalAccount", err)
		}
		if _, err := f.db.GetIdentityLink(ctx, "cps", "899700075122"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused sign-in left a link: %v", err)
		}
		if evs := f.events(t, audit.IdentityLinkRefused); len(evs) != 1 || evs[0].Reason != "no_local_account" {
			t.Errorf("refusal events = %+v", evs)
		}
	})

	t.Run("external", func(t *testing.T) {
		f := newFixture(t)
		l := f.linker(NoMatchExternal)
		byCard, err := l.Resolve(ctx, card("899700075122"), "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		byPSC, err := l.Resolve(ctx, psc("899700075122"), "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if byCard.Connector != ExternalConnector || byCard.Subject != "899700075122" || byPSC.Connector+":"+byPSC.Subject != "nat:899700075122" {
			t.Errorf("external identities = %s:%s and %s:%s, want nat:<idNat> for both", byCard.Connector, byCard.Subject, byPSC.Connector, byPSC.Subject)
		}
		if byPSC.Upstream == nil || byCard.Assurance != assurance.High || len(byCard.Groups) != 0 {
			t.Errorf("external identity = %+v", byCard)
		}
	})

	t.Run("password", func(t *testing.T) {
		f := newFixture(t)
		l := f.linker(NoMatchPassword)
		up := card("899700075122")
		if _, err := l.Resolve(ctx, up, "10.0.0.1"); !errors.Is(err, ErrNeedsPassword) {
			t.Fatalf("Resolve = %v, want ErrNeedsPassword", err)
		}
		// The account proved by password holds another national id: the
		// card is not theirs.
		other, _ := f.local.Lookup(ctx, "other-nat")
		if _, err := l.LinkWithPassword(ctx, up, other, "10.0.0.1"); !errors.Is(err, ErrMismatch) {
			t.Errorf("LinkWithPassword(other national id) = %v, want ErrMismatch", err)
		}
		acct, _ := f.local.Lookup(ctx, "nobody-nat")
		id, err := l.LinkWithPassword(ctx, up, acct, "10.0.0.1")
		if err != nil || id.Subject != "nobody-nat" || id.Groups[0] != "infirmiers" || id.Assurance != assurance.High {
			t.Fatalf("LinkWithPassword = %+v, %v", id, err)
		}
		link, err := f.db.GetIdentityLink(ctx, "cps", "899700075122")
		if err != nil || link.Method != MethodPassword || link.Person != "ad:nobody-nat" {
			t.Fatalf("link = %+v, %v", link, err)
		}
		// From now on the card resolves without the password.
		if id, err := l.Resolve(ctx, up, "10.0.0.1"); err != nil || id.Subject != "nobody-nat" {
			t.Errorf("Resolve after link = %+v, %v", id, err)
		}
	})
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	l := f.linker(NoMatchExternal)
	// Two AD accounts hold the id: no guess, even with external allowed.
	if _, err := l.Resolve(ctx, card("810000000777"), "10.0.0.1"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("ambiguous = %v, want ErrAmbiguous", err)
	}
	up := card("")
	if _, err := l.Resolve(ctx, up, "10.0.0.1"); !errors.Is(err, ErrNoNationalID) {
		t.Errorf("no national id = %v, want ErrNoNationalID", err)
	}
	// A link to an account that was deleted since.
	if err := f.db.CreateIdentityLink(ctx, store.IdentityLink{Source: "cps", SourceSubject: "810000000444", Person: "ad:deleted", Method: MethodPassword, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Resolve(ctx, card("810000000444"), "10.0.0.1"); !errors.Is(err, ErrLinkedAccountGone) {
		t.Errorf("link to deleted account = %v, want ErrLinkedAccountGone", err)
	}
}
