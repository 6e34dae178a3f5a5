package e2e

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors/psc/psctest"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// Messages of the decoupled sign-in (French, as the browser asks).
const (
	msgPSCExpired      = "La demande de validation a expiré."
	msgInvalidRPPS     = "Ce numéro n'est pas un numéro RPPS : saisissez les 11 chiffres de votre numéro RPPS, ou 8 suivi de ces 11 chiffres."
	msgThrottledSignIn = "Trop de tentatives de connexion."
)

// decoupledGarde is Garde with the decoupled sign-in enabled, the PSC
// simulator, and one clock for both: the tests move time instead of
// sleeping through poll intervals.
type decoupledGarde struct {
	*gardeUnderTest
	sim   *psctest.Sim
	clock *testutil.Clock
	rp    *rp
	// seen are the simulator's requests already returned by pending.
	seen map[string]bool
}

func startDecoupledGarde(t *testing.T, b backend, channels string) *decoupledGarde {
	t.Helper()
	clk := testutil.NewClock(time.Now())
	sim, err := psctest.New(psctest.Config{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	conn := pscConnectorYAML(t, sim, false) + "      decoupled:\n        enabled: true\n        channels: " + channels + "\n"
	g := startPSCGarde(t, sim, gardeOptions{backend: b, extraConnectors: conn, clock: clk.Now})
	return &decoupledGarde{gardeUnderTest: g, sim: sim, clock: clk, rp: g.newRP(t, appID, appSecret, appRedirect), seen: map[string]bool{}}
}

var formactionRE = regexp.MustCompile(`formaction="([^"]+)"`)

// decoupledForm reads the login page's decoupled form: where it posts and
// its hidden fields.
func decoupledForm(t *testing.T, login page) (string, url.Values) {
	t.Helper()
	m := formactionRE.FindStringSubmatch(login.body)
	if m == nil || !strings.Contains(login.body, `name="national_id"`) {
		t.Fatalf("no decoupled sign-in form on the login page (%d at %s):\n%s", login.status, login.url, truncate(login.body))
	}
	action, err := login.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	_, form := login.form(t)
	return action.String(), form
}

// startDecoupled types national id on the login page and submits; it
// returns the page the browser lands on.
func (d *decoupledGarde) startDecoupled(t *testing.T, br *browser, login page, nationalID, channel string) page {
	t.Helper()
	action, form := decoupledForm(t, login)
	form.Set("national_id", nationalID)
	form.Set("channel", channel)
	return br.post(action, form, originOf(login.url))
}

var bindingRE = regexp.MustCompile(`id="binding-code"[^>]*>([0-9]{2})</p>`)

// waiting checks that p is the waiting page and returns its code.
func waiting(t *testing.T, p page) string {
	t.Helper()
	m := bindingRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil || p.url.Path != flow.PathDecoupled {
		t.Fatalf("expected the waiting page, got %d at %s:\n%s", p.status, p.url, truncate(p.body))
	}
	return m[1]
}

// pending returns the one new request waiting at the simulator.
func (d *decoupledGarde) pending(t *testing.T) (authReqID, binding string) {
	t.Helper()
	for id, b := range d.sim.PendingDecoupled() {
		if !d.seen[id] {
			if authReqID != "" {
				t.Fatal("more than one new decoupled request at PSC")
			}
			authReqID, binding = id, b
		}
	}
	if authReqID == "" {
		t.Fatal("no new decoupled request at PSC")
	}
	d.seen[authReqID] = true
	return authReqID, binding
}

// TestDecoupledSignIn: a clinician types their RPPS number; PSC pushes
// the request to their app with the code the waiting page shows; the page
// polls no faster than PSC's interval; once approved, the next load signs
// them in as their AD account, audited as a decoupled PSC sign-in.
func TestDecoupledSignIn(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) { testDecoupledSignIn(t, b) })
	}
}

