package flow

// Decoupled sign-in (OpenID Connect CIBA through Pro Santé Connect): a
// clinician on a shared workstation types only their RPPS number; PSC
// pushes the request to their card reader or e-CPS app with a two-digit
// code that the waiting page shows too; the page reloads itself (a meta
// refresh, no script) and each load asks PSC once whether the person
// approved. The identity PSC returns then goes through finishUpstream,
// exactly like a redirect sign-in: linking, policy, step-up, emergency and
// audit all happen in one place.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/web"
)

// DecoupledStart is a decoupled sign-in the provider accepted.
type DecoupledStart struct {
	// AuthReqID is the provider's handle, passed to PollDecoupled.
	AuthReqID string
	// BindingMessage is the code the card reader or app shows, which the
	// waiting page shows too.
	BindingMessage string
	// Interval is how long to wait between polls; ExpiresIn how long the
	// request lives.
	Interval, ExpiresIn time.Duration
}

// DecoupledConnector is a RedirectConnector that can also push a sign-in
// to the person's device (Pro Santé Connect's CIBA). A RedirectSource whose
// connector implements it, with at least one channel, is offered on the
// login page.
type DecoupledConnector interface {
	// StartDecoupled asks the provider to push a sign-in to the
	// professional idNat ("8" + RPPS) on channel ("CARD", "MOBILE").
	StartDecoupled(ctx context.Context, idNat, channel string) (DecoupledStart, error)
	// PollDecoupled returns the identity once the person approved, or an
	// error for which Pending or SlowDown may hold.
	PollDecoupled(ctx context.Context, authReqID string) (connectors.Identity, error)
	// Pending: not approved yet, poll again after the interval.
	Pending(err error) bool
	// SlowDown: polled too early; the interval grows by 5 s.
	SlowDown(err error) bool
	// DecoupledChannels are the channels the configuration allows; none
	// disables the decoupled sign-in.
	DecoupledChannels() []string
}

// PathDecoupled starts a decoupled sign-in (POST, from the login page) and
// serves the waiting page that polls (GET ?flow, or ?flow&cancel).
const PathDecoupled = "/login/decoupled"

// stepDecoupledCancel authenticates the waiting page's cancel link.
const stepDecoupledCancel = "decoupled_cancel"

// Push limits: each request makes a phone or card reader ask someone to
// approve a sign-in, so a person must not be spammed from one workstation
// or by typing their number over and over. The per-id limit is what
// protects the clinician; the per-address one stops a workstation from
// walking the directory.
const (
	decoupledPerID      = 3
	decoupledPerAddress = 10
	decoupledWindow     = 10 * time.Minute
	// slowDownStep is what RFC 8628 §3.5 and CIBA §11 ask a client to add
	// to its interval on slow_down.
	slowDownStep = 5 * time.Second
)

// decoupledAttempt is a decoupled sign-in in progress, kept in the flow.
type decoupledAttempt struct {
	Source         string        `json:"source"`
	AuthReqID      string        `json:"auth_req_id"`
	BindingMessage string        `json:"binding_message"`
	Channel        string        `json:"channel"`
	Interval       time.Duration `json:"interval"`
	Expires        time.Time     `json:"expires"`
	// LastPoll is when PSC was last asked (or the request made): the next
	// question waits until LastPoll + Interval, however often the page
	// is loaded.
	LastPoll time.Time `json:"last_poll"`
}

// ErrInvalidNationalID: what was typed is not an RPPS number.
var ErrInvalidNationalID = errors.New("not an RPPS number")

// NormalizeNationalID turns what a clinician typed into their idNat_PS:
// an RPPS number (11 digits, Luhn-valid) gets the "8" prefix; "8" + RPPS is
// kept. Spaces, as on the card, are ignored. Anything else (ADELI numbers,
// structure ids, letters) is refused before anything is sent to PSC.
func NormalizeNationalID(s string) (string, error) {
	if len(s) > 64 {
		return "", fmt.Errorf("%w: too long", ErrInvalidNationalID)
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '\t' || r == '\u00a0' || r == '\u202f':
		default:
			return "", fmt.Errorf("%w: only digits are expected", ErrInvalidNationalID)
		}
	}
	d := b.String()
	switch {
	case len(d) == 11:
	case len(d) == 12 && d[0] == '8':
		d = d[1:]
	default:
		return "", fmt.Errorf("%w: %d digits; expected 11, or 12 starting with 8", ErrInvalidNationalID, len(d))
	}
	if !luhn(d) {
		return "", fmt.Errorf("%w: check digit does not match", ErrInvalidNationalID)
	}
	return "8" + d, nil
}

