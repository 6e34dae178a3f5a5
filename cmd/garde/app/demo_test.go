package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// TestDemo runs the built-in demo configuration (what `garde serve` runs
// without --config): the demo client gets a token, and dr.martin signs in
// to demo-app through the login page.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	a, err := app.Build(context.Background(), config.Demo(), app.Options{
		BaseDir: dir,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	// Every request for the demo's issuer (localhost:5556) goes to the test
	// server; redirects to the demo application (localhost:5555) stop.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar: jar,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}},
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == "localhost:5555" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	const issuer = "http://localhost:5556"

	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-app", "demo-secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || tok["access_token"] == nil {
		t.Fatalf("client_credentials on the demo: %d %v", resp.StatusCode, tok)
	}

	authz := issuer + "/authorize?" + url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "redirect_uri": {"http://localhost:5555/callback"},
		"scope": {"openid profile"}, "state": {"demo-state-1"}, "nonce": {"demo-nonce-1"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}.Encode()
	resp, err = c.Get(authz)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {"dr.martin"}, "password": {"martin-demo"}}
	for _, m := range regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`).FindAllStringSubmatch(string(body), -1) {
		form.Set(m[1], m[2])
	}
	post, _ := http.NewRequest(http.MethodPost, issuer+"/login", strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Host != "localhost:5555" || loc.Query().Get("code") == "" || loc.Query().Get("iss") != issuer {
		t.Fatalf("demo sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
