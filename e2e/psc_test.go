package e2e

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors/psc/psctest"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// Messages of the login and link pages (French, as the browser asks).
const (
	msgPSCDenied        = "La connexion avec Pro Santé Connect a été annulée ou refusée."
	msgPSCUnavailable   = "Pro Santé Connect est momentanément indisponible."
	msgPSCProviderError = "Pro Santé Connect a refusé la demande de connexion de l'établissement."
	msgPSCInvalidToken  = "La réponse de Pro Santé Connect n'a pas pu être vérifiée."
	msgNoLocalAccount   = "Aucun compte de l'établissement ne correspond à votre identifiant national."
	msgLinkMismatch     = "Ce compte porte un autre identifiant national que votre carte."
	msgBadCredentials   = "Identifiant ou mot de passe incorrect."
)

// strangerIDNat is a national id no AD account holds (Luhn-valid RPPS).
const strangerIDNat = "899700075122"

// startPSCSim starts the Pro Santé Connect simulator (issuer and wallet
// servers over TLS) for one test.
func startPSCSim(t *testing.T) *psctest.Sim {
	t.Helper()
	sim, err := psctest.New(psctest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// pscConnectorYAML is a psc connector pointed at the simulator, trusting
// its CA only.
func pscConnectorYAML(t *testing.T, sim *psctest.Sim, backChannel bool) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "psc-ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`  - id: psc
    type: psc
    name: Pro Santé Connect
    psc:
      environment: custom
      issuer: %q
      client_id: %q
      client_secret: %q
      ca_file: %q
      back_channel_logout: %t
`, sim.Issuer(), sim.ClientID(), sim.ClientSecret(), ca, backChannel)
}

// noMatchYAML is the top-level linking section.
func noMatchYAML(noMatch string) string {
	return "linking:\n  no_match: " + noMatch + "\n"
}

// startPSCGarde starts Garde with opt and registers its redirect and
// post-logout URIs at the simulator, as a hospital does with ANS.
func startPSCGarde(t *testing.T, sim *psctest.Sim, opt gardeOptions) *gardeUnderTest {
	t.Helper()
	g := startGardeWith(t, opt)
	sim.AddRedirectURI(g.issuer + flow.PathCallback + "/psc")
	sim.AddPostLogoutRedirectURI(g.issuer + flow.PathUpstreamLoggedOut)
	return g
}

// pscUser is the professional the simulator signs in.
func pscUser(idNat, authMode string) psctest.User {
	u := psctest.DefaultUser()
	u.IDNat, u.AuthMode = idNat, authMode
	return u
}

// pscBrowser is a browser that trusts both Garde and the simulator.
func (g *gardeUnderTest) pscBrowser(t *testing.T, sim *psctest.Sim) *browser {
	t.Helper()
	br := g.newBrowser(t)
	tr := g.httpc.Transport.(*http.Transport).Clone()
	pool := tr.TLSClientConfig.RootCAs.Clone()
	if !pool.AppendCertsFromPEM(sim.CAPEM()) {
		t.Fatal("simulator CA not added")
	}
	tr.TLSClientConfig.RootCAs = pool
	br.c.Transport = tr
	return br
}

// untilCallback follows start (a login page's PSC link) through the
// wallet, and stops at PSC's redirect back to Garde's callback: it returns
// the callback URL, not followed, and the wallet URL the browser visited.
func (b *browser) untilCallback(t *testing.T, start string) (callback, wallet *url.URL) {
	t.Helper()
	prev := b.c.CheckRedirect
	defer func() { b.c.CheckRedirect = prev }()
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.Path, flow.PathCallback+"/") {
			return http.ErrUseLastResponse
		}
		if req.URL.Path == "/auth" {
			wallet = req.URL
		}
		return prev(req, via)
	}
	p := b.get(start)
	callback = p.location()
	if p.status != http.StatusFound || callback == nil || !strings.HasPrefix(callback.Path, flow.PathCallback+"/") {
		t.Fatalf("expected PSC's redirect to the callback, got %d at %s (Location %q):\n%s", p.status, p.url, p.header.Get("Location"), truncate(p.body))
	}
	return callback, wallet
}

// pscLink starts an authorization request and returns the login page's
// Pro Santé Connect link.
func pscLink(t *testing.T, br *browser, r *rp, extra ...oauth2.AuthCodeOption) (authRequest, string) {
	t.Helper()
	a := r.authURL(extra...)
	p := br.get(a.url)
	m := pscOptionRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no Pro Santé Connect button on the login page (%d at %s):\n%s", p.status, p.url, truncate(p.body))
	}
	u, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return a, u.String()
}

var pscOptionRE = regexp.MustCompile(`id="signin-psc-[0-9]+" href="([^"]+)"`)

