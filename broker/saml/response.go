package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/web"
)

// newID returns a SAML ID (an NCName: it must not start with a digit).
func newID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// signer returns a goxmldsig signing context for alg with the IdP's key.
func (p *IdP) signer(alg string) (*dsig.SigningContext, error) {
	ks := dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{p.o.Certificate.Raw}, PrivateKey: p.o.Key, Leaf: p.o.Certificate,
	})
	ctx := dsig.NewDefaultSigningContext(ks)
	// Exclusive c14n without prefix list: what every SP verifies.
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(alg); err != nil {
		return nil, err
	}
	return ctx, nil
}

// sign signs el (enveloped) and returns the ds:Signature element, which
// the caller puts in its schema position (after Issuer).
func (p *IdP) sign(el *etree.Element, alg string) (*etree.Element, error) {
	ctx, err := p.signer(alg)
	if err != nil {
		return nil, err
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	kids := signed.ChildElements()
	return kids[len(kids)-1], nil
}

func (p *IdP) issuer() *crewjam.Issuer {
	return &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.entityID}
}

// grant is what an assertion says.
type grant struct {
	sp           *sp
	acs          string
	inResponseTo string
	session      *session.Session
	nameID       string
	class        string
	clientIP     string
}

// assertion builds the assertion of g, signed if the SP wants it.
func (p *IdP) assertion(g grant) (*etree.Element, error) {
	now := p.now().UTC()
	sp := g.sp
	notOnOrAfter := now.Add(sp.AssertionLifetime)
	sessionEnd := g.session.ExpiresAt.UTC()
	a := &crewjam.Assertion{
		ID:           newID(),
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       *p.issuer(),
		Subject: &crewjam.Subject{
			NameID: &crewjam.NameID{Format: FormatOf(sp.NameID), NameQualifier: p.entityID, SPNameQualifier: sp.EntityID, Value: g.nameID},
			SubjectConfirmations: []crewjam.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &crewjam.SubjectConfirmationData{
					InResponseTo: g.inResponseTo, NotOnOrAfter: notOnOrAfter, Recipient: g.acs,
				},
			}},
		},
		Conditions: &crewjam.Conditions{
			// NotBefore a little in the past: an SP whose clock is behind
			// would otherwise refuse a fresh assertion.
			NotBefore: now.Add(-p.o.ClockSkew), NotOnOrAfter: notOnOrAfter,
			AudienceRestrictions: []crewjam.AudienceRestriction{{Audience: crewjam.Audience{Value: sp.EntityID}}},
		},
		AuthnStatements: []crewjam.AuthnStatement{{
			AuthnInstant:        g.session.AuthTime.UTC(),
			SessionIndex:        p.sessionIndex(g.session.ID),
			SessionNotOnOrAfter: &sessionEnd,
			AuthnContext:        crewjam.AuthnContext{AuthnContextClassRef: &crewjam.AuthnContextClassRef{Value: g.class}},
		}},
	}
	if sp.NameID == NameIDPersistent || sp.NameID == NameIDTransient {
		// Qualifiers only make sense for opaque identifiers.
	} else {
		a.Subject.NameID.NameQualifier, a.Subject.NameID.SPNameQualifier = "", ""
	}
	var attrs []crewjam.Attribute
	for _, m := range sp.Attributes {
		vals := values(m.Source, g.session)
		if len(vals) == 0 {
			continue
		}
		format := m.NameFormat
		if format == "" {
			format = NameFormatBasic
			if strings.Contains(m.Name, ":") {
				format = NameFormatURI
			}
		}
		attr := crewjam.Attribute{Name: m.Name, FriendlyName: m.FriendlyName, NameFormat: format}
		for _, v := range vals {
			attr.Values = append(attr.Values, crewjam.AttributeValue{Type: "xs:string", Value: v})
		}
		attrs = append(attrs, attr)
	}
	// An emergency access (bris de glace) is always said, whatever the
	// mapping: the application must know it was opened in an emergency.
	if em, ok := g.session.EmergencyFor(sp.EntityID, now); ok {
		attrs = append(attrs, crewjam.Attribute{
			Name: AttributeAccessMode, FriendlyName: "accessMode", NameFormat: NameFormatURI,
			Values: []crewjam.AttributeValue{{Type: "xs:string", Value: em.Reason}},
		})
	}
	if len(attrs) > 0 {
		a.AttributeStatements = []crewjam.AttributeStatement{{Attributes: attrs}}
	}
	el := a.Element()
	if sp.SignAssertion {
		sig, err := p.sign(el, sp.SignatureAlgorithm)
		if err != nil {
			return nil, err
		}
		a.Signature = sig
		el = a.Element()
	}
	return el, nil
}

