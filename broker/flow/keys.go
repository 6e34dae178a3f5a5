package flow

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/web"
)

// KeyResult is what a verified WebAuthn ceremony proved.
type KeyResult struct {
	Subject string
	// AMR are the methods the key adds (hwk or swk, user, pin...).
	AMR []string
	// Level is what the key reaches with the factor before it.
	Level assurance.Level
	// CredentialName names the key for audit.
	CredentialName string
	CredentialID   []byte
}

// KeyPerson is who a key is registered to.
type KeyPerson struct{ Subject, Username, DisplayName string }

// Authenticators runs WebAuthn ceremonies (package passkeys, adapted by the
// wiring). A ceremony id binds a challenge to one flow and one purpose.
type Authenticators interface {
	HasCredentials(ctx context.Context, subject string) (bool, error)
	BeginLogin(ctx context.Context, subject, ceremony string) ([]byte, error)
	BeginPasswordless(ctx context.Context, ceremony string, conditional bool) ([]byte, error)
	// FinishLogin verifies an assertion; subject is "" for passwordless.
	FinishLogin(ctx context.Context, ceremony, subject string, body []byte) (KeyResult, error)
	BeginRegistration(ctx context.Context, p KeyPerson, ceremony string) ([]byte, error)
	FinishRegistration(ctx context.Context, p KeyPerson, ceremony, name string, body []byte) (KeyResult, error)
	// Classify maps a ceremony error to a message key, a stable reason code
	// for audit, and whether it is a high-severity security event.
	Classify(err error) (key, reason string, high bool)
}

// Paths of the key steps.
const (
	PathPasskeyBegin  = "/login/passkey/begin"
	PathPasskeyFinish = "/login/passkey/finish"
	PathKey           = "/login/key"
	PathKeyBegin      = "/login/key/begin"
	PathKeyFinish     = "/login/key/finish"
	PathEnroll        = "/login/enroll"
	PathEnrollBegin   = "/login/enroll/begin"
	PathEnrollFinish  = "/login/enroll/finish"
)

// Register mounts the login page and the key steps on mux, each wrapped by
// guard (cross-origin protection).
func (e *Engine) Register(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	h := func(f http.HandlerFunc) http.Handler { return guard(f) }
	mux.Handle(e.loginPath, h(e.ServeLogin))
	e.registerEmergency(mux, h)
	if e.keys == nil {
		return
	}
	mux.Handle("POST "+PathPasskeyBegin, h(e.passkeyBegin))
	mux.Handle("POST "+PathPasskeyFinish, h(e.passkeyFinish))
	mux.Handle("GET "+PathKey, h(e.keyPage))
	mux.Handle("POST "+PathKeyBegin, h(e.keyBegin))
	mux.Handle("POST "+PathKeyFinish, h(e.keyFinish))
	mux.Handle("GET "+PathEnroll, h(e.enrollPage))
	mux.Handle("POST "+PathEnroll, h(e.enrollCode))
	mux.Handle("POST "+PathEnrollBegin, h(e.enrollBegin))
	mux.Handle("POST "+PathEnrollFinish, h(e.enrollFinish))
}

// needsKey decides whether a password sign-in must be followed by a key.
func (e *Engine) needsKey(ctx context.Context, req Request, id connectors.Identity) bool {
	if e.keys == nil || e.secondFactor == "off" {
		return false
	}
	if e.requiredLevel(req) > id.Assurance || (req.PhishingResistant && !PhishingResistant(id.Method, id.AMR)) {
		return true
	}
	// Optional mode: a person who has a key uses it.
	has, err := e.keys.HasCredentials(ctx, Subject(id))
	if err != nil {
		e.log.Error("reading the person's keys failed; asking for one", "err", err)
		return true
	}
	return has
}

// toSecondFactor parks the identity in the flow and returns the page that
// asks for a key (or for enrolling one, when the person has none).
func (e *Engine) toSecondFactor(ctx context.Context, rec *record, raw []byte, id connectors.Identity, source string) (string, error) {
	has, err := e.keys.HasCredentials(ctx, Subject(id))
	if err != nil {
		return "", err
	}
	rec.Pending = &id
	rec.PendingSource = source
	rec.State = stateSecondFactor
	path := PathKey
	if !has {
		rec.State = stateEnroll
		path = PathEnroll
		if e.graceActive() {
			rec.EnrollPath = "grace"
		}
	}
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		return "", err
	}
	return path + "?" + url.Values{"flow": {rec.ID}}.Encode(), nil
}

func (e *Engine) graceActive() bool {
	return !e.graceUntil.IsZero() && e.now().Before(e.graceUntil)
}

