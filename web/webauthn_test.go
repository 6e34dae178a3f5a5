package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	testKeyDate = time.Date(2026, 11, 30, 14, 5, 0, 0, time.UTC)
	testKeyUsed = time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
)

func testKeys() []KeyView {
	return []KeyView{
		{ID: "AAECAw", Name: "Clé USB bleue", Model: "YubiKey 5 NFC", Kind: KeyKindHardware, Discoverable: true, CreatedAt: testKeyDate, LastUsedAt: testKeyUsed},
		{ID: "BAUGBw", Name: "Téléphone", Model: "", Kind: KeyKindSynced, Discoverable: true, CreatedAt: testKeyDate},
		{ID: "CAkKCw", Name: "Vieille clé", Model: "Feitian ePass", Kind: KeyKindHardware, Flagged: true, CreatedAt: testKeyDate, LastUsedAt: testKeyUsed},
	}
}

func passkeyLogin() LoginPage {
	return LoginPage{
		App: "DPI Urgences", FlowID: "flow-123", StepToken: "step-456", CSRFToken: "tok-789", Action: "/login",
		Passkeys: true, PasskeyBeginURL: "/webauthn/login/begin", PasskeyFinishURL: "/webauthn/login/finish",
	}
}

func secondFactor() SecondFactorPage {
	return SecondFactorPage{
		App: "DPI Urgences", FlowID: "flow-123", StepToken: "step-2fa", CSRFToken: "tok-2fa",
		BeginURL: "/webauthn/2fa/begin", FinishURL: "/webauthn/2fa/finish",
	}
}

func keysPage(canEnroll bool) KeysPage {
	return KeysPage{
		Person: "jdupont", Keys: testKeys(), CanEnroll: canEnroll, CSRFToken: "tok-keys",
		RegisterBeginURL: "/keys/register/begin", RegisterFinishURL: "/keys/register/finish",
		RenameAction: "/keys/rename", DeleteAction: "/keys/delete", CodeAction: "/keys/code",
	}
}

// webauthnPageCases are added to pageCases, so every generic page test
// (both languages, no raw key, no inline script or style, ...) covers them.
func webauthnPageCases() []pageCase {
	return []pageCase{
		{
			name: "login-passkeys", page: PageLogin, status: 200, data: passkeyLogin(),
			want: map[string][]string{
				"fr": {"Connexion à DPI Urgences", ">Clé de sécurité ou passkey</h2>", ">Se connecter avec une clé</button>", "nécessitent JavaScript", "Identifiant et mot de passe"},
				"en": {"Sign in to DPI Urgences", ">Security key or passkey</h2>", ">Sign in with a key</button>", "need JavaScript", "Username and password"},
			},
		},
		{
			name: "login_key", page: PageSecondFactor, status: 200, data: secondFactor(),
			want: map[string][]string{
				"fr": {"Confirmez avec votre clé de sécurité", "Pour accéder à DPI Urgences", ">Utiliser ma clé de sécurité</button>", `href="/logout"`, "Annuler et me déconnecter", "Touchez la clé"},
				"en": {"Confirm with your security key", "To open DPI Urgences", ">Use my security key</button>", `href="/logout"`, "Cancel and sign out", "Touch the key"},
			},
		},
		{
			name: "login_key-error", page: PageSecondFactor, status: 403,
			data: SecondFactorPage{FlowID: "f", StepToken: "s", CSRFToken: "c", BeginURL: "/b", FinishURL: "/f", Error: MsgWebAuthnNoCredential, CanEnrollURL: "/keys"},
			want: map[string][]string{
				"fr": {"Aucune clé enregistrée pour ce compte.", "Erreur\u00a0:", `href="/keys"`, "Pas encore de clé\u00a0? Enregistrer une clé"},
				"en": {"No key is registered for this account.", "Error:", `href="/keys"`, "No key yet? Register a key"},
			},
		},
		{
			name: "keys", page: PageKeys, status: 200, data: keysPage(true),
			want: map[string][]string{
				"fr": {"Mes clés de sécurité", "Compte\u00a0: jdupont", "Clés enregistrées pour votre compte", ">Nom</th>", ">Modèle</th>", ">Type</th>", ">Ajoutée le</th>", ">Dernière utilisation</th>",
					"Clé matérielle", "Passkey synchronisée", "Modèle inconnu", "Jamais", "30/11/2026 14:05", "01/12/2026 08:30", "Clone possible — bloquée",
					"Renommer", "Retirer", "Ajouter une clé", ">Nom de la clé</label>", ">Enregistrer la clé</button>", "Connexion sans identifiant"},
				"en": {"My security keys", "Account: jdupont", "Keys registered for your account", ">Name</th>", ">Model</th>", ">Kind</th>", ">Added</th>", ">Last used</th>",
					"Hardware key", "Synced passkey", "Unknown model", "Never", "30 Nov 2026 14:05", "1 Dec 2026 08:30", "Possible clone — blocked",
					"Rename", "Remove", "Add a key", ">Name of the key</label>", ">Register the key</button>", "Sign-in without username"},
			},
		},
		{
			name: "keys-no-enroll", page: PageKeys, status: 200,
			data: KeysPage{Person: "jdupont", CSRFToken: "tok-keys", CodeAction: "/keys/code", Error: MsgEnrollmentCodeInvalid},
			want: map[string][]string{
				"fr": {"Aucune clé n&#39;est enregistrée pour votre compte.", "Pour enregistrer une clé, connectez-vous d&#39;abord avec une clé existante, votre carte CPS ou Pro Santé Connect, ou saisissez un code d&#39;enrôlement fourni par le support.",
					"Code d&#39;enrôlement", ">Code fourni par le support</label>", ">Valider le code</button>", "Ce code d&#39;enrôlement n&#39;est pas valable."},
				"en": {"No key is registered for your account.", "To register a key, first sign in with an existing key", "Enrollment code", ">Code given by the helpdesk</label>", ">Submit the code</button>", "This enrollment code is not valid."},
			},
		},
		{
			name: "keys-message", page: PageKeys, status: 200,
			data: KeysPage{Keys: testKeys()[:1], CSRFToken: "t", Message: MsgKeyRegistered, EnrollHint: MsgEnrollmentGrace},
			want: map[string][]string{
				"fr": {"Confirmation\u00a0:", "La clé a été enregistrée.", `role="status"`, "Période de transition"},
				"en": {"Done:", "The key has been registered.", `role="status"`, "Transition period"},
			},
		},
		{
			name: "key_remove_confirm", page: PageKeyRemoveConfirm, status: 200,
			data: KeyRemoveConfirmPage{Key: testKeys()[0], Last: true, CSRFToken: "tok-rm", DeleteAction: "/keys/delete", CancelURL: "/keys"},
			want: map[string][]string{
				"fr": {"Retirer la clé «\u00a0Clé USB bleue\u00a0»\u00a0?", "YubiKey 5 NFC", "Clé matérielle", "30/11/2026 14:05", "C&#39;est votre dernière clé", ">Oui, retirer la clé</button>", ">Annuler</a>"},
				"en": {"Remove the key “Clé USB bleue”?", "YubiKey 5 NFC", "Hardware key", "30 Nov 2026 14:05", "This is your last key", ">Yes, remove the key</button>", ">Cancel</a>"},
			},
		},
	}
}

