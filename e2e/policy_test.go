package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/alert"
	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

var backToAppRE = regexp.MustCompile(`id="back-to-app" href="([^"]+)"`)

const alertSecret = "alert-secret-0123456789abcdef0123456789"

// alertSink is the hospital's alerting endpoint: it keeps what it receives
// and checks the signature.
type alertSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	bad  int
	seen chan struct{}
}

func newAlertSink(t *testing.T) *alertSink {
	a := &alertSink{seen: make(chan struct{}, 16)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Header.Get(alert.SignatureHeader) != alert.Sign([]byte(alertSecret), b) {
			a.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		a.got = append(a.got, m)
		a.seen <- struct{}{}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// TestPolicies runs the per-application policies end to end: emergency
// access for a person outside the allowed groups, the strictest rule, an
// essential acr that cannot be met, a zone that denies, a CEL condition,
// and step-up by card through OpenID Connect and SAML.
func TestPolicies(t *testing.T) {
	pki := testutil.NewCPSPKI(t)
	jdupont, pmartin := testutil.SlapdJDupont, testutil.SlapdPMartin
	card := pki.IssueCard(t, testutil.CPSCard{IDNat: jdupont.NationalID, Given: "JEANNE", Family: "DUPONT", Title: "Médecin"})
	sink := newAlertSink(t)
	samlSP := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	emergencySP := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	extra := samlConfig(t, map[*testSP]string{samlSP: "      sign: both\n", emergencySP: "      sign: both\n"}) + fmt.Sprintf(`alerts:
  webhook_url: %s/alert
  webhook_secret: %s
policies:
  zones:
    - {name: lan, networks: [127.0.0.0/8]}
  applications:
    # The patient record: physicians only; others may break the glass.
    - id: patients
      allow: {groups: [medecins]}
      emergency: {allowed: true, lifetime: 20m, per_person_per_day: 1}
    # The lab: a card (high) is required.
    - id: labo
      min_level: high
    # Scheduling: not from the LAN (to test zones), and a condition.
    - id: planning
      zones:
        - {zone: lan, deny: true}
    # The pharmacy accepts neither the card nor PSC: nothing here reaches high.
    - id: pharmacie
      methods: [password, passkey, key]
    - id: %q
      min_level: high
    # A SAML patient record: physicians only, emergency access allowed.
    - id: %q
      allow: {groups: [medecins]}
      emergency: {allowed: true, per_person_per_day: 5}
`, sink.srv.URL, alertSecret, samlSP.id, emergencySP.id)
	clients := `  - id: pharmacie
    name: Pharmacie
    secret: pharmacie-secret-0123456789abcdef0123
    redirect_uris: [https://pharmacie.test/cb]
`
	g := startGardeWith(t, gardeOptions{backend: embedded, extraConnectors: cardConnectorYAML(pki, ""), extraConfig: extra, extraClients: clients})
	samlSP.trustGarde(g)
	emergencySP.trustGarde(g)
	patients := g.newRP(t, appID, appSecret, appRedirect)
	labo := g.newRP(t, labID, labSecret, labRedirect)

	t.Run("emergency access", func(t *testing.T) {
		br := g.newBrowser(t)
		a := patients.authURL()
		p := br.login(br.get(a.url), pmartin.Username, pmartin.Password)
		// Denied for lack of role, with the emergency declaration offered.
		if p.status != http.StatusForbidden || !strings.Contains(p.body, `name="justification"`) {
			t.Fatalf("nurse on the physicians' application: %d, want the emergency page:\n%s", p.status, truncate(p.body))
		}
		if !strings.Contains(p.text(), "Votre compte ne fait partie d'aucun des groupes autorisés") {
			t.Errorf("the page does not say why access is denied:\n%s", truncate(p.body))
		}
		action, form := p.form(t)
		// A justification is required.
		form.Set("reason", "bris_de_glace")
		form.Set("justification", "vite")
		if q := br.post(action, form, g.issuer); q.status != http.StatusBadRequest || !strings.Contains(q.text(), "au moins 10 caractères") {
			t.Fatalf("short justification: %d", q.status)
		}
		// A reason outside the national list is refused.
		form.Set("reason", "curiosite")
		form.Set("justification", "Patient inconscient aux urgences, box 4")
		if q := br.post(action, form, g.issuer); q.status != http.StatusBadRequest {
			t.Fatalf("unknown reason: %d, want 400", q.status)
		}
		form.Set("reason", "bris_de_glace")
		toks, err := patients.exchange(patients.code(br.post(action, form, g.issuer), a, g.issuer), a)
		if err != nil {
			t.Fatal(err)
		}
		claims := jwtClaims(t, toks.raw)
		if claims["access_mode"] != "bris_de_glace" || toks.claim.Sub != "ad:"+pmartin.GUID {
			t.Errorf("emergency token claims = %v", claims)
		}
		if toks.oauth.RefreshToken != "" {
			t.Error("an emergency access must not be renewable: a refresh token was issued")
		}
		// The alert went out at once, signed.
		<-sink.seen
		sink.mu.Lock()
		got := sink.got[0]
		sink.mu.Unlock()
		al, _ := got["alert"].(map[string]any)
		if got["kind"] != "emergency_access" || al["person"] != "ad:"+pmartin.GUID || al["app"] != appID ||
			al["reason"] != "bris_de_glace" || al["justification"] != "Patient inconscient aux urgences, box 4" {
			t.Errorf("alert = %v", got)
		}
		// A high-severity audit event awaits review.
		waitAudit(t, g, store.AuditQuery{Type: audit.EmergencyDeclared}, func(evs []store.AuditEvent) bool {
			return len(evs) == 1 && evs[0].Details["severity"] == "high" && evs[0].Reason == "bris_de_glace" &&
				evs[0].Details["denied_for"] == "group_not_allowed" && evs[0].App == appID
		})
		// SSO to the same application within the emergency: no page, and
		// the access mode is still said.
		a = patients.authURL()
		toks, err = patients.exchange(patients.code(br.get(a.url), a, g.issuer), a)
		if err != nil || jwtClaims(t, toks.raw)["access_mode"] != "bris_de_glace" {
			t.Fatalf("SSO during the emergency: %v", err)
		}
		// The emergency opens that application only.
		ph := g.newRP(t, "pharmacie", "pharmacie-secret-0123456789abcdef0123", "https://pharmacie.test/cb")
		a = ph.authURL()
		toks, err = ph.exchange(ph.code(br.get(a.url), a, g.issuer), a)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := jwtClaims(t, toks.raw)["access_mode"]; ok {
			t.Error("another application's token carries the emergency access mode")
		}
		// The same nurse's second emergency of the day, in a new browser: over
		// the limit of one, refused without the declaration form.
		br2 := g.newBrowser(t)
		a = patients.authURL()
		p = br2.login(br2.get(a.url), pmartin.Username, pmartin.Password)
		if p.status != http.StatusForbidden || strings.Contains(p.body, `name="justification"`) {
			t.Errorf("second emergency of the day: %d, want a refusal without the declaration form", p.status)
		}
	})

	t.Run("emergency access to a SAML application", func(t *testing.T) {
		br := g.newBrowser(t)
		p := br.login(br.get(emergencySP.srv.URL+"/app"), pmartin.Username, pmartin.Password)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, `name="justification"`) {
			t.Fatalf("nurse on the SAML patient record: %d, want the emergency page:\n%s", p.status, truncate(p.body))
		}
		action, form := p.form(t)
		form.Set("reason", "centre_15")
		form.Set("justification", "Régulation : patient transféré depuis le SAMU")
		app := br.postSAML(br.post(action, form, g.issuer))
		if app.status != http.StatusOK || !strings.Contains(app.body, "SP application") {
			t.Fatalf("SAML emergency access: %d\n%s", app.status, truncate(app.body))
		}
		if !strings.Contains(app.body, "accessMode=centre_15") {
			t.Errorf("the assertion does not carry the access mode:\n%s", app.body)
		}
		// The SAML application that does not allow emergencies is not
		// opened by it.
		if p := br.get(samlSP.srv.URL + "/app"); strings.Contains(p.body, "SP application") {
			t.Error("an emergency access opened another SAML application")
		}
	})

	t.Run("strictest rule and step-up by card over OIDC", func(t *testing.T) {
		br := g.cardBrowser(t, &card)
		code, a := signIn(t, g, br, patients, jdupont)
		if _, err := patients.exchange(code, a); err != nil {
			t.Fatal(err)
		}
		// The lab requires high: the password session is asked for the
		// card only, then the token says high.
		a = labo.authURL()
		p := br.get(a.url)
		if strings.Contains(p.body, `name="password"`) || !strings.Contains(p.body, `id="login-stepup"`) {
			t.Fatalf("step-up page expected:\n%s", truncate(p.body))
		}
		toks, err := labo.exchange(labo.code(br.get(methodURL(t, p, "card")), a, g.issuer), a)
		if err != nil {
			t.Fatal(err)
		}
		if toks.claim.ACR != assurance.ACRHigh || toks.claim.Sub != "ad:"+jdupont.GUID {
			t.Errorf("after step-up: acr %s sub %s", toks.claim.ACR, toks.claim.Sub)
		}
		waitAudit(t, g, store.AuditQuery{Type: audit.StepUpRequired, App: labID}, func(evs []store.AuditEvent) bool {
			return len(evs) >= 1 && evs[0].Details["to"] == "high" && evs[0].Details["methods"] == "card"
		})
	})

	t.Run("step-up by card over SAML", func(t *testing.T) {
		br := g.cardBrowser(t, &card)
		code, a := signIn(t, g, br, patients, jdupont)
		if _, err := patients.exchange(code, a); err != nil {
			t.Fatal(err)
		}
		p := br.get(samlSP.srv.URL + "/app")
		if strings.Contains(p.body, `name="password"`) || !strings.Contains(p.body, `id="login-stepup"`) {
			t.Fatalf("SAML application requiring high: step-up page expected:\n%s", truncate(p.body))
		}
		app := br.postSAML(br.get(methodURL(t, p, "card")))
		if app.status != http.StatusOK || !strings.Contains(app.body, "assuranceLevel="+assurance.ACRHigh) {
			t.Fatalf("SAML after step-up: %d\n%s", app.status, truncate(app.body))
		}
	})

	t.Run("zone denies with a readable reason", func(t *testing.T) {
		spa := g.newRP(t, spaID, "", spaRedirect)
		br := g.newBrowser(t)
		a := spa.authURL()
		p := br.login(br.get(a.url), jdupont.Username, jdupont.Password)
		if p.status != http.StatusForbidden || !strings.Contains(p.text(), "n'est pas accessible depuis le réseau où vous vous trouvez") {
			t.Fatalf("zone denial: %d\n%s", p.status, truncate(p.body))
		}
		var m string
		if sub := backToAppRE.FindStringSubmatch(p.body); sub != nil {
			m = html.UnescapeString(sub[1])
		}
		u, err := url.Parse(m)
		if err != nil || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != a.state {
			t.Errorf("back link %q, want the application with error=access_denied", m)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		rec := httptest.NewRecorder()
		g.app.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		body := rec.Body.String()
		for _, want := range []string{
			`garde_emergency_accesses_total{mode="bris_de_glace"} 1`,
			`garde_stepups_total{reason="level_too_low",to="high"}`,
			`garde_connector_duration_seconds_count{connector="ad",op="login"}`,
			`garde_tokens_issued_total{grant_type="authorization_code"}`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("essential acr", func(t *testing.T) {
		ph := g.newRP(t, "pharmacie", "pharmacie-secret-0123456789abcdef0123", "https://pharmacie.test/cb")
		high := `{"id_token":{"acr":{"essential":true,"values":["` + assurance.ACRHigh + `"]}}}`
		// The methods the pharmacy accepts reach low at most: an essential
		// high is the spec's error, never a weaker token.
		br := g.newBrowser(t)
		a := ph.authURL(oauth2.SetAuthURLParam("claims", high))
		p := br.login(br.get(a.url), jdupont.Username, jdupont.Password)
		if loc := p.location(); loc == nil || loc.Query().Get("error") != "unmet_authentication_requirements" || loc.Query().Get("state") != a.state {
			t.Fatalf("essential high unreachable: %d %v, want error=unmet_authentication_requirements", p.status, loc)
		}
		// Voluntary, the same request is answered with what can be had,
		// and the token says so.
		a = ph.authURL(oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh))
		toks, err := ph.exchange(ph.code(br.get(a.url), a, g.issuer), a)
		if err != nil || toks.claim.ACR != assurance.ACRLow {
			t.Fatalf("voluntary high: %v, acr %v; want a token saying low", err, toks)
		}
		// Where the card is accepted, an essential high steps the password
		// session up to the card instead.
		cbr := g.cardBrowser(t, &card)
		code, a0 := signIn(t, g, cbr, patients, jdupont)
		if _, err := patients.exchange(code, a0); err != nil {
			t.Fatal(err)
		}
		a = patients.authURL(oauth2.SetAuthURLParam("claims", high))
		p = cbr.get(a.url)
		if strings.Contains(p.body, `name="password"`) || !strings.Contains(p.body, `id="signin-card-0"`) {
			t.Fatalf("essential high with a card available: want the card step-up:\n%s", truncate(p.body))
		}
		toks, err = patients.exchange(patients.code(cbr.get(methodURL(t, p, "card")), a, g.issuer), a)
		if err != nil || toks.claim.ACR != assurance.ACRHigh {
			t.Fatalf("after the card: %v %+v", err, toks)
		}
		// Malformed claims: invalid_request to the application.
		a = ph.authURL(oauth2.SetAuthURLParam("claims", `{"id_token":`))
		p = br.get(a.url)
		if loc := p.location(); loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("malformed claims: %d %v, want error=invalid_request", p.status, loc)
		}
	})
}

// An application's session lifetime: a session older than the
// application allows is asked to sign in again there, while the
// applications that allow it still ride the SSO session.
func TestPolicySessionLifetime(t *testing.T) {
	// Garde's clock starts in the past and is moved forward by the test;
	// fosite reads the real time, and an auth_time ahead of it would be
	// refused.
	clock := testutil.NewClock(time.Now().Add(-time.Hour))
	g := startGardeWith(t, gardeOptions{backend: embedded, clock: clock.Now, extraConfig: `policies:
  applications:
    - id: labo
      session: {lifetime: 10m, idle: 5m}
`})
	patients := g.newRP(t, appID, appSecret, appRedirect)
	labo := g.newRP(t, labID, labSecret, labRedirect)
	br := g.newBrowser(t)
	u := testutil.SlapdJDupont
	code, a := signIn(t, g, br, patients, u)
	if _, err := patients.exchange(code, a); err != nil {
		t.Fatal(err)
	}
	// Within the lab's bounds: SSO.
	clock.Advance(4 * time.Minute)
	a = labo.authURL()
	if _, err := labo.exchange(labo.code(br.get(a.url), a, g.issuer), a); err != nil {
		t.Fatalf("SSO within the lab's lifetime: %v", err)
	}
	// Past the lab's absolute lifetime (10 min since sign-in), though the
	// session itself lives 4 h: the lab asks for a sign-in again.
	clock.Advance(7 * time.Minute)
	a = labo.authURL()
	p := br.get(a.url)
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("the lab after 11 minutes: %d, want the login page:\n%s", p.status, truncate(p.body))
	}
	// The patient record has no such bound: still SSO.
	a2 := patients.authURL()
	if _, err := patients.exchange(patients.code(br.get(a2.url), a2, g.issuer), a2); err != nil {
		t.Fatalf("SSO to the patient record: %v", err)
	}
	// Signing in again satisfies the lab, and its token says the new
	// authentication time.
	toks, err := labo.exchange(labo.code(br.login(p, u.Username, u.Password), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(toks.claim.AuthTime, 0); clock.Now().Sub(got) > time.Minute {
		t.Errorf("auth_time %v, want the new sign-in (%v)", got, clock.Now())
	}
}

// An emergency lifts who may enter, never how strongly: a nurse with a
// password session on an application requiring the card reaches it with
// the card first, then may declare the emergency.
func TestEmergencyNeedsTheFloorFirst(t *testing.T) {
	pki := testutil.NewCPSPKI(t)
	pmartin := testutil.SlapdPMartin
	card := pki.IssueCard(t, testutil.CPSCard{IDNat: pmartin.NationalID, Given: "PAUL", Family: "MARTIN", Title: "Infirmier"})
	g := startGardeWith(t, gardeOptions{backend: embedded, extraConnectors: cardConnectorYAML(pki, ""), extraConfig: `policies:
  applications:
    - id: patients
      min_level: high
      allow: {groups: [medecins]}
      emergency: {allowed: true}
`})
	patients := g.newRP(t, appID, appSecret, appRedirect)
	br := g.cardBrowser(t, &card)
	a := patients.authURL()
	p := br.login(br.get(a.url), pmartin.Username, pmartin.Password)
	// First the card (the floor), not the declaration.
	if strings.Contains(p.body, `name="justification"`) || !strings.Contains(p.body, `id="signin-card-0"`) || strings.Contains(p.body, `name="password"`) {
		t.Fatalf("password session below the floor: want the card step-up first:\n%s", truncate(p.body))
	}
	if !strings.Contains(p.text(), "y compris pour déclarer un accès en urgence") {
		t.Errorf("the step-up page does not say why:\n%s", truncate(p.body))
	}
	p = br.get(methodURL(t, p, "card"))
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `name="justification"`) {
		t.Fatalf("after the card: %d, want the emergency declaration:\n%s", p.status, truncate(p.body))
	}
	action, form := p.form(t)
	form.Set("reason", "bris_de_glace")
	form.Set("justification", "Arrêt cardiaque en salle 12, médecin absent")
	toks, err := patients.exchange(patients.code(br.post(action, form, g.issuer), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	if c := jwtClaims(t, toks.raw); c["access_mode"] != "bris_de_glace" || toks.claim.ACR != assurance.ACRHigh || toks.claim.Sub != "ad:"+pmartin.GUID {
		t.Errorf("emergency after the card: claims %v, acr %s", c, toks.claim.ACR)
	}
}
