package saml

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Binding names (saml-bindings-2.0).
const (
	BindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
)

// AuthnRequest is what Garde reads from a service provider's
// <samlp:AuthnRequest>, and nothing more.
type AuthnRequest struct {
	ID           string
	Version      string
	IssueInstant time.Time
	Destination  string
	Issuer       string
	// ACSURL and ACSIndex name an assertion consumer service; both are
	// checked against the registered metadata.
	ACSURL          string
	ACSIndex        *int
	ProtocolBinding string
	ForceAuthn      bool
	IsPassive       bool
	NameIDFormat    string
	// Comparison and ClassRefs are the RequestedAuthnContext.
	Comparison string
	ClassRefs  []string
}

// LogoutRequest is what Garde reads from a <samlp:LogoutRequest>.
type LogoutRequest struct {
	ID             string
	Version        string
	IssueInstant   time.Time
	NotOnOrAfter   time.Time
	Destination    string
	Issuer         string
	NameID         string
	SessionIndexes []string
}

// LogoutResponse is what Garde reads from a <samlp:LogoutResponse>.
type LogoutResponse struct {
	ID           string
	InResponseTo string
	IssueInstant time.Time
	Destination  string
	Issuer       string
	Status       string
}

// text returns the trimmed text of the only child ns:tag ("" if absent).
func text(el *etree.Element, ns, tag string) (string, error) {
	c, err := child(el, ns, tag)
	if err != nil || c == nil {
		return "", err
	}
	if len(c.ChildElements()) > 0 {
		return "", malformed("%s must hold text only", tag)
	}
	return strings.TrimSpace(c.Text()), nil
}