func newUTCRenderer(t *testing.T) *Renderer {
	t.Helper()
	r := newTestRenderer(t)
	WithTimeZone(time.UTC)(r)
	return r
}

var (
	moduleTag = regexp.MustCompile(`<script type="module" src="/static/webauthn\.js\?v=[0-9a-f]{16}"></script>`)
	msgAttr   = regexp.MustCompile(`data-msg-([a-z]+)="([^"]*)"`)
)

func TestWebAuthnScriptOnlyWhereNeeded(t *testing.T) {
	r := newUTCRenderer(t)
	want := map[string]bool{"login-passkeys": true, "login_key": true, "login_key-error": true, "keys": true}
	for _, tc := range pageCases() {
		for _, lang := range supportedLangs {
			body := render(t, r, "/?lang="+lang, tc.status, tc.page, tc.data).Body.String()
			n := len(scriptTag.FindAllString(body, -1))
			switch {
			case want[tc.name] && (n != 1 || !moduleTag.MatchString(body)):
				t.Errorf("%s/%s: want exactly one versioned module script, got %d:\n%s", tc.name, lang, n, body)
			case !want[tc.name] && n != 0:
				t.Errorf("%s/%s: unexpected script tag", tc.name, lang)
			}
			// Pages with WebAuthn controls carry the status region and its
			// texts; the others none of it.
			hasControls := strings.Contains(body, "data-webauthn=")
			if hasControls != want[tc.name] {
				t.Errorf("%s/%s: data-webauthn present = %v", tc.name, lang, hasControls)
			}
			if !want[tc.name] {
				continue
			}
			if strings.Count(body, "data-webauthn-status") != 1 || !regexp.MustCompile(`data-webauthn-status role="alert" aria-live="assertive"`).MatchString(body) {
				t.Errorf("%s/%s: want one accessible status region", tc.name, lang)
			}
			if !strings.Contains(body, "<noscript>") {
				t.Errorf("%s/%s: no <noscript> explanation", tc.name, lang)
			}
			attrs := map[string]string{}
			for _, m := range msgAttr.FindAllStringSubmatch(body, -1) {
				attrs[m[1]] = m[2]
			}
			for _, k := range []string{"prefix", "cancelled", "exists", "security", "unsupported", "failed"} {
				if attrs[k] == "" {
					t.Errorf("%s/%s: data-msg-%s missing or empty", tc.name, lang, k)
				}
			}
			c := r.cat
			if got, wantText := attrs["cancelled"], htmlAttrEscape(c.text(lang, MsgWebAuthnCancelled)); got != wantText {
				t.Errorf("%s/%s: data-msg-cancelled = %q, want %q", tc.name, lang, got, wantText)
			}
		}
	}
}

