package config

import (
	"net/url"
	"time"
)

// SAML defaults, applied here because they depend on the block being
// present.
const (
	DefaultSAMLClockSkew         = 2 * time.Minute
	DefaultSAMLRequestMaxAge     = 5 * time.Minute
	DefaultSAMLMetadataRefresh   = time.Hour
	DefaultSAMLAssertionLifetime = 5 * time.Minute
)

// samlSources are the attribute sources (broker/saml.Sources).
var samlSources = []string{
	"subject", "username", "given_name", "family_name", "display_name", "email",
	"groups", "national_id", "national_id_type", "rpps", "professions",
	"profession_labels", "specialties", "structure", "assurance_level", "amr",
}

func (v *validator) saml() {
	const p = "saml"
	s := &v.cfg.SAML
	if !v.set[p] {
		return
	}
	if !v.set[p+".enabled"] {
		s.Enabled = true
	}
	def := func(d *time.Duration, key string, val time.Duration) {
		if !v.set[p+"."+key] {
			*d = val
		}
	}
	def(&s.ClockSkew, "clock_skew", DefaultSAMLClockSkew)
	def(&s.RequestMaxAge, "request_max_age", DefaultSAMLRequestMaxAge)
	def(&s.MetadataRefresh, "metadata_refresh", DefaultSAMLMetadataRefresh)
	v.duration(p+".clock_skew", s.ClockSkew, 10*time.Minute)
	v.duration(p+".request_max_age", s.RequestMaxAge, time.Hour)
	if s.MetadataRefresh < time.Minute {
		v.errorf(p+".metadata_refresh", "%s is too short; expected at least 1m", fmtDuration(s.MetadataRefresh))
	}
	if s.EntityID == "" {
		s.EntityID = v.cfg.Issuer + "/saml/metadata"
	} else if u, err := url.Parse(s.EntityID); err != nil || !u.IsAbs() {
		v.errorf(p+".entity_id", "%q is not an absolute URI; expected e.g. https://sso.hopital.fr/saml/metadata", s.EntityID)
	}
	switch {
	case s.CertificateFile != "" && s.KeyFile == "":
		v.errorf(p+".key_file", "is missing; expected both certificate_file and key_file, or neither (a key is then generated and kept in the durable store)")
	case s.CertificateFile == "" && s.KeyFile != "":
		v.errorf(p+".certificate_file", "is missing; expected both certificate_file and key_file, or neither")
	}
	v.file(p+".certificate_file", s.CertificateFile)
	v.file(p+".key_file", s.KeyFile)
	ids := map[string]int{}
	for i := range s.ServiceProviders {
		v.samlSP(index(p+".service_providers", i), &s.ServiceProviders[i], ids, i)
	}
}

func (v *validator) samlSP(p string, sp *SAMLServiceProvider, ids map[string]int, i int) {
	switch {
	case sp.EntityID == "":
		v.errorf(p+".entity_id", "is required; expected the SP's entityID, exactly as in its metadata")
	default:
		if j, dup := ids[sp.EntityID]; dup {
			v.errorf(p+".entity_id", "%q is already the entity_id of saml.service_providers[%d]; expected unique entity ids", sp.EntityID, j)
		} else {
			ids[sp.EntityID] = i
		}
	}
	if !v.set[p+".name"] {
		sp.Name = sp.EntityID
	}
	switch {
	case sp.MetadataFile != "" && sp.MetadataURL != "":
		v.keyErrorf(p+".metadata_url", "metadata_file and metadata_url are both set; expected exactly one of them")
	case sp.MetadataFile == "" && sp.MetadataURL == "":
		v.errorf(p+".metadata_file", "is required; expected metadata_file or metadata_url with the SP's SAML metadata")
	case sp.MetadataFile != "":
		v.file(p+".metadata_file", sp.MetadataFile)
	default:
		u, err := url.Parse(sp.MetadataURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			// The metadata carries the keys Garde trusts for this SP.
			v.errorf(p+".metadata_url", "%q is not allowed: metadata must come over https (http only for localhost); expected e.g. https://app.hopital.fr/saml/metadata", sp.MetadataURL)
		}
	}
	if !v.set[p+".name_id"] {
		sp.NameID = "persistent"
	}
	v.enum(p+".name_id", sp.NameID, "NameID source", "persistent", "transient", "email", "ad_login", "national_id")
	if !v.set[p+".sign"] {
		sp.Sign = "both"
	}
	v.enum(p+".sign", sp.Sign, "signing choice", "response", "assertion", "both")
	if !v.set[p+".signature_algorithm"] {
		sp.SignatureAlgorithm = "rsa-sha256"
	}
	if v.enum(p+".signature_algorithm", sp.SignatureAlgorithm, "signature algorithm", "rsa-sha256", "rsa-sha512", "rsa-sha1") &&
		sp.SignatureAlgorithm == "rsa-sha1" && !sp.AllowSHA1 {
		// SHA-1 collisions are practical; only an SP that cannot do
		// better may get it, and the operator must say so.
		v.errorf(p+".signature_algorithm", "rsa-sha1 is refused: SHA-1 is broken; expected rsa-sha256, or allow_sha1: true for an SP that supports nothing else")
	}
	if !v.set[p+".assertion_lifetime"] {
		sp.AssertionLifetime = DefaultSAMLAssertionLifetime
	}
	v.duration(p+".assertion_lifetime", sp.AssertionLifetime, time.Hour)
	names := map[string]int{}
	for j := range sp.Attributes {
		a := &sp.Attributes[j]
		ap := index(p+".attributes", j)
		if a.Name == "" {
			v.errorf(ap+".name", "is required; expected the attribute name the SP expects, e.g. urn:oid:2.5.4.42")
		} else if k, dup := names[a.Name]; dup {
			v.errorf(ap+".name", "%q is already the name of %s; expected each attribute once", a.Name, index(p+".attributes", k))
		} else {
			names[a.Name] = j
		}
		v.enum(ap+".source", a.Source, "source of attribute values", samlSources...)
		if a.NameFormat != "" {
			v.enum(ap+".name_format", a.NameFormat, "attribute name format", "uri", "basic", "unspecified")
		}
	}
}
