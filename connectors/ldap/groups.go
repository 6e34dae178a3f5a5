package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// inChainRule is AD's LDAP_MATCHING_RULE_IN_CHAIN: (member:<rule>:=<dn>)
// matches every group that contains dn directly or through nesting.
const inChainRule = "1.2.840.113556.1.4.1941"

// Bounds on recursive expansion: group graphs can be deep, cyclic or
// simply huge, and a sign-in must not walk the whole directory.
const (
	maxGroupDepth = 10
	maxGroups     = 1000
)

// inChain states (Connector.inChain).
const (
	inChainUnknown int32 = iota
	inChainSupported
	inChainUnsupported
)

// groups returns the names of the person's groups, sorted.
func (c *Connector) groups(ctx context.Context, entry *goldap.Entry) ([]string, error) {
	direct := entry.GetEqualFoldAttributeValues(c.cfg.MemberOfAttribute)
	switch c.cfg.NestedGroups {
	case NestedOff:
		return c.expandGroups(ctx, direct, 1)
	case NestedRecursive:
		return c.expandGroups(ctx, direct, maxGroupDepth)
	case NestedInChain:
		return c.inChainGroups(ctx, entry.DN)
	}
	switch c.inChain.Load() {
	case inChainSupported:
		return c.inChainGroups(ctx, entry.DN)
	case inChainUnsupported:
		return c.expandGroups(ctx, direct, maxGroupDepth)
	}
	// Auto, not decided yet: try the rule. A directory that does not know
	// it either refuses the filter or, like OpenLDAP, evaluates it as
	// Undefined and matches nothing; the latter shows when the person has
	// direct groups in scope that the in-chain search did not return.
	names, err := c.inChainGroups(ctx, entry.DN)
	var te *timeoutError
	switch {
	case err != nil && (isConnError(err) || errors.As(err, &te)):
		return nil, err
	case err != nil:
		c.decideInChain(inChainUnsupported, "ldap: directory refuses LDAP_MATCHING_RULE_IN_CHAIN; expanding nested groups recursively", "err", err)
	case len(names) > 0:
		c.decideInChain(inChainSupported, "ldap: directory supports LDAP_MATCHING_RULE_IN_CHAIN")
		return names, nil
	case c.anyInScope(direct):
		c.decideInChain(inChainUnsupported, "ldap: directory ignores LDAP_MATCHING_RULE_IN_CHAIN; expanding nested groups recursively")
	default:
		return nil, nil // no groups at all: nothing learnt
	}
	return c.expandGroups(ctx, direct, maxGroupDepth)
}

// decideInChain records the outcome of the in-chain probe, logging it once.
func (c *Connector) decideInChain(state int32, msg string, args ...any) {
	if c.inChain.CompareAndSwap(inChainUnknown, state) {
		c.logger.Info(msg, args...)
	}
}

