package web

import (
	"strings"
	"testing"
)

// TestLinkPage: the link page carries its flow, step and CSRF fields and
// shows its error; it once rendered with none (the view model was
// dropped), so no link could ever be posted.
func TestLinkPage(t *testing.T) {
	r := newTestRenderer(t)
	for lang, want := range map[string][]string{
		"fr": {"Pro Santé Connect vous a reconnu", "Ce compte porte un autre identifiant national que votre carte."},
		"en": {"Pro Santé Connect"},
	} {
		w := render(t, r, "/login/link?lang="+lang, 401, PageLink, &LinkPage{
			App: "DPI", Method: "psc", FlowID: "flow-123", StepToken: "step-456", CSRFToken: "tok-789",
			Username: "jdupont", Error: MsgLinkMismatch, Action: "/login/link",
		})
		body := w.Body.String()
		if w.Code != 401 {
			t.Fatalf("%s: status %d:\n%s", lang, w.Code, body)
		}
		for _, s := range append(want,
			`action="/login/link"`, `name="flow_id" value="flow-123"`, `name="step" value="step-456"`,
			`name="csrf_token" value="tok-789"`, `value="jdupont"`, `role="alert"`) {
			if !strings.Contains(body, s) {
				t.Errorf("%s: link page lacks %q:\n%s", lang, s, body)
			}
		}
	}
	w := render(t, r, "/login/link", 200, PageLink, LoginPage{})
	if w.Code != 500 {
		t.Errorf("link page with the wrong view model: %d, want 500", w.Code)
	}
}
