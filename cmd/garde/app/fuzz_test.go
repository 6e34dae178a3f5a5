package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
)

const (
	fuzzIssuer    = "https://sso.chu.test"
	fuzzAppSecret = "dossier-secret-0123456789abcdef0123456789"
)

// Registered redirect URIs of the fuzzed deployment, by client.
var fuzzRedirects = map[string][]string{
	"dossier":  {"https://dossier.chu.test/callback", "https://dossier.chu.test/cb2"},
	"planning": {"https://planning.chu.test/cb"},
	"labo":     {"http://127.0.0.1:8080/cb"},
}

const fuzzConfig = `
issuer: ` + fuzzIssuer + `
listen:
  address: "127.0.0.1:5556"
  metrics_address: ""
  trusted_proxies: [10.0.0.0/8]
master_key:
  env: GARDE_FUZZ_MASTER_KEY
storage:
  durable: {driver: sqlite, sqlite_path: {{DB}}}
  ephemeral: {driver: memory}
connectors:
  - id: secours
    type: static
    name: Comptes de secours
    static:
      people:
        - username: dr.martin
          # argon2id of "martin-demo", from the demo configuration
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$Xz9judRU82B1bcp/mJfSZA$+Ouyfj1186kixtBuv+5+nAxgQ+UNBgGYEh5tnNJA5Ao"
          given_name: Claire
          family_name: Martin
          groups: [medecins]
clients:
  - id: dossier
    name: Dossier patient
    secret: ${GARDE_FUZZ_APP_SECRET}
    redirect_uris: [https://dossier.chu.test/callback, https://dossier.chu.test/cb2]
    post_logout_redirect_uris: [https://dossier.chu.test/bye]
    grant_types: [authorization_code, refresh_token, client_credentials]
  - id: planning
    name: Planning
    public: true
    redirect_uris: [https://planning.chu.test/cb]
    grant_types: [authorization_code, refresh_token]
  - id: labo
    name: Laboratoire
    secret: ${GARDE_FUZZ_APP_SECRET}
    token_endpoint_auth_method: client_secret_post
    redirect_uris: ["http://127.0.0.1:8080/cb"]
    grant_types: [authorization_code]
`

// buildGarde wires one Garde for a fuzz target: the whole HTTP stack on
// SQLite and the memory store. It is built once per fuzzing process, not
// per input.
func buildGarde(f *testing.F) http.Handler {
	f.Helper()
	env := map[string]string{
		"GARDE_FUZZ_MASTER_KEY": base64.StdEncoding.EncodeToString([]byte("fuzz-master-key-0123456789abcdef")),
		"GARDE_FUZZ_APP_SECRET": fuzzAppSecret,
	}
	yaml := strings.ReplaceAll(fuzzConfig, "{{DB}}", `"`+filepath.Join(f.TempDir(), "garde.db")+`"`)
	cfg, err := config.Parse("fuzz.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		f.Fatalf("config: %v", err)
	}
	a, err := app.Build(context.Background(), cfg, app.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		f.Fatalf("build: %v", err)
	}
	f.Cleanup(func() { _ = a.Close(context.Background()) })
	return a.Handler
}

// checkRedirect fails unless loc is a path on Garde itself or starts with
// a registered redirect URI of the client the request named.
func checkRedirect(t *testing.T, loc string, clientIDs []string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("unparseable Location %q: %v", loc, err)
	}
	if u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(loc, "/") &&
		!strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\") {
		return // on Garde: the login page
	}
	for _, id := range clientIDs {
		for _, ru := range fuzzRedirects[id] {
			if loc == ru || strings.HasPrefix(loc, ru+"?") {
				return
			}
		}
	}
	t.Fatalf("open redirect: Location %q is not a registered redirect URI of client %q", loc, clientIDs)
}

