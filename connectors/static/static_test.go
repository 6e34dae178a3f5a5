package static

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// cheapHash hashes with small parameters: New accepts any sane argon2id
// parameters, and the tests need not spend 64 MiB per check.
func cheapHash(t testing.TB, password string) string {
	t.Helper()
	p := phc{memory: 64, time: 1, threads: 1, salt: []byte("0123456789abcdef"), key: make([]byte, 32)}
	p.key = p.derive(password)
	return p.String()
}

func TestHashPassword(t *testing.T) {
	h1, err := HashPassword("Correct-Horse-9")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=1,p=2$") {
		t.Errorf("hash %q: unexpected parameters", h1)
	}
	p, err := parsePHC(h1)
	if err != nil {
		t.Fatalf("parsePHC(HashPassword()) = %v", err)
	}
	if len(p.salt) != 16 || len(p.key) != 32 || p.memory != 64*1024 || p.time != 1 || p.threads != 2 {
		t.Errorf("parameters %+v", p)
	}
	if !bytes.Equal(p.derive("Correct-Horse-9"), p.key) || bytes.Equal(p.derive("Correct-Horse-8"), p.key) {
		t.Error("hash does not verify its own password only")
	}
	// Salts are random (cheap parameters: one 64 MiB hash per test is enough).
	h2, _ := hashPassword("Correct-Horse-9", 64, 1, 1)
	h3, _ := hashPassword("Correct-Horse-9", 64, 1, 1)
	if h2 == h3 {
		t.Error("two hashes of one password are equal: salt not random")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("HashPassword(\"\") succeeded")
	}

}

// A fixed vector keeps the format stable across versions.
func TestKnownHash(t *testing.T) {
	const h = "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$"
	p := phc{memory: 64, time: 1, threads: 1, salt: []byte("0123456789abcdef"), key: make([]byte, 32)}
	p.key = p.derive("secret")
	if !strings.HasPrefix(p.String(), h) {
		t.Fatalf("encoding %q", p.String())
	}
	q, err := parsePHC(p.String())
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip: %+v %v", q, err)
	}
}

func TestNewValidation(t *testing.T) {
	good := cheapHash(t, "x")
	tests := []struct {
		name   string
		people []Person
	}{
		{"empty username", []Person{{Username: "", PasswordHash: good}}},
		{"spaces", []Person{{Username: " admin", PasswordHash: good}}},
		{"duplicate", []Person{{Username: "admin", PasswordHash: good}, {Username: "Admin", PasswordHash: good}}},
		{"no hash", []Person{{Username: "admin"}}},
		{"cleartext", []Person{{Username: "admin", PasswordHash: "secret"}}},
		{"bcrypt", []Person{{Username: "admin", PasswordHash: "$2y$10$abcdefghijklmnopqrstuuWx3m0r0iN3p4mJ1C5hQ8w2g8X2o3m1a"}}},
		{"argon2i", []Person{{Username: "admin", PasswordHash: strings.Replace(good, "argon2id", "argon2i", 1)}}},
		{"old version", []Person{{Username: "admin", PasswordHash: strings.Replace(good, "v=19", "v=16", 1)}}},
		{"huge memory", []Person{{Username: "admin", PasswordHash: strings.Replace(good, "m=64,", "m=6553600,", 1)}}},
		{"padded salt", []Person{{Username: "admin", PasswordHash: strings.Replace(good, "Zg$", "Zg==$", 1)}}},
	}
	for _, tt := range tests {
		if _, err := New("static", tt.people); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.people)
		} else if strings.Contains(err.Error(), good) {
			t.Errorf("%s: error echoes the hash: %v", tt.name, err)
		}
	}
	if _, err := New("", nil); err == nil {
		t.Error("New accepted an empty id")
	}
	if _, err := New("static", nil); err != nil {
		t.Errorf("New with nobody: %v", err)
	}
}

