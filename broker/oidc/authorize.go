package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/web"
)

// authorize handles the authorization endpoint.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := p.oauth.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if err := p.checkExactRedirect(ar); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if err := checkPKCE(ar); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	req, err := p.signInRequest(ar)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	res, err := p.flow.Authorize(w, r, req)
	if err != nil {
		p.authorizeError(w, r, ar, flowError(err))
		return
	}
	if res.Redirect != "" {
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
		return
	}
	p.issueCode(w, r, ar, res.Session, req)
}

// checkExactRedirect enforces exact redirect URIs: fosite accepts a missing
// redirect_uri for single-URI clients and any port on loopback URIs
// (RFC 8252); Garde requires the registered string, byte for byte.
func (p *Provider) checkExactRedirect(ar fosite.AuthorizeRequester) error {
	got := ar.GetRequestForm().Get("redirect_uri")
	if got == "" || !slices.Contains(ar.GetClient().GetRedirectURIs(), got) {
		return fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter must be present and match a registered redirect URI exactly.")
	}
	return nil
}

// checkPKCE refuses a request without an S256 code challenge before anyone
// types a password: fosite checks PKCE only when it issues the code, after
// the login page, and a person should not sign in for nothing.
func checkPKCE(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge (PKCE, RFC 7636) in every authorization request.")
	}
	if form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256; plain is not allowed.")
	}
	return nil
}

// flowError maps flow errors to OAuth errors.
func flowError(err error) error {
	switch {
	case errors.Is(err, flow.ErrLoginRequired):
		return fosite.ErrLoginRequired
	case errors.Is(err, flow.ErrAccessDenied):
		var denied *flow.DeniedError
		if errors.As(err, &denied) {
			if denied.Reason == "essential_acr_unreachable" {
				// OpenID Connect Core 1.0 §5.5.1.1 / errata: an essential
				// acr that cannot be met is an error, never a weaker token.
				return &fosite.RFC6749Error{ErrorField: "unmet_authentication_requirements",
					DescriptionField: "The essential acr requested cannot be reached with the sign-in methods this application accepts.",
					CodeField:        http.StatusBadRequest}
			}
			return fosite.ErrAccessDenied.WithHint("The person is not allowed to use this application (" + denied.Reason + ").").WithWrap(denied)
		}
		return fosite.ErrAccessDenied.WithHint("The person is not allowed to use this application.")
	}
	return fosite.ErrServerError.WithWrap(err)
}

// signInRequest turns a validated authorization request into the flow's
// protocol-neutral request.
func (p *Provider) signInRequest(ar fosite.AuthorizeRequester) (flow.Request, error) {
	form := ar.GetRequestForm()
	client := ar.GetClient().(*Client)
	req := flow.Request{
		Protocol:    "oidc",
		App:         client.GetID(),
		AppName:     client.DisplayName(),
		MaxAge:      flow.NoMaxAge,
		LoginHint:   form.Get("login_hint"),
		RequestedAt: ar.GetRequestedAt().UTC(),
	}
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, fosite.ErrInvalidRequest.WithHint("The 'max_age' parameter must be a non-negative integer.")
		}
		req.MaxAge = time.Duration(n) * time.Second
	}
	if d := client.Delegation; d != nil {
		// PSC accepts only phishing-resistant methods, proven within the
		// last MaxAge (4h), whatever the request says.
		req.PhishingResistant = true
		if req.MaxAge == flow.NoMaxAge || req.MaxAge > d.MaxAge {
			req.MaxAge = d.MaxAge
		}
	}
	prompts := strings.Fields(form.Get("prompt"))
	req.ForceLogin = slices.Contains(prompts, "login")
	req.Passive = slices.Contains(prompts, "none")
	for _, v := range strings.Fields(form.Get("acr_values")) {
		if l, ok := assurance.ParseACR(v); ok {
			req.Requested = l
			break
		}
	}
	if raw := form.Get("claims"); raw != "" {
		level, essential, err := acrClaim(raw)
		if err != nil {
			return req, fosite.ErrInvalidRequest.WithHint("The 'claims' parameter is not a valid claims request: " + err.Error())
		}
		if level != assurance.None {
			req.Requested, req.Essential = level, essential
		}
	}
	// What the resume endpoint needs to re-validate the request. For a
	// pushed request fosite has merged the pushed parameters into the form;
	// the single-use request_uri itself must not be replayed.
	resume := url.Values{}
	for k, v := range form {
		if k == "request_uri" {
			continue
		}
		resume[k] = slices.Clone(v)
	}
	req.Resume = resume
	return req, nil
}

