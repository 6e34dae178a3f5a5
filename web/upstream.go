package web

// PageLink is the page that asks a card or Pro Santé Connect user for their
// local password once, to link the two accounts. Data: LinkPage.
const PageLink = "login_link"

// LoginOption is a sign-in method offered on the login page besides the
// password: a CPS card or Pro Santé Connect. Each is a plain link (a GET
// that starts the method), so it works without JavaScript.
type LoginOption struct {
	// Kind is "card" or "psc": it picks the section's heading, hint and
	// icon.
	Kind string
	// Name is the configured display name of the connector.
	Name string
	// URL starts the method for this flow.
	URL string
	// Decoupled, for Pro Santé Connect, offers the decoupled sign-in
	// (the request pushed to the card reader or e-CPS app); nil hides it.
	Decoupled *DecoupledForm
}

// LinkPage is the view model of "Associez votre carte à votre compte".
type LinkPage struct {
	// App is the display name of the application, if known.
	App string
	// Method is how the person signed in: "card" or "psc".
	Method string
	// FlowID, StepToken and CSRFToken go back in hidden fields.
	FlowID    string
	StepToken string
	CSRFToken string
	// Username re-displays what was typed after a failed attempt.
	Username string
	// Error is a message KEY; empty shows none.
	Error string
	// Action is the URL the form posts to.
	Action string
}

// Message keys of card, Pro Santé Connect and linking failures.
const (
	MsgCardMissing           = "card_missing"
	MsgCardRevoked           = "card_revoked"
	MsgCardExpired           = "card_expired"
	MsgCardUntrusted         = "card_untrusted"
	MsgCardRevocationUnknown = "card_revocation_unknown"
	MsgCardRefused           = "card_refused"
	MsgUpstreamFailed        = "upstream_failed"
	MsgNoLocalAccount        = "no_local_account"
	MsgLinkAmbiguous         = "link_ambiguous"
	MsgLinkMismatch          = "link_mismatch"
)

func upstreamMessageKeys() []string {
	return []string{
		MsgCardMissing, MsgCardRevoked, MsgCardExpired, MsgCardUntrusted,
		MsgCardRevocationUnknown, MsgCardRefused, MsgUpstreamFailed,
		MsgNoLocalAccount, MsgLinkAmbiguous, MsgLinkMismatch,
		MsgEmergencyJustification, MsgEmergencyLimit, MsgPolicyDenied,
	}
}

// PageEmergency is "Accès refusé — déclarer un accès en urgence (bris de
// glace)". Data: EmergencyPage.
const PageEmergency = "emergency"

// EmergencyPage is the view model of the emergency declaration.
type EmergencyPage struct {
	// App is the application's display name.
	App string
	// Denial is why the person was refused (the policy's text).
	Denial Explanation
	// Reasons are the TRE_R248 access modes the person may declare
	// (bris_de_glace, centre_15); each has a text "ui.emergency.reason.<code>".
	Reasons []string
	// Minutes is how long the emergency access lasts.
	Minutes int
	// FlowID, StepToken and CSRFToken go back in hidden fields.
	FlowID    string
	StepToken string
	CSRFToken string
	// Reason and Justification re-display what was typed.
	Reason        string
	Justification string
	// Error is a message KEY; empty shows none.
	Error  string
	Action string
}

// Message keys of the emergency declaration.
const (
	MsgEmergencyJustification = "emergency_justification"
	MsgEmergencyLimit         = "emergency_limit_reached"
	// MsgPolicyDenied heads the page of a policy refusal; its text is the
	// policy's own (ErrorPage.Args: the French text, then the English).
	MsgPolicyDenied = "policy_denied"
)
