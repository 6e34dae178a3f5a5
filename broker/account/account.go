// Package account serves a person's own security-key page: list, rename,
// remove and register keys, under the rules that make a stolen password
// useless for enrolling a key.
//
// Registering a key is allowed only
//   - shortly after a strong factor (an existing key; later a CPS card or
//     Pro Santé Connect) proved in this SSO session,
//   - after the person entered a one-time enrollment code an admin issued
//     to them, or
//   - in the hospital's grace period, for a person who has no key yet.
//
// Removing one's last key needs a strong factor too: otherwise a password
// thief could remove the key and then enroll their own in a grace period.
package account

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/web"
)

// Paths.
const (
	PathKeys           = "/keys"
	PathResume         = "/keys/resume"
	PathRegisterBegin  = "/keys/register/begin"
	PathRegisterFinish = "/keys/register/finish"
	PathRename         = "/keys/rename"
	PathDelete         = "/keys/delete"
	PathCode           = "/keys/code"
)

// App is the built-in application id of this page in flows and audit.
const App = "garde-account"

// Options configure the handlers.
type Options struct {
	Sessions   *session.Manager
	Flow       *flow.Engine
	Ceremonies flow.Authenticators
	Creds      store.WebAuthnCredentials
	Ephemeral  store.Ephemeral
	Audit      *audit.Recorder
	Pages      *web.Renderer
	CSRF       *web.CSRF
	Cookies    web.CookiePolicy
	// Model names an authenticator model from its AAGUID ("" if unknown).
	Model func(aaguid []byte) string
	// StrongWindow is how long after a strong factor enrollment and
	// removal of the last key are allowed.
	StrongWindow time.Duration
	GraceUntil   time.Time
	Clock        func() time.Time
	Logger       *slog.Logger
}

// Handlers serve the page.
type Handlers struct{ o Options }

// New returns the handlers.
func New(o Options) *Handlers {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Model == nil {
		o.Model = func([]byte) string { return "" }
	}
	return &Handlers{o: o}
}

// Register mounts the handlers, each wrapped by guard.
func (h *Handlers) Register(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	g := func(f http.HandlerFunc) http.Handler { return guard(f) }
	mux.Handle("GET "+PathKeys, g(h.page))
	mux.Handle("GET "+PathResume, g(h.resume))
	mux.Handle("POST "+PathRegisterBegin, g(h.registerBegin))
	mux.Handle("POST "+PathRegisterFinish, g(h.registerFinish))
	mux.Handle("POST "+PathRename, g(h.rename))
	mux.Handle("POST "+PathDelete, g(h.remove))
	mux.Handle("POST "+PathCode, g(h.code))
}

// current returns the browser's session, its secret and binding.
func (h *Handlers) current(r *http.Request) (*session.Session, string, string) {
	secret, ok := h.o.Cookies.Get(r, flow.CookieSession)
	if !ok {
		return nil, "", ""
	}
	s, err := h.o.Sessions.Get(r.Context(), secret)
	if err != nil {
		return nil, "", ""
	}
	binding, _ := h.o.Cookies.Get(r, flow.CookieBinding)
	return s, secret, binding
}

func (h *Handlers) csrfPurpose(s *session.Session) string { return "keys:" + s.ID }

// strong reports whether the session proved a strong factor recently.
func (h *Handlers) strong(s *session.Session) bool {
	hasStrong := slices.ContainsFunc(s.AMR, func(m string) bool {
		return m == assurance.AMRHardwareKey || m == assurance.AMRSoftwareKey || m == assurance.AMRSmartCard
	})
	return hasStrong && h.o.Clock().Sub(s.AuthTime) <= h.o.StrongWindow
}

func codeKey(sid string) string { return "enrollcode:" + sid }

// enrollPath says whether and why the person may register a key now.
func (h *Handlers) enrollPath(ctx context.Context, s *session.Session, keys int) string {
	switch {
	case h.strong(s):
		return "strong_factor"
	case h.codeRedeemed(ctx, s):
		return "code"
	case keys == 0 && !h.o.GraceUntil.IsZero() && h.o.Clock().Before(h.o.GraceUntil):
		return "grace"
	}
	return ""
}

func (h *Handlers) codeRedeemed(ctx context.Context, s *session.Session) bool {
	_, err := h.o.Ephemeral.Get(ctx, codeKey(s.ID))
	return err == nil
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request) {
	s, _, binding := h.current(r)
	if s == nil {
		h.signIn(w, r)
		return
	}
	if binding == "" {
		// The browser kept its session but lost the binding cookie the
		// forms' CSRF tokens hang on: give it a new one.
		binding = web.NewBinding()
		h.o.Cookies.Set(w, flow.CookieBinding, binding, 0, http.SameSiteLaxMode)
	}
	h.render(w, r, http.StatusOK, s, binding, r.URL.Query().Get("msg"), r.URL.Query().Get("error"))
}