func TestLogin(t *testing.T) {
	now := time.Date(2026, 2, 2, 9, 30, 0, 0, time.UTC)
	people := []Person{
		{Username: "jdupont", PasswordHash: cheapHash(t, "Jeanne-1!"), GivenName: "Jeanne", FamilyName: "Dupont",
			Email: "jeanne.dupont@hopital.test", NationalID: "810000000009", Groups: []string{"medecins"}},
		{Username: "Admin", PasswordHash: cheapHash(t, "Break-Glass-2!"), DisplayName: "Administrateur"},
	}
	c, err := New("demo", people)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return now }
	people[0].Groups[0] = "changed after New"
	ctx := context.Background()

	id, err := c.Login(ctx, "jdupont", "Jeanne-1!")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	want := connectors.Identity{
		Connector: "demo", Subject: "jdupont", Username: "jdupont",
		NationalID: "810000000009", NationalIDType: "rpps",
		GivenName: "Jeanne", FamilyName: "Dupont", DisplayName: "Jeanne Dupont",
		Email: "jeanne.dupont@hopital.test", Groups: []string{"medecins"},
		AMR: []string{"pwd"}, Assurance: assurance.Low, AuthTime: now,
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("Login =\n %+v\nwant\n %+v", id, want)
	}
	id.Groups[0] = "mutated"
	if id2, _ := c.Login(ctx, "jdupont", "Jeanne-1!"); id2.Groups[0] != "medecins" {
		t.Error("identity shares its groups with the connector")
	}

	id, err = c.Login(ctx, "admin", "Break-Glass-2!")
	if err != nil || id.Subject != "Admin" || id.DisplayName != "Administrateur" || id.Groups != nil {
		t.Errorf("case-insensitive login = %+v, %v", id, err)
	}

	for _, tc := range []struct{ user, pw string }{
		{"jdupont", "Jeanne-1"},
		{"jdupont", "jeanne-1!"},
		{"jdupont", ""},
		{"nobody", "Jeanne-1!"},
		{"", "Jeanne-1!"},
		{"jdupont ", "Jeanne-1!"},
		{"jdupont", strings.Repeat("x", 2000)},
	} {
		if _, err := c.Login(ctx, tc.user, tc.pw); !errors.Is(err, connectors.ErrInvalidCredentials) {
			t.Errorf("Login(%q, %q) = %v, want ErrInvalidCredentials", tc.user, tc.pw, err)
		}
	}

	// Unknown users cost a real verification with the same parameters.
	first, _ := parsePHC(people[0].PasswordHash)
	if c.dummy.memory != first.memory || c.dummy.time != first.time || c.dummy.threads != first.threads ||
		len(c.dummy.key) != len(first.key) || bytes.Equal(c.dummy.salt, first.salt) {
		t.Errorf("dummy hash %+v does not match the cost of %+v", c.dummy, first)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for range cap(c.slots) {
		c.slots <- struct{}{}
	}
	if _, err := c.Login(cancelled, "jdupont", "Jeanne-1!"); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Login with all slots busy and a cancelled context = %v", err)
	}
}

func FuzzParsePHC(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=65536,t=1,p=2$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
		"$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZg",
		"$argon2i$v=19$m=4096,t=3,p=1$ZkMJWbSLyXtxStNGMnA/vg$J1pTv5AcQ8FkX7DaatbOpEptVv5RxmSp5eBxnMJ+RDw",
		"$argon2id$v=19$m=0,t=0,p=0$$", "$$$$$", "", "$argon2id$v=19$m=99999999999,t=1,p=1$a$b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.memory > maxMemoryKiB || p.memory < 8*uint32(p.threads) || p.time < 1 || p.time > maxTime ||
			p.threads < 1 || p.threads > maxThreads || len(p.salt) < minSaltLen || len(p.key) < minKeyLen ||
			len(p.salt) > maxSaltLen || len(p.key) > maxKeyLen {
			t.Fatalf("parsePHC(%q) accepted out-of-bounds %+v", s, p)
		}
		q, err := parsePHC(p.String())
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip of %q: %+v, %v", s, q, err)
		}
	})
}

