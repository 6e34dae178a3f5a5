package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

// Real-browser tests: headless Chromium driven over the DevTools protocol,
// with its virtual WebAuthn authenticator (CTAP2, resident keys, user
// verification) standing in for a security key.

const portalClient = `  - id: portal
    name: Portail clinique
    secret: portal-secret-0123456789abcdef0123456789abcdef
    redirect_uris: ["{{ISSUER}}/test-app/cb"]
    post_logout_redirect_uris: ["{{ISSUER}}/test-app/bye"]
`

const portalSecret = "portal-secret-0123456789abcdef0123456789abcdef"

// chromium starts a headless browser tab with a virtual authenticator.
func chromium(t *testing.T) (context.Context, webauthn.AuthenticatorID) {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if os.Getenv(testutil.EnvRequireServices) == "1" {
			t.Fatalf("chromium not installed: run scripts/test.sh")
		}
		t.Skip("chromium not installed: run scripts/test.sh")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors-spki-list", localhostSPKI),
		// A French-speaking hospital's workstation.
		chromedp.Flag("lang", "fr-FR"),
		chromedp.Flag("accept-lang", "fr-FR,fr"),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enable WebAuthn domain: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportUsb,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true,
			AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}
	id := res.AuthenticatorID
	return ctx, id
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval runs JavaScript in the page and returns its (awaited) result.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return v
}

func pageHTML(t *testing.T, ctx context.Context) string {
	t.Helper()
	h, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("read page: %v", err)
	}
	return h
}

