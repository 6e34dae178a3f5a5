package saml

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/garde-sso/garde/broker/session"
)

// Attribute is one attribute released to an SP: its SAML name, and the
// Garde source of its values.
type Attribute struct {
	// Name is the SAML Name (an OID URN for the uri format).
	Name string
	// FriendlyName is informative (e.g. "givenName").
	FriendlyName string
	// NameFormat is a full URI; empty means uri when Name has a colon,
	// else basic.
	NameFormat string
	// Source is one of Sources.
	Source string
}

// AttributeAccessMode carries the TRE_R248 access mode (bris_de_glace,
// centre_15) of an emergency access; absent in normal access.
const AttributeAccessMode = "urn:garde:attribute:access_mode"

// Attribute name formats.
const (
	NameFormatURI   = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
	NameFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
)

// Sources are the attribute sources a mapping may name.
var Sources = []string{
	"subject", "username", "given_name", "family_name", "display_name", "email",
	"groups", "national_id", "national_id_type", "rpps", "professions",
	"profession_labels", "specialties", "structure", "assurance_level", "amr",
}

// DefaultAttributes are released when an SP's configuration lists none:
// the usual LDAP/eduPerson OIDs for names, email, login and groups, and
// Garde's own names for what has no standard OID (docs/saml.md).
func DefaultAttributes() []Attribute {
	return []Attribute{
		{Name: "urn:oid:2.5.4.42", FriendlyName: "givenName", Source: "given_name"},
		{Name: "urn:oid:2.5.4.4", FriendlyName: "sn", Source: "family_name"},
		{Name: "urn:oid:2.16.840.1.113730.3.1.241", FriendlyName: "displayName", Source: "display_name"},
		{Name: "urn:oid:0.9.2342.19200300.100.1.3", FriendlyName: "mail", Source: "email"},
		{Name: "urn:oid:0.9.2342.19200300.100.1.1", FriendlyName: "uid", Source: "username"},
		{Name: "urn:oid:1.3.6.1.4.1.5923.1.5.1.1", FriendlyName: "isMemberOf", Source: "groups"},
		{Name: "urn:garde:attribute:national_id", FriendlyName: "nationalId", Source: "national_id"},
		{Name: "urn:garde:attribute:national_id_type", FriendlyName: "nationalIdType", Source: "national_id_type"},
		{Name: "urn:garde:attribute:professions", FriendlyName: "professions", Source: "professions"},
		{Name: "urn:garde:attribute:assurance_level", FriendlyName: "assuranceLevel", Source: "assurance_level"},
	}
}

// values returns the values of a source for a session (none when the
// person has no such value: the attribute is then left out).
func values(source string, s *session.Session) []string {
	id := s.Identity
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	switch source {
	case "subject":
		return one(s.Subject)
	case "username":
		return one(id.Username)
	case "given_name":
		return one(id.GivenName)
	case "family_name":
		return one(id.FamilyName)
	case "display_name":
		return one(id.DisplayName)
	case "email":
		return one(id.Email)
	case "groups":
		return id.Groups
	case "national_id":
		return one(id.NationalID)
	case "national_id_type":
		return one(id.NationalIDType)
	case "rpps":
		if id.NationalIDType == "rpps" && strings.HasPrefix(id.NationalID, "8") {
			return one(id.NationalID[1:])
		}
	case "professions":
		var out []string
		for _, p := range id.Professions {
			if p.Code != "" {
				out = append(out, p.Code)
			}
		}
		return out
	case "profession_labels":
		var out []string
		for _, p := range id.Professions {
			if p.Label != "" {
				out = append(out, p.Label)
			}
		}
		return out
	case "specialties":
		var out []string
		for _, p := range id.Professions {
			out = append(out, p.Specialties...)
		}
		return out
	case "structure":
		return one(id.Structure)
	case "assurance_level":
		return one(s.Level.ACR())
	case "amr":
		return s.AMR
	}
	return nil
}

// nameID returns the NameID value of a person for an SP, or "" when the
// person has no value for the SP's source (no email, no national id).
func (p *IdP) nameID(sp *sp, s *session.Session) string {
	switch sp.NameID {
	case NameIDPersistent:
		// Pairwise: an HMAC of (SP, person) under a key derived from the
		// master key. Stable for the SP across sessions and replicas,
		// unlinkable between SPs, and it reveals nothing of the person.
		return "p-" + p.mac("pairwise", sp.EntityID, s.Subject)
	case NameIDTransient:
		b := make([]byte, 20)
		_, _ = rand.Read(b)
		return "t-" + base64.RawURLEncoding.EncodeToString(b)
	case NameIDEmail:
		return s.Identity.Email
	case NameIDADLogin:
		return s.Identity.Username
	case NameIDNationalID:
		return s.Identity.NationalID
	}
	return ""
}

// sessionIndex is the SessionIndex of a Garde session: opaque, so the SP
// never learns the session's sid, yet the same for every SP of a session.
func (p *IdP) sessionIndex(sid string) string {
	return "s-" + p.mac("session index", sid)
}

func (p *IdP) mac(purpose string, parts ...string) string {
	h := hmac.New(sha256.New, p.o.PairwiseKey)
	h.Write([]byte(purpose))
	for _, s := range parts {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
