package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/garde-sso/garde/broker/admin"
	"github.com/garde-sso/garde/internal/testutil"
)

// TestBrowserAdminRevokesSession: a clinician is signed in in one browser;
// an admin, in another browser context, opens the console, finds the
// clinician's session and signs them out everywhere; the clinician's next
// visit to an application lands on the login page.
func TestBrowserAdminRevokesSession(t *testing.T) {
	g := startAdminGarde(t, embedded, true, portalClient)
	portal := g.newRP(t, "portal", portalSecret, g.issuer+"/test-app/cb")
	clin, _ := chromium(t)

	run(t, clin, chromedp.Navigate(portal.authURL().url))
	waitURL(t, clin, "/login")
	signInPassword(t, clin, testutil.SlapdJDupont)
	waitURL(t, clin, "/test-app/cb")
	// Signed in: a second application visit goes straight through (SSO).
	run(t, clin, chromedp.Navigate(portal.authURL().url))
	waitURL(t, clin, "/test-app/cb")

	// The admin's browser: its own browser context (no shared cookies).
	adm, cancel := chromedp.NewContext(clin, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	run(t, adm, chromedp.Navigate(g.issuer+admin.PathSessions+"?q="+testutil.SlapdJDupont.Username))
	waitURL(t, adm, "/login")
	signInPassword(t, adm, testutil.SlapdUser{Username: "alice.admin", Password: breakGlassPassword})
	waitURL(t, adm, admin.PathSessions)
	run(t, adm, chromedp.WaitVisible(chromedp.CSS("table[data-sessions] tr[data-sid]")))
	if h := pageHTML(t, adm); !strings.Contains(h, testutil.SlapdJDupont.Username) || !strings.Contains(h, "portal") {
		t.Fatalf("the sessions page does not show the clinician's session:\n%s", h)
	}
	run(t, adm, chromedp.Click(chromedp.CSS("button[data-revoke-all]")))
	waitURL(t, adm, "msg=admin_sessions_revoked")
	if h := pageHTML(t, adm); strings.Contains(h, "data-sid=") {
		t.Errorf("sessions still listed after the global sign-out:\n%s", h)
	}

	// The clinician's next navigation to the application asks for a
	// password again.
	run(t, clin, chromedp.Navigate(portal.authURL().url))
	waitURL(t, clin, "/login")
	run(t, clin, chromedp.WaitVisible(chromedp.ID("password")))
}
