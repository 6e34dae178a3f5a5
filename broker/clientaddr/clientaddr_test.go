package clientaddr

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// proxies is a typical deployment: the load balancers' subnet, plus an
// IPv6 ingress range.
var proxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/24"),
	netip.MustParsePrefix("fd00:1::/64"),
}

func request(remote string, header http.Header, https bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
	r.RemoteAddr = remote
	r.TLS = nil
	if https {
		r.TLS = &tls.ConnectionState{}
	}
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return r
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		header  http.Header
		tls     bool
		want    string
		https   bool
	}{
		{
			name:   "direct client, no headers",
			remote: "203.0.113.7:51234", want: "203.0.113.7",
		},
		{
			name:   "direct TLS client",
			remote: "203.0.113.7:51234", tls: true, want: "203.0.113.7", https: true,
		},
		// An untrusted peer cannot choose the address that rate limits and
		// the audit trail record, nor claim HTTPS.
		{
			name: "untrusted peer: XFF and XFP ignored", trusted: proxies,
			remote: "203.0.113.7:51234",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
			want:   "203.0.113.7",
		},
		{
			name: "untrusted peer: XFP http does not downgrade real TLS", trusted: proxies,
			remote: "203.0.113.7:51234", tls: true,
			header: http.Header{"X-Forwarded-Proto": {"http"}},
			want:   "203.0.113.7", https: true,
		},
		{
			name:   "no trusted proxies at all: headers ignored even from 10.0.0.1",
			remote: "10.0.0.1:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
			want:   "10.0.0.1",
		},
		{
			name: "trusted peer: single hop", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
			want:   "198.51.100.1", https: true,
		},
		{
			// The client wrote the left-most entries itself: only the
			// right-most untrusted hop, written by our proxy, is believed.
			name: "trusted peer: spoofed left-most entries ignored", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"1.1.1.1, 2.2.2.2, 198.51.100.1"}},
			want:   "198.51.100.1",
		},
		{
			name: "chain of trusted proxies", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.0.0.9, 10.0.0.8"}},
			want:   "198.51.100.1",
		},
		{
			name: "chain split over several header lines", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1", "10.0.0.9"}},
			want:   "198.51.100.1",
		},
		{
			name: "every hop trusted: the left-most proxy", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}},
			want:   "10.0.0.7",
		},
		{
			// Garbage stops the walk: the address stays the last hop we
			// could read (here the proxy itself), never something left of
			// the garbage.
			name: "garbage right-most hop", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1, not-an-ip"}},
			want:   "10.0.0.5",
		},
		{
			name: "garbage behind a trusted hop", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"6.6.6.6, <script>, 10.0.0.9"}},
			want:   "10.0.0.9",
		},
		{
			// Some proxies write the client's port too.
			name: "hop with a port", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1:4444"}},
			want:   "198.51.100.1",
		},
		{
			name: "IPv6 hop with a port", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"[2001:db8::7]:4444"}},
			want:   "2001:db8::7",
		},
		{
			name: "garbage hop stops the walk", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"not-an-address"}},
			want:   "10.0.0.5",
		},
		{
			name: "empty XFF", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {""}},
			want:   "10.0.0.5",
		},
		{
			name: "IPv6 client behind IPv6 proxy", trusted: proxies,
			remote: "[fd00:1::2]:443",
			header: http.Header{"X-Forwarded-For": {"2001:db8::42"}},
			want:   "2001:db8::42",
		},
		{
			name: "untrusted IPv6 peer", trusted: proxies,
			remote: "[2001:db8::66]:443",
			header: http.Header{"X-Forwarded-For": {"2001:db8::42"}},
			want:   "2001:db8::66",
		},
		{
			// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d;
			// they must still match the IPv4 proxy prefix.
			name: "IPv4-mapped trusted peer", trusted: proxies,
			remote: "[::ffff:10.0.0.5]:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}},
			want:   "198.51.100.1",
		},
		{
			name: "IPv4-mapped untrusted peer is unmapped", trusted: proxies,
			remote: "[::ffff:203.0.113.7]:443",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}},
			want:   "203.0.113.7",
		},
		{
			name: "IPv4-mapped hops are unmapped and trusted as IPv4", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-For": {"::ffff:198.51.100.1, ::ffff:10.0.0.9"}},
			want:   "198.51.100.1",
		},
		{
			name: "trusted peer: XFP http downgrades", trusted: proxies,
			remote: "10.0.0.5:443", tls: true,
			header: http.Header{"X-Forwarded-Proto": {"http"}},
			want:   "10.0.0.5",
		},
		{
			name: "trusted peer: XFP case and space", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-Proto": {"  HTTPS "}},
			want:   "10.0.0.5", https: true,
		},
		{
			name: "trusted peer: XFP list is not https", trusted: proxies,
			remote: "10.0.0.5:443",
			header: http.Header{"X-Forwarded-Proto": {"https, http"}},
			want:   "10.0.0.5",
		},
		{
			name: "unparseable RemoteAddr", trusted: proxies,
			remote: "garbage",
			header: http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}},
			want:   "",
		},
		{
			name:   "RemoteAddr without port",
			remote: "203.0.113.7", want: "203.0.113.7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(tt.trusted).Resolve(request(tt.remote, tt.header, tt.tls))
			if got.String() != tt.want || got.HTTPS != tt.https {
				t.Fatalf("Resolve = {%q, https=%v}, want {%q, https=%v}", got.String(), got.HTTPS, tt.want, tt.https)
			}
		})
	}
}