func (e *Engine) jsonError(w http.ResponseWriter, r *http.Request, status int, key string) {
	e.pages.JSONError(w, r, status, key)
}

// writeOptions answers a begin call with the ceremony's options.
func writeOptions(w http.ResponseWriter, opts []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(opts)
}

// readCeremony reads and authenticates a ceremony message for a step: the
// flow must exist for this browser, be in state, and the MAC and CSRF token
// must verify.
func (e *Engine) readCeremony(w http.ResponseWriter, r *http.Request, step, state string) (*web.WebAuthnRequest, *record, []byte, bool) {
	m, err := web.DecodeWebAuthnRequest(w, r)
	if err != nil {
		e.jsonError(w, r, http.StatusBadRequest, "invalid_request")
		return nil, nil, nil, false
	}
	if !e.checkMAC(m.FlowID, step, m.StepToken) {
		e.jsonError(w, r, http.StatusBadRequest, "flow_expired")
		return nil, nil, nil, false
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, raw, err := e.loadFlow(r.Context(), m.FlowID, binding)
	if err != nil || rec.State != state {
		e.jsonError(w, r, http.StatusBadRequest, "flow_expired")
		return nil, nil, nil, false
	}
	if !e.csrf.Verify(binding, "login:"+rec.ID, m.CSRFToken) {
		e.jsonError(w, r, http.StatusForbidden, "csrf_failed")
		return nil, nil, nil, false
	}
	return &m, rec, raw, true
}

// keyFailure answers a refused ceremony and audits it; a cloned key is a
// high-severity event.
func (e *Engine) keyFailure(w http.ResponseWriter, r *http.Request, rec *record, person, method string, err error) {
	key, reason, high := e.keys.Classify(err)
	details := map[string]string{"method": method}
	if high {
		details["severity"] = "high"
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInFailure, Person: person, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Failure, Reason: reason, Details: details,
	})
	if high {
		e.log.Warn("security key refused: possible cloned authenticator", "person", person, "reason", reason)
	}
	e.jsonError(w, r, http.StatusBadRequest, key)
}

// ---- passwordless, from the login page

func (e *Engine) passkeyBegin(w http.ResponseWriter, r *http.Request) {
	_, rec, _, ok := e.readCeremony(w, r, stepCredentials, stateCredentials)
	if !ok {
		return
	}
	if !rec.methodAllowed("passkey") {
		e.jsonError(w, r, http.StatusBadRequest, "invalid_request")
		return
	}
	// The same options serve the button and browser autofill: the script
	// asks for conditional mediation itself.
	opts, err := e.keys.BeginPasswordless(r.Context(), rec.ID+":passwordless", false)
	if err != nil {
		e.keyFailure(w, r, rec, "", "passkey", err)
		return
	}
	writeOptions(w, opts)
}

func (e *Engine) passkeyFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m, rec, raw, ok := e.readCeremony(w, r, stepCredentials, stateCredentials)
	if !ok {
		return
	}
	res, err := e.keys.FinishLogin(ctx, rec.ID+":passwordless", "", m.Credential)
	if err != nil {
		e.keyFailure(w, r, rec, "", "passkey", err)
		return
	}
	// The key proves who holds it, not that the account is still allowed:
	// the directory is asked for the person's current state and groups.
	id, source, err := e.lookup(ctx, res.Subject)
	if err != nil {
		key, reason := loginErrorKey(err)
		if errors.Is(err, connectors.ErrUnknownSubject) {
			key, reason = "webauthn_not_allowed", "unknown_subject"
		}
		e.audit.Record(store.AuditEvent{Type: audit.SignInFailure, Person: res.Subject, App: rec.Request.App,
			ClientAddr: clientaddr.From(r).String(), Outcome: audit.Failure, Reason: reason,
			Details: map[string]string{"method": "passkey"}})
		e.jsonError(w, r, http.StatusForbidden, key)
		return
	}
	id.AMR = mergeAMR(res.AMR, []string{assurance.AMRMultiFactor})
	id.Assurance = res.Level
	id.AuthTime = e.now()
	redirect, err := e.complete(ctx, w, r, rec, raw, id, "passkey", source)
	if err != nil {
		e.jsonError(w, r, http.StatusBadRequest, "flow_expired")
		return
	}
	web.JSONRedirect(w, redirect)
}

// lookup finds the current identity of a subject ("connector:subject").
func (e *Engine) lookup(ctx context.Context, subject string) (connectors.Identity, string, error) {
	source, local, ok := strings.Cut(subject, ":")
	conn := e.lookups[source]
	if !ok || conn == nil {
		return connectors.Identity{}, source, connectors.ErrUnknownSubject
	}
	id, err := conn.Lookup(ctx, local)
	if err != nil {
		return connectors.Identity{}, source, err
	}
	id.Connector = source
	return id, source, nil
}

