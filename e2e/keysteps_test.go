package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/garde-sso/garde/internal/testutil"
)

// TestKeyStepCannotBeSkipped: with keys required, a password alone opens
// no session, and neither replayed URLs nor forged posts complete the flow.
func TestKeyStepCannotBeSkipped(t *testing.T) {
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraClients: portalClient,
		extraConfig: "webauthn:\n  second_factor: required\n"})
	portal := g.newRP(t, "portal", portalSecret, g.issuer+"/test-app/cb")
	br := g.newBrowser(t)
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := testutil.SlapdJDupont

	a := portal.authURL()
	first := br.get(a.url)
	lp := br.get(first.url.ResolveReference(first.location()).String())
	action, form := lp.form(t)
	form.Set("username", u.Username)
	form.Set("password", u.Password)
	post := br.post(action, form, originOf(lp.url))
	next := post.url.ResolveReference(post.location())
	if post.status != http.StatusSeeOther || next.Path != "/login/enroll" {
		t.Fatalf("after the password: %d %s, want the enrollment step", post.status, next)
	}
	flowID := next.Query().Get("flow")

	// No session cookie was set: the password alone is nothing.
	for _, c := range br.c.Jar.Cookies(post.url) {
		if strings.Contains(c.Name, "garde_session") {
			t.Fatalf("a session cookie was set after the password alone: %s", c.Name)
		}
	}
	// Jumping to the resume endpoint with a made-up step fails.
	if p := br.get(g.issuer + "/authorize/resume?flow=" + url.QueryEscape(flowID) + "&step=forged"); p.status != http.StatusBadRequest {
		t.Errorf("resume before the key: %d, want 400", p.status)
	}
	// A forged registration post fails: no code was entered, and the step
	// token is wrong anyway.
	body, _ := json.Marshal(map[string]any{"flow_id": flowID, "step": "forged", "csrf_token": form.Get("csrf_token"), "credential": map[string]string{"id": "x"}})
	req, _ := http.NewRequest(http.MethodPost, g.issuer+"/login/enroll/finish", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", g.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if p := br.do(req); p.status == http.StatusOK || strings.Contains(p.body, "redirect") {
		t.Errorf("forged enrollment post: %d %s", p.status, p.body)
	}
	// With the right step token but no enrollment code, registration is
	// refused.
	ep := br.get(g.issuer + "/login/enroll?flow=" + url.QueryEscape(flowID))
	_, ef := ep.form(t)
	body, _ = json.Marshal(map[string]any{"flow_id": flowID, "step": ef.Get("step"), "csrf_token": ef.Get("csrf_token")})
	req, _ = http.NewRequest(http.MethodPost, g.issuer+"/login/enroll/begin", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", g.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if p := br.do(req); p.status != http.StatusForbidden || !strings.Contains(p.body, "enrollment_not_allowed") {
		t.Errorf("registration without a code: %d %s, want 403 enrollment_not_allowed", p.status, p.body)
	}
	// The application gets nothing: a new authorization shows the login
	// page again.
	again := br.get(portal.authURL().url)
	if loc := again.location(); again.status != http.StatusSeeOther || loc.Path != "/login" {
		t.Errorf("after an unfinished key step, authorize answered %d %s", again.status, loc)
	}
}
