package saml

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/web"
)

// logoutState is a Single Logout in progress: the SPs still to visit, and
// how to answer the SP that started it.
type logoutState struct {
	Origin      string        `json:"origin"`
	OriginReqID string        `json:"origin_id"`
	OriginRelay string        `json:"origin_relay"`
	Remaining   []participant `json:"remaining"`
	// Pending is the ID of the LogoutRequest the browser carries now.
	Pending   string `json:"pending,omitempty"`
	PendingSP string `json:"pending_sp,omitempty"`
	Partial   bool   `json:"partial,omitempty"`
	Person    string `json:"person,omitempty"`
	SessionID string `json:"sid,omitempty"`
	// Next is where the browser goes at the end of a logout that no SP
	// started (StartLogout): Origin is then empty.
	Next string `json:"next,omitempty"`
}

func logoutKey(id string) string { return "saml:logout:" + id }

// logoutTTL bounds a logout round trip through every SP.
const logoutTTL = 10 * time.Minute

// serveSLO receives LogoutRequests from SPs, and LogoutResponses to the
// LogoutRequests Garde sent while propagating a logout.
func (p *IdP) serveSLO(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxEncodedBytes)
	param := "SAMLRequest"
	if r.Method == http.MethodGet && r.URL.Query().Has("SAMLResponse") {
		param = "SAMLResponse"
	} else if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil && r.PostForm.Has("SAMLResponse") {
			param = "SAMLResponse"
		}
	}
	in, err := readInbound(r, param)
	if err != nil {
		p.refused(r, "", reasonOf(err), err, map[string]string{"endpoint": "slo"})
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	if param == "SAMLResponse" {
		p.logoutResponseIn(w, r, in)
		return
	}
	p.logoutRequestIn(w, r, in)
}