// mergeAMR returns the union of method lists, in order, without repeats.
func mergeAMR(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, m := range l {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// ---- second factor after a password (or step-up of a session)

func (e *Engine) keyPage(w http.ResponseWriter, r *http.Request) {
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, _, err := e.loadFlow(r.Context(), r.URL.Query().Get("flow"), binding)
	if err != nil || rec.State != stateSecondFactor {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	e.pages.Render(w, r, http.StatusOK, web.PageSecondFactor, web.SecondFactorPage{
		App:       rec.Request.AppName,
		FlowID:    rec.ID,
		StepToken: e.mac(rec.ID, stepSecondFactor),
		CSRFToken: e.csrf.Token(binding, "login:"+rec.ID),
		BeginURL:  PathKeyBegin,
		FinishURL: PathKeyFinish,
	})
}

func (e *Engine) keyBegin(w http.ResponseWriter, r *http.Request) {
	_, rec, _, ok := e.readCeremony(w, r, stepSecondFactor, stateSecondFactor)
	if !ok {
		return
	}
	opts, err := e.keys.BeginLogin(r.Context(), Subject(*rec.Pending), rec.ID+":second_factor")
	if err != nil {
		e.keyFailure(w, r, rec, Subject(*rec.Pending), "second_factor", err)
		return
	}
	writeOptions(w, opts)
}

func (e *Engine) keyFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m, rec, raw, ok := e.readCeremony(w, r, stepSecondFactor, stateSecondFactor)
	if !ok {
		return
	}
	sub := Subject(*rec.Pending)
	res, err := e.keys.FinishLogin(ctx, rec.ID+":second_factor", sub, m.Credential)
	if err != nil {
		e.keyFailure(w, r, rec, sub, "second_factor", err)
		return
	}
	e.finishWithKey(w, r, rec, raw, res, "second_factor")
}

// finishWithKey adds a verified key to the pending identity and completes
// the flow.
func (e *Engine) finishWithKey(w http.ResponseWriter, r *http.Request, rec *record, raw []byte, res KeyResult, method string) {
	id := *rec.Pending
	id.AMR = mergeAMR(id.AMR, res.AMR, []string{assurance.AMRMultiFactor})
	id.Assurance = max(id.Assurance, res.Level)
	id.AuthTime = e.now()
	redirect, err := e.complete(r.Context(), w, r, rec, raw, id, method, rec.PendingSource)
	if err != nil {
		e.jsonError(w, r, http.StatusBadRequest, "flow_expired")
		return
	}
	web.JSONRedirect(w, redirect)
}

// ---- enrollment inside a sign-in (a person with no key yet)

func (e *Engine) enrollPage(w http.ResponseWriter, r *http.Request) {
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, _, err := e.loadFlow(r.Context(), r.URL.Query().Get("flow"), binding)
	if err != nil || rec.State != stateEnroll {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	e.renderEnroll(w, r, http.StatusOK, rec, binding, r.URL.Query().Get("error"))
}

func (e *Engine) renderEnroll(w http.ResponseWriter, r *http.Request, status int, rec *record, binding, errKey string) {
	page := web.KeysPage{
		Person:            rec.Pending.DisplayName,
		CanEnroll:         rec.EnrollPath != "",
		CSRFToken:         e.csrf.Token(binding, "login:"+rec.ID),
		RegisterBeginURL:  PathEnrollBegin,
		RegisterFinishURL: PathEnrollFinish,
		CodeAction:        PathEnroll,
		FlowID:            rec.ID,
		StepToken:         e.mac(rec.ID, stepEnroll),
		Error:             errKey,
	}
	switch rec.EnrollPath {
	case "grace":
		page.Message = "enrollment_grace"
	case "":
		page.EnrollHint = "second_factor_required"
	}
	e.pages.Render(w, r, status, web.PageKeys, page)
}

// enrollCode checks an admin-issued enrollment code. Attempts count in the
// throttle like passwords, and any failure reads the same.
func (e *Engine) enrollCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", err)
		return
	}
	binding, _ := e.cookies.Get(r, CookieBinding)
	id := r.PostForm.Get("flow_id")
	if !e.checkMAC(id, stepEnroll, r.PostForm.Get("step")) {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
		return
	}
	rec, raw, err := e.loadFlow(ctx, id, binding)
	if err != nil || rec.State != stateEnroll {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	if !e.csrf.Verify(binding, "login:"+rec.ID, r.PostForm.Get("csrf_token")) {
		e.errorPage(w, r, http.StatusForbidden, "csrf_failed", nil)
		return
	}
	if status, key := e.RedeemEnrollmentCode(r, rec.Request.App, Subject(*rec.Pending), "", r.PostForm.Get("code")); key != "" {
		e.renderEnroll(w, r, status, rec, binding, key)
		return
	}
	rec.EnrollPath = "code"
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	http.Redirect(w, r, PathEnroll+"?"+url.Values{"flow": {rec.ID}}.Encode(), http.StatusSeeOther)
}

// RedeemEnrollmentCode checks a code a person typed: attempts are throttled
// like passwords, a code works once, for its person, before it expires, and
// every attempt is audited. It returns "" on success, else the HTTP status
// and the message key to show (the same whatever made the code wrong).
func (e *Engine) RedeemEnrollmentCode(r *http.Request, app, subject, sessionID, typed string) (int, string) {
	ctx := r.Context()
	addr := clientaddr.From(r).String()
	account := "enroll:" + subject
	if err := e.throttle.Check(ctx, account, addr); err != nil {
		if !errors.Is(err, throttle.ErrThrottled) {
			e.log.Error("throttle check failed", "err", err)
		}
		return http.StatusTooManyRequests, "throttled"
	}
	ev := store.AuditEvent{Type: audit.EnrollmentCodeUsed, Person: subject, App: app, ClientAddr: addr, SessionID: sessionID}
	sum := sha256.Sum256([]byte(NormalizeCode(typed)))
	if err := e.codes.UseEnrollmentCode(ctx, sum[:], subject, e.now()); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			e.log.Error("checking an enrollment code failed", "err", err)
		}
		if terr := e.throttle.Failure(ctx, account, addr); terr != nil {
			e.log.Error("counting a failed enrollment code failed", "err", terr)
		}
		ev.Outcome, ev.Reason = audit.Failure, "invalid_code"
		e.audit.Record(ev)
		return http.StatusUnauthorized, "enrollment_code_invalid"
	}
	if err := e.throttle.Success(ctx, account); err != nil {
		e.log.Error("clearing the enrollment attempt counter failed", "err", err)
	}
	ev.Outcome = audit.Success
	e.audit.Record(ev)
	return http.StatusOK, ""
}

