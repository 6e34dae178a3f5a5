package web

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func newTestRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := NewRenderer(WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

// render renders page for a GET of target in lang (via ?lang=) and returns
// the response.
func render(t *testing.T, r *Renderer, target string, status int, page string, data any) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	w := httptest.NewRecorder()
	r.Render(w, req, status, page, data)
	return w
}

type pageCase struct {
	name   string
	page   string
	data   any
	status int
	want   map[string][]string // lang → substrings
}

func pageCases() []pageCase {
	return append([]pageCase{
		{
			name: "login", page: PageLogin, status: 200,
			data: LoginPage{App: "DPI Urgences", FlowID: "flow-123", StepToken: "step-456", CSRFToken: "tok-789", Action: "/login"},
			want: map[string][]string{
				"fr": {"Connexion à DPI Urgences", ">Identifiant</label>", ">Mot de passe</label>", ">Se connecter</button>", "Poste partagé"},
				"en": {"Sign in to DPI Urgences", ">Username</label>", ">Password</label>", ">Sign in</button>", "Shared workstation"},
			},
		},
		{
			name: "login-error", page: PageLogin, status: 200,
			data: LoginPage{App: "DPI", Username: "jdupont", Error: MsgInvalidCredentials, CSRFToken: "t"},
			want: map[string][]string{
				"fr": {"Identifiant ou mot de passe incorrect.", `role="alert"`, "Erreur\u00a0:"},
				"en": {"Incorrect username or password.", `role="alert"`, "Error:"},
			},
		},
		{
			name: "error", page: PageError, status: 403,
			data: ErrorPage{MessageKey: MsgAccessDenied, Ref: "REF123ABC"},
			want: map[string][]string{
				"fr": {"Accès refusé", "Vous n&#39;avez pas accès à cette application.", "Que faire\u00a0?", "REF123ABC", "support informatique"},
				"en": {"Access denied", "You do not have access to this application.", "What to do next", "REF123ABC", "IT helpdesk"},
			},
		},
		{
			name: "flow-expired", page: PageError, status: 400,
			data: &ErrorPage{MessageKey: MsgFlowExpired, Ref: "R1"},
			want: map[string][]string{
				"fr": {"Votre demande de connexion a expiré, recommencez depuis l&#39;application."},
				"en": {"Your sign-in request has expired"},
			},
		},
		{
			name: "throttled", page: PageThrottled, status: 429,
			data: ErrorPage{Ref: "R2"},
			want: map[string][]string{
				"fr": {"Trop de tentatives", "Patientez quelques minutes"},
				"en": {"Too many sign-in attempts.", "Wait a few minutes"},
			},
		},
		{
			name: "unavailable", page: PageUnavailable, status: 503,
			data: nil,
			want: map[string][]string{
				"fr": {"Service indisponible", "momentanément indisponible"},
				"en": {"Service unavailable", "temporarily unavailable"},
			},
		},
		{
			name: "password-expired", page: PageError, status: 403,
			data: ErrorPage{MessageKey: MsgPasswordExpired},
			want: map[string][]string{
				"fr": {"Mot de passe expiré", "procédure habituelle"},
				"en": {"Password expired", "usual procedure"},
			},
		},
		{
			name: "logout_confirm", page: PageLogoutConfirm, status: 200,
			data: LogoutConfirmPage{CSRFToken: "csrf-lo", Action: "/logout", CancelURL: "/", FlowID: "lo-1"},
			want: map[string][]string{
				"fr": {"Voulez-vous vous déconnecter\u00a0?", "Oui, me déconnecter", ">Annuler</a>", `name="csrf_token" value="csrf-lo"`, `method="post"`},
				"en": {"Do you want to sign out?", "Yes, sign me out", ">Cancel</a>", `name="csrf_token" value="csrf-lo"`},
			},
		},
		{
			name: "logged_out", page: PageLoggedOut, status: 200,
			data: LoggedOutPage{ReturnURL: "https://dpi.example.fr/", App: "DPI"},
			want: map[string][]string{
				"fr": {"Déconnexion effectuée", "fermez toutes les fenêtres du navigateur", "Revenir à DPI", `href="https://dpi.example.fr/"`},
				"en": {"Signed out", "close every browser window", "Back to DPI"},
			},
		},
	}, webauthnPageCases()...)
}

