package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the emergency day is counted in Europe/Paris

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/policies"
	"github.com/garde-sso/garde/web"
)

// DeniedError is a policy refusal: the reason code (for audit and the
// application's error) and the text for the person.
type DeniedError struct {
	Reason  string
	Message web.Explanation
}

func (e *DeniedError) Error() string { return "access denied by policy: " + e.Reason }

// Is makes errors.Is(err, ErrAccessDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrAccessDenied }

// EmergencyAlert is what goes out, at once, when someone declares an
// emergency access (the wiring sends it to a webhook and the log).
type EmergencyAlert struct {
	Time          time.Time `json:"time"`
	Person        string    `json:"person"`
	Name          string    `json:"name,omitempty"`
	NationalID    string    `json:"national_id,omitempty"`
	App           string    `json:"app"`
	AppName       string    `json:"app_name,omitempty"`
	Reason        string    `json:"reason"`
	Justification string    `json:"justification"`
	Denied        string    `json:"denied_for"`
	ClientAddr    string    `json:"client_addr,omitempty"`
	SessionID     string    `json:"sid"`
	Until         time.Time `json:"until"`
}

// Paths and steps of the emergency declaration.
const (
	PathEmergency  = "/login/emergency"
	stepEmergency  = "emergency"
	stateEmergency = "emergency"
)

// stepUpState is a step-up in progress: the login page offers only the
// methods that reach Level.
type stepUpState struct {
	Level     int      `json:"level"`
	Methods   []string `json:"methods"`
	MessageFR string   `json:"fr,omitempty"`
	MessageEN string   `json:"en,omitempty"`
}

// emergencyState is an emergency the person may declare.
type emergencyState struct {
	Lifetime  time.Duration `json:"lifetime"`
	Reasons   []string      `json:"reasons"`
	DeniedFor string        `json:"denied_for"`
	MessageFR string        `json:"fr,omitempty"`
	MessageEN string        `json:"en,omitempty"`
}

var paris, _ = time.LoadLocation("Europe/Paris")

func emergencyDayKey(subject string, now time.Time) string {
	return "emgday:" + subject + ":" + now.In(paris).Format(time.DateOnly)
}

// policyInput describes a session's use of an application to the policy.
func (e *Engine) policyInput(r *http.Request, s *session.Session, req Request) policies.Input {
	id := s.Identity
	now := e.now()
	_, emergency := s.EmergencyFor(req.App, now)
	in := policies.Input{
		App:            req.App,
		Subject:        s.Subject,
		Groups:         id.Groups,
		Professions:    id.Professions,
		NationalIDType: id.NationalIDType,
		Structure:      id.Structure,
		Level:          s.Level,
		AMR:            s.AMR,
		AuthTime:       s.AuthTime,
		Emergency:      emergency,
		Requested:      req.Requested,
		Essential:      req.Essential,
		ClientAddr:     clientaddr.From(r).String(),
		Now:            now,
	}
	if id.Method != "" {
		in.Methods = []string{id.Method}
	}
	return in
}

// decide asks the policy about s using req's application. An emergency
// eligibility is decided again with today's count of declarations, read
// only then (it costs a store read).
func (e *Engine) decide(ctx context.Context, r *http.Request, s *session.Session, req Request) policies.Decision {
	in := e.policyInput(r, s, req)
	d := e.policyDecide(in)
	if d.Outcome == policies.EmergencyEligible {
		in.EmergenciesToday = e.emergenciesToday(ctx, s.Subject)
		d = e.policyDecide(in)
	}
	return d
}

func (e *Engine) policyDecide(in policies.Input) policies.Decision {
	if e.policy == nil {
		return policies.Decide(in)
	}
	return e.policy.Decide(in)
}

func (e *Engine) emergenciesToday(ctx context.Context, subject string) int {
	b, err := e.eph.Get(ctx, emergencyDayKey(subject, e.now()))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

// withinBounds reports whether s is recent and active enough for the
// application's session lifetimes at its level.
func (e *Engine) withinBounds(s *session.Session, d policies.Decision) bool {
	now := e.now()
	if d.Session.Absolute > 0 && now.Sub(s.AuthTime) > d.Session.Absolute {
		return false
	}
	if d.Session.Idle > 0 && now.Sub(s.LastSeen) > d.Session.Idle {
		return false
	}
	return true
}

// denied audits a policy refusal and returns it as an error.
func (e *Engine) denied(r *http.Request, s *session.Session, req Request, d policies.Decision) error {
	reason := d.Reason
	if reason == "" {
		reason = "denied"
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInFailure, Person: s.Subject, App: req.App, ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Failure, Reason: "policy_" + reason, SessionID: s.ID,
		Details: map[string]string{"level": s.Level.String(), "method": s.Identity.Method},
	})
	return &DeniedError{Reason: reason, Message: web.Explanation{FR: d.MessageFR, EN: d.MessageEN}}
}

// offered are the methods this deployment offers.
func (e *Engine) offered() []string {
	return OfferedMethods(e.keys != nil, len(e.cards), len(e.redirects))
}