// luhn checks the RPPS number's last digit (a Luhn key): a mistyped digit
// is caught here rather than sent to the wrong person's phone.
func luhn(digits string) bool {
	sum := 0
	for i := range len(digits) {
		n := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// decoupledSource returns the redirect source id if it offers decoupled
// sign-in.
func (e *Engine) decoupledSource(id string) (RedirectSource, DecoupledConnector, bool) {
	src, ok := e.redirectSource(id)
	if !ok {
		return RedirectSource{}, nil, false
	}
	dc, ok := src.Connector.(DecoupledConnector)
	if !ok || len(dc.DecoupledChannels()) == 0 {
		return RedirectSource{}, nil, false
	}
	return src, dc, true
}

func (e *Engine) hasDecoupled() bool {
	for _, s := range e.redirects {
		if _, _, ok := e.decoupledSource(s.ID); ok {
			return true
		}
	}
	return false
}

// decoupledForm is the login page's form for a PSC source, or nil.
func (e *Engine) decoupledForm(sourceID string) *web.DecoupledForm {
	_, dc, ok := e.decoupledSource(sourceID)
	if !ok {
		return nil
	}
	return &web.DecoupledForm{Action: PathDecoupled, Source: sourceID, Channels: dc.DecoupledChannels()}
}

func (e *Engine) registerDecoupled(mux *http.ServeMux, h func(http.HandlerFunc) http.Handler) {
	if !e.hasDecoupled() {
		return
	}
	mux.Handle("POST "+PathDecoupled, h(e.decoupledStart))
	mux.Handle("GET "+PathDecoupled, h(e.decoupledPoll))
}

// decoupledStart checks the login page's form (step MAC, browser binding,
// CSRF: the same tokens as the password form), the national id and the
// push limits, asks PSC to push the request, and sends the browser to the
// waiting page.
func (e *Engine) decoupledStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", err)
		return
	}
	f := r.PostForm
	binding, _ := e.cookies.Get(r, CookieBinding)
	id := f.Get(web.FieldFlowID)
	if !e.checkMAC(id, stepCredentials, f.Get(web.FieldStepToken)) {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
		return
	}
	rec, raw, err := e.loadFlow(ctx, id, binding)
	if err != nil || rec.State != stateCredentials {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	if !e.csrf.Verify(binding, "login:"+rec.ID, f.Get(web.FieldCSRF)) {
		e.errorPage(w, r, http.StatusForbidden, "csrf_failed", nil)
		return
	}
	src, dc, ok := e.decoupledSource(f.Get(web.FieldSource))
	if !ok || !rec.methodAllowed("psc") {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", errors.New("unknown decoupled source, or not accepted in this step-up"))
		return
	}
	channels := dc.DecoupledChannels()
	channel := f.Get(web.FieldChannel)
	if channel == "" && len(channels) == 1 {
		channel = channels[0]
	}
	if !slices.Contains(channels, channel) {
		e.errorPage(w, r, http.StatusBadRequest, "invalid_request", fmt.Errorf("decoupled channel %q not offered", channel))
		return
	}
	idNat, err := NormalizeNationalID(f.Get(web.FieldNationalID))
	if err != nil {
		e.decoupledFailed(w, r, rec, src.ID, channel, "invalid_national_id", web.MsgDecoupledInvalidID, http.StatusBadRequest, err)
		return
	}
	if err := e.decoupledAllowed(ctx, idNat, clientaddr.From(r).String()); err != nil {
		if errors.Is(err, throttle.ErrThrottled) {
			e.decoupledFailed(w, r, rec, src.ID, channel, "throttled", "throttled", http.StatusTooManyRequests, err)
		} else {
			e.errorPage(w, r, http.StatusServiceUnavailable, "server_error", err)
		}
		return
	}
	start, err := dc.StartDecoupled(ctx, idNat, channel)
	if err != nil {
		reason := src.Connector.Reason(err)
		e.decoupledFailed(w, r, rec, src.ID, channel, reason, decoupledMessage(reason), decoupledStatus(reason), err)
		return
	}
	now := e.now()
	interval := max(start.Interval, time.Second)
	rec.Decoupled = &decoupledAttempt{
		Source: src.ID, AuthReqID: start.AuthReqID, BindingMessage: start.BindingMessage, Channel: channel,
		Interval: interval, Expires: now.Add(start.ExpiresIn), LastPoll: now,
	}
	if err := e.swapFlow(ctx, rec, raw); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInDecoupled, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(), Outcome: audit.Success,
		Details: map[string]string{"stage": "requested", "method": "psc", "connector": src.ID, "channel": channel, "national_id": idNat},
	})
	http.Redirect(w, r, PathDecoupled+"?"+url.Values{"flow": {rec.ID}}.Encode(), http.StatusSeeOther)
}

