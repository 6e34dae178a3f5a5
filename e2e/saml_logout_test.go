package e2e

import (
	"net/http"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/garde-sso/garde/internal/testutil"
)

// A logout started by an OpenID Connect application reaches the session's
// SAML applications too: the browser carries a LogoutRequest to each, then
// lands on the application's registered post-logout address.
func TestOIDCLogoutReachesSAMLApplications(t *testing.T) {
	sp := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	g := startGardeWith(t, gardeOptions{backend: embedded, extraConfig: samlConfig(t, map[*testSP]string{sp: "      sign: both\n"})})
	sp.trustGarde(g)
	user := testutil.SlapdJDupont
	br := g.newBrowser(t)

	app := br.postSAML(br.login(br.get(sp.srv.URL+"/app"), user.Username, user.Password))
	if !strings.Contains(app.body, "SP application") {
		t.Fatalf("SAML sign-in: %d\n%s", app.status, truncate(app.body))
	}
	rp := g.newRP(t, appID, appSecret, appRedirect)
	a := rp.authURL()
	toks, err := rp.exchange(rp.code(br.get(a.url), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}

	p := br.get(g.issuer + "/logout?id_token_hint=" + toks.raw + "&post_logout_redirect_uri=" + appLogout + "&state=bye")
	for hops := 0; p.status == http.StatusOK && strings.Contains(p.body, "SAMLRe") && hops < 6; hops++ {
		p = br.postSAML(p)
	}
	if loc := p.location(); p.status != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), appLogout) || loc.Query().Get("state") != "bye" {
		t.Fatalf("logout ended with %d at %s (location %v):\n%s", p.status, p.url, loc, truncate(p.body))
	}
	// The SP was told: its own session is gone, it asks Garde again, and
	// Garde asks for a password.
	if p := br.get(sp.srv.URL + "/app"); !strings.Contains(p.body, `name="password"`) {
		t.Errorf("the SAML application still has a session after the OIDC logout:\n%s", truncate(p.body))
	}
}
