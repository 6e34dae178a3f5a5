package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/web"
)

// idTokenHint is what end_session learns from a verified id_token_hint.
type idTokenHint struct {
	Subject  string
	SID      string
	Audience []string
}

// verifyHint checks an ID token Garde issued. An expired token is a valid
// hint (the spec expects it: people log out after their tokens expire);
// a token not signed by one of Garde's published keys is not.
func (p *Provider) verifyHint(raw string) (*idTokenHint, error) {
	claims := gjwt.MapClaims{}
	_, err := gjwt.ParseWithClaims(raw, claims, func(t *gjwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, alg, ok := p.keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		if t.Method.Alg() != alg {
			return nil, fmt.Errorf("token alg %s does not match key alg %s", t.Method.Alg(), alg)
		}
		return key, nil
	}, gjwt.WithValidMethods([]string{"RS256", "ES256"}), gjwt.WithIssuer(p.issuer), gjwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if iss, _ := claims["iss"].(string); iss != p.issuer {
		return nil, errors.New("id_token_hint was not issued by this provider")
	}
	h := &idTokenHint{}
	h.Subject, _ = claims["sub"].(string)
	h.SID, _ = claims["sid"].(string)
	aud, _ := claims.GetAudience()
	h.Audience = aud
	return h, nil
}

// endSession implements OpenID Connect RP-Initiated Logout 1.0.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "invalid_request", err)
		return
	}
	var hint *idTokenHint
	if raw := r.Form.Get("id_token_hint"); raw != "" {
		h, err := p.verifyHint(raw)
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "invalid_request", fmt.Errorf("id_token_hint: %w", err))
			return
		}
		hint = h
	}
	clientID := r.Form.Get("client_id")
	if hint != nil {
		if clientID != "" && !slices.Contains(hint.Audience, clientID) {
			p.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("client_id does not match id_token_hint"))
			return
		}
		if clientID == "" && len(hint.Audience) > 0 {
			clientID = hint.Audience[0]
		}
	}
	// The return address must be registered for the client, exactly; an
	// unverifiable one is never followed (no open redirect).
	returnTo := r.Form.Get("post_logout_redirect_uri")
	var client *Client
	if clientID != "" {
		c, ok := p.storage.Client(clientID)
		if !ok {
			p.errorPage(w, r, http.StatusBadRequest, "unknown_client", fmt.Errorf("unknown client %q", clientID))
			return
		}
		client = c
	}
	if returnTo != "" && (client == nil || !slices.Contains(client.PostLogoutRedirectURIs, returnTo)) {
		p.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", fmt.Errorf("post_logout_redirect_uri %q is not registered", returnTo))
		return
	}

	current, secret := p.sessionOf(ctx, r)
	binding, _ := p.cookies.Get(r, flow.CookieBinding)
	confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes"
	if confirmed && !p.csrf.Verify(binding, "logout", r.PostForm.Get("csrf_token")) {
		p.errorPage(w, r, http.StatusForbidden, "csrf_failed", nil)
		return
	}
	// Without proof that the application asking is the one the person is
	// signed in to (a hint naming this session), ask the person: otherwise
	// any page could log a clinician out with a simple link.
	hintMatches := hint != nil && (current == nil || hint.SID == current.ID)
	if current != nil && !hintMatches && !confirmed {
		if binding == "" {
			binding = web.NewBinding()
			p.cookies.Set(w, flow.CookieBinding, binding, 0, http.SameSiteLaxMode)
		}
		// The validated parameters ride in the form's action URL, and are
		// validated again when the confirmation comes back.
		q := url.Values{}
		for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
			if v := r.Form.Get(k); v != "" {
				q.Set(k, v)
			}
		}
		page := web.LogoutConfirmPage{
			Action:    PathEndSession + "?" + q.Encode(),
			CSRFToken: p.csrf.Token(binding, "logout"),
			CancelURL: returnTo,
		}
		if client != nil {
			page.App = client.DisplayName()
		}
		p.pages.Render(w, r, http.StatusOK, "logout_confirm", page)
		return
	}

	how := "user"
	if hint != nil {
		how = "app"
	}
	var ended *session.Session
	if current != nil {
		ended = p.endOne(r, func() (*session.Session, error) { return p.sessions.End(ctx, secret) }, clientID, how)
	} else if hint != nil && hint.SID != "" {
		// The browser lost its cookie, but the application named the session.
		ended = p.endOne(r, func() (*session.Session, error) { return p.sessions.EndByID(ctx, hint.SID) }, clientID, how)
	}
	p.cookies.Clear(w, flow.CookieSession)

	next := ""
	if returnTo != "" {
		u, err := url.Parse(returnTo)
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", err)
			return
		}
		if st := r.Form.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		next = u.String()
	}
	// The session ends elsewhere too (upstreamLogout, wired by the app):
	// its SAML applications get a LogoutRequest each, and a session
	// opened through an upstream provider (Pro Santé Connect) ends there,
	// or the next application would sign the person straight back in
	// through the provider's session; the browser then goes on to next.
	if ended != nil && p.upstreamLogout != nil {
		dest, err := p.upstreamLogout(ctx, ended, next)
		if err != nil {
			// Garde's session is over either way; the provider's lives
			// on until it expires, which the log says.
			p.log.Warn("ending the upstream provider's session failed", "sid", ended.ID, "err", err)
		} else if dest != "" {
			http.Redirect(w, r, dest, http.StatusSeeOther)
			return
		}
	}
	if next != "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p.pages.Render(w, r, http.StatusOK, "logged_out", web.LoggedOutPage{})
}

// endOne ends a session (and its refresh tokens), audited with how, and
// returns it (nil when there was none).
func (p *Provider) endOne(r *http.Request, end func() (*session.Session, error), app, how string) *session.Session {
	so := signout.Signout{Sessions: p.sessions, Refresh: p.refresh, Audit: p.audit, Log: p.log}
	return so.End(r.Context(), end, signout.Event{App: app, How: how, ClientAddr: clientaddr.From(r).String()})
}
