package flow

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/linking"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/web"
)

// RedirectConnector is an upstream OpenID provider the browser is sent to
// (Pro Santé Connect).
type RedirectConnector interface {
	// AuthCodeURL returns where to send the browser; codeChallenge is the
	// S256 PKCE challenge of the verifier Exchange will get.
	AuthCodeURL(ctx context.Context, callbackURL, state, nonce, codeChallenge, loginHint string) (string, error)
	// Exchange redeems the code and returns who signed in.
	Exchange(ctx context.Context, callbackURL, code, codeVerifier, nonce string) (connectors.Identity, error)
	// Reason maps an error of Exchange to a stable reason code.
	Reason(err error) string
}

// RedirectSource is a redirect connector with its configured id.
type RedirectSource struct {
	ID, Name  string
	Connector RedirectConnector
}

// CardConnector authenticates a TLS client certificate (the CPS card).
type CardConnector interface {
	// ClientChain returns the certificate chain the browser presented,
	// from the TLS connection or a trusted proxy's header.
	ClientChain(r *http.Request) ([]*x509.Certificate, error)
	Authenticate(ctx context.Context, chain []*x509.Certificate) (connectors.Identity, error)
	// Reason maps an error to a stable reason code ("card_revoked"...).
	Reason(err error) string
}

// CardSource is a card connector with its configured id.
type CardSource struct {
	ID, Name  string
	Connector CardConnector
	// Origin is where the card sign-in is served (scheme://host:port): a
	// listener or proxy that asks the browser for a client certificate.
	// It must be the issuer's host name (another port), so the browser
	// sends Garde's __Host- cookies there too.
	Origin string
}

// Paths of the upstream steps.
const (
	// PathUpstream starts a redirect sign-in: GET ?flow&step&source.
	PathUpstream = "/login/upstream"
	// PathCallback is the redirect URI registered at the provider, one per
	// source: PathCallback + "/" + source id.
	PathCallback = "/login/callback"
	// PathCard is the card sign-in: GET ?flow&step&source, on the card
	// origin.
	PathCard = "/login/card"
	// PathLink asks for the local password once, to link a card or PSC
	// identity that no account holds.
	PathLink = "/login/link"
)

// Steps bound into MACs.
const (
	stepUpstream = "upstream"
	stepLink     = "link"
)

// stateLink: a card or PSC identity waits for a local password to link.
const stateLink = "link"

// upstreamAttempt is a redirect sign-in in progress, kept in the flow.
type upstreamAttempt struct {
	Source   string `json:"source"`
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
}

func upstateKey(state string) string { return "upstate:" + state }

// RegisterUpstream mounts the card, PSC and link steps.
func (e *Engine) RegisterUpstream(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	h := func(f http.HandlerFunc) http.Handler { return guard(f) }
	if len(e.redirects) > 0 {
		mux.Handle("GET "+PathUpstream, h(e.upstreamStart))
		mux.Handle("GET "+PathCallback+"/{source}", h(e.upstreamCallback))
	}
	if len(e.cards) > 0 {
		mux.Handle("GET "+PathCard, h(e.cardSignIn))
	}
	if len(e.redirects) > 0 || len(e.cards) > 0 {
		mux.Handle(PathLink, h(e.linkPage))
	}
	e.registerDecoupled(mux, h)
}

func (e *Engine) callbackURL(source string) string {
	return e.publicURL + PathCallback + "/" + source
}

// upstreamOptions are the login page's card and PSC buttons for a flow.
func (e *Engine) upstreamOptions(rec *record) []web.LoginOption {
	var out []web.LoginOption
	step := e.mac(rec.ID, stepUpstream)
	for _, c := range e.cards {
		if !rec.methodAllowed("card") {
			break
		}
		q := url.Values{"flow": {rec.ID}, "step": {step}, "source": {c.ID}}
		out = append(out, web.LoginOption{Kind: "card", Name: c.Name, URL: c.Origin + PathCard + "?" + q.Encode()})
	}
	for _, p := range e.redirects {
		if !rec.methodAllowed("psc") {
			break
		}
		q := url.Values{"flow": {rec.ID}, "step": {step}, "source": {p.ID}}
		out = append(out, web.LoginOption{Kind: "psc", Name: p.Name, URL: PathUpstream + "?" + q.Encode(), Decoupled: e.decoupledForm(p.ID)})
	}
	return out
}