// decoupledAllowed counts a push for the address and the national id, and
// refuses past the limits. The counters are reserved before PSC is called,
// so racing requests cannot exceed them.
func (e *Engine) decoupledAllowed(ctx context.Context, idNat, addr string) error {
	if addr != "" {
		n, err := e.eph.Incr(ctx, "thr:ciba:addr:"+addr, decoupledWindow)
		if err != nil {
			return fmt.Errorf("count decoupled request: %w", err)
		}
		if n > decoupledPerAddress {
			return throttle.ErrThrottled
		}
	}
	// Hashed like the password throttle's account keys: whoever reads
	// the store learns no national ids from the counters.
	sum := sha256.Sum256([]byte(idNat))
	n, err := e.eph.Incr(ctx, "thr:ciba:id:"+hex.EncodeToString(sum[:16]), decoupledWindow)
	if err != nil {
		return fmt.Errorf("count decoupled request: %w", err)
	}
	if n > decoupledPerID {
		return throttle.ErrThrottled
	}
	return nil
}

// decoupledPoll serves the waiting page. Each load asks PSC at most once,
// and never before the interval has passed since the last question,
// however often the page is reloaded.
func (e *Engine) decoupledPoll(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	binding, _ := e.cookies.Get(r, CookieBinding)
	rec, raw, err := e.loadFlow(ctx, q.Get("flow"), binding)
	if err == nil && (rec.State != stateCredentials || rec.Decoupled == nil) {
		err = errors.New("no decoupled sign-in in progress")
	}
	if err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	att := *rec.Decoupled
	src, dc, ok := e.decoupledSource(att.Source)
	if !ok {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", errors.New("decoupled source no longer offered"))
		return
	}
	if c := q.Get("cancel"); c != "" {
		if !e.checkMAC(rec.ID, stepDecoupledCancel, c) {
			e.errorPage(w, r, http.StatusBadRequest, "flow_expired", ErrBadStep)
			return
		}
		rec.Decoupled = nil
		if err := e.swapFlow(ctx, rec, raw); err != nil {
			e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
			return
		}
		http.Redirect(w, r, e.loginPath+"?"+url.Values{"flow": {rec.ID}}.Encode(), http.StatusSeeOther)
		return
	}
	now := e.now()
	if !now.Before(att.Expires) {
		e.decoupledEnd(w, r, rec, raw, att, "psc_expired", errors.New("decoupled sign-in expired before approval"))
		return
	}
	next := att.LastPoll.Add(att.Interval)
	if now.Before(next) || r.Method == http.MethodHead {
		e.renderDecoupled(w, r, rec, att, next.Sub(now))
		return
	}
	// Claim this poll first: of two loads at once, only the one whose
	// compare-and-swap wins asks PSC; the other just shows the page.
	rec.Decoupled.LastPoll = now
	raw, err = e.swapRaw(ctx, rec, raw)
	if err != nil {
		e.renderDecoupled(w, r, rec, att, att.Interval)
		return
	}
	id, err := dc.PollDecoupled(ctx, att.AuthReqID)
	switch {
	case err == nil:
	case dc.Pending(err):
		e.renderDecoupled(w, r, rec, att, att.Interval)
		return
	case dc.SlowDown(err):
		rec.Decoupled.Interval += slowDownStep
		if _, serr := e.swapRaw(ctx, rec, raw); serr != nil {
			e.log.Info("decoupled sign-in: slower interval not saved", "err", serr)
		}
		e.renderDecoupled(w, r, rec, att, rec.Decoupled.Interval)
		return
	default:
		e.decoupledEnd(w, r, rec, raw, att, src.Connector.Reason(err), err)
		return
	}
	// Approved: the attempt is consumed before the identity is used, so
	// a reload cannot poll the spent auth_req_id again.
	rec.Decoupled = nil
	if raw, err = e.swapRaw(ctx, rec, raw); err != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	if id.Connector == "" {
		id.Connector = src.ID
	}
	if id.Upstream != nil {
		id.Upstream.Connector = src.ID
	}
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInDecoupled, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(), Outcome: audit.Success,
		Details: map[string]string{"stage": "approved", "method": "psc", "connector": src.ID, "channel": att.Channel, "national_id": id.NationalID},
	})
	e.finishUpstream(w, r, rec, raw, id, "psc", src.ID)
}

