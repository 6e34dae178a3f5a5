package e2e

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	crewjam "github.com/crewjam/saml"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// Policy step-up in a real browser: a password session meets an
// application whose policy requires substantial, and Garde asks for only
// what is missing, a touch of the security key, through OpenID Connect and
// SAML alike.

// keyStepUpConfig: keys are never asked after a password (second_factor
// off), so a password sign-in gives a password-only session even for a
// person with a key; people may enroll a key from the key page (grace); the
// lab and the SAML application require substantial.
func keyStepUpConfig(t *testing.T, sp *testSP) string {
	return samlConfig(t, map[*testSP]string{sp: "      sign: both\n"}) + fmt.Sprintf(`webauthn:
  second_factor: "off"
  enrollment:
    grace_until: "2099-01-01T00:00:00Z"
policies:
  applications:
    - {id: %s, min_level: substantial}
    - {id: %q, min_level: substantial}
`, labID, sp.id)
}

// traffic stands in, inside one browser tab, for the OpenID Connect
// applications of the harness (https://*.test, names that do not resolve):
// the browser's requests to them are answered with a landing page, and the
// URLs they were sent are kept, as what the applications received. It
// also keeps the bodies the browser posts to a SAML SP's assertion
// consumer service, which go on to the SP unchanged.
type traffic struct {
	mu       sync.Mutex
	landings []string
	acsPosts []url.Values
}

func watchTraffic(t *testing.T, ctx context.Context, acsURL string) *traffic {
	t.Helper()
	tr := &traffic{}
	patterns := []*fetch.RequestPattern{{URLPattern: "https://*.test/*"}}
	if acsURL != "" {
		patterns = append(patterns, &fetch.RequestPattern{URLPattern: acsURL + "*"})
	}
	// Subscribed before interception starts, so no request is missed.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: patterns}); err != nil {
		t.Fatalf("intercept the applications' requests: %v", err)
	}
	go func() {
		// The iterator delivers on its own goroutine, so commands may be
		// sent from here; it ends with the tab's context.
		for ev, err := range paused {
			if err != nil {
				return
			}
			if acsURL != "" && strings.HasPrefix(ev.Request.URL, acsURL) {
				var body []byte
				for _, e := range ev.Request.PostDataEntries {
					body = append(body, e.Bytes...)
				}
				form, _ := url.ParseQuery(string(body))
				tr.mu.Lock()
				tr.acsPosts = append(tr.acsPosts, form)
				tr.mu.Unlock()
				_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				continue
			}
			tr.mu.Lock()
			tr.landings = append(tr.landings, ev.Request.URL)
			tr.mu.Unlock()
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: http.StatusOK,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/plain"}},
				Body:            []byte("application landing page\n"),
			})
		}
	}()
	return tr
}

// received lists the URLs an application (by its redirect URI) was sent.
func (tr *traffic) received(redirect string) []*url.URL {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []*url.URL
	for _, s := range tr.landings {
		if strings.HasPrefix(s, redirect) {
			if u, err := url.Parse(s); err == nil {
				out = append(out, u)
			}
		}
	}
	return out
}

// samlResponses are the SAMLResponse messages posted to the SP, decoded.
func (tr *traffic) samlResponses(t *testing.T) []string {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, f := range tr.acsPosts {
		raw, err := base64.StdEncoding.DecodeString(f.Get("SAMLResponse"))
		if err != nil || len(raw) == 0 {
			t.Fatalf("a post to the SP without a readable SAMLResponse: %v %v", f, err)
		}
		out = append(out, string(raw))
	}
	return out
}

// waitLanding waits until the tab has landed at the application's
// redirect URI with the answer to a (its state), not an earlier answer
// still on screen, and returns the URL.
func waitLanding(t *testing.T, ctx context.Context, redirect string, a authRequest) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		l, err := chromedp.Run(ctx, chromedp.Location())
		if u, perr := url.Parse(l); err == nil && perr == nil && strings.HasPrefix(l, redirect) && u.Query().Get("state") == a.state {
			return l
		}
		loc = l
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("waited for the answer to %s at %s; at %s:\n%s", a.state, redirect, loc, body)
	return ""
}

