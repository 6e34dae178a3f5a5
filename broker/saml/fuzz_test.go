package saml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"testing"

	"github.com/beevik/etree"
)

func deflateB64(s string) string {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

const seedAuthn = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2026-11-30T09:00:00Z" Destination="https://sso.test/saml/sso" AssertionConsumerServiceURL="https://sp.test/acs" ForceAuthn="true"><saml:Issuer>https://sp.test/md</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"/><samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>http://eidas.europa.eu/LoA/substantial</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>`

const seedLogout = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2026-11-30T09:00:00Z"><saml:Issuer>https://sp.test/md</saml:Issuer><saml:NameID>p-abc</saml:NameID><samlp:SessionIndex>s-1</samlp:SessionIndex></samlp:LogoutRequest>`

// decodeRequest is the inbound path of the HTTP-Redirect binding up to
// the parsed message: base64, bounded inflate, hardened XML, wrapping
// checks, then the reader.
func decodeRequest[T any](encoded string, read func(*etree.Element) (T, error)) (T, error) {
	var zero T
	b, err := decodeBase64(encoded)
	if err != nil {
		return zero, err
	}
	raw, err := inflate(b)
	if err != nil {
		return zero, err
	}
	doc, err := parseXML(raw)
	if err != nil {
		return zero, err
	}
	if err := checkWrapping(doc.Root()); err != nil {
		return zero, err
	}
	return read(doc.Root())
}

func fuzzSeeds(f *testing.F, good string) {
	f.Add(deflateB64(good))
	f.Add(deflateB64(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]>` + good))
	f.Add(deflateB64(good + good))
	f.Add(deflateB64(`<a><b><c/></b></a>`))
	f.Add(deflateB64(string(bytes.Repeat([]byte("<x>"), 100))))
	f.Add(base64.StdEncoding.EncodeToString([]byte("not deflate")))
	f.Add("%%%not base64")
	f.Add("")
}

// FuzzAuthnRequest: no input panics or is accepted without an ID and an
// Issuer.
func FuzzAuthnRequest(f *testing.F) {
	fuzzSeeds(f, seedAuthn)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeRequest(s, parseAuthnRequest)
		if err == nil && (r.ID == "" || r.Issuer == "") {
			t.Fatalf("accepted a request without ID or Issuer: %+v", r)
		}
	})
}

// FuzzLogoutRequest: likewise for LogoutRequests, which must name a
// NameID.
func FuzzLogoutRequest(f *testing.F) {
	fuzzSeeds(f, seedLogout)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeRequest(s, parseLogoutRequest)
		if err == nil && (r.ID == "" || r.Issuer == "" || r.NameID == "") {
			t.Fatalf("accepted a LogoutRequest without ID, Issuer or NameID: %+v", r)
		}
	})
}

// FuzzRedirectQuery: the hand-written query parser never panics, and a
// signed query always covers its message.
func FuzzRedirectQuery(f *testing.F) {
	f.Add("SAMLRequest=abc&RelayState=x&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA")
	f.Add("SAMLRequest=a&SAMLRequest=b")
	f.Add("Signature=AAAA")
	f.Add("SAMLRequest=%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseRedirectQuery(raw, "SAMLRequest")
		if err == nil && q.Signature != nil && !bytes.HasPrefix([]byte(q.signed), []byte("SAMLRequest=")) {
			t.Fatalf("signed content %q does not start with the message", q.signed)
		}
	})
}