// pscSignIn runs a whole PSC sign-in for r and returns the verified tokens
// and PSC's session id (session_state on the callback).
func pscSignIn(t *testing.T, g *gardeUnderTest, br *browser, r *rp) (*tokens, string) {
	t.Helper()
	a, link := pscLink(t, br, r)
	cb, _ := br.untilCallback(t, link)
	toks, err := r.exchange(r.code(br.get(cb.String()), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	return toks, cb.Query().Get("session_state")
}

// onLoginPage checks that p is the login page again with msg in its error
// box, at status.
func onLoginPage(t *testing.T, p page, status int, msg string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, `name="password"`) || !strings.HasSuffix(errorBox(t, p), msg) {
		t.Fatalf("got %d %q, want the login page at %d with %q", p.status, errorBox(t, p), status, msg)
	}
}

// refreshError refreshes with rt and returns the OAuth error code ("" on
// success).
func refreshError(t *testing.T, r *rp, rt string) string {
	t.Helper()
	_, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err == nil {
		return ""
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("refresh: %v", err)
	}
	return re.ErrorCode
}

// TestPSCSignIn: a Pro Santé Connect sign-in, through the real simulator
// over TLS, gives the RP the AD account of the person holding the same
// national id, at the level the assurance table gives a card.
func TestPSCSignIn(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) { testPSCSignIn(t, b) })
	}
}

