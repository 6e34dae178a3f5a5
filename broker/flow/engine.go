package flow

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/linking"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
	"github.com/garde-sso/garde/web"
)

// Cookie base names (the web.CookiePolicy adds the __Host- prefix).
const (
	CookieSession = "garde_session"
	CookieBinding = "garde_b"
)

// PasswordSource is a password connector with its configured id.
type PasswordSource struct {
	ID        string
	Name      string
	Connector connectors.PasswordConnector
}

// Options configure an Engine.
type Options struct {
	Ephemeral store.Ephemeral
	Sessions  *session.Manager
	Passwords []PasswordSource
	Throttle  *throttle.Limiter
	Audit     *audit.Recorder
	Pages     *web.Renderer
	CSRF      *web.CSRF
	Cookies   web.CookiePolicy
	// MACKey authenticates flow hops (32 random bytes, shared by replicas).
	MACKey []byte
	// FlowLifetime bounds how long a person has to sign in (default 10m).
	FlowLifetime time.Duration
	// LoginPath is where the login page is served ("/login").
	LoginPath string
	// ResumePaths maps a protocol to its front-end's resume endpoint.
	ResumePaths map[string]string
	Clock       func() time.Time
	Logger      *slog.Logger

	// Keys runs WebAuthn ceremonies; nil disables security keys.
	Keys Authenticators
	// SecondFactor is off, optional or required (see config).
	SecondFactor string
	// Lookups find a person by subject for passwordless sign-in, by
	// connector id.
	Lookups map[string]connectors.LookupConnector
	// EnrollmentCodes checks admin-issued enrollment codes.
	EnrollmentCodes store.EnrollmentCodes
	// GraceUntil lets people with no key enroll after a password until
	// then (zero: no grace period).
	GraceUntil time.Time

	// Redirects are upstream OpenID providers (Pro Santé Connect), Cards
	// the CPS card connectors; both need Linker, which resolves their
	// identities to people.
	Redirects []RedirectSource
	Cards     []CardSource
	Linker    *linking.Linker
	// PublicURL is Garde's origin (scheme://host[:port]) as browsers reach
	// it: callbacks are registered under it, and the card origin sends the
	// browser back to it.
	PublicURL string
	// Signout ends sessions for back-channel logout.
	Signout *signout.Signout
	// Policy decides who may enter which application (nil: everyone
	// signed in).
	Policy *policies.Engine
	// Alert is called, at once, when someone declares an emergency access.
	Alert func(EmergencyAlert)
}

// Engine runs sign-in flows.
type Engine struct {
	eph         store.Ephemeral
	sessions    *session.Manager
	passwords   []PasswordSource
	throttle    *throttle.Limiter
	audit       *audit.Recorder
	pages       *web.Renderer
	csrf        *web.CSRF
	cookies     web.CookiePolicy
	macKey      []byte
	flowTTL     time.Duration
	loginPath   string
	resumePaths map[string]string
	now         func() time.Time
	log         *slog.Logger

	keys         Authenticators
	secondFactor string
	lookups      map[string]connectors.LookupConnector
	codes        store.EnrollmentCodes
	graceUntil   time.Time

	redirects []RedirectSource
	cards     []CardSource
	linker    *linking.Linker
	publicURL string
	signout   *signout.Signout
	policy    *policies.Engine
	alert     func(EmergencyAlert)
}

