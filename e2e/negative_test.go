package e2e

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/internal/testutil"
)

var tagRE = regexp.MustCompile(`<[^>]*>`)

// text is the page body with HTML entities decoded.
func (p page) text() string { return html.UnescapeString(p.body) }

// errorBox extracts the login page's error message.
func errorBox(t *testing.T, p page) string {
	t.Helper()
	i := strings.Index(p.body, `role="alert"`)
	if i < 0 {
		t.Fatalf("no error message on the page (%d):\n%s", p.status, truncate(p.body))
	}
	rest := p.body[i:]
	if j := strings.Index(rest, "</div>"); j >= 0 {
		rest = rest[:j]
	}
	rest = tagRE.ReplaceAllString(rest[strings.IndexByte(rest, '>')+1:], "")
	return strings.TrimSpace(html.UnescapeString(rest))
}

// TestNoUserEnumeration: a wrong password and an unknown account get the
// same status and the same message.
func TestNoUserEnumeration(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	wrong := br.login(br.get(app.authURL().url), testutil.SlapdJDupont.Username, "not-her-password")
	unknown := br.login(br.get(app.authURL().url), "nobody-here", "whatever-password")
	if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized {
		t.Fatalf("status wrong=%d unknown=%d, want 401 for both", wrong.status, unknown.status)
	}
	mw, mu := errorBox(t, wrong), errorBox(t, unknown)
	if mw != mu || !strings.Contains(mw, "Identifiant ou mot de passe incorrect") {
		t.Fatalf("messages differ or are wrong:\n wrong:   %q\n unknown: %q", mw, mu)
	}
	// The username typed is kept for the retry, the password never.
	if !strings.Contains(wrong.body, `value="jdupont"`) || strings.Contains(wrong.body, "not-her-password") {
		t.Errorf("the retry page should keep the username and drop the password")
	}
}

// TestAccountStates: AD account states get clear messages, but only with
// the right password.
func TestAccountStates(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	cases := []struct {
		user testutil.SlapdUser
		want string
	}{
		{testutil.SlapdDisabled, "Votre compte est désactivé"},
		{testutil.SlapdExpired, "Votre compte a expiré"},
		{testutil.SlapdMustChange, "Votre mot de passe a expiré"},
		{testutil.SlapdLocked, "Votre compte est verrouillé"},
	}
	for _, c := range cases {
		t.Run(c.user.Username, func(t *testing.T) {
			br := g.newBrowser(t)
			p := br.login(br.get(app.authURL().url), c.user.Username, c.user.Password)
			if p.status != http.StatusUnauthorized || !strings.Contains(errorBox(t, p), c.want) {
				t.Errorf("right password: got %d %q, want 401 %q", p.status, errorBox(t, p), c.want)
			}
			p = br.login(br.get(app.authURL().url), c.user.Username, "wrong-"+c.user.Password)
			if !strings.Contains(errorBox(t, p), "Identifiant ou mot de passe incorrect") {
				t.Errorf("wrong password must not reveal the account state: %q", errorBox(t, p))
			}
		})
	}
}

// TestThrottling: after N failures on an account, even the right password
// is refused for the window, and the directory is not asked.
func TestThrottling(t *testing.T) {
	g := startGarde(t, embedded, "") // account_failures: 3
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	u := testutil.SlapdPMartin
	for i := range 3 {
		if p := br.login(br.get(app.authURL().url), u.Username, "guess-"+string(rune('a'+i))); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, p.status)
		}
	}
	p := br.login(br.get(app.authURL().url), strings.ToUpper(u.Username), u.Password)
	if p.status != http.StatusTooManyRequests || !strings.Contains(errorBox(t, p), "Trop de tentatives") {
		t.Fatalf("4th attempt: got %d %q, want 429 throttled", p.status, errorBox(t, p))
	}
	// Another account from the same address is not blocked by it.
	a := app.authURL()
	if _, err := app.exchange(app.code(br.login(br.get(a.url), testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password), a, g.issuer), a); err != nil {
		t.Fatalf("another account should sign in: %v", err)
	}
}

