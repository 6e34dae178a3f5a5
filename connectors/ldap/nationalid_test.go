package ldap

import (
	"context"
	"errors"
	"reflect"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/testutil"
)

func TestLookupNationalID(t *testing.T) {
	s := testutil.StartSlapd(t)
	ctx := context.Background()
	c := open(t, ldapsConfig(s))
	var nl connectors.NationalIDLookup = c

	for _, u := range []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin} {
		id, err := nl.LookupNationalID(ctx, u.NationalID)
		if err != nil {
			t.Fatalf("LookupNationalID(%s): %v", u.NationalID, err)
		}
		if want := wantLookup(u); !reflect.DeepEqual(id, want) {
			t.Errorf("LookupNationalID(%s) =\n %+v\nwant\n %+v", u.NationalID, id, want)
		}
	}

	// Filter metacharacters are values, not filter syntax: "*" matches no
	// one rather than everyone.
	for _, idNat := range []string{"899999999999", "*", "8100*", ")(employeeNumber=*", "", string(make([]byte, 200))} {
		if _, err := c.LookupNationalID(ctx, idNat); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("LookupNationalID(%q) = %v, want ErrUnknownSubject", idNat, err)
		}
	}

	// Two accounts holding one national id: Garde links to neither.
	admin := s.Admin(t)
	for _, u := range []testutil.SlapdUser{testutil.SlapdMustChange, testutil.SlapdLocked} {
		m := goldap.NewModifyRequest(u.DN, nil)
		m.Replace("employeeNumber", []string{"810000000777"})
		if err := admin.Modify(m); err != nil {
			t.Fatalf("modify %s: %v", u.DN, err)
		}
	}
	if _, err := c.LookupNationalID(ctx, "810000000777"); !errors.Is(err, connectors.ErrAmbiguous) {
		t.Errorf("LookupNationalID(shared id) = %v, want ErrAmbiguous", err)
	}

	// A disabled account holding the id cannot be linked to.
	m := goldap.NewModifyRequest(testutil.SlapdDisabled.DN, nil)
	m.Replace("employeeNumber", []string{"810000000888"})
	if err := admin.Modify(m); err != nil {
		t.Fatalf("modify: %v", err)
	}
	if _, err := c.LookupNationalID(ctx, "810000000888"); !errors.Is(err, connectors.ErrAccountDisabled) {
		t.Errorf("LookupNationalID(disabled account) = %v, want ErrAccountDisabled", err)
	}

	// Without a national id attribute there is nothing to match on.
	cfg := ldapsConfig(s)
	cfg.NationalIDAttribute = ""
	if _, err := open(t, cfg).LookupNationalID(ctx, testutil.SlapdJDupont.NationalID); !errors.Is(err, connectors.ErrUnknownSubject) {
		t.Errorf("LookupNationalID without attribute = %v, want ErrUnknownSubject", err)
	}

	// The directory down is an outage, not "unknown".
	s.Stop()
	if _, err := c.LookupNationalID(ctx, testutil.SlapdJDupont.NationalID); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("LookupNationalID(directory stopped) = %v, want ErrUnavailable", err)
	}
}