func FuzzAuthorize(f *testing.F) {
	valid := url.Values{
		"client_id":             {"dossier"},
		"response_type":         {"code"},
		"redirect_uri":          {"https://dossier.chu.test/callback"},
		"scope":                 {"openid profile email groups offline_access"},
		"state":                 {"af0ifjsldkj-state-0123456789"},
		"nonce":                 {"n-0S6_WzA2Mj-nonce-0123456789"},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"},
	}
	// with returns the valid request with pairs of (key, value) set, or
	// removed when the value is "".
	with := func(kv ...string) string {
		q := url.Values{}
		for k, v := range valid {
			q[k] = slices.Clone(v)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q.Encode()
	}
	f.Add(valid.Encode())
	f.Add(with("client_id", "planning", "redirect_uri", "https://planning.chu.test/cb"))
	f.Add(with("redirect_uri", "https://dossier.chu.test/cb2", "response_mode", "form_post"))
	f.Add(with("redirect_uri", "https://evil.test/callback"))
	f.Add(with("redirect_uri", "https://dossier.chu.test/callback/../evil"))
	f.Add(with("redirect_uri", "https://dossier.chu.test/callback?x=1"))
	f.Add(with("redirect_uri", "https://dossier.chu.test/callbackx"))
	f.Add(with("redirect_uri", "https://DOSSIER.chu.test/callback"))
	f.Add(with("redirect_uri", "https://planning.chu.test/cb"))
	f.Add(with("redirect_uri", ""))
	f.Add(with("client_id", "unknown-client"))
	f.Add(with("client_id", ""))
	f.Add(with("response_type", "token"))
	f.Add(with("response_type", "code id_token"))
	f.Add(with("response_mode", "fragment"))
	f.Add(with("response_mode", "form_post"))
	f.Add(with("code_challenge_method", "plain"))
	f.Add(with("code_challenge", ""))
	f.Add(with("scope", "openid admin"))
	f.Add(with("prompt", "none"))
	f.Add(with("prompt", "login consent"))
	f.Add(with("max_age", "-1"))
	f.Add(with("max_age", "99999999999999999999"))
	f.Add(with("acr_values", "http://eidas.europa.eu/LoA/high"))
	f.Add(with("request_uri", "urn:ietf:params:oauth:request_uri:abc"))
	f.Add(with("request", "eyJhbGciOiJub25lIn0.e30."))
	f.Add(with("state", "x"))
	f.Add(with("login_hint", "dr.martin\r\nX-Injected: 1"))
	f.Add(with("client_id", "labo", "redirect_uri", "http://127.0.0.1:9999/cb"))
	f.Add(with("client_id", "labo", "redirect_uri", "http://127.0.0.1:8080/cb", "state", ""))
	f.Add(valid.Encode() + "&client_id=planning")
	f.Add("client_id=dossier&client_id=planning&redirect_uri=https%3A%2F%2Fplanning.chu.test%2Fcb&response_type=code")
	f.Add("%zz&client_id=dossier")
	f.Add("")
	f.Add(";;;&&&===")

	h := buildGarde(f)
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		r.URL.RawQuery = query
		r.RequestURI = "/authorize?" + query
		r.RemoteAddr = "198.51.100.20:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("GET /authorize?%s: status %d\n%s", query, w.Code, w.Body.String())
		}
		loc := w.Header().Get("Location")
		if w.Code >= 300 && w.Code < 400 {
			q, _ := url.ParseQuery(query)
			checkRedirect(t, loc, q["client_id"])
		} else if loc != "" {
			t.Fatalf("status %d with Location %q", w.Code, loc)
		}
	})
}

func FuzzToken(f *testing.F) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("dossier:"+fuzzAppSecret))
	f.Add("grant_type=client_credentials", basic)
	f.Add("grant_type=client_credentials&scope=openid", basic)
	f.Add("grant_type=client_credentials&client_id=labo&client_secret="+fuzzAppSecret, "")
	f.Add("grant_type=client_credentials", "Basic "+base64.StdEncoding.EncodeToString([]byte("dossier:wrong")))
	f.Add("grant_type=client_credentials", "Basic "+base64.StdEncoding.EncodeToString([]byte("unknown:x")))
	f.Add("grant_type=client_credentials", "Basic %%%")
	f.Add("grant_type=client_credentials", "Bearer abc")
	f.Add("grant_type=authorization_code&code=ory_ac_x.y&redirect_uri=https%3A%2F%2Fdossier.chu.test%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", basic)
	f.Add("grant_type=authorization_code&client_id=planning&code=ory_ac_x.y&redirect_uri=https%3A%2F%2Fplanning.chu.test%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "")
	f.Add("grant_type=refresh_token&refresh_token=ory_rt_abc.def", basic)
	f.Add("grant_type=refresh_token&client_id=planning&refresh_token=ory_rt_abc.def", "")
	f.Add("grant_type=password&username=dr.martin&password=martin-demo", basic)
	f.Add("grant_type=implicit", basic)
	f.Add("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e30.e30.e30", basic)
	f.Add("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJkb3NzaWVyIiwic3ViIjoiZG9zc2llciJ9.sig", "")
	f.Add("", "")
	f.Add("grant_type=", basic)
	f.Add("grant_type=client_credentials&grant_type=refresh_token", basic)
	f.Add("%zz", basic)

	h := buildGarde(f)
	f.Fuzz(func(t *testing.T, body, authorization string) {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		r.RemoteAddr = "198.51.100.21:40000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("POST /token %q (Authorization %q): status %d\n%s", body, authorization, w.Code, w.Body.String())
		}
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("POST /token %q: status %d, body is not a JSON object: %v\n%s", body, w.Code, err, w.Body.String())
		}
		_, isErr := resp["error"]
		_, isToken := resp["access_token"]
		if isErr == isToken {
			t.Fatalf("POST /token %q: status %d, want exactly one of error and access_token: %s", body, w.Code, w.Body.String())
		}
		if isToken && w.Code != http.StatusOK || isErr && w.Code < 400 {
			t.Fatalf("POST /token %q: status %d does not match the body %s", body, w.Code, w.Body.String())
		}
	})
}