// TestAuthorizeErrors: a bad client or redirect URI shows a page and never
// redirects; other errors go back to the client with state and iss.
func TestAuthorizeErrors(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)

	mod := func(a authRequest, f func(q url.Values)) string {
		u, _ := url.Parse(a.url)
		q := u.Query()
		f(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	noRedirect := []struct {
		name string
		url  string
		want string
	}{
		{"redirect_uri mismatch", mod(app.authURL(), func(q url.Values) { q.Set("redirect_uri", "https://evil.test/cb") }), "adresse de retour"},
		{"redirect_uri prefix", mod(app.authURL(), func(q url.Values) { q.Set("redirect_uri", appRedirect+"/x") }), "adresse de retour"},
		{"redirect_uri missing", mod(app.authURL(), func(q url.Values) { q.Del("redirect_uri") }), "adresse de retour"},
		{"unknown client", mod(app.authURL(), func(q url.Values) { q.Set("client_id", "nope") }), "pas enregistrée"},
	}
	for _, c := range noRedirect {
		p := br.get(c.url)
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.text(), c.want) {
			t.Errorf("%s: got %d Location=%q, want a 400 page saying %q", c.name, p.status, p.header.Get("Location"), c.want)
		}
	}

	redirected := []struct {
		name, url, wantErr string
	}{
		{"missing PKCE", mod(app.authURL(), func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }), "invalid_request"},
		{"plain PKCE", mod(app.authURL(), func(q url.Values) { q.Set("code_challenge_method", "plain") }), "invalid_request"},
		{"implicit flow", mod(app.authURL(), func(q url.Values) { q.Set("response_type", "token") }), "unsupported_response_type"},
		{"hybrid flow", mod(app.authURL(), func(q url.Values) { q.Set("response_type", "code id_token") }), "unsupported_response_type"},
		{"unknown scope", mod(app.authURL(), func(q url.Values) { q.Set("scope", "openid admin") }), "invalid_scope"},
		{"prompt=none without session", mod(app.authURL(), func(q url.Values) { q.Set("prompt", "none") }), "login_required"},
	}
	for _, c := range redirected {
		p := br.get(c.url)
		loc := p.location()
		if p.status != http.StatusSeeOther || !strings.HasPrefix(loc.String(), appRedirect) {
			t.Errorf("%s: got %d %s, want a redirect to the client", c.name, p.status, loc)
			continue
		}
		q := loc.Query()
		if q.Get("error") != c.wantErr || q.Get("iss") != g.issuer || !strings.HasPrefix(q.Get("state"), "st-") || q.Get("code") != "" {
			t.Errorf("%s: got %v, want error=%s with state and iss", c.name, q, c.wantErr)
		}
	}
}

// tokenPost calls the token endpoint directly.
func tokenPost(t testing.TB, g *gardeUnderTest, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

// signIn runs a whole flow and returns the code and its request.
func signIn(t testing.TB, g *gardeUnderTest, br *browser, r *rp, u testutil.SlapdUser) (string, authRequest) {
	t.Helper()
	a := r.authURL()
	p := br.get(a.url)
	if strings.Contains(p.body, `name="password"`) {
		p = br.login(p, u.Username, u.Password)
	}
	return r.code(p, a, g.issuer), a
}

func userinfoStatus(t *testing.T, g *gardeUnderTest, access string) int {
	req, _ := http.NewRequest(http.MethodGet, g.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCodeReuse: a code works once; its second use fails with invalid_grant
// and revokes the tokens the first use issued.
func TestCodeReuse(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	code, a := signIn(t, g, br, app, testutil.SlapdJDupont)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	if s := userinfoStatus(t, g, tok.oauth.AccessToken); s != http.StatusOK {
		t.Fatalf("userinfo before reuse: %d", s)
	}
	status, body := tokenPost(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {a.verifier}}, appID, appSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v, want 400 invalid_grant", status, body)
	}
	if s := userinfoStatus(t, g, tok.oauth.AccessToken); s != http.StatusUnauthorized {
		t.Errorf("access token issued by a reused code still works: %d", s)
	}
	status, body = tokenPost(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.oauth.RefreshToken}}, appID, appSecret)
	if status == http.StatusOK {
		t.Errorf("refresh token issued by a reused code still works: %v", body)
	}
}

// TestConcurrentCodeRedemption: of concurrent redemptions of one code,
// exactly one gets tokens.
func TestConcurrentCodeRedemption(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) {
			g := startGarde(t, b, "")
			app := g.newRP(t, appID, appSecret, appRedirect)
			code, a := signIn(t, g, g.newBrowser(t), app, testutil.SlapdJDupont)
			const n = 8
			var wg sync.WaitGroup
			statuses := make([]int, n)
			errs := make([]string, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, body := tokenPost(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {a.verifier}}, appID, appSecret)
					statuses[i] = s
					errs[i], _ = body["error"].(string)
				}()
			}
			wg.Wait()
			ok := 0
			for i, s := range statuses {
				switch {
				case s == http.StatusOK:
					ok++
				case errs[i] != "invalid_grant":
					t.Errorf("loser %d got %d %q, want invalid_grant", i, s, errs[i])
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1 (%v)", ok, n, statuses)
			}
		})
	}
}