func testPSCSignIn(t *testing.T, b backend) {
	jdupont := testutil.SlapdJDupont
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(jdupont.NationalID, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: b, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)

	a, link := pscLink(t, br, r)
	if !strings.HasPrefix(link, g.issuer+flow.PathUpstream+"?") {
		t.Fatalf("PSC link %s, want Garde's %s", link, flow.PathUpstream)
	}
	cb, wallet := br.untilCallback(t, link)
	if wallet == nil || wallet.Host != strings.TrimPrefix(sim.WalletURL(), "https://") {
		t.Fatalf("the browser did not go through PSC's wallet (%v)", wallet)
	}
	wq := wallet.Query()
	if wq.Get("redirect_uri") != g.issuer+"/login/callback/psc" || wq.Get("client_id") != sim.ClientID() ||
		wq.Get("code_challenge_method") != "S256" || wq.Get("acr_values") != "eidas1" || wq.Get("nonce") == "" {
		t.Errorf("authorization request at PSC: %v", wq)
	}
	if strings.Contains(wallet.RawQuery, a.state) || strings.Contains(wallet.RawQuery, a.nonce) {
		t.Error("the RP's state or nonce was passed on to PSC: Garde must use its own")
	}
	toks, err := r.exchange(r.code(br.get(cb.String()), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	c := toks.claim
	if c.Sub != "ad:"+jdupont.GUID {
		t.Errorf("sub = %q, want the AD account's %q", c.Sub, "ad:"+jdupont.GUID)
	}
	if c.ACR != assurance.ACRHigh || !slices.Contains(c.AMR, "sc") {
		t.Errorf("acr %q amr %v, want high with sc for authMode CARD", c.ACR, c.AMR)
	}
	if c.NatID != jdupont.NationalID {
		t.Errorf("national_id = %q, want %q", c.NatID, jdupont.NationalID)
	}
	if !slices.Contains(c.Groups, "medecins") || !slices.Contains(c.Groups, "personnel") || c.Email != jdupont.Email {
		t.Errorf("groups %v email %q, want the AD account's", c.Groups, c.Email)
	}

	// The link is recorded and audited, and the sign-in says it was PSC.
	link0, err := g.app.Durable.GetIdentityLink(context.Background(), "psc", jdupont.NationalID)
	if err != nil || link0.Person != c.Sub || link0.Method != "national_id" {
		t.Errorf("identity link = %+v, %v", link0, err)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.IdentityLinked}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["source"] == "psc" && evs[0].Person == c.Sub &&
			evs[0].Details["method"] == "national_id"
	})
	waitAudit(t, g, store.AuditQuery{Type: audit.SignInSuccess}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["method"] == "psc" && evs[0].Details["connector"] == "psc" &&
			evs[0].Details["acr"] == assurance.ACRHigh
	})

	// The same person with their AD password: the same sub.
	pw := g.newBrowser(t)
	code, a2 := signIn(t, g, pw, r, jdupont)
	toks2, err := r.exchange(code, a2)
	if err != nil {
		t.Fatal(err)
	}
	if toks2.claim.Sub != c.Sub {
		t.Errorf("password sign-in sub %q, PSC sign-in sub %q: one person must have one sub", toks2.claim.Sub, c.Sub)
	}

	// The e-CPS app is substantial, not high; the link is followed (no
	// second link recorded).
	sim.SetNextUser(pscUser(jdupont.NationalID, "MOBILE"))
	toks3, _ := pscSignIn(t, g, g.pscBrowser(t, sim), r)
	if toks3.claim.Sub != c.Sub || toks3.claim.ACR != assurance.ACRSubstantial || slices.Contains(toks3.claim.AMR, "sc") {
		t.Errorf("e-CPS sign-in: sub %q acr %q amr %v, want the same sub at substantial without sc", toks3.claim.Sub, toks3.claim.ACR, toks3.claim.AMR)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.IdentityLinked}, func(evs []store.AuditEvent) bool { return len(evs) == 1 })

	// The link does not outlive the AD account: once it is disabled, PSC
	// no longer signs the person in.
	mod := goldap.NewModifyRequest(jdupont.DN, nil)
	mod.Replace("userAccountControl", []string{"514"})
	if err := g.ldap.Admin(t).Modify(mod); err != nil {
		t.Fatal(err)
	}
	br4 := g.pscBrowser(t, sim)
	_, link4 := pscLink(t, br4, r)
	p := br4.get(link4)
	if p.status == http.StatusSeeOther || !strings.Contains(p.body, `name="password"`) || !strings.HasSuffix(errorBox(t, p), "Votre compte est désactivé.") {
		t.Errorf("PSC sign-in of a disabled AD account: %d %q, want the login page with the account disabled", p.status, errorBox(t, p))
	}
}

