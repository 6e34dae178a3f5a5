package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptLanguage(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"", "fr"},
		{"fr", "fr"},
		{"en", "en"},
		{"en-GB,en;q=0.9", "en"},
		{"en-US,en;q=0.9,fr;q=0.8", "en"},
		{"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"},
		{"fr-CA", "fr"},
		{"FR-ca", "fr"},
		{"en_GB", "en"},
		{"de", "fr"},
		{"de-DE,de;q=0.9", "fr"},
		{"de-DE,de;q=0.9,en;q=0.5", "en"},
		{"de,fr;q=0.3,en;q=0.5", "en"},
		{"en;q=0.5,fr;q=0.5", "en"},             // tie: the earlier entry
		{"fr;q=0.5,en;q=0.5", "fr"},             // tie: the earlier entry
		{"en-US;q=0.5,fr;q=0.7,en;q=0.9", "en"}, // a language takes its best q
		{"fr;q=0,en;q=0.1", "en"},               // q=0 excludes
		{"fr;q=0", "en"},                        // French refused, English is left
		{"en;q=0", "fr"},
		{"en;q=0,de", "fr"},
		{"fr;q=0,en;q=0", "fr"}, // both refused: default
		{"en;q=0.000", "fr"},
		{"*", "fr"},
		{"fr;q=0.1,*", "en"}, // * stands for an unnamed language
		{"en;q=0.2,*;q=0.5", "fr"},
		{"*;q=0,en", "en"},
		{"en;q=abc,fr;q=0.2", "fr"}, // malformed entry skipped
		{"en;q=2", "fr"},            // q out of range: skipped
		{"en;q=-1", "fr"},
		{"en;q=0.5555555", "fr"}, // more than 3 decimals: invalid
		{" en-GB ; q=0.8 , de", "en"},
		{",,,;;;", "fr"},
		{"english", "fr"}, // not a primary subtag "en"
		{"en-", "en"},
		{"en;q=NaN", "fr"},
		{"en;q=Inf", "fr"},
		{"en;q=1e-3", "fr"},
		{"en;q=1.000", "en"},
		{"en;q=1.001", "fr"},
		{"en;q=0.", "fr"},
		{"en;q=.5", "fr"},
		{"en;level=1;q=0.8", "en"},
	} {
		if got := matchAcceptLanguage(tc.header); got != tc.want {
			t.Errorf("Accept-Language %q: got %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestLanguagePrecedence(t *testing.T) {
	for _, tc := range []struct {
		name, target, cookie, header, want string
	}{
		{"default", "/", "", "", "fr"},
		{"header", "/", "", "en-GB,en;q=0.9", "en"},
		{"query wins over header", "/?lang=en", "", "fr-FR", "en"},
		{"query fr wins over header", "/?lang=fr", "", "en", "fr"},
		{"query wins over cookie", "/?lang=en", "fr", "fr", "en"},
		{"cookie wins over header", "/", "en", "fr", "en"},
		{"bad query ignored", "/?lang=de", "", "en", "en"},
		{"bad cookie ignored", "/", "xx", "en", "en"},
		{"query case-insensitive", "/?lang=EN", "", "", "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: LangCookie, Value: tc.cookie})
			}
			if tc.header != "" {
				r.Header.Set("Accept-Language", tc.header)
			}
			if got := Language(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderFollowsAcceptLanguage(t *testing.T) {
	r := newTestRenderer(t)
	req := httptest.NewRequest(http.MethodGet, "/login", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	w := httptest.NewRecorder()
	r.Render(w, req, 200, PageLogin, LoginPage{})
	if !strings.Contains(w.Body.String(), `<html lang="en">`) {
		t.Error("Accept-Language en not followed")
	}
	req = httptest.NewRequest(http.MethodGet, "/login?lang=fr", nil)
	req.Header.Set("Accept-Language", "en")
	w = httptest.NewRecorder()
	r.Render(w, req, 200, PageLogin, LoginPage{})
	if !strings.Contains(w.Body.String(), `<html lang="fr">`) || !strings.Contains(w.Body.String(), `aria-current="true" class="current">Français`) {
		t.Errorf("?lang=fr not followed:\n%s", w.Body)
	}
}

func TestLanguageSwitch(t *testing.T) {
	var seen string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = Language(r) })

	for _, tc := range []struct {
		name      string
		target    string
		https     bool
		wantSet   bool
		wantValue string
	}{
		{"sets en over https", "/login?lang=en&flow=1", true, true, "en"},
		{"sets fr over http", "/login?lang=fr", false, true, "fr"},
		{"no param", "/login", true, false, ""},
		{"unsupported", "/login?lang=de", true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := LanguageSwitch(next, func(*http.Request) bool { return tc.https })
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.target, nil))
			cookies := w.Result().Cookies()
			if !tc.wantSet {
				if len(cookies) != 0 {
					t.Fatalf("unexpected cookie %v", cookies)
				}
				return
			}
			if len(cookies) != 1 {
				t.Fatalf("cookies = %v", cookies)
			}
			c := cookies[0]
			if c.Name != LangCookie || c.Value != tc.wantValue || c.Path != "/" || c.SameSite != http.SameSiteLaxMode ||
				c.MaxAge != 365*24*3600 || c.Secure != tc.https || c.Domain != "" {
				t.Errorf("cookie = %+v", c)
			}
			if seen != tc.wantValue {
				t.Errorf("next saw language %q", seen)
			}
		})
	}
}

func FuzzLanguage(f *testing.F) {
	for _, s := range []string{
		"", "fr", "en-GB,en;q=0.9", "de", "fr-CA", "fr;q=0,en", "*;q=0.5", "en;q=1.0000001",
		"en;q=", ";q=0.5", ",,,", "en;q=0.5;q=0.9", "\x00", "fr;q=NaN", "en;q=Inf", "en;q=1e-3",
		strings.Repeat("en,", 1000),
	} {
		f.Add(s, "")
	}
	f.Add("en", "fr")
	f.Add("de", "xx")
	f.Fuzz(func(t *testing.T, header, query string) {
		if got := matchAcceptLanguage(header); got != LangFR && got != LangEN {
			t.Fatalf("matchAcceptLanguage(%q) = %q", header, got)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", header)
		q := r.URL.Query()
		q.Set(LangParam, query)
		r.URL.RawQuery = q.Encode()
		if got := Language(r); got != LangFR && got != LangEN {
			t.Fatalf("Language(header %q, lang %q) = %q", header, query, got)
		}
	})
}