// waitBody waits until the page's text contains want and returns it.
func waitBody(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		b, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err == nil && strings.Contains(b, want) {
			return b
		}
		body = b
		time.Sleep(100 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	t.Fatalf("waited for a page saying %q; at %s:\n%s", want, loc, body)
	return ""
}

// hasPasswordField reports whether the (loaded) page asks for a password.
func hasPasswordField(t *testing.T, ctx context.Context) bool {
	t.Helper()
	return eval[bool](t, ctx, `document.querySelector("input[type=password], input[name=password]") !== null`)
}

// signInToPatients signs in with the password to the patient record and
// returns the claims of its token: a password-only session.
func signInToPatients(t *testing.T, ctx context.Context, g *gardeUnderTest, patients *rp, u testutil.SlapdUser) idClaims {
	t.Helper()
	a := patients.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	waitURL(t, ctx, "/login")
	signInPassword(t, ctx, u)
	c := landed(t, g, patients, a, waitLanding(t, ctx, appRedirect, a))
	wantAMR(t, c, assurance.ACRLow, "pwd")
	if c.Sub != "ad:"+u.GUID || c.SID == "" {
		t.Fatalf("patients token: sub %q sid %q", c.Sub, c.SID)
	}
	return c
}

// TestPolicyBrowserKeyStepUp: a clinician signed in with a password opens
// the lab, which requires substantial: Garde shows the key page only (no
// password again), a touch of the key completes it, and the lab's token
// says substantial, with the same person and the same SSO session. The
// same holds for a SAML application.
func TestPolicyBrowserKeyStepUp(t *testing.T) {
	sp := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraConfig: keyStepUpConfig(t, sp)})
	sp.trustGarde(g)
	ctx, _ := chromium(t)
	apps := watchTraffic(t, ctx, sp.mw.ServiceProvider.AcsURL.String())
	patients := g.newRP(t, appID, appSecret, appRedirect)
	labo := g.newRP(t, labID, labSecret, labRedirect)
	u := testutil.SlapdJDupont
	sub := "ad:" + u.GUID

	// 1. A password sign-in to the patient record: low, password only.
	first := signInToPatients(t, ctx, g, patients, u)

	// 2. The clinician registers a key on the key page (grace period).
	run(t, ctx, chromedp.Navigate(g.issuer+"/keys"),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "Clé du labo"),
		chromedp.Click(chromedp.CSS(`[data-webauthn="register"]`)))
	waitURL(t, ctx, "msg=key_registered")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`table.keys`)))
	if creds, err := g.app.Durable.ListWebAuthnCredentials(context.Background(), sub); err != nil || len(creds) != 1 {
		t.Fatalf("registered keys = %+v, %v", creds, err)
	}

	// 3. The lab requires substantial: the key page, not the login page.
	a := labo.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	waitURL(t, ctx, "/login/key")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="login"]`)))
	if hasPasswordField(t, ctx) {
		t.Fatalf("step-up to the lab asked for the password again:\n%s", pageHTML(t, ctx))
	}
	if h := pageHTML(t, ctx); !strings.Contains(h, "Laboratoire") {
		t.Errorf("the key page does not name the application:\n%s", h)
	}
	if got := apps.received(labRedirect); len(got) != 0 {
		t.Fatalf("the lab received %v before the key was touched", got)
	}
	// The touch (the virtual authenticator answers at once).
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-webauthn="login"]`)))
	c := landed(t, g, labo, a, waitLanding(t, ctx, labRedirect, a))
	wantAMR(t, c, assurance.ACRSubstantial, "pwd", "hwk", "mfa")
	if c.Sub != sub || c.SID != first.SID {
		t.Errorf("after step-up: sub %q sid %q, want the same person %q and SSO session %q", c.Sub, c.SID, sub, first.SID)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.StepUpRequired, App: labID}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Person == sub && evs[0].Details["from"] == "low" &&
			evs[0].Details["to"] == "substantial" && strings.Contains(evs[0].Details["methods"], "key")
	})

	// The session is now substantial: the lab again, and the patient
	// record, go straight through, in the same SSO session.
	a = labo.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	c = landed(t, g, labo, a, waitLanding(t, ctx, labRedirect, a))
	wantAMR(t, c, assurance.ACRSubstantial, "hwk")
	if c.SID != first.SID {
		t.Errorf("SSO to the lab after step-up: sid %q, want %q", c.SID, first.SID)
	}
	a = patients.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	c = landed(t, g, patients, a, waitLanding(t, ctx, appRedirect, a))
	wantAMR(t, c, assurance.ACRSubstantial, "pwd", "hwk")

	// 4. SAML, from the same starting point: a fresh browser session
	// (cookies cleared; the key stays in the authenticator), a password
	// sign-in, then the SAML application requiring substantial.
	clearCookies(t, ctx)
	second := signInToPatients(t, ctx, g, patients, u)
	if second.SID == first.SID {
		t.Fatal("clearing the cookies did not start a new SSO session")
	}
	run(t, ctx, chromedp.Navigate(sp.srv.URL+"/app"))
	waitURL(t, ctx, "/login/key")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="login"]`)))
	if hasPasswordField(t, ctx) {
		t.Fatalf("step-up to the SAML application asked for the password again:\n%s", pageHTML(t, ctx))
	}
	if n := len(apps.samlResponses(t)); n != 0 {
		t.Fatalf("the SP received %d responses before the key was touched", n)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-webauthn="login"]`)))
	// Garde's response form posts itself to the SP, which checks it and
	// shows its page.
	waitURL(t, ctx, sp.srv.URL+"/app")
	body := waitBody(t, ctx, "SP application")
	if !strings.Contains(body, "assuranceLevel="+assurance.ACRSubstantial) || !strings.Contains(body, "uid="+u.Username) {
		t.Errorf("the SP's session after step-up:\n%s", body)
	}
	got := apps.samlResponses(t)
	if len(got) != 1 {
		t.Fatalf("the SP received %d responses, want 1", len(got))
	}
	var resp crewjam.Response
	if err := xml.Unmarshal([]byte(got[0]), &resp); err != nil {
		t.Fatalf("SAMLResponse: %v\n%s", err, got[0])
	}
	if resp.Assertion == nil || len(resp.Assertion.AuthnStatements) != 1 ||
		resp.Assertion.AuthnStatements[0].AuthnContext.AuthnContextClassRef == nil {
		t.Fatalf("the assertion has no authentication context:\n%s", got[0])
	}
	if ref := resp.Assertion.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value; ref != assurance.ACRSubstantial {
		t.Errorf("AuthnContextClassRef = %q, want %q", ref, assurance.ACRSubstantial)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.StepUpRequired, App: sp.id}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Person == sub && evs[0].Details["to"] == "substantial"
	})
}

