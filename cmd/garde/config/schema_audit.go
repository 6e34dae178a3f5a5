package config

// Audit configures the audit trail's retention and SIEM export.
type Audit struct{}
