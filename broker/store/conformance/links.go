package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

func testIdentityLinks(t *testing.T, s store.Durable) {
	ctx := context.Background()
	if _, err := s.GetIdentityLink(ctx, "psc", "810001234567"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIdentityLink(missing) = %v, want ErrNotFound", err)
	}
	// Times come back in UTC, truncated to the microsecond, whatever zone
	// they went in with.
	at := base.Add(123 * time.Nanosecond).In(time.FixedZone("Far", 13*3600))
	psc := store.IdentityLink{Source: "psc", SourceSubject: "810001234567", Person: "ad:guid-1", Method: "national_id", CreatedAt: at}
	card := store.IdentityLink{Source: "cps", SourceSubject: "810001234567", Person: "ad:guid-1", Method: "password", CreatedAt: at.Add(time.Minute)}
	other := store.IdentityLink{Source: "cps", SourceSubject: "899700075122", Person: "nat:899700075122", Method: "external", CreatedAt: at}
	for _, l := range []store.IdentityLink{card, psc, other} {
		if err := s.CreateIdentityLink(ctx, l); err != nil {
			t.Fatalf("CreateIdentityLink(%s/%s): %v", l.Source, l.SourceSubject, err)
		}
	}
	norm := func(l store.IdentityLink) store.IdentityLink {
		l.CreatedAt = l.CreatedAt.UTC().Truncate(time.Microsecond)
		return l
	}
	got, err := s.GetIdentityLink(ctx, "psc", "810001234567")
	if err != nil || got != norm(psc) {
		t.Fatalf("GetIdentityLink = %+v, %v; want %+v", got, err, norm(psc))
	}
	// A source identity links to one person only: a second link of the
	// same card, to anyone, is a conflict and changes nothing.
	dup := psc
	dup.Person = "ad:guid-2"
	if err := s.CreateIdentityLink(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateIdentityLink(already linked) = %v, want ErrConflict", err)
	}
	list, err := s.ListIdentityLinks(ctx, "ad:guid-1")
	if err != nil {
		t.Fatalf("ListIdentityLinks: %v", err)
	}
	if len(list) != 2 || list[0] != norm(psc) || list[1] != norm(card) {
		t.Fatalf("ListIdentityLinks = %+v, want [psc, card] oldest first", list)
	}
	if list, err := s.ListIdentityLinks(ctx, "ad:guid-2"); err != nil || len(list) != 0 {
		t.Fatalf("ListIdentityLinks(nobody) = %+v, %v; want none", list, err)
	}
	if err := s.DeleteIdentityLink(ctx, "psc", "810001234567"); err != nil {
		t.Fatalf("DeleteIdentityLink: %v", err)
	}
	if err := s.DeleteIdentityLink(ctx, "psc", "810001234567"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteIdentityLink(again) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetIdentityLink(ctx, "psc", "810001234567"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIdentityLink(deleted) = %v, want ErrNotFound", err)
	}
}

// Two replicas linking the same card at once to different people: exactly
// one link is made.
func testRaceCreateIdentityLink(t *testing.T, s store.Durable) {
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateIdentityLink(ctx, store.IdentityLink{
				Source: "cps", SourceSubject: "810009999999", Person: fmt.Sprintf("ad:%d", i),
				Method: "password", CreatedAt: base,
			})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers linked the card, want exactly 1", won)
	}
}