func testDecoupledSignIn(t *testing.T, b backend) {
	jdupont := testutil.SlapdJDupont
	d := startDecoupledGarde(t, b, "[CARD, MOBILE]")
	br := d.pscBrowser(t, d.sim)
	a := d.rp.authURL()
	login := br.get(a.url)
	if !strings.Contains(login.body, `value="CARD"`) || !strings.Contains(login.body, `value="MOBILE"`) {
		t.Fatalf("both channels configured, no choice offered:\n%s", truncate(login.body))
	}
	// The RPPS number as printed, without the 8, with spaces.
	rpps := strings.TrimPrefix(jdupont.NationalID, "8")
	p := d.startDecoupled(t, br, login, rpps[:5]+" "+rpps[5:], "MOBILE")
	code := waiting(t, p)
	authReqID, binding := d.pending(t)
	if code != binding {
		t.Fatalf("the page shows %q, PSC pushed %q: the person could not compare them", code, binding)
	}
	if m := regexp.MustCompile(`<meta http-equiv="refresh" content="([0-9]+)">`).FindStringSubmatch(p.body); m == nil || m[1] != "1" {
		t.Errorf("waiting page refresh %v, want PSC's interval of 1 s", m)
	}

	// Reloading before the interval does not ask PSC, pending or approved.
	tokenCalls := d.sim.Calls("token")
	waiting(t, br.get(p.url.String()))
	if err := d.sim.ApproveDecoupled(authReqID); err != nil {
		t.Fatal(err)
	}
	waiting(t, br.get(p.url.String()))
	if n := d.sim.Calls("token"); n != tokenCalls {
		t.Fatalf("%d polls before the interval had passed", n-tokenCalls)
	}

	// After the interval: one poll, and the sign-in completes.
	d.clock.Advance(psctest.CIBAInterval)
	done := br.get(p.url.String())
	if n := d.sim.Calls("token"); n != tokenCalls+1 {
		t.Errorf("%d polls for one load, want 1", n-tokenCalls)
	}
	toks, err := d.rp.exchange(d.rp.code(done, a, d.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	c := toks.claim
	if c.Sub != "ad:"+jdupont.GUID || c.NatID != jdupont.NationalID {
		t.Errorf("sub %q national_id %q, want the AD account %q", c.Sub, c.NatID, "ad:"+jdupont.GUID)
	}
	if c.ACR != assurance.ACRSubstantial {
		t.Errorf("acr %q, want substantial for the e-CPS app", c.ACR)
	}
	waitAudit(t, d.gardeUnderTest, store.AuditQuery{Type: audit.SignInSuccess}, func(evs []store.AuditEvent) bool {
		return len(evs) == 1 && evs[0].Details["method"] == "psc" && evs[0].Details["connector"] == "psc" && evs[0].Person == c.Sub
	})
	waitAudit(t, d.gardeUnderTest, store.AuditQuery{Type: audit.SignInDecoupled}, func(evs []store.AuditEvent) bool {
		stages := map[string]bool{}
		for _, e := range evs {
			if e.Details["channel"] == "MOBILE" && e.Details["national_id"] == jdupont.NationalID && e.App == appID {
				stages[e.Details["stage"]] = true
			}
		}
		return len(evs) == 2 && stages["requested"] && stages["approved"]
	})
	// The attempt is spent: the waiting page is gone.
	if p := br.get(p.url.String()); p.status != http.StatusBadRequest {
		t.Errorf("waiting page after the sign-in: %d, want 400", p.status)
	}
}

// TestDecoupledRefused: denial, expiry, cancel and a poll from another
// browser each end without a session, on a readable page.
func TestDecoupledRefused(t *testing.T) {
	jdupont := testutil.SlapdJDupont
	d := startDecoupledGarde(t, embedded, "[MOBILE]")
	noSession := func(t *testing.T, br *browser) {
		t.Helper()
		if p := br.get(d.rp.authURL().url); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
			t.Errorf("the browser has a session: %d at %s", p.status, p.url)
		}
	}
	// Each case uses its own national id: three pushes per person per
	// ten minutes.
	begin := func(t *testing.T, nationalID string) (*browser, page, string) {
		t.Helper()
		br := d.pscBrowser(t, d.sim)
		login := br.get(d.rp.authURL().url)
		if !strings.Contains(login.body, `<input type="hidden" name="channel" value="MOBILE">`) || strings.Contains(login.body, `type="radio" name="channel"`) {
			t.Fatalf("one channel configured: want it hidden, no choice:\n%s", truncate(login.body))
		}
		p := d.startDecoupled(t, br, login, nationalID, "")
		waiting(t, p)
		id, _ := d.pending(t)
		return br, p, id
	}

	t.Run("denied on the phone", func(t *testing.T) {
		br, p, id := begin(t, jdupont.NationalID)
		if err := d.sim.DenyDecoupled(id); err != nil {
			t.Fatal(err)
		}
		d.clock.Advance(psctest.CIBAInterval)
		onLoginPage(t, br.get(p.url.String()), http.StatusUnauthorized, msgPSCDenied)
		noSession(t, br)
		waitAudit(t, d.gardeUnderTest, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool {
				return e.Reason == "psc_denied" && e.Details["decoupled"] == "true" && e.Details["channel"] == "MOBILE" && e.Details["method"] == "psc"
			})
		})
		if p := br.get(p.url.String()); p.status != http.StatusBadRequest {
			t.Errorf("waiting page after the denial: %d, want 400", p.status)
		}
	})

	t.Run("expired", func(t *testing.T) {
		br, p, _ := begin(t, strangerIDNat)
		d.clock.Advance(psctest.CIBAExpiresIn)
		calls := d.sim.Calls("token")
		onLoginPage(t, br.get(p.url.String()), http.StatusUnauthorized, msgPSCExpired)
		if d.sim.Calls("token") != calls {
			t.Error("Garde polled PSC for a request it knew had expired")
		}
		noSession(t, br)
		waitAudit(t, d.gardeUnderTest, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Reason == "psc_expired" && e.Details["decoupled"] == "true" })
		})
	})

	t.Run("cancelled", func(t *testing.T) {
		br, p, id := begin(t, "810000000017")
		m := regexp.MustCompile(`href="([^"]+)" id="decoupled-cancel"`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no cancel link:\n%s", p.body)
		}
		cancel, _ := p.url.Parse(html.UnescapeString(m[1]))
		// A forged cancel link does nothing.
		forged := *cancel
		q := forged.Query()
		q.Set("cancel", "forged")
		forged.RawQuery = q.Encode()
		if r := br.get(forged.String()); r.status != http.StatusBadRequest {
			t.Errorf("forged cancel: %d, want 400", r.status)
		}
		back := br.get(cancel.String())
		if back.status != http.StatusOK || back.url.Path != "/login" || !strings.Contains(back.body, `name="national_id"`) {
			t.Fatalf("cancel: %d at %s, want the login page", back.status, back.url)
		}
		// Approved too late: the flow no longer waits for it.
		_ = d.sim.ApproveDecoupled(id)
		d.clock.Advance(psctest.CIBAInterval)
		if r := br.get(p.url.String()); r.status != http.StatusBadRequest {
			t.Errorf("waiting page after cancel: %d, want 400", r.status)
		}
		noSession(t, br)
	})

	t.Run("polled from another browser", func(t *testing.T) {
		_, p, id := begin(t, jdupont.NationalID)
		if err := d.sim.ApproveDecoupled(id); err != nil {
			t.Fatal(err)
		}
		d.clock.Advance(psctest.CIBAInterval)
		// Someone who read the waiting page's address over the shoulder,
		// on another workstation: no binding cookie, no sign-in.
		attacker := d.pscBrowser(t, d.sim)
		calls := d.sim.Calls("token")
		if r := attacker.get(p.url.String()); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Errorf("another browser's poll: %d (Location %q), want 400", r.status, r.header.Get("Location"))
		}
		if d.sim.Calls("token") != calls {
			t.Error("Garde polled PSC for a browser that did not start the sign-in")
		}
		noSession(t, attacker)
	})
}