// logoutRequestIn handles an SP-initiated logout.
func (p *IdP) logoutRequestIn(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	issuer, err := in.issuerOf()
	if err != nil {
		p.refused(r, "", "malformed", err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	s, ok := p.sps[issuer]
	md := (*spMetadata)(nil)
	if ok {
		md = s.metadata(p.now())
	}
	if md == nil {
		p.refused(r, issuer, "unknown_sp", nil, map[string]string{"endpoint": "slo"})
		p.errorPage(w, r, http.StatusBadRequest, "unknown_client", fmt.Errorf("unknown or unavailable SAML service provider %q", issuer))
		return
	}
	slo, hasSLO := md.sloEndpoint()
	// A LogoutRequest ends a session: it must be signed whenever the SP
	// has registered a key (saml-profiles §4.4.4.1). An SP without keys
	// can only log out the session of the browser that carries the
	// request, and only its own participation must match (below).
	el, _, err := p.verified(in, s, md, len(md.signing) > 0)
	if err != nil {
		p.refused(r, issuer, reasonOf(err), err, map[string]string{"endpoint": "slo"})
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	lr, err := parseLogoutRequest(el)
	if err == nil && lr.Issuer != issuer {
		err = fmt.Errorf("%w: issuer %q of the signed request is not %q", ErrSignature, lr.Issuer, issuer)
	}
	if err == nil && lr.Version != "2.0" {
		err = malformed("version %q", lr.Version)
	}
	if err == nil && lr.Destination != "" && lr.Destination != p.url(PathSLO) {
		err = malformed("Destination %q is not %s", lr.Destination, p.url(PathSLO))
	}
	if err == nil {
		err = p.checkTimes(lr.IssueInstant)
	}
	if err == nil && !lr.NotOnOrAfter.IsZero() && !p.now().Before(lr.NotOnOrAfter.Add(p.o.ClockSkew)) {
		err = errors.New("the LogoutRequest has expired (NotOnOrAfter)")
	}
	if err == nil {
		err = p.consumeID(r, "logout", issuer, lr.ID)
	}
	if err != nil {
		p.refused(r, issuer, reasonOf(err), err, map[string]string{"endpoint": "slo"})
		if lr != nil && hasSLO {
			b, berr := p.logoutResponse(s, slo.Location, lr.ID, crewjam.StatusRequester, crewjam.StatusRequestDenied)
			if berr == nil {
				p.sendToSP(w, r, s, slo, "SAMLResponse", b, in.relayState, true)
				return
			}
		}
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}

	// Find the session: the browser's, if this SP took part in it with
	// that NameID; else the one the SessionIndex names (the browser lost
	// its cookie).
	sess, parts, how := p.findSession(r, issuer, lr)
	state := logoutState{Origin: issuer, OriginReqID: lr.ID, OriginRelay: in.relayState}
	if sess != nil {
		state.Person, state.SessionID = sess.Subject, sess.ID
		for _, pt := range parts {
			if pt.SP != issuer {
				state.Remaining = append(state.Remaining, pt)
			}
		}
		_ = p.o.Ephemeral.Delete(ctx, participantsKey(sess.ID))
		p.audit(r, store.AuditEvent{Type: audit.Logout, Person: sess.Subject, App: issuer, Outcome: audit.Success, SessionID: sess.ID,
			Details: map[string]string{"how": "saml_sp", "found_by": how}})
		p.audit(r, store.AuditEvent{Type: EventLogout, Person: sess.Subject, App: issuer, Outcome: audit.Success, SessionID: sess.ID,
			Details: map[string]string{"request_id": lr.ID, "participants": fmt.Sprint(len(parts))}})
	} else {
		p.audit(r, store.AuditEvent{Type: EventLogout, App: issuer, Outcome: audit.Success,
			Details: map[string]string{"request_id": lr.ID, "session": "none"}})
	}
	p.cookiesClear(w)
	p.nextLogout(w, r, newID(), &state)
}

func (p *IdP) cookiesClear(w http.ResponseWriter) { p.o.Cookies.Clear(w, flow.CookieSession) }

// findSession ends and returns the session a LogoutRequest is about, with
// its SAML participants.
func (p *IdP) findSession(r *http.Request, issuer string, lr *LogoutRequest) (*session.Session, []participant, string) {
	ctx := r.Context()
	matches := func(sid string) []participant {
		b, err := p.o.Ephemeral.Get(ctx, participantsKey(sid))
		if err != nil {
			return nil
		}
		var parts []participant
		if json.Unmarshal(b, &parts) != nil {
			return nil
		}
		for _, pt := range parts {
			if pt.SP == issuer && pt.NameID == lr.NameID &&
				(len(lr.SessionIndexes) == 0 || contains(lr.SessionIndexes, pt.SessionIndex)) {
				return parts
			}
		}
		return nil
	}
	if secret, ok := p.o.Cookies.Get(r, flow.CookieSession); ok {
		if s, err := p.o.Sessions.Get(ctx, secret); err == nil {
			if parts := matches(s.ID); parts != nil {
				if ended, err := p.o.Sessions.End(ctx, secret); err == nil {
					return ended, parts, "cookie"
				}
			}
		}
	}
	for _, si := range lr.SessionIndexes {
		sid, err := p.o.Ephemeral.Get(ctx, sessionIndexKey(si))
		if err != nil {
			continue
		}
		if parts := matches(string(sid)); parts != nil {
			if ended, err := p.o.Sessions.EndByID(ctx, string(sid)); err == nil {
				return ended, parts, "session_index"
			}
		}
	}
	return nil, nil, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// nextLogout sends the browser to the next SP still in the session, or,
// when none is left, answers the SP that started the logout.
func (p *IdP) nextLogout(w http.ResponseWriter, r *http.Request, stateID string, st *logoutState) {
	ctx := r.Context()
	for len(st.Remaining) > 0 {
		pt := st.Remaining[0]
		st.Remaining = st.Remaining[1:]
		s, ok := p.sps[pt.SP]
		var md *spMetadata
		if ok {
			md = s.metadata(p.now())
		}
		var slo endpoint
		if md != nil {
			slo, ok = md.sloEndpoint()
		}
		if md == nil || !ok {
			st.Partial = true // this SP cannot be told
			continue
		}
		id, msg, err := p.logoutRequest(s, slo.Location, pt.NameID, pt.Format, pt.SessionIndex)
		if err != nil {
			p.log.Error("building a LogoutRequest failed", "sp", pt.SP, "err", err)
			st.Partial = true
			continue
		}
		st.Pending, st.PendingSP = id, pt.SP
		b, _ := json.Marshal(st)
		if err := p.o.Ephemeral.Set(ctx, logoutKey(stateID), b, logoutTTL); err != nil {
			p.log.Error("saving logout state failed", "err", err)
			st.Partial = true
			break
		}
		p.sendToSP(w, r, s, slo, "SAMLRequest", msg, stateID, false)
		return
	}
	_ = p.o.Ephemeral.Delete(ctx, logoutKey(stateID))
	if st.Origin == "" && st.Next != "" {
		http.Redirect(w, r, st.Next, http.StatusSeeOther)
		return
	}
	origin, ok := p.sps[st.Origin]
	var md *spMetadata
	if ok {
		md = origin.metadata(p.now())
	}
	var slo endpoint
	if md != nil {
		slo, ok = md.sloEndpoint()
	}
	if md == nil || !ok {
		p.o.Pages.Render(w, r, http.StatusOK, web.PageLoggedOut, web.LoggedOutPage{})
		return
	}
	sub := ""
	if st.Partial {
		sub = crewjam.StatusPartialLogout
	}
	b, err := p.logoutResponse(origin, slo.Location, st.OriginReqID, crewjam.StatusSuccess, sub)
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	p.sendToSP(w, r, origin, slo, "SAMLResponse", b, st.OriginRelay, true)
}

// logoutResponseIn continues a propagated logout when an SP answers.
func (p *IdP) logoutResponseIn(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	stateID := in.relayState
	raw, err := p.o.Ephemeral.Get(ctx, logoutKey(stateID))
	if err != nil || stateID == "" {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", fmt.Errorf("no logout in progress for this response: %v", err))
		return
	}
	var st logoutState
	if err := json.Unmarshal(raw, &st); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	issuer, _ := in.issuerOf()
	s, ok := p.sps[issuer]
	var md *spMetadata
	if ok {
		md = s.metadata(p.now())
	}
	if md == nil || issuer != st.PendingSP {
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", fmt.Errorf("LogoutResponse from %q, expected %q", issuer, st.PendingSP))
		return
	}
	// A signed response must verify; an unsigned one only moves this
	// logout on, and only if it answers the request Garde sent.
	el, _, err := p.verified(in, s, md, false)
	var resp *LogoutResponse
	if err == nil {
		resp, err = parseLogoutResponse(el)
	}
	if err == nil && resp.InResponseTo != st.Pending {
		err = fmt.Errorf("InResponseTo %q does not answer %q", resp.InResponseTo, st.Pending)
	}
	if err != nil {
		p.refused(r, issuer, reasonOf(err), err, map[string]string{"endpoint": "slo"})
		st.Partial = true
	} else if resp.Status != crewjam.StatusSuccess {
		st.Partial = true
	}
	// Take, not Get: a response replayed cannot advance the logout twice.
	if _, err := p.o.Ephemeral.Take(ctx, logoutKey(stateID)); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	st.Pending, st.PendingSP = "", ""
	p.nextLogout(w, r, stateID, &st)
}
