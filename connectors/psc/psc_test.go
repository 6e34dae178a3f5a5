package psc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/connectors/psc/psctest"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

const callback = "https://garde.test/psc/callback"

type env struct {
	sim   *psctest.Sim
	c     *Connector
	clock *testutil.Clock
}

// setup starts a simulator and a connector talking to it over real TLS.
func setup(t *testing.T, simCfg psctest.Config, mod func(*Options)) *env {
	t.Helper()
	clock := testutil.NewClock(time.Now())
	simCfg.Clock = clock.Now
	simCfg.RedirectURIs = append(simCfg.RedirectURIs, callback)
	simCfg.PostLogoutRedirectURIs = append(simCfg.PostLogoutRedirectURIs, "https://garde.test/logged-out")
	sim, err := psctest.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	o := Options{
		ConnectorID:  "psc",
		Environment:  EnvCustom,
		Issuer:       sim.Issuer(),
		ClientID:     sim.ClientID(),
		ClientSecret: sim.ClientSecret(),
		AuthMethod:   simCfg.AuthMethod,
		RootCAs:      sim.RootCAs(),
		Clock:        clock.Now,
		Logger:       slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, c: c, clock: clock}
}

func random(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize starts a sign-in, follows the browser to PSC's wallet and
// returns the callback query, with the verifier and nonce it used.
func (e *env) authorize(t *testing.T) (q url.Values, verifier, nonce string) {
	t.Helper()
	verifier, nonce, state := random(t), random(t), random(t)
	u, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: state, Nonce: nonce, CodeChallenge: challenge(verifier)})
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.sim.RootCAs()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("wallet answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want the callback", got)
	}
	q = loc.Query()
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	return q, verifier, nonce
}

// signIn runs a whole sign-in.
func (e *env) signIn(t *testing.T) (connectors.Identity, error) {
	t.Helper()
	q, verifier, nonce := e.authorize(t)
	if err := CallbackError(q); err != nil {
		return connectors.Identity{}, err
	}
	return e.c.Exchange(context.Background(), callback, q.Get("code"), verifier, nonce)
}

func TestCodeFlow(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	u, err := url.Parse(mustAuthURL(t, e))
	if err != nil {
		t.Fatal(err)
	}
	// The request PSC requires, on the wallet host rather than the issuer's.
	q := u.Query()
	if !strings.HasPrefix(u.String(), e.sim.WalletURL()+"/auth?") {
		t.Errorf("authorization URL %s is not on the wallet host", u)
	}
	for k, want := range map[string]string{"response_type": "code", "scope": "openid scope_all", "acr_values": "eidas1", "code_challenge_method": "S256", "client_id": e.sim.ClientID(), "redirect_uri": callback} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}

	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	user := psctest.DefaultUser()
	want := connectors.Identity{
		Connector: "psc", Subject: "899700427885", Username: "899700427885",
		NationalID: "899700427885", NationalIDType: "rpps",
		GivenName: "KIT", FamilyName: "DOC0042788", DisplayName: "KIT DOC0042788",
		AuthMode: "CARD", Assurance: assurance.High,
	}
	if id.Subject != want.Subject || id.NationalID != want.NationalID || id.NationalIDType != want.NationalIDType ||
		id.GivenName != want.GivenName || id.FamilyName != want.FamilyName || id.DisplayName != want.DisplayName ||
		id.AuthMode != want.AuthMode || id.Assurance != want.Assurance || id.Connector != want.Connector || id.Username != want.Username {
		t.Errorf("identity %+v\nwant %+v", id, want)
	}
	if !slices.Equal(id.AMR, []string{"sc", "pin", "hwk", "mfa"}) {
		t.Errorf("amr %v", id.AMR)
	}
	// Never sub: it is Keycloak's federated id.
	if id.Subject == user.Sub() || id.Upstream == nil || id.Upstream.Subject != user.Sub() {
		t.Errorf("subject %q upstream %+v", id.Subject, id.Upstream)
	}
	if id.Upstream.SessionID == "" || id.Upstream.IDToken == "" {
		t.Errorf("upstream session %+v", id.Upstream)
	}
	if !id.AuthTime.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Errorf("auth time %v, want %v", id.AuthTime, e.clock.Now())
	}
	wantProf := []connectors.Profession{{Code: "10", Category: "C", Specialties: []string{"SM26"}, Activities: []connectors.Activity{{
		FinessSite: "0B0193488", FinessLegal: "1B0064166", SiteName: "HOPITAL GENERIQUE  FIN VARI", Role: "S",
	}}}}
	if len(id.Professions) != 1 || id.Professions[0].Code != "10" || id.Professions[0].Category != "C" ||
		!slices.Equal(id.Professions[0].Specialties, wantProf[0].Specialties) ||
		!slices.Equal(id.Professions[0].Activities, wantProf[0].Activities) {
		t.Errorf("professions %+v\nwant %+v", id.Professions, wantProf)
	}
	// Discovery is fetched once and cached.
	if n := e.sim.Calls("discovery"); n != 1 {
		t.Errorf("discovery fetched %d times", n)
	}
}

