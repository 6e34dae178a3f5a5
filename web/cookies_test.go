package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCookiePolicy(t *testing.T) {
	for _, secure := range []bool{true, false} {
		p := CookiePolicy{Secure: secure}
		wantName := "garde_session"
		if secure {
			wantName = "__Host-garde_session"
		}
		if got := p.Name("garde_session"); got != wantName {
			t.Errorf("Name = %q, want %q", got, wantName)
		}

		w := httptest.NewRecorder()
		p.Set(w, "garde_session", "v1", 8*time.Hour, http.SameSiteStrictMode)
		p.Set(w, "garde_bind", "v2", 0, 0)
		p.Set(w, "garde_saml", "v3", time.Minute, http.SameSiteNoneMode)
		cs := w.Result().Cookies()
		if len(cs) != 3 {
			t.Fatalf("cookies = %v", cs)
		}
		for _, c := range cs {
			if !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.Secure != secure {
				t.Errorf("secure=%v: cookie attributes %+v", secure, c)
			}
			if secure != strings.HasPrefix(c.Name, "__Host-") {
				t.Errorf("secure=%v: name %q", secure, c.Name)
			}
		}
		if cs[0].MaxAge != 8*3600 || cs[0].SameSite != http.SameSiteStrictMode {
			t.Errorf("session cookie %+v", cs[0])
		}
		if cs[1].MaxAge != 0 || cs[1].SameSite != http.SameSiteLaxMode {
			t.Errorf("default cookie %+v (want session cookie, Lax)", cs[1])
		}
		wantNone := http.SameSiteNoneMode
		if !secure {
			wantNone = http.SameSiteLaxMode
		}
		if cs[2].SameSite != wantNone {
			t.Errorf("secure=%v: SameSite=None cookie became %v", secure, cs[2].SameSite)
		}

		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range cs {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		r.AddCookie(&http.Cookie{Name: "empty", Value: ""})
		if v, ok := p.Get(r, "garde_session"); !ok || v != "v1" {
			t.Errorf("Get = %q, %v", v, ok)
		}
		if _, ok := p.Get(r, "missing"); ok {
			t.Error("Get of a missing cookie reported ok")
		}
		if _, ok := (CookiePolicy{Secure: !secure}).Get(r, "garde_session"); ok {
			t.Error("Get found the cookie under the other policy's name")
		}

		w = httptest.NewRecorder()
		p.Clear(w, "garde_session")
		cs = w.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != wantName || cs[0].MaxAge >= 0 || cs[0].Value != "" ||
			cs[0].Secure != secure || cs[0].Path != "/" || !cs[0].HttpOnly {
			t.Errorf("Clear = %+v", cs)
		}
	}
}