// waitURL waits until the tab's URL contains want and returns it.
func waitURL(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var loc string
	for time.Now().Before(deadline) {
		l, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(l, want) {
			return l
		}
		loc = l
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("waited for a URL containing %q; at %s:\n%s", want, loc, body)
	return ""
}

// statusText waits for the WebAuthn status region to say something.
func statusText(t *testing.T, ctx context.Context) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("[data-webauthn-status]")).map(e => e.textContent).join(" ").trim()`))
		if err == nil && s != "" {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no WebAuthn status message appeared")
	return ""
}

func clearCookies(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clear cookies: %v", err)
	}
}

// signInPassword fills and submits the login page.
func signInPassword(t *testing.T, ctx context.Context, u testutil.SlapdUser) {
	run(t, ctx,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), u.Username),
		chromedp.SendKeys(chromedp.ID("password"), u.Password),
		chromedp.Submit(chromedp.ID("password")),
	)
}

// landed exchanges the code the browser landed with and returns the claims.
func landed(t *testing.T, g *gardeUnderTest, r *rp, a authRequest, loc string) idClaims {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("error") != "" || q.Get("state") != a.state || q.Get("iss") != g.issuer {
		t.Fatalf("landing %s", loc)
	}
	tok, err := r.exchange(q.Get("code"), a)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok.claim
}

func wantAMR(t *testing.T, c idClaims, acr string, amr ...string) {
	t.Helper()
	if c.ACR != acr {
		t.Errorf("acr = %q, want %q", c.ACR, acr)
	}
	for _, m := range amr {
		if !slices.Contains(c.AMR, m) {
			t.Errorf("amr = %v, want it to contain %q", c.AMR, m)
		}
	}
}

// TestBrowserSecurityKeys walks a clinician through the life of a key:
// enrollment with an admin's code (a password alone is not enough), then
// passwordless sign-in, then the key as a second factor, then removal.
func TestBrowserSecurityKeys(t *testing.T) {
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraClients: portalClient,
		extraConfig: "webauthn:\n  second_factor: required\n"})
	ctx, _ := chromium(t)
	portal := g.newRP(t, "portal", portalSecret, g.issuer+"/test-app/cb")
	u := testutil.SlapdJDupont
	sub := "ad:" + u.GUID

	// The admin issues an enrollment code (as `garde keys issue-code` does).
	code := "ABCD-EFGH-IJKL-MNOP"
	sum := sha256.Sum256([]byte(flow.NormalizeCode(code)))
	if err := g.app.Durable.CreateEnrollmentCode(context.Background(), store.EnrollmentCode{
		Hash: sum[:], Subject: sub, CreatedBy: "test", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// 1. Password, then (required mode, no key yet) the enrollment step. A
	// wrong code is refused; the right one opens registration.
	a := portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	signInPassword(t, ctx, u)
	waitURL(t, ctx, "/login/enroll")
	if strings.Contains(pageHTML(t, ctx), `data-webauthn="register"`) {
		t.Fatal("registration offered after a password alone")
	}
	run(t, ctx, chromedp.SendKeys(chromedp.ID("enroll-code"), "WRON-GCOD-EXXX-XXXX"), chromedp.Submit(chromedp.ID("enroll-code")))
	// Wait for the answer page (its error), not the form still on screen
	// while the browser navigates: reading a page mid-navigation fails.
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(".alert-error")), chromedp.WaitVisible(chromedp.ID("enroll-code")))
	if strings.Contains(pageHTML(t, ctx), `data-webauthn="register"`) {
		t.Fatal("a wrong code opened registration")
	}
	run(t, ctx, chromedp.SendKeys(chromedp.ID("enroll-code"), strings.ToLower(code)), chromedp.Submit(chromedp.ID("enroll-code")))
	run(t, ctx,
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "Clé bleue"),
		chromedp.Click(chromedp.CSS(`[data-webauthn="register"]`)),
	)
	c := landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	wantAMR(t, c, assurance.ACRSubstantial, "pwd", "hwk", "mfa")
	creds, err := g.app.Durable.ListWebAuthnCredentials(context.Background(), sub)
	if err != nil || len(creds) != 1 || creds[0].Name != "Clé bleue" || !creds[0].Discoverable {
		t.Fatalf("registered credentials = %+v, %v", creds, err)
	}

	// 2. Passwordless: a fresh browser session, no username typed.
	clearCookies(t, ctx)
	a = portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="passwordless"]`)),
		chromedp.Click(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	c = landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	wantAMR(t, c, assurance.ACRSubstantial, "hwk", "mfa")
	if slices.Contains(c.AMR, "pwd") || c.Sub != sub || len(c.Groups) == 0 {
		t.Errorf("passwordless claims = %+v", c)
	}

	// 3. Password then the key as second factor.
	clearCookies(t, ctx)
	a = portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	signInPassword(t, ctx, u)
	waitURL(t, ctx, "/login/key")
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="login"]`)), chromedp.Click(chromedp.CSS(`[data-webauthn="login"]`)))
	c = landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	wantAMR(t, c, assurance.ACRSubstantial, "pwd", "hwk", "user", "mfa")

	// 4. A replayed assertion is refused: the page's finish request is sent
	// a second time, after the first succeeded.
	clearCookies(t, ctx)
	a = portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	eval[bool](t, ctx, `(() => {
		const f = window.fetch;
		window.fetch = async (u, o) => {
			const r = await f(u, o);
			if (String(u).includes("finish")) {
				const again = await f(u, o);
				sessionStorage.setItem("replay", again.status + " " + (await again.json()).error);
			}
			return r;
		};
		return true;
	})()`)
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	if replay := eval[string](t, ctx, `sessionStorage.getItem("replay")`); replay != "400 flow_expired" && replay != "400 webauthn_challenge_expired" {
		t.Errorf("replayed assertion answered %q, want a 400 refusal", replay)
	}

	// 5. The key page: the session is fresh from a key (strong), so even the
	// last key can be removed, after a confirmation.
	run(t, ctx, chromedp.Navigate(g.issuer+"/keys"), chromedp.WaitVisible(chromedp.CSS(`table.keys`)),
		chromedp.Click(chromedp.CSS(`details.rename summary`)),
		chromedp.SetValue(chromedp.ID("rename-0"), "Clé du bloc"),
		chromedp.Submit(chromedp.ID("rename-0")))
	waitURL(t, ctx, "msg=key_renamed")
	if !strings.Contains(pageHTML(t, ctx), "Clé du bloc") {
		t.Error("the renamed key is not listed under its new name")
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`table.keys`)),
		chromedp.Click(chromedp.CSS(`form.form-remove button`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="confirm"]`)),
		chromedp.Click(chromedp.CSS(`button[name="confirm"]`)))
	waitURL(t, ctx, "msg=key_removed")
	creds, _ = g.app.Durable.ListWebAuthnCredentials(context.Background(), sub)
	if len(creds) != 0 {
		t.Fatalf("key not removed: %+v", creds)
	}
	ctxb := context.Background()
	if err := g.app.Audit.Flush(ctxb); err != nil {
		t.Fatal(err)
	}
	events, _ := g.app.Durable.ListAuditEvents(ctxb, store.AuditQuery{Person: sub, Limit: 100})
	var types []string
	for _, e := range events {
		types = append(types, e.Type+"/"+e.Outcome)
	}
	for _, want := range []string{audit.EnrollmentCodeUsed + "/failure", audit.EnrollmentCodeUsed + "/success", audit.KeyEnrolled + "/success", audit.KeyRenamed + "/success", audit.KeyRemoved + "/success"} {
		if !slices.Contains(types, want) {
			t.Errorf("audit lacks %s: %v", want, types)
		}
	}
}

