// Package flow is the protocol-neutral sign-in state machine.
//
// A protocol front-end (OIDC today, SAML later) validates an application's
// request and hands the flow a Request. The flow either answers at once from
// the SSO session, or stores a flow record in the ephemeral store and sends
// the browser to the login page. Once a connector has proven who the person
// is, the flow opens (or renews) the SSO session and sends the browser back
// to the front-end's resume endpoint, which takes the flow and issues the
// code or assertion.
//
// Steps cannot be skipped or replayed:
//   - the flow id is unguessable and bound to the browser that started it
//     (the hash of a browser cookie is stored with the flow);
//   - each hop carries a MAC over (flow id, step name), so a URL or form
//     from one step is worthless at another;
//   - the state lives server-side: the resume endpoint only completes a flow
//     whose record says "authenticated", and takes it atomically, so it
//     completes once.
//
// Policy is enforced in one place, grant, on both the SSO path and the
// fresh sign-in path, where the session is handed to an application.
package flow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// Request is a sign-in request from an application, whatever its protocol.
type Request struct {
	// Protocol names the front-end that resumes the flow ("oidc").
	Protocol string `json:"protocol"`
	// App is the client id (or SAML entity id); AppName is shown to people.
	App     string `json:"app"`
	AppName string `json:"app_name"`
	// Requested is the level the application asked for.
	Requested assurance.Level `json:"requested,omitempty"`
	// MaxAge, when set (>= 0), is the oldest authentication acceptable.
	MaxAge time.Duration `json:"max_age"`
	// ForceLogin asks for a fresh authentication (prompt=login, ForceAuthn).
	ForceLogin bool `json:"force_login,omitempty"`
	// Passive forbids any interaction (prompt=none, IsPassive).
	Passive bool `json:"passive,omitempty"`
	// Essential makes Requested a requirement (OIDC claims request with
	// "essential": true): a level that cannot be reached is an error, not
	// a weaker answer.
	Essential bool `json:"essential,omitempty"`
	// PhishingResistant accepts only sessions proven with a security key,
	// a passkey or a smart card (Pro Santé Connect delegation).
	PhishingResistant bool `json:"phishing_resistant,omitempty"`
	// LoginHint pre-fills the username when the application knows it.
	LoginHint string `json:"login_hint,omitempty"`
	// Resume is the front-end's continuation, opaque to the flow.
	Resume url.Values `json:"resume"`
	// RequestedAt is when the application's request arrived.
	RequestedAt time.Time `json:"requested_at"`
}

// NoMaxAge is the MaxAge of a request that sets none.
const NoMaxAge time.Duration = -1

// Errors a front-end maps to its protocol's error responses.
var (
	// ErrLoginRequired: a passive request and no usable session.
	ErrLoginRequired = errors.New("login required")
	// ErrAccessDenied: policy refused the person for this application.
	ErrAccessDenied = errors.New("access denied")
	// ErrFlowNotFound: the flow is unknown, expired, already completed, or
	// belongs to another browser.
	ErrFlowNotFound = errors.New("sign-in flow not found or expired")
	// ErrBadStep: a MAC or CSRF token did not verify.
	ErrBadStep = errors.New("sign-in step not authenticated")
)

// Step names, bound into MACs.
const (
	stepCredentials  = "credentials"
	stepSecondFactor = "second_factor"
	stepEnroll       = "enroll"
	stepComplete     = "complete"
)

// States of a flow record.
const (
	stateCredentials   = "credentials"
	stateSecondFactor  = "second_factor"
	stateEnroll        = "enroll"
	stateAuthenticated = "authenticated"
)

