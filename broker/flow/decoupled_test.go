package flow

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeNationalID(t *testing.T) {
	for in, want := range map[string]string{
		"10000000009":       "810000000009", // RPPS: the 8 is added
		"810000000009":      "810000000009", // idNat as printed
		" 100 000 000 09 ":  "810000000009", // spaces as on the card
		"8 10000000009":     "810000000009",
		"10000\u00a0000009": "810000000009", // a non-breaking space pasted
		"99700075122":       "899700075122",
	} {
		got, err := NormalizeNationalID(in)
		if err != nil || got != want {
			t.Errorf("NormalizeNationalID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "8", "1000000000", // too short
		"10000000008",           // check digit wrong
		"910000000009",          // 12 digits not starting with 8
		"0123456789",            // an ADELI-like number
		"3/10000000009",         // a structure-based id
		"1000000000９",           // a full-width digit
		"810000000009\n",        // a newline is not a space on a card
		"8100000000090",         // 13 digits
		"abc",                   // letters
		"1000000000-9",          // punctuation
		strings.Repeat("1", 65), // long
	} {
		if got, err := NormalizeNationalID(in); !errors.Is(err, ErrInvalidNationalID) {
			t.Errorf("NormalizeNationalID(%q) = %q, %v; want ErrInvalidNationalID", in, got, err)
		}
	}
}

// FuzzNormalizeNationalID: whatever is typed, the result is either an
// error or "8" + 11 digits with a valid key, and normalising it again
// gives it back.
func FuzzNormalizeNationalID(f *testing.F) {
	for _, s := range []string{"10000000009", "810000000009", " 8 1000 0000 009", "", "x", "99700075122", "\u00a0", "８"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeNationalID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidNationalID) {
				t.Fatalf("error %v is not ErrInvalidNationalID", err)
			}
			return
		}
		if len(got) != 12 || got[0] != '8' || strings.Trim(got, "0123456789") != "" || !luhn(got[1:]) {
			t.Fatalf("NormalizeNationalID(%q) = %q", s, got)
		}
		if again, err := NormalizeNationalID(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, got, again, err)
		}
	})
}