func TestMiddlewareAndFrom(t *testing.T) {
	res := New(proxies)
	var got Info
	h := res.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = From(r) }))
	r := request("10.0.0.5:443", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, false)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.String() != "198.51.100.1" || !got.HTTPS {
		t.Fatalf("From inside the middleware = %+v", got)
	}

	// Without the middleware, From falls back to the TCP peer and never
	// reads the headers.
	got = From(request("10.0.0.5:443", http.Header{"X-Forwarded-For": {"198.51.100.1"}, "X-Forwarded-Proto": {"https"}}, false))
	if got.String() != "10.0.0.5" || got.HTTPS {
		t.Fatalf("From without the middleware = %+v", got)
	}
	if (Info{}).String() != "" {
		t.Fatalf("zero Info String = %q", Info{}.String())
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("10.0.0.5:443", "198.51.100.1", "https", false)
	f.Add("10.0.0.5:443", "1.1.1.1, 198.51.100.1, 10.0.0.9", "http", true)
	f.Add("[fd00:1::2]:443", "2001:db8::42, fd00:1::3", "HTTPS", false)
	f.Add("[::ffff:10.0.0.5]:443", "::ffff:198.51.100.1", "https", false)
	f.Add("203.0.113.7:1", "198.51.100.1", "https", false)
	f.Add("garbage", ",,,", "", false)
	f.Add("[fe80::1%eth0]:443", "fe80::2%eth1", "https", false)
	f.Add("10.0.0.5", "10.0.0.1,10.0.0.2,,", " https ", true)
	res := New(proxies)
	none := New(nil)
	f.Fuzz(func(t *testing.T, remote, xff, xfp string, isTLS bool) {
		h := http.Header{}
		h.Set("X-Forwarded-For", xff)
		h.Set("X-Forwarded-Proto", xfp)
		r := request(remote, h, isTLS)

		got := res.Resolve(r)
		if got.Addr.IsValid() {
			back, err := netip.ParseAddr(got.Addr.String())
			if err != nil || back != got.Addr {
				t.Fatalf("Addr %v does not round-trip: %v, %v", got.Addr, back, err)
			}
			if got.Addr.Is4In6() {
				t.Fatalf("Addr %v left IPv4-mapped", got.Addr)
			}
		}
		peer := peerAddr(remote)
		if !peer.IsValid() || !res.isTrusted(peer) {
			if got.Addr != peer || got.HTTPS != isTLS {
				t.Fatalf("untrusted peer %q: got %+v, want the peer %v https=%v", remote, got, peer, isTLS)
			}
		} else if got.Addr != peer {
			// A resolved address that is not the peer must be one of the
			// X-Forwarded-For hops (compared parsed: "::ffff:1.2.3.4" and
			// "1.2.3.4" are one address).
			found := false
			for _, hop := range strings.Split(xff, ",") {
				if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap() == got.Addr {
					found = true
				}
			}
			if !found {
				t.Fatalf("trusted peer %q, XFF %q: resolved %v appears nowhere", remote, xff, got.Addr)
			}
		}

		// With no trusted proxies the answer is always the TCP peer.
		if g := none.Resolve(r); g.Addr != peer || g.HTTPS != isTLS {
			t.Fatalf("no trusted proxies: got %+v, want the peer %v https=%v", g, peer, isTLS)
		}
	})
}