// signIn starts a sign-in flow whose completion returns to this page.
func (h *Handlers) signIn(w http.ResponseWriter, r *http.Request) {
	res, err := h.o.Flow.Authorize(w, r, flow.Request{
		Protocol: "account", App: App, AppName: "Garde", MaxAge: flow.NoMaxAge,
	})
	if err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	if res.Redirect != "" {
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, PathKeys, http.StatusSeeOther)
}

func (h *Handlers) resume(w http.ResponseWriter, r *http.Request) {
	if _, _, err := h.o.Flow.Resume(w, r); err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	http.Redirect(w, r, PathKeys, http.StatusSeeOther)
}

func (h *Handlers) views(ctx context.Context, subject string) ([]web.KeyView, []store.WebAuthnCredential, error) {
	creds, err := h.o.Creds.ListWebAuthnCredentials(ctx, subject)
	if err != nil {
		return nil, nil, err
	}
	views := make([]web.KeyView, 0, len(creds))
	for _, c := range creds {
		kind := web.KeyKindHardware
		if c.BackupEligible {
			kind = web.KeyKindSynced
		}
		views = append(views, web.KeyView{
			ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name, Model: h.o.Model(c.AAGUID), Kind: kind,
			Discoverable: c.Discoverable, Flagged: c.Flagged, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt,
		})
	}
	return views, creds, nil
}

func (h *Handlers) render(w http.ResponseWriter, r *http.Request, status int, s *session.Session, binding, msg, errKey string) {
	views, _, err := h.views(r.Context(), s.Subject)
	if err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	name := s.Identity.DisplayName
	if name == "" {
		name = s.Identity.Username
	}
	page := web.KeysPage{
		Person: name, Keys: views,
		CanEnroll:         h.enrollPath(r.Context(), s, len(views)) != "",
		CSRFToken:         h.o.CSRF.Token(binding, h.csrfPurpose(s)),
		RegisterBeginURL:  PathRegisterBegin,
		RegisterFinishURL: PathRegisterFinish,
		RenameAction:      PathRename,
		DeleteAction:      PathDelete,
		CodeAction:        PathCode,
		Message:           known(msg), Error: known(errKey),
	}
	if h.enrollPath(r.Context(), s, len(views)) == "grace" {
		page.Message = "enrollment_grace"
	}
	h.o.Pages.Render(w, r, status, web.PageKeys, page)
}

// known passes only message keys this page sets itself through the URL, so
// a crafted link cannot put arbitrary text keys on the page.
func known(key string) string {
	switch key {
	case "key_registered", "key_renamed", "key_removed", "key_remove_last_needs_strong", "enrollment_code_invalid", "throttled", "webauthn_failed":
		return key
	}
	return ""
}

func (h *Handlers) back(w http.ResponseWriter, r *http.Request, param, key string) {
	http.Redirect(w, r, PathKeys+"?"+url.Values{param: {key}}.Encode(), http.StatusSeeOther)
}

// form authenticates a form post: a session, and the CSRF token.
func (h *Handlers) form(w http.ResponseWriter, r *http.Request) (*session.Session, string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusBadRequest, "invalid_request", err)
		return nil, "", false
	}
	s, _, binding := h.current(r)
	if s == nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusUnauthorized, "session_expired", nil)
		return nil, "", false
	}
	if !h.o.CSRF.Verify(binding, h.csrfPurpose(s), r.PostForm.Get("csrf_token")) {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusForbidden, "csrf_failed", nil)
		return nil, "", false
	}
	return s, binding, true
}

func (h *Handlers) event(r *http.Request, s *session.Session, typ, outcome, reason string, details map[string]string) {
	h.o.Audit.Record(store.AuditEvent{Type: typ, Person: s.Subject, App: App, ClientAddr: clientaddr.From(r).String(),
		Outcome: outcome, Reason: reason, SessionID: s.ID, Details: details})
}

func (h *Handlers) rename(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.form(w, r)
	if !ok {
		return
	}
	id, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("id"))
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if err != nil || name == "" || len([]rune(name)) > 64 {
		h.back(w, r, "error", "webauthn_failed")
		return
	}
	if err := h.o.Creds.RenameWebAuthnCredential(r.Context(), s.Subject, id, name); err != nil {
		h.back(w, r, "error", "webauthn_failed")
		return
	}
	h.event(r, s, audit.KeyRenamed, audit.Success, "", map[string]string{"name": name})
	h.back(w, r, "msg", "key_renamed")
}