func TestRenderEveryPageInBothLanguages(t *testing.T) {
	r := newTestRenderer(t)
	for _, tc := range pageCases() {
		for _, lang := range supportedLangs {
			t.Run(tc.name+"/"+lang, func(t *testing.T) {
				w := render(t, r, "/page?flow=abc&lang="+lang, tc.status, tc.page, tc.data)
				if w.Code != tc.status {
					t.Fatalf("status = %d, want %d; body:\n%s", w.Code, tc.status, w.Body)
				}
				body := w.Body.String()
				if !strings.Contains(body, `<html lang="`+lang+`">`) {
					t.Errorf("missing <html lang=%q>", lang)
				}
				for _, s := range tc.want[lang] {
					if !strings.Contains(body, s) {
						t.Errorf("missing %q in:\n%s", s, body)
					}
				}
				if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
					t.Errorf("Content-Type = %q", got)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q", got)
				}
				if got := w.Header().Get("Content-Language"); got != lang {
					t.Errorf("Content-Language = %q", got)
				}
				// No raw key, no formatting fault, no stack trace.
				for _, bad := range []string{"%!", "goroutine", ".go:"} {
					if strings.Contains(body, bad) {
						t.Errorf("body contains %q", bad)
					}
				}
				if k := rawKey.FindString(body); k != "" {
					t.Errorf("raw translation key %q in page", k)
				}
				// Language switch keeps the query.
				if !strings.Contains(body, `href="?flow=abc&amp;lang=en"`) || !strings.Contains(body, `href="?flow=abc&amp;lang=fr"`) {
					t.Errorf("language switch does not keep the query:\n%s", body)
				}
			})
		}
	}
}

func TestLoginForm(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/login", 200, PageLogin, LoginPage{
		App: "DPI", FlowID: "flow-123", StepToken: "step-456", CSRFToken: "tok-789", Action: "/login?x=1",
	}).Body.String()
	for _, s := range []string{
		`<label for="username">`, `id="username" name="username" autocomplete="username"`,
		`<label for="password">`, `id="password" name="password" autocomplete="current-password"`,
		`name="csrf_token" value="tok-789"`, `name="flow_id" value="flow-123"`, `name="step" value="step-456"`,
		`action="/login?x=1"`, `method="post"`, `type="submit"`, `class="method method-password"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %q in:\n%s", s, body)
		}
	}
	// Empty username: username autofocused, nothing pre-filled, no error area.
	if !regexp.MustCompile(`id="username"[^>]*autofocus`).MatchString(body) {
		t.Error("username should have autofocus when empty")
	}
	if regexp.MustCompile(`id="username"[^>]*value=`).MatchString(body) {
		t.Error("username must not be pre-filled unless the view model says so")
	}
	if regexp.MustCompile(`id="password"[^>]*autofocus`).MatchString(body) {
		t.Error("password should not have autofocus when username is empty")
	}
	if strings.Contains(body, `role="alert"`) {
		t.Error("error area shown without an error")
	}
	if strings.Count(body, "autofocus") != 1 {
		t.Errorf("want exactly one autofocus, got %d", strings.Count(body, "autofocus"))
	}

	// Username given: pre-filled, password autofocused.
	body = render(t, r, "/login", 200, PageLogin, LoginPage{Username: "jdupont", Error: MsgInvalidCredentials}).Body.String()
	if !regexp.MustCompile(`id="username"[^>]*value="jdupont"`).MatchString(body) {
		t.Errorf("username not pre-filled:\n%s", body)
	}
	if !regexp.MustCompile(`id="password"[^>]*autofocus`).MatchString(body) {
		t.Error("password should have autofocus when username is given")
	}
	if !strings.Contains(body, `aria-live="assertive"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Error("error area not accessible")
	}
	// Empty Action: no action attribute (posts to the current URL).
	if strings.Contains(body, "action=") {
		t.Error("empty Action should omit the action attribute")
	}
}

func TestSameMessageForUnknownUserAndWrongPassword(t *testing.T) {
	// The broker passes MsgInvalidCredentials for both; there is no other
	// key that would distinguish them.
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for key := range c[LangFR] {
		if strings.Contains(key, "unknown_user") || strings.Contains(key, "wrong_password") || strings.Contains(key, "no_such_user") {
			t.Errorf("catalogue key %q would let the page enumerate users", key)
		}
	}
	if got := c.text(LangFR, MsgInvalidCredentials); got != "Identifiant ou mot de passe incorrect." {
		t.Errorf("fr invalid_credentials = %q", got)
	}
}

