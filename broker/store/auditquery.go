package store

import (
	"fmt"
	"net/netip"
	"strings"
)

// AuditAddrFilter is a parsed AuditQuery.ClientAddr.
type AuditAddrFilter struct {
	// Exact is the address to match exactly, when the filter is not a
	// prefix (the text as given when it is not an IP address, so that
	// events with an odd ClientAddr can still be found).
	Exact string
	// Prefix is set for a CIDR filter.
	Prefix netip.Prefix
	// Like is a textual pre-filter for SQL (LIKE pattern, no wildcards in
	// it other than the trailing %), "" when none applies: an IPv4 prefix
	// of /8, /16 or /24 and longer starts with the same dotted octets.
	Like string
}

// IsPrefix reports whether the filter is a CIDR prefix.
func (f AuditAddrFilter) IsPrefix() bool { return f.Prefix.IsValid() }

// Match reports whether a stored ClientAddr matches.
func (f AuditAddrFilter) Match(addr string) bool {
	if !f.IsPrefix() {
		return addr == f.Exact
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	return f.Prefix.Contains(a.Unmap())
}

// ParseAuditAddrFilter parses AuditQuery.ClientAddr: a CIDR prefix when it
// contains "/", an exact address otherwise. An exact IP address is put in
// the canonical form Garde stores (netip's), so "::FFFF:10.0.0.1" finds
// "10.0.0.1" and "2001:DB8::1" finds "2001:db8::1".
func ParseAuditAddrFilter(s string) (AuditAddrFilter, error) {
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return AuditAddrFilter{Exact: a.Unmap().String()}, nil
		}
		return AuditAddrFilter{Exact: s}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return AuditAddrFilter{}, fmt.Errorf("client address %q is not an address or a CIDR prefix (e.g. 10.1.0.0/16): %w", s, err)
	}
	if p.Addr().Is4In6() {
		// "::ffff:10.0.0.0/104" is the IPv4 prefix 10.0.0.0/8.
		bits := p.Bits() - 96
		if bits < 0 {
			return AuditAddrFilter{}, fmt.Errorf("client address prefix %q is wider than the IPv4-mapped range", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	p = p.Masked()
	f := AuditAddrFilter{Prefix: p}
	if p.Addr().Is4() && p.Bits() >= 8 {
		b := p.Addr().As4()
		var parts []string
		for i := range p.Bits() / 8 {
			parts = append(parts, fmt.Sprint(b[i]))
		}
		f.Like = strings.Join(parts, ".") + ".%"
		if p.Bits() == 32 {
			f.Like = p.Addr().String()
		}
	}
	return f, nil
}
