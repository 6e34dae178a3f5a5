package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// CSRF makes and checks form tokens. We do not use gorilla/csrf: it carries
// an unfixed advisory, and what Garde needs fits in a few lines.
//
// A token is base64url(HMAC-SHA256(key, binding || 0x00 || purpose)):
//   - binding is a random per-browser id (NewBinding) that the caller keeps
//     in an HttpOnly cookie (CookiePolicy). Another browser, hence an
//     attacker's page, cannot know it, so it cannot forge the token; and a
//     token leaked from one browser is useless in another.
//   - purpose names the form ("login", "logout", ...), ideally with the flow
//     id ("login:"+flowID), so a token taken from one form cannot submit
//     another.
//
// Tokens are stateless: any replica with the key verifies them. This is the
// second layer; the first is Go's http.CrossOriginProtection (see
// CrossOriginProtection), which refuses cross-site POSTs from modern
// browsers by their Sec-Fetch-Site / Origin headers.
type CSRF struct {
	key []byte
}

// minCSRFKeyLen is the shortest key accepted: 256 bits, the HMAC's size.
const minCSRFKeyLen = 32

// NewCSRF returns a CSRF with its own copy of key. It panics if key is
// shorter than 32 bytes: that is a wiring bug, caught at start-up.
func NewCSRF(key []byte) *CSRF {
	if len(key) < minCSRFKeyLen {
		panic("web: CSRF key must be at least 32 bytes")
	}
	return &CSRF{key: append([]byte(nil), key...)}
}

// NewBinding returns a fresh random browser binding (about 130 bits,
// base32) for the caller to store in a cookie.
func NewBinding() string { return rand.Text() }

// Token returns the token for binding and purpose, or "" if binding is
// empty or either holds a 0x00 byte (which would make the MAC input
// ambiguous).
func (c *CSRF) Token(binding, purpose string) string {
	mac, ok := c.mac(binding, purpose)
	if !ok {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(mac)
}

// Verify reports whether token was made by Token for this binding and
// purpose. The comparison is constant-time.
func (c *CSRF) Verify(binding, purpose, token string) bool {
	want, ok := c.mac(binding, purpose)
	if !ok || token == "" {
		return false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil {
		return false
	}
	return hmac.Equal(got, want)
}

func (c *CSRF) mac(binding, purpose string) ([]byte, bool) {
	if binding == "" || strings.IndexByte(binding, 0) >= 0 || strings.IndexByte(purpose, 0) >= 0 {
		return nil, false
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(binding))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	return m.Sum(nil), true
}

// CrossOriginProtection returns Go's http.CrossOriginProtection (Go 1.25+),
// which rejects non-safe cross-origin requests from browsers using
// Sec-Fetch-Site, falling back to Origin vs Host. Wrap every handler that
// serves browser forms with it, in addition to the CSRF tokens:
//
//	cop := web.CrossOriginProtection()
//	cop.SetDenyHandler(renderer.CrossOriginDenied())
//	cop.AddInsecureBypassPattern("POST /saml/sso") // SAML HTTP-POST binding
//	handler := cop.Handler(mux)
//
// Endpoints that legitimately receive cross-site POSTs from browsers — the
// SAML HTTP-POST binding (SSO and SLO), an OIDC form_post response from Pro
// Santé Connect — must be bypassed by the caller, which then relies on their
// own protections (signed messages, state). Back-channel calls (/token,
// /introspect) carry no Sec-Fetch-Site or Origin and pass untouched.
func CrossOriginProtection() *http.CrossOriginProtection {
	return http.NewCrossOriginProtection()
}

// CrossOriginDenied returns a handler that renders the csrf_failed page with
// status 403, for CrossOriginProtection.SetDenyHandler.
func (r *Renderer) CrossOriginDenied() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ref := newRef()
		r.logger.Warn("web: cross-origin request refused", "ref", ref, "method", req.Method, "path", req.URL.Path,
			"origin", req.Header.Get("Origin"), "sec_fetch_site", req.Header.Get("Sec-Fetch-Site"))
		r.Render(w, req, http.StatusForbidden, PageError, ErrorPage{MessageKey: MsgCSRFFailed, Ref: ref})
	})
}