func TestAppNameIsEscaped(t *testing.T) {
	r := newTestRenderer(t)
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	for _, tc := range []struct {
		page string
		data any
	}{
		{PageLogin, LoginPage{App: evil, Username: evil}},
		{PageLogoutConfirm, LogoutConfirmPage{App: evil}},
		{PageLoggedOut, LoggedOutPage{App: evil, ReturnURL: "https://a.example/"}},
		{PageError, ErrorPage{MessageKey: MsgAccessDenied, Ref: evil}},
	} {
		body := render(t, r, "/x?q="+`%3Cscript%3E`, 200, tc.page, tc.data).Body.String()
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
			t.Errorf("%s: unescaped markup:\n%s", tc.page, body)
		}
		if tc.page == PageLogin && !strings.Contains(body, "Connexion à &lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: escaped App name not shown:\n%s", tc.page, body)
		}
	}
}

func TestDangerousURLsAreNeutralised(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/", 200, PageLoggedOut, LoggedOutPage{ReturnURL: "javascript:alert(1)"}).Body.String()
	if strings.Contains(body, "javascript:") {
		t.Errorf("javascript: URL rendered:\n%s", body)
	}
	body = render(t, r, "/", 200, PageLogin, LoginPage{Action: "javascript:alert(1)"}).Body.String()
	if strings.Contains(body, "javascript:") {
		t.Errorf("javascript: action rendered:\n%s", body)
	}
}

var (
	rawKey     = regexp.MustCompile(`\bui\.[a-z_]+\.[a-z_.]+|\b[a-z]+_[a-z_]+\.(title|next)\b`)
	verb       = regexp.MustCompile(`%(\[[0-9]+\][a-z]|%)`)
	anyVerb    = regexp.MustCompile(`%.`)
	scriptTag  = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	styleAttr  = regexp.MustCompile(`(?i)\sstyle\s*=`)
	styleTag   = regexp.MustCompile(`(?i)<style\b`)
	eventAttr  = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	jsURL      = regexp.MustCompile(`(?i)javascript:`)
	srcAttr    = regexp.MustCompile(`(?i)\ssrc\s*=`)
	extAsset   = regexp.MustCompile(`(?i)(href|src)="(https?:)?//`)
	returnHost = "https://dpi.example.fr/"
)

func TestNoInlineScriptOrStyle(t *testing.T) {
	r := newTestRenderer(t)
	for _, tc := range pageCases() {
		for _, lang := range supportedLangs {
			body := render(t, r, "/?lang="+lang, tc.status, tc.page, tc.data).Body.String()
			for _, tag := range scriptTag.FindAllString(body, -1) {
				if !srcAttr.MatchString(tag) {
					t.Errorf("%s/%s: inline script %q", tc.name, lang, tag)
				}
			}
			for name, re := range map[string]*regexp.Regexp{"style attribute": styleAttr, "<style>": styleTag, "event handler": eventAttr, "javascript: URL": jsURL} {
				if re.MatchString(body) {
					t.Errorf("%s/%s: %s found", tc.name, lang, name)
				}
			}
			for _, m := range extAsset.FindAllString(body, -1) {
				if !strings.Contains(returnHost, strings.TrimPrefix(strings.TrimPrefix(m, `href="`), `src="`)) {
					t.Errorf("%s/%s: external asset %q", tc.name, lang, m)
				}
			}
		}
	}
	// The stylesheet is linked, versioned, and the only style source.
	body := render(t, r, "/", 200, PageLogin, LoginPage{}).Body.String()
	if !regexp.MustCompile(`<link rel="stylesheet" href="/static/garde\.css\?v=[0-9a-f]{16}">`).MatchString(body) {
		t.Errorf("stylesheet link missing:\n%s", body)
	}
}

func TestTemplateFailureIsCleanServerError(t *testing.T) {
	r := newTestRenderer(t)
	// Wrong view model type: a clean 500 error page with a reference.
	w := render(t, r, "/?lang=fr", 200, PageLogin, ErrorPage{})
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	body := w.Body.String()
	if !strings.Contains(body, "Erreur du service") || !strings.Contains(body, `class="ref-id"`) {
		t.Errorf("not a clean error page:\n%s", body)
	}
	if strings.Contains(body, "LoginPage") || strings.Contains(body, "wrong view model") {
		t.Errorf("internal detail leaked:\n%s", body)
	}
	// Unknown page.
	if w := render(t, r, "/", 200, "nope", nil); w.Code != 500 || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("unknown page: status %d", w.Code)
	}
	// Unknown message key: generic text, never the raw key.
	body = render(t, r, "/?lang=en", 200, PageLogin, LoginPage{Error: "no_such_key"}).Body.String()
	if strings.Contains(body, "no_such_key") || !strings.Contains(body, "An internal error occurred.") {
		t.Errorf("unknown key handling:\n%s", body)
	}
	body = render(t, r, "/?lang=en", 400, PageError, ErrorPage{MessageKey: "no_such_key"}).Body.String()
	if strings.Contains(body, "no_such_key") || !strings.Contains(body, "Service error") {
		t.Errorf("unknown key handling:\n%s", body)
	}
}