// TestPSCErrors: every way a PSC sign-in can fail ends on a readable page,
// audited, and never with a session.
func TestPSCErrors(t *testing.T) {
	jdupont := testutil.SlapdJDupont
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(jdupont.NationalID, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)

	// noSession checks that br has no Garde session: the login page comes
	// back for a new request.
	noSession := func(t *testing.T, br *browser) {
		t.Helper()
		if p := br.get(r.authURL().url); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("after a refused PSC sign-in the browser has a session: %d at %s", p.status, p.url)
		}
	}

	t.Run("denied at PSC", func(t *testing.T) {
		br := g.pscBrowser(t, sim)
		sim.DenyNext("access_denied")
		_, link := pscLink(t, br, r)
		onLoginPage(t, br.get(link), http.StatusUnauthorized, msgPSCDenied)
		noSession(t, br)
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool {
				return e.Reason == "psc_denied" && e.Details["method"] == "psc" && e.Details["connector"] == "psc" && e.App == appID
			})
		})
	})

	t.Run("other error from PSC", func(t *testing.T) {
		br := g.pscBrowser(t, sim)
		sim.DenyNext("temporarily_unavailable")
		_, link := pscLink(t, br, r)
		onLoginPage(t, br.get(link), http.StatusUnauthorized, msgPSCProviderError)
		noSession(t, br)
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Reason == "psc_provider_error" })
		})
	})

	t.Run("PSC down at the token endpoint", func(t *testing.T) {
		br := g.pscBrowser(t, sim)
		_, link := pscLink(t, br, r)
		cb, _ := br.untilCallback(t, link)
		sim.SetDown(true)
		p := br.get(cb.String())
		sim.SetDown(false)
		onLoginPage(t, p, http.StatusServiceUnavailable, msgPSCUnavailable)
		noSession(t, br)
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Reason == "psc_unavailable" })
		})
		// Back up: the same login page works again.
		a, link := pscLink(t, br, r)
		if _, err := r.exchange(r.code(br.get(link), a, g.issuer), a); err != nil {
			t.Fatalf("after PSC came back: %v", err)
		}
	})

	t.Run("callback replayed", func(t *testing.T) {
		br := g.pscBrowser(t, sim)
		a, link := pscLink(t, br, r)
		cb, _ := br.untilCallback(t, link)
		if _, err := r.exchange(r.code(br.get(cb.String()), a, g.issuer), a); err != nil {
			t.Fatal(err)
		}
		// The same callback again, from the same browser: the state was
		// single use.
		if p := br.get(cb.String()); p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Errorf("replayed callback: %d (Location %q), want 400", p.status, p.header.Get("Location"))
		}
		// Forged callbacks: no state, a state Garde never issued, an
		// unknown source.
		for _, q := range []string{"/psc?code=x", "/psc?code=x&state=forged", "/other?" + cb.RawQuery} {
			if p := br.get(g.issuer + flow.PathCallback + q); p.status != http.StatusBadRequest {
				t.Errorf("forged callback %s: %d, want 400", q, p.status)
			}
		}
	})

	t.Run("callback from another browser", func(t *testing.T) {
		victim := g.pscBrowser(t, sim)
		_, link := pscLink(t, victim, r)
		cb, _ := victim.untilCallback(t, link)
		// An attacker who got the callback URL (code and state) but not
		// the victim's binding cookie.
		attacker := g.pscBrowser(t, sim)
		tokenCalls := sim.Calls("token")
		if p := attacker.get(cb.String()); p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Errorf("callback from another browser: %d (Location %q), want 400", p.status, p.header.Get("Location"))
		}
		noSession(t, attacker)
		// The code was not redeemed for the attacker.
		if sim.Calls("token") != tokenCalls {
			t.Error("Garde redeemed the code for a browser that did not start the sign-in")
		}
	})

	t.Run("tampered ID token", func(t *testing.T) {
		for name, tamper := range map[string]func(map[string]any){
			"nonce":    func(c map[string]any) { c["nonce"] = "not-the-nonce-garde-sent" },
			"audience": func(c map[string]any) { c["aud"] = "another-client" },
			"issuer":   func(c map[string]any) { c["iss"] = "https://evil.example/auth/realms/esante-wallet" },
			"expired":  func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
		} {
			t.Run(name, func(t *testing.T) {
				br := g.pscBrowser(t, sim)
				sim.TamperIDToken(tamper)
				defer sim.TamperIDToken(nil)
				_, link := pscLink(t, br, r)
				onLoginPage(t, br.get(link), http.StatusUnauthorized, msgPSCInvalidToken)
				noSession(t, br)
			})
		}
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			n := 0
			for _, e := range evs {
				if e.Reason == "psc_invalid_token" {
					n++
				}
			}
			return n == 4
		})
	})

	t.Run("start link from another browser or tampered", func(t *testing.T) {
		br := g.pscBrowser(t, sim)
		_, link := pscLink(t, br, r)
		if p := g.pscBrowser(t, sim).get(link); p.status != http.StatusBadRequest {
			t.Errorf("PSC link from another browser: %d, want 400", p.status)
		}
		u, _ := url.Parse(link)
		q := u.Query()
		q.Set("source", "elsewhere")
		u.RawQuery = q.Encode()
		if p := br.get(u.String()); p.status != http.StatusBadRequest {
			t.Errorf("PSC link with an unknown source: %d, want 400", p.status)
		}
	})
}

// TestPSCUnavailableAtStart: PSC down before Garde ever reached it (no
// discovery document yet): the button gives a readable 503 at Garde.
func TestPSCUnavailableAtStart(t *testing.T) {
	sim := startPSCSim(t)
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	sim.SetDown(true)
	br := g.pscBrowser(t, sim)
	_, link := pscLink(t, br, r)
	onLoginPage(t, br.get(link), http.StatusServiceUnavailable, msgPSCUnavailable)
	if sim.Calls("auth") != 0 {
		t.Error("the browser was sent to a PSC that is down")
	}
	// The password still works on the same page.
	p := br.login(br.get(r.authURL().url), testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), appRedirect) {
		t.Errorf("password sign-in while PSC is down: %d", p.status)
	}
}

