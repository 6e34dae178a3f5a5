package cps

import (
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecodeHeader feeds any header value, in each format, to the decoder:
// it must return certificates or an error wrapping ErrCardUntrusted, never
// panic.
func FuzzDecodeHeader(f *testing.F) {
	fx := newFixture(f)
	cc := fx.card(f, cardOpts{})
	p := pemCert(cc.cert)
	for _, s := range []string{p, strings.ReplaceAll(p, "\n", " "), url.QueryEscape(p), b64(cc.cert.Raw), "", "%", "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"} {
		for _, format := range []string{FormatPEM, FormatPEMURLEncoded, FormatBase64DER} {
			f.Add(format, s)
		}
	}
	f.Fuzz(func(t *testing.T, format, v string) {
		chain, err := decodeHeader(format, v)
		switch {
		case err != nil && !errors.Is(err, ErrCardUntrusted):
			t.Fatalf("error %v does not wrap ErrCardUntrusted", err)
		case err == nil && (len(chain) == 0 || len(chain) > maxHeaderCerts):
			t.Fatalf("%d certificates without error", len(chain))
		}
	})
}

// FuzzParseSubject feeds any subject and subjectAltName to the identity
// extraction: a person with a valid idNat, or ErrBadSubject.
func FuzzParseSubject(f *testing.F) {
	fx := newFixture(f)
	for _, o := range []cardOpts{{}, {title: "Médecin"}, {cn: "500000000029751/CPAT0001", ou: "300000000029751"}} {
		cc := fx.card(f, o)
		var san []byte
		for _, e := range cc.cert.Extensions {
			if e.Id.Equal(oidSAN) {
				san = e.Value
			}
		}
		f.Add(cc.cert.RawSubject, san)
	}
	f.Add([]byte{0x30, 0x00}, []byte{0x30, 0x00})
	f.Add([]byte{}, []byte{0x30, 0x03, 0xa0, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, subject, san []byte) {
		p, err := parseSubject(subject, []pkix.Extension{{Id: oidSAN, Value: san}})
		if err != nil {
			if !errors.Is(err, ErrBadSubject) {
				t.Fatalf("error %v does not wrap ErrBadSubject", err)
			}
			return
		}
		if checkIDNat(p.idNat) != nil {
			t.Fatalf("accepted idNat %q", p.idNat)
		}
	})
}
