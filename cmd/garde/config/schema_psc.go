package config

// PSCConnector is Pro Santé Connect, the national OpenID Connect provider
// for health professionals.
type PSCConnector struct{}

// psc validates connectors[i].psc (called from connectors()).
func (v *validator) psc(p string, c *PSCConnector) {}