// New returns an Engine.
func New(o Options) *Engine {
	e := &Engine{
		eph: o.Ephemeral, sessions: o.Sessions, passwords: o.Passwords,
		throttle: o.Throttle, audit: o.Audit, pages: o.Pages, csrf: o.CSRF,
		cookies: o.Cookies, macKey: o.MACKey, flowTTL: o.FlowLifetime,
		loginPath: o.LoginPath, resumePaths: o.ResumePaths, now: o.Clock, log: o.Logger,
		keys: o.Keys, secondFactor: o.SecondFactor, lookups: o.Lookups, codes: o.EnrollmentCodes,
		graceUntil: o.GraceUntil,
		redirects:  o.Redirects, cards: o.Cards, linker: o.Linker,
		publicURL: strings.TrimSuffix(o.PublicURL, "/"), signout: o.Signout,
		policy: o.Policy, alert: o.Alert,
	}
	if e.keys == nil {
		e.secondFactor = "off"
	}
	if e.flowTTL <= 0 {
		e.flowTTL = 10 * time.Minute
	}
	if e.loginPath == "" {
		e.loginPath = "/login"
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

// Result is the flow's answer to a sign-in request.
type Result struct {
	// Session is set when the request can be answered now.
	Session *session.Session
	// Redirect is set when the browser must go to the login page.
	Redirect string
}

// Subject is the stable `sub` of a person authenticated by a connector.
func Subject(id connectors.Identity) string {
	return id.Connector + ":" + id.Subject
}

// binding returns this browser's binding secret, creating the cookie if
// needed.
func (e *Engine) binding(w http.ResponseWriter, r *http.Request) string {
	// web.NewBinding gives 26 characters (130 random bits); anything
	// shorter was not made by Garde.
	if v, ok := e.cookies.Get(r, CookieBinding); ok && len(v) >= 26 {
		return v
	}
	v := web.NewBinding()
	// A session cookie (no Max-Age): it dies with the browser session, as
	// on a shared workstation it should.
	e.cookies.Set(w, CookieBinding, v, 0, http.SameSiteLaxMode)
	return v
}

// currentSession returns the SSO session of the browser's cookie, if any.
func (e *Engine) currentSession(ctx context.Context, r *http.Request) (*session.Session, string) {
	secret, ok := e.cookies.Get(r, CookieSession)
	if !ok {
		return nil, ""
	}
	s, err := e.sessions.Get(ctx, secret)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			e.log.Error("flow: reading SSO session failed", "err", err)
		}
		return nil, ""
	}
	return s, secret
}

// suffices reports whether an SSO session can answer req without a new
// authentication.
func (e *Engine) suffices(s *session.Session, req Request) bool {
	if req.ForceLogin {
		return false
	}
	if req.MaxAge >= 0 && e.now().Sub(s.AuthTime) > req.MaxAge {
		return false
	}
	return true
}

// requiredLevel is the level a request needs: what the application asked
// for, and at least substantial when the hospital requires a key. Without
// security keys nothing can raise a session's level, so a request is
// answered with what the session has (its acr says so).
func (e *Engine) requiredLevel(req Request) assurance.Level {
	if e.keys == nil {
		return assurance.None
	}
	l := req.Requested
	if e.secondFactor == "required" && l < assurance.Substantial {
		l = assurance.Substantial
	}
	return l
}