// attrTime parses a required xs:dateTime attribute.
func attrTime(el *etree.Element, name string, required bool) (time.Time, error) {
	v := el.SelectAttrValue(name, "")
	if v == "" {
		if required {
			return time.Time{}, malformed("%s has no %s", el.Tag, name)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, malformed("%s %q is not a date-time", name, v)
	}
	return t.UTC(), nil
}

func attrBool(el *etree.Element, name string) (bool, error) {
	switch v := el.SelectAttrValue(name, "false"); v {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	default:
		return false, malformed("%s=%q is not a boolean", name, v)
	}
}

// header reads what every SAML request shares: ID, Version, IssueInstant,
// Destination, Issuer.
func header(el *etree.Element) (id, version, dest, issuer string, at time.Time, err error) {
	id = el.SelectAttrValue("ID", "")
	if id == "" || len(id) > 256 {
		return "", "", "", "", at, malformed("missing or oversized ID")
	}
	version = el.SelectAttrValue("Version", "")
	if at, err = attrTime(el, "IssueInstant", true); err != nil {
		return
	}
	dest = el.SelectAttrValue("Destination", "")
	if issuer, err = text(el, nsAssertion, "Issuer"); err != nil {
		return
	}
	if issuer == "" {
		err = malformed("no Issuer")
	}
	return
}

// parseAuthnRequest reads an AuthnRequest from its (verified, when signed)
// element.
func parseAuthnRequest(el *etree.Element) (*AuthnRequest, error) {
	if !is(el, nsProtocol, "AuthnRequest") {
		return nil, malformed("expected samlp:AuthnRequest, got %s", el.FullTag())
	}
	r := &AuthnRequest{}
	var err error
	if r.ID, r.Version, r.Destination, r.Issuer, r.IssueInstant, err = header(el); err != nil {
		return nil, err
	}
	r.ACSURL = el.SelectAttrValue("AssertionConsumerServiceURL", "")
	if v := el.SelectAttrValue("AssertionConsumerServiceIndex", ""); v != "" {
		var i int
		if _, err := fmt.Sscanf(v, "%d", &i); err != nil || i < 0 || i > 65535 {
			return nil, malformed("AssertionConsumerServiceIndex %q is not a number", v)
		}
		r.ACSIndex = &i
	}
	if r.ACSURL != "" && r.ACSIndex != nil {
		// saml-core §3.4.1: mutually exclusive.
		return nil, malformed("AssertionConsumerServiceURL and AssertionConsumerServiceIndex are both given")
	}
	r.ProtocolBinding = el.SelectAttrValue("ProtocolBinding", "")
	if r.ForceAuthn, err = attrBool(el, "ForceAuthn"); err != nil {
		return nil, err
	}
	if r.IsPassive, err = attrBool(el, "IsPassive"); err != nil {
		return nil, err
	}
	if p, err := child(el, nsProtocol, "NameIDPolicy"); err != nil {
		return nil, err
	} else if p != nil {
		r.NameIDFormat = p.SelectAttrValue("Format", "")
	}
	rac, err := child(el, nsProtocol, "RequestedAuthnContext")
	if err != nil {
		return nil, err
	}
	if rac != nil {
		r.Comparison = rac.SelectAttrValue("Comparison", "exact")
		for _, c := range children(rac, nsAssertion, "AuthnContextClassRef") {
			r.ClassRefs = append(r.ClassRefs, strings.TrimSpace(c.Text()))
		}
		if len(children(rac, nsAssertion, "AuthnContextDeclRef")) > 0 && len(r.ClassRefs) == 0 {
			return nil, malformed("AuthnContextDeclRef is not supported; use AuthnContextClassRef")
		}
	}
	for _, tag := range []string{"Subject", "Conditions", "Scoping"} {
		if _, err := child(el, nsAssertion, tag); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// parseLogoutRequest reads a LogoutRequest from its element.
func parseLogoutRequest(el *etree.Element) (*LogoutRequest, error) {
	if !is(el, nsProtocol, "LogoutRequest") {
		return nil, malformed("expected samlp:LogoutRequest, got %s", el.FullTag())
	}
	r := &LogoutRequest{}
	var err error
	if r.ID, r.Version, r.Destination, r.Issuer, r.IssueInstant, err = header(el); err != nil {
		return nil, err
	}
	if r.NotOnOrAfter, err = attrTime(el, "NotOnOrAfter", false); err != nil {
		return nil, err
	}
	if r.NameID, err = text(el, nsAssertion, "NameID"); err != nil {
		return nil, err
	}
	if r.NameID == "" {
		// EncryptedID and BaseID are not supported: Garde never sends
		// them, so an SP has no reason to.
		return nil, malformed("LogoutRequest has no NameID")
	}
	for _, s := range children(el, nsProtocol, "SessionIndex") {
		r.SessionIndexes = append(r.SessionIndexes, strings.TrimSpace(s.Text()))
	}
	return r, nil
}

// parseLogoutResponse reads a LogoutResponse from its element.
func parseLogoutResponse(el *etree.Element) (*LogoutResponse, error) {
	if !is(el, nsProtocol, "LogoutResponse") {
		return nil, malformed("expected samlp:LogoutResponse, got %s", el.FullTag())
	}
	r := &LogoutResponse{}
	r.ID = el.SelectAttrValue("ID", "")
	r.InResponseTo = el.SelectAttrValue("InResponseTo", "")
	r.Destination = el.SelectAttrValue("Destination", "")
	var err error
	if r.IssueInstant, err = attrTime(el, "IssueInstant", true); err != nil {
		return nil, err
	}
	if r.Issuer, err = text(el, nsAssertion, "Issuer"); err != nil {
		return nil, err
	}
	st, err := child(el, nsProtocol, "Status")
	if err != nil || st == nil {
		return nil, malformed("LogoutResponse has no Status")
	}
	code, err := child(st, nsProtocol, "StatusCode")
	if err != nil || code == nil {
		return nil, malformed("LogoutResponse has no StatusCode")
	}
	r.Status = code.SelectAttrValue("Value", "")
	return r, nil
}
