package psc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/connectors/psc/psctest"
	"github.com/garde-sso/garde/internal/assurance"
)

func TestIDTokenRefused(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(map[string]any)
		want   string
	}{
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "another-sign-in-nonce" }, "nonce"},
		{"no nonce", func(c map[string]any) { delete(c, "nonce") }, "nonce"},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "https://auth.esw.esante.gouv.fr/auth/realms/other" }, "different provider"},
		{"wrong audience", func(c map[string]any) { c["aud"] = "another-client"; c["azp"] = "another-client" }, "audience"},
		{"other azp", func(c map[string]any) { c["azp"] = "another-client" }, "azp"},
		{"expired", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, "expired"},
		{"at_hash of another token", func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, "at_hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, psctest.Config{}, nil)
			e.sim.TamperIDToken(tc.tamper)
			_, err := e.signIn(t)
			if !errors.Is(err, ErrInvalidToken) || Reason(err) != "psc_invalid_token" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want an invalid token (%s)", err, tc.want)
			}
		})
	}
}

func TestDuplicatedACR(t *testing.T) {
	e := setup(t, psctest.Config{}, func(o *Options) {
		// A table that does look at acr: eidas3 alone would be high.
		o.Assurance = []AssuranceRule{
			{ACR: "eidas3", Level: assurance.High, AMR: []string{"sc", "pin", "hwk", "mfa"}},
			{Level: assurance.Low, AMR: []string{}},
		}
	})
	e.sim.SetACR("eidas3", true) // {"acr":"1", ... "acr":"eidas3"}
	id, err := e.signIn(t)
	if err != nil {
		t.Fatalf("a duplicated acr key must not break parsing: %v", err)
	}
	// encoding/json would keep "eidas3"; Garde keeps the weaker reading.
	if id.Assurance != assurance.Low {
		t.Errorf("assurance %v, want low from the ambiguous acr", id.Assurance)
	}
	e.sim.SetACR("eidas3", false)
	if id, err = e.signIn(t); err != nil || id.Assurance != assurance.High {
		t.Errorf("single eidas3: %v %v", id.Assurance, err)
	}
	if got, _ := topLevelStrings([]byte(`{"acr":"1","x":{"acr":"inner"},"acr":"eidas3"}`), "acr"); strings.Join(got, ",") != "1,eidas3" {
		t.Errorf("topLevelStrings = %v", got)
	}
}

func TestUnknownKIDRefetchesKeys(t *testing.T) {
	ctx := context.Background()
	e := setup(t, psctest.Config{}, nil)
	if _, err := e.signIn(t); err != nil {
		t.Fatal(err)
	}
	before := e.sim.Calls("certs")
	if err := e.sim.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(minKeyRefresh)
	if _, err := e.signIn(t); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got := e.sim.Calls("certs"); got != before+1 {
		t.Errorf("JWKS fetched %d more times, want 1 (refetch on the unknown kid)", got-before)
	}
	// The new key is cached now: no more fetches.
	if _, err := e.signIn(t); err != nil || e.sim.Calls("certs") != before+1 {
		t.Errorf("JWKS refetched with a known kid (%v)", err)
	}

	// Forged kids, e.g. on the public back-channel logout endpoint, cause
	// at most one fetch per minKeyRefresh.
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(kid string) string {
		return signWith(t, foreign, kid, map[string]any{"iss": e.sim.Issuer(), "aud": e.sim.ClientID(), "iat": e.clock.Now().Unix(), "jti": "j", "sid": "s",
			"events": map[string]any{BackChannelLogoutEvent: map[string]any{}}})
	}
	e.clock.Advance(minKeyRefresh)
	for i := range 5 {
		if _, err := e.c.VerifyLogoutToken(ctx, forged(fmt.Sprint("forged-", i))); !errors.Is(err, ErrInvalidLogoutToken) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if got := e.sim.Calls("certs"); got != before+2 {
		t.Errorf("5 forged kids caused %d fetches, want 1", got-before-1)
	}
	// Trade-off: a rotation right after a fetch is seen once the window
	// has passed.
	if err := e.sim.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.signIn(t); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("within the window: %v", err)
	}
	e.clock.Advance(minKeyRefresh)
	if _, err := e.signIn(t); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestUserinfoFormats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		format  string
		encTo   any
		decrypt any
		wantErr string
	}{
		{"json", psctest.FormatJSON, nil, nil, ""},
		{"signed jwt", psctest.FormatJWT, nil, nil, ""},
		{"signed then encrypted, RSA", psctest.FormatJWE, &rsaKey.PublicKey, rsaKey, ""},
		{"signed then encrypted, EC", psctest.FormatJWE, &ecKey.PublicKey, ecKey, ""},
		{"encrypted without a key", psctest.FormatJWE, &rsaKey.PublicKey, nil, "no decryption key"},
		{"encrypted to another key", psctest.FormatJWE, &rsaKey.PublicKey, ecKey, "encrypted userinfo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, psctest.Config{}, func(o *Options) { o.UserinfoDecryptionKey = tc.decrypt })
			e.sim.SetUserinfoFormat(tc.format, tc.encTo)
			id, err := e.signIn(t)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrUserinfo) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.NationalID != "899700427885" || len(id.Professions) != 1 {
				t.Errorf("identity %+v", id)
			}
		})
	}
}

