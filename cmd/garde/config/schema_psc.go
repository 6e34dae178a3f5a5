package config

import (
	"net/url"
	"slices"
	"strings"
)

// PSCConnector is Pro Santé Connect, the national OpenID Connect provider
// for health professionals.
type PSCConnector struct {
	// Environment is production, bas (ANS's test platform) or custom.
	// production and bas set the issuer and discovery URL.
	Environment string `yaml:"environment"`
	// Issuer is required for custom, and must be the preset (or absent)
	// otherwise.
	Issuer string `yaml:"issuer"`
	// DiscoveryURL defaults to {issuer}/.well-known/wallet-openid-configuration.
	DiscoveryURL string `yaml:"discovery_url"`
	// ClientID is the id ANS registered for Garde.
	ClientID string `yaml:"client_id"`
	// ClientSecret is required for client_secret_basic and _post.
	ClientSecret Secret `yaml:"client_secret"`
	// AuthMethod is client_secret_basic, client_secret_post or
	// tls_client_auth. Empty: client_secret_basic.
	AuthMethod string `yaml:"auth_method"`
	// ClientCertificateFile and ClientKeyFile are the hospital's IGC-Santé
	// organisation certificate and key (PEM), required for
	// tls_client_auth and presented on every connection to PSC when set.
	ClientCertificateFile string `yaml:"client_certificate_file"`
	ClientKeyFile         string `yaml:"client_key_file"`
	// CAFile holds PEM roots to verify PSC (empty: the system's).
	CAFile string `yaml:"ca_file"`
	// Scopes default to [openid, scope_all].
	Scopes []string `yaml:"scopes"`
	// ACRValues defaults to eidas1.
	ACRValues string `yaml:"acr_values"`
	// Assurance maps PSC's acr and authMode to Garde's level and amr;
	// first match wins. Empty: the connector's documented defaults.
	Assurance []PSCAssuranceRule `yaml:"assurance"`
	// UserinfoDecryptionKeyFile is the PEM private key for encrypted
	// userinfo, if Garde registered an encryption key with ANS.
	UserinfoDecryptionKeyFile string `yaml:"userinfo_decryption_key_file"`
	// BackChannelLogout accepts PSC's back-channel logout tokens (PSC ends
	// its session, Garde ends the matching ones).
	BackChannelLogout bool `yaml:"back_channel_logout"`
	// Decoupled offers the decoupled sign-in (CIBA): the clinician types
	// their RPPS number and approves on their card reader or e-CPS app.
	Decoupled *PSCDecoupled `yaml:"decoupled"`
}

// PSCDecoupled configures the decoupled sign-in through PSC.
type PSCDecoupled struct {
	// Enabled shows the form on the login page.
	Enabled bool `yaml:"enabled"`
	// Channels are where PSC may push the request: CARD (the card
	// reader) and MOBILE (the e-CPS app). Empty: both.
	Channels []string `yaml:"channels"`
}

// DecoupledChannels are the channels offered (nil when the decoupled
// sign-in is off).
func (c *PSCConnector) DecoupledChannels() []string {
	if c.Decoupled == nil || !c.Decoupled.Enabled {
		return nil
	}
	if len(c.Decoupled.Channels) == 0 {
		return []string{"CARD", "MOBILE"}
	}
	return c.Decoupled.Channels
}

// PSCAssuranceRule is one row of the PSC assurance table.
type PSCAssuranceRule struct {
	// ACR and AuthMode match PSC's acr and authMode; empty matches any.
	ACR      string `yaml:"acr"`
	AuthMode string `yaml:"auth_mode"`
	// Level is low, substantial or high.
	Level string `yaml:"level"`
	// AMR are RFC 8176 values recorded for such a sign-in.
	AMR []string `yaml:"amr"`
}

// PSC presets, repeated from connectors/psc so that the configuration can
// be checked without importing connectors.
var pscIssuers = map[string]string{
	"production": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
	"bas":        "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet",
}

// rfc8176AMR are the registered amr values (RFC 8176 §2).
var rfc8176AMR = []string{"face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pwd", "rba", "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia"}

