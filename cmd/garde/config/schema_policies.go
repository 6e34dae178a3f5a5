package config

// Policies are per-application access rules.
type Policies struct{}
