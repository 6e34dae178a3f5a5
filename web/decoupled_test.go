package web

import (
	"regexp"
	"strings"
	"testing"
)

func decoupledLogin(channels ...string) LoginPage {
	return LoginPage{
		App: "DPI", FlowID: "flow-123", StepToken: "step-456", CSRFToken: "tok-789", Action: "/login",
		Options: []LoginOption{{Kind: "psc", Name: "Pro Santé Connect", URL: "/login/upstream?flow=flow-123",
			Decoupled: &DecoupledForm{Action: "/login/decoupled", Source: "psc", Channels: channels}}},
	}
}

var metaRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="([0-9]+)">`)

// TestLoginDecoupledForm: the PSC section carries the decoupled form with
// the flow's step and CSRF fields, a channel choice only when there are
// two, and the password form stays the page's first form action.
func TestLoginDecoupledForm(t *testing.T) {
	r := newTestRenderer(t)
	body := render(t, r, "/login?lang=fr", 200, PageLogin, decoupledLogin(ChannelCard, ChannelMobile)).Body.String()
	for _, s := range []string{
		"Recevoir la demande sur ma carte ou mon application e-CPS", ">Numéro RPPS</label>",
		`formaction="/login/decoupled"`, `name="source" value="psc"`, `name="national_id"`, `inputmode="numeric"`,
		`type="radio" name="channel" value="CARD" required checked`, `type="radio" name="channel" value="MOBILE" required>`,
		"Sur le lecteur de ma carte CPS", "Dans mon application e-CPS",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("login page lacks %q:\n%s", s, body)
		}
	}
	// Both forms carry the flow's fields: the decoupled form first.
	form := between(body, `<form method="post" class="form form-decoupled"`, "</form>")
	for _, s := range []string{`name="flow_id" value="flow-123"`, `name="step" value="step-456"`, `name="csrf_token" value="tok-789"`} {
		if !strings.Contains(form, s) {
			t.Errorf("decoupled form lacks %q:\n%s", s, form)
		}
	}
	if m := regexp.MustCompile(`<form[^>]*action="([^"]*)"`).FindStringSubmatch(body); m == nil || m[1] != "/login" {
		t.Errorf("first form action %v, want the password form's /login", m)
	}
	if metaRefresh.MatchString(body) {
		t.Error("the login page must not refresh itself")
	}

	one := render(t, r, "/login?lang=en", 200, PageLogin, decoupledLogin(ChannelMobile)).Body.String()
	if !strings.Contains(one, `<input type="hidden" name="channel" value="MOBILE">`) || strings.Contains(one, `type="radio"`) {
		t.Errorf("one channel: want a hidden field, no choice:\n%s", one)
	}
	if !strings.Contains(one, "Receive the request on my card or my e-CPS app") {
		t.Errorf("English form heading missing:\n%s", one)
	}

	// Without the option, the page is as before.
	plain := render(t, r, "/login", 200, PageLogin, LoginPage{FlowID: "f", Options: []LoginOption{{Kind: "psc", URL: "/x"}}}).Body.String()
	if strings.Contains(plain, "national_id") {
		t.Error("decoupled form shown without being offered")
	}
}

// TestDecoupledPage: the waiting page shows the code large, refreshes
// itself with a meta refresh in the head (no script), and offers cancel.
func TestDecoupledPage(t *testing.T) {
	r := newTestRenderer(t)
	for lang, want := range map[string][]string{
		"fr": {"Validez la connexion sur votre carte ou votre application e-CPS", "envoyée à votre application e-CPS", "affiche le code 42 avant de valider", "Annuler et revenir à la connexion"},
		"en": {"Approve the sign-in on your card or your e-CPS app", "sent to your e-CPS app", "shows the code 42 before approving", "Cancel and go back to sign-in"},
	} {
		w := render(t, r, "/login/decoupled?flow=f&lang="+lang, 200, PageDecoupled, &DecoupledPage{
			App: "DPI", BindingMessage: "42", Channel: ChannelMobile, RefreshSeconds: 3,
			RefreshURL: "/login/decoupled?flow=f", CancelURL: "/login/decoupled?flow=f&cancel=x",
		})
		body := w.Body.String()
		head := between(body, "<head>", "</head>")
		if m := metaRefresh.FindStringSubmatch(head); m == nil || m[1] != "3" {
			t.Errorf("%s: no meta refresh of 3 s in the head:\n%s", lang, head)
		}
		for _, s := range append(want, `id="binding-code" aria-labelledby="binding-label">42</p>`,
			`href="/login/decoupled?flow=f&amp;cancel=x"`, `href="/login/decoupled?flow=f"`) {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q:\n%s", lang, s, body)
			}
		}
		if strings.Contains(body, "<script") || styleAttr.MatchString(body) || eventAttr.MatchString(body) {
			t.Errorf("%s: script or inline style on the waiting page", lang)
		}
	}
	card := render(t, r, "/?lang=fr", 200, PageDecoupled, DecoupledPage{BindingMessage: "07", Channel: ChannelCard, RefreshSeconds: 1}).Body.String()
	if !strings.Contains(card, "lecteur de votre carte CPS") {
		t.Errorf("card channel text missing:\n%s", card)
	}
	if w := render(t, r, "/", 200, PageDecoupled, LoginPage{}); w.Code != 500 {
		t.Errorf("wrong view model: %d, want 500", w.Code)
	}
	// The binding message is escaped like any text.
	if b := render(t, r, "/", 200, PageDecoupled, DecoupledPage{BindingMessage: "<b>"}).Body.String(); strings.Contains(b, "<b>") {
		t.Error("binding message not escaped")
	}
}
