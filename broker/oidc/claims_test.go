package oidc

import (
	"testing"

	"github.com/garde-sso/garde/internal/assurance"
)

func TestACRClaim(t *testing.T) {
	for _, tt := range []struct {
		raw       string
		level     assurance.Level
		essential bool
		err       bool
	}{
		{`{"id_token":{"acr":{"essential":true,"values":["` + assurance.ACRHigh + `"]}}}`, assurance.High, true, false},
		// Any listed value satisfies: the lowest is what is required.
		{`{"id_token":{"acr":{"essential":true,"values":["` + assurance.ACRHigh + `","` + assurance.ACRSubstantial + `"]}}}`, assurance.Substantial, true, false},
		{`{"id_token":{"acr":{"value":"` + assurance.ACRSubstantial + `"}}}`, assurance.Substantial, false, false},
		{`{"userinfo":{"acr":{"essential":true,"value":"high"}}}`, assurance.High, true, false},
		// Unknown values ask for nothing, essential or not.
		{`{"id_token":{"acr":{"essential":true,"values":["urn:other"]}}}`, assurance.None, false, false},
		{`{"id_token":{"email":{"essential":true}}}`, assurance.None, false, false},
		{`{"id_token":{"acr":null}}`, assurance.None, false, false},
		{`{"id_token":`, assurance.None, false, true},
		{`[]`, assurance.None, false, true},
		{`{"id_token":{"acr":{"values":"high"}}}`, assurance.None, false, true},
	} {
		level, essential, err := acrClaim(tt.raw)
		if (err != nil) != tt.err || level != tt.level || essential != tt.essential {
			t.Errorf("acrClaim(%s) = %v, %v, %v; want %v, %v, error %v", tt.raw, level, essential, err, tt.level, tt.essential, tt.err)
		}
	}
}

// The claims parameter comes from any client: never a panic, and never a
// level Garde does not know.
func FuzzACRClaim(f *testing.F) {
	f.Add(`{"id_token":{"acr":{"essential":true,"values":["http://eidas.europa.eu/LoA/high"]}}}`)
	f.Add(`{"userinfo":{"acr":{"value":"low"}},"id_token":{"acr":{"values":["substantial","x"]}}}`)
	f.Add(`{"id_token":{"acr":{"essential":"yes"}}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		level, essential, err := acrClaim(raw)
		if err != nil && (level != assurance.None || essential) {
			t.Fatalf("error with a level: %v %v %v", level, essential, err)
		}
		if level < assurance.None || level > assurance.High {
			t.Fatalf("level %v out of range", level)
		}
		if essential && level == assurance.None {
			t.Fatal("essential without a level")
		}
	})
}