// inChainGroups asks the directory (AD) for every group containing dn,
// nested or not, in one search under GroupBaseDN (else BaseDN).
func (c *Connector) inChainGroups(ctx context.Context, dn string) ([]string, error) {
	base := c.cfg.GroupBaseDN
	if base == "" {
		base = c.cfg.BaseDN
	}
	filter := fmt.Sprintf("(%s:%s:=%s)", c.cfg.GroupMemberAttribute, inChainRule, goldap.EscapeFilter(dn))
	var names []string
	err := c.search.with(ctx, func(conn *conn) error {
		names = names[:0]
		req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			0, 0, false, filter, []string{c.cfg.GroupNameAttribute}, nil)
		return conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error {
			// Paged: AD returns at most 1000 entries per page.
			res, err := l.SearchWithPaging(req, 500)
			if err != nil {
				return err
			}
			for _, e := range res.Entries {
				names = append(names, c.groupName(e.DN, e))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("in-chain group search: %w", err)
	}
	return sortedUnique(names), nil
}

// expandGroups names the groups in direct and, up to depth levels, the
// groups those are members of (their memberOf), with cycle protection.
// Only groups under GroupBaseDN are reported, but the walk goes through
// any group, as the in-chain rule does.
func (c *Connector) expandGroups(ctx context.Context, direct []string, depth int) ([]string, error) {
	if len(direct) == 0 {
		return nil, nil
	}
	var names []string
	err := c.search.with(ctx, func(conn *conn) error {
		names = names[:0]
		visited := make(map[string]bool)
		frontier := direct
		for level := 0; level < depth && len(frontier) > 0; level++ {
			var next []string
			for _, dn := range frontier {
				key := normDN(dn)
				if visited[key] {
					continue // a cycle, or reached twice
				}
				if len(visited) >= maxGroups {
					c.logger.Warn("ldap: group expansion stopped at the limit", "limit", maxGroups)
					return nil
				}
				visited[key] = true
				if depth == 1 && c.rdnIsName(dn) {
					// Direct groups only and the name is in the DN: no
					// need to read the entry.
					if c.inScope(dn) {
						names = append(names, c.groupName(dn, nil))
					}
					continue
				}
				e, err := c.readGroup(ctx, conn, dn)
				if err != nil {
					return err
				}
				if e == nil {
					continue
				}
				if c.inScope(dn) {
					names = append(names, c.groupName(dn, e))
				}
				next = append(next, e.GetEqualFoldAttributeValues(c.cfg.MemberOfAttribute)...)
			}
			frontier = next
		}
		if depth > 1 && anyUnvisited(frontier, visited) {
			c.logger.Warn("ldap: group nesting deeper than the limit; deeper groups ignored", "depth", depth)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("group expansion: %w", err)
	}
	return sortedUnique(names), nil
}

// readGroup reads a group's name and memberOf. A group that no longer
// exists is skipped (nil, nil); one the service account may not read is
// named from its DN and not followed further.
func (c *Connector) readGroup(ctx context.Context, conn *conn, dn string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{c.cfg.GroupNameAttribute, c.cfg.MemberOfAttribute}, nil)
	var res *goldap.SearchResult
	err := conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error {
		r, err := l.Search(req)
		res = r
		return err
	})
	var te *timeoutError
	switch {
	case err == nil && len(res.Entries) == 1:
		return res.Entries[0], nil
	case err == nil, goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		c.logger.Debug("ldap: group not found, skipped", "dn", dn)
		return nil, nil
	case isConnError(err) || errors.As(err, &te):
		return nil, err
	}
	c.logger.Warn("ldap: cannot read group, named from its DN", "dn", dn, "err", err)
	return goldap.NewEntry(dn, nil), nil
}

// groupName is the group's GroupNameAttribute, else the value of the first
// RDN of its DN.
func (c *Connector) groupName(dn string, e *goldap.Entry) string {
	if e != nil {
		if v := e.GetEqualFoldAttributeValue(c.cfg.GroupNameAttribute); v != "" {
			return v
		}
	}
	if d, err := goldap.ParseDN(dn); err == nil && len(d.RDNs) > 0 && len(d.RDNs[0].Attributes) > 0 {
		return d.RDNs[0].Attributes[0].Value
	}
	return dn
}

// rdnIsName tells whether the first RDN of dn is the naming attribute.
func (c *Connector) rdnIsName(dn string) bool {
	d, err := goldap.ParseDN(dn)
	return err == nil && len(d.RDNs) > 0 && len(d.RDNs[0].Attributes) == 1 &&
		strings.EqualFold(d.RDNs[0].Attributes[0].Type, c.cfg.GroupNameAttribute)
}

func (c *Connector) inScope(dn string) bool {
	if c.groupBase == nil {
		return true
	}
	d, err := goldap.ParseDN(dn)
	return err == nil && c.groupBase.AncestorOfFold(d)
}

func (c *Connector) anyInScope(dns []string) bool {
	for _, dn := range dns {
		if c.inScope(dn) {
			return true
		}
	}
	return false
}

// normDN is a comparison key for DNs (case and spacing ignored).
func normDN(dn string) string {
	if d, err := goldap.ParseDN(dn); err == nil {
		return strings.ToLower(d.String())
	}
	return strings.ToLower(dn)
}

func anyUnvisited(dns []string, visited map[string]bool) bool {
	for _, dn := range dns {
		if !visited[normDN(dn)] {
			return true
		}
	}
	return false
}