// Authorize answers a validated sign-in request: from the SSO session when
// it suffices, by asking only for what is missing when it is too weak
// (step-up), with the emergency declaration when the policy allows one,
// else by starting a flow and pointing to the login page.
func (e *Engine) Authorize(w http.ResponseWriter, r *http.Request, req Request) (Result, error) {
	ctx := r.Context()
	if req.RequestedAt.IsZero() {
		req.RequestedAt = e.now().UTC()
	}
	s, secret := e.currentSession(ctx, r)
	if s != nil && e.suffices(s, req) {
		d := e.decide(ctx, r, s, req)
		if e.withinBounds(s, d) {
			strongEnough := s.Level >= e.requiredLevel(req) &&
				(!req.PhishingResistant || PhishingResistant(s.Identity.Method, s.AMR))
			switch {
			case d.Outcome == policies.Allow && strongEnough:
				if err := e.sessions.Touch(ctx, secret, s, req.App); err != nil {
					return Result{}, err
				}
				return Result{Session: s}, nil
			case d.Outcome == policies.Deny:
				return Result{}, e.denied(r, s, req, d)
			case req.Passive:
				return Result{}, ErrLoginRequired
			case d.Outcome == policies.EmergencyEligible && !needsStepUpFirst(d):
				rec := e.newFlow(w, r, req)
				redirect, err := e.toEmergency(ctx, rec, nil, s, d)
				if err != nil {
					return Result{}, err
				}
				return Result{Redirect: redirect}, nil
			default:
				// Too weak (the policy's step-up, the hospital's key
				// requirement, or a phishing-resistant method needed):
				// ask only for what is missing.
				rec := e.newFlow(w, r, req)
				redirect, err := e.toStepUp(ctx, rec, nil, s, d, req)
				if err != nil {
					return Result{}, err
				}
				if redirect != "" {
					return Result{Redirect: redirect}, nil
				}
				if d.Outcome == policies.Allow {
					d.Reason, d.MessageFR, d.MessageEN = "level_unreachable",
						"Cette application demande une authentification plus forte que celles proposées ici.",
						"This application requires a stronger authentication than those offered here."
				}
				return Result{}, e.denied(r, s, req, d)
			}
		}
	}
	if req.Passive {
		return Result{}, ErrLoginRequired
	}
	rec := e.newFlow(w, r, req)
	if err := e.saveFlow(ctx, rec); err != nil {
		return Result{}, err
	}
	q := url.Values{"flow": {rec.ID}}
	return Result{Redirect: e.loginPath + "?" + q.Encode()}, nil
}

// newFlow starts a flow record for req, bound to this browser.
func (e *Engine) newFlow(w http.ResponseWriter, r *http.Request, req Request) *record {
	return &record{
		ID:        randomID(24),
		Binding:   hashBinding(e.binding(w, r)),
		State:     stateCredentials,
		Request:   req,
		CreatedAt: e.now().UTC(),
	}
}

// grant is the one place where a session is handed to an application
// after a sign-in flow: the policy decides again, on what the flow proved.
func (e *Engine) grant(ctx context.Context, r *http.Request, s *session.Session, secret string, req Request) error {
	if req.PhishingResistant && !PhishingResistant(s.Identity.Method, s.AMR) {
		return e.denied(r, s, req, policies.Decision{Reason: "phishing_resistant_required",
			MessageFR: "Cette application n'accepte qu'une clé de sécurité, une passkey ou la carte CPS.",
			MessageEN: "This application accepts only a security key, a passkey or the CPS card."})
	}
	d := e.decide(ctx, r, s, req)
	if d.Outcome != policies.Allow {
		if d.Reason == "" {
			d.Reason = d.Outcome.String()
		}
		return e.denied(r, s, req, d)
	}
	return e.sessions.Touch(ctx, secret, s, req.App)
}

// Resume completes an authenticated flow for its front-end: it checks the
// hop's MAC and the browser binding, takes the flow (once), and re-checks
// that the session it authenticated is still this browser's session.
func (e *Engine) Resume(w http.ResponseWriter, r *http.Request) (Request, *session.Session, error) {
	ctx := r.Context()
	id := r.URL.Query().Get("flow")
	if !e.checkMAC(id, stepComplete, r.URL.Query().Get("step")) {
		return Request{}, nil, ErrBadStep
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, _, err := e.loadFlow(ctx, id, binding)
	if err != nil {
		return Request{}, nil, err
	}
	if rec.State != stateAuthenticated {
		return Request{}, nil, ErrBadStep
	}
	// Take, not Get: of two resumes of one flow exactly one proceeds.
	if _, err := e.eph.Take(ctx, flowKey(id)); err != nil {
		return Request{}, nil, errors.Join(ErrFlowNotFound, err)
	}
	s, secret := e.currentSession(ctx, r)
	if s == nil || s.ID != rec.SessionID {
		return Request{}, nil, ErrFlowNotFound
	}
	if err := e.grant(ctx, r, s, secret, rec.Request); err != nil {
		// The request goes back with the refusal, so the front-end can
		// answer the application with its protocol's error.
		return rec.Request, nil, err
	}
	return rec.Request, s, nil
}

// ServeLogin serves the login page (GET) and checks credentials (POST).
func (e *Engine) ServeLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		e.showLogin(w, r)
	case http.MethodPost:
		e.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		e.errorPage(w, r, http.StatusMethodNotAllowed, "invalid_request", nil)
	}
}

