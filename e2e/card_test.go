package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// delegationClient is Pro Santé Connect's delegation client (HospiConnect).
const (
	delegID       = "psc-delegation"
	delegSecret   = "psc-delegation-secret-0123456789abcdef0123"
	delegRedirect = "https://wallet.psc.test/broker/garde/endpoint"
	delegTenant   = "750712184"
)

var delegationClientYAML = `  - id: ` + delegID + `
    name: Pro Santé Connect
    secret: ` + delegSecret + `
    redirect_uris: [` + delegRedirect + `]
    psc_delegation: {tenant_id: "` + delegTenant + `"}
`

func cardConnectorYAML(pki *testutil.CPSPKI, extra string) string {
	return fmt.Sprintf(`  - id: cps
    type: cps
    name: CPS
    cps:
      anchors_files: [%q]
      intermediates_files: [%q]
      crl_files: [%q, %q]
      listen_address: "{{CARD_LISTEN}}"
%s`, pki.RootFile, pki.InterFile, pki.CRLFiles[0], pki.CRLFiles[1], extra)
}

// cardBrowser is a browser with a card in the reader (nil: none).
func (g *gardeUnderTest) cardBrowser(t *testing.T, card *tls.Certificate) *browser {
	br := g.newBrowser(t)
	tr := g.httpc.Transport.(*http.Transport).Clone()
	if card != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*card}
	}
	br.c.Transport = tr
	jar, _ := cookiejar.New(nil)
	br.c.Jar = jar
	return br
}

var optionRE = regexp.MustCompile(`id="signin-(card|psc)-0" href="([^"]+)"`)

// methodURL is the login page's link that starts a card or PSC sign-in.
func methodURL(t *testing.T, p page, kind string) string {
	t.Helper()
	for _, m := range optionRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == kind {
			u, err := p.url.Parse(html.UnescapeString(m[2]))
			if err != nil {
				t.Fatal(err)
			}
			return u.String()
		}
	}
	t.Fatalf("no %s sign-in on the login page (%d at %s):\n%s", kind, p.status, p.url, truncate(p.body))
	return ""
}