// TestPolicyBrowserNoKeyNoLowToken: a clinician without a key, signed in
// with a password, opens the lab: the step-up offers only the key, by
// enrolling one (grace period), never the password again, and the lab
// never receives a code for a low session, not even when it asks for no
// interaction; once a key is enrolled, its token says substantial.
func TestPolicyBrowserNoKeyNoLowToken(t *testing.T) {
	sp := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraConfig: keyStepUpConfig(t, sp)})
	ctx, _ := chromium(t)
	apps := watchTraffic(t, ctx, "")
	patients := g.newRP(t, appID, appSecret, appRedirect)
	labo := g.newRP(t, labID, labSecret, labRedirect)
	u := testutil.SlapdPMartin
	sub := "ad:" + u.GUID
	first := signInToPatients(t, ctx, g, patients, u)

	// The lab: the key enrollment page of the sign-in flow, nothing else.
	a := labo.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	waitURL(t, ctx, "/login/enroll")
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("key-name")), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="register"]`)))
	if hasPasswordField(t, ctx) {
		t.Fatalf("step-up without a key offered the password:\n%s", pageHTML(t, ctx))
	}
	if h := pageHTML(t, ctx); strings.Contains(h, "/login/card") || strings.Contains(h, "/login/upstream") || strings.Contains(h, `data-webauthn="passwordless"`) {
		t.Errorf("step-up without a key offered another method:\n%s", h)
	}

	// Asking for no interaction, or for low voluntarily, changes nothing:
	// the lab gets an error, or the key step again, never a code.
	a2 := labo.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	run(t, ctx, chromedp.Navigate(a2.url))
	loc, err := url.Parse(waitLanding(t, ctx, labRedirect, a2))
	if err != nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("code") != "" || loc.Query().Get("state") != a2.state {
		t.Errorf("prompt=none to the lab with a low session: %s, want error=login_required", loc)
	}
	a3 := labo.authURL(oauth2.SetAuthURLParam("acr_values", assurance.ACRLow))
	run(t, ctx, chromedp.Navigate(a3.url))
	waitURL(t, ctx, "/login/enroll")
	run(t, ctx, chromedp.WaitVisible(chromedp.ID("key-name")))
	for _, l := range apps.received(labRedirect) {
		if l.Query().Get("code") != "" {
			t.Fatalf("the lab received a code for a password-only session: %s", l)
		}
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.StepUpRequired, App: labID}, func(evs []store.AuditEvent) bool {
		return len(evs) >= 2 && evs[0].Person == sub && evs[0].Details["to"] == "substantial" &&
			!strings.Contains(evs[0].Details["methods"], "password")
	})

	// Enrolling a key on that page is the touch the lab needed.
	run(t, ctx, chromedp.SendKeys(chromedp.ID("key-name"), "Clé de Paul"),
		chromedp.Click(chromedp.CSS(`[data-webauthn="register"]`)))
	c := landed(t, g, labo, a3, waitLanding(t, ctx, labRedirect, a3))
	wantAMR(t, c, assurance.ACRSubstantial, "pwd", "hwk", "mfa")
	if c.Sub != sub || c.SID != first.SID {
		t.Errorf("after enrollment: sub %q sid %q, want %q and the SSO session %q", c.Sub, c.SID, sub, first.SID)
	}
	// Every code the lab ever received was this one.
	var codes int
	for _, l := range apps.received(labRedirect) {
		if l.Query().Get("code") != "" {
			codes++
		}
	}
	if codes != 1 {
		t.Errorf("the lab received %d codes, want 1: %v", codes, apps.received(labRedirect))
	}
}
