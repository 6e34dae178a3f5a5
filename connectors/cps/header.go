package cps

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Limits on a forwarded certificate header: a card chain is a few
// kilobytes.
const (
	maxHeaderLen   = 64 << 10
	maxHeaderCerts = 8
)

const (
	pemBegin = "-----BEGIN CERTIFICATE-----"
	pemEnd   = "-----END CERTIFICATE-----"
)

// ClientChain returns the certificate chain the client presented, leaf
// first: from the TLS connection when Garde terminates TLS itself, else
// from the configured header, but only when the TCP peer (r.RemoteAddr,
// never X-Forwarded-For) is a trusted proxy. A header from anyone else
// could name any card (Keycloak #17059): it is refused with
// ErrUntrustedHeader and logged. ErrCardMissing means no certificate.
func (c *Connector) ClientChain(r *http.Request) ([]*x509.Certificate, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates, nil
	}
	if c.o.Header == "" {
		return nil, ErrCardMissing
	}
	values := r.Header.Values(c.o.Header)
	if len(values) == 0 {
		return nil, ErrCardMissing
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !c.trusted(peer.Addr()) {
		c.log.Warn("cps: client certificate header from an untrusted peer refused", "peer", r.RemoteAddr, "header", c.o.Header)
		return nil, fmt.Errorf("%w: peer %s", ErrUntrustedHeader, r.RemoteAddr)
	}
	if len(values) > 1 {
		return nil, fmt.Errorf("%w: %d %s headers; expected one", ErrCardUntrusted, len(values), c.o.Header)
	}
	if strings.TrimSpace(values[0]) == "" {
		// nginx and HAProxy send an empty value when the browser
		// presented no certificate.
		return nil, ErrCardMissing
	}
	return decodeHeader(c.o.HeaderFormat, values[0])
}

func (c *Connector) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.o.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// decodeHeader decodes a forwarded certificate in one of the header
// formats. Errors wrap ErrCardUntrusted: what cannot be read cannot be
// trusted.
func decodeHeader(format, v string) ([]*x509.Certificate, error) {
	if len(v) > maxHeaderLen {
		return nil, fmt.Errorf("%w: certificate header longer than %d bytes", ErrCardUntrusted, maxHeaderLen)
	}
	var ders [][]byte
	var err error
	switch format {
	case FormatPEMURLEncoded:
		// PathUnescape, not QueryUnescape: in the body a "+" is a base64
		// digit, not a space. nginx writes spaces as %20; encoders that
		// write them as "+" (form encoding) can only have done so in the
		// BEGIN/END lines, which are put back.
		var s string
		if s, err = url.PathUnescape(v); err == nil {
			s = strings.ReplaceAll(s, "BEGIN+CERTIFICATE", "BEGIN CERTIFICATE")
			s = strings.ReplaceAll(s, "END+CERTIFICATE", "END CERTIFICATE")
			ders, err = pemBlocks(s)
		}
	case FormatPEM:
		ders, err = pemBlocks(v)
	case FormatBase64DER:
		var der []byte
		if der, err = base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil {
			ders = [][]byte{der}
		}
	default:
		err = fmt.Errorf("unknown header format %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: malformed certificate header: %v", ErrCardUntrusted, err)
	}
	chain := make([]*x509.Certificate, 0, len(ders))
	for _, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: malformed certificate in header: %v", ErrCardUntrusted, err)
		}
		chain = append(chain, cert)
	}
	return chain, nil
}

// pemBlocks decodes the CERTIFICATE blocks of a PEM text whose line breaks
// may have become spaces or tabs on the way (encoding/pem needs real
// line breaks). Anything but certificate blocks and white space is an
// error.
func pemBlocks(s string) ([][]byte, error) {
	var out [][]byte
	for {
		s = strings.TrimSpace(s)
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, pemBegin) {
			return nil, errors.New("expected " + pemBegin)
		}
		body, rest, ok := strings.Cut(s[len(pemBegin):], pemEnd)
		if !ok {
			return nil, errors.New("missing " + pemEnd)
		}
		body = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, body)
		der, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("certificate body: %w", err)
		}
		if len(out) == maxHeaderCerts {
			return nil, fmt.Errorf("more than %d certificates", maxHeaderCerts)
		}
		out = append(out, der)
		s = rest
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate")
	}
	return out, nil
}
