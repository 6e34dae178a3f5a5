package config

import "time"

// SAML makes Garde a SAML 2.0 identity provider. It is on when the saml
// block is present (docs/saml.md).
type SAML struct {
	// Enabled is true when the block is written (unless set false).
	Enabled bool `yaml:"enabled"`
	// EntityID default: issuer + "/saml/metadata".
	EntityID string `yaml:"entity_id"`
	// CertificateFile and KeyFile (PEM, RSA ≥ 2048 bits), both or neither.
	// Neither: a key and self-signed certificate are generated on first
	// start and kept sealed in the durable store, shared by replicas.
	CertificateFile string `yaml:"certificate_file"`
	KeyFile         string `yaml:"key_file"`
	// ClockSkew tolerated on request times. Default 2m, at most 10m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RequestMaxAge is how old an AuthnRequest may be. Default 5m, ≤ 1h.
	RequestMaxAge time.Duration `yaml:"request_max_age"`
	// MetadataRefresh is how often SP metadata is reloaded. Default 1h.
	MetadataRefresh time.Duration `yaml:"metadata_refresh"`
	// ServiceProviders are the SAML applications.
	ServiceProviders []SAMLServiceProvider `yaml:"service_providers"`
}

// SAMLServiceProvider is one SAML application.
type SAMLServiceProvider struct {
	EntityID string `yaml:"entity_id"`
	Name     string `yaml:"name"` // default EntityID
	// MetadataFile or MetadataURL: exactly one.
	MetadataFile string `yaml:"metadata_file"`
	MetadataURL  string `yaml:"metadata_url"`
	// NameID is persistent (pairwise, default), transient, email, ad_login
	// or national_id.
	NameID string `yaml:"name_id"`
	// Attributes released, in order; absent: the default set.
	Attributes []SAMLAttribute `yaml:"attributes"`
	// Sign is response, assertion or both (default both).
	Sign string `yaml:"sign"`
	// SignatureAlgorithm is rsa-sha256 (default), rsa-sha512 or rsa-sha1
	// (only with allow_sha1).
	SignatureAlgorithm string `yaml:"signature_algorithm"`
	// AllowSHA1 accepts SHA-1 signatures from this SP. Default false.
	AllowSHA1 bool `yaml:"allow_sha1"`
	// EncryptAssertion encrypts assertions to the SP's certificate.
	EncryptAssertion bool `yaml:"encrypt_assertion"`
	// AssertionLifetime default 5m, at most 1h.
	AssertionLifetime time.Duration `yaml:"assertion_lifetime"`
	// IdPInitiated allows unsolicited responses. Default false.
	IdPInitiated bool `yaml:"idp_initiated"`
	// RequireSignedRequests even if the metadata does not ask for it.
	RequireSignedRequests bool `yaml:"require_signed_requests"`
}

// SAMLAttribute maps a Garde source to a SAML attribute.
type SAMLAttribute struct {
	Name         string `yaml:"name"`
	FriendlyName string `yaml:"friendly_name"`
	// NameFormat is uri, basic or unspecified; default uri if the name
	// has a colon, else basic.
	NameFormat string `yaml:"name_format"`
	Source     string `yaml:"source"`
}