// encrypt wraps a (signed) assertion in an EncryptedAssertion for the SP:
// AES-256-GCM content encryption (authenticated, unlike CBC), the key
// transported with RSA-OAEP to the SP's encryption certificate.
func (p *IdP) encrypt(md *spMetadata, assertion *etree.Element) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.SetRoot(assertion)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES256GCM
	data, err := enc.Encrypt(md.encryption, buf, nil)
	if err != nil {
		return nil, fmt.Errorf("encrypt assertion: %w", err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	return ea, nil
}

// response builds a Response for an SP: with the assertion element (plain
// or encrypted) on success, or a status only. statusCode and subStatus are
// SAML status URIs.
func (p *IdP) response(sp *sp, acs, inResponseTo, statusCode, subStatus string, assertion *etree.Element) ([]byte, error) {
	r := &crewjam.Response{
		ID: newID(), InResponseTo: inResponseTo, Version: "2.0", IssueInstant: p.now().UTC(),
		Destination: acs, Issuer: p.issuer(),
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: statusCode}},
	}
	if subStatus != "" {
		r.Status.StatusCode.StatusCode = &crewjam.StatusCode{Value: subStatus}
	}
	el := r.Element()
	if assertion != nil {
		el.AddChild(assertion)
	}
	// Error responses are signed too: an SP must be able to trust a
	// "denied" as much as an assertion.
	if sp.SignResponse || assertion == nil {
		sig, err := p.sign(el, sp.SignatureAlgorithm)
		if err != nil {
			return nil, err
		}
		r.Signature = sig
		el = r.Element()
		if assertion != nil {
			el.AddChild(assertion)
		}
	}
	return serialize(el)
}

func serialize(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	return doc.WriteToBytes()
}

// postForm sends a SAML message through the browser with the HTTP-POST
// binding: a page whose form posts it, submitted by a small script (or by
// the person, without JavaScript).
func (p *IdP) postForm(w http.ResponseWriter, r *http.Request, action, field string, msg []byte, relayState, app string) {
	p.o.Pages.Render(w, r, http.StatusOK, web.PageSAMLPost, web.SAMLPostPage{
		Action: action, Field: field, Value: base64.StdEncoding.EncodeToString(msg),
		RelayState: relayState, App: app,
	})
}

// redirectURL encodes a message with the HTTP-Redirect binding, signed
// over the query string as saml-bindings §3.4.4.1 defines.
func (p *IdP) redirectURL(dest, param string, msg []byte, relayState, alg string) (string, error) {
	if alg != algRSASHA512 {
		// Outbound redirect signatures are RSA-SHA256 (or SHA-512 if the
		// SP is configured so), never SHA-1.
		alg = algRSASHA256
	}
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	if _, err := fw.Write(msg); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(alg)
	var h crypto.Hash
	var digest []byte
	switch alg {
	case algRSASHA512:
		s := sha512.Sum512([]byte(q))
		h, digest = crypto.SHA512, s[:]
	default:
		s := sha256.Sum256([]byte(q))
		h, digest = crypto.SHA256, s[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.o.Key, h, digest)
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	return dest + sep + q, nil
}

// logoutRequest builds a signed LogoutRequest to an SP.
func (p *IdP) logoutRequest(sp *sp, dest, nameID, format, sessionIndex string) (string, []byte, error) {
	now := p.now().UTC()
	exp := now.Add(p.o.RequestMaxAge)
	lr := &crewjam.LogoutRequest{
		ID: newID(), Version: "2.0", IssueInstant: now, NotOnOrAfter: &exp, Destination: dest,
		Issuer: p.issuer(),
		NameID: &crewjam.NameID{Format: format, Value: nameID},
	}
	if format == FormatPersistent || format == FormatTransient {
		lr.NameID.NameQualifier, lr.NameID.SPNameQualifier = p.entityID, sp.EntityID
	}
	if sessionIndex != "" {
		lr.SessionIndex = &crewjam.SessionIndex{Value: sessionIndex}
	}
	el := lr.Element()
	sig, err := p.sign(el, sp.SignatureAlgorithm)
	if err != nil {
		return "", nil, err
	}
	lr.Signature = sig
	b, err := serialize(lr.Element())
	return lr.ID, b, err
}

// logoutResponse builds a signed LogoutResponse to an SP.
func (p *IdP) logoutResponse(sp *sp, dest, inResponseTo, status, subStatus string) ([]byte, error) {
	lr := &crewjam.LogoutResponse{
		ID: newID(), InResponseTo: inResponseTo, Version: "2.0", IssueInstant: p.now().UTC(),
		Destination: dest, Issuer: p.issuer(),
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: status}},
	}
	if subStatus != "" {
		lr.Status.StatusCode.StatusCode = &crewjam.StatusCode{Value: subStatus}
	}
	el := lr.Element()
	sig, err := p.sign(el, sp.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	lr.Signature = sig
	return serialize(lr.Element())
}

// sendToSP sends a message to an SP endpoint with its binding.
func (p *IdP) sendToSP(w http.ResponseWriter, r *http.Request, sp *sp, e endpoint, param string, msg []byte, relayState string, response bool) {
	loc := e.Location
	if response && e.ResponseLocation != "" {
		loc = e.ResponseLocation
	}
	if e.Binding == BindingRedirect {
		u, err := p.redirectURL(loc, param, msg, relayState, sp.SignatureAlgorithm)
		if err != nil {
			p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
			return
		}
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	p.postForm(w, r, loc, param, msg, relayState, sp.Name)
}
