package web

// PageDecoupled is the page a clinician sees while Pro Santé Connect pushes
// a decoupled sign-in to their card reader or e-CPS app: the two-digit code
// to compare, and a refresh (no script) that polls. Data: DecoupledPage.
const PageDecoupled = "login_decoupled"

// Form fields of the decoupled sign-in form (inside LoginOption.Decoupled).
const (
	FieldNationalID = "national_id"
	FieldChannel    = "channel"
	FieldSource     = "source"
)

// Channels of a decoupled sign-in, as Pro Santé Connect names them.
const (
	ChannelCard   = "CARD"
	ChannelMobile = "MOBILE"
)

// MsgDecoupledInvalidID: what was typed is not an RPPS number.
const MsgDecoupledInvalidID = "psc_decoupled_invalid_id"

// DecoupledForm is the "receive the request on my card or e-CPS app" form
// of a Pro Santé Connect option. It posts the login page's flow_id, step
// and csrf_token with source, national_id and channel to Action.
type DecoupledForm struct {
	// Action is where the form posts.
	Action string
	// Source is the connector id, posted back.
	Source string
	// Channels are ChannelCard and/or ChannelMobile: with two, the person
	// chooses; with one, it is sent as a hidden field.
	Channels []string
}

// DecoupledPage is the view model of "Validez la connexion sur votre carte
// ou votre application e-CPS".
type DecoupledPage struct {
	// App is the display name of the application, if known.
	App string
	// BindingMessage is the two-digit code PSC shows on the card reader or
	// in the app.
	BindingMessage string
	// Channel is ChannelCard or ChannelMobile.
	Channel string
	// RefreshSeconds is when the page reloads itself (and so polls).
	RefreshSeconds int
	// RefreshURL reloads the page now; CancelURL gives up and returns to
	// the login page.
	RefreshURL string
	CancelURL  string
}
