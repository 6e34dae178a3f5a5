// Package static is the built-in directory: people listed in the
// configuration with argon2id password hashes. It serves demonstrations and
// break-glass administrator accounts that must work when Active Directory
// is down.
package static

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// Person is one account of the static directory.
type Person struct {
	Username     string
	PasswordHash string // PHC argon2id, from HashPassword
	GivenName    string
	FamilyName   string
	DisplayName  string
	Email        string
	NationalID   string
	Groups       []string
}

// Limits on input: argon2 hashes any length, but a megabyte password is an
// attack on CPU, not a password.
const (
	maxUsernameLen = 256
	maxPasswordLen = 1024
)

type account struct {
	person Person
	hash   phc
}

// Connector checks passwords against the configured people.
type Connector struct {
	id     string
	people map[string]*account // by lower-case username
	// dummy is verified for unknown usernames so that they cost the same
	// argon2 work as known ones: response time must not reveal which
	// accounts exist.
	dummy phc
	// slots bounds concurrent argon2 computations: each takes 64 MiB, and
	// a burst of sign-ins must not exhaust memory.
	slots chan struct{}
	now   func() time.Time
}

var (
	_ connectors.PasswordConnector = (*Connector)(nil)
	_ connectors.LookupConnector   = (*Connector)(nil)
	_ connectors.NationalIDLookup  = (*Connector)(nil)
	_ connectors.UsernameLookup    = (*Connector)(nil)
)

// New validates people and returns the connector. Usernames are matched
// case-insensitively and must be unique that way; every hash must be a
// well-formed argon2id PHC string.
func New(id string, people []Person) (*Connector, error) {
	if id == "" {
		return nil, errors.New("static connector: empty id")
	}
	c := &Connector{
		id:     id,
		people: make(map[string]*account, len(people)),
		slots:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		now:    time.Now,
	}
	for i, p := range people {
		if p.Username == "" || strings.TrimSpace(p.Username) != p.Username || len(p.Username) > maxUsernameLen {
			return nil, fmt.Errorf("static connector %q: people[%d]: username %q: must be non-empty, without surrounding spaces", id, i, p.Username)
		}
		key := strings.ToLower(p.Username)
		if _, dup := c.people[key]; dup {
			return nil, fmt.Errorf("static connector %q: people[%d]: username %q listed twice", id, i, p.Username)
		}
		h, err := parsePHC(p.PasswordHash)
		if err != nil {
			// The hash itself is not echoed: it is a secret too.
			return nil, fmt.Errorf("static connector %q: people[%d] (%s): password_hash: %w", id, i, p.Username, err)
		}
		p.Groups = append([]string(nil), p.Groups...)
		if p.DisplayName == "" {
			p.DisplayName = strings.TrimSpace(p.GivenName + " " + p.FamilyName)
		}
		c.people[key] = &account{person: p, hash: h}
	}
	// The dummy takes the parameters of the first account (the cost of a
	// real one; HashPassword's when there is none) with a random salt and
	// tag, which no password can match.
	d := phc{memory: hashMemoryKiB, time: hashTime, threads: hashThreads,
		salt: make([]byte, hashSaltLen), key: make([]byte, hashKeyLen)}
	if len(people) > 0 {
		first := c.people[strings.ToLower(people[0].Username)].hash
		d = phc{memory: first.memory, time: first.time, threads: first.threads,
			salt: make([]byte, len(first.salt)), key: make([]byte, len(first.key))}
	}
	if _, err := rand.Read(d.salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(d.key); err != nil {
		return nil, err
	}
	c.dummy = d
	return c, nil
}

// Login implements connectors.PasswordConnector.
func (c *Connector) Login(ctx context.Context, username, password string) (connectors.Identity, error) {
	if username == "" || password == "" || len(username) > maxUsernameLen || len(password) > maxPasswordLen {
		return connectors.Identity{}, fmt.Errorf("static: %w", connectors.ErrInvalidCredentials)
	}
	acct := c.people[strings.ToLower(username)]
	hash := c.dummy
	if acct != nil {
		hash = acct.hash
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return connectors.Identity{}, fmt.Errorf("static: %w: %w", connectors.ErrUnavailable, ctx.Err())
	}
	got := hash.derive(password)
	<-c.slots
	if subtle.ConstantTimeCompare(got, hash.key) != 1 || acct == nil {
		return connectors.Identity{}, fmt.Errorf("static: %w", connectors.ErrInvalidCredentials)
	}
	id := acct.identity(c.id)
	id.AMR = []string{assurance.AMRPassword}
	id.Assurance = assurance.Low
	id.AuthTime = c.now()
	return id, nil
}

// Lookup implements connectors.LookupConnector: the subject is the
// username, matched case-insensitively as Login matches it. The static
// directory has no account states; nothing is proven, so AMR, Assurance
// and AuthTime are left zero.
func (c *Connector) Lookup(ctx context.Context, subject string) (connectors.Identity, error) {
	acct := c.people[strings.ToLower(subject)]
	if subject == "" || acct == nil {
		return connectors.Identity{}, fmt.Errorf("static: %w", connectors.ErrUnknownSubject)
	}
	return acct.identity(c.id), nil
}

// LookupUsername implements connectors.UsernameLookup: in the static
// directory the subject is the username.
func (c *Connector) LookupUsername(ctx context.Context, username string) (connectors.Identity, error) {
	return c.Lookup(ctx, username)
}

// identity is the account's identity, without how the person
// authenticated.
func (a *account) identity(connector string) connectors.Identity {
	p := a.person
	return connectors.Identity{
		Connector:      connector,
		Subject:        p.Username,
		Username:       p.Username,
		NationalID:     p.NationalID,
		NationalIDType: connectors.NationalIDTypeOf(p.NationalID),
		GivenName:      p.GivenName,
		FamilyName:     p.FamilyName,
		DisplayName:    p.DisplayName,
		Email:          p.Email,
		Groups:         append([]string(nil), p.Groups...),
	}
}

// LookupNationalID implements connectors.NationalIDLookup, so that the
// demo (and break-glass accounts that carry a national id) can be linked
// to a card or Pro Santé Connect sign-in.
func (c *Connector) LookupNationalID(ctx context.Context, idNat string) (connectors.Identity, error) {
	var found *account
	for _, a := range c.people {
		if idNat == "" || a.person.NationalID != idNat {
			continue
		}
		if found != nil {
			return connectors.Identity{}, fmt.Errorf("static: national id: %w", connectors.ErrAmbiguous)
		}
		found = a
	}
	if found == nil {
		return connectors.Identity{}, fmt.Errorf("static: national id: %w", connectors.ErrUnknownSubject)
	}
	return found.identity(c.id), nil
}