// TestRefreshReuse: a rotated refresh token used again revokes the family.
func TestRefreshReuse(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	code, a := signIn(t, g, g.newBrowser(t), app, testutil.SlapdJDupont)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	rt1 := tok.oauth.RefreshToken
	status, body := tokenPost(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, appID, appSecret)
	if status != http.StatusOK {
		t.Fatalf("first refresh: %d %v", status, body)
	}
	rt2, _ := body["refresh_token"].(string)
	at2, _ := body["access_token"].(string)
	status, body = tokenPost(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, appID, appSecret)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse of rotated token: %d %v, want 400 invalid_grant", status, body)
	}
	status, body = tokenPost(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}, appID, appSecret)
	if status == http.StatusOK {
		t.Fatalf("the family must be revoked after reuse, but the newest token still works: %v", body)
	}
	if s := userinfoStatus(t, g, at2); s != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family still works: %d", s)
	}
}

// TestClientAuthentication: wrong, missing or misused credentials fail
// with invalid_client; client_credentials works with the right ones.
func TestClientAuthentication(t *testing.T) {
	g := startGarde(t, embedded, "")
	cc := url.Values{"grant_type": {"client_credentials"}}
	if s, b := tokenPost(t, g, cc, appID, appSecret); s != http.StatusOK || b["access_token"] == nil {
		t.Fatalf("client_credentials: %d %v", s, b)
	}
	cases := []struct {
		name       string
		form       url.Values
		user, pass string
		wantStatus int
		wantErr    string
	}{
		{"wrong secret", cc, appID, appSecret + "x", 401, "invalid_client"},
		{"unknown client", cc, "ghost", appSecret, 401, "invalid_client"},
		{"no credentials", cc, "", "", 400, "invalid_request"},
		{"basic client sends post", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {appSecret}}, "", "", 401, "invalid_client"},
		{"public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {spaID}}, "", "", 400, "invalid_grant"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"jdupont"}, "password": {"x"}}, appID, appSecret, 400, "unsupported_grant_type"},
	}
	for _, c := range cases {
		s, b := tokenPost(t, g, c.form, c.user, c.pass)
		if s != c.wantStatus || b["error"] != c.wantErr {
			t.Errorf("%s: got %d %v, want %d %s", c.name, s, b["error"], c.wantStatus, c.wantErr)
		}
	}
}

// TestFlowCannotBeSkipped: forged or replayed steps of the sign-in flow
// fail with the right page.
func TestFlowCannotBeSkipped(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	u := testutil.SlapdJDupont

	// Missing CSRF token.
	br := g.newBrowser(t)
	lp := br.get(app.authURL().url)
	action, form := lp.form(t)
	form.Del("csrf_token")
	form.Set("username", u.Username)
	form.Set("password", u.Password)
	if p := br.post(action, form, originOf(lp.url)); p.status != http.StatusForbidden || !strings.Contains(p.text(), "Le formulaire a expiré") {
		t.Errorf("missing CSRF: got %d, want 403 csrf_failed", p.status)
	}

	// A forged step token.
	action, form = lp.form(t)
	form.Set("step", "forged")
	form.Set("username", u.Username)
	form.Set("password", u.Password)
	if p := br.post(action, form, originOf(lp.url)); p.status != http.StatusBadRequest || !strings.Contains(p.text(), "demande de connexion a expiré") {
		t.Errorf("forged step: got %d, want 400 flow_expired", p.status)
	}

	// The flow belongs to the browser that started it: another browser
	// posting its form (even with the right password) gets nothing.
	other := g.newBrowser(t)
	action, form = lp.form(t)
	form.Set("username", u.Username)
	form.Set("password", u.Password)
	if p := other.post(action, form, originOf(lp.url)); p.status == http.StatusSeeOther {
		t.Errorf("another browser completed the flow: %d", p.status)
	}

	// Cross-site form post (no CSRF token can be read cross-site anyway).
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.test")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := br.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-site post: got %d, want 403", p.status)
	}

	// Jumping straight to the resume endpoint, before signing in.
	a := app.authURL()
	lp = br.get(a.url)
	flowID := lp.url.Query().Get("flow")
	if p := br.get(g.issuer + "/authorize/resume?flow=" + url.QueryEscape(flowID) + "&step=x"); p.status != http.StatusBadRequest {
		t.Errorf("resume before sign-in: got %d, want 400", p.status)
	}

	// The real sign-in; then replaying its resume URL fails.
	p := br.login(lp, u.Username, u.Password)
	resumeURL := p.url.String()
	if !strings.Contains(resumeURL, "/authorize/resume") {
		// The browser followed the resume redirect; find it from history.
		resumeURL = ""
	}
	app.code(p, a, g.issuer)
	// Replay the login POST: the flow is gone.
	action, form = lp.form(t)
	form.Set("username", u.Username)
	form.Set("password", u.Password)
	if p := br.post(action, form, originOf(lp.url)); p.status != http.StatusBadRequest {
		t.Errorf("replayed login form: got %d, want 400", p.status)
	}
}

