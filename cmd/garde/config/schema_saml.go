package config

// SAML makes Garde a SAML 2.0 identity provider.
type SAML struct{}
