package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/garde-sso/garde/internal/testutil"
)

// Benchmarks of Garde's server-side cost. Requests go straight to Garde's
// handler (no sockets, no TLS), so ns/op is Garde's own work; cpu-µs/op
// is the process CPU time (user+system) per operation, which on the
// PostgreSQL + Redis backend counts only Garde, not the servers. Run on one
// core:
//
//	go test ./e2e -run '^$' -bench . -cpu 1 -benchtime 2000x

const robotClient = `  - id: robot
    name: Automate
    secret: robot-secret-0123456789abcdef0123456789abcdef
    grant_types: [client_credentials]
    scopes: [api]
    id_token_signed_response_alg: ES256
`

const robotSecret = "robot-secret-0123456789abcdef0123456789abcdef"

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func BenchmarkClientCredentials(b *testing.B) {
	for _, be := range []backend{embedded, servers} {
		for _, c := range []struct{ alg, id, secret string }{{"ES256", "robot", robotSecret}, {"RS256", appID, appSecret}} {
			b.Run(string(be)+"/"+c.alg, func(b *testing.B) {
				g := startGarde(b, be, robotClient)
				body := "grant_type=client_credentials"
				auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.id+":"+c.secret))
				b.ReportAllocs()
				b.ResetTimer()
				start := cpuTime()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, g.issuer+"/token", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", auth)
					rec := httptest.NewRecorder()
					g.app.Handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("token: %d %s", rec.Code, rec.Body)
					}
				}
				reportCPU(b, start)
			})
		}
	}
}

// BenchmarkCodeFlowSSO measures a code flow riding an existing SSO session:
// authorize (answered from the session) then the code exchange.
func BenchmarkCodeFlowSSO(b *testing.B) {
	for _, be := range []backend{embedded, servers} {
		b.Run(string(be), func(b *testing.B) {
			g := startGarde(b, be, "")
			br := g.newBrowser(b)
			// labo signs with ES256 (one ES256 signature costs ~0.07 ms here,
			// one RS256 signature ~1 ms).
			app := g.newRP(b, appID, appSecret, appRedirect)
			signIn(b, g, br, app, testutil.SlapdJDupont)
			u, _ := url.Parse(g.issuer)
			var cookies []string
			for _, c := range br.c.Jar.Cookies(u) {
				cookies = append(cookies, c.Name+"="+c.Value)
			}
			cookie := strings.Join(cookies, "; ")
			verifier := "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
			sum := sha256.Sum256([]byte(verifier))
			challenge := base64.RawURLEncoding.EncodeToString(sum[:])
			authz := g.issuer + "/authorize?" + url.Values{
				"client_id": {labID}, "response_type": {"code"}, "redirect_uri": {labRedirect},
				"scope": {"openid profile email groups"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"},
			}.Encode()
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, authz, nil)
				req.Header.Set("Cookie", cookie)
				rec := httptest.NewRecorder()
				g.app.Handler.ServeHTTP(rec, req)
				loc, err := url.Parse(rec.Header().Get("Location"))
				if rec.Code != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
					b.Fatalf("authorize: %d %s", rec.Code, rec.Header().Get("Location"))
				}
				form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
					"redirect_uri": {labRedirect}, "code_verifier": {verifier}, "client_id": {labID}, "client_secret": {labSecret}}
				req = httptest.NewRequest(http.MethodPost, g.issuer+"/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec = httptest.NewRecorder()
				g.app.Handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("token: %d %s", rec.Code, rec.Body)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkPasswordSignIn measures a whole sign-in with an AD password,
// handled in-process: authorize, the login page, the password check against
// slapd (a real LDAPS bind), the session, the resume and the code.
// cpu-µs/op is Garde's process only: the directory hashes the password in
// slapd, another process.
func BenchmarkPasswordSignIn(b *testing.B) {
	g := startGarde(b, embedded, "")
	u := testutil.SlapdJDupont
	verifier := "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	authz := g.issuer + "/authorize?" + url.Values{
		"client_id": {appID}, "response_type": {"code"}, "redirect_uri": {appRedirect},
		"scope": {"openid profile"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	serve := func(req *http.Request, cookies map[string]string) *httptest.ResponseRecorder {
		for k, v := range cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		rec := httptest.NewRecorder()
		g.app.Handler.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			cookies[c.Name] = c.Value
		}
		return rec
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for b.Loop() {
		cookies := map[string]string{} // a new browser each time: no SSO
		rec := serve(httptest.NewRequest(http.MethodGet, authz, nil), cookies)
		login := g.issuer + rec.Header().Get("Location")
		rec = serve(httptest.NewRequest(http.MethodGet, login, nil), cookies)
		form := url.Values{"username": {u.Username}, "password": {u.Password}}
		for _, m := range hiddenRE.FindAllStringSubmatch(rec.Body.String(), -1) {
			form.Set(m[1], m[2])
		}
		req := httptest.NewRequest(http.MethodPost, g.issuer+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec = serve(req, cookies)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("login: %d", rec.Code)
		}
		rec = serve(httptest.NewRequest(http.MethodGet, g.issuer+rec.Header().Get("Location"), nil), cookies)
		if loc, _ := url.Parse(rec.Header().Get("Location")); rec.Code != http.StatusSeeOther || loc.Query().Get("code") == "" {
			b.Fatalf("resume: %d %s", rec.Code, rec.Header().Get("Location"))
		}
	}
	reportCPU(b, start)
}

// BenchmarkDiscoveryJWKS: both documents are served from memory.
func BenchmarkDiscoveryJWKS(b *testing.B) {
	g := startGarde(b, embedded, "")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, path := range []string{"/.well-known/openid-configuration", "/jwks"} {
			rec := httptest.NewRecorder()
			g.app.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, g.issuer+path, nil))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	}
}