// loadUpstreamFlow authenticates a GET that starts an upstream step.
func (e *Engine) loadUpstreamFlow(w http.ResponseWriter, r *http.Request) (*record, []byte, bool) {
	q := r.URL.Query()
	id := q.Get("flow")
	if !e.checkMAC(id, stepUpstream, q.Get("step")) {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
		return nil, nil, false
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, raw, err := e.loadFlow(r.Context(), id, binding)
	if err != nil || rec.State != stateCredentials {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return nil, nil, false
	}
	return rec, raw, true
}

func (e *Engine) redirectSource(id string) (RedirectSource, bool) {
	for _, s := range e.redirects {
		if s.ID == id {
			return s, true
		}
	}
	return RedirectSource{}, false
}

// upstreamStart sends the browser to the provider with a fresh state,
// nonce and PKCE verifier kept in the flow.
func (e *Engine) upstreamStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, raw, ok := e.loadUpstreamFlow(w, r)
	if !ok {
		return
	}
	src, ok := e.redirectSource(r.URL.Query().Get("source"))
	if !ok || !rec.methodAllowed("psc") {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("unknown upstream source, or not accepted in this step-up"))
		return
	}
	att := &upstreamAttempt{Source: src.ID, State: randomID(24), Nonce: randomID(24), Verifier: randomID(48)}
	rec.Upstream = att
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	// The state finds the flow again at the callback; single use.
	if err := e.eph.Set(ctx, upstateKey(att.State), []byte(rec.ID), e.flowTTL); err != nil {
		e.errorPage(w, r, http.StatusServiceUnavailable, "server_error", err)
		return
	}
	sum := sha256.Sum256([]byte(att.Verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	dest, err := src.Connector.AuthCodeURL(ctx, e.callbackURL(src.ID), att.State, att.Nonce, challenge, rec.Request.LoginHint)
	if err != nil {
		reason := src.Connector.Reason(err)
		e.upstreamFailed(w, r, rec, src.ID, "psc", reason, redirectMessage(reason), err)
		return
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// upstreamCallback completes a redirect sign-in.
func (e *Engine) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	src, ok := e.redirectSource(r.PathValue("source"))
	q := r.URL.Query()
	if !ok || q.Get("state") == "" {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("callback without a known source or state"))
		return
	}
	flowID, err := e.eph.Take(ctx, upstateKey(q.Get("state")))
	if err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", errors.Join(ErrFlowNotFound, err))
		return
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, raw, err := e.loadFlow(ctx, string(flowID), binding)
	if err != nil || rec.State != stateCredentials || rec.Upstream == nil ||
		rec.Upstream.Source != src.ID || rec.Upstream.State != q.Get("state") {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	att := *rec.Upstream
	rec.Upstream = nil
	if perr := q.Get("error"); perr != "" {
		reason, key := "psc_provider_error", "psc_provider_error"
		if perr == "access_denied" {
			reason, key = "psc_denied", "psc_denied"
		}
		e.upstreamFailed(w, r, rec, src.ID, "psc", reason, key, errors.New("provider error: "+perr))
		return
	}
	id, err := src.Connector.Exchange(ctx, e.callbackURL(src.ID), q.Get("code"), att.Verifier, att.Nonce)
	if err != nil {
		reason := src.Connector.Reason(err)
		e.upstreamFailed(w, r, rec, src.ID, "psc", reason, redirectMessage(reason), err)
		return
	}
	if id.Connector == "" {
		id.Connector = src.ID
	}
	if id.Upstream != nil {
		id.Upstream.Connector = src.ID
	}
	e.finishUpstream(w, r, rec, raw, id, "psc", src.ID)
}

// cardSignIn authenticates the card the browser presented.
func (e *Engine) cardSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, raw, ok := e.loadUpstreamFlow(w, r)
	if !ok {
		return
	}
	var src *CardSource
	for i := range e.cards {
		if e.cards[i].ID == r.URL.Query().Get("source") {
			src = &e.cards[i]
		}
	}
	if src == nil || !rec.methodAllowed("card") {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("unknown card source, or not accepted in this step-up"))
		return
	}
	chain, err := src.Connector.ClientChain(r)
	if err == nil {
		var id connectors.Identity
		id, err = src.Connector.Authenticate(ctx, chain)
		if err == nil {
			if id.Connector == "" {
				id.Connector = src.ID
			}
			e.finishUpstream(w, r, rec, raw, id, "card", src.ID)
			return
		}
	}
	reason := src.Connector.Reason(err)
	e.upstreamFailed(w, r, rec, src.ID, "card", reason, cardMessage(reason), err)
}

// redirectMessage maps a Pro Santé Connect reason code to a message key:
// each has its text (web/i18n/psc.*.json); anything else is a generic
// failure.
func redirectMessage(reason string) string {
	switch reason {
	case "psc_unavailable", "psc_denied", "psc_invalid_token", "psc_userinfo", "psc_no_subject", "psc_provider_error":
		return reason
	}
	return "upstream_failed"
}

// cardMessage maps a card reason code to a message key.
func cardMessage(reason string) string {
	switch reason {
	case "card_missing", "card_revoked", "card_expired", "card_untrusted", "card_revocation_unknown":
		return reason
	}
	return "card_refused"
}