// TestBrowserKeyAttacks: what must fail, fails, with the right message.
func TestBrowserKeyAttacks(t *testing.T) {
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraClients: portalClient,
		extraConfig: "webauthn:\n  second_factor: optional\n  enrollment:\n    grace_until: \"2099-01-01T00:00:00Z\"\n"})
	ctx, authID := chromium(t)
	portal := g.newRP(t, "portal", portalSecret, g.issuer+"/test-app/cb")
	u := testutil.SlapdPMartin
	sub := "ad:" + u.GUID
	bg := context.Background()

	// Grace period: a person with no key may enroll from the key page after
	// a password sign-in.
	a := portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	signInPassword(t, ctx, u)
	landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	run(t, ctx, chromedp.Navigate(g.issuer+"/keys"),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "Passkey"),
		chromedp.Click(chromedp.CSS(`[data-webauthn="register"]`)))
	waitURL(t, ctx, "msg=key_registered")

	// Once the person has a key the grace period no longer applies: a second
	// key needs a strong factor. With only the password session, the page
	// offers no registration and the endpoint refuses it.
	run(t, ctx, chromedp.Navigate(g.issuer+"/keys"), chromedp.WaitVisible(chromedp.CSS(`table.keys`)))
	if strings.Contains(pageHTML(t, ctx), `data-webauthn="register"`) {
		t.Error("a second key offered after a password alone")
	}
	refused := eval[string](t, ctx, `(async () => {
		const r = await fetch("/keys/register/begin", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({csrf_token: document.querySelector("input[name=csrf_token]").value})});
		return r.status + " " + (await r.json()).error;
	})()`)
	if refused != "403 enrollment_not_allowed" {
		t.Errorf("second key with a password session: %q, want 403 enrollment_not_allowed", refused)
	}
	// An enrollment code from the helpdesk opens registration on the page.
	sum := sha256.Sum256([]byte(flow.NormalizeCode("QRST-UVWX-YZ23-4567")))
	if err := g.app.Durable.CreateEnrollmentCode(bg, store.EnrollmentCode{Hash: sum[:], Subject: sub, CreatedBy: "test",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.SendKeys(chromedp.ID("enroll-code"), "qrst uvwx yz23 4567"), chromedp.Submit(chromedp.ID("enroll-code")),
		chromedp.WaitVisible(chromedp.ID("key-name")))
	// The same code does not work twice.
	if err := g.app.Durable.UseEnrollmentCode(bg, sum[:], sub, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the code can be used again: %v", err)
	}

	// User verification missing: passwordless requires it. The virtual
	// authenticator is told to answer with the UV flag unset, so the server
	// (not the browser) must refuse.
	override := func(badUV bool) {
		if _, err := chromedp.Call(ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: authID, IsBadUV: &badUV}); err != nil {
			t.Fatal(err)
		}
	}
	override(true)
	clearCookies(t, ctx)
	run(t, ctx, chromedp.Navigate(portal.authURL().url), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="passwordless"]`)),
		chromedp.Click(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	if s := statusText(t, ctx); !strings.Contains(s, "PIN") {
		t.Errorf("passwordless without user verification: status %q, want the PIN/biometrics message", s)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Errorf("a sign-in without user verification left the login page: %s", loc)
	}
	override(false)

	// A cloned authenticator: put the credential back with a lower counter.
	got, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authID})
	if err != nil {
		t.Fatal(err)
	}
	vcreds := got.Credentials
	if len(vcreds) != 1 {
		t.Fatalf("virtual authenticator holds %d credentials", len(vcreds))
	}
	// Use it once so the stored counter is above zero.
	clearCookies(t, ctx)
	a = portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="passwordless"]`)),
		chromedp.Click(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	cloned := *vcreds[0]
	cloned.SignCount = 0
	if _, err := chromedp.Call(ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: authID, CredentialID: cloned.CredentialID}); err != nil {
		t.Fatal(err)
	}
	// cdproto's Credential always sends the CMTG fields, which this
	// authenticator refuses: add the copy with only what a key holds.
	type plainCredential struct {
		CredentialID         []byte  `json:"credentialId"`
		IsResidentCredential bool    `json:"isResidentCredential"`
		RpID                 string  `json:"rpId"`
		PrivateKey           []byte  `json:"privateKey"`
		UserHandle           []byte  `json:"userHandle,omitempty"`
		SignCount            float64 `json:"signCount"`
	}
	type addParams struct {
		AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
		Credential      plainCredential          `json:"credential"`
	}
	addCredential := cdp.Command[addParams, cdp.Empty]{Method: webauthn.CommandAddCredential}
	if _, err := chromedp.Call(ctx, addCredential, addParams{AuthenticatorID: authID, Credential: plainCredential{
		CredentialID: cloned.CredentialID, IsResidentCredential: cloned.IsResidentCredential, RpID: cloned.RpID,
		PrivateKey: cloned.PrivateKey, UserHandle: cloned.UserHandle, SignCount: 0,
	}}); err != nil {
		t.Fatal(err)
	}
	clearCookies(t, ctx)
	run(t, ctx, chromedp.Navigate(portal.authURL().url), chromedp.WaitVisible(chromedp.CSS(`[data-webauthn="passwordless"]`)),
		chromedp.Click(chromedp.CSS(`[data-webauthn="passwordless"]`)))
	if s := statusText(t, ctx); !strings.Contains(s, "bloquée") {
		t.Errorf("cloned key: status %q, want the blocked-key message", s)
	}
	creds, err := g.app.Durable.ListWebAuthnCredentials(bg, sub)
	if err != nil || len(creds) != 1 || !creds[0].Flagged {
		t.Fatalf("the cloned credential should be flagged: %+v %v", creds, err)
	}
	_ = g.app.Audit.Flush(bg)
	events, _ := g.app.Durable.ListAuditEvents(bg, store.AuditQuery{Type: audit.SignInFailure, Limit: 100})
	high := slices.ContainsFunc(events, func(e store.AuditEvent) bool {
		return e.Reason == "cloned_authenticator" && e.Details["severity"] == "high"
	})
	if !high {
		t.Errorf("no high-severity audit event for the cloned key: %+v", events)
	}
}

