// Package linking joins one person's identities across sources.
//
// A clinician may sign in with their AD password, their CPS card or Pro
// Santé Connect. The card and PSC both carry the national id (idNat_PS);
// the hospital's AD holds it in a configured attribute. Linking finds, for
// a card or PSC identity, the AD account that holds the same national id,
// records the link in the durable store (how and when it was made), and
// gives the sign-in the AD account's identity — its groups, login name and
// `sub` — enriched with what the card or PSC proved. So the `sub` an
// application sees is the same for one person whatever the source.
//
// When no account matches, the hospital chooses (NoMatch): refuse with a
// readable reason, admit the person as an external professional keyed on
// the national id alone ("nat:<idNat>", the same for card and PSC), or let
// them prove their AD password once to make the link.
package linking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
)

// What to do when no local account holds the national id.
const (
	NoMatchDeny     = "deny"
	NoMatchExternal = "external"
	NoMatchPassword = "password"
)

// Link methods recorded in store.IdentityLink.Method.
const (
	MethodNationalID = "national_id"
	MethodPassword   = "password"
	MethodExternal   = "external"
)

// ExternalConnector is the pseudo-connector of external professionals:
// their subject is "nat:<idNat>".
const ExternalConnector = "nat"

// Errors Resolve returns (wrapped); the flow shows each as a readable page.
var (
	// ErrNoLocalAccount: no account holds the national id and the
	// configuration refuses unknown professionals.
	ErrNoLocalAccount = errors.New("no local account for this professional")
	// ErrNeedsPassword: no account holds the national id; the person may
	// link one by proving its password (LinkWithPassword).
	ErrNeedsPassword = errors.New("link with a local account password")
	// ErrAmbiguous: several local accounts hold the national id.
	ErrAmbiguous = errors.New("several local accounts hold this national id")
	// ErrNoNationalID: the upstream identity carries no national id.
	ErrNoNationalID = errors.New("no national id in the upstream identity")
	// ErrMismatch: the account whose password was proved holds another
	// national id.
	ErrMismatch = errors.New("the local account holds another national id")
	// ErrLinkedAccountGone: the account a link points to no longer exists.
	ErrLinkedAccountGone = errors.New("the linked local account no longer exists")
)

// Directory is a local source of accounts (AD, the static directory).
type Directory struct {
	// ID is the connector id, the prefix of its people's subjects.
	ID           string
	ByNationalID connectors.NationalIDLookup
	BySubject    connectors.LookupConnector
}

