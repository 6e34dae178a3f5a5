package cps

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Attribute and extension OIDs read from a card certificate.
var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN    = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidTitle = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidGN    = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSAN   = asn1.ObjectIdentifier{2, 5, 29, 17}
	// oidUPN is Microsoft's user principal name otherName.
	oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// Limits on what a subject may hold (far above real cards).
const (
	maxIDNatLen = 64
	maxNameLen  = 256
)

// person is what the subject and SAN of a card certificate say.
type person struct {
	idNat, given, family, title, ou string
}

func (p person) displayName() string {
	return strings.TrimSpace(p.given + " " + p.family)
}

// parseSubject reads the card holder from a certificate's raw subject and
// its extensions. The idNat is the CN of the multi-valued RDN that also
// holds SN and GN (SN=...+CN=899700075122+GN=...): with several CNs in a
// subject, Subject.CommonName would be whichever came last, so the raw
// RDN sequence is read instead and ambiguity is refused.
func parseSubject(rawSubject []byte, exts []pkix.Extension) (person, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(rawSubject, &rdns)
	if err != nil {
		return person{}, fmt.Errorf("%w: subject: %v", ErrBadSubject, err)
	}
	if len(rest) > 0 {
		return person{}, fmt.Errorf("%w: trailing data after the subject", ErrBadSubject)
	}
	cnRDN, err := findCNRDN(rdns)
	if err != nil {
		return person{}, err
	}
	var p person
	p.idNat, err = value(cnRDN, oidCN)
	if err != nil {
		return person{}, err
	}
	if err := checkIDNat(p.idNat); err != nil {
		return person{}, err
	}
	// GN and SN: from the CN's RDN, else (older cards) anywhere once.
	for _, f := range []struct {
		oid asn1.ObjectIdentifier
		dst *string
	}{{oidGN, &p.given}, {oidSN, &p.family}} {
		v, err := value(cnRDN, f.oid)
		if err == nil && v == "" {
			v, err = single(rdns, f.oid)
		}
		if err != nil {
			return person{}, err
		}
		*f.dst = v
	}
	if p.title, err = single(rdns, oidTitle); err != nil {
		return person{}, err
	}
	if p.ou, err = single(rdns, oidOU); err != nil {
		return person{}, err
	}
	if err := checkUPN(exts, p.idNat); err != nil {
		return person{}, err
	}
	return p, nil
}

// findCNRDN returns the RDN holding the idNat: the only multi-valued RDN
// with a CN, or else the only RDN with a CN.
func findCNRDN(rdns pkix.RDNSequence) (pkix.RelativeDistinguishedNameSET, error) {
	var multi, all []pkix.RelativeDistinguishedNameSET
	for _, rdn := range rdns {
		if count(rdn, oidCN) == 0 {
			continue
		}
		all = append(all, rdn)
		if len(rdn) > 1 {
			multi = append(multi, rdn)
		}
	}
	switch {
	case len(multi) == 1:
		return multi[0], nil
	case len(multi) > 1:
		return nil, fmt.Errorf("%w: %d multi-valued RDNs hold a CN", ErrBadSubject, len(multi))
	case len(all) == 1:
		return all[0], nil
	case len(all) == 0:
		return nil, fmt.Errorf("%w: no CN", ErrBadSubject)
	}
	return nil, fmt.Errorf("%w: %d CNs and none in a multi-valued RDN", ErrBadSubject, len(all))
}

func count(rdn pkix.RelativeDistinguishedNameSET, oid asn1.ObjectIdentifier) int {
	n := 0
	for _, a := range rdn {
		if a.Type.Equal(oid) {
			n++
		}
	}
	return n
}

// value returns the one value of oid in rdn ("" when absent).
func value(rdn pkix.RelativeDistinguishedNameSET, oid asn1.ObjectIdentifier) (string, error) {
	var out string
	var n int
	for _, a := range rdn {
		if !a.Type.Equal(oid) {
			continue
		}
		n++
		s, err := text(a)
		if err != nil {
			return "", err
		}
		out = s
	}
	if n > 1 {
		return "", fmt.Errorf("%w: attribute %s appears %d times in one RDN", ErrBadSubject, oid, n)
	}
	return out, nil
}

