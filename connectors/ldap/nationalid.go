package ldap

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
)

// maxNationalIDLen bounds the ids LookupNationalID searches for: the
// longest idNat (a structure id, "/", a local id) is far shorter.
const maxNationalIDLen = 128

// LookupNationalID implements connectors.NationalIDLookup: the account
// whose national id attribute (attributes.national_id) equals idNat, among
// the accounts the user filter admits. Two accounts holding the same id is
// a directory error that Garde refuses to guess about (ErrAmbiguous).
func (c *Connector) LookupNationalID(ctx context.Context, idNat string) (connectors.Identity, error) {
	attr := c.cfg.NationalIDAttribute
	if attr == "" {
		return connectors.Identity{}, fmt.Errorf("ldap: no national_id attribute configured: %w", connectors.ErrUnknownSubject)
	}
	if idNat == "" || len(idNat) > maxNationalIDLen || !utf8.ValidString(idNat) || strings.ContainsRune(idNat, 0) {
		return connectors.Identity{}, fmt.Errorf("ldap: malformed national id: %w", connectors.ErrUnknownSubject)
	}
	anyUser := strings.ReplaceAll(c.cfg.UserFilter, "{username}", "*")
	filter := fmt.Sprintf("(&(%s=%s)%s)", attr, goldap.EscapeFilter(idNat), anyUser)
	req := goldap.NewSearchRequest(c.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, int(c.cfg.Timeout/time.Second), false, filter, c.userAttributes(), nil)
	var res *goldap.SearchResult
	err := c.search.with(ctx, func(conn *conn) error {
		return conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error {
			r, err := l.Search(req)
			res = r
			return err
		})
	})
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || (err == nil && len(res.Entries) > 1) {
		c.logger.Warn("ldap: several accounts hold one national id; none is linked", "attribute", attr)
		return connectors.Identity{}, fmt.Errorf("ldap: national id: %w", connectors.ErrAmbiguous)
	}
	if err != nil {
		return connectors.Identity{}, c.unavailable("national id lookup", err)
	}
	if len(res.Entries) == 0 {
		return connectors.Identity{}, fmt.Errorf("ldap: national id: %w", connectors.ErrUnknownSubject)
	}
	entry := res.Entries[0]
	if err := accountState(stateOf(entry), c.cfg.Now(), false); err != nil {
		c.logger.Info("ldap: national id lookup refused by account state", "dn", entry.DN, "err", err)
		return connectors.Identity{}, fmt.Errorf("ldap: %w", err)
	}
	return c.identity(ctx, entry)
}
