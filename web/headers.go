package web

import "net/http"

// ContentSecurityPolicy is the policy SecurityHeaders sets. Nothing inline:
// scripts and styles come from our own origin only ('self', no
// 'unsafe-inline', no CDN), so an injected <script> or style attribute does
// nothing. img-src allows data: for small inline images (a QR code, later).
//
// There is deliberately no form-action directive: the login form posts to
// the broker, which answers with a redirect chain that ends at the
// application's redirect URI, another origin. Chrome applies form-action to
// every hop of a form submission's redirects, so form-action 'self' would
// block the final hop to the application and break every sign-in. Forms
// only post to fixed, server-rendered actions, so the directive would buy
// little.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// permissionsPolicy switches off the powerful features a sign-in page never
// needs. WebAuthn (publickey-credentials-get/create) keeps its default,
// self, for the passkey method.
const permissionsPolicy = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=(), bluetooth=(), display-capture=(), browsing-topics=()"

// hsts asks browsers to use HTTPS for a year. No includeSubDomains: a
// hospital domain often hosts old plain-HTTP intranet services under the
// same parent, and the broker must not break them; no preload for the same
// reason.
const hsts = "max-age=31536000"

// SecurityHeaders sets the security headers on every response of next:
// the strict CSP above, nosniff, no referrer (URLs carry flow ids and
// codes), no framing (clickjacking on a password form), a minimal
// Permissions-Policy and COOP same-origin (no window handle for an opener
// on another site). Strict-Transport-Security is sent only when isHTTPS(r)
// says the browser came over HTTPS (HSTS over plain HTTP is ignored by
// browsers, and would be wrong for the localhost demo); a nil isHTTPS means
// DirectTLS.
func SecurityHeaders(next http.Handler, isHTTPS func(*http.Request) bool) http.Handler {
	if isHTTPS == nil {
		isHTTPS = DirectTLS
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", permissionsPolicy)
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if isHTTPS(r) {
			h.Set("Strict-Transport-Security", hsts)
		}
		next.ServeHTTP(w, r)
	})
}