// OfferedMethods are the sign-in methods a deployment offers, for
// policies.WithAvailableMethods: the password always, keys and passkeys
// with WebAuthn, the card and PSC with their connectors.
func OfferedMethods(keys bool, cards, redirects int) []string {
	out := []string{policies.MethodPassword}
	if keys {
		out = append(out, policies.MethodKey, policies.MethodPasskey)
	}
	if cards > 0 {
		out = append(out, policies.MethodCard)
	}
	if redirects > 0 {
		out = append(out, policies.MethodPSC)
	}
	return out
}

var phishingResistantMethods = []string{policies.MethodCard, policies.MethodKey, policies.MethodPasskey}

// toStepUp asks the signed-in person of s for only what is missing: a
// key when they have one and a key gets there, else the login page with
// only the methods that do. It returns "" when nothing this deployment
// offers can satisfy the request.
func (e *Engine) toStepUp(ctx context.Context, rec *record, raw []byte, s *session.Session, d policies.Decision, req Request) (string, error) {
	level := max(d.Level, e.requiredLevel(req))
	offered := e.offered()
	methods := d.Methods
	if d.Outcome == policies.Allow {
		// Allowed by the policy but below the hospital's key requirement
		// or a phishing-resistant need: what this deployment offers that
		// gets there.
		methods = nil
		for _, m := range offered {
			if policies.MaxLevel(m) >= level {
				methods = append(methods, m)
			}
		}
	}
	methods = slices.DeleteFunc(slices.Clone(methods), func(m string) bool {
		return !slices.Contains(offered, m) || (req.PhishingResistant && !slices.Contains(phishingResistantMethods, m))
	})
	if len(methods) == 0 {
		return "", nil
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.StepUpRequired, Person: s.Subject, App: req.App, Outcome: audit.Success, SessionID: s.ID,
		Reason: d.Reason, Details: map[string]string{"from": s.Level.String(), "to": level.String(), "methods": strings.Join(methods, " ")},
	})
	keyWorks := e.keys != nil && (slices.Contains(methods, policies.MethodKey) || slices.Contains(methods, policies.MethodPasskey))
	if keyWorks {
		has, err := e.keys.HasCredentials(ctx, s.Subject)
		if err != nil {
			return "", err
		}
		onlyKeys := !slices.ContainsFunc(methods, func(m string) bool { return m != policies.MethodKey && m != policies.MethodPasskey })
		if has || onlyKeys {
			id := s.Identity
			id.AMR, id.Assurance, id.AuthTime = s.AMR, s.Level, s.AuthTime
			return e.toSecondFactor(ctx, rec, raw, id, id.Connector)
		}
	}
	msgFR, msgEN := d.MessageFR, d.MessageEN
	if d.Outcome == policies.EmergencyEligible {
		// The policy's message says why the person may not enter; what
		// they must do first is authenticate more strongly.
		msgFR, msgEN = "Cette application demande une authentification plus forte, y compris pour déclarer un accès en urgence.",
			"This application requires a stronger authentication, also to declare an emergency access."
	}
	if msgFR == "" {
		msgFR, msgEN = "Cette application demande une authentification plus forte.", "This application requires a stronger authentication."
	}
	rec.State = stateCredentials
	rec.StepUp = &stepUpState{Level: int(level), Methods: methods, MessageFR: msgFR, MessageEN: msgEN}
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		return "", err
	}
	return e.loginPath + "?" + url.Values{"flow": {rec.ID}}.Encode(), nil
}

// methodAllowed reports whether a step of the flow may use method: any
// method, except in a step-up, which accepts only the methods it named.
func (rec *record) methodAllowed(method string) bool {
	return rec.StepUp == nil || slices.Contains(rec.StepUp.Methods, method)
}

// needsStepUpFirst reports whether an emergency-eligible person must first
// reach the application's floor: an emergency lifts who may enter, never
// how strongly they signed in.
func needsStepUpFirst(d policies.Decision) bool {
	return d.Outcome == policies.EmergencyEligible && len(d.Methods) > 0
}

// toEmergency parks the flow on the emergency declaration page.
func (e *Engine) toEmergency(ctx context.Context, rec *record, raw []byte, s *session.Session, d policies.Decision) (string, error) {
	em := d.Emergency
	if em == nil {
		return "", errors.New("emergency-eligible decision without an emergency policy")
	}
	rec.State = stateEmergency
	rec.SessionID = s.ID
	rec.Emergency = &emergencyState{Lifetime: em.Lifetime, Reasons: em.Reasons, DeniedFor: d.Reason, MessageFR: d.MessageFR, MessageEN: d.MessageEN}
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		return "", err
	}
	return PathEmergency + "?" + url.Values{"flow": {rec.ID}}.Encode(), nil
}

// RegisterEmergency mounts the emergency declaration page.
func (e *Engine) registerEmergency(mux *http.ServeMux, h func(http.HandlerFunc) http.Handler) {
	mux.Handle(PathEmergency, h(e.emergencyPage))
}