// psc validates connectors[i].psc (called from connectors()).
func (v *validator) psc(p string, c *PSCConnector) {
	if v.enum(p+".environment", c.Environment, "PSC environment", "production", "bas", "custom") {
		if preset, ok := pscIssuers[c.Environment]; ok {
			if c.Issuer != "" && c.Issuer != preset {
				v.errorf(p+".issuer", "%q is not the %s issuer %q; expected no issuer (the environment sets it), or environment: custom", c.Issuer, c.Environment, preset)
			}
		} else if c.Issuer == "" {
			v.errorf(p+".issuer", "is required for environment custom; expected PSC's issuer, e.g. %s", pscIssuers["bas"])
		}
	}
	if c.Issuer != "" {
		v.pscURL(p+".issuer", c.Issuer)
	}
	if c.DiscoveryURL != "" {
		v.pscURL(p+".discovery_url", c.DiscoveryURL)
	}
	if c.ClientID == "" {
		v.errorf(p+".client_id", "is required; expected the client id ANS registered for Garde")
	}
	method := c.AuthMethod
	if method == "" {
		method = "client_secret_basic"
	} else {
		v.enum(p+".auth_method", c.AuthMethod, "PSC client authentication method", "client_secret_basic", "client_secret_post", "tls_client_auth")
	}
	switch method {
	case "client_secret_basic", "client_secret_post":
		if !c.ClientSecret.IsSet() {
			v.errorf(p+".client_secret", "is required for %s; expected the secret ANS issued (use ${VAR} to keep it out of the file)", method)
		}
	case "tls_client_auth":
		if c.ClientSecret.IsSet() {
			v.keyErrorf(p+".client_secret", "is not used with tls_client_auth: the certificate is the credential; expected no client_secret")
		}
		if c.ClientCertificateFile == "" {
			v.errorf(p+".client_certificate_file", "is required for tls_client_auth; expected the hospital's IGC-Santé organisation certificate (PEM)")
		}
		if c.ClientKeyFile == "" {
			v.errorf(p+".client_key_file", "is required for tls_client_auth; expected the certificate's private key (PEM)")
		}
	}
	if method != "tls_client_auth" {
		switch {
		case c.ClientCertificateFile != "" && c.ClientKeyFile == "":
			v.errorf(p+".client_key_file", "is missing; expected both client_certificate_file and client_key_file, or neither")
		case c.ClientCertificateFile == "" && c.ClientKeyFile != "":
			v.errorf(p+".client_certificate_file", "is missing; expected both client_certificate_file and client_key_file, or neither")
		}
		if c.Environment == "production" {
			v.warnf(p+".auth_method", "ANS asks production clients to authenticate with their IGC-Santé certificate (tls_client_auth)")
		}
	}
	v.file(p+".client_certificate_file", c.ClientCertificateFile)
	v.file(p+".client_key_file", c.ClientKeyFile)
	v.file(p+".ca_file", c.CAFile)
	v.file(p+".userinfo_decryption_key_file", c.UserinfoDecryptionKeyFile)
	for i, s := range c.Scopes {
		if !validScope(s) {
			v.errorf(index(p+".scopes", i), "%q is not a scope; expected a word without spaces or quotes (RFC 6749 §3.3)", s)
		}
	}
	v.duplicates(p+".scopes", c.Scopes, "scope")
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "scope_all") {
		v.warnf(p+".scopes", "does not include scope_all, without which PSC sends no professional data (SubjectRefPro)")
	}
	if c.ACRValues != "" && strings.TrimSpace(c.ACRValues) != c.ACRValues {
		v.errorf(p+".acr_values", "%q has leading or trailing spaces; expected e.g. eidas1", c.ACRValues)
	}
	v.pscAssurance(p+".assurance", c.Assurance)
	if c.Decoupled != nil {
		for i, ch := range c.Decoupled.Channels {
			v.enum(index(p+".decoupled.channels", i), ch, "PSC decoupled sign-in channel", "CARD", "MOBILE")
		}
		v.duplicates(p+".decoupled.channels", c.Decoupled.Channels, "channel")
	}
}

func (v *validator) pscURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		v.errorf(path, "%q is not an absolute URL; expected https://host/path", raw)
	case u.Scheme != "https":
		v.errorf(path, "%q must use https", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		v.errorf(path, "%q must not have user information, a query or a fragment; expected https://host/path", raw)
	case strings.HasSuffix(raw, "/"):
		v.errorf(path, "%q must not end with /; expected %q", raw, strings.TrimRight(raw, "/"))
	}
}

func (v *validator) pscAssurance(p string, rules []PSCAssuranceRule) {
	catchAll := -1
	for i, r := range rules {
		rp := index(p, i)
		if catchAll >= 0 {
			v.warnf(rp, "is never used: %s matches every sign-in first", index(p, catchAll))
		}
		v.enum(rp+".level", r.Level, "level", "low", "substantial", "high")
		for j, a := range r.AMR {
			if !slices.Contains(rfc8176AMR, a) {
				msg := "%q is not an RFC 8176 amr value; expected one of " + strings.Join(rfc8176AMR, ", ")
				if s := suggest(a, rfc8176AMR); s != "" {
					msg += " (did you mean \"" + s + "\"?)"
				}
				v.errorf(index(rp+".amr", j), msg, a)
			}
		}
		v.duplicates(rp+".amr", r.AMR, "amr value")
		if r.ACR == "" && r.AuthMode == "" && catchAll < 0 {
			catchAll = i
		}
	}
}