// finishUpstream resolves the upstream identity to a person (linking) and
// completes the flow, or asks for the local password to link.
func (e *Engine) finishUpstream(w http.ResponseWriter, r *http.Request, rec *record, raw []byte, up connectors.Identity, method, source string) {
	ctx := r.Context()
	addr := clientaddr.From(r).String()
	id, err := e.linker.Resolve(ctx, up, addr)
	if errors.Is(err, linking.ErrNeedsPassword) {
		rec.State = stateLink
		rec.Pending = &up
		rec.PendingSource = source
		rec.PendingMethod = method
		if err := e.swapFlow(ctx, rec, raw); err != nil {
			e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
			return
		}
		http.Redirect(w, r, e.publicURL+PathLink+"?"+url.Values{"flow": {rec.ID}}.Encode(), http.StatusSeeOther)
		return
	}
	if err != nil {
		key, reason := linkErrorKey(err)
		e.upstreamFailed(w, r, rec, source, method, reason, key, err)
		return
	}
	redirect, err := e.complete(ctx, w, r, rec, raw, id, method, source)
	if err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	http.Redirect(w, r, e.publicURL+redirect, http.StatusSeeOther)
}

// linkErrorKey maps a linking error to a message key and reason code.
func linkErrorKey(err error) (key, reason string) {
	switch {
	case errors.Is(err, linking.ErrNoLocalAccount):
		return "no_local_account", "no_local_account"
	case errors.Is(err, linking.ErrAmbiguous):
		return "link_ambiguous", "link_ambiguous"
	case errors.Is(err, linking.ErrNoNationalID):
		return "no_local_account", "no_national_id"
	case errors.Is(err, linking.ErrLinkedAccountGone):
		return "no_local_account", "linked_account_gone"
	case errors.Is(err, linking.ErrMismatch):
		return "link_mismatch", "national_id_mismatch"
	}
	return loginErrorKey(err)
}

// upstreamFailed audits a refused card or PSC sign-in and shows the login
// page again with the reason, so the person can try another method.
func (e *Engine) upstreamFailed(w http.ResponseWriter, r *http.Request, rec *record, source, method, reason, key string, err error) {
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInFailure, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Failure, Reason: reason, Details: map[string]string{"method": method, "connector": source},
	})
	e.log.Info("upstream sign-in refused", "method", method, "connector", source, "reason", reason, "err", describe(err))
	binding, _ := e.cookies.Get(r, CookieBinding)
	status := http.StatusUnauthorized
	if key == "directory_unavailable" || key == "psc_unavailable" {
		status = http.StatusServiceUnavailable
	}
	// The flow is unchanged (still waiting for credentials), but the
	// attempt is cleared so its state cannot be replayed.
	if cur, raw, lerr := e.loadFlow(r.Context(), rec.ID, binding); lerr == nil && cur.Upstream != nil {
		cur.Upstream = nil
		_ = e.swapFlow(r.Context(), cur, raw)
	}
	e.renderLogin(w, r, status, rec, binding, "", key)
}

// ---- linking with the local password

func (e *Engine) linkPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, raw, binding, posted, ok := e.openFormStep(w, r, formStep{state: stateLink, step: stepLink, csrf: "link:"})
	if !ok {
		return
	}
	if rec.Pending == nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrFlowNotFound)
		return
	}
	if !posted {
		e.renderLink(w, r, http.StatusOK, rec, binding, "", "")
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	addr := clientaddr.From(r).String()
	if username == "" || password == "" {
		e.renderLink(w, r, http.StatusUnauthorized, rec, binding, username, "invalid_credentials")
		return
	}
	up := *rec.Pending
	local, source, err := e.checkPassword(ctx, username, password, addr)
	if err == nil {
		local, err = e.linker.LinkWithPassword(ctx, up, local, addr)
	}
	if err != nil {
		key, reason := linkErrorKey(err)
		e.audit.Record(store.AuditEvent{
			Type: audit.SignInFailure, App: rec.Request.App, ClientAddr: addr, Outcome: audit.Failure, Reason: reason,
			Details: map[string]string{"method": rec.PendingMethod, "connector": rec.PendingSource, "step": "link", "local_connector": source},
		})
		status := http.StatusUnauthorized
		if key == "throttled" {
			status = http.StatusTooManyRequests
		}
		e.renderLink(w, r, status, rec, binding, username, key)
		return
	}
	redirect, err := e.complete(ctx, w, r, rec, raw, local, rec.PendingMethod, rec.PendingSource)
	if err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
}

func (e *Engine) renderLink(w http.ResponseWriter, r *http.Request, status int, rec *record, binding, username, msgKey string) {
	e.pages.Render(w, r, status, web.PageLink, web.LinkPage{
		App:       rec.Request.AppName,
		Method:    rec.PendingMethod,
		FlowID:    rec.ID,
		StepToken: e.mac(rec.ID, stepLink),
		CSRFToken: e.csrf.Token(binding, "link:"+rec.ID),
		Username:  username,
		Error:     msgKey,
		Action:    PathLink,
	})
}