// TestBrowserWrongOrigin: a ceremony made for another origin than the ones
// configured is refused with the security message (a phishing page, or a
// proxy publishing Garde under an unexpected name).
func TestBrowserWrongOrigin(t *testing.T) {
	g := startGardeWith(t, gardeOptions{backend: embedded, localhost: true, extraClients: portalClient,
		extraConfig: "webauthn:\n  origins: [\"https://sso.localhost\"]\n  enrollment:\n    grace_until: \"2099-01-01T00:00:00Z\"\n"})
	ctx, _ := chromium(t)
	portal := g.newRP(t, "portal", portalSecret, g.issuer+"/test-app/cb")
	a := portal.authURL()
	run(t, ctx, chromedp.Navigate(a.url))
	signInPassword(t, ctx, testutil.SlapdJDupont)
	landed(t, g, portal, a, waitURL(t, ctx, "/test-app/cb"))
	run(t, ctx, chromedp.Navigate(g.issuer+"/keys"),
		chromedp.WaitVisible(chromedp.ID("key-name")),
		chromedp.SendKeys(chromedp.ID("key-name"), "Clé"),
		chromedp.Click(chromedp.CSS(`[data-webauthn="register"]`)))
	if s := statusText(t, ctx); !strings.Contains(s, "sécurité") {
		t.Errorf("registration from an unexpected origin: status %q, want the security message", s)
	}
	creds, err := g.app.Durable.ListWebAuthnCredentials(context.Background(), "ad:"+testutil.SlapdJDupont.GUID)
	if err != nil || len(creds) != 0 {
		t.Fatalf("a key was registered from the wrong origin: %+v %v", creds, err)
	}
}
