package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// TestEndToEnd is the foundation scenario, on both store backends: a
// clinician signs in to one application with their AD password, gets ID,
// access and refresh tokens, reaches a second application by SSO without a
// password, and logs out.
func TestEndToEnd(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) { endToEnd(t, b) })
	}
}

func endToEnd(t *testing.T, b backend) {
	g := startGarde(t, b, "")
	br := g.newBrowser(t)
	app := g.newRP(t, appID, appSecret, appRedirect)
	user := testutil.SlapdJDupont

	// 1. The application sends the browser to Garde, which shows its login
	// page in French.
	a := app.authURL()
	loginPage := br.get(a.url)
	if !strings.Contains(loginPage.body, "Dossier patient") || !strings.Contains(loginPage.body, `lang="fr"`) {
		t.Fatalf("login page should name the application in French:\n%s", truncate(loginPage.body))
	}
	for _, c := range br.c.Jar.Cookies(loginPage.url) {
		if !strings.HasPrefix(c.Name, "__Host-") && c.Name != "garde_lang" {
			t.Errorf("cookie %s lacks the __Host- prefix", c.Name)
		}
	}

	// 2. The clinician types their AD password; Garde returns a code.
	landing := br.login(loginPage, user.Username, user.Password)
	code := app.code(landing, a, g.issuer)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	c := tok.claim
	if c.Sub != "ad:"+user.GUID {
		t.Errorf("sub = %q, want ad:%s", c.Sub, user.GUID)
	}
	if c.ACR != assurance.ACRLow || !slices.Equal(c.AMR, []string{"pwd"}) {
		t.Errorf("acr/amr = %q %v, want %q [pwd]", c.ACR, c.AMR, assurance.ACRLow)
	}
	if c.SID == "" || c.AuthTime == 0 || time.Since(time.Unix(c.AuthTime, 0)) > time.Minute {
		t.Errorf("sid %q, auth_time %d", c.SID, c.AuthTime)
	}
	if c.Name != user.DisplayName || c.Email != user.Email || c.NatID != user.NationalID || c.NatType != "rpps" {
		t.Errorf("profile claims = %+v", c)
	}
	if !slices.Equal(c.Groups, user.Groups) {
		t.Errorf("groups = %v, want %v (nested groups included)", c.Groups, user.Groups)
	}
	if tok.oauth.RefreshToken == "" || tok.oauth.AccessToken == "" {
		t.Fatalf("want access and refresh tokens, got %+v", tok.oauth)
	}
	// The access token is a JWT (RFC 9068) resource servers can check
	// offline: it must say when it expires, whom it is for, and its issuer.
	at := jwtClaims(t, tok.oauth.AccessToken)
	if exp, _ := at["exp"].(float64); exp < float64(time.Now().Unix()) || exp > float64(time.Now().Add(time.Hour).Unix()) {
		t.Errorf("access token exp = %v", at["exp"])
	}
	if at["sub"] != c.Sub || at["iss"] != g.issuer || at["client_id"] != appID {
		t.Errorf("access token claims = %v", at)
	}

	// 3. Userinfo returns the claims.
	ui, err := app.provider.UserInfo(app.ctx, oauth2.StaticTokenSource(tok.oauth))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uc idClaims
	if err := ui.Claims(&uc); err != nil || uc.Sub != c.Sub || uc.Email != user.Email || !slices.Equal(uc.Groups, user.Groups) {
		t.Errorf("userinfo = %+v (%v)", uc, err)
	}

	// 4. Refresh: a new access token and a new (rotated) refresh token, and
	// a new ID token for the same person.
	old := *tok.oauth
	old.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := app.conf.TokenSource(app.ctx, &old).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.oauth.RefreshToken {
		t.Errorf("refresh token was not rotated")
	}
	if raw, _ := refreshed.Extra("id_token").(string); raw == "" {
		t.Errorf("no ID token on refresh")
	} else if id, err := app.verifier.Verify(app.ctx, raw); err != nil || id.Subject != c.Sub {
		t.Errorf("refreshed ID token: %v", err)
	}

	// 5. A second application (ES256 ID tokens, client_secret_post) signs
	// the same clinician in by SSO: no login page.
	lab := g.newRP(t, labID, labSecret, labRedirect)
	lab.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	a2 := lab.authURL()
	landing2 := br.get(a2.url)
	tok2, err := lab.exchange(lab.code(landing2, a2, g.issuer), a2)
	if err != nil {
		t.Fatalf("SSO exchange: %v", err)
	}
	if tok2.claim.Sub != c.Sub || tok2.claim.SID != c.SID || tok2.claim.AuthTime != c.AuthTime {
		t.Errorf("SSO sign-in should reuse the session: %+v vs %+v", tok2.claim, c)
	}
	if alg := jwtAlg(t, tok2.raw); alg != "ES256" {
		t.Errorf("labo ID token alg = %s, want ES256", alg)
	}

	// 6. prompt=login forces a new password entry even with a session.
	a3 := lab.authURL(oauth2.SetAuthURLParam("prompt", "login"))
	if p := br.get(a3.url); !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("prompt=login should show the login page, got %d", p.status)
	} else {
		time.Sleep(1100 * time.Millisecond) // auth_time has one-second resolution
		tok3, err := lab.exchange(lab.code(br.login(p, user.Username, user.Password), a3, g.issuer), a3)
		if err != nil {
			t.Fatalf("prompt=login exchange: %v", err)
		}
		if tok3.claim.AuthTime <= c.AuthTime {
			t.Errorf("prompt=login: auth_time %d not after %d", tok3.claim.AuthTime, c.AuthTime)
		}
		if tok3.claim.SID != c.SID {
			t.Errorf("prompt=login by the same person should keep the session: sid %q, want %q", tok3.claim.SID, c.SID)
		}
	}

	// 7. max_age smaller than the session's age forces a login too.
	time.Sleep(1100 * time.Millisecond)
	a4 := app.authURL(oauth2.SetAuthURLParam("max_age", "1"))
	if p := br.get(a4.url); !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("max_age=1 on an older session should show the login page, got %d", p.status)
	}

	// 8. RP-initiated logout with id_token_hint and a registered
	// post_logout_redirect_uri ends the SSO session.
	end := g.issuer + "/logout?" + url.Values{
		"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {appLogout}, "state": {"bye-1"},
	}.Encode()
	out := br.get(end)
	if out.status != http.StatusSeeOther || out.location().String() != appLogout+"?state=bye-1" {
		t.Fatalf("logout should redirect to %s?state=bye-1, got %d %s", appLogout, out.status, out.header.Get("Location"))
	}
	a5 := app.authURL()
	if p := br.get(a5.url); !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("after logout the login page must come back, got %d", p.status)
	}
	// The refresh tokens of the session are revoked with it.
	if _, err := app.conf.TokenSource(app.ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
		t.Errorf("a refresh token of a logged-out session still works")
	}
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64URLDecode(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := jsonUnmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jwtAlg(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64URLDecode(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Alg string }
	if err := jsonUnmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Alg
}

// TestPublicClientPKCE: a public client (no secret) runs the code flow with
// PKCE only.
func TestPublicClientPKCE(t *testing.T) {
	g := startGarde(t, embedded, "")
	br := g.newBrowser(t)
	spa := g.newRP(t, spaID, "", spaRedirect, oidc.ScopeOpenID, "profile")
	a := spa.authURL()
	tok, err := spa.exchange(spa.code(br.login(br.get(a.url), testutil.SlapdPMartin.Username, testutil.SlapdPMartin.Password), a, g.issuer), a)
	if err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
	if tok.claim.Sub != "ad:"+testutil.SlapdPMartin.GUID {
		t.Errorf("sub = %q", tok.claim.Sub)
	}
	if tok.claim.Email != "" {
		t.Errorf("email released without the email scope: %q", tok.claim.Email)
	}
}

// TestBreakGlassStaticAccount: when a name is unknown to AD, the static
// directory (break-glass accounts) is tried next.
func TestBreakGlassStaticAccount(t *testing.T) {
	g := startGarde(t, embedded, "")
	br := g.newBrowser(t)
	app := g.newRP(t, appID, appSecret, appRedirect)
	a := app.authURL()
	tok, err := app.exchange(app.code(br.login(br.get(a.url), breakGlassUser, breakGlassPassword), a, g.issuer), a)
	if err != nil {
		t.Fatal(err)
	}
	if tok.claim.Sub != "secours:secours" || !slices.Equal(tok.claim.Groups, []string{"bris-de-glace"}) {
		t.Errorf("claims = %+v", tok.claim)
	}
}