func (e *Engine) showLogin(w http.ResponseWriter, r *http.Request) {
	binding, _ := e.cookies.Get(r, CookieBinding)
	id := r.URL.Query().Get("flow")
	rec, _, err := e.loadFlow(r.Context(), id, binding)
	if err != nil || rec.State != stateCredentials {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	e.renderLogin(w, r, http.StatusOK, rec, binding, rec.Request.LoginHint, "")
}

func (e *Engine) renderLogin(w http.ResponseWriter, r *http.Request, status int, rec *record, binding, username, msgKey string) {
	e.pages.Render(w, r, status, "login", web.LoginPage{
		App:       rec.Request.AppName,
		FlowID:    rec.ID,
		StepToken: e.mac(rec.ID, stepCredentials),
		CSRFToken: e.csrf.Token(binding, "login:"+rec.ID),
		Username:  username,
		Error:     msgKey,
		Action:    e.loginPath,

		Passkeys:         e.keys != nil && rec.methodAllowed(policies.MethodPasskey),
		PasskeyBeginURL:  PathPasskeyBegin,
		PasskeyFinishURL: PathPasskeyFinish,
		Options:          e.upstreamOptions(rec),
		StepUp:           stepUpText(rec),
		HidePassword:     !rec.methodAllowed(policies.MethodPassword),
	})
}

// loginErrorKeys maps connector errors to messages. Unknown account and
// wrong password are the same message: no user enumeration.
func loginErrorKey(err error) (key, reason string) {
	switch {
	case errors.Is(err, throttle.ErrThrottled):
		return "throttled", "throttled"
	case errors.Is(err, connectors.ErrAccountDisabled):
		return "account_disabled", "account_disabled"
	case errors.Is(err, connectors.ErrAccountLocked):
		return "account_locked", "account_locked"
	case errors.Is(err, connectors.ErrAccountExpired):
		return "account_expired", "account_expired"
	case errors.Is(err, connectors.ErrPasswordExpired):
		return "password_expired", "password_expired"
	case errors.Is(err, connectors.ErrUnavailable):
		return "directory_unavailable", "directory_unavailable"
	}
	return "invalid_credentials", "invalid_credentials"
}

func (e *Engine) postLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", err)
		return
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	id := r.PostForm.Get("flow_id")
	if !e.checkMAC(id, stepCredentials, r.PostForm.Get("step")) {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
		return
	}
	rec, raw, err := e.loadFlow(ctx, id, binding)
	if err != nil || rec.State != stateCredentials {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	if !e.csrf.Verify(binding, "login:"+rec.ID, r.PostForm.Get("csrf_token")) {
		e.errorPage(w, r, http.StatusForbidden, "csrf_failed", nil)
		return
	}
	if !rec.methodAllowed(policies.MethodPassword) {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("password not accepted in this step-up"))
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	addr := clientaddr.From(r).String()
	if username == "" || password == "" {
		e.renderLogin(w, r, http.StatusUnauthorized, rec, binding, username, "invalid_credentials")
		return
	}

	id2, source, err := e.checkPassword(ctx, username, password, addr)
	if err != nil {
		key, reason := loginErrorKey(err)
		e.audit.Record(store.AuditEvent{
			Type: audit.SignInFailure, App: rec.Request.App, ClientAddr: addr,
			Outcome: audit.Failure, Reason: reason, Details: map[string]string{"method": "password", "connector": source},
		})
		status := http.StatusUnauthorized
		switch key {
		case "throttled":
			status = http.StatusTooManyRequests
		case "directory_unavailable":
			status = http.StatusServiceUnavailable
		}
		if !errors.Is(err, connectors.ErrInvalidCredentials) && key != "throttled" {
			e.log.Warn("sign-in refused", "reason", reason, "app", rec.Request.App, "addr", addr, "err", err)
		}
		e.renderLogin(w, r, status, rec, binding, username, key)
		return
	}

	if e.needsKey(ctx, rec.Request, id2) {
		redirect, err := e.toSecondFactor(ctx, rec, raw, id2, source)
		if err != nil {
			e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
			return
		}
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	redirect, err := e.complete(ctx, w, r, rec, raw, id2, "password", source)
	if err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	http.Redirect(w, r, redirect, http.StatusSeeOther)
}

// complete opens (or renews) the session for id, audits the sign-in, marks
// the flow authenticated and returns the front-end's resume URL. raw is the
// flow as last read: the update is a compare-and-swap, so a flow completes
// once even if two requests race.
func (e *Engine) complete(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *record, raw []byte, id connectors.Identity, method, source string) (string, error) {
	resume, ok := e.resumePaths[rec.Request.Protocol]
	if !ok {
		return "", errors.New("no resume path for protocol " + rec.Request.Protocol)
	}
	id.Method = sessionMethod(method)
	s, err := e.openSession(ctx, w, r, id)
	if err != nil {
		return "", err
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInSuccess, Person: s.Subject, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Success, SessionID: s.ID,
		Details: map[string]string{"method": method, "connector": source, "acr": s.Level.ACR(), "amr": strings.Join(s.AMR, " ")},
	})
	rec.Pending = nil
	// The application's policy, on what was just proven: a step-up or
	// an emergency declaration happens here, inside the flow, whatever
	// the protocol. A refusal is left to Resume, which answers the
	// application with its protocol's error.
	switch d := e.decide(ctx, r, s, rec.Request); {
	case d.Outcome == policies.StepUp || needsStepUpFirst(d):
		// Below the floor (an emergency too must reach it first): ask
		// for what is missing, unless that very step-up was just offered
		// and not met, which the hand-over then refuses.
		if rec.StepUp == nil || rec.StepUp.Level != int(d.Level) || !slices.Equal(rec.StepUp.Methods, d.Methods) {
			redirect, err := e.toStepUp(ctx, rec, raw, s, d, rec.Request)
			if err != nil || redirect != "" {
				return redirect, err
			}
		}
	case d.Outcome == policies.EmergencyEligible:
		return e.toEmergency(ctx, rec, raw, s, d)
	}
	rec.State = stateAuthenticated
	rec.SessionID = s.ID
	rec.StepUp = nil
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		return "", err
	}
	q := url.Values{"flow": {rec.ID}, "step": {e.mac(rec.ID, stepComplete)}}
	return resume + "?" + q.Encode(), nil
}