// record is a flow as stored in the ephemeral store.
type record struct {
	ID      string  `json:"id"`
	Binding string  `json:"binding"`
	State   string  `json:"state"`
	Request Request `json:"request"`
	// SessionID is the SSO session the flow authenticated (state
	// authenticated).
	SessionID string    `json:"sid,omitempty"`
	CreatedAt time.Time `json:"created"`
	// Pending is who proved a first factor (or, for a step-up, the SSO
	// session's person), waiting for a key (states second_factor, enroll).
	// No session exists for them yet: nothing can ride a half sign-in.
	Pending *connectors.Identity `json:"pending,omitempty"`
	// PendingSource is the connector that proved the first factor.
	PendingSource string `json:"pending_source,omitempty"`
	// EnrollPath says why enrollment is allowed in state enroll: "code"
	// after a valid enrollment code, "grace" in the grace period.
	EnrollPath string `json:"enroll_path,omitempty"`
	// PendingMethod is how the pending identity signed in ("card", "psc")
	// while it waits for a local password to link (state link).
	PendingMethod string `json:"pending_method,omitempty"`
	// Upstream is a redirect sign-in in progress (PSC).
	Upstream *upstreamAttempt `json:"upstream,omitempty"`
	// Decoupled is a decoupled sign-in in progress (PSC CIBA).
	Decoupled *decoupledAttempt `json:"decoupled,omitempty"`
	// StepUp restricts the login page to the methods a policy asked for.
	StepUp *stepUpState `json:"step_up,omitempty"`
	// Emergency is the declaration the person may make (state emergency).
	Emergency *emergencyState `json:"emergency,omitempty"`
}

func flowKey(id string) string { return "flow:" + id }

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashBinding(binding string) string {
	sum := sha256.Sum256([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mac authenticates one hop of a flow.
func (e *Engine) mac(flowID, step string) string {
	h := hmac.New(sha256.New, e.macKey)
	h.Write([]byte(flowID))
	h.Write([]byte{0})
	h.Write([]byte(step))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (e *Engine) checkMAC(flowID, step, got string) bool {
	want := e.mac(flowID, step)
	return hmac.Equal([]byte(want), []byte(got))
}

func (e *Engine) saveFlow(ctx context.Context, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode flow: %w", err)
	}
	return e.eph.Set(ctx, flowKey(rec.ID), b, e.flowTTL)
}

// loadFlow returns the flow if it exists and belongs to this browser.
func (e *Engine) loadFlow(ctx context.Context, id, binding string) (*record, []byte, error) {
	if id == "" || binding == "" {
		return nil, nil, ErrFlowNotFound
	}
	b, err := e.eph.Get(ctx, flowKey(id))
	if err != nil {
		return nil, nil, errors.Join(ErrFlowNotFound, err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, nil, fmt.Errorf("decode flow: %w", err)
	}
	if !hmac.Equal([]byte(rec.Binding), []byte(hashBinding(binding))) {
		return nil, nil, ErrFlowNotFound
	}
	return &rec, b, nil
}

// formStep is a page of the flow that shows a form (GET) and takes it back
// (POST): the link with a local password, the emergency declaration.
type formStep struct {
	state string // the flow state the page belongs to
	step  string // the step name bound into the form's MAC
	csrf  string // the CSRF token's purpose prefix
}

// open reads the flow of a formStep request, for this browser and in the
// step's state. On a POST it also checks the form's MAC and CSRF token.
// It answers the request itself (an error page) and returns ok false when
// anything does not hold.
func (e *Engine) openFormStep(w http.ResponseWriter, r *http.Request, fs formStep) (rec *record, raw []byte, binding string, posted, ok bool) {
	binding, _ = e.cookies.Get(r, CookieBinding)
	id := r.URL.Query().Get("flow")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			e.errorPage(w, r, http.StatusBadRequest, "invalid_request", err)
			return nil, nil, "", false, false
		}
		id, posted = r.PostForm.Get("flow_id"), true
	default:
		w.Header().Set("Allow", "GET, POST")
		e.errorPage(w, r, http.StatusMethodNotAllowed, "invalid_request", nil)
		return nil, nil, "", false, false
	}
	rec, raw, err := e.loadFlow(r.Context(), id, binding)
	if err != nil || rec.State != fs.state {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return nil, nil, "", false, false
	}
	if posted {
		if !e.checkMAC(rec.ID, fs.step, r.PostForm.Get("step")) {
			e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
			return nil, nil, "", false, false
		}
		if !e.csrf.Verify(binding, fs.csrf+rec.ID, r.PostForm.Get("csrf_token")) {
			e.errorPage(w, r, http.StatusForbidden, "csrf_failed", nil)
			return nil, nil, "", false, false
		}
	}
	return rec, raw, binding, posted, true
}
