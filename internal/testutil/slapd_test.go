package testutil

import (
	"crypto/tls"
	"sort"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestSlapdFixture(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := StartSlapd(t)
	t.Logf("slapd ready in %v", time.Since(start))

	conn, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: s.CAPool}))
	if err != nil {
		t.Fatalf("dial ldaps: %v", err)
	}
	defer conn.Close()
	conn.SetTimeout(5 * time.Second)
	if err := conn.Bind(SlapdServiceDN, SlapdServicePassword); err != nil {
		t.Fatalf("service bind: %v", err)
	}
	for _, u := range SlapdUsers() {
		res, err := conn.Search(goldap.NewSearchRequest(SlapdBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 2, 5, false,
			"(&(objectClass=user)(sAMAccountName="+goldap.EscapeFilter(u.Username)+"))", []string{"memberOf", "objectGUID"}, nil))
		if err != nil {
			t.Fatalf("search %s: %v", u.Username, err)
		}
		if len(res.Entries) != 1 || res.Entries[0].DN != u.DN {
			t.Fatalf("search %s: got %d entries", u.Username, len(res.Entries))
		}
		var got []string
		for _, dn := range res.Entries[0].GetAttributeValues("memberOf") {
			d, _ := goldap.ParseDN(dn)
			got = append(got, d.RDNs[0].Attributes[0].Value)
		}
		sort.Strings(got)
		if len(got) != len(u.DirectGroups) {
			t.Errorf("%s memberOf = %v, want %v", u.Username, got, u.DirectGroups)
		}
		if g := res.Entries[0].GetRawAttributeValue("objectGUID"); string(g) != string(slapdGUIDBytes(u.GUID)) {
			t.Errorf("%s objectGUID = %x", u.Username, g)
		}
	}

	// StartTLS on the plain port.
	plain, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.StartTLS(&tls.Config{RootCAs: s.CAPool, ServerName: "localhost"}); err != nil {
		t.Fatalf("starttls: %v", err)
	}
	if err := plain.Bind(SlapdJDupont.DN, SlapdJDupont.Password); err != nil {
		t.Fatalf("user bind: %v", err)
	}

	s.Stop()
	if _, err := goldap.DialURL(s.URL); err == nil {
		t.Fatal("dial after Stop succeeded")
	}
}