// htmlAttrEscape mirrors what html/template does to our texts in attributes.
func htmlAttrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", `"`, "&#34;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func TestLoginWithoutPasskeysUnchanged(t *testing.T) {
	r := newTestRenderer(t)
	plain := LoginPage{App: "DPI", FlowID: "f", StepToken: "s", CSRFToken: "c", Action: "/login"}
	withURLs := plain
	withURLs.PasskeyBeginURL, withURLs.PasskeyFinishURL = "/b", "/f"
	a := render(t, r, "/login", 200, PageLogin, plain).Body.String()
	b := render(t, r, "/login", 200, PageLogin, withURLs).Body.String()
	if a != b {
		t.Error("passkey URLs change the page although Passkeys is false")
	}
	for _, bad := range []string{"webauthn", "<script", "data-msg-", `id="login-form"`, "passkey", "<noscript"} {
		if strings.Contains(a, bad) {
			t.Errorf("page without passkeys contains %q:\n%s", bad, a)
		}
	}
	if !strings.Contains(a, `autocomplete="username" autocapitalize`) {
		t.Error("username autocomplete changed")
	}
	if strings.Count(a, "<section") != 1 {
		t.Error("want only the password method")
	}
}

func TestLoginWithPasskeys(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/login", 200, PageLogin, passkeyLogin()).Body.String()
	for _, s := range []string{
		`id="username" name="username" autocomplete="username webauthn"`,
		`class="form" id="login-form"`,
		`<div hidden data-webauthn="conditional" data-begin="/webauthn/login/begin" data-finish="/webauthn/login/finish"></div>`,
		`<button type="button" class="btn btn-secondary btn-key" form="login-form" data-webauthn="passwordless" data-begin="/webauthn/login/begin" data-finish="/webauthn/login/finish"`,
		`aria-labelledby="method-passkey-heading"`,
		// The password method still works on its own.
		`<button type="submit" class="btn btn-primary">`, `id="password" name="password" autocomplete="current-password"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %q in:\n%s", s, body)
		}
	}
	// The conditional element sits inside the login form (its hidden
	// fields), the passwordless button outside it but bound by form=.
	form := between(body, `id="login-form">`, "</form>")
	for _, f := range []string{`data-webauthn="conditional"`, `name="csrf_token" value="tok-789"`, `name="flow_id" value="flow-123"`, `name="step" value="step-456"`} {
		if !strings.Contains(form, f) {
			t.Errorf("login form lacks %q", f)
		}
	}
	if strings.Count(body, "autofocus") != 1 {
		t.Errorf("want exactly one autofocus, got %d", strings.Count(body, "autofocus"))
	}
	// No error: the status region is empty, no pre-filled alert.
	if !strings.Contains(body, `role="alert" aria-live="assertive" data-msg-prefix=`) || strings.Contains(body, `class="alert alert-error"`) {
		t.Errorf("status region:\n%s", body)
	}
}

func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(after, to)
	return in
}

