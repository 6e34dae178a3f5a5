package cps

import (
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const certHeader = "X-SSL-Client-Cert"

func proxyConnector(t *testing.T, f *fixture, format string, trusted ...string) *Connector {
	return f.connector(t, func(o *Options) {
		o.Header, o.HeaderFormat, o.TrustedProxies = certHeader, format, proxies(trusted...)
	})
}

// encodings of a card (and its CA) as each proxy writes them.
func encodeHeader(format string, chain ...*x509.Certificate) string {
	var pemText string
	for _, c := range chain {
		pemText += pemCert(c)
	}
	switch format {
	case FormatPEMURLEncoded: // nginx $ssl_client_escaped_cert: %20 for spaces
		return strings.ReplaceAll(url.QueryEscape(pemText), "+", "%20")
	case "form": // pem_urlencoded written with "+" for spaces
		return url.QueryEscape(pemText)
	case FormatBase64DER: // HAProxy ssl_c_der,base64: the leaf only
		return b64(chain[0].Raw)
	}
	return strings.ReplaceAll(strings.TrimSpace(pemText), "\n", " ") // line breaks folded
}

func TestHeaderFromTrustedProxy(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	for _, format := range []string{FormatPEMURLEncoded, FormatBase64DER, FormatPEM} {
		t.Run(format, func(t *testing.T) {
			c := proxyConnector(t, f, format, "10.1.2.0/24", "2001:db8::/32")
			for _, peer := range []string{"10.1.2.3:40000", "[2001:db8::5]:443", "[::ffff:10.1.2.3]:1"} {
				r := httptest.NewRequest(http.MethodGet, "/login/card", nil)
				r.RemoteAddr = peer
				r.Header.Set(certHeader, encodeHeader(format, cc.cert, f.inter.cert))
				if format == FormatPEMURLEncoded && peer[0] == '[' {
					r.Header.Set(certHeader, encodeHeader("form", cc.cert, f.inter.cert))
				}
				chain, err := c.ClientChain(r)
				if err != nil {
					t.Fatalf("%s: %v", peer, err)
				}
				id, err := c.Authenticate(t.Context(), chain)
				if err != nil || id.NationalID != "899700075122" {
					t.Fatalf("%s: %+v, %v", peer, id, err)
				}
			}
		})
	}
}

func TestHeaderFromUntrustedPeerRefused(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	c := proxyConnector(t, f, FormatPEM, "10.1.2.0/24")
	for _, peer := range []string{"10.1.3.1:5000", "192.0.2.1:443", "[2001:db8::1]:443", "garbage", ""} {
		r := httptest.NewRequest(http.MethodGet, "/login/card", nil)
		r.RemoteAddr = peer
		// X-Forwarded-For naming a trusted proxy changes nothing.
		r.Header.Set("X-Forwarded-For", "10.1.2.3")
		r.Header.Set(certHeader, encodeHeader(FormatPEM, cc.cert))
		_, err := c.ClientChain(r)
		if !errors.Is(err, ErrUntrustedHeader) || Reason(err) != "card_untrusted_header" {
			t.Errorf("%q: err = %v", peer, err)
		}
	}
	// Without a header configured, a header is ignored: no card.
	plain := f.connector(t)
	r := httptest.NewRequest(http.MethodGet, "/login/card", nil)
	r.Header.Set(certHeader, encodeHeader(FormatPEM, cc.cert))
	if _, err := plain.ClientChain(r); !errors.Is(err, ErrCardMissing) {
		t.Errorf("no proxy configured: %v", err)
	}
}

// Through a real HTTP server: the TCP peer decides, whatever it claims.
func TestHeaderOverRealConnection(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	for _, tc := range []struct {
		trusted, want string
	}{{"127.0.0.0/8", "ok 899700075122"}, {"10.0.0.0/8", "card_untrusted_header"}} {
		srv := httptest.NewServer(cardHandler(proxyConnector(t, f, FormatBase64DER, tc.trusted)))
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set(certHeader, encodeHeader(FormatBase64DER, cc.cert))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		srv.Close()
		if !strings.HasPrefix(body, tc.want) {
			t.Errorf("trusted %s: got %q, want %q", tc.trusted, body, tc.want)
		}
	}
}

func TestMalformedHeaders(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	good := pemCert(cc.cert)
	cases := []struct {
		format, value string
		err           error
	}{
		{FormatPEM, "", ErrCardMissing},
		{FormatPEM, "   ", ErrCardMissing},
		{FormatPEM, "not a certificate", ErrCardUntrusted},
		{FormatPEM, "-----BEGIN CERTIFICATE----- AAAA", ErrCardUntrusted},
		{FormatPEM, "-----BEGIN CERTIFICATE----- !!!! -----END CERTIFICATE-----", ErrCardUntrusted},
		{FormatPEM, "-----BEGIN CERTIFICATE----- AAAA -----END CERTIFICATE-----", ErrCardUntrusted},
		{FormatPEM, strings.ReplaceAll(good, "\n", " ") + " trailing", ErrCardUntrusted},
		{FormatPEM, strings.Repeat(strings.ReplaceAll(good, "\n", " "), 9), ErrCardUntrusted},
		{FormatPEM, strings.Repeat("A", maxHeaderLen+1), ErrCardUntrusted},
		{FormatPEMURLEncoded, "%zz", ErrCardUntrusted},
		{FormatPEMURLEncoded, url.QueryEscape(good)[:200], ErrCardUntrusted},
		{FormatBase64DER, "@@@", ErrCardUntrusted},
		{FormatBase64DER, b64([]byte("not DER")), ErrCardUntrusted},
		{FormatBase64DER, b64(cc.cert.Raw[:100]), ErrCardUntrusted},
	}
	for _, tc := range cases {
		c := proxyConnector(t, f, tc.format, "10.0.0.0/8")
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.1:1234"
		r.Header.Set(certHeader, tc.value)
		if _, err := c.ClientChain(r); !errors.Is(err, tc.err) {
			t.Errorf("%s %.40q: err = %v, want %v", tc.format, tc.value, err, tc.err)
		}
	}
	// Two headers are ambiguous.
	c := proxyConnector(t, f, FormatPEM, "10.0.0.0/8")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Add(certHeader, encodeHeader(FormatPEM, cc.cert))
	r.Header.Add(certHeader, encodeHeader(FormatPEM, cc.cert))
	if _, err := c.ClientChain(r); !errors.Is(err, ErrCardUntrusted) {
		t.Errorf("two headers: %v", err)
	}
}

// A real TLS connection takes precedence over any header.
func TestTLSCertificateBeatsHeader(t *testing.T) {
	f := newFixture(t)
	cc, other := f.card(t, cardOpts{}), f.card(t, cardOpts{cn: "899700099999", upn: "-"})
	c := proxyConnector(t, f, FormatPEM, "10.0.0.0/8")
	r := httptest.NewRequest(http.MethodGet, "https://sso.example.fr/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.TLS.PeerCertificates = []*x509.Certificate{cc.cert}
	r.Header.Set(certHeader, encodeHeader(FormatPEM, other.cert))
	chain, err := c.ClientChain(r)
	if err != nil || chain[0] != cc.cert {
		t.Fatalf("chain %v, err %v", chain, err)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