// decoupledEnd clears a failed attempt and shows the login page with why.
func (e *Engine) decoupledEnd(w http.ResponseWriter, r *http.Request, rec *record, raw []byte, att decoupledAttempt, reason string, err error) {
	rec.Decoupled = nil
	if serr := e.swapFlow(r.Context(), rec, raw); serr != nil {
		e.errorPage(w, r, http.StatusBadRequest, "flow_expired", serr)
		return
	}
	e.decoupledFailed(w, r, rec, att.Source, att.Channel, reason, decoupledMessage(reason), decoupledStatus(reason), err)
}

// decoupledFailed audits a refused decoupled sign-in and shows the login
// page again with the message, so the person can try another method.
func (e *Engine) decoupledFailed(w http.ResponseWriter, r *http.Request, rec *record, source, channel, reason, key string, status int, err error) {
	e.audit.Record(store.AuditEvent{
		Type: audit.SignInFailure, App: rec.Request.App, ClientAddr: clientaddr.From(r).String(),
		Outcome: audit.Failure, Reason: reason,
		Details: map[string]string{"method": "psc", "connector": source, "channel": channel, "decoupled": "true"},
	})
	e.log.Info("decoupled sign-in refused", "connector", source, "channel", channel, "reason", reason, "err", describe(err))
	binding, _ := e.cookies.Get(r, CookieBinding)
	e.renderLogin(w, r, status, rec, binding, "", key)
}

func (e *Engine) renderDecoupled(w http.ResponseWriter, r *http.Request, rec *record, att decoupledAttempt, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	secs = max(secs, 1)
	e.pages.Render(w, r, http.StatusOK, web.PageDecoupled, web.DecoupledPage{
		App:            rec.Request.AppName,
		BindingMessage: att.BindingMessage,
		Channel:        att.Channel,
		RefreshSeconds: secs,
		RefreshURL:     PathDecoupled + "?" + url.Values{"flow": {rec.ID}}.Encode(),
		CancelURL:      PathDecoupled + "?" + url.Values{"flow": {rec.ID}, "cancel": {e.mac(rec.ID, stepDecoupledCancel)}}.Encode(),
	})
}

// swapRaw is swapFlow returning the stored bytes, for a handler that
// updates the flow more than once.
func (e *Engine) swapRaw(ctx context.Context, rec *record, raw []byte) ([]byte, error) {
	next, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode flow: %w", err)
	}
	ok, err := e.eph.CompareAndSwap(ctx, flowKey(rec.ID), raw, next)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrFlowNotFound
	}
	return next, nil
}

// decoupledMessage maps a reason code to a message key (web/i18n/psc.*).
func decoupledMessage(reason string) string {
	if reason == "psc_expired" {
		return reason
	}
	return redirectMessage(reason)
}

func decoupledStatus(reason string) int {
	if reason == "psc_unavailable" {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}
