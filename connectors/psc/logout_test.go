package psc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/garde-sso/garde/connectors/psc/psctest"
)

func TestLogoutToken(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	id, err := e.signIn(t)
	if err != nil {
		t.Fatal(err)
	}
	lt, err := e.c.VerifyLogoutToken(context.Background(), e.sim.LogoutToken(id.Upstream.Subject, id.Upstream.SessionID))
	if err != nil {
		t.Fatal(err)
	}
	if lt.Subject != id.Upstream.Subject || lt.SessionID != id.Upstream.SessionID || lt.JTI == "" || lt.IssuedAt.IsZero() {
		t.Errorf("logout token %+v", lt)
	}
	if lt, err = e.c.VerifyLogoutToken(context.Background(), e.sim.LogoutToken("", "only-sid")); err != nil || lt.SessionID != "only-sid" {
		t.Errorf("sid only: %+v %v", lt, err)
	}

	now := e.clock.Now()
	valid := func() map[string]any {
		return map[string]any{
			"iss": e.sim.Issuer(), "aud": e.sim.ClientID(), "iat": now.Unix(), "jti": "j1",
			"sub": "f:x:899700427885", "sid": "s1",
			"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
		}
	}
	mint := func(mod func(map[string]any)) string {
		c := valid()
		mod(c)
		tok, err := e.sim.MintJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := e.c.VerifyLogoutToken(context.Background(), mint(func(map[string]any) {})); err != nil {
		t.Fatalf("minted valid token refused: %v", err)
	}
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		token string
		want  string
	}{
		"wrong audience":             {mint(func(c map[string]any) { c["aud"] = "another-client" }), "audience"},
		"wrong issuer":               {mint(func(c map[string]any) { c["iss"] = IssuerProduction }), "issuer"},
		"nonce present":              {mint(func(c map[string]any) { c["nonce"] = "n" }), "nonce"},
		"missing events":             {mint(func(c map[string]any) { delete(c, "events") }), "events"},
		"other event":                {mint(func(c map[string]any) { c["events"] = map[string]any{"urn:other": map[string]any{}} }), "events"},
		"event not an object":        {mint(func(c map[string]any) { c["events"] = map[string]any{BackChannelLogoutEvent: "yes"} }), "not a JSON object"},
		"neither sub nor sid":        {mint(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }), "neither sub nor sid"},
		"no jti":                     {mint(func(c map[string]any) { delete(c, "jti") }), "jti"},
		"no iat":                     {mint(func(c map[string]any) { delete(c, "iat") }), "iat"},
		"iat too old":                {mint(func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() }), "outside"},
		"iat in the future":          {mint(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), "outside"},
		"expired":                    {mint(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }), "expired"},
		"bad signature":              {flipSignature(mint(func(map[string]any) {})), "logout token"},
		"signed by another key":      {signWith(t, foreign, e.sim.CurrentKID(), valid()), "logout token"},
		"alg none":                   {noneToken(valid()), "malformed"},
		"HS256 with a guessable key": {signHS256(t, valid()), "malformed"},
		"not a JWT":                  {"not-a-jwt", "malformed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.c.VerifyLogoutToken(context.Background(), tc.token)
			if !errors.Is(err, ErrInvalidLogoutToken) || Reason(err) != "psc_invalid_logout_token" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("an ID token is not a logout token", func(t *testing.T) {
		if _, err := e.c.VerifyLogoutToken(context.Background(), id.Upstream.IDToken); !errors.Is(err, ErrInvalidLogoutToken) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestBackChannelDelivery plays PSC POSTing logout tokens to a receiver
// that verifies them, as Garde's back-channel logout endpoint will.
func TestBackChannelDelivery(t *testing.T) {
	e := setup(t, psctest.Config{}, nil)
	var got []LogoutToken
	recv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt, err := e.c.VerifyLogoutToken(r.Context(), r.PostFormValue("logout_token"))
		if err != nil {
			http.Error(w, Reason(err), http.StatusBadRequest)
			return
		}
		got = append(got, lt)
	}))
	defer recv.Close()
	ctx := context.Background()
	if status, err := e.sim.SendLogoutToken(ctx, recv.Client(), recv.URL, e.sim.LogoutToken("f:x:899700427885", "sid-1")); err != nil || status != http.StatusOK {
		t.Fatalf("valid token: %d %v", status, err)
	}
	if status, _ := e.sim.SendLogoutToken(ctx, recv.Client(), recv.URL, flipSignature(e.sim.LogoutToken("", "sid-2"))); status != http.StatusBadRequest {
		t.Errorf("forged token: %d", status)
	}
	if len(got) != 1 || got[0].SessionID != "sid-1" {
		t.Errorf("received %+v", got)
	}
}

func flipSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig := []byte(tok[i+1:])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	return tok[:i+1] + string(sig)
}

func signWith(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func signHS256(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("psc-simulator-secret-0123456789abcdef")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func noneToken(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(string(b)) + "."
}

// FuzzLogoutClaims feeds arbitrary claims to the logout-token checks: they
// must return a token or an error, never panic, and never accept claims
// without the event, with a nonce, or with neither sub nor sid.
func FuzzLogoutClaims(f *testing.F) {
	base := map[string]any{
		"iss": "https://psc.example/auth/realms/esante-wallet", "aud": "garde", "iat": 1700000000, "jti": "j",
		"sub": "f:x:899700427885", "sid": "s", "events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
	}
	seed := func(mod func(map[string]any)) {
		c := maps.Clone(base)
		mod(c)
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	seed(func(map[string]any) {})
	seed(func(c map[string]any) { c["aud"] = []string{"a", "garde"} })
	seed(func(c map[string]any) { c["nonce"] = "n" })
	seed(func(c map[string]any) { delete(c, "events") })
	seed(func(c map[string]any) { c["iat"] = "soon" })
	f.Add([]byte(`{"events":{"` + BackChannelLogoutEvent + `":null}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"aud":{}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		lc, err := parseLogoutClaims(payload, "https://psc.example/auth/realms/esante-wallet", "garde")
		if err != nil {
			return
		}
		if lc.Nonce != nil || lc.Sub == "" && lc.SID == "" || lc.Events[BackChannelLogoutEvent] == nil || lc.Iat == nil {
			t.Fatalf("accepted %s", payload)
		}
		_, _ = numberTime(lc.Iat)
	})
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