func TestUserinfoRefused(t *testing.T) {
	t.Run("another subject", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		u := psctest.DefaultUser()
		u.Extra = map[string]any{"sub": "f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:899700000001"}
		e.sim.SetNextUser(u)
		if _, err := e.signIn(t); !errors.Is(err, ErrUserinfo) || !strings.Contains(err.Error(), "sub differs") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no national id", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		u := psctest.DefaultUser()
		u.Userinfo = map[string]any{"given_name": "KIT"}
		e.sim.SetNextUser(u)
		e.sim.TamperIDToken(func(c map[string]any) { delete(c, "preferred_username") })
		if _, err := e.signIn(t); !errors.Is(err, ErrNoSubject) || Reason(err) != "psc_no_subject" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("expired access token", func(t *testing.T) {
		// Userinfo must be fetched at once; the simulator enforces 120 s.
		e := setup(t, psctest.Config{}, nil)
		q, verifier, _ := e.authorize(t)
		d, err := e.c.provider(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := e.c.oauth2Config(d, callback).Exchange(context.WithValue(context.Background(), oauth2.HTTPClient, e.c.client), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(psctest.AccessTokenLifetime + time.Second)
		if _, err := e.c.userinfo(context.Background(), d, tok.AccessToken); !errors.Is(err, ErrUserinfo) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAuthTime(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	past := e.clock.Now().Add(-time.Hour).Truncate(time.Second)
	e.sim.TamperIDToken(func(c map[string]any) { c["auth_time"] = past.Unix() })
	if id, err := e.signIn(t); err != nil || !id.AuthTime.Equal(past) {
		t.Errorf("auth_time in the past: %v %v", id.AuthTime, err)
	}
	e.sim.TamperIDToken(func(c map[string]any) { c["auth_time"] = e.clock.Now().Add(time.Hour).Unix() })
	if id, err := e.signIn(t); err != nil || !id.AuthTime.Equal(e.clock.Now()) {
		t.Errorf("auth_time in the future: %v, want now %v (%v)", id.AuthTime, e.clock.Now(), err)
	}
	e.sim.TamperIDToken(func(c map[string]any) { delete(c, "auth_time") })
	if id, err := e.signIn(t); err != nil || !id.AuthTime.Equal(e.clock.Now()) {
		t.Errorf("no auth_time: %v (%v)", id.AuthTime, err)
	}
}

func TestCodeReplayAndPKCE(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	q, verifier, nonce := e.authorize(t)
	if _, err := e.c.Exchange(context.Background(), callback, q.Get("code"), verifier+"x", nonce); !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong verifier: %v", err)
	}
	q, verifier, nonce = e.authorize(t)
	if _, err := e.c.Exchange(context.Background(), callback, q.Get("code"), verifier, nonce); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Exchange(context.Background(), callback, q.Get("code"), verifier, nonce); !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("replayed code: %v", err)
	}
}

func TestAccessDenied(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	e.sim.DenyNext("access_denied")
	_, err := e.signIn(t)
	if !errors.Is(err, ErrDenied) || Reason(err) != "psc_denied" {
		t.Fatalf("err = %v", err)
	}
	if err := CallbackError(url.Values{"error": {"server_error"}}); Reason(err) != "psc_provider_error" {
		t.Errorf("server_error: %v", err)
	}
	if err := CallbackError(url.Values{"code": {"x"}}); err != nil {
		t.Errorf("no error: %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, err := New(context.Background(), Options{Environment: EnvCustom, Issuer: "https://" + addr + psctest.RealmPath, ClientID: "x", ClientSecret: "y"})
		if err != nil {
			t.Fatalf("New must not need PSC: %v", err)
		}
		_, err = c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")})
		if !errors.Is(err, connectors.ErrUnavailable) || Reason(err) != "psc_unavailable" || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("standard discovery path is not served", func(t *testing.T) {
		e := setup(t, psctest.Config{}, func(o *Options) { o.DiscoveryURL = o.Issuer + "/.well-known/openid-configuration" })
		_, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")})
		if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "HTTP 404") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		e := setup(t, psctest.Config{}, func(o *Options) {
			o.DiscoveryURL = o.Issuer + DiscoveryPath
			o.Issuer += "-other"
		})
		_, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")})
		if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "names issuer") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("down, then a stale document is kept", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		if _, err := e.signIn(t); err != nil {
			t.Fatal(err)
		}
		e.sim.SetDown(true)
		e.clock.Advance(2 * DefaultDiscoveryTTL)
		_, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")})
		if err != nil {
			t.Fatalf("stale discovery should be used: %v", err)
		}
		e.sim.SetDown(false)
		if _, err := e.signIn(t); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("down from the start: failures are remembered briefly", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		e.sim.SetDown(true)
		try := func() error {
			_, err := e.c.AuthCodeURL(context.Background(), AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")})
			return err
		}
		for range 3 {
			if err := try(); !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "503") {
				t.Fatalf("err = %v", err)
			}
		}
		if n := e.sim.Calls("discovery"); n != 1 {
			t.Errorf("discovery fetched %d times within %s", n, discoveryRetry)
		}
		e.sim.SetDown(false)
		e.clock.Advance(discoveryRetry)
		if err := try(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("key set down", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		e.sim.SetEndpointDown("certs", true)
		_, err := e.signIn(t)
		if !errors.Is(err, connectors.ErrUnavailable) || Reason(err) != "psc_unavailable" || !strings.Contains(err.Error(), "keys") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("userinfo down", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		e.sim.SetEndpointDown("userinfo", true)
		if _, err := e.signIn(t); !errors.Is(err, connectors.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("token endpoint down", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		q, verifier, nonce := e.authorize(t)
		e.sim.SetDown(true)
		_, err := e.c.Exchange(context.Background(), callback, q.Get("code"), verifier, nonce)
		if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestBadArguments(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	good := AuthRequest{CallbackURL: callback, State: random(t), Nonce: random(t), CodeChallenge: challenge("v")}
	for name, mod := range map[string]func(*AuthRequest){
		"no state":        func(a *AuthRequest) { a.State = "" },
		"short nonce":     func(a *AuthRequest) { a.Nonce = "abc" },
		"plain challenge": func(a *AuthRequest) { a.CodeChallenge = "verifier" },
		"relative URL":    func(a *AuthRequest) { a.CallbackURL = "/callback" },
	} {
		a := good
		mod(&a)
		if _, err := e.c.AuthCodeURL(context.Background(), a); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.c.Exchange(context.Background(), callback, "", random(t), "n"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty code: %v", err)
	}
	if _, err := e.c.Exchange(context.Background(), callback, "c", "short", "n"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("short verifier: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	ctx := context.Background()
	c, err := New(ctx, Options{Environment: EnvProduction, ClientID: "x", ClientSecret: "y"})
	if err != nil || c.issuer != IssuerProduction || c.discoveryURL != IssuerProduction+DiscoveryPath {
		t.Fatalf("production preset: %v %+v", err, c)
	}
	c, err = New(ctx, Options{Environment: EnvBAS, ClientID: "x", ClientSecret: "y"})
	if err != nil || c.issuer != "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet" {
		t.Fatalf("bas preset: %v", err)
	}
	if strings.Join(c.scopes, " ") != "openid scope_all" || c.acrValues != "eidas1" || c.authMethod != AuthClientSecretBasic {
		t.Errorf("defaults: %v %q %q", c.scopes, c.acrValues, c.authMethod)
	}
	for name, o := range map[string]Options{
		"unknown environment":     {Environment: "prod", ClientID: "x", ClientSecret: "y"},
		"custom without issuer":   {Environment: EnvCustom, ClientID: "x", ClientSecret: "y"},
		"preset with other iss":   {Environment: EnvBAS, Issuer: IssuerProduction, ClientID: "x", ClientSecret: "y"},
		"http issuer":             {Environment: EnvCustom, Issuer: "http://psc.example", ClientID: "x", ClientSecret: "y"},
		"no client id":            {Environment: EnvBAS, ClientSecret: "y"},
		"no secret":               {Environment: EnvBAS, ClientID: "x"},
		"mtls without a cert":     {Environment: EnvBAS, ClientID: "x", AuthMethod: AuthTLSClientAuth},
		"unknown auth method":     {Environment: EnvBAS, ClientID: "x", ClientSecret: "y", AuthMethod: "private_key_jwt"},
		"issuer with a slash":     {Environment: EnvCustom, Issuer: "https://psc.example/realm/", ClientID: "x", ClientSecret: "y"},
		"discovery URL over http": {Environment: EnvBAS, DiscoveryURL: "http://x/y", ClientID: "x", ClientSecret: "y"},
	} {
		if _, err := New(ctx, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEndSessionURL(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.c.EndSessionURL(context.Background(), id.Upstream.IDToken, "https://garde.test/logged-out", "st4te")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, e.sim.Issuer()+"/protocol/openid-connect/logout?") {
		t.Errorf("logout URL %s", u)
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
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://garde.test/logged-out?state=st4te" {
		t.Fatalf("logout answered %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.sim.LoggedOut(); len(got) != 1 || got[0] != id.Upstream.SessionID {
		t.Errorf("PSC ended %v, want %s", got, id.Upstream.SessionID)
	}
	// An unregistered post-logout URI is refused by PSC.
	u, _ = e.c.EndSessionURL(context.Background(), id.Upstream.IDToken, "https://evil.example/", "s")
	resp, err = browser.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unregistered post-logout URI: %d", resp.StatusCode)
	}
}
