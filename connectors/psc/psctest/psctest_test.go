package psctest

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const cb = "https://garde.test/cb"

func start(t *testing.T) (*Sim, *http.Client) {
	t.Helper()
	s, err := New(Config{RedirectURIs: []string{cb}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func TestDiscovery(t *testing.T) {
	s, c := start(t)
	resp, err := c.Get(s.DiscoveryURL())
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d["issuer"] != s.Issuer() || !strings.HasPrefix(d["authorization_endpoint"].(string), s.WalletURL()) || strings.HasPrefix(s.WalletURL(), strings.Split(s.Issuer(), "/auth/")[0]) {
		t.Errorf("discovery %v", d)
	}
	for _, p := range []string{"/.well-known/openid-configuration", "/auth/realms/esante-wallet/.well-known/openid-configuration"} {
		u, _ := url.Parse(s.Issuer())
		resp, err := c.Get(u.Scheme + "://" + u.Host + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestWalletValidates(t *testing.T) {
	s, c := start(t)
	good := url.Values{
		"client_id": {s.ClientID()}, "redirect_uri": {cb}, "response_type": {"code"}, "scope": {"openid scope_all"},
		"acr_values": {"eidas1"}, "state": {"st"}, "nonce": {"n"}, "code_challenge_method": {"S256"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
	}
	cases := []struct {
		name, key, value string
		status           int
		oauthErr         string
	}{
		{"valid", "", "", http.StatusFound, ""},
		{"unknown client", "client_id", "other", http.StatusBadRequest, ""},
		{"redirect URI not exact", "redirect_uri", cb + "/", http.StatusBadRequest, ""},
		{"implicit", "response_type", "token", http.StatusFound, "unsupported_response_type"},
		{"no scope_all", "scope", "openid", http.StatusFound, "invalid_scope"},
		{"no acr_values", "acr_values", "", http.StatusFound, "invalid_request"},
		{"no nonce", "nonce", "", http.StatusFound, "invalid_request"},
		{"plain PKCE", "code_challenge_method", "plain", http.StatusFound, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = v
			}
			if tc.key != "" {
				q.Set(tc.key, tc.value)
			}
			resp, err := c.Get(s.WalletURL() + "/auth?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusFound {
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			got := loc.Query()
			if got.Get("error") != tc.oauthErr || got.Get("state") != "st" || (tc.oauthErr == "") != (got.Get("code") != "") {
				t.Errorf("redirect %s", loc)
			}
		})
	}
}
