package oidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/store"
)

// token handles the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch gt := r.PostFormValue("grant_type"); gt {
	case "authorization_code", "refresh_token", "client_credentials", "":
	default:
		// fosite answers invalid_request for a grant no handler knows;
		// RFC 6749 §5.2 names the right error.
		err := fosite.ErrUnsupportedGrantType.WithHintf("Garde does not offer the %q grant.", gt)
		p.tokenFailure(r, nil, err)
		p.oauth.WriteAccessError(ctx, w, fosite.NewAccessRequest(nil), err)
		return
	}
	ctx = WithDecodeCache(ctx)
	sess := NewSession()
	ar, err := p.oauth.NewAccessRequest(ctx, r, sess)
	if err != nil {
		p.tokenFailure(r, ar, err)
		p.oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	client := ar.GetClient().(*Client)
	grant := "authorization_code"
	switch {
	case ar.GetGrantTypes().ExactOne("client_credentials"):
		grant = "client_credentials"
		// fosite checked the requested scopes and audience against the
		// client's registration; granting them is the server's call.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		sess.Subject = client.GetID()
		sess.AccessClaims.Subject = client.GetID()
		sess.AccessClaims.Extra = map[string]any{"client_id": client.GetID()}
		sess.AccessHeader.Add("alg", client.IDTokenAlg)
		sess.AccessHeader.Add("typ", "at+jwt")
	case ar.GetGrantTypes().ExactOne("refresh_token"):
		grant = "refresh_token"
	}
	resp, err := p.oauth.NewAccessResponse(ctx, ar)
	if err != nil {
		err = p.handleCodeRace(r, ar, err)
		p.tokenFailure(r, ar, err)
		p.oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	typ := audit.TokenIssued
	if grant == "refresh_token" {
		typ = audit.TokenRefreshed
	}
	p.audit.Record(store.AuditEvent{
		Type: typ, Person: sess.GetSubject(), App: client.GetID(), ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Success, SessionID: sess.SID,
		Details: map[string]string{"grant_type": grant, "scope": strings.Join(ar.GetGrantedScopes(), " ")},
	})
	p.oauth.WriteAccessResponse(ctx, w, ar, resp)
}

// handleCodeRace turns the loser of two concurrent redemptions of one code
// into what a sequential reuse gets: invalid_grant, and the grant revoked.
func (p *Provider) handleCodeRace(r *http.Request, ar fosite.AccessRequester, err error) error {
	if !errors.Is(err, errCodeReused) {
		return err
	}
	ctx := r.Context()
	code := ar.GetRequestForm().Get("code")
	sig := p.hmac.AuthorizeCodeSignature(ctx, code)
	if reqID, gerr := p.storage.codeRequestID(ctx, sig); gerr == nil {
		if rerr := p.storage.RevokeRefreshToken(ctx, reqID); rerr != nil {
			p.log.Error("revoking a reused code's grant failed", "err", rerr)
		}
		if rerr := p.storage.RevokeAccessToken(ctx, reqID); rerr != nil {
			p.log.Error("revoking a reused code's grant failed", "err", rerr)
		}
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

// tokenFailure audits a refused token request. Reuse of a code or a rotated
// refresh token is its own event type: it means a token was stolen.
func (p *Provider) tokenFailure(r *http.Request, ar fosite.AccessRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	clientID := ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	} else if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	} else {
		clientID = r.PostForm.Get("client_id")
	}
	typ := audit.TokenFailure
	desc := rfc.GetDescription()
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrInactiveToken) ||
		strings.Contains(desc, "already been used") || strings.Contains(desc, "refresh token has been used") {
		typ = audit.TokenReuse
	}
	if rfc.CodeField >= 500 {
		p.log.Error("token request failed", "client", clientID, "err", err, "debug", rfc.GetDescription())
	}
	p.audit.Record(store.AuditEvent{
		Type: typ, App: clientID, ClientAddr: clientaddr.From(r).String(), Outcome: audit.Failure, Reason: rfc.ErrorField,
		Details: map[string]string{"grant_type": r.PostForm.Get("grant_type")},
	})
}

// userinfo returns the claims of an access token's person, as released by
// its scopes.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="garde"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", "An access token is required.")
		return
	}
	sess := NewSession()
	tt, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil || tt != fosite.AccessToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="garde", error="invalid_token"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") || sess.SID == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="garde", error="insufficient_scope", scope="openid"`)
		writeJSONError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	claims := map[string]any{}
	for k, v := range sess.IDTokenClaims().Extra {
		if k != "sid" {
			claims[k] = v
		}
	}
	claims["sub"] = sess.GetSubject()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(claims)
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// introspect handles RFC 7662 token introspection (client authentication
// required).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ir, err := p.oauth.NewIntrospectionRequest(ctx, r, NewSession())
	if err != nil {
		p.oauth.WriteIntrospectionError(ctx, w, err)
		return
	}
	p.oauth.WriteIntrospectionResponse(ctx, w, ir)
}

// revoke handles RFC 7009 token revocation.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := p.oauth.NewRevocationRequest(ctx, r)
	clientID, _, _ := r.BasicAuth()
	if clientID == "" {
		clientID = r.PostForm.Get("client_id")
	}
	ev := store.AuditEvent{Type: audit.TokenRevoked, App: clientID, ClientAddr: clientaddr.From(r).String(), Outcome: audit.Success,
		Details: map[string]string{"token_type_hint": r.PostForm.Get("token_type_hint")}}
	if err != nil {
		ev.Outcome, ev.Reason = audit.Failure, fosite.ErrorToRFC6749Error(err).ErrorField
	}
	p.audit.Record(ev)
	p.oauth.WriteRevocationResponse(ctx, w, err)
}
