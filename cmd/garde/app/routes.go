package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/account"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/oidc"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/web"
)

// pinger is what readiness asks of a store or a connector.
type pinger interface{ Ping(context.Context) error }

func (a *App) routes(p *oidc.Provider, engine *flow.Engine, acct *account.Handlers, pages *web.Renderer, clients []*oidc.Client, cfg *config.Config, m *metrics) http.Handler {
	mux := http.NewServeMux()

	// Forms posted by people get Go's cross-origin protection on top of
	// their per-form CSRF tokens. The OAuth endpoints do not: applications'
	// back ends call them without browser headers, and browser apps
	// (public clients) call them cross-origin by design.
	cop := web.CrossOriginProtection()
	cop.SetDenyHandler(pages.CrossOriginDenied())
	p.Register(mux, cop.Handler)
	engine.Register(mux, cop.Handler)
	engine.RegisterUpstream(mux, cop.Handler)
	engine.RegisterUpstreamLogout(mux)
	if acct != nil {
		acct.Register(mux, cop.Handler)
	}
	if a.admin != nil {
		a.admin.Register(mux, cop.Handler)
	}
	// SAML endpoints take cross-origin POSTs from applications by design
	// (the HTTP-POST binding): no cross-origin protection.
	mountSAML(mux, a.samlIdP)
	mux.Handle("GET /static/", web.StaticHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		ok := true
		check := func(name string, p pinger) {
			if err := p.Ping(ctx); err != nil {
				status[name] = "unavailable"
				ok = false
				a.logger.Warn("readiness check failed", "component", name, "err", err)
				return
			}
			status[name] = "ok"
		}
		check("durable_store", a.Durable)
		check("ephemeral_store", a.Ephemeral)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, oidc.PathDiscovery, http.StatusFound)
	})

	resolver := clientaddr.New(cfg.Listen.TrustedProxies)
	isHTTPS := func(r *http.Request) bool { return clientaddr.From(r).HTTPS }
	var h http.Handler = mux
	h = corsForBrowserApps(h, clients)
	h = web.LanguageSwitch(h, isHTTPS)
	h = web.SecurityHeaders(h, isHTTPS)
	h = m.middleware(h)
	h = resolver.Middleware(h)
	return h
}

// corsForBrowserApps lets public clients running in a browser call the
// token, userinfo and revocation endpoints from the origins of their
// registered redirect URIs, and from nowhere else.
func corsForBrowserApps(next http.Handler, clients []*oidc.Client) http.Handler {
	origins := map[string]bool{}
	for _, c := range clients {
		if !c.IsPublic() {
			continue
		}
		for _, ru := range c.GetRedirectURIs() {
			if u, err := url.Parse(ru); err == nil && u.Host != "" {
				origins[u.Scheme+"://"+u.Host] = true
			}
		}
	}
	paths := map[string]bool{oidc.PathToken: true, oidc.PathUserinfo: true, oidc.PathRevoke: true, oidc.PathDiscovery: true, oidc.PathJWKS: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !paths[r.URL.Path] || !origins[origin] {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", strings.Join([]string{"Authorization", "Content-Type"}, ", "))
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
