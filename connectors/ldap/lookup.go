package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
)

// maxSubjectLen bounds the subjects Lookup accepts: a GUID is 36
// characters, a DN rarely more than a few hundred.
const maxSubjectLen = 2048

// Lookup implements connectors.LookupConnector: it reads the current entry
// of a person Login returned before, by Identity.Subject, with the service
// account. The subject is what Login returns: the objectGUID in canonical
// form (searched as the binary value, each byte escaped), the value of
// another IDAttribute, or the entry DN when the entry has no such
// attribute (read with a base-scope search). The entry must still match
// UserFilter, with the username left open ({username} → *), so that
// whatever the filter excludes from Login (another object class, a
// required group) is excluded here too. The found entry's subject must be
// the one asked for: a DN is not accepted for an entry that has an
// objectGUID.
//
// Disabled, locked and expired accounts are refused, as Login refuses them;
// an expired password or one that must be changed is not. Groups and names
// are read as Login reads them. Nothing is proven: AMR, Assurance and
// AuthTime are left zero.
func (c *Connector) Lookup(ctx context.Context, subject string) (connectors.Identity, error) {
	entry, err := c.findSubject(ctx, subject)
	if errors.Is(err, errNoUser) {
		logged := subject
		if len(logged) > 128 {
			logged = logged[:128] + "..."
		}
		c.logger.Debug("ldap: lookup: unknown subject", "subject", logged, "reason", err.Error())
		return connectors.Identity{}, fmt.Errorf("ldap: %w", connectors.ErrUnknownSubject)
	}
	if err != nil {
		return connectors.Identity{}, c.unavailable("lookup", err)
	}
	if err := accountState(stateOf(entry), c.cfg.Now(), false); err != nil {
		c.logger.Info("ldap: lookup refused by account state", "dn", entry.DN, "err", err)
		return connectors.Identity{}, fmt.Errorf("ldap: %w", err)
	}
	return c.identity(ctx, entry)
}

// findSubject finds the entry Login gave subject to. Malformed subjects,
// no entry, several entries or an entry whose subject differs are
// errNoUser; other errors mean the directory did not answer.
func (c *Connector) findSubject(ctx context.Context, subject string) (*goldap.Entry, error) {
	if subject == "" || len(subject) > maxSubjectLen || !utf8.ValidString(subject) || strings.ContainsRune(subject, 0) {
		return nil, fmt.Errorf("%w (malformed subject)", errNoUser)
	}
	// {username} → * keeps every condition of the filter but the name.
	// Substituted unescaped on purpose: (attr=*) is a presence filter and
	// (attr=*@domain) a substring one. Where the placeholder sits in an
	// approximate, ordering or extensible match, "*" is a literal value
	// that matches nobody: Lookup then fails closed (ErrUnknownSubject).
	anyUser := strings.ReplaceAll(c.cfg.UserFilter, "{username}", "*")

	var (
		entry *goldap.Entry
		err   error
	)
	isGUID := strings.EqualFold(c.cfg.IDAttribute, "objectGUID")
	if raw, ok := parseGUID(subject); ok && isGUID {
		subject = strings.ToLower(subject)
		// The binary value, every byte escaped; or the text form, which
		// some gateways and test directories store.
		filter := fmt.Sprintf("(&(|(%[1]s=%[2]s)(%[1]s=%[3]s))%[4]s)",
			c.cfg.IDAttribute, escapeBytes(raw), goldap.EscapeFilter(subject), anyUser)
		entry, err = c.searchUser(ctx, c.cfg.BaseDN, goldap.ScopeWholeSubtree, filter)
	} else if dn, derr := goldap.ParseDN(subject); derr == nil && len(dn.RDNs) > 0 {
		// Login searches under BaseDN only; so does Lookup.
		if !c.baseDN.AncestorOfFold(dn) {
			return nil, fmt.Errorf("%w (DN outside base_dn)", errNoUser)
		}
		entry, err = c.searchUser(ctx, subject, goldap.ScopeBaseObject, anyUser)
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) ||
			goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax) {
			return nil, fmt.Errorf("%w (no such entry)", errNoUser)
		}
	} else if !isGUID {
		filter := fmt.Sprintf("(&(%s=%s)%s)", c.cfg.IDAttribute, goldap.EscapeFilter(subject), anyUser)
		entry, err = c.searchUser(ctx, c.cfg.BaseDN, goldap.ScopeWholeSubtree, filter)
	} else {
		return nil, fmt.Errorf("%w (neither a GUID nor a DN)", errNoUser)
	}
	if err != nil {
		return nil, err
	}
	if got := c.subject(entry); got != subject && (got != entry.DN || normDN(got) != normDN(subject)) {
		return nil, fmt.Errorf("%w (entry %s has subject %s)", errNoUser, entry.DN, got)
	}
	return entry, nil
}

var _ connectors.UsernameLookup = (*Connector)(nil)

// LookupUsername implements connectors.UsernameLookup: it finds the entry
// Login would find for username (UserFilter, the username escaped) with the
// service account, refuses disabled, locked and expired accounts as Lookup
// does, and reads the identity as Login does. Nothing is proven.
func (c *Connector) LookupUsername(ctx context.Context, username string) (connectors.Identity, error) {
	if username == "" || len(username) > maxUsernameLen || !utf8.ValidString(username) || strings.ContainsRune(username, 0) {
		return connectors.Identity{}, fmt.Errorf("ldap: %w", connectors.ErrUnknownSubject)
	}
	entry, err := c.findUser(ctx, username)
	if errors.Is(err, errNoUser) {
		return connectors.Identity{}, fmt.Errorf("ldap: %w", connectors.ErrUnknownSubject)
	}
	if err != nil {
		return connectors.Identity{}, c.unavailable("lookup", err)
	}
	if err := accountState(stateOf(entry), c.cfg.Now(), false); err != nil {
		return connectors.Identity{}, fmt.Errorf("ldap: %w", err)
	}
	id, err := c.identity(ctx, entry)
	if err != nil {
		return connectors.Identity{}, err
	}
	if id.Username == "" {
		id.Username = username
	}
	return id, nil
}
