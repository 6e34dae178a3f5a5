package web

import (
	"net/http"
	"time"
)

// CookiePolicy writes Garde's cookies. Every cookie is HttpOnly (no script
// on our pages needs one, and none may read a session or binding).
//
// Secure is the normal case (the issuer is https): names take the __Host-
// prefix, which makes the browser insist on Secure, Path=/ and no Domain, so
// neither a sibling subdomain nor a plain-HTTP page can plant or overwrite
// the cookie. Secure=false exists only for the documented plain-HTTP
// localhost demo: the same names without the prefix and without Secure
// (browsers refuse __Host- cookies that are not Secure).
type CookiePolicy struct {
	Secure bool
}

// hostPrefix is the cookie name prefix browsers bind to the exact host.
const hostPrefix = "__Host-"

// Name returns the cookie name for base under this policy.
func (p CookiePolicy) Name(base string) string {
	if p.Secure {
		return hostPrefix + base
	}
	return base
}

// Set writes cookie base=value. maxAge <= 0 makes a session cookie (gone
// when the browser closes: what we want for SSO sessions on shared
// workstations unless policy says otherwise). sameSite 0 means Lax.
// SameSite=None is downgraded to Lax when not Secure, since browsers reject
// None without Secure.
func (p CookiePolicy) Set(w http.ResponseWriter, base, value string, maxAge time.Duration, sameSite http.SameSite) {
	if sameSite == 0 || sameSite == http.SameSiteDefaultMode || (sameSite == http.SameSiteNoneMode && !p.Secure) {
		sameSite = http.SameSiteLaxMode
	}
	c := p.cookie(base)
	c.Value = value
	c.SameSite = sameSite
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
		if c.MaxAge == 0 {
			c.MaxAge = 1
		}
	}
	http.SetCookie(w, c)
}

// Get returns the value of cookie base, and false if it is absent or empty.
func (p CookiePolicy) Get(r *http.Request, base string) (string, bool) {
	c, err := r.Cookie(p.Name(base))
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// Clear deletes cookie base. It repeats the attributes the cookie was set
// with: a browser ignores a __Host- deletion that is not Secure with Path=/.
func (p CookiePolicy) Clear(w http.ResponseWriter, base string) {
	c := p.cookie(base)
	c.MaxAge = -1
	c.SameSite = http.SameSiteLaxMode
	http.SetCookie(w, c)
}

func (p CookiePolicy) cookie(base string) *http.Cookie {
	return &http.Cookie{
		Name:     p.Name(base),
		Path:     "/",
		Secure:   p.Secure,
		HttpOnly: true,
	}
}
