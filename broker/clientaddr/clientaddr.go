// Package clientaddr works out who is on the other end of an HTTP request:
// the client's address and whether the browser connection is HTTPS.
//
// X-Forwarded-For and X-Forwarded-Proto are believed only when the TCP peer
// is a configured proxy: otherwise any client could pick the address that
// rate limits and the audit trail record.
package clientaddr

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type ctxKey struct{}

// Info is what the middleware learned about a request.
type Info struct {
	Addr  netip.Addr
	HTTPS bool
}

// Resolver applies the trusted-proxy rule.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting forwarded headers from these networks.
func New(trusted []netip.Prefix) *Resolver { return &Resolver{trusted: trusted} }

func (res *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve computes the Info of a request.
func (res *Resolver) Resolve(r *http.Request) Info {
	peer := peerAddr(r.RemoteAddr)
	info := Info{Addr: peer, HTTPS: r.TLS != nil}
	if !peer.IsValid() || !res.isTrusted(peer) {
		return info
	}
	// Walk X-Forwarded-For from the right: the first address that is not
	// one of our proxies is the client. Addresses further left were written
	// by the client itself and prove nothing.
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := parseHop(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			info.Addr = a.Unmap()
			if !res.isTrusted(a) {
				break
			}
		}
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		info.HTTPS = strings.EqualFold(strings.TrimSpace(p), "https")
	}
	return info
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Middleware stores the Info in the request context.
func (res *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := res.Resolve(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
	})
}

// From returns the Info stored by the middleware; without it, the TCP peer.
func From(r *http.Request) Info {
	if info, ok := r.Context().Value(ctxKey{}).(Info); ok {
		return info
	}
	return Info{Addr: peerAddr(r.RemoteAddr), HTTPS: r.TLS != nil}
}

// String returns the client address as text ("" when unknown).
func (i Info) String() string {
	if !i.Addr.IsValid() {
		return ""
	}
	return i.Addr.String()
}

// parseHop reads one X-Forwarded-For entry: an address, or an address with
// a port as some proxies write it ("192.0.2.1:5678", "[2001:db8::1]:443").
func parseHop(h string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(h)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr(), nil
}