// swapFlow replaces the flow record if it is still raw (or creates it when
// raw is nil).
func (e *Engine) swapFlow(ctx context.Context, rec *record, raw []byte) error {
	if raw == nil {
		return e.saveFlow(ctx, rec)
	}
	next, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ok, err := e.eph.CompareAndSwap(ctx, flowKey(rec.ID), raw, next)
	if err != nil {
		return err
	}
	if !ok {
		return ErrFlowNotFound
	}
	return nil
}

// checkPassword tries the password connectors in order. An unknown account
// in one may exist in the next (the static break-glass directory after AD);
// any other answer stops the search.
func (e *Engine) checkPassword(ctx context.Context, username, password, addr string) (connectors.Identity, string, error) {
	if err := e.throttle.Check(ctx, username, addr); err != nil {
		return connectors.Identity{}, "", err
	}
	var unavailable error
	for _, src := range e.passwords {
		id, err := src.Connector.Login(ctx, username, password)
		switch {
		case err == nil:
			if id.Connector == "" {
				id.Connector = src.ID
			}
			if terr := e.throttle.Success(ctx, username); terr != nil {
				e.log.Error("clearing attempt counter failed", "err", terr)
			}
			return id, src.ID, nil
		case errors.Is(err, connectors.ErrInvalidCredentials):
			continue
		case errors.Is(err, connectors.ErrUnavailable):
			unavailable = err
			continue
		default:
			return connectors.Identity{}, src.ID, err
		}
	}
	if unavailable != nil {
		return connectors.Identity{}, "", unavailable
	}
	if err := e.throttle.Failure(ctx, username, addr); err != nil {
		e.log.Error("counting failed attempt failed", "err", err)
	}
	return connectors.Identity{}, "", connectors.ErrInvalidCredentials
}

