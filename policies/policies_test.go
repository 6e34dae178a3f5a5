package policies

import "testing"

// The seam allows every authenticated person and nobody else.
func TestDecide(t *testing.T) {
	if d := Decide(Input{App: "patients"}); d.Outcome != Deny || d.Reason != "not_authenticated" {
		t.Errorf("no subject: %+v, want deny not_authenticated", d)
	}
	if d := Decide(Input{App: "patients", Subject: "ad:1"}); d.Outcome != Allow {
		t.Errorf("authenticated: %+v, want allow", d)
	}
}