func TestSecondFactorPage(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/2fa?lang=fr", 200, PageSecondFactor, secondFactor()).Body.String()
	form := between(body, `<form method="post" class="form key-form">`, "</form>")
	for _, s := range []string{
		`name="csrf_token" value="tok-2fa"`, `name="flow_id" value="flow-123"`, `name="step" value="step-2fa"`,
		`data-webauthn="login" data-begin="/webauthn/2fa/begin" data-finish="/webauthn/2fa/finish"`,
		`type="button"`,
	} {
		if !strings.Contains(form, s) {
			t.Errorf("form lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(form, `type="submit"`) || strings.Contains(form, `type="text"`) {
		t.Error("the key form must not be submittable without the script")
	}
	if strings.Contains(body, `class="alert alert-error"`) {
		t.Error("error shown without an error")
	}
	if strings.Contains(body, "Enregistrer une clé") {
		t.Error("enroll link shown without CanEnrollURL")
	}
	// Error pre-filled in the status region (which the script replaces).
	body = render(t, r, "/2fa?lang=fr", 403, PageSecondFactor, SecondFactorPage{Error: MsgWebAuthnCloned}).Body.String()
	region := between(body, "data-webauthn-status", "</div></div>")
	if !strings.Contains(region, "Cette clé a été bloquée par sécurité\u00a0: contactez le support.") {
		t.Errorf("error not in the status region:\n%s", body)
	}
	// Unknown key: generic text, never the raw key.
	body = render(t, r, "/2fa?lang=en", 403, PageSecondFactor, SecondFactorPage{Error: "webauthn_nope"}).Body.String()
	if strings.Contains(body, "webauthn_nope") || !strings.Contains(body, "An internal error occurred.") {
		t.Errorf("unknown key:\n%s", body)
	}
}

func TestKeysPageForms(t *testing.T) {
	r := newUTCRenderer(t)
	body := render(t, r, "/keys?lang=fr", 200, PageKeys, keysPage(true)).Body.String()

	// Accessible table.
	for _, s := range []string{
		`<table class="keys">`, `<caption id="keys-caption">`, `role="region" aria-labelledby="keys-caption" tabindex="0"`,
		`<th scope="col">Nom</th>`, `<th scope="row"><span class="key-name">Clé USB bleue</span></th>`,
		`<time datetime="2026-11-30T14:05:00Z">30/11/2026 14:05</time>`,
		`<span class="badge badge-danger">Clone possible — bloquée</span>`, `class="flagged"`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %q in:\n%s", s, body)
		}
	}
	if n := strings.Count(body, `<tr`); n != 4 {
		t.Errorf("want 1 header + 3 key rows, got %d", n)
	}
	if n := strings.Count(body, "badge-danger"); n != 1 {
		t.Errorf("want one flagged badge, got %d", n)
	}

	// Per row: a rename form (csrf_token, id, name) and a delete form
	// (csrf_token, id; the confirmation is a separate page).
	rename := regexp.MustCompile(`(?s)<form method="post" action="/keys/rename" class="form form-inline">(.*?)</form>`).FindAllStringSubmatch(body, -1)
	remove := regexp.MustCompile(`(?s)<form method="post" action="/keys/delete" class="form-remove">(.*?)</form>`).FindAllStringSubmatch(body, -1)
	if len(rename) != 3 || len(remove) != 3 {
		t.Fatalf("want 3 rename and 3 delete forms, got %d and %d", len(rename), len(remove))
	}
	for i, k := range testKeys() {
		for _, s := range []string{`name="csrf_token" value="tok-keys"`, `name="id" value="` + k.ID + `"`, `name="name" value="` + k.Name + `"`, `<label for="rename-`} {
			if !strings.Contains(rename[i][1], s) {
				t.Errorf("rename form %d lacks %q:\n%s", i, s, rename[i][1])
			}
		}
		for _, s := range []string{`name="csrf_token" value="tok-keys"`, `name="id" value="` + k.ID + `"`, `type="submit"`, `<span class="visually-hidden"> la clé «` + "\u00a0" + k.Name} {
			if !strings.Contains(remove[i][1], s) {
				t.Errorf("delete form %d lacks %q:\n%s", i, s, remove[i][1])
			}
		}
		if strings.Contains(remove[i][1], `name="confirm"`) {
			t.Error("the delete form must not confirm by itself")
		}
	}
	// Labels point at existing, unique ids.
	ids := map[string]int{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids[m[1]]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if ids[m[1]] != 1 {
			t.Errorf("label for=%q has no field", m[1])
		}
	}
	// No JS confirm, no inline handlers.
	if strings.Contains(body, "confirm(") || eventAttr.MatchString(body) {
		t.Error("client-side confirmation found")
	}

	// Register section: hidden until the script reveals it, with the
	// name field and the button.
	reg := between(body, `<form method="post" class="form" hidden data-webauthn-reveal>`, "</form>")
	for _, s := range []string{`name="csrf_token" value="tok-keys"`, `id="key-name" name="name"`, `required`,
		`data-webauthn="register" data-begin="/keys/register/begin" data-finish="/keys/register/finish"`} {
		if !strings.Contains(reg, s) {
			t.Errorf("register form lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, `name="code"`) {
		t.Error("code form shown although enrollment is allowed")
	}

	// Not allowed to enroll: hint and code form, no register button.
	body = render(t, r, "/keys?lang=fr", 200, PageKeys, keysPage(false)).Body.String()
	code := between(body, `<form method="post" action="/keys/code" class="form">`, "</form>")
	for _, s := range []string{`name="csrf_token" value="tok-keys"`, `name="code" autocomplete="one-time-code"`, `required`, `type="submit"`} {
		if !strings.Contains(code, s) {
			t.Errorf("code form lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, "data-webauthn") || strings.Contains(body, "Ajouter une clé") {
		t.Error("register section shown although enrollment is not allowed")
	}
	if !strings.Contains(body, "saisissez un code d&#39;enrôlement fourni par le support") {
		t.Error("default enroll hint missing")
	}
	p := keysPage(false)
	p.EnrollHint = MsgEnrollmentGrace
	body = render(t, r, "/keys?lang=en", 200, PageKeys, p).Body.String()
	if !strings.Contains(body, "Transition period") {
		t.Error("EnrollHint not shown")
	}
}

func TestKeysPageInFlow(t *testing.T) {
	r := newTestRenderer(t)
	p := keysPage(true)
	p.FlowID, p.StepToken, p.Message = "flow-9", "step-enroll", MsgEnrollmentGrace
	body := render(t, r, "/keys?lang=fr", 200, PageKeys, p).Body.String()
	reg := between(body, `<form method="post" class="form" hidden data-webauthn-reveal>`, "</form>")
	for _, s := range []string{`name="flow_id" value="flow-9"`, `name="step" value="step-enroll"`, `name="csrf_token" value="tok-keys"`} {
		if !strings.Contains(reg, s) {
			t.Errorf("register form lacks %q", s)
		}
	}
	if n := strings.Count(body, `name="flow_id" value="flow-9"`); n != 7 { // 3 rename + 3 delete + register
		t.Errorf("flow_id in %d forms, want 7", n)
	}
	// The grace explanation is a notice, not a success.
	if !strings.Contains(body, "Important\u00a0:</strong> Période de transition") || strings.Contains(body, "alert-success") {
		t.Errorf("grace message:\n%s", body)
	}
	p.CanEnroll = false
	body = render(t, r, "/keys?lang=fr", 200, PageKeys, p).Body.String()
	code := between(body, `<form method="post" action="/keys/code" class="form">`, "</form>")
	if !strings.Contains(code, `name="flow_id" value="flow-9"`) || !strings.Contains(code, `name="step" value="step-enroll"`) {
		t.Errorf("code form lacks the flow fields:\n%s", code)
	}
	// Outside a flow: no flow fields at all.
	body = render(t, r, "/keys?lang=fr", 200, PageKeys, keysPage(true)).Body.String()
	if strings.Contains(body, `name="flow_id"`) || strings.Contains(body, `name="step"`) {
		t.Error("flow fields outside a flow")
	}
}

func TestKeyRemoveConfirmPage(t *testing.T) {
	r := newUTCRenderer(t)
	body := render(t, r, "/keys/delete?lang=fr", 200, PageKeyRemoveConfirm, KeyRemoveConfirmPage{
		Key: testKeys()[1], CSRFToken: "tok-rm", DeleteAction: "/keys/delete", CancelURL: "/keys",
	}).Body.String()
	form := between(body, `<form method="post" action="/keys/delete" class="form">`, "</form>")
	for _, s := range []string{`name="csrf_token" value="tok-rm"`, `name="id" value="BAUGBw"`, `name="confirm" value="yes"`, `href="/keys"`} {
		if !strings.Contains(form, s) {
			t.Errorf("confirm form lacks %q:\n%s", s, body)
		}
	}
	for _, s := range []string{"Passkey synchronisée", "Modèle inconnu", "Jamais"} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %q", s)
		}
	}
	if strings.Contains(body, "dernière clé") {
		t.Error("last-key warning shown although Last is false")
	}
}

func TestDatesFollowLanguageAndZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	r := newTestRenderer(t)
	WithTimeZone(paris)(r)
	p := KeysPage{Keys: []KeyView{{ID: "x", Name: "k", Kind: KeyKindHardware, CreatedAt: time.Date(2026, 11, 30, 13, 5, 0, 0, time.UTC)}}, CanEnroll: true}
	if body := render(t, r, "/?lang=fr", 200, PageKeys, p).Body.String(); !strings.Contains(body, `<time datetime="2026-11-30T14:05:00&#43;01:00">30/11/2026 14:05</time>`) {
		t.Errorf("fr date:\n%s", body)
	}
	if body := render(t, r, "/?lang=en", 200, PageKeys, p).Body.String(); !strings.Contains(body, ">30 Nov 2026 14:05</time>") {
		t.Errorf("en date:\n%s", body)
	}
}

func TestWebAuthnPagesEscape(t *testing.T) {
	r := newTestRenderer(t)
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	k := KeyView{ID: evil, Name: evil, Model: evil, Kind: evil, CreatedAt: testKeyDate}
	for _, tc := range []struct {
		page string
		data any
	}{
		{PageLogin, LoginPage{App: evil, Passkeys: true, PasskeyBeginURL: evil, PasskeyFinishURL: "javascript:alert(1)"}},
		{PageSecondFactor, SecondFactorPage{App: evil, FlowID: evil, BeginURL: evil, FinishURL: "javascript:alert(1)", CanEnrollURL: "javascript:alert(1)"}},
		{PageKeys, KeysPage{Person: evil, Keys: []KeyView{k}, CanEnroll: true, RegisterBeginURL: "javascript:alert(1)", RenameAction: "javascript:alert(1)"}},
		{PageKeys, KeysPage{Person: evil, CodeAction: "javascript:alert(1)"}},
		{PageKeyRemoveConfirm, KeyRemoveConfirmPage{Key: k, DeleteAction: "javascript:alert(1)", CancelURL: "javascript:alert(1)"}},
	} {
		body := render(t, r, "/", 200, tc.page, tc.data).Body.String()
		body = moduleTag.ReplaceAllString(body, "")
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") || jsURL.MatchString(body) {
			t.Errorf("%s: unescaped markup or javascript: URL:\n%s", tc.page, body)
		}
	}
}

func TestWrongViewModelForWebAuthnPages(t *testing.T) {
	r := newTestRenderer(t)
	for _, page := range []string{PageSecondFactor, PageKeys, PageKeyRemoveConfirm} {
		if w := render(t, r, "/", 200, page, LoginPage{}); w.Code != 500 {
			t.Errorf("%s with a LoginPage: status %d", page, w.Code)
		}
		ptr := map[string]any{PageSecondFactor: &SecondFactorPage{}, PageKeys: &KeysPage{}, PageKeyRemoveConfirm: &KeyRemoveConfirmPage{}}[page]
		if w := render(t, r, "/", 200, page, ptr); w.Code != 200 {
			t.Errorf("%s with a pointer: status %d", page, w.Code)
		}
	}
}

func TestWebAuthnMessageKeys(t *testing.T) {
	c, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	keys := MessageKeys()
	for _, k := range []string{
		MsgWebAuthnCancelled, MsgWebAuthnExists, MsgWebAuthnSecurity, MsgWebAuthnUnsupported, MsgWebAuthnFailed,
		MsgWebAuthnNoCredential, MsgWebAuthnChallengeExpired, MsgWebAuthnWrongPerson, MsgWebAuthnNotAllowed,
		MsgWebAuthnCloned, MsgWebAuthnUVRequired, MsgSecondFactorRequired, MsgEnrollmentNotAllowed,
		MsgEnrollmentCodeInvalid, MsgKeyRemoveLastNeedsStrong,
	} {
		if !slices.Contains(errorMessageKeys(), k) {
			t.Errorf("%q is not an error message key", k)
		}
	}
	for _, k := range []string{MsgEnrollmentGrace, MsgKeyRegistered, MsgKeyRenamed, MsgKeyRemoved} {
		if !slices.Contains(keys, k) || slices.Contains(errorMessageKeys(), k) {
			t.Errorf("%q should be a notice key", k)
		}
	}
	for k, want := range map[string]string{
		MsgWebAuthnNoCredential:     "Aucune clé enregistrée pour ce compte.",
		MsgWebAuthnCloned:           "Cette clé a été bloquée par sécurité\u00a0: contactez le support.",
		MsgEnrollmentNotAllowed:     "Pour enregistrer une clé, connectez-vous d'abord avec une clé existante, votre carte CPS ou Pro Santé Connect, ou saisissez un code d'enrôlement fourni par le support.",
		MsgKeyRemoveLastNeedsStrong: "Pour retirer votre dernière clé, confirmez d'abord avec une clé ou votre carte.",
	} {
		if got := c.text(LangFR, k); got != want {
			t.Errorf("fr %s = %q, want %q", k, got, want)
		}
	}
	// Every webauthn error works on the error page too.
	r := newTestRenderer(t)
	for _, k := range errorMessageKeys() {
		for _, lang := range supportedLangs {
			body := render(t, r, "/?lang="+lang, 400, PageError, ErrorPage{MessageKey: k}).Body.String()
			if k := rawKey.FindString(body); k != "" {
				t.Errorf("raw key %q", k)
			}
		}
	}
}

func TestJSONReplies(t *testing.T) {
	r := newTestRenderer(t)
	req := httptest.NewRequest(http.MethodPost, "/webauthn/login/finish", nil)
	req.AddCookie(&http.Cookie{Name: LangCookie, Value: "en"})
	w := httptest.NewRecorder()
	r.JSONError(w, req, http.StatusForbidden, MsgWebAuthnCloned)
	if w.Code != 403 || w.Header().Get("Content-Type") != "application/json; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("JSONError: %d %v", w.Code, w.Header())
	}
	var e map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e["error"] != MsgWebAuthnCloned || e["message"] != "This key has been blocked for security: contact the helpdesk." {
		t.Errorf("JSONError body = %v", e)
	}
	w = httptest.NewRecorder()
	r.JSONError(w, httptest.NewRequest(http.MethodPost, "/", nil), 400, "no_such_key")
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] != MsgServerError || e["message"] != "Une erreur interne est survenue." {
		t.Errorf("unknown key: %s", w.Body)
	}

	req = httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Accept-Language", "en")
	if got := r.Message(req, MsgWebAuthnUVRequired); got != "The key must check your PIN or your fingerprint (biometrics)." {
		t.Errorf("Message = %q", got)
	}
	if got := r.Message(httptest.NewRequest(http.MethodPost, "/", nil), "nope"); got != "Une erreur interne est survenue." {
		t.Errorf("Message(unknown) = %q", got)
	}

	w = httptest.NewRecorder()
	JSONRedirect(w, "https://dpi.example.fr/cb?code=x&state=y")
	if w.Code != 200 || w.Body.String() != `{"redirect":"https://dpi.example.fr/cb?code=x\u0026state=y"}` {
		t.Errorf("JSONRedirect: %d %s", w.Code, w.Body)
	}
}