// TestPSCNoMatchDeny: a professional no AD account knows is refused with
// a readable message when linking.no_match is deny (the default).
func TestPSCNoMatchDeny(t *testing.T) {
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(strangerIDNat, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)
	_, link := pscLink(t, br, r)
	onLoginPage(t, br.get(link), http.StatusUnauthorized, msgNoLocalAccount)
	waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Reason == "no_local_account" && evs[0].Details["method"] == "psc"
	})
	waitAudit(t, g, store.AuditQuery{Type: audit.IdentityLinkRefused}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["source"] == "psc" && evs[0].Details["source_subject"] == strangerIDNat
	})
	if _, err := g.app.Durable.GetIdentityLink(context.Background(), "psc", strangerIDNat); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused professional was linked: %v", err)
	}
}

// TestPSCNoMatchExternal: with no_match external, a professional no AD
// account knows is one person, "nat:<idNat>", whether they come with PSC
// or their CPS card, with no AD groups.
func TestPSCNoMatchExternal(t *testing.T) {
	pki := testutil.NewCPSPKI(t)
	card := pki.IssueCard(t, testutil.CPSCard{IDNat: strangerIDNat, Given: "PAUL", Family: "INCONNU", Title: "Médecin"})
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(strangerIDNat, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded,
		extraConnectors: pscConnectorYAML(t, sim, true) + cardConnectorYAML(pki, ""),
		extraConfig:     noMatchYAML("external")})
	r := g.newRP(t, appID, appSecret, appRedirect)

	viaPSC, _ := pscSignIn(t, g, g.pscBrowser(t, sim), r)
	br := g.cardBrowser(t, &card)
	a := r.authURL()
	viaCard, err := r.exchange(r.code(br.get(methodURL(t, br.get(a.url), "card")), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	want := "nat:" + strangerIDNat
	for name, c := range map[string]idClaims{"psc": viaPSC.claim, "card": viaCard.claim} {
		if c.Sub != want || c.NatID != strangerIDNat || len(c.Groups) != 0 {
			t.Errorf("%s sign-in of an external professional: sub %q national_id %q groups %v; want %q, no groups", name, c.Sub, c.NatID, c.Groups, want)
		}
	}
	for _, source := range []string{"psc", "cps"} {
		l, err := g.app.Durable.GetIdentityLink(context.Background(), source, strangerIDNat)
		if err != nil || l.Person != want || l.Method != "external" {
			t.Errorf("%s link = %+v, %v", source, l, err)
		}
	}
}

// TestPSCNoMatchPassword: with no_match password, a professional whose AD
// account holds no national id links it once with the AD password; the
// link page refuses wrong passwords without telling accounts apart, and
// accounts holding another national id.
func TestPSCNoMatchPassword(t *testing.T) {
	jdupont, pmartin := testutil.SlapdJDupont, testutil.SlapdPMartin
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(jdupont.NationalID, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded,
		extraConnectors: pscConnectorYAML(t, sim, true), extraConfig: noMatchYAML("password")})
	// jdupont's AD account has lost its national id: nothing matches.
	mod := goldap.NewModifyRequest(jdupont.DN, nil)
	mod.Delete("employeeNumber", nil)
	if err := g.ldap.Admin(t).Modify(mod); err != nil {
		t.Fatal(err)
	}
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)
	a, link := pscLink(t, br, r)
	linkPage := br.get(link)
	if linkPage.status != http.StatusOK || linkPage.url.Path != flow.PathLink || !strings.Contains(linkPage.body, `name="password"`) {
		t.Fatalf("expected the link page, got %d at %s:\n%s", linkPage.status, linkPage.url, truncate(linkPage.body))
	}
	submit := func(p page, username, password string) page {
		t.Helper()
		action, form := p.form(t)
		form.Set("username", username)
		form.Set("password", password)
		return br.post(action, form, originOf(p.url))
	}

	// A wrong password and an unknown account: the same answer.
	wrong := submit(linkPage, jdupont.Username, "not-her-password")
	unknown := submit(linkPage, "nobody-here", "whatever-password")
	for name, p := range map[string]page{"wrong password": wrong, "unknown account": unknown} {
		if p.status != http.StatusUnauthorized || !strings.HasSuffix(errorBox(t, p), msgBadCredentials) || p.url.Path != flow.PathLink {
			t.Errorf("%s on the link page: %d %q at %s, want 401 %q on the link page", name, p.status, errorBox(t, p), p.url.Path, msgBadCredentials)
		}
	}
	// An account holding another national id: the password proves the
	// account, not that this PSC identity is its owner's.
	onLink := submit(linkPage, pmartin.Username, pmartin.Password)
	if onLink.status != http.StatusUnauthorized || !strings.HasSuffix(errorBox(t, onLink), msgLinkMismatch) {
		t.Errorf("linking to an account with another national id: %d %q, want 401 %q", onLink.status, errorBox(t, onLink), msgLinkMismatch)
	}
	if _, err := g.app.Durable.GetIdentityLink(context.Background(), "psc", jdupont.NationalID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused link was recorded: %v", err)
	}
	// The form without its CSRF token is refused.
	action, form := linkPage.form(t)
	form.Del("csrf_token")
	form.Set("username", jdupont.Username)
	form.Set("password", jdupont.Password)
	if p := br.post(action, form, originOf(linkPage.url)); p.status != http.StatusForbidden {
		t.Errorf("link without CSRF token: %d, want 403", p.status)
	}

	// Her own password links, and the sign-in goes on to the RP.
	toks, err := r.exchange(r.code(submit(linkPage, jdupont.Username, jdupont.Password), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	if toks.claim.Sub != "ad:"+jdupont.GUID || toks.claim.NatID != jdupont.NationalID || !slices.Contains(toks.claim.Groups, "medecins") ||
		toks.claim.ACR != assurance.ACRHigh {
		t.Errorf("after linking: %+v, want the AD account with the PSC national id, at PSC's level", toks.claim)
	}
	l, err := g.app.Durable.GetIdentityLink(context.Background(), "psc", jdupont.NationalID)
	if err != nil || l.Person != toks.claim.Sub || l.Method != "password" {
		t.Errorf("identity link = %+v, %v", l, err)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.IdentityLinked}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["method"] == "password" && evs[0].Person == toks.claim.Sub
	})
	waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
		reasons := map[string]int{}
		for _, e := range evs {
			if e.Details["step"] == "link" {
				reasons[e.Reason]++
			}
		}
		return reasons["invalid_credentials"] == 2 && reasons["national_id_mismatch"] == 1
	})

	// The next PSC sign-in, in another browser, needs no password.
	again, _ := pscSignIn(t, g, g.pscBrowser(t, sim), r)
	if again.claim.Sub != toks.claim.Sub {
		t.Errorf("second PSC sign-in sub %q, want %q", again.claim.Sub, toks.claim.Sub)
	}
}