// openSession gives the browser a session for id. If the browser already
// has a session of the same person, it is renewed in place; a different
// person (the next user of a shared workstation) gets a new session and the
// previous one ends, so nothing of the previous user leaks.
func (e *Engine) openSession(ctx context.Context, w http.ResponseWriter, r *http.Request, id connectors.Identity) (*session.Session, error) {
	if id.AuthTime.IsZero() {
		id.AuthTime = e.now()
	}
	sub := Subject(id)
	if s, secret := e.currentSession(ctx, r); s != nil {
		if s.Subject == sub {
			if err := e.sessions.Elevate(ctx, secret, s, id); err != nil {
				return nil, err
			}
			e.indexUpstream(ctx, s, id.Upstream)
			return s, nil
		}
		if _, err := e.sessions.End(ctx, secret); err != nil && !errors.Is(err, session.ErrNoSession) {
			return nil, err
		}
		e.audit.Record(store.AuditEvent{Type: audit.Logout, Person: s.Subject, Outcome: audit.Success, SessionID: s.ID,
			ClientAddr: clientaddr.From(r).String(), Details: map[string]string{"how": "replaced_by_other_user"}})
	}
	s, secret, err := e.sessions.Create(ctx, sub, id)
	if err != nil {
		return nil, err
	}
	e.cookies.Set(w, CookieSession, secret, 0, http.SameSiteLaxMode)
	e.indexUpstream(ctx, s, id.Upstream)
	return s, nil
}

// errorPage shows a readable page with a reference id that is also logged.
func (e *Engine) errorPage(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	ErrorPage(e.pages, e.log, w, r, status, key, err)
}

// ErrorPage renders an error for a person: a translated message and a
// reference id; the detail goes to the log only.
func ErrorPage(pages *web.Renderer, log *slog.Logger, w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	ref := randomID(6)
	if err != nil {
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "request failed", "ref", ref, "status", status, "message", key, "path", r.URL.Path, "err", describe(err))
	}
	pages.Render(w, r, status, "error", web.ErrorPage{MessageKey: key, Ref: ref})
}

// describe renders an error for the log: fosite's errors carry their hint in
// the description, and a stack trace in %+v that the log does not need.
func describe(err error) string {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		d := rfc.ErrorField
		if h := rfc.GetDescription(); h != "" {
			d += ": " + h
		}
		if rfc.DebugField != "" {
			d += " (" + rfc.DebugField + ")"
		}
		if cause := rfc.Unwrap(); cause != nil {
			d += ": " + cause.Error()
		}
		return d
	}
	return err.Error()
}

// PhishingResistant reports whether a sign-in used a phishing-resistant
// factor: a WebAuthn key or passkey at Garde (bound to Garde's origin,
// synced passkeys included), a smart card, or a hardware key upstream. A
// software key upstream (PSC's e-CPS app) is not enough.
func PhishingResistant(method string, amr []string) bool {
	return slices.Contains(phishingResistantMethods, method) ||
		slices.Contains(amr, assurance.AMRHardwareKey) || slices.Contains(amr, assurance.AMRSmartCard)
}

// sessionMethod names a completed sign-in in the vocabulary policies use:
// a key after a password (or enrolled during the sign-in) is "key".
func sessionMethod(method string) string {
	switch method {
	case "second_factor", "enroll":
		return "key"
	}
	return method
}
