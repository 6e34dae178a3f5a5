package ldap

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// wantLookup is what Lookup returns for u: Login's identity without what
// Login proved.
func wantLookup(u testutil.SlapdUser) connectors.Identity {
	id := wantIdentity(u)
	id.AMR, id.Assurance, id.AuthTime = nil, assurance.None, time.Time{}
	return id
}

func TestLookup(t *testing.T) {
	s := testutil.StartSlapd(t)
	ctx := context.Background()

	t.Run("by GUID", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		var lc connectors.LookupConnector = c
		for _, u := range []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin, testutil.SlapdMustChange} {
			id, err := lc.Lookup(ctx, u.GUID)
			if err != nil {
				t.Errorf("Lookup(%s %s): %v", u.Username, u.GUID, err)
				continue
			}
			if want := wantLookup(u); !reflect.DeepEqual(id, want) {
				t.Errorf("Lookup(%s) =\n %+v\nwant\n %+v", u.Username, id, want)
			}
		}
		// Nested groups, the cycle included, as Login resolves them.
		id, err := c.Lookup(ctx, testutil.SlapdPMartin.GUID)
		if err != nil || !reflect.DeepEqual(id.Groups, []string{"boucle-a", "boucle-b", "infirmiers", "personnel"}) {
			t.Errorf("pmartin groups = %v, %v", id.Groups, err)
		}
		if id.NationalID != "0751234567" || id.NationalIDType != "adeli" {
			t.Errorf("pmartin national id = %q %q", id.NationalID, id.NationalIDType)
		}
		// The canonical form is lower case; upper case names the same GUID.
		id, err = c.Lookup(ctx, strings.ToUpper(testutil.SlapdJDupont.GUID))
		if err != nil || id.Subject != testutil.SlapdJDupont.GUID {
			t.Errorf("Lookup(upper-case GUID) = %q, %v", id.Subject, err)
		}
	})

	t.Run("subject of Login", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		for _, u := range []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin} {
			login, err := c.Login(ctx, u.Username, u.Password)
			if err != nil {
				t.Fatalf("Login(%s): %v", u.Username, err)
			}
			id, err := c.Lookup(ctx, login.Subject)
			if err != nil {
				t.Fatalf("Lookup(%s): %v", login.Subject, err)
			}
			want := login
			want.AMR, want.Assurance, want.AuthTime = nil, assurance.None, time.Time{}
			if !reflect.DeepEqual(id, want) {
				t.Errorf("Lookup(Login(%s).Subject) =\n %+v\nwant\n %+v", u.Username, id, want)
			}
		}
	})

	t.Run("account states", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		for _, tc := range []struct {
			u    testutil.SlapdUser
			want error
		}{
			{testutil.SlapdDisabled, connectors.ErrAccountDisabled},
			{testutil.SlapdLocked, connectors.ErrAccountLocked},
			{testutil.SlapdExpired, connectors.ErrAccountExpired},
		} {
			id, err := c.Lookup(ctx, tc.u.GUID)
			if !errors.Is(err, tc.want) || errors.Is(err, connectors.ErrUnknownSubject) || errors.Is(err, connectors.ErrUnavailable) {
				t.Errorf("Lookup(%s) = %v, want %v", tc.u.Username, err, tc.want)
			}
			if !reflect.DeepEqual(id, connectors.Identity{}) {
				t.Errorf("Lookup(%s) refused but returned %+v", tc.u.Username, id)
			}
		}
		// pwdLastSet 0 (must change): no obstacle without a password.
		if _, err := c.Lookup(ctx, testutil.SlapdMustChange.GUID); err != nil {
			t.Errorf("Lookup(mustchange) = %v, want success", err)
		}
	})

	t.Run("unknown and malformed subjects", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		for _, subject := range []string{
			"",
			"garbage",
			"3f2504e0-4f89-11d3-9a0c-0305e82c3300", // well formed, nobody's
			"00000000-0000-0000-0000-000000000000",
			"{" + testutil.SlapdJDupont.GUID + "}",
			testutil.SlapdJDupont.GUID + " ",
			" " + testutil.SlapdJDupont.GUID,
			strings.ReplaceAll(testutil.SlapdJDupont.GUID, "-", ""),
			testutil.SlapdJDupont.GUID[:35] + "*",
			// Filter injection: must never match anyone.
			"*",
			")(",
			"*)(objectGUID=*",
			"*)(|(objectClass=*",
			"3f2504e0-4f89-11d3-9a0c-0305e82c3301)(objectGUID=*",
			`\2a`,
			"\x00",
			testutil.SlapdJDupont.GUID + "\x00",
			"jdupont",
			"jdupont@hopital.test",
			"\xff\xfe",
			strings.Repeat("a", 5000),
			// DNs: the entry has an objectGUID, so its DN is not its
			// subject; entries that are not people; outside base_dn;
			// nonexistent; wildcards.
			testutil.SlapdJDupont.DN,
			"cn=medecins," + testutil.SlapdGroupsDN,
			testutil.SlapdServiceDN,
			testutil.SlapdPeopleDN,
			testutil.SlapdBaseDN,
			"cn=nobody," + testutil.SlapdPeopleDN,
			"cn=*," + testutil.SlapdPeopleDN,
			"*)(objectGUID=*," + testutil.SlapdPeopleDN,
			"cn=Jeanne Dupont)(cn=*," + testutil.SlapdPeopleDN,
			"cn=Jeanne Dupont,ou=people,dc=elsewhere,dc=test",
			"cn=config",
		} {
			id, err := c.Lookup(ctx, subject)
			if !errors.Is(err, connectors.ErrUnknownSubject) {
				t.Errorf("Lookup(%q) = %+v, %v; want ErrUnknownSubject", subject, id, err)
			}
		}
	})

	t.Run("current state", func(t *testing.T) {
		// Lookup reads the directory now: a change made after sign-in
		// shows at the next Lookup.
		s := testutil.StartSlapd(t)
		admin := s.Admin(t)
		c := open(t, ldapsConfig(s))
		u := testutil.SlapdJDupont
		modify := func(attr, value string) {
			t.Helper()
			m := goldap.NewModifyRequest(u.DN, nil)
			m.Replace(attr, []string{value})
			if err := admin.Modify(m); err != nil {
				t.Fatalf("modify %s: %v", attr, err)
			}
		}
		if _, err := c.Lookup(ctx, u.GUID); err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		modify("displayName", "Pr Jeanne Dupont")
		if id, err := c.Lookup(ctx, u.GUID); err != nil || id.DisplayName != "Pr Jeanne Dupont" {
			t.Errorf("after rename: %q, %v", id.DisplayName, err)
		}
		modify("userAccountControl", "514")
		if _, err := c.Lookup(ctx, u.GUID); !errors.Is(err, connectors.ErrAccountDisabled) {
			t.Errorf("after disabling: %v, want ErrAccountDisabled", err)
		}
		modify("userAccountControl", "512")
		modify("accountExpires", slapdFiletimeForTest(testNow.Add(-time.Minute)))
		if _, err := c.Lookup(ctx, u.GUID); !errors.Is(err, connectors.ErrAccountExpired) {
			t.Errorf("after expiry: %v, want ErrAccountExpired", err)
		}
		modify("accountExpires", "0")
		modify("pwdLastSet", "0")
		// Password expired flag as well: still no obstacle.
		modify("userAccountControl", "8389120")
		if _, err := c.Lookup(ctx, u.GUID); err != nil {
			t.Errorf("with the password expired: %v, want success", err)
		}
		// Removed from medecins: its groups go too.
		m := goldap.NewModifyRequest("cn=medecins,"+testutil.SlapdGroupsDN, nil)
		m.Delete("member", []string{u.DN})
		m.Add("member", []string{testutil.SlapdPMartin.DN})
		if err := admin.Modify(m); err != nil {
			t.Fatal(err)
		}
		if id, err := c.Lookup(ctx, u.GUID); err != nil || id.Groups != nil {
			t.Errorf("after leaving medecins: groups %v, %v", id.Groups, err)
		}
		// Deleted: unknown.
		if err := admin.Del(goldap.NewDelRequest(u.DN, nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Lookup(ctx, u.GUID); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("after deletion: %v, want ErrUnknownSubject", err)
		}
	})

	t.Run("user filter applies", func(t *testing.T) {
		// Whoever the filter keeps out of Login is kept out of Lookup.
		cfg := ldapsConfig(s)
		cfg.UserFilter = "(&(objectClass=user)(memberOf=cn=medecins," + testutil.SlapdGroupsDN + ")(sAMAccountName={username}))"
		c := open(t, cfg)
		if _, err := c.Login(ctx, "pmartin", testutil.SlapdPMartin.Password); !errors.Is(err, connectors.ErrInvalidCredentials) {
			t.Fatalf("Login(pmartin) outside the filter = %v", err)
		}
		if _, err := c.Lookup(ctx, testutil.SlapdPMartin.GUID); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("Lookup(pmartin) outside the filter = %v, want ErrUnknownSubject", err)
		}
		if id, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); err != nil || id.Username != "jdupont" {
			t.Errorf("Lookup(jdupont) = %+v, %v", id, err)
		}
		// The placeholder inside a substring filter.
		cfg = ldapsConfig(s)
		cfg.UserFilter = "(&(objectClass=user)(userPrincipalName={username}@hopital.test))"
		c = open(t, cfg)
		if id, err := c.Lookup(ctx, testutil.SlapdPMartin.GUID); err != nil || id.Username != "pmartin" {
			t.Errorf("Lookup with a substring filter = %+v, %v", id, err)
		}
	})

	t.Run("subject is the DN", func(t *testing.T) {
		// A directory without objectGUID: Login's subject is the DN.
		cfg := ldapsConfig(s)
		cfg.IDAttribute = "entryUUIDx"
		c := open(t, cfg)
		u := testutil.SlapdPMartin
		login, err := c.Login(ctx, u.Username, u.Password)
		if err != nil || login.Subject != u.DN {
			t.Fatalf("Login = %q, %v", login.Subject, err)
		}
		want := wantLookup(u)
		want.Subject = u.DN
		for _, subject := range []string{u.DN, strings.ToUpper(u.DN), "cn=Paul Martin, ou=people, dc=hopital, dc=test"} {
			id, err := c.Lookup(ctx, subject)
			if err != nil || !reflect.DeepEqual(id, want) {
				t.Errorf("Lookup(%q) =\n %+v, %v\nwant\n %+v", subject, id, err, want)
			}
		}
		if _, err := c.Lookup(ctx, testutil.SlapdDisabled.DN); !errors.Is(err, connectors.ErrAccountDisabled) {
			t.Errorf("Lookup(disabled DN) = %v", err)
		}
		if _, err := c.Lookup(ctx, testutil.SlapdMustChange.DN); err != nil {
			t.Errorf("Lookup(mustchange DN) = %v", err)
		}
		for _, subject := range []string{
			u.GUID, // not this directory's subject
			"cn=medecins," + testutil.SlapdGroupsDN,
			testutil.SlapdServiceDN,
			"cn=nobody," + testutil.SlapdPeopleDN,
			"cn=Paul Martin,ou=people,dc=elsewhere,dc=test",
			"*", ")(", "cn=*," + testutil.SlapdPeopleDN,
		} {
			if _, err := c.Lookup(ctx, subject); !errors.Is(err, connectors.ErrUnknownSubject) {
				t.Errorf("Lookup(%q) = %v, want ErrUnknownSubject", subject, err)
			}
		}
	})

	t.Run("other id attribute", func(t *testing.T) {
		// A text IDAttribute: Login's subject is its value, or the DN
		// for entries without one.
		cfg := ldapsConfig(s)
		cfg.IDAttribute = "employeeNumber"
		c := open(t, cfg)
		u := testutil.SlapdJDupont
		id, err := c.Lookup(ctx, u.NationalID)
		if err != nil || id.Subject != u.NationalID || id.Username != u.Username {
			t.Errorf("Lookup(%q) = %+v, %v", u.NationalID, id, err)
		}
		if _, err := c.Lookup(ctx, testutil.SlapdMustChange.DN); err != nil {
			t.Errorf("Lookup(DN of an entry without employeeNumber) = %v", err)
		}
		for _, subject := range []string{u.DN, "8*", "*", "81000000000*", u.GUID} {
			if _, err := c.Lookup(ctx, subject); !errors.Is(err, connectors.ErrUnknownSubject) {
				t.Errorf("Lookup(%q) = %v, want ErrUnknownSubject", subject, err)
			}
		}
	})

	t.Run("nested modes", func(t *testing.T) {
		for mode, want := range map[string][]string{
			NestedOff:       testutil.SlapdPMartin.DirectGroups,
			NestedRecursive: testutil.SlapdPMartin.Groups,
			NestedAuto:      testutil.SlapdPMartin.Groups,
		} {
			cfg := ldapsConfig(s)
			cfg.NestedGroups = mode
			c := open(t, cfg)
			id, err := c.Lookup(ctx, testutil.SlapdPMartin.GUID)
			if err != nil || !reflect.DeepEqual(id.Groups, want) {
				t.Errorf("%s: groups %v, %v; want %v", mode, id.Groups, err, want)
			}
		}
	})

	t.Run("wrong service password", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.BindPassword = "wrong"
		c := open(t, cfg)
		if _, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); !errors.Is(err, connectors.ErrUnavailable) {
			t.Errorf("Lookup = %v, want ErrUnavailable", err)
		}
	})

	t.Run("concurrent, service account only", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.PoolSize = 3
		c := open(t, cfg)
		var wg sync.WaitGroup
		errs := make(chan error, 30)
		users := []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin, testutil.SlapdMustChange}
		for i := range 30 {
			u := users[i%len(users)]
			wg.Go(func() {
				id, err := c.Lookup(ctx, u.GUID)
				if err == nil && !reflect.DeepEqual(id, wantLookup(u)) {
					err = errors.New("wrong identity for " + u.Username)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// Lookup never binds as anyone but the service account.
		c.bind.mu.Lock()
		binds := len(c.bind.idle)
		c.bind.mu.Unlock()
		if binds != 0 {
			t.Errorf("%d bind connections opened by Lookup", binds)
		}
	})
}

func TestLookupDirectoryStopped(t *testing.T) {
	s := testutil.StartSlapd(t)
	c := open(t, ldapsConfig(s))
	ctx := context.Background()
	if _, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	s.Stop()
	start := time.Now()
	_, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID)
	if !errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrUnknownSubject) {
		t.Errorf("Lookup with the directory stopped = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Lookup took %v with the directory stopped", d)
	}
	// A DN subject too: the base search cannot tell "no such entry".
	cfg := ldapsConfig(s)
	cfg.IDAttribute = "entryUUIDx"
	c2 := open(t, cfg)
	if _, err := c2.Lookup(ctx, testutil.SlapdJDupont.DN); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Lookup(DN) with the directory stopped = %v, want ErrUnavailable", err)
	}
	// Malformed subjects never reach the directory: still unknown.
	if _, err := c.Lookup(ctx, "*"); !errors.Is(err, connectors.ErrUnknownSubject) {
		t.Errorf("Lookup(*) with the directory stopped = %v", err)
	}
}

