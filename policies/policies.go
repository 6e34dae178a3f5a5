// Package policies decides, without any I/O, whether a person may enter an
// application with the authentication they have: allow, deny with a reason,
// or step up to a stronger level.
//
// This first cut is the seam: it allows every authenticated person. The
// per-application rules (assurance floors, who may enter, network zones,
// step-up, emergency access) plug in here, and broker/flow already enforces
// whatever Decide answers at the single point where a session is granted to
// an application.
package policies

import (
	"time"

	"github.com/garde-sso/garde/internal/assurance"
)

// Input is everything a decision may look at.
type Input struct {
	// App is the client id or SAML entity id.
	App string
	// Subject and Groups describe the person.
	Subject string
	Groups  []string
	// AMR and Level describe the authentication so far.
	AMR   []string
	Level assurance.Level
	// Requested is the level the application asked for (None if none).
	Requested assurance.Level
	AuthTime  time.Time
	Now       time.Time
	// ClientAddr is the client's network address as text.
	ClientAddr string
}

// Outcome is the kind of decision.
type Outcome int

const (
	// Allow lets the person in.
	Allow Outcome = iota
	// Deny refuses, with Reason.
	Deny
	// StepUp asks for more authentication, up to Level.
	StepUp
)

// Decision is the answer to an Input.
type Decision struct {
	Outcome Outcome
	// Level is the level to reach (StepUp).
	Level assurance.Level
	// Reason is a stable code for audit and a message key for people.
	Reason string
}

// Decide returns the decision for in.
func Decide(in Input) Decision {
	if in.Subject == "" {
		return Decision{Outcome: Deny, Reason: "not_authenticated"}
	}
	return Decision{Outcome: Allow}
}
