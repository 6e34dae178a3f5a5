package config

// Linking joins one person's identities across sources (AD, Pro Santé
// Connect, CPS card) by their national id.
type Linking struct{}