// remove asks for confirmation, then removes a key. The last key goes only
// after a strong factor.
func (h *Handlers) remove(w http.ResponseWriter, r *http.Request) {
	s, binding, ok := h.form(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	id, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("id"))
	if err != nil {
		h.back(w, r, "error", "webauthn_failed")
		return
	}
	views, creds, err := h.views(ctx, s.Subject)
	if err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	i := slices.IndexFunc(creds, func(c store.WebAuthnCredential) bool { return string(c.ID) == string(id) })
	if i < 0 {
		h.back(w, r, "error", "webauthn_failed")
		return
	}
	last := len(creds) == 1
	if last && !h.strong(s) {
		h.event(r, s, audit.KeyRemoved, audit.Failure, "last_key_needs_strong_factor", nil)
		h.back(w, r, "error", "key_remove_last_needs_strong")
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		h.o.Pages.Render(w, r, http.StatusOK, web.PageKeyRemoveConfirm, web.KeyRemoveConfirmPage{
			Key: views[i], Last: last, CSRFToken: h.o.CSRF.Token(binding, h.csrfPurpose(s)),
			DeleteAction: PathDelete, CancelURL: PathKeys,
		})
		return
	}
	if err := h.o.Creds.DeleteWebAuthnCredential(ctx, s.Subject, id); err != nil {
		h.back(w, r, "error", "webauthn_failed")
		return
	}
	h.event(r, s, audit.KeyRemoved, audit.Success, "", map[string]string{"name": creds[i].Name, "last": boolString(last)})
	h.back(w, r, "msg", "key_removed")
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// code redeems an enrollment code for this session.
func (h *Handlers) code(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.form(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if _, key := h.o.Flow.RedeemEnrollmentCode(r, App, s.Subject, s.ID, r.PostForm.Get("code")); key != "" {
		h.back(w, r, "error", key)
		return
	}
	// The code opens enrollment for this session for a short while.
	if err := h.o.Ephemeral.Set(ctx, codeKey(s.ID), []byte{1}, 15*time.Minute); err != nil {
		flow.ErrorPage(h.o.Pages, h.o.Logger, w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	http.Redirect(w, r, PathKeys, http.StatusSeeOther)
}

func (h *Handlers) jsonError(w http.ResponseWriter, r *http.Request, status int, key string) {
	h.o.Pages.JSONError(w, r, status, key)
}

// readCeremony authenticates a JSON ceremony message and checks that the
// person may enroll now.
func (h *Handlers) readCeremony(w http.ResponseWriter, r *http.Request) (*web.WebAuthnRequest, *session.Session, string, bool) {
	m, err := web.DecodeWebAuthnRequest(w, r)
	if err != nil {
		h.jsonError(w, r, http.StatusBadRequest, "invalid_request")
		return nil, nil, "", false
	}
	s, _, binding := h.current(r)
	if s == nil {
		h.jsonError(w, r, http.StatusUnauthorized, "session_expired")
		return nil, nil, "", false
	}
	if !h.o.CSRF.Verify(binding, h.csrfPurpose(s), m.CSRFToken) {
		h.jsonError(w, r, http.StatusForbidden, "csrf_failed")
		return nil, nil, "", false
	}
	creds, err := h.o.Creds.ListWebAuthnCredentials(r.Context(), s.Subject)
	if err != nil {
		h.jsonError(w, r, http.StatusInternalServerError, "server_error")
		return nil, nil, "", false
	}
	path := h.enrollPath(r.Context(), s, len(creds))
	if path == "" {
		h.event(r, s, audit.KeyEnrolled, audit.Failure, "enrollment_not_allowed", nil)
		h.jsonError(w, r, http.StatusForbidden, "enrollment_not_allowed")
		return nil, nil, "", false
	}
	return &m, s, path, true
}

func (h *Handlers) person(s *session.Session) flow.KeyPerson {
	name := s.Identity.DisplayName
	if name == "" {
		name = strings.TrimSpace(s.Identity.GivenName + " " + s.Identity.FamilyName)
	}
	return flow.KeyPerson{Subject: s.Subject, Username: s.Identity.Username, DisplayName: name}
}

func (h *Handlers) registerBegin(w http.ResponseWriter, r *http.Request) {
	_, s, _, ok := h.readCeremony(w, r)
	if !ok {
		return
	}
	opts, err := h.o.Ceremonies.BeginRegistration(r.Context(), h.person(s), "account:"+s.ID)
	if err != nil {
		key, _, _ := h.o.Ceremonies.Classify(err)
		h.jsonError(w, r, http.StatusBadRequest, key)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(opts) // the options JSON the ceremony library produced
}

func (h *Handlers) registerFinish(w http.ResponseWriter, r *http.Request) {
	m, s, path, ok := h.readCeremony(w, r)
	if !ok {
		return
	}
	res, err := h.o.Ceremonies.FinishRegistration(r.Context(), h.person(s), "account:"+s.ID, m.Name, m.Credential)
	if err != nil {
		key, reason, _ := h.o.Ceremonies.Classify(err)
		h.event(r, s, audit.KeyEnrolled, audit.Failure, reason, map[string]string{"path": path})
		h.jsonError(w, r, http.StatusBadRequest, key)
		return
	}
	if path == "code" {
		// One code, one key.
		_ = h.o.Ephemeral.Delete(r.Context(), codeKey(s.ID))
	}
	h.event(r, s, audit.KeyEnrolled, audit.Success, "", map[string]string{"path": path, "name": res.CredentialName})
	web.JSONRedirect(w, PathKeys+"?msg=key_registered")
}