// TestResumeReplay: the resume URL of a completed flow cannot issue a
// second code.
func TestResumeReplay(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	// Stop at Garde's own redirects too, to capture the resume URL.
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := app.authURL()
	first := br.get(a.url)
	lp := br.get(first.url.ResolveReference(first.location()).String())
	action, form := lp.form(t)
	form.Set("username", testutil.SlapdJDupont.Username)
	form.Set("password", testutil.SlapdJDupont.Password)
	post := br.post(action, form, originOf(lp.url))
	resume := post.url.ResolveReference(post.location()).String()
	if !strings.Contains(resume, "/authorize/resume") {
		t.Fatalf("expected a redirect to resume, got %s", resume)
	}
	if p := br.get(resume); p.status != http.StatusSeeOther || p.location().Query().Get("code") == "" {
		t.Fatalf("resume: %d %s", p.status, p.header.Get("Location"))
	}
	if p := br.get(resume); p.status != http.StatusBadRequest {
		t.Fatalf("replayed resume: got %d %s, want 400", p.status, p.header.Get("Location"))
	}
}

// TestLogoutSafety: logout never redirects to an unregistered address, and
// without a matching id_token_hint it asks the person first.
func TestLogoutSafety(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	code, a := signIn(t, g, br, app, testutil.SlapdJDupont)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	bad := br.get(g.issuer + "/logout?" + url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {"https://evil.test/"}}.Encode())
	if bad.status != http.StatusBadRequest || bad.header.Get("Location") != "" {
		t.Errorf("unregistered post_logout_redirect_uri: %d %q", bad.status, bad.header.Get("Location"))
	}
	forged := tok.raw[:len(tok.raw)-4] + "AAAA"
	if p := br.get(g.issuer + "/logout?" + url.Values{"id_token_hint": {forged}}.Encode()); p.status != http.StatusBadRequest {
		t.Errorf("forged id_token_hint: %d", p.status)
	}
	// No hint: a confirmation page, and the session survives until the
	// person confirms.
	confirm := br.get(g.issuer + "/logout")
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `name="confirm"`) {
		t.Fatalf("logout without hint should ask: %d", confirm.status)
	}
	a2 := app.authURL()
	if p := br.get(a2.url); p.status != http.StatusSeeOther {
		t.Fatalf("session should survive an unconfirmed logout: %d", p.status)
	}
	action, form := confirm.form(t)
	form.Set("confirm", "yes")
	if p := br.post(action, form, originOf(confirm.url)); p.status != http.StatusOK || !strings.Contains(p.text(), "Votre session est fermée") {
		t.Fatalf("confirmed logout: %d\n%s", p.status, truncate(p.body))
	}
	if p := br.get(app.authURL().url); !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("after logout the login page must come back: %d", p.status)
	}
}

// TestIntrospectionAndRevocation covers RFC 7662 and RFC 7009.
func TestIntrospectionAndRevocation(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	code, a := signIn(t, g, g.newBrowser(t), app, testutil.SlapdJDupont)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(token, user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, g.issuer+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := g.httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if s, m := introspect(tok.oauth.AccessToken, appID, appSecret); s != 200 || m["active"] != true || m["sub"] != tok.claim.Sub {
		t.Fatalf("introspect: %d %v", s, m)
	}
	if s, _ := introspect(tok.oauth.AccessToken, "", ""); s != http.StatusUnauthorized {
		t.Errorf("introspection without client authentication: %d, want 401", s)
	}
	// Revoke the refresh token: it and the grant's access tokens die.
	req, _ := http.NewRequest(http.MethodPost, g.issuer+"/revoke", strings.NewReader(url.Values{"token": {tok.oauth.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, appSecret)
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if s, m := introspect(tok.oauth.AccessToken, appID, appSecret); s != 200 || m["active"] != false {
		t.Errorf("after revocation: %d %v, want active=false", s, m)
	}
	if _, err := app.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.oauth.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
		t.Errorf("revoked refresh token still works")
	}
}