// resume completes a flow after sign-in and issues the code.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	req, s, err := p.flow.Resume(w, r)
	if err != nil && !errors.Is(err, flow.ErrAccessDenied) {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	ar, aerr := p.rebuild(r.Context(), r, req.Resume)
	if aerr != nil {
		p.authorizeError(w, r, ar, aerr)
		return
	}
	if err != nil {
		p.authorizeError(w, r, ar, flowError(err))
		return
	}
	p.issueCode(w, r, ar, s, req)
}

// rebuild re-validates the stored authorization request, so nothing that
// went through the login pages is trusted without fosite's checks.
func (p *Provider) rebuild(ctx context.Context, r *http.Request, params url.Values) (fosite.AuthorizeRequester, error) {
	u := *r.URL
	u.Path = PathAuthorize
	u.RawQuery = params.Encode()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	hr.Header = r.Header.Clone()
	hr.RemoteAddr = r.RemoteAddr
	ar, err := p.oauth.NewAuthorizeRequest(ctx, hr)
	if err != nil {
		return ar, err
	}
	return ar, p.checkExactRedirect(ar)
}

// issueCode answers the application with an authorization code for s.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, s *session.Session, req flow.Request) {
	ctx := r.Context()
	client := ar.GetClient().(*Client)
	_, emergency := s.EmergencyFor(client.GetID(), time.Now())
	for _, scope := range ar.GetRequestedScopes() {
		// Emergency access is never renewed: no refresh token.
		if emergency && scope == "offline_access" {
			continue
		}
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	sess := p.userSession(s, client, ar.GetGrantedScopes(), req.RequestedAt)
	resp, err := p.oauth.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	// RFC 9207: the issuer in every authorization response lets the client
	// detect mix-up attacks.
	resp.AddParameter("iss", p.issuer)
	p.oauth.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// userSession builds the token session of a person for a client.
func (p *Provider) userSession(s *session.Session, client *Client, scopes fosite.Arguments, requestedAt time.Time) *Session {
	sess := NewSession()
	sess.Subject = s.Subject
	sess.Username = s.Identity.Username
	sess.SID = s.ID

	profile := profileClaims(s, scopes)
	c := sess.Claims
	c.Subject = s.Subject
	c.AuthTime = s.AuthTime
	c.RequestedAt = requestedAt
	// acr and amr go in the typed fields: fosite drops them from Extra.
	c.AuthenticationContextClassReference = s.Level.ACR()
	c.AuthenticationMethodsReferences = slices.Clone(s.AMR)
	c.Extra = map[string]any{"sid": s.ID}
	for k, v := range profile {
		c.Extra[k] = v
	}
	if em, ok := s.EmergencyFor(client.GetID(), time.Now()); ok {
		// The TRE_R248 access mode: the application must know it was
		// opened in an emergency, and record it with what it shows.
		c.Extra["access_mode"] = em.Reason
		c.Extra["access_mode_until"] = em.Until.Unix()
	}
	if d := client.Delegation; d != nil {
		c.Extra["tid"] = d.TenantID
		c.Extra["oid"] = p.ObjectID(s.Subject)
		c.AuthenticationMethodsReferences = slices.DeleteFunc(slices.Clone(s.AMR), func(m string) bool {
			return !slices.Contains(d.AMRValues, m)
		})
	}
	sess.Headers.Add("alg", client.IDTokenAlg)

	sess.AccessClaims.Subject = s.Subject
	sess.AccessClaims.Extra = map[string]any{"client_id": client.GetID(), "sid": s.ID}
	if mode, ok := c.Extra["access_mode"]; ok {
		sess.AccessClaims.Extra["access_mode"] = mode
	}
	sess.AccessHeader.Add("alg", client.IDTokenAlg)
	sess.AccessHeader.Add("typ", "at+jwt")

	return sess
}

// profileClaims are the claims the granted scopes release.
func profileClaims(s *session.Session, scopes fosite.Arguments) map[string]any {
	id := s.Identity
	out := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	if scopes.Has("profile") {
		set("name", id.DisplayName)
		set("given_name", id.GivenName)
		set("family_name", id.FamilyName)
		set("preferred_username", id.Username)
		set("national_id", id.NationalID)
		set("national_id_type", id.NationalIDType)
	}
	if scopes.Has("email") {
		set("email", id.Email)
	}
	if scopes.Has("groups") && len(id.Groups) > 0 {
		out["groups"] = slices.Clone(id.Groups)
	}
	return out
}

// authorizeError answers an authorization request that failed. Without a
// known client and a registered redirect URI Garde must not redirect (that
// would make it an open redirector): it shows a page instead. Otherwise the
// error goes back to the client with state and iss (RFC 9207).
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	// fosite fills an unknown client with an empty placeholder: only a
	// registered *Client counts.
	if ar == nil {
		p.errorPage(w, r, http.StatusBadRequest, "unknown_client", err)
		return
	}
	if _, known := ar.GetClient().(*Client); !known {
		p.errorPage(w, r, http.StatusBadRequest, "unknown_client", err)
		return
	}
	redirect := ar.GetRequestForm().Get("redirect_uri")
	if !ar.IsRedirectURIValid() || redirect == "" || !slices.Contains(ar.GetClient().GetRedirectURIs(), redirect) {
		p.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", err)
		return
	}
	u, perr := url.Parse(redirect)
	if perr != nil {
		p.errorPage(w, r, http.StatusBadRequest, "invalid_redirect_uri", perr)
		return
	}
	if rfc.CodeField >= 500 {
		p.log.Error("authorization request failed", "client", ar.GetClient().GetID(), "err", err, "debug", rfc.GetDescription())
	}
	v := url.Values{}
	v.Set("error", rfc.ErrorField)
	if d := rfc.GetDescription(); d != "" {
		v.Set("error_description", d)
	}
	if s := ar.GetRequestForm().Get("state"); s != "" {
		v.Set("state", s)
	}
	v.Set("iss", p.issuer)
	w.Header().Set("Cache-Control", "no-store")
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		fosite.WriteAuthorizeFormPostResponse(u.String(), v, fosite.DefaultFormPostTemplate, w)
		return
	}
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	// A policy refusal is explained to the person first, in their
	// language; the link back carries the error to the application.
	var denied *flow.DeniedError
	if errors.As(err, &denied) && rfc.ErrorField == fosite.ErrAccessDenied.ErrorField {
		ref := web.NewRef()
		p.log.Info("access denied by policy", "ref", ref, "client", ar.GetClient().GetID(), "reason", denied.Reason)
		p.pages.Render(w, r, http.StatusForbidden, web.PageError, web.ErrorPage{
			MessageKey: web.MsgPolicyDenied, Explanation: &denied.Message, ContinueURL: u.String(), Ref: ref,
		})
		return
	}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// par handles pushed authorization requests (RFC 9126).
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := p.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	if err := p.checkExactRedirect(ar); err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	if err := checkPKCE(ar); err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := p.oauth.NewPushedAuthorizeResponse(ctx, ar, NewSession())
	if err != nil {
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	p.oauth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// claimRequest is one claim of an OpenID Connect claims request (§5.5.1).
type claimRequest struct {
	Essential bool     `json:"essential"`
	Value     string   `json:"value"`
	Values    []string `json:"values"`
}

// acrClaim reads the acr request of a claims parameter (in id_token or
// userinfo): the level it asks for — the lowest of the listed values, as
// any of them satisfies it — and whether it is essential. Values Garde
// does not know are ignored; a request naming only unknown values asks
// for nothing.
func acrClaim(raw string) (assurance.Level, bool, error) {
	if len(raw) > 16<<10 {
		return assurance.None, false, errors.New("too long")
	}
	var req map[string]map[string]*claimRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		return assurance.None, false, err
	}
	level, essential := assurance.None, false
	for _, member := range []string{"id_token", "userinfo"} {
		c := req[member]["acr"]
		if c == nil {
			continue
		}
		values := c.Values
		if c.Value != "" {
			values = append(values, c.Value)
		}
		lowest := assurance.None
		for _, v := range values {
			if l, ok := assurance.ParseACR(v); ok && (lowest == assurance.None || l < lowest) {
				lowest = l
			}
		}
		if lowest > level {
			level = lowest
		}
		essential = essential || (c.Essential && lowest != assurance.None)
	}
	return level, essential, nil
}
