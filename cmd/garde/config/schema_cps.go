package config

// CPSConnector signs people in with the authentication certificate of
// their CPS card (IGC-Santé), over TLS client authentication.
type CPSConnector struct{}

// cps validates connectors[i].cps (called from connectors()).
func (v *validator) cps(p string, c *CPSConnector) {}
