package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
)

// CPSConnector signs people in with the authentication certificate of
// their CPS card (IGC-Santé), over TLS client authentication: on Garde's
// own card listener (ListenAddress), or through a TLS-terminating proxy
// that forwards the certificate (Proxy).
type CPSConnector struct {
	// AnchorsFiles are PEM bundles of the trusted roots (the IGC-Santé
	// production chain, and the TEST chain only where test cards are
	// wanted). Required. The presented chain never adds anchors.
	AnchorsFiles []string `yaml:"anchors_files"`
	// IntermediatesFiles are PEM bundles of the card CAs (AC IGC-SANTE
	// ... PERSONNES).
	IntermediatesFiles []string `yaml:"intermediates_files"`
	// PolicyOIDs, when set, require the card certificate to assert one
	// of these certificate policies.
	PolicyOIDs []string `yaml:"policy_oids"`
	// Revocation is crl (default), crl_ocsp, ocsp or none.
	Revocation string `yaml:"revocation"`
	// AllowStaleCRL accepts a CRL past its nextUpdate. Default false.
	AllowStaleCRL bool `yaml:"allow_stale_crl"`
	// CRLFiles are local CRL files (DER or PEM), for servers that cannot
	// reach igc-sante.esante.gouv.fr; re-read at each refresh.
	CRLFiles []string `yaml:"crl_files"`
	// CRLURLs are distribution points fetched at start, before any card
	// names them (e.g. http://igc-sante.esante.gouv.fr/CRL/ACI-FO-PP.crl).
	CRLURLs []string `yaml:"crl_urls"`
	// RefreshEvery is the CRL/OCSP refresh period. Default 1h.
	RefreshEvery time.Duration `yaml:"refresh_every"`
	// Level is the assurance of a card sign-in: low, substantial or high.
	// Default high.
	Level string `yaml:"level"`
	// AMR are the RFC 8176 methods of a card sign-in. Default
	// [sc, pin, hwk, mfa].
	AMR []string `yaml:"amr"`
	// Proxy, when set, accepts the certificate forwarded by a
	// TLS-terminating proxy.
	Proxy *CPSProxy `yaml:"proxy"`
	// ListenAddress is host:port of Garde's own TLS listener that asks for
	// a client certificate. Its host name must be the issuer's (another
	// port), or the __Host- cookies of the sign-in would not reach it.
	ListenAddress string `yaml:"listen_address"`

	// Anchors and Intermediates are the parsed certificates of the files.
	Anchors       []*x509.Certificate `yaml:"-"`
	Intermediates []*x509.Certificate `yaml:"-"`
}

// CPSProxy is a TLS-terminating proxy forwarding the client certificate.
type CPSProxy struct {
	// Trusted are the proxies' addresses: the header from any other peer
	// is refused. Required.
	Trusted []netip.Prefix `yaml:"trusted"`
	// Header is the request header carrying the certificate, e.g.
	// X-SSL-Client-Cert. Required.
	Header string `yaml:"header"`
	// Format is pem_urlencoded (nginx $ssl_client_escaped_cert),
	// base64_der (HAProxy ssl_c_der,base64) or pem. Required.
	Format string `yaml:"format"`
}

// Defaults of the cps block.
const (
	DefaultCPSRevocation   = "crl"
	DefaultCPSLevel        = "high"
	DefaultCPSRefreshEvery = time.Hour
)

// DefaultCPSAMR is what a card and its PIN prove.
func DefaultCPSAMR() []string { return []string{"sc", "pin", "hwk", "mfa"} }

