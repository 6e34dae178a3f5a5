package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/admin"
	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/testutil"
)

// Console staff: static accounts whose groups carry the console's roles
// (the password is the break-glass one, to hash it once).
const adminStaffConnector = `  - id: staff
    type: static
    name: Informatique
    static:
      people:
        - {username: alice.admin, password_hash: "{{BGHASH}}", given_name: Alice, family_name: Admin, groups: [garde-admins]}
        - {username: hugo.support, password_hash: "{{BGHASH}}", given_name: Hugo, family_name: Support, groups: [support-informatique]}
        - {username: dora.dpo, password_hash: "{{BGHASH}}", given_name: Dora, family_name: DPO, groups: [dpo]}
`

const supervisionSecret = "robot-secret-0123456789abcdef0123456789abcdef"

const adminClientsYAML = `  - id: supervision
    name: Supervision
    secret: ` + supervisionSecret + `
    grant_types: [client_credentials]
`

// The loopback issuer lets the tests sign admins in with a password
// (min_level low is refused elsewhere).
const adminConfigYAML = `admin:
  roles:
    admin: [garde-admins]
    helpdesk: [support-informatique]
    auditor: [dpo]
  min_level: low
  api_clients:
    - {client: supervision, role: auditor}
`

func startAdminGarde(t *testing.T, b backend, localhost bool, extraClients string) *gardeUnderTest {
	t.Helper()
	return startGardeWith(t, gardeOptions{backend: b, localhost: localhost,
		extraConnectors: strings.ReplaceAll(adminStaffConnector, "{{BGHASH}}", breakGlassHash),
		extraClients:    adminClientsYAML + extraClients, extraConfig: adminConfigYAML})
}

// consoleUser is a browser signed in to the console (or refused).
type consoleUser struct {
	br      *browser
	csrf    string
	landing page
}

// signInConsole opens /admin and signs in with username and password.
func (g *gardeUnderTest) signInConsole(t *testing.T, username, password string) *consoleUser {
	t.Helper()
	br := g.newBrowser(t)
	lp := br.get(g.issuer + admin.PathHome)
	p := br.login(lp, username, password)
	u := &consoleUser{br: br, landing: p}
	if p.status == http.StatusOK && strings.Contains(p.body, "csrf_token") {
		_, f := p.form(t)
		u.csrf = f.Get("csrf_token")
	}
	return u
}