// TestDecoupledInputs: what reaches PSC is only a well-formed RPPS, from
// the login page's own form, within the push limits.
func TestDecoupledInputs(t *testing.T) {
	jdupont := testutil.SlapdJDupont
	d := startDecoupledGarde(t, embedded, "[CARD, MOBILE]")
	br := d.pscBrowser(t, d.sim)
	login := br.get(d.rp.authURL().url)
	action, form := decoupledForm(t, login)
	post := func(mod func(url.Values)) page {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("national_id", jdupont.NationalID)
		f.Set("channel", "CARD")
		mod(f)
		return br.post(action, f, originOf(login.url))
	}

	t.Run("invalid national id", func(t *testing.T) {
		for _, typed := range []string{"12345", "10000000008", "jdupont", "910000000009", strangerIDNat + "0"} {
			p := post(func(f url.Values) { f.Set("national_id", typed) })
			onLoginPage(t, p, http.StatusBadRequest, msgInvalidRPPS)
		}
		if n := d.sim.Calls("ciba"); n != 0 {
			t.Errorf("%d requests sent to PSC for invalid numbers", n)
		}
	})

	t.Run("form tokens required", func(t *testing.T) {
		for name, c := range map[string]struct {
			mod    func(url.Values)
			status int
		}{
			"no CSRF token":     {func(f url.Values) { f.Del("csrf_token") }, http.StatusForbidden},
			"wrong CSRF token":  {func(f url.Values) { f.Set("csrf_token", "forged") }, http.StatusForbidden},
			"no step":           {func(f url.Values) { f.Del("step") }, http.StatusBadRequest},
			"unknown source":    {func(f url.Values) { f.Set("source", "ad") }, http.StatusBadRequest},
			"channel not known": {func(f url.Values) { f.Set("channel", "SMS") }, http.StatusBadRequest},
		} {
			if p := post(c.mod); p.status != c.status {
				t.Errorf("%s: %d, want %d", name, p.status, c.status)
			}
		}
		// Another browser with the page's fields but not its cookie.
		other := d.pscBrowser(t, d.sim)
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("national_id", jdupont.NationalID)
		if p := other.post(action, f, originOf(login.url)); p.status != http.StatusBadRequest {
			t.Errorf("another browser: %d, want 400", p.status)
		}
		if n := d.sim.Calls("ciba"); n != 0 {
			t.Errorf("%d requests sent to PSC without the form's tokens", n)
		}
	})

	t.Run("push limit per national id", func(t *testing.T) {
		for i := range 3 {
			waiting(t, post(func(url.Values) {}))
			if n := d.sim.Calls("ciba"); n != i+1 {
				t.Fatalf("request %d: %d calls to PSC", i+1, n)
			}
		}
		p := post(func(url.Values) {})
		if p.status != http.StatusTooManyRequests || !strings.HasSuffix(errorBox(t, p), msgThrottledSignIn) {
			t.Errorf("fourth request: %d %q, want 429 with %q", p.status, errorBox(t, p), msgThrottledSignIn)
		}
		// Not even as the RPPS without its 8: the limit is on the person.
		p = post(func(f url.Values) { f.Set("national_id", strings.TrimPrefix(jdupont.NationalID, "8")) })
		if p.status != http.StatusTooManyRequests {
			t.Errorf("same person, other spelling: %d, want 429", p.status)
		}
		if n := d.sim.Calls("ciba"); n != 3 {
			t.Errorf("%d calls to PSC, want 3", n)
		}
		waitAudit(t, d.gardeUnderTest, store.AuditQuery{Type: audit.SignInFailure}, func(evs []store.AuditEvent) bool {
			return slices.ContainsFunc(evs, func(e store.AuditEvent) bool { return e.Reason == "throttled" && e.Details["decoupled"] == "true" })
		})
		// Another clinician at the same workstation is not blocked.
		waiting(t, post(func(f url.Values) { f.Set("national_id", strangerIDNat) }))
	})
}

// TestDecoupledOff: a PSC connector without decoupled: enabled offers no
// form and serves no endpoint.
func TestDecoupledOff(t *testing.T) {
	sim := startPSCSim(t)
	g := startPSCGarde(t, sim, gardeOptions{backend: embedded, extraConnectors: pscConnectorYAML(t, sim, false)})
	br := g.pscBrowser(t, sim)
	login := br.get(g.newRP(t, appID, appSecret, appRedirect).authURL().url)
	if strings.Contains(login.body, "national_id") {
		t.Error("decoupled form offered while not enabled")
	}
	_, form := login.form(t)
	form.Set("national_id", testutil.SlapdJDupont.NationalID)
	form.Set("source", "psc")
	if p := br.post(g.issuer+flow.PathDecoupled, form, originOf(login.url)); p.status == http.StatusOK || p.status == http.StatusSeeOther {
		t.Errorf("decoupled endpoint answered %d while not enabled", p.status)
	}
	if sim.Calls("ciba") != 0 {
		t.Error("PSC was asked for a decoupled sign-in")
	}
}