// Options configure a Linker.
type Options struct {
	Links       store.IdentityLinks
	Directories []Directory
	// NoMatch is NoMatchDeny (default), NoMatchExternal or
	// NoMatchPassword.
	NoMatch string
	Audit   *audit.Recorder
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Linker resolves upstream identities to people.
type Linker struct {
	o Options
}

// New returns a Linker.
func New(o Options) *Linker {
	if o.NoMatch == "" {
		o.NoMatch = NoMatchDeny
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Linker{o: o}
}

// Resolve returns the identity a card or PSC sign-in (up) gives the
// session: the linked account's, merged with what up proved. addr is the
// client address, for audit.
func (l *Linker) Resolve(ctx context.Context, up connectors.Identity, addr string) (connectors.Identity, error) {
	if up.NationalID == "" {
		return connectors.Identity{}, ErrNoNationalID
	}
	link, err := l.o.Links.GetIdentityLink(ctx, up.Connector, up.Subject)
	switch {
	case err == nil:
		return l.follow(ctx, link, up)
	case !errors.Is(err, store.ErrNotFound):
		return connectors.Identity{}, fmt.Errorf("linking: read link: %w", err)
	}

	for _, d := range l.o.Directories {
		if d.ByNationalID == nil {
			continue
		}
		local, err := d.ByNationalID.LookupNationalID(ctx, up.NationalID)
		switch {
		case err == nil:
			if local.Connector == "" {
				local.Connector = d.ID
			}
			return l.create(ctx, up, local, MethodNationalID, addr)
		case errors.Is(err, connectors.ErrUnknownSubject):
			continue
		case errors.Is(err, connectors.ErrAmbiguous):
			l.refused(up, addr, "ambiguous")
			return connectors.Identity{}, fmt.Errorf("linking: %s: %w", d.ID, ErrAmbiguous)
		default:
			// Disabled, locked, expired, unavailable: the connector's error
			// says it, and the flow shows it.
			return connectors.Identity{}, fmt.Errorf("linking: %s: %w", d.ID, err)
		}
	}

	switch l.o.NoMatch {
	case NoMatchExternal:
		ext := External(up)
		return l.create(ctx, up, ext, MethodExternal, addr)
	case NoMatchPassword:
		return connectors.Identity{}, ErrNeedsPassword
	}
	l.refused(up, addr, "no_local_account")
	return connectors.Identity{}, ErrNoLocalAccount
}

// LinkWithPassword links up to local, the identity a password connector
// returned for the password the person just proved. An account that holds
// another national id is refused: the password proves who owns the
// account, not that the card is theirs.
func (l *Linker) LinkWithPassword(ctx context.Context, up, local connectors.Identity, addr string) (connectors.Identity, error) {
	if up.NationalID == "" {
		return connectors.Identity{}, ErrNoNationalID
	}
	if local.NationalID != "" && local.NationalID != up.NationalID {
		l.refused(up, addr, "national_id_mismatch")
		return connectors.Identity{}, ErrMismatch
	}
	return l.create(ctx, up, local, MethodPassword, addr)
}

// create records a new link from up to person and returns the merged
// identity. Of two sign-ins racing to link the same card, the loser
// follows the winner's link.
func (l *Linker) create(ctx context.Context, up, person connectors.Identity, method, addr string) (connectors.Identity, error) {
	link := store.IdentityLink{
		Source: up.Connector, SourceSubject: up.Subject, Person: person.Connector + ":" + person.Subject,
		Method: method, CreatedAt: l.o.Clock().UTC(),
	}
	err := l.o.Links.CreateIdentityLink(ctx, link)
	if errors.Is(err, store.ErrConflict) {
		existing, gerr := l.o.Links.GetIdentityLink(ctx, up.Connector, up.Subject)
		if gerr != nil {
			return connectors.Identity{}, fmt.Errorf("linking: read link after conflict: %w", gerr)
		}
		return l.follow(ctx, existing, up)
	}
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("linking: create link: %w", err)
	}
	if l.o.Audit != nil {
		l.o.Audit.Record(store.AuditEvent{
			Type: audit.IdentityLinked, Person: link.Person, ClientAddr: addr, Outcome: audit.Success,
			Details: map[string]string{"source": link.Source, "source_subject": link.SourceSubject, "method": method},
		})
	}
	if method == MethodExternal {
		return person, nil
	}
	return Merge(person, up), nil
}

// follow resolves an existing link: the account's current identity (its
// groups today, and whether it may still sign in), merged with up.
func (l *Linker) follow(ctx context.Context, link store.IdentityLink, up connectors.Identity) (connectors.Identity, error) {
	dir, subject, ok := strings.Cut(link.Person, ":")
	if !ok {
		return connectors.Identity{}, fmt.Errorf("linking: malformed linked person %q", link.Person)
	}
	if dir == ExternalConnector {
		return External(up), nil
	}
	for _, d := range l.o.Directories {
		if d.ID != dir || d.BySubject == nil {
			continue
		}
		local, err := d.BySubject.Lookup(ctx, subject)
		if errors.Is(err, connectors.ErrUnknownSubject) {
			return connectors.Identity{}, fmt.Errorf("linking: %s: %w", link.Person, ErrLinkedAccountGone)
		}
		if err != nil {
			return connectors.Identity{}, fmt.Errorf("linking: %s: %w", dir, err)
		}
		if local.Connector == "" {
			local.Connector = d.ID
		}
		return Merge(local, up), nil
	}
	return connectors.Identity{}, fmt.Errorf("linking: %s: %w (directory %q is not configured)", link.Person, ErrLinkedAccountGone, dir)
}

func (l *Linker) refused(up connectors.Identity, addr, reason string) {
	if l.o.Audit == nil {
		return
	}
	l.o.Audit.Record(store.AuditEvent{
		Type: audit.IdentityLinkRefused, ClientAddr: addr, Outcome: audit.Failure, Reason: reason,
		Details: map[string]string{"source": up.Connector, "source_subject": up.Subject},
	})
}

// External is the identity of a professional with no local account: keyed
// on the national id, so that their card and PSC sign-ins are one person.
func External(up connectors.Identity) connectors.Identity {
	ext := up
	ext.Connector = ExternalConnector
	ext.Subject = up.NationalID
	ext.Username = up.NationalID
	ext.Groups = nil
	return ext
}

// Merge is the local account's identity (who the hospital says the person
// is: subject, login, groups, email) with what the upstream sign-in proved
// and knows (national id, professions, authentication).
func Merge(local, up connectors.Identity) connectors.Identity {
	out := local
	out.NationalID = up.NationalID
	out.NationalIDType = up.NationalIDType
	out.Professions = up.Professions
	out.Structure = up.Structure
	out.AuthMode = up.AuthMode
	out.Upstream = up.Upstream
	out.AMR = up.AMR
	out.Assurance = up.Assurance
	out.AuthTime = up.AuthTime
	if out.GivenName == "" {
		out.GivenName = up.GivenName
	}
	if out.FamilyName == "" {
		out.FamilyName = up.FamilyName
	}
	if out.DisplayName == "" {
		out.DisplayName = up.DisplayName
	}
	if out.Email == "" {
		out.Email = up.Email
	}
	return out
}