func (e *Engine) emergencyPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, raw, binding, posted, ok := e.openFormStep(w, r, formStep{state: stateEmergency, step: stepEmergency, csrf: "emergency:"})
	if !ok {
		return
	}
	if rec.Emergency == nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrFlowNotFound)
		return
	}
	if !posted {
		e.renderEmergency(w, r, http.StatusForbidden, rec, binding, "", "", "")
		return
	}
	reason := r.PostForm.Get("reason")
	justification := strings.TrimSpace(r.PostForm.Get("justification"))
	if !slices.Contains(rec.Emergency.Reasons, reason) || len([]rune(justification)) < 10 || len(justification) > 4000 {
		e.renderEmergency(w, r, http.StatusBadRequest, rec, binding, reason, justification, web.MsgEmergencyJustification)
		return
	}
	s, secret := e.currentSession(ctx, r)
	if s == nil || s.ID != rec.SessionID {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrFlowNotFound)
		return
	}
	// The policy decides again, now: the person, the place and the count
	// of today's declarations may have changed since the page was shown.
	d := e.decide(ctx, r, s, rec.Request)
	if d.Outcome != policies.EmergencyEligible || d.Emergency == nil {
		if d.Reason == "emergency_limit_reached" {
			e.renderEmergency(w, r, http.StatusForbidden, rec, binding, reason, justification, web.MsgEmergencyLimit)
			return
		}
		e.errorPage(w, r, http.StatusForbidden, "access_denied", fmt.Errorf("emergency no longer eligible: %s", d.Reason))
		return
	}
	// Counted atomically: of two declarations racing past the check above,
	// the one over the limit is refused here.
	n, err := e.eph.Incr(ctx, emergencyDayKey(s.Subject, e.now()), 48*time.Hour)
	if err != nil {
		e.errorPage(w, r, http.StatusServiceUnavailable, "server_error", err)
		return
	}
	if int(n) > d.Emergency.PerPersonPerDay {
		e.renderEmergency(w, r, http.StatusForbidden, rec, binding, reason, justification, web.MsgEmergencyLimit)
		return
	}
	now := e.now()
	until := now.Add(d.Emergency.Lifetime)
	if err := e.sessions.DeclareEmergency(ctx, secret, s, rec.Request.App, session.Emergency{Reason: reason, Until: until}); err != nil {
		e.errorPage(w, r, http.StatusServiceUnavailable, "server_error", err)
		return
	}
	addr := clientaddr.From(r).String()
	e.audit.Record(store.AuditEvent{
		Type: audit.EmergencyDeclared, Person: s.Subject, App: rec.Request.App, ClientAddr: addr,
		Outcome: audit.Success, Reason: reason, SessionID: s.ID,
		Details: map[string]string{
			"severity": "high", "justification": justification, "denied_for": rec.Emergency.DeniedFor,
			"until": until.UTC().Format(time.RFC3339), "count_today": strconv.FormatInt(n, 10),
		},
	})
	e.log.Warn("EMERGENCY ACCESS declared", "person", s.Subject, "app", rec.Request.App, "reason", reason, "until", until.UTC(), "addr", addr)
	if e.alert != nil {
		e.alert(EmergencyAlert{
			Time: now.UTC(), Person: s.Subject, Name: s.Identity.DisplayName, NationalID: s.Identity.NationalID,
			App: rec.Request.App, AppName: rec.Request.AppName, Reason: reason, Justification: justification,
			Denied: rec.Emergency.DeniedFor, ClientAddr: addr, SessionID: s.ID, Until: until.UTC(),
		})
	}
	resume, ok := e.resumePaths[rec.Request.Protocol]
	if !ok {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", errors.New("no resume path"))
		return
	}
	rec.State = stateAuthenticated
	rec.Emergency = nil
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	q := url.Values{"flow": {rec.ID}, "step": {e.mac(rec.ID, stepComplete)}}
	http.Redirect(w, r, resume+"?"+q.Encode(), http.StatusSeeOther)
}

func (e *Engine) renderEmergency(w http.ResponseWriter, r *http.Request, status int, rec *record, binding, reason, justification, msgKey string) {
	em := rec.Emergency
	e.pages.Render(w, r, status, web.PageEmergency, web.EmergencyPage{
		App:           rec.Request.AppName,
		Denial:        web.Explanation{FR: em.MessageFR, EN: em.MessageEN},
		Reasons:       em.Reasons,
		Minutes:       int(em.Lifetime / time.Minute),
		FlowID:        rec.ID,
		StepToken:     e.mac(rec.ID, stepEmergency),
		CSRFToken:     e.csrf.Token(binding, "emergency:"+rec.ID),
		Reason:        reason,
		Justification: justification,
		Error:         msgKey,
		Action:        PathEmergency,
	})
}

// stepUpText is the login page's explanation of a step-up.
func stepUpText(rec *record) *web.Explanation {
	if rec.StepUp == nil {
		return nil
	}
	return &web.Explanation{FR: rec.StepUp.MessageFR, EN: rec.StepUp.MessageEN}
}
