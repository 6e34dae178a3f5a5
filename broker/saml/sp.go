package saml

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
)

// NameID sources (ServiceProvider.NameID).
const (
	NameIDPersistent = "persistent"  // pairwise, opaque, stable per (person, SP)
	NameIDTransient  = "transient"   // random per assertion
	NameIDEmail      = "email"       // the person's email address
	NameIDADLogin    = "ad_login"    // the directory login (sAMAccountName)
	NameIDNationalID = "national_id" // the idNat_PS (8 + RPPS, ...)
)

// NameID formats Garde issues (saml-core §8.3).
const (
	FormatPersistent  = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	FormatTransient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
	FormatEmail       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	FormatUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
)

// FormatOf returns the NameID format of a NameID source.
func FormatOf(source string) string {
	switch source {
	case NameIDPersistent:
		return FormatPersistent
	case NameIDTransient:
		return FormatTransient
	case NameIDEmail:
		return FormatEmail
	}
	return FormatUnspecified
}

// ServiceProvider is one registered SAML application and its settings.
type ServiceProvider struct {
	// EntityID must equal the entityID of the metadata.
	EntityID string
	// Name is shown to people ("Connexion à {Name}").
	Name string
	// MetadataFile or MetadataURL (exactly one) hold the SP's metadata.
	MetadataFile string
	MetadataURL  string
	// NameID is the NameID source (NameIDPersistent, ...).
	NameID string
	// Attributes are released in this order; nil means DefaultAttributes.
	Attributes []Attribute
	// SignResponse and SignAssertion choose what is signed (at least one).
	SignResponse  bool
	SignAssertion bool
	// SignatureAlgorithm is an XML DSig URI (RSA-SHA256 by default).
	SignatureAlgorithm string
	// AllowSHA1 accepts SHA-1 signatures from this SP and allows
	// SignatureAlgorithm rsa-sha1. Off unless an old SP needs it.
	AllowSHA1 bool
	// EncryptAssertion encrypts assertions to the SP's encryption
	// certificate (AES-256-GCM, RSA-OAEP key transport).
	EncryptAssertion bool
	// AssertionLifetime bounds NotOnOrAfter (default 5m).
	AssertionLifetime time.Duration
	// IdPInitiated allows unsolicited responses to this SP.
	IdPInitiated bool
	// RequireSignedRequests demands signed AuthnRequests even if the
	// metadata does not say AuthnRequestsSigned="true".
	RequireSignedRequests bool
}

// endpoint is an SP endpoint from its metadata.
type endpoint struct {
	Binding, Location, ResponseLocation string
	Index                               int
	IsDefault                           bool
}

// spMetadata is what Garde uses of an SP's metadata.
type spMetadata struct {
	acs        []endpoint // HTTP-POST only: the only binding for responses
	slo        []endpoint // HTTP-Redirect and HTTP-POST
	signing    []*x509.Certificate
	encryption *x509.Certificate
	// requestsSigned is AuthnRequestsSigned="true".
	requestsSigned bool
	validUntil     time.Time
}

// sp is a registered SP with its current metadata.
type sp struct {
	ServiceProvider
	md atomic.Pointer[spMetadata]
	// lastErr is the last loading error, for the page an SP's user sees
	// and for the log.
	lastErr atomic.Pointer[error]
}

func (s *sp) metadata(now time.Time) *spMetadata {
	md := s.md.Load()
	if md == nil || (!md.validUntil.IsZero() && now.After(md.validUntil)) {
		return nil
	}
	return md
}

func (s *sp) requireSigned(md *spMetadata) bool {
	return s.RequireSignedRequests || md.requestsSigned
}

// Limits on metadata: aggregates are big, but a single SP's metadata is
// tens of kilobytes.
const (
	maxMetadataBytes    = 1 << 20
	maxMetadataElements = 20000
)

// loadMetadata reads, checks and installs the SP's metadata.
func (s *sp) load(ctx context.Context, client *http.Client, now time.Time) error {
	raw, err := s.fetch(ctx, client)
	if err == nil {
		var md *spMetadata
		md, err = parseSPMetadata(raw, s.EntityID, now)
		if err == nil {
			if s.EncryptAssertion && md.encryption == nil {
				err = errors.New("encrypt_assertion is on but the metadata has no encryption certificate")
			} else {
				s.md.Store(md)
				s.lastErr.Store(nil)
				return nil
			}
		}
	}
	err = fmt.Errorf("service provider %s: metadata from %s: %w", s.EntityID, s.source(), err)
	s.lastErr.Store(&err)
	return err
}

func (s *sp) source() string {
	if s.MetadataURL != "" {
		return s.MetadataURL
	}
	return s.MetadataFile
}