// NormalizeCode makes typed enrollment codes comparable: case, spaces and
// dashes do not count. Codes are stored as the SHA-256 of this form.
func NormalizeCode(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(strings.TrimSpace(code)))
}

func (e *Engine) keyPerson(id connectors.Identity) KeyPerson {
	name := id.DisplayName
	if name == "" {
		name = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	}
	return KeyPerson{Subject: Subject(id), Username: id.Username, DisplayName: name}
}

func (e *Engine) enrollBegin(w http.ResponseWriter, r *http.Request) {
	_, rec, _, ok := e.readCeremony(w, r, stepEnroll, stateEnroll)
	if !ok {
		return
	}
	// Only after a valid code or in the grace period: a stolen password
	// alone never registers a key.
	if rec.EnrollPath == "" {
		e.audit.Record(store.AuditEvent{Type: audit.KeyEnrolled, Person: Subject(*rec.Pending), App: rec.Request.App,
			ClientAddr: clientaddr.From(r).String(), Outcome: audit.Failure, Reason: "enrollment_not_allowed"})
		e.jsonError(w, r, http.StatusForbidden, "enrollment_not_allowed")
		return
	}
	opts, err := e.keys.BeginRegistration(r.Context(), e.keyPerson(*rec.Pending), rec.ID+":enroll")
	if err != nil {
		e.keyFailure(w, r, rec, Subject(*rec.Pending), "enroll", err)
		return
	}
	writeOptions(w, opts)
}

func (e *Engine) enrollFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	m, rec, raw, ok := e.readCeremony(w, r, stepEnroll, stateEnroll)
	if !ok {
		return
	}
	if rec.EnrollPath == "" {
		e.jsonError(w, r, http.StatusForbidden, "enrollment_not_allowed")
		return
	}
	p := e.keyPerson(*rec.Pending)
	res, err := e.keys.FinishRegistration(ctx, p, rec.ID+":enroll", m.Name, m.Credential)
	if err != nil {
		e.keyFailure(w, r, rec, p.Subject, "enroll", err)
		return
	}
	e.audit.Record(store.AuditEvent{Type: audit.KeyEnrolled, Person: p.Subject, App: rec.Request.App,
		ClientAddr: clientaddr.From(r).String(), Outcome: audit.Success,
		Details: map[string]string{"path": rec.EnrollPath, "name": res.CredentialName}})
	// Registering the key proved possession of it, with user verification:
	// it counts as the second factor of this sign-in.
	e.finishWithKey(w, r, rec, raw, res, "enroll")
}
