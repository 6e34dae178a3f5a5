package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	for _, https := range []bool{true, false} {
		h := SecurityHeaders(ok, func(*http.Request) bool { return https })
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
		hd := w.Header()
		csp := hd.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
			"connect-src 'self'", "font-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP lacks %q: %s", want, csp)
			}
		}
		for _, bad := range []string{"unsafe-inline", "unsafe-eval", "form-action", "*", "http:", "https:"} {
			if strings.Contains(csp, bad) {
				t.Errorf("CSP contains %q: %s", bad, csp)
			}
		}
		for name, want := range map[string]string{
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "no-referrer",
			"X-Frame-Options":            "DENY",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := hd.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if pp := hd.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || strings.Contains(pp, "publickey-credentials") {
			t.Errorf("Permissions-Policy = %q", pp)
		}
		hsts := hd.Get("Strict-Transport-Security")
		if https && hsts != "max-age=31536000" {
			t.Errorf("https: HSTS = %q", hsts)
		}
		if !https && hsts != "" {
			t.Errorf("http: HSTS sent: %q", hsts)
		}
	}
	// nil isHTTPS falls back to r.TLS.
	w := httptest.NewRecorder()
	SecurityHeaders(ok, nil).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://garde.example.fr/", nil))
	if w.Header().Get("Strict-Transport-Security") == "" {
		t.Error("nil isHTTPS: TLS request got no HSTS")
	}
}