// TestPSCUpstreamLogout: logging out of Garde from the RP after a PSC
// sign-in ends PSC's session too, then lands at the RP's post-logout URI.
func TestPSCUpstreamLogout(t *testing.T) {
	jdupont := testutil.SlapdJDupont
	sim := startPSCSim(t)
	sim.SetNextUser(pscUser(jdupont.NationalID, "CARD"))
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)
	toks, pscSID := pscSignIn(t, g, br, r)

	var visited []string
	prev := br.c.CheckRedirect
	br.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		visited = append(visited, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
		return prev(req, via)
	}
	p := br.get(g.issuer + "/logout?" + url.Values{
		"id_token_hint": {toks.raw}, "post_logout_redirect_uri": {appLogout}, "state": {"rp-state"},
	}.Encode())
	br.c.CheckRedirect = prev
	if loc := p.location(); p.status != http.StatusSeeOther || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != appLogout || loc.Query().Get("state") != "rp-state" {
		t.Fatalf("logout ended with %d at %s (Location %q), want a redirect to %s with the RP's state", p.status, p.url, p.header.Get("Location"), appLogout)
	}
	if !slices.Contains(visited, sim.Issuer()+"/protocol/openid-connect/logout") || !slices.Contains(visited, g.issuer+flow.PathUpstreamLoggedOut) {
		t.Errorf("the browser did not go through PSC's end_session and back: %v", visited)
	}
	if got := sim.LoggedOut(); !slices.Equal(got, []string{pscSID}) {
		t.Errorf("PSC sessions ended: %v, want [%s]", got, pscSID)
	}
	// Garde's session is gone too.
	if p := br.get(r.authURL().url); !strings.Contains(p.body, `name="password"`) {
		t.Errorf("after logout the login page must come back: %d", p.status)
	}
	// The return leg only redirects for a state Garde issued (no open
	// redirect): an unknown state shows "signed out".
	if p := br.get(g.issuer + flow.PathUpstreamLoggedOut + "?state=whatever"); p.status != http.StatusOK || p.header.Get("Location") != "" {
		t.Errorf("unknown logout state: %d %q, want the signed-out page", p.status, p.header.Get("Location"))
	}

	// Without a post-logout URI, PSC sends the browser back to Garde's
	// signed-out page.
	toks2, pscSID2 := pscSignIn(t, g, br, r)
	p = br.get(g.issuer + "/logout?" + url.Values{"id_token_hint": {toks2.raw}}.Encode())
	if p.status != http.StatusOK || p.url.Path != flow.PathUpstreamLoggedOut || !slices.Contains(sim.LoggedOut(), pscSID2) {
		t.Errorf("logout without a return URI: %d at %s, PSC logouts %v (want %s)", p.status, p.url, sim.LoggedOut(), pscSID2)
	}

	// A password session has no PSC session to end: logout goes straight
	// to the RP.
	pw := g.newBrowser(t)
	code, a := signIn(t, g, pw, r, jdupont)
	ptoks, err := r.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	p = pw.get(g.issuer + "/logout?" + url.Values{"id_token_hint": {ptoks.raw}, "post_logout_redirect_uri": {appLogout}}.Encode())
	if p.status != http.StatusSeeOther || p.header.Get("Location") != appLogout || len(sim.LoggedOut()) != 2 {
		t.Errorf("password session logout: %d %q, PSC logouts %v", p.status, p.header.Get("Location"), sim.LoggedOut())
	}
}