// single returns the value of oid in the whole subject, refusing repeats.
func single(rdns pkix.RDNSequence, oid asn1.ObjectIdentifier) (string, error) {
	var out string
	var n int
	for _, rdn := range rdns {
		for _, a := range rdn {
			if !a.Type.Equal(oid) {
				continue
			}
			n++
			s, err := text(a)
			if err != nil {
				return "", err
			}
			out = s
		}
	}
	if n > 1 {
		return "", fmt.Errorf("%w: attribute %s appears %d times", ErrBadSubject, oid, n)
	}
	return out, nil
}

// text returns an attribute's string value, refusing what would be unsafe
// to show or log (invalid UTF-8, control characters) or absurdly long.
func text(a pkix.AttributeTypeAndValue) (string, error) {
	s, ok := a.Value.(string)
	if !ok {
		return "", fmt.Errorf("%w: attribute %s is not a string", ErrBadSubject, a.Type)
	}
	switch {
	case len(s) > maxNameLen:
		return "", fmt.Errorf("%w: attribute %s is longer than %d bytes", ErrBadSubject, a.Type, maxNameLen)
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%w: attribute %s is not valid UTF-8", ErrBadSubject, a.Type)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", fmt.Errorf("%w: attribute %s contains control characters", ErrBadSubject, a.Type)
	}
	return strings.TrimSpace(s), nil
}

// checkIDNat accepts the idNat_PS forms seen on cards: 8+RPPS,
// 0+ADELI (letters allowed), 3/5+structure id "/" local id.
func checkIDNat(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty CN", ErrBadSubject)
	}
	if len(id) > maxIDNatLen {
		return fmt.Errorf("%w: CN longer than %d characters", ErrBadSubject, maxIDNatLen)
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '/' || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("%w: CN %q is not a national identifier", ErrBadSubject, id)
		}
	}
	return nil
}

// checkUPN cross-checks each UPN in the subject alternative names with the
// idNat. The card guide writes the UPN as "<type>.<id>@carte-cps.fr"
// (8.99700434378 for CN 899700434378); whether real cards put the dot is
// unverified, so both forms are accepted, and the domain is not checked.
// A UPN naming someone else is refused: the certificate is inconsistent.
func checkUPN(exts []pkix.Extension, idNat string) error {
	for _, ext := range exts {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		upns, err := parseUPNs(ext.Value)
		if err != nil {
			return fmt.Errorf("%w: subject alternative name: %v", ErrBadSubject, err)
		}
		for _, upn := range upns {
			local := upn
			if i := strings.LastIndexByte(upn, '@'); i >= 0 {
				local = upn[:i]
			}
			if local != idNat && strings.Replace(local, ".", "", 1) != idNat {
				return fmt.Errorf("%w: the UPN %q does not match CN %q", ErrBadSubject, upn, idNat)
			}
		}
	}
	return nil
}

// otherName is GeneralName's otherName [0] (RFC 5280 §4.2.1.6).
type otherName struct {
	TypeID asn1.ObjectIdentifier
	Value  asn1.RawValue `asn1:"tag:0,explicit"`
}

// parseUPNs returns the UPN otherNames of a subjectAltName extension.
func parseUPNs(der []byte) ([]string, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	switch {
	case err != nil:
		return nil, err
	case len(rest) > 0:
		return nil, errors.New("trailing data")
	case seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound:
		return nil, errors.New("not a sequence")
	}
	var upns []string
	for b := seq.Bytes; len(b) > 0; {
		var gn asn1.RawValue
		if b, err = asn1.Unmarshal(b, &gn); err != nil {
			return nil, err
		}
		if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 {
			continue
		}
		var on otherName
		if rest, err := asn1.UnmarshalWithParams(gn.FullBytes, &on, "tag:0"); err != nil || len(rest) > 0 {
			return nil, errors.New("malformed otherName")
		}
		if !on.TypeID.Equal(oidUPN) {
			continue
		}
		var upn string
		if rest, err := asn1.UnmarshalWithParams(on.Value.Bytes, &upn, "utf8"); err != nil || len(rest) > 0 {
			return nil, errors.New("UPN is not a UTF8String")
		}
		if !utf8.ValidString(upn) || strings.ContainsFunc(upn, unicode.IsControl) || len(upn) > maxNameLen {
			return nil, errors.New("UPN contains invalid characters")
		}
		upns = append(upns, upn)
	}
	return upns, nil
}