func (s *sp) fetch(ctx context.Context, client *http.Client) ([]byte, error) {
	if s.MetadataFile != "" {
		f, err := os.Open(s.MetadataFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f)
	}
	u, err := url.Parse(s.MetadataURL)
	if err != nil {
		return nil, err
	}
	// Metadata carries the keys Garde trusts: only over https, except
	// for loopback (tests, a local demo SP).
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, errors.New("metadata URLs must use https")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("metadata exceeds %d bytes", maxMetadataBytes)
	}
	return b, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSPMetadata finds the EntityDescriptor of entityID (alone, or in an
// EntitiesDescriptor aggregate) and extracts its SPSSODescriptor.
func parseSPMetadata(raw []byte, entityID string, now time.Time) (*spMetadata, error) {
	doc, err := parseXMLLimits(raw, maxMetadataBytes, 64, maxMetadataElements)
	if err != nil {
		return nil, err
	}
	const nsMD = "urn:oasis:names:tc:SAML:2.0:metadata"
	var ed *etree.Element
	root := doc.Root()
	switch {
	case is(root, nsMD, "EntityDescriptor"):
		ed = root
	case is(root, nsMD, "EntitiesDescriptor"):
		for _, el := range root.FindElements(".//EntityDescriptor") {
			if is(el, nsMD, "EntityDescriptor") && el.SelectAttrValue("entityID", "") == entityID {
				if ed != nil {
					return nil, fmt.Errorf("entity %s appears twice in the aggregate", entityID)
				}
				ed = el
			}
		}
	}
	if ed == nil {
		return nil, fmt.Errorf("no EntityDescriptor for %s", entityID)
	}
	if got := ed.SelectAttrValue("entityID", ""); got != entityID {
		return nil, fmt.Errorf("the metadata is for entity %q, not %q", got, entityID)
	}
	d := etree.NewDocument()
	d.SetRoot(ed.Copy())
	b, err := d.WriteToBytes()
	if err != nil {
		return nil, err
	}
	var desc crewjam.EntityDescriptor
	if err := xml.Unmarshal(b, &desc); err != nil {
		return nil, fmt.Errorf("invalid EntityDescriptor: %w", err)
	}
	if !desc.ValidUntil.IsZero() && now.After(desc.ValidUntil) {
		return nil, fmt.Errorf("the metadata expired on %s (validUntil)", desc.ValidUntil.Format(time.RFC3339))
	}
	if len(desc.SPSSODescriptors) != 1 {
		return nil, fmt.Errorf("expected one SPSSODescriptor, found %d", len(desc.SPSSODescriptors))
	}
	spd := desc.SPSSODescriptors[0]
	md := &spMetadata{validUntil: desc.ValidUntil}
	if spd.ValidUntil != nil && !spd.ValidUntil.IsZero() {
		if now.After(*spd.ValidUntil) {
			return nil, errors.New("the SPSSODescriptor has expired (validUntil)")
		}
		if md.validUntil.IsZero() || spd.ValidUntil.Before(md.validUntil) {
			md.validUntil = *spd.ValidUntil
		}
	}
	md.requestsSigned = spd.AuthnRequestsSigned != nil && *spd.AuthnRequestsSigned
	for _, a := range spd.AssertionConsumerServices {
		if a.Binding != BindingPOST {
			continue // Garde answers with HTTP-POST only
		}
		if err := checkEndpointURL(a.Location); err != nil {
			return nil, fmt.Errorf("AssertionConsumerService %q: %w", a.Location, err)
		}
		md.acs = append(md.acs, endpoint{Binding: a.Binding, Location: a.Location, Index: a.Index, IsDefault: a.IsDefault != nil && *a.IsDefault})
	}
	if len(md.acs) == 0 {
		return nil, errors.New("no AssertionConsumerService with the HTTP-POST binding")
	}
	for _, e := range spd.SingleLogoutServices {
		if e.Binding != BindingRedirect && e.Binding != BindingPOST {
			continue
		}
		if err := checkEndpointURL(e.Location); err != nil {
			return nil, fmt.Errorf("SingleLogoutService %q: %w", e.Location, err)
		}
		md.slo = append(md.slo, endpoint{Binding: e.Binding, Location: e.Location, ResponseLocation: e.ResponseLocation})
	}
	for _, kd := range spd.KeyDescriptors {
		for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Data), ""))
			if err != nil {
				return nil, fmt.Errorf("a KeyDescriptor certificate is not base64: %w", err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("a KeyDescriptor certificate does not parse: %w", err)
			}
			if kd.Use == "" || kd.Use == "signing" {
				md.signing = append(md.signing, c)
			}
			if (kd.Use == "" || kd.Use == "encryption") && md.encryption == nil {
				md.encryption = c
			}
		}
	}
	return md, nil
}

// checkEndpointURL accepts https endpoints, and http on loopback only.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil
	}
	return errors.New("endpoints must use https")
}

// selectACS picks the assertion consumer service for a request: the
// registered one the request names, or the SP's default. A URL that is not
// registered is refused, never used.
func (md *spMetadata) selectACS(url string, index *int) (endpoint, error) {
	switch {
	case url != "":
		for _, a := range md.acs {
			if a.Location == url {
				return a, nil
			}
		}
		return endpoint{}, fmt.Errorf("AssertionConsumerServiceURL %q is not registered in the service provider's metadata", url)
	case index != nil:
		for _, a := range md.acs {
			if a.Index == *index {
				return a, nil
			}
		}
		return endpoint{}, fmt.Errorf("AssertionConsumerServiceIndex %d is not registered", *index)
	}
	for _, a := range md.acs {
		if a.IsDefault {
			return a, nil
		}
	}
	return md.acs[0], nil
}

// sloEndpoint returns the SP's logout endpoint, preferring HTTP-Redirect.
func (md *spMetadata) sloEndpoint() (endpoint, bool) {
	for _, b := range []string{BindingRedirect, BindingPOST} {
		for _, e := range md.slo {
			if e.Binding == b {
				return e, true
			}
		}
	}
	return endpoint{}, false
}

// hasACS reports whether loc is a registered ACS (re-checked at resume:
// the metadata may have been refreshed during the sign-in).
func (md *spMetadata) hasACS(loc string) bool {
	for _, a := range md.acs {
		if a.Location == loc {
			return true
		}
	}
	return false
}