func TestTranslationsComplete(t *testing.T) {
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range supportedLangs {
		for key := range c[DefaultLang] {
			if v, ok := c[lang][key]; !ok || strings.TrimSpace(v) == "" {
				t.Errorf("%s: key %q missing or empty", lang, key)
			}
		}
		for key := range c[lang] {
			if !c.has(key) {
				t.Errorf("%s: key %q not in %s", lang, key, DefaultLang)
			}
		}
		for _, key := range MessageKeys() {
			if _, ok := c[lang][key]; !ok {
				t.Errorf("%s: message key %q missing", lang, key)
			}
		}
		for _, key := range errorMessageKeys() {
			for _, sfx := range []string{".title", ".next"} {
				if _, ok := c[lang][key+sfx]; !ok {
					t.Errorf("%s: %q missing", lang, key+sfx)
				}
			}
		}
	}
	// Translations differ where they should: a copied French string in the
	// English file is a missed translation.
	for key, fr := range c[LangFR] {
		// Language names, and texts that are only a verb (filled with
		// text already in the request's language), are the same in both.
		if strings.HasPrefix(key, "ui.lang.") || !strings.ContainsFunc(fr, unicode.IsLetter) || regexp.MustCompile(`^%\[\d\]s$`).MatchString(fr) {
			continue
		}
		if c[LangEN][key] == fr {
			t.Errorf("en %q is identical to fr %q", key, fr)
		}
	}
}

func TestTemplatesUseOnlyKnownKeys(t *testing.T) {
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRenderer(t)
	seen := 0
	for page, tmpl := range r.pages {
		keys := templateKeys(tmpl)
		if len(keys) == 0 {
			t.Errorf("%s: no translation keys found (walker broken?)", page)
		}
		for _, k := range keys {
			seen++
			if !c.has(k) {
				t.Errorf("%s: unknown key %q", page, k)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no keys seen")
	}
	// The walker must catch a bad key, nested in if/with/range.
	bad, err := r.pages[PageLogin].Clone()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.New("extra").Parse(`{{if .Lang}}{{with .Page}}{{$.T "ui.does_not_exist"}}{{end}}{{end}}`); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range templateKeys(bad) {
		found = found || k == "ui.does_not_exist"
	}
	if !found {
		t.Error("walker missed a nested key")
	}
}

func TestStaticHandler(t *testing.T) {
	r := newTestRenderer(t)
	h := StaticHandler()
	get := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w
	}
	w := get(r.css)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Fatalf("css: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if !strings.Contains(w.Header().Get("Cache-Control"), "max-age=31536000") {
		t.Errorf("versioned css Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	if w := get("/static/garde.css"); w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned css Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	if w := get("/static/garde.css?v=old"); w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	if w := get(r.icon); w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" {
		t.Errorf("icon: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/../render.go", "/other/garde.css"} {
		if w := get(p); w.Code != 404 {
			t.Errorf("%s: status %d, want 404", p, w.Code)
		}
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, r.css, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	// ETag revalidation.
	req := httptest.NewRequest(http.MethodGet, "/static/garde.css", nil)
	req.Header.Set("If-None-Match", get("/static/garde.css").Header().Get("ETag"))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	// The CSS itself has no @import of external resources.
	css := get(r.css).Body.Bytes()
	if bytes.Contains(css, []byte("@import")) || bytes.Contains(css, []byte("url(")) {
		t.Error("stylesheet loads external resources")
	}
}

func TestArgsNeverBreakText(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/?lang=en", 429, PageThrottled, ErrorPage{Args: []any{5, "x"}}).Body.String()
	if strings.Contains(body, "%!") {
		t.Errorf("surplus args leaked into the page:\n%s", body)
	}
}

func TestTranslationVerbs(t *testing.T) {
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for key, fr := range c[LangFR] {
		en := c[LangEN][key]
		for _, s := range []string{fr, en} {
			// Every verb has an explicit index, so translations may reorder.
			if n, m := len(anyVerb.FindAllString(s, -1)), len(verb.FindAllString(s, -1)); n != m {
				t.Errorf("%q: %q uses a verb without an explicit index", key, s)
			}
		}
		a, b := verb.FindAllString(fr, -1), verb.FindAllString(en, -1)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("%q: fr verbs %v, en verbs %v", key, a, b)
		}
	}
}