// TestPSCBackchannelLogout: PSC's logout token ends the Garde session its
// session opened and revokes its refresh tokens; forged, misaddressed and
// replayed tokens end nothing.
func TestPSCBackchannelLogout(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) { testPSCBackchannelLogout(t, b) })
	}
}

func testPSCBackchannelLogout(t *testing.T, b backend) {
	jdupont := testutil.SlapdJDupont
	user := pscUser(jdupont.NationalID, "CARD")
	sim := startPSCSim(t)
	sim.SetNextUser(user)
	g := startPSCGarde(t, sim, gardeOptions{backend: b, extraConnectors: pscConnectorYAML(t, sim, true)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)
	toks, pscSID := pscSignIn(t, g, br, r)
	endpoint := g.issuer + flow.PathBackchannel + "/psc"
	ctx := context.Background()
	send := func(tok string) int {
		t.Helper()
		status, err := sim.SendLogoutToken(ctx, g.httpc, endpoint, tok)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	// stillSignedIn: SSO still works and the refresh token still does.
	rt := toks.oauth.RefreshToken
	stillSignedIn := func(t *testing.T) {
		t.Helper()
		a := r.authURL()
		p := br.get(a.url)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), appRedirect) {
			t.Fatalf("the session ended: authorize gave %d", p.status)
		}
		if _, err := r.exchange(r.code(p, a, g.issuer), a); err != nil {
			t.Fatal(err)
		}
		tok, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			t.Fatalf("refresh after a refused logout token: %v", err)
		}
		rt = tok.RefreshToken
	}

	t.Run("refused tokens end nothing", func(t *testing.T) {
		other := startPSCSim(t)
		now := time.Now()
		base := map[string]any{
			"iss": sim.Issuer(), "aud": sim.ClientID(), "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": "jti-" + testutilRandom(), "sid": pscSID, "sub": user.Sub(),
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		}
		with := func(k string, v any) map[string]any {
			c := map[string]any{}
			for kk, vv := range base {
				c[kk] = vv
			}
			c["jti"] = "jti-" + testutilRandom()
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		mint := func(s *psctest.Sim, c map[string]any) string {
			tok, err := s.MintJWT(c)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		for name, tok := range map[string]string{
			"signed by another key": mint(other, with("iss", sim.Issuer())),
			"wrong audience":        mint(sim, with("aud", "another-client")),
			"wrong issuer":          mint(sim, with("iss", other.Issuer())),
			"no events":             mint(sim, with("events", nil)),
			"with a nonce":          mint(sim, with("nonce", "n")),
			"not a JWT":             "not.a.jwt",
		} {
			if status := send(tok); status != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", name, status)
			}
		}
		// Not a form at all.
		resp, err := g.httpc.Post(endpoint, "application/json", strings.NewReader(`{"logout_token":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("JSON body: %d, want 400", resp.StatusCode)
		}
		stillSignedIn(t)
	})

	t.Run("PSC's logout token ends the session", func(t *testing.T) {
		tok := sim.LogoutToken(user.Sub(), pscSID)
		if status := send(tok); status != http.StatusOK {
			t.Fatalf("logout token: %d, want 200", status)
		}
		if p := br.get(r.authURL().url); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("after back-channel logout the login page must come back: %d", p.status)
		}
		if e := refreshError(t, r, rt); e != "invalid_grant" {
			t.Errorf("refresh after back-channel logout: %q, want invalid_grant", e)
		}
		waitAudit(t, g, store.AuditQuery{Type: audit.Logout}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool {
				return e.Details["how"] == "backchannel" && e.Person == "ad:"+jdupont.GUID && e.Details["refresh_tokens_revoked"] != "0"
			})
		})
		// The same token again: refused as a replay.
		if status := send(tok); status != http.StatusBadRequest {
			t.Errorf("replayed logout token: %d, want 400", status)
		}
	})

	t.Run("sid ends that session only, sub alone ends them all", func(t *testing.T) {
		// The same professional on two workstations: two PSC sessions,
		// two Garde sessions.
		ward, office := g.pscBrowser(t, sim), g.pscBrowser(t, sim)
		_, wardSID := pscSignIn(t, g, ward, r)
		_, officeSID := pscSignIn(t, g, office, r)
		if wardSID == officeSID {
			t.Fatal("the simulator gave both browsers one PSC session")
		}
		signedIn := func(br *browser) bool {
			return !strings.Contains(br.get(r.authURL().url).body, `name="password"`)
		}
		// OpenID Connect Back-Channel Logout 1.0 §2.4: with a sid, only
		// the session PSC ended.
		if status := send(sim.LogoutToken(user.Sub(), wardSID)); status != http.StatusOK {
			t.Fatalf("logout token for the ward's session: %d, want 200", status)
		}
		if signedIn(ward) || !signedIn(office) {
			t.Errorf("after PSC ended the ward's session: ward signed in %t (want false), office signed in %t (want true)", signedIn(ward), signedIn(office))
		}
		// Without a sid, every session of the person ends.
		_, wardSID = pscSignIn(t, g, ward, r)
		if status := send(sim.LogoutToken(user.Sub(), "")); status != http.StatusOK {
			t.Fatalf("logout token with sub only: %d, want 200", status)
		}
		if signedIn(ward) || signedIn(office) {
			t.Errorf("after a sub-only logout token: ward signed in %t, office signed in %t; want both signed out", signedIn(ward), signedIn(office))
		}
	})
}

// TestPSCBackchannelDisabled: with back_channel_logout false, the
// endpoint refuses even PSC's genuine tokens.
func TestPSCBackchannelDisabled(t *testing.T) {
	user := pscUser(testutil.SlapdJDupont.NationalID, "CARD")
	sim := startPSCSim(t)
	sim.SetNextUser(user)
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, false)})
	r := g.newRP(t, appID, appSecret, appRedirect)
	br := g.pscBrowser(t, sim)
	_, pscSID := pscSignIn(t, g, br, r)
	status, err := sim.SendLogoutToken(context.Background(), g.httpc, g.issuer+flow.PathBackchannel+"/psc", sim.LogoutToken(user.Sub(), pscSID))
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusBadRequest {
		t.Errorf("back-channel logout disabled, yet the endpoint answered %d, want 400", status)
	}
	a := r.authURL()
	if _, err := r.exchange(r.code(br.get(a.url), a, g.issuer), a); err != nil {
		t.Errorf("the session ended though back-channel logout is disabled: %v", err)
	}
}