func (u *consoleUser) api(t *testing.T, g *gardeUnderTest, method, path string, body any) page {
	t.Helper()
	var req *http.Request
	if body != nil {
		b, _ := json.Marshal(body)
		req, _ = http.NewRequest(method, g.issuer+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(method, g.issuer+path, nil)
	}
	req.Header.Set("Accept", "application/json")
	if method != http.MethodGet {
		req.Header.Set(admin.CSRFHeader, u.csrf)
		req.Header.Set("Origin", g.issuer)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return u.br.do(req)
}

func bearer(t *testing.T, g *gardeUnderTest, method, path, token string, body any) page {
	t.Helper()
	var req *http.Request
	if body != nil {
		b, _ := json.Marshal(body)
		req, _ = http.NewRequest(method, g.issuer+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(method, g.issuer+path, nil)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func clientToken(t *testing.T, g *gardeUnderTest, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, g.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("client_credentials for %s: %d %v", id, resp.StatusCode, err)
	}
	return tok.AccessToken
}

// endpoint is one console page or API call and the permission it needs.
type endpoint struct {
	method, path string
	api          bool
	body         any // JSON body (API) or form (pages, url.Values)
	allowed      []string
}

var adminEndpoints = []endpoint{
	{"GET", admin.PathHome, false, nil, []string{"admin", "helpdesk", "auditor"}},
	{"GET", admin.PathSessions + "?q=jdupont", false, nil, []string{"admin", "helpdesk"}},
	{"POST", admin.PathSessionRevoke, false, url.Values{"sid": {"nope"}}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathSessionRevokeAll, false, url.Values{"subject": {"ad:nobody"}}, []string{"admin", "helpdesk"}},
	{"GET", admin.PathPeople + "?q=jdupont", false, nil, []string{"admin", "helpdesk"}},
	{"POST", admin.PathKeyRevoke, false, url.Values{"subject": {"ad:nobody"}}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathCode, false, url.Values{"subject": {"ad:nobody"}}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathUnlink, false, url.Values{"subject": {"ad:nobody"}, "source": {"psc"}, "source_subject": {"8000"}}, []string{"admin", "helpdesk"}},
	{"GET", admin.PathAudit, false, nil, []string{"admin", "auditor"}},
	{"GET", admin.PathAuditExport + "?format=csv", false, nil, []string{"admin", "auditor"}},
	{"GET", admin.PathEmergency, false, nil, []string{"admin", "auditor"}},
	{"POST", admin.PathEmergencyAck, false, url.Values{"event_id": {"999999"}, "comment": {"vu"}}, []string{"admin"}},
	{"GET", admin.PathApps, false, nil, []string{"admin"}},

	{"GET", admin.PathAPIWhoami, true, nil, []string{"admin", "helpdesk", "auditor"}},
	{"GET", admin.PathAPISessions + "?q=jdupont", true, nil, []string{"admin", "helpdesk"}},
	{"POST", admin.PathAPISessionRevoke, true, map[string]string{"sid": "nope"}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathAPISessionRevokeAll, true, map[string]string{"subject": "ad:nobody"}, []string{"admin", "helpdesk"}},
	{"GET", admin.PathAPIPeople + "?q=jdupont", true, nil, []string{"admin", "helpdesk"}},
	{"GET", admin.PathAPIPerson + "?subject=ad:nobody", true, nil, []string{"admin", "helpdesk"}},
	{"POST", admin.PathAPIKeyRevoke, true, map[string]string{"subject": "ad:nobody"}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathAPICode, true, map[string]string{"subject": "ad:nobody"}, []string{"admin", "helpdesk"}},
	{"POST", admin.PathAPIUnlink, true, map[string]string{"subject": "ad:nobody", "source": "psc", "source_subject": "8000"}, []string{"admin", "helpdesk"}},
	{"GET", admin.PathAPIAudit, true, nil, []string{"admin", "auditor"}},
	{"GET", admin.PathAPIAuditExport + "?format=json", true, nil, []string{"admin", "auditor"}},
	{"GET", admin.PathAPIEmergency, true, nil, []string{"admin", "auditor"}},
	{"POST", admin.PathAPIEmergencyAck, true, map[string]any{"event_id": 999999, "comment": "vu"}, []string{"admin"}},
	{"GET", admin.PathAPIApps, true, nil, []string{"admin"}},
}

func (u *consoleUser) call(t *testing.T, g *gardeUnderTest, e endpoint) page {
	t.Helper()
	if e.api {
		return u.api(t, g, e.method, e.path, e.body)
	}
	if e.method == http.MethodGet {
		return u.br.get(g.issuer + e.path)
	}
	form := url.Values{}
	if e.body != nil {
		for k, v := range e.body.(url.Values) {
			form[k] = v
		}
	}
	form.Set("csrf_token", u.csrf)
	return u.br.post(g.issuer+e.path, form, g.issuer)
}

// TestAdminAuthorization: every page and API call, for every role, a
// clinician without one, and nobody.
func TestAdminAuthorization(t *testing.T) {
	g := startAdminGarde(t, embedded, false, "")
	users := map[string]*consoleUser{
		"admin":    g.signInConsole(t, "alice.admin", breakGlassPassword),
		"helpdesk": g.signInConsole(t, "hugo.support", breakGlassPassword),
		"auditor":  g.signInConsole(t, "dora.dpo", breakGlassPassword),
	}
	for role, u := range users {
		if u.landing.status != http.StatusOK || u.csrf == "" {
			t.Fatalf("%s: console sign-in landed on %d %s:\n%s", role, u.landing.status, u.landing.url, truncate(u.landing.body))
		}
	}
	// A clinician signs in through Garde and is refused the console.
	clin := g.signInConsole(t, testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
	if clin.landing.status != http.StatusForbidden || clin.csrf != "" {
		t.Fatalf("clinician's console sign-in: %d, want 403 and no console", clin.landing.status)
	}
	waitAudit(t, g, store.AuditQuery{Type: admin.EventSignIn}, func(evs []store.AuditEvent) bool {
		return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Outcome == "failure" && e.Reason == "no_role" })
	})
	robot := clientToken(t, g, "supervision", supervisionSecret)
	// A clinician's own access token, from an application, opens nothing.
	patients := g.newRP(t, appID, appSecret, appRedirect)
	code, a := signIn(t, g, g.newBrowser(t), patients, testutil.SlapdJDupont)
	tok, err := patients.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	nobody := &consoleUser{br: g.newBrowser(t)}
	nobody.br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, e := range adminEndpoints {
		name := e.method + " " + e.path
		for role, u := range users {
			p := u.call(t, g, e)
			allowed := slices.Contains(e.allowed, role)
			switch {
			case allowed && (p.status == http.StatusForbidden || p.status == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d, want it allowed:\n%s", name, role, p.status, truncate(p.body))
			case !allowed && p.status != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", name, role, p.status)
			case !allowed && e.api && !strings.Contains(p.body, `"error":"forbidden"`):
				t.Errorf("%s as %s: body %s, want a JSON error", name, role, p.body)
			}
		}
		// The clinician: sent to sign in again and refused (pages), or
		// refused with their application token (API).
		if e.api {
			if p := bearer(t, g, e.method, e.path, tok.oauth.AccessToken, e.body); p.status != http.StatusForbidden {
				t.Errorf("%s with a clinician's access token: %d, want 403", name, p.status)
			}
		} else if e.method == http.MethodGet {
			if p := clin.call(t, g, e); p.status != http.StatusForbidden {
				t.Errorf("%s as a clinician: %d, want 403", name, p.status)
			}
		} else if p := clin.call(t, g, e); p.status != http.StatusUnauthorized && p.status != http.StatusForbidden {
			t.Errorf("%s as a clinician: %d, want 401/403", name, p.status)
		}
		// Nobody: pages redirect to the console's sign-in, the API says 401.
		p := nobody.call(t, g, e)
		switch {
		case e.api && p.status != http.StatusUnauthorized:
			t.Errorf("%s without a session: %d, want 401", name, p.status)
		case !e.api && e.method == http.MethodGet && (p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), admin.PathLogin)):
			t.Errorf("%s without a session: %d %s, want a redirect to sign in", name, p.status, p.header.Get("Location"))
		case !e.api && e.method == http.MethodPost && p.status != http.StatusUnauthorized:
			t.Errorf("%s without a session: %d, want 401", name, p.status)
		}
		// The automation client holds the auditor role.
		if e.api {
			p := bearer(t, g, e.method, e.path, robot, e.body)
			allowed := slices.Contains(e.allowed, "auditor")
			if allowed == (p.status == http.StatusForbidden || p.status == http.StatusUnauthorized) {
				t.Errorf("%s with the auditor client's token: %d (allowed %v)", name, p.status, allowed)
			}
		}
	}
	if p := bearer(t, g, "GET", admin.PathAPIWhoami, "forged-token", nil); p.status != http.StatusUnauthorized {
		t.Errorf("a forged bearer token: %d, want 401", p.status)
	}
	// A cookie API call without the CSRF header is refused.
	u := *users["admin"]
	u.csrf = ""
	if p := u.api(t, g, "POST", admin.PathAPISessionRevokeAll, map[string]string{"subject": "ad:nobody"}); p.status != http.StatusForbidden || !strings.Contains(p.body, "csrf") {
		t.Errorf("API POST without the CSRF header: %d %s, want 403", p.status, p.body)
	}
}

// TestAdminRevokesSessions: an admin's global sign-out of a person ends
// their sessions and revokes their refresh tokens; the person's next
// authorization shows the login page. An auditor cannot do it.
func TestAdminRevokesSessions(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) { adminRevokes(t, b) })
	}
}