func mustAuthURL(t *testing.T, e *env) string {
	t.Helper()
	u, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge(random(t)), LoginHint: "899700427885"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMobileIsSubstantial(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	u := psctest.DefaultUser()
	u.AuthMode = "MOBILE"
	e.sim.SetNextUser(u)
	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	if id.Assurance != assurance.Substantial || !slices.Equal(id.AMR, []string{"swk", "pin", "mfa"}) {
		t.Errorf("MOBILE: %v %v", id.Assurance, id.AMR)
	}
	u.AuthMode = "SOMETHING_NEW"
	e.sim.SetNextUser(u)
	if id, err = e.signIn(t); err != nil {
		t.Fatal(err)
	}
	if id.Assurance != assurance.Low || len(id.AMR) != 0 {
		t.Errorf("unknown authMode: %v %v, want low and no amr", id.Assurance, id.AMR)
	}
}

func TestClientAuthMethods(t *testing.T) {
	for _, m := range []string{AuthClientSecretBasic, AuthClientSecretPost} {
		t.Run(m, func(t *testing.T) {
			e := setup(t, psctest.Config{AuthMethod: m}, nil)
			if _, err := e.signIn(t); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		e := setup(t, psctest.Config{}, func(o *Options) { o.ClientSecret = "not-the-secret" })
		_, err := e.signIn(t)
		if !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("err = %v, want invalid_client", err)
		}
	})
	t.Run("basic where post is registered", func(t *testing.T) {
		e := setup(t, psctest.Config{AuthMethod: AuthClientSecretPost}, func(o *Options) { o.AuthMethod = AuthClientSecretBasic })
		if _, err := e.signIn(t); !errors.Is(err, ErrProvider) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMutualTLS(t *testing.T) {
	noCert := func(o *Options) { o.AuthMethod = AuthClientSecretPost }
	t.Run("with the registered certificate", func(t *testing.T) {
		e := setup(t, psctest.Config{AuthMethod: AuthTLSClientAuth}, noCert)
		cert, err := e.sim.ClientCertificate()
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(context.Background(), Options{Environment: EnvCustom, Issuer: e.sim.Issuer(), ClientID: e.sim.ClientID(),
			AuthMethod: AuthTLSClientAuth, ClientCertificate: &cert, RootCAs: e.sim.RootCAs(), Clock: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		e.c = c
		if _, err := e.signIn(t); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without a certificate", func(t *testing.T) {
		e := setup(t, psctest.Config{AuthMethod: AuthTLSClientAuth}, noCert)
		// tls_client_auth over a client that has no certificate to show.
		c, err := New(context.Background(), Options{Environment: EnvCustom, Issuer: e.sim.Issuer(), ClientID: e.sim.ClientID(),
			AuthMethod: AuthTLSClientAuth, Clock: e.clock.Now,
			HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.sim.RootCAs()}}}})
		if err != nil {
			t.Fatal(err)
		}
		e.c = c
		_, err = e.signIn(t)
		if !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "certificate missing") {
			t.Fatalf("err = %v, want invalid_client for a missing certificate", err)
		}
	})
	t.Run("with another subject's certificate", func(t *testing.T) {
		e := setup(t, psctest.Config{AuthMethod: AuthTLSClientAuth}, noCert)
		cert, err := e.sim.OtherClientCertificate()
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(context.Background(), Options{Environment: EnvCustom, Issuer: e.sim.Issuer(), ClientID: e.sim.ClientID(),
			AuthMethod: AuthTLSClientAuth, ClientCertificate: &cert, RootCAs: e.sim.RootCAs(), Clock: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		e.c = c
		if _, err := e.signIn(t); !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("err = %v, want invalid_client", err)
		}
	})
}