// rfc8176 lists the registered authentication method reference values.
var rfc8176 = []string{"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}

// cps validates connectors[i].cps (called from connectors()).
func (v *validator) cps(p string, c *CPSConnector) {
	// Defaults are applied here, beside the only code that reads them.
	if !v.set[p+".revocation"] {
		c.Revocation = DefaultCPSRevocation
	}
	if !v.set[p+".level"] {
		c.Level = DefaultCPSLevel
	}
	if !v.set[p+".refresh_every"] {
		c.RefreshEvery = DefaultCPSRefreshEvery
	}
	if !v.set[p+".amr"] {
		c.AMR = DefaultCPSAMR()
	}

	if len(c.AnchorsFiles) == 0 {
		v.errorf(p+".anchors_files", "is required; expected PEM bundles of the IGC-Santé roots, e.g. [/etc/garde/igc-sante.pem]")
	}
	c.Anchors = v.certFiles(p+".anchors_files", c.AnchorsFiles)
	c.Intermediates = v.certFiles(p+".intermediates_files", c.IntermediatesFiles)
	for i, s := range c.PolicyOIDs {
		if _, err := x509.ParseOID(s); err != nil || !strings.Contains(s, ".") {
			v.errorf(index(p+".policy_oids", i), "%q is not an OID; expected dotted numbers such as 1.2.250.1.213.1.7.1.1.1.5.1", s)
		}
	}
	v.duplicates(p+".policy_oids", c.PolicyOIDs, "OID")
	if v.enum(p+".revocation", c.Revocation, "revocation mode", "crl", "crl_ocsp", "ocsp", "none") && c.Revocation == "none" {
		v.warnf(p+".revocation", "none: revoked cards (lost, stolen) still sign in; use crl")
	}
	if c.AllowStaleCRL {
		v.warnf(p+".allow_stale_crl", "a card revoked after the last CRL Garde could fetch still signs in while the CRL source is unreachable")
	}
	if c.Revocation == "ocsp" && (len(c.CRLFiles) > 0 || len(c.CRLURLs) > 0) {
		v.keyErrorf(p+".revocation", "is ocsp but crl_files or crl_urls are set; expected crl or crl_ocsp to use CRLs")
	}
	for i, f := range c.CRLFiles {
		v.crlFile(index(p+".crl_files", i), f)
	}
	for i, u := range c.CRLURLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") || len(u) < 10 {
			v.errorf(index(p+".crl_urls", i), "%q is not an http(s) URL; expected e.g. http://igc-sante.esante.gouv.fr/CRL/ACI-FO-PP.crl", u)
		}
	}
	v.duplicates(p+".crl_urls", c.CRLURLs, "URL")
	switch {
	case c.RefreshEvery <= 0:
		v.duration(p+".refresh_every", c.RefreshEvery, 0)
	case c.RefreshEvery < time.Minute || c.RefreshEvery > 24*time.Hour:
		v.errorf(p+".refresh_every", "%s is out of range; expected 1m to 24h", fmtDuration(c.RefreshEvery))
	}
	v.enum(p+".level", c.Level, "level of assurance", "low", "substantial", "high")
	if len(c.AMR) == 0 {
		v.errorf(p+".amr", "is empty; expected RFC 8176 values such as [sc, pin, hwk, mfa]")
	}
	for i, a := range c.AMR {
		v.enum(index(p+".amr", i), a, "known amr value (RFC 8176)", rfc8176...)
	}
	v.duplicates(p+".amr", c.AMR, "method")

	if c.ListenAddress != "" {
		v.hostPort(p+".listen_address", c.ListenAddress, false)
		if v.cfg.Listen.TLS == nil {
			v.errorf(p+".listen_address", "needs Garde to terminate TLS itself; expected listen.tls (cert_file, key_file), or proxy: instead of listen_address behind a TLS proxy")
		}
		if c.ListenAddress == v.cfg.Listen.Address {
			v.errorf(p+".listen_address", "%q is also listen.address; expected a separate port for the card listener", c.ListenAddress)
		}
	}
	if c.Proxy != nil {
		v.cpsProxy(p+".proxy", c.Proxy)
	}
	if c.ListenAddress == "" && c.Proxy == nil {
		v.errorf(p, "neither listen_address nor proxy is set; expected listen_address (Garde's own card listener) or proxy (a TLS proxy forwarding the certificate)")
	}
}

func (v *validator) cpsProxy(p string, x *CPSProxy) {
	if len(x.Trusted) == 0 {
		v.errorf(p+".trusted", "is required; expected the addresses of the TLS proxies, e.g. [10.0.0.5/32]")
	}
	for i, pr := range x.Trusted {
		path := index(p+".trusted", i)
		switch {
		case pr.Bits() == 0:
			// Anyone could then send a header naming any card.
			v.errorf(path, "%s trusts every address, so anyone could forge a card certificate header; expected the proxies' addresses", pr)
		case pr != pr.Masked():
			v.errorf(path, "%s has host bits set; expected %s", pr, pr.Masked())
		}
	}
	switch {
	case x.Header == "":
		v.errorf(p+".header", "is required; expected the header the proxy sets, e.g. X-SSL-Client-Cert")
	case !validHeaderName(x.Header):
		v.errorf(p+".header", "%q is not a header name; expected e.g. X-SSL-Client-Cert", x.Header)
	}
	v.enum(p+".format", x.Format, "certificate header format", "pem_urlencoded", "base64_der", "pem")
}

// validHeaderName checks an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// certFiles checks that each file exists and holds PEM certificates, and
// returns them all.
func (v *validator) certFiles(p string, files []string) []*x509.Certificate {
	var out []*x509.Certificate
	for i, f := range files {
		path := index(p, i)
		if f == "" {
			v.errorf(path, "is empty; expected a PEM file")
			continue
		}
		before := len(v.errs)
		v.file(path, f)
		if v.stat == nil || len(v.errs) > before {
			continue
		}
		certs, err := readPEMCerts(f)
		if err != nil {
			v.errorf(path, "%q %v", f, err)
			continue
		}
		out = append(out, certs...)
	}
	return out
}

func readPEMCerts(name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %v", unwrapPathError(err))
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("has an invalid certificate (PEM block %d): %v", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("holds no PEM certificate; expected -----BEGIN CERTIFICATE----- blocks (convert the IGC-Santé .p7b with: openssl pkcs7 -inform DER -in chain.p7b -print_certs -out chain.pem)")
	}
	return certs, nil
}

// crlFile checks a CRL file exists and parses.
func (v *validator) crlFile(path, name string) {
	if name == "" {
		v.errorf(path, "is empty; expected a CRL file")
		return
	}
	before := len(v.errs)
	v.file(path, name)
	if v.stat == nil || len(v.errs) > before {
		return
	}
	data, err := os.ReadFile(name)
	if err != nil {
		v.errorf(path, "file %q cannot be read: %v", name, unwrapPathError(err))
		return
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	if _, err := x509.ParseRevocationList(data); err != nil {
		v.errorf(path, "%q is not a CRL (%v); expected a DER or PEM X.509 CRL such as ACI-FO-PP.crl", name, err)
	}
}