func adminRevokes(t *testing.T, b backend) {
	g := startAdminGarde(t, b, false, "")
	patients := g.newRP(t, appID, appSecret, appRedirect)
	clinician := g.newBrowser(t)
	code, a := signIn(t, g, clinician, patients, testutil.SlapdJDupont)
	tok, err := patients.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	// A second session of the same person, in another browser.
	other := g.newBrowser(t)
	signIn(t, g, other, patients, testutil.SlapdJDupont)

	adm := g.signInConsole(t, "alice.admin", breakGlassPassword)
	aud := g.signInConsole(t, "dora.dpo", breakGlassPassword)

	p := adm.api(t, g, "GET", admin.PathAPISessions+"?q="+testutil.SlapdJDupont.Username, nil)
	var list struct {
		Subject  string              `json:"subject"`
		Sessions []admin.SessionInfo `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(p.body), &list); err != nil || p.status != 200 || len(list.Sessions) != 2 || list.Subject != tok.claim.Sub {
		t.Fatalf("sessions of jdupont: %d %s", p.status, p.body)
	}
	if s := list.Sessions[0]; s.Level == "" || len(s.AMR) == 0 || !slices.Contains(s.Apps, appID) {
		t.Errorf("session view lacks methods, level or apps: %+v", s)
	}

	// The auditor may not.
	if p := aud.api(t, g, "POST", admin.PathAPISessionRevokeAll, map[string]string{"subject": list.Subject}); p.status != http.StatusForbidden {
		t.Fatalf("auditor revoking: %d", p.status)
	}
	// The admin ends one, then all.
	if p := adm.api(t, g, "POST", admin.PathAPISessionRevoke, map[string]string{"sid": tok.claim.SID}); p.status != 200 {
		t.Fatalf("revoke one: %d %s", p.status, p.body)
	}
	if p := adm.api(t, g, "POST", admin.PathAPISessionRevoke, map[string]string{"sid": tok.claim.SID}); p.status != http.StatusNotFound {
		t.Errorf("revoking an ended session: %d, want 404", p.status)
	}
	p = adm.api(t, g, "POST", admin.PathAPISessionRevokeAll, map[string]string{"subject": list.Subject})
	if p.status != 200 || !strings.Contains(p.body, `"revoked":1`) {
		t.Fatalf("revoke all: %d %s", p.status, p.body)
	}
	// Both browsers are signed out: the next authorization asks for a
	// password.
	for i, br := range []*browser{clinician, other} {
		if p := br.get(patients.authURL().url); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("browser %d after global sign-out: %d at %s, want the login page", i, p.status, p.url)
		}
	}
	// The refresh token died with the session.
	if _, err := patients.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.oauth.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
		t.Error("the refresh token of a revoked session still works")
	}
	waitAudit(t, g, store.AuditQuery{Person: list.Subject}, func(evs []store.AuditEvent) bool {
		n := 0
		for _, e := range evs {
			if e.Type == "logout" && e.Details["how"] == "admin" && e.Details["by"] == "staff:alice.admin" && e.Details["refresh_tokens_revoked"] != "" {
				n++
			}
		}
		return n == 2 && slices.ContainsFunc(evs, func(e store.AuditEvent) bool {
			return e.Type == admin.EventAction && e.Details["action"] == "session.revoke_all" && e.Details["by"] == "staff:alice.admin"
		})
	})
}

// TestAdminPeopleAndEmergency: enrollment codes, key revocation and the
// emergency review queue, through the API, all audited.
func TestAdminPeopleAndEmergency(t *testing.T) {
	g := startAdminGarde(t, embedded, false, "")
	adm := g.signInConsole(t, "alice.admin", breakGlassPassword)
	help := g.signInConsole(t, "hugo.support", breakGlassPassword)

	p := help.api(t, g, "GET", admin.PathAPIPeople+"?q="+testutil.SlapdJDupont.Username, nil)
	var people struct {
		People []admin.PersonRef `json:"people"`
	}
	if err := json.Unmarshal([]byte(p.body), &people); err != nil || len(people.People) != 1 || people.People[0].Subject == "" {
		t.Fatalf("people search: %d %s", p.status, p.body)
	}
	sub := people.People[0].Subject
	p = help.api(t, g, "POST", admin.PathAPICode, map[string]string{"subject": sub})
	var code struct{ Code, Expires string }
	if err := json.Unmarshal([]byte(p.body), &code); err != nil || len(code.Code) != 19 {
		t.Fatalf("issue code: %d %s", p.status, p.body)
	}
	p = help.api(t, g, "GET", admin.PathAPIPerson+"?subject="+url.QueryEscape(sub), nil)
	if p.status != 200 || !strings.Contains(p.body, `"created_by":"staff:hugo.support"`) || strings.Contains(p.body, code.Code) {
		t.Errorf("person view: %d %s", p.status, p.body)
	}
	if p := help.api(t, g, "POST", admin.PathAPIKeyRevoke, map[string]string{"subject": sub, "id": "AAAA"}); p.status != http.StatusNotFound {
		t.Errorf("revoking a key the person does not have: %d", p.status)
	}
	if p := help.api(t, g, "POST", admin.PathAPIKeyRevoke, map[string]string{"subject": sub, "id": "%%%"}); p.status != http.StatusBadRequest {
		t.Errorf("a malformed key id: %d", p.status)
	}
	if p := help.api(t, g, "POST", admin.PathAPIKeyRevoke, map[string]any{"subject": sub, "extra": 1}); p.status != http.StatusBadRequest {
		t.Errorf("an unknown JSON field: %d", p.status)
	}

	// An emergency access waits for review.
	ctx := context.Background()
	if err := g.app.Durable.AppendAuditEvents(ctx, []store.AuditEvent{{Time: time.Now().UTC(), Type: admin.EventEmergencyDeclared,
		Person: sub, App: appID, Outcome: "success", Details: map[string]string{"reason": "bris_de_glace", "justification": "arrêt cardiaque box 3", "severity": "high"}}}); err != nil {
		t.Fatal(err)
	}
	var queue struct {
		Pending []admin.EmergencyItem `json:"pending"`
	}
	p = adm.api(t, g, "GET", admin.PathAPIEmergency, nil)
	if err := json.Unmarshal([]byte(p.body), &queue); err != nil || len(queue.Pending) != 1 || queue.Pending[0].Justification != "arrêt cardiaque box 3" {
		t.Fatalf("queue: %d %s", p.status, p.body)
	}
	id := queue.Pending[0].EventID
	if p := adm.api(t, g, "POST", admin.PathAPIEmergencyAck, map[string]any{"event_id": id, "comment": "   "}); p.status != http.StatusBadRequest {
		t.Errorf("ack without a comment: %d, want 400", p.status)
	}
	if p := help.api(t, g, "POST", admin.PathAPIEmergencyAck, map[string]any{"event_id": id, "comment": "ok"}); p.status != http.StatusForbidden {
		t.Errorf("helpdesk acknowledging: %d, want 403", p.status)
	}
	if p := adm.api(t, g, "POST", admin.PathAPIEmergencyAck, map[string]any{"event_id": id, "comment": "Vérifié avec le cadre de santé"}); p.status != 200 {
		t.Fatalf("ack: %d %s", p.status, p.body)
	}
	if p := adm.api(t, g, "POST", admin.PathAPIEmergencyAck, map[string]any{"event_id": id, "comment": "encore"}); p.status != http.StatusConflict {
		t.Errorf("second ack: %d, want 409", p.status)
	}
	waitAudit(t, g, store.AuditQuery{Type: admin.EventEmergencyReviewed}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["event_id"] == fmt.Sprint(id) && evs[0].Details["by"] == "staff:alice.admin" &&
			evs[0].Details["comment"] == "Vérifié avec le cadre de santé"
	})
	p = adm.api(t, g, "GET", admin.PathAPIEmergency, nil)
	if !strings.Contains(p.body, `"pending":[]`) {
		t.Errorf("queue after review: %s", p.body)
	}
	// The applications page explains the console's own policy too.
	p = adm.api(t, g, "GET", admin.PathAPIApps, nil)
	if p.status != 200 || !strings.Contains(p.body, `"id":"patients"`) || !strings.Contains(p.body, `"id":"garde-admin"`) {
		t.Errorf("apps: %d %s", p.status, truncate(p.body))
	}
	// An audit export by the admin is itself audited.
	if p := adm.br.get(g.issuer + admin.PathAuditExport + "?format=csv&type=emergency.reviewed"); p.status != 200 || !strings.HasPrefix(p.body, "id,time,type") {
		t.Errorf("export: %d %s", p.status, truncate(p.body))
	}
	if p := adm.br.get(g.issuer + admin.PathAudit + "?since=yesterday"); p.status != http.StatusBadRequest {
		t.Errorf("a bad audit filter: %d, want 400", p.status)
	}
	waitAudit(t, g, store.AuditQuery{Type: admin.EventAction}, func(evs []store.AuditEvent) bool {
		return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Details["action"] == "audit.export" }) &&
			slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Details["action"] == "enrollment_code.issue" })
	})
}

// TestAdminSignInSecurity: the console's level is enforced on the ID
// token; a callback the browser did not start is refused; a console
// session dies with the SSO session it came from; and the console's own
// sign-out needs its CSRF token.
func TestAdminSignInSecurity(t *testing.T) {
	t.Run("level", func(t *testing.T) {
		g := startGardeWith(t, gardeOptions{backend: embedded,
			extraConnectors: strings.ReplaceAll(adminStaffConnector, "{{BGHASH}}", breakGlassHash),
			extraClients:    adminClientsYAML,
			extraConfig:     strings.Replace(adminConfigYAML, "min_level: low", "min_level: substantial", 1)})
		u := g.signInConsole(t, "alice.admin", breakGlassPassword)
		if u.landing.status != http.StatusForbidden || u.csrf != "" {
			t.Fatalf("a password-only admin with min_level substantial: %d, want 403", u.landing.status)
		}
		if p := u.br.get(g.issuer + admin.PathAPIWhoami); p.status != http.StatusUnauthorized {
			t.Errorf("after a refused sign-in the API answered %d, want 401", p.status)
		}
		// The console is an administration application in the policy
		// engine, with the console's level as its floor: Garde's flow
		// refuses the password-only session itself (nothing here reaches
		// substantial: no key, no card) and explains it on its own page;
		// were a lower-level ID token issued anyway, the console's check
		// would refuse it too (level_too_low).
		waitAudit(t, g, store.AuditQuery{Type: audit.SignInFailure, App: admin.ClientID}, func(evs []store.AuditEvent) bool {
			return len(evs) == 1 && evs[0].Reason == "policy_level_too_low"
		})
	})

	g := startAdminGarde(t, embedded, false, "")
	t.Run("login csrf", func(t *testing.T) {
		// An attacker's callback URL (their own code and state) in the
		// victim's browser: the state is not the browser's.
		br := g.newBrowser(t)
		p := br.get(g.issuer + admin.PathCallback + "?code=attacker&state=attacker-state")
		if p.status != http.StatusBadRequest {
			t.Errorf("foreign callback: %d, want 400", p.status)
		}
		if p := br.get(g.issuer + admin.PathAPIWhoami); p.status != http.StatusUnauthorized {
			t.Errorf("after a foreign callback: %d, want 401", p.status)
		}
	})
	t.Run("console dies with the SSO session", func(t *testing.T) {
		adm := g.signInConsole(t, "alice.admin", breakGlassPassword)
		help := g.signInConsole(t, "hugo.support", breakGlassPassword)
		if p := adm.api(t, g, "GET", admin.PathAPIWhoami, nil); p.status != 200 || !strings.Contains(p.body, `"roles":["admin"]`) {
			t.Fatalf("whoami: %d %s", p.status, p.body)
		}
		// The helpdesk signs the admin out everywhere: the admin's console
		// session goes too.
		if p := help.api(t, g, "POST", admin.PathAPISessionRevokeAll, map[string]string{"subject": "staff:alice.admin"}); p.status != 200 {
			t.Fatalf("revoke the admin's sessions: %d %s", p.status, p.body)
		}
		if p := adm.api(t, g, "GET", admin.PathAPIWhoami, nil); p.status != http.StatusUnauthorized {
			t.Errorf("console after the admin's global sign-out: %d, want 401", p.status)
		}
	})
	t.Run("logout needs csrf", func(t *testing.T) {
		help := g.signInConsole(t, "hugo.support", breakGlassPassword)
		if p := help.br.post(g.issuer+admin.PathLogout, url.Values{"csrf_token": {"forged"}}, g.issuer); p.status != http.StatusForbidden {
			t.Errorf("logout with a forged token: %d", p.status)
		}
		if p := help.br.post(g.issuer+admin.PathLogout, url.Values{"csrf_token": {help.csrf}}, g.issuer); p.status != http.StatusOK {
			t.Errorf("logout: %d", p.status)
		}
		if p := help.api(t, g, "GET", admin.PathAPIWhoami, nil); p.status != http.StatusUnauthorized {
			t.Errorf("after logout: %d, want 401", p.status)
		}
	})
}