func TestLookup(t *testing.T) {
	people := []Person{
		{Username: "jdupont", PasswordHash: cheapHash(t, "Jeanne-1!"), GivenName: "Jeanne", FamilyName: "Dupont",
			Email: "jeanne.dupont@hopital.test", NationalID: "810000000009", Groups: []string{"medecins"}},
		{Username: "Admin", PasswordHash: cheapHash(t, "Break-Glass-2!"), DisplayName: "Administrateur"},
	}
	c, err := New("demo", people)
	if err != nil {
		t.Fatal(err)
	}
	var lc connectors.LookupConnector = c
	ctx := context.Background()

	// The identity Login returns, minus what Login proved.
	login, err := c.Login(ctx, "jdupont", "Jeanne-1!")
	if err != nil {
		t.Fatal(err)
	}
	want := login
	want.AMR, want.Assurance, want.AuthTime = nil, assurance.None, time.Time{}
	id, err := lc.Lookup(ctx, login.Subject)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("Lookup =\n %+v\nwant\n %+v", id, want)
	}
	if len(id.AMR) != 0 || id.Assurance != assurance.None || !id.AuthTime.IsZero() {
		t.Errorf("Lookup claims an authentication: %v %v %v", id.AMR, id.Assurance, id.AuthTime)
	}
	id.Groups[0] = "mutated"
	if id2, _ := lc.Lookup(ctx, "jdupont"); id2.Groups[0] != "medecins" {
		t.Error("identity shares its groups with the connector")
	}

	for _, subject := range []string{"Admin", "admin", "ADMIN"} {
		id, err := lc.Lookup(ctx, subject)
		if err != nil || id.Subject != "Admin" || id.Username != "Admin" || id.DisplayName != "Administrateur" ||
			id.Connector != "demo" || id.Groups != nil {
			t.Errorf("Lookup(%q) = %+v, %v", subject, id, err)
		}
	}

	for _, subject := range []string{"", "nobody", "jdupont ", " jdupont", "jdupont\x00", "*", strings.Repeat("a", 2000)} {
		if _, err := lc.Lookup(ctx, subject); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknownSubject", subject, err)
		}
	}

	empty, err := New("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Lookup(ctx, "jdupont"); !errors.Is(err, connectors.ErrUnknownSubject) {
		t.Errorf("Lookup in an empty directory = %v", err)
	}
}

func TestLookupNationalID(t *testing.T) {
	people := []Person{
		{Username: "jdupont", PasswordHash: cheapHash(t, "Jeanne-1!"), NationalID: "810000000009", Groups: []string{"medecins"}},
		{Username: "twin-a", PasswordHash: cheapHash(t, "Twin-a-1!"), NationalID: "810000000777"},
		{Username: "twin-b", PasswordHash: cheapHash(t, "Twin-b-1!"), NationalID: "810000000777"},
		{Username: "admin", PasswordHash: cheapHash(t, "Break-Glass-2!")},
	}
	c, err := New("demo", people)
	if err != nil {
		t.Fatal(err)
	}
	var nl connectors.NationalIDLookup = c
	ctx := context.Background()
	id, err := nl.LookupNationalID(ctx, "810000000009")
	if err != nil || id.Subject != "jdupont" || id.Connector != "demo" || id.NationalIDType != "rpps" {
		t.Fatalf("LookupNationalID = %+v, %v", id, err)
	}
	if _, err := nl.LookupNationalID(ctx, "810000000777"); !errors.Is(err, connectors.ErrAmbiguous) {
		t.Errorf("shared national id = %v, want ErrAmbiguous", err)
	}
	// An account without a national id is never matched by the empty one.
	for _, idNat := range []string{"", "899999999999"} {
		if _, err := nl.LookupNationalID(ctx, idNat); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("LookupNationalID(%q) = %v, want ErrUnknownSubject", idNat, err)
		}
	}
}

func TestLookupUsername(t *testing.T) {
	c, err := New("demo", []Person{{Username: "Jdupont", PasswordHash: cheapHash(t, "Jeanne-1!"), Groups: []string{"medecins"}}})
	if err != nil {
		t.Fatal(err)
	}
	var ul connectors.UsernameLookup = c
	ctx := context.Background()
	id, err := ul.LookupUsername(ctx, "jdupont")
	if err != nil || id.Subject != "Jdupont" || id.Connector != "demo" || id.Groups[0] != "medecins" || len(id.AMR) != 0 || id.Assurance != assurance.None {
		t.Errorf("LookupUsername = %+v, %v", id, err)
	}
	for _, name := range []string{"", "nobody", "*", "jdupont "} {
		if _, err := ul.LookupUsername(ctx, name); !errors.Is(err, connectors.ErrUnknownSubject) {
			t.Errorf("LookupUsername(%q) = %v, want ErrUnknownSubject", name, err)
		}
	}
}
