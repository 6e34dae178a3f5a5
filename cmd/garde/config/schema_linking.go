package config

// Linking joins one person's identities across sources (AD, Pro Santé
// Connect, CPS card) by their national id: a card or PSC sign-in finds the
// directory account whose national_id attribute holds the same id.
type Linking struct {
	// NoMatch says what happens when no directory account holds the
	// national id of a card or PSC sign-in: deny (default: a readable
	// refusal), external (admitted as an external professional, with the
	// card's or PSC's attributes only and no groups), or password (the
	// person links an account once by typing its password; audited).
	NoMatch string `yaml:"no_match"`
}