func TestCardSignIn(t *testing.T) {
	pki := testutil.NewCPSPKI(t)
	jdupont := testutil.SlapdJDupont
	card := pki.IssueCard(t, testutil.CPSCard{IDNat: jdupont.NationalID, Given: "JEANNE", Family: "DUPONT", Title: "Médecin"})
	revoked := pki.IssueCard(t, testutil.CPSCard{IDNat: jdupont.NationalID, Given: "JEANNE", Family: "DUPONT", Title: "Médecin"})
	pki.RevokeCard(t, revoked)
	stranger := pki.IssueCard(t, testutil.CPSCard{IDNat: "899700075122", Given: "PAUL", Family: "INCONNU", Title: "Médecin"})
	g := startGardeWith(t, gardeOptions{backend: embedded, extraConnectors: cardConnectorYAML(pki, ""), extraClients: delegationClientYAML})
	if g.cardOrigin == "" {
		t.Fatal("no card listener started")
	}
	r := g.newRP(t, appID, appSecret, appRedirect)

	// The card, over a real TLS handshake with the card listener: the AD
	// account holding the same national id signs in, at level high.
	br := g.cardBrowser(t, &card)
	a := r.authURL()
	login := br.get(a.url)
	link := methodURL(t, login, "card")
	if !strings.HasPrefix(link, g.cardOrigin+"/login/card?") {
		t.Fatalf("card link %s, want on the card origin %s", link, g.cardOrigin)
	}
	toks, err := r.exchange(r.code(br.get(link), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	c := toks.claim
	if c.Sub != "ad:"+jdupont.GUID || c.ACR != assurance.ACRHigh || !slices.Contains(c.AMR, "sc") || c.NatID != jdupont.NationalID {
		t.Errorf("card sign-in claims = %+v; want the AD account's sub, acr high, amr sc", c)
	}
	if !slices.Contains(c.Groups, "medecins") || c.Email != jdupont.Email {
		t.Errorf("card sign-in did not take the AD account's groups and email: %+v", c)
	}

	// The same person with their AD password: the same sub.
	pw := g.newBrowser(t)
	code, a2 := signIn(t, g, pw, r, jdupont)
	toks2, err := r.exchange(code, a2)
	if err != nil {
		t.Fatal(err)
	}
	if toks2.claim.Sub != c.Sub {
		t.Errorf("password sign-in sub %q, card sign-in sub %q: one person must have one sub", toks2.claim.Sub, c.Sub)
	}

	// The link was recorded and audited.
	link0, err := g.app.Durable.GetIdentityLink(context.Background(), "cps", jdupont.NationalID)
	if err != nil || link0.Person != c.Sub || link0.Method != "national_id" {
		t.Errorf("identity link = %+v, %v", link0, err)
	}
	waitAudit(t, g, store.AuditQuery{Type: audit.IdentityLinked}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["source"] == "cps" && evs[0].Person == c.Sub
	})

	t.Run("HospiConnect delegation client", func(t *testing.T) {
		d := g.newRP(t, delegID, delegSecret, delegRedirect)
		// SSO from the card session: phishing-resistant, so it satisfies.
		a := d.authURL()
		toks, err := d.exchange(d.code(br.get(a.url), a, g.issuer), a)
		if err != nil {
			t.Fatal(err)
		}
		claims := jwtClaims(t, toks.raw)
		if claims["tid"] != delegTenant {
			t.Errorf("tid = %v, want %s", claims["tid"], delegTenant)
		}
		oid, _ := claims["oid"].(string)
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(oid) {
			t.Errorf("oid = %q, want a name-based UUID", oid)
		}
		if _, ok := claims["auth_time"]; !ok {
			t.Error("no auth_time")
		}
		amr := toks.claim.AMR
		if !slices.Equal(amr, []string{"sc", "pin", "hwk", "mfa"}) {
			t.Errorf("amr = %v", amr)
		}
		// The oid is the same when the person signs in again.
		a = d.authURL()
		toks3, err := d.exchange(d.code(br.get(a.url), a, g.issuer), a)
		if err != nil || jwtClaims(t, toks3.raw)["oid"] != oid {
			t.Errorf("oid changed between sign-ins: %v", err)
		}

		// A password-only session does not satisfy it: the person is asked
		// for only what is missing — the card, not the password again —
		// and a password posted anyway is refused.
		a = d.authURL()
		p := pw.get(a.url)
		if !strings.Contains(p.body, `id="signin-card-0"`) || strings.Contains(p.body, `name="password"`) ||
			!strings.Contains(p.body, `id="login-stepup"`) {
			t.Fatalf("password session for the delegation client: %d, want a step-up page offering only the card:\n%s", p.status, truncate(p.body))
		}
		_, form := p.form(t)
		form.Set("username", jdupont.Username)
		form.Set("password", jdupont.Password)
		if got := pw.post(g.issuer+"/login", form, g.issuer); got.status != http.StatusBadRequest {
			t.Errorf("password posted to a card-only step-up: %d, want 400", got.status)
		}
		// With prompt=none the application gets the spec's error at once.
		a = d.authURL(oauth2.SetAuthURLParam("prompt", "none"))
		p = pw.get(a.url)
		if loc := p.location(); p.status != http.StatusSeeOther || loc == nil || loc.Query().Get("error") != "login_required" {
			t.Errorf("prompt=none with a password session: %d %v, want error=login_required", p.status, loc)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			card *tls.Certificate
			want string
		}{
			{"revoked card", &revoked, "Cette carte a été révoquée."},
			{"no card", nil, "Aucun certificat de carte n'a été présenté."},
			{"no account holds the national id", &stranger, "Aucun compte de l'établissement ne correspond à votre identifiant national."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				br := g.cardBrowser(t, tc.card)
				a := r.authURL()
				p := br.get(methodURL(t, br.get(a.url), "card"))
				if p.status != http.StatusUnauthorized || !strings.HasSuffix(errorBox(t, p), tc.want) {
					t.Errorf("got %d %q, want 401 %q", p.status, errorBox(t, p), tc.want)
				}
				// Still on the login page: the person can use their password.
				if !strings.Contains(p.body, `name="password"`) {
					t.Error("refusal page is not the login page")
				}
			})
		}
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			reasons := map[string]bool{}
			for _, e := range evs {
				reasons[e.Reason] = true
			}
			return reasons["card_revoked"] && reasons["card_missing"] && reasons["no_local_account"]
		})
	})

	t.Run("card link is bound to the browser", func(t *testing.T) {
		// Another browser (no binding cookie) cannot use the link.
		a := r.authURL()
		link := methodURL(t, g.cardBrowser(t, &card).get(a.url), "card")
		other := g.cardBrowser(t, &card)
		if p := other.get(link); p.status != http.StatusBadRequest {
			t.Errorf("card link from another browser: %d, want 400", p.status)
		}
	})
}

// waitAudit polls the audit trail (the recorder writes in batches) until
// ok accepts the matching events.
func waitAudit(t *testing.T, g *gardeUnderTest, q store.AuditQuery, ok func([]store.AuditEvent) bool) {
	t.Helper()
	q.Limit = 500
	var evs []store.AuditEvent
	for range 100 {
		if err := g.app.Audit.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		var err error
		if evs, err = g.app.Durable.ListAuditEvents(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		if ok(evs) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("audit events %+v do not match", evs)
}