func TestDecodeWebAuthnRequest(t *testing.T) {
	post := func(ct, body string) (WebAuthnRequest, error) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		return DecodeWebAuthnRequest(httptest.NewRecorder(), req)
	}
	got, err := post("application/json", `{"flow_id":"f","step":"s","csrf_token":"c","name":"Clé","credential":{"id":"AA","type":"public-key"}}`)
	if err != nil || got.FlowID != "f" || got.StepToken != "s" || got.CSRFToken != "c" || got.Name != "Clé" || string(got.Credential) != `{"id":"AA","type":"public-key"}` {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := post("application/json; charset=utf-8", `{"flow_id":"f"}`); err != nil {
		t.Errorf("charset parameter refused: %v", err)
	}
	for name, tc := range map[string][2]string{
		"form":     {"application/x-www-form-urlencoded", "flow_id=f"},
		"no type":  {"", `{}`},
		"text":     {"text/plain", `{}`},
		"bad json": {"application/json", `{"flow_id":`},
		"trailing": {"application/json", `{} {}`},
		"too big":  {"application/json", `{"name":"` + strings.Repeat("a", MaxWebAuthnRequestBytes) + `"}`},
	} {
		if _, err := post(tc[0], tc[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWebAuthnScriptServed(t *testing.T) {
	r := newTestRenderer(t)
	w := httptest.NewRecorder()
	StaticHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, r.js, nil))
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("webauthn.js: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	js := w.Body.String()
	// No text for people in the script: the messages come from the page.
	for _, s := range []string{"Erreur", "annulée", "cancelled or", "Security key"} {
		if strings.Contains(js, s) {
			t.Errorf("script carries text %q", s)
		}
	}
	// Nothing that a strict CSP or the module's contract forbids.
	for _, s := range []string{"eval(", "new Function", "innerHTML", "document.write", "confirm(", "alert("} {
		if strings.Contains(js, s) {
			t.Errorf("script uses %q", s)
		}
	}
	// Every data-msg-* the script can ask for is rendered by the pages.
	asked := map[string]bool{"prefix": true}
	mf := between(js, "export function messageFor", "\n}\n")
	for _, m := range regexp.MustCompile(`'([a-z]+)'`).FindAllStringSubmatch(mf, -1) {
		if !slices.Contains([]string{"register", "login", "passwordless", "conditional"}, m[1]) {
			asked[m[1]] = true
		}
	}
	for _, m := range regexp.MustCompile(`msgText\([^)]*'([a-z]+)'\)`).FindAllStringSubmatch(js, -1) {
		asked[m[1]] = true
	}
	if len(asked) != 6 {
		t.Fatalf("found only %v in the script", asked)
	}
	body := render(t, r, "/", 200, PageSecondFactor, secondFactor()).Body.String()
	for k := range asked {
		if !strings.Contains(body, "data-msg-"+k+`="`) {
			t.Errorf("script asks for data-msg-%s, which the pages do not render", k)
		}
	}
}

// TestWebAuthnScriptSyntax runs node --check on the module, and node on
// its pure helpers (base64url, option decoding, credential JSON, error
// mapping, redirect check). Skipped without node.
func TestWebAuthnScriptSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	script, err := filepath.Abs(filepath.Join("static", "webauthn.js"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", script).CombinedOutput(); err != nil {
		t.Fatalf("node --check: %v\n%s", err, out)
	}
	harness := `
import assert from 'node:assert/strict';
const m = await import(process.argv[2]);
const bytes = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
const enc = m.bufToB64url(bytes.buffer);
assert.equal(enc, 'AAEC-vv8_f7_');
assert.deepEqual(new Uint8Array(m.b64urlToBuf(enc)), bytes);
assert.deepEqual(new Uint8Array(m.b64urlToBuf('AAEC+vv8/f7/')), bytes); // plain base64 too
assert.deepEqual(new Uint8Array(m.b64urlToBuf('AQ')), new Uint8Array([1]));
assert.equal(m.bufToB64url(new Uint8Array([9, 1, 2]).subarray(1)), 'AQI');

const c = m.decodeCreationOptions({challenge: 'AQID', rp: {id: 'garde.example.fr', name: 'Garde'},
  user: {id: 'BAU', name: 'jdupont', displayName: 'J. Dupont'}, pubKeyCredParams: [{type: 'public-key', alg: -7}],
  excludeCredentials: [{type: 'public-key', id: 'Bgc', transports: ['usb']}]});
assert.ok(c.challenge instanceof ArrayBuffer && c.user.id instanceof ArrayBuffer && c.excludeCredentials[0].id instanceof ArrayBuffer);
assert.deepEqual(new Uint8Array(c.challenge), new Uint8Array([1, 2, 3]));
assert.equal(c.user.name, 'jdupont');
assert.deepEqual(c.excludeCredentials[0].transports, ['usb']);

const g = m.decodeRequestOptions({challenge: 'AQID', rpId: 'garde.example.fr', allowCredentials: [{type: 'public-key', id: 'CAk'}], userVerification: 'required'});
assert.deepEqual(new Uint8Array(g.allowCredentials[0].id), new Uint8Array([8, 9]));
assert.equal(g.userVerification, 'required');
assert.equal(m.decodeRequestOptions({challenge: 'AQID'}).allowCredentials, undefined);

const buf = (...b) => new Uint8Array(b).buffer;
const att = m.credentialToJSON({id: 'AQ', rawId: buf(1), type: 'public-key', authenticatorAttachment: 'cross-platform',
  getClientExtensionResults: () => ({credProps: {rk: true}}),
  response: {clientDataJSON: buf(2), attestationObject: buf(3), getTransports: () => ['usb', 'nfc'], getAuthenticatorData: () => buf(4)}});
assert.deepEqual(att, {id: 'AQ', rawId: 'AQ', type: 'public-key', authenticatorAttachment: 'cross-platform',
  clientExtensionResults: {credProps: {rk: true}},
  response: {clientDataJSON: 'Ag', attestationObject: 'Aw', transports: ['usb', 'nfc'], authenticatorData: 'BA'}});
const asr = m.credentialToJSON({id: 'AQ', rawId: buf(1), type: 'public-key', authenticatorAttachment: null,
  getClientExtensionResults: () => ({}),
  response: {clientDataJSON: buf(2), authenticatorData: buf(5), signature: buf(6), userHandle: null}});
assert.deepEqual(JSON.parse(JSON.stringify(asr)), {id: 'AQ', rawId: 'AQ', type: 'public-key', clientExtensionResults: {},
  response: {clientDataJSON: 'Ag', authenticatorData: 'BQ', signature: 'Bg', userHandle: null}});
assert.equal(m.credentialToJSON({toJSON: () => ({id: 'native'})}).id, 'native');
assert.equal(m.credentialToJSON({id: 'x', rawId: buf(1), type: 'public-key', toJSON() { throw new Error('broken'); },
  response: {clientDataJSON: buf(1), authenticatorData: buf(1), signature: buf(1), userHandle: buf(7)}}).response.userHandle, 'Bw');

const err = (name) => ({name});
assert.equal(m.messageFor(err('NotAllowedError'), 'login'), 'cancelled');
assert.equal(m.messageFor(err('AbortError'), 'conditional'), '');
assert.equal(m.messageFor(err('InvalidStateError'), 'register'), 'exists');
assert.equal(m.messageFor(err('SecurityError'), 'passwordless'), 'security');
assert.equal(m.messageFor(err('NotSupportedError'), 'register'), 'unsupported');
assert.equal(m.messageFor(new TypeError('Failed to fetch'), 'login'), 'failed');

assert.equal(m.safeRedirect('/keys?msg=1', 'https://garde.example.fr/keys'), 'https://garde.example.fr/keys?msg=1');
assert.equal(m.safeRedirect('https://dpi.example.fr/cb?code=x', 'https://garde.example.fr/'), 'https://dpi.example.fr/cb?code=x');
assert.equal(m.safeRedirect('javascript:alert(1)', 'https://garde.example.fr/'), '');
assert.equal(m.safeRedirect('data:text/html,x', 'https://garde.example.fr/'), '');
assert.equal(m.safeRedirect(undefined, 'https://garde.example.fr/x'), 'https://garde.example.fr/undefined');
assert.equal(m.sameOrigin('/webauthn/begin', 'https://garde.example.fr/login?flow=1'), 'https://garde.example.fr/webauthn/begin');
assert.equal(m.sameOrigin('https://evil.example/begin', 'https://garde.example.fr/login'), '');
assert.equal(m.sameOrigin('//evil.example/begin', 'https://garde.example.fr/login'), '');
assert.equal(m.sameOrigin('javascript:alert(1)', 'https://garde.example.fr/login'), '');
assert.equal(m.sameOrigin('', 'https://garde.example.fr/login'), '');
console.log('ok');
`
	cmd := exec.Command(node, "--input-type=module", "-", "file://"+filepath.ToSlash(script))
	cmd.Stdin = strings.NewReader(harness)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node harness: %v\n%s", err, out)
	}
}

// TestScreenshots writes the second-factor and keys pages, served with the
// real static handler, as PNGs in $GARDE_SCREENSHOT_DIR with headless
// Chromium, for a person to look at. Skipped unless that variable is set.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("GARDE_SCREENSHOT_DIR")
	if dir == "" {
		t.Skip("set GARDE_SCREENSHOT_DIR to take screenshots")
	}
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Skip("no chromium")
	}
	r := newUTCRenderer(t)
	pages := map[string]struct {
		page string
		data any
	}{
		"login_key":          {PageSecondFactor, SecondFactorPage{App: "DPI Urgences", FlowID: "f", StepToken: "s", CSRFToken: "c", BeginURL: "/b", FinishURL: "/f", Error: MsgWebAuthnChallengeExpired, CanEnrollURL: "/keys"}},
		"keys":               {PageKeys, func() KeysPage { p := keysPage(true); p.Message = MsgKeyRenamed; return p }()},
		"keys-no-enroll":     {PageKeys, func() KeysPage { p := keysPage(false); p.Keys = p.Keys[:1]; return p }()},
		"key_remove_confirm": {PageKeyRemoveConfirm, KeyRemoveConfirmPage{Key: testKeys()[0], Last: true, CSRFToken: "c", CancelURL: "/keys"}},
		"login":              {PageLogin, passkeyLogin()},
	}
	mux := http.NewServeMux()
	mux.Handle(StaticPrefix, StaticHandler())
	mux.HandleFunc("/page/{name}", func(w http.ResponseWriter, req *http.Request) {
		p, ok := pages[req.PathValue("name")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		r.Render(w, req, 200, p.page, p.data)
	})
	// The conditional request on the login page gets a clean JSON error.
	mux.HandleFunc("/webauthn/", func(w http.ResponseWriter, req *http.Request) {
		r.JSONError(w, req, 400, MsgWebAuthnChallengeExpired)
	})
	srv := httptest.NewServer(SecurityHeaders(LanguageSwitch(mux, nil), nil))
	defer srv.Close()
	for name := range pages {
		for _, lang := range supportedLangs {
			out := filepath.Join(dir, name+"-"+lang+".png")
			cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
				"--window-size=1280,1500", "--virtual-time-budget=2000", "--screenshot="+out, srv.URL+"/page/"+name+"?lang="+lang)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, b)
			}
			if st, err := os.Stat(out); err != nil || st.Size() == 0 {
				t.Errorf("%s: no screenshot", out)
			}
		}
	}
}
