package web

// PageSAMLPost carries a SAML message to an application with the HTTP-POST
// binding: a form that saml_post.js submits at once, with a visible button
// for browsers without JavaScript (the CSP forbids inline script).
const PageSAMLPost = "saml_post" // data: SAMLPostPage

// SAMLPostPage is the view model of PageSAMLPost.
type SAMLPostPage struct {
	// Action is the application's endpoint (from its registered metadata).
	Action string
	// Field is SAMLResponse or SAMLRequest; Value its base64 message.
	Field string
	Value string
	// RelayState goes back to the application untouched; empty omits it.
	RelayState string
	// App names the application, if known.
	App string
}