func TestLookupDirectoryHung(t *testing.T) {
	s := testutil.StartSlapd(t)
	cfg := ldapsConfig(s)
	cfg.Timeout = 300 * time.Millisecond
	c := open(t, cfg)
	ctx := context.Background()
	if _, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	defer s.Resume()
	start := time.Now()
	if _, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Lookup with the directory hung = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*cfg.Timeout {
		t.Errorf("Lookup took %v with the directory hung (timeout %v)", d, cfg.Timeout)
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, testutil.SlapdJDupont.GUID); err != nil {
		t.Errorf("Lookup after the directory came back: %v", err)
	}
}

func slapdFiletimeForTest(t time.Time) string {
	return strconv.FormatInt(t.UnixNano()/100+filetimeUnixEpoch, 10)
}

func TestLookupUsername(t *testing.T) {
	s := testutil.StartSlapd(t)
	ctx := context.Background()
	c := open(t, ldapsConfig(s))
	var ul connectors.UsernameLookup = c
	for _, u := range []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin, testutil.SlapdMustChange} {
		id, err := ul.LookupUsername(ctx, u.Username)
		if err != nil {
			t.Errorf("LookupUsername(%s): %v", u.Username, err)
			continue
		}
		if want := wantLookup(u); !reflect.DeepEqual(id, want) {
			t.Errorf("LookupUsername(%s) =\n %+v\nwant\n %+v", u.Username, id, want)
		}
	}
	for _, tc := range []struct {
		u    testutil.SlapdUser
		want error
	}{
		{testutil.SlapdDisabled, connectors.ErrAccountDisabled},
		{testutil.SlapdLocked, connectors.ErrAccountLocked},
		{testutil.SlapdExpired, connectors.ErrAccountExpired},
	} {
		if _, err := c.LookupUsername(ctx, tc.u.Username); !errors.Is(err, tc.want) {
			t.Errorf("LookupUsername(%s) = %v, want %v", tc.u.Username, err, tc.want)
		}
	}
	// Unknown names and filter injection find nobody.
	for _, name := range []string{"", "nobody", "*", "jdup*", "*)(uid=*", ")(", "\x00", "\xff", strings.Repeat("a", 5000), testutil.SlapdJDupont.GUID} {
		if id, err := c.LookupUsername(ctx, name); !errors.Is(err, connectors.ErrUnknownSubject) || id.Subject != "" {
			t.Errorf("LookupUsername(%q) = %+v, %v; want ErrUnknownSubject", name, id, err)
		}
	}
}
