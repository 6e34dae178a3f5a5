package saml

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
)

// maxRelayState bounds the RelayState Garde keeps and returns (the
// bindings ask senders for at most 80 bytes; some SPs send a URL).
const maxRelayState = 1024

// inbound is a message as received, before any trust: its binding, root
// element, relay state and (HTTP-Redirect) query signature.
type inbound struct {
	binding    string
	root       *etree.Element
	query      *redirectQuery
	relayState string
}

// readInbound decodes a message of either binding. param is SAMLRequest
// or SAMLResponse.
func readInbound(r *http.Request, param string) (*inbound, error) {
	in := &inbound{}
	var raw []byte
	switch r.Method {
	case http.MethodGet:
		q, err := parseRedirectQuery(r.URL.RawQuery, param)
		if err != nil {
			return nil, err
		}
		b, err := decodeBase64(q.Message)
		if err != nil {
			return nil, err
		}
		if raw, err = inflate(b); err != nil {
			return nil, err
		}
		in.binding, in.query, in.relayState = BindingRedirect, q, q.RelayState
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return nil, malformed("unreadable form: %v", err)
		}
		vals := r.PostForm[param]
		if len(vals) != 1 {
			return nil, malformed("expected one %s field, got %d", param, len(vals))
		}
		if len(r.PostForm["RelayState"]) > 1 {
			return nil, malformed("RelayState is given twice")
		}
		var err error
		if raw, err = decodeBase64(vals[0]); err != nil {
			return nil, err
		}
		in.binding, in.relayState = BindingPOST, r.PostForm.Get("RelayState")
	default:
		return nil, malformed("method %s is not a SAML binding", r.Method)
	}
	if len(in.relayState) > maxRelayState {
		return nil, malformed("RelayState longer than %d bytes", maxRelayState)
	}
	doc, err := parseXML(raw)
	if err != nil {
		return nil, err
	}
	in.root = doc.Root()
	if err := checkWrapping(in.root); err != nil {
		return nil, err
	}
	return in, nil
}

// issuerOf reads the Issuer of an unverified message, only to find which
// SP's keys to verify it with.
func (in *inbound) issuerOf() (string, error) {
	s, err := text(in.root, nsAssertion, "Issuer")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", malformed("no Issuer")
	}
	return s, nil
}

// verified returns the element to read the message from: the one the
// signature covers when signed, else the root (only when the SP may send
// it unsigned). signed says which.
func (p *IdP) verified(in *inbound, s *sp, md *spMetadata, required bool) (el *etree.Element, signed bool, err error) {
	switch in.binding {
	case BindingRedirect:
		// saml-bindings §3.4.4.1: the XML signature must be removed for
		// this binding; one left in is ambiguous (which key, which bytes).
		if sig, _ := child(in.root, nsDSig, "Signature"); sig != nil {
			return nil, false, malformed("an HTTP-Redirect message must not carry an XML signature")
		}
		if in.query.Signature == nil {
			if required {
				return nil, false, fmt.Errorf("%w: the request is not signed, and %s requires signed requests", ErrSignature, s.EntityID)
			}
			return in.root, false, nil
		}
		if err := in.query.verify(md.signing, s.AllowSHA1); err != nil {
			return nil, false, err
		}
		return in.root, true, nil
	default:
		sig, err := child(in.root, nsDSig, "Signature")
		if err != nil {
			return nil, false, err
		}
		if sig == nil {
			if required {
				return nil, false, fmt.Errorf("%w: the request is not signed, and %s requires signed requests", ErrSignature, s.EntityID)
			}
			return in.root, false, nil
		}
		v, err := verifyEnveloped(in.root, md.signing, s.AllowSHA1, p.now())
		if err != nil {
			return nil, false, err
		}
		return v, true, nil
	}
}

// checkTimes bounds IssueInstant: not from the future beyond the skew, not
// older than RequestMaxAge (plus skew).
func (p *IdP) checkTimes(issued time.Time) error {
	now := p.now()
	if issued.After(now.Add(p.o.ClockSkew)) {
		return fmt.Errorf("IssueInstant %s is in the future", issued.Format(time.RFC3339))
	}
	if issued.Before(now.Add(-p.o.RequestMaxAge - p.o.ClockSkew)) {
		return fmt.Errorf("IssueInstant %s is too old", issued.Format(time.RFC3339))
	}
	return nil
}

// consumeID records a request ID in the replay cache, cluster-wide (SET
// NX in the ephemeral store). A second use is refused. The entry outlives
// the window in which checkTimes accepts the request.
func (p *IdP) consumeID(r *http.Request, kind, spID, id string) error {
	sum := sha256.Sum256([]byte(kind + "\x00" + spID + "\x00" + id))
	key := "saml:replay:" + base64.RawURLEncoding.EncodeToString(sum[:])
	ok, err := p.o.Ephemeral.SetNX(r.Context(), key, []byte{1}, p.o.RequestMaxAge+3*p.o.ClockSkew)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if !ok {
		return errReplay
	}
	return nil
}

var errReplay = errors.New("request ID already used (replay)")

// refused audits a refused request.
func (p *IdP) refused(r *http.Request, app, reason string, err error, details map[string]string) {
	if details == nil {
		details = map[string]string{}
	}
	if err != nil {
		details["error"] = err.Error()
	}
	p.audit(r, store.AuditEvent{Type: EventRequestRefused, App: app, Outcome: audit.Failure, Reason: reason, Details: details})
}

// reasonOf maps an error to an audit reason.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrSignature):
		return "signature_invalid"
	case errors.Is(err, errReplay):
		return "replay"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return "invalid_request"
}

// serveSSO receives an AuthnRequest (HTTP-Redirect or HTTP-POST).
func (p *IdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxEncodedBytes)
	in, err := readInbound(r, "SAMLRequest")
	if err != nil {
		p.refused(r, "", reasonOf(err), err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	issuer, err := in.issuerOf()
	if err != nil {
		p.refused(r, "", "malformed", err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	s, ok := p.sps[issuer]
	if !ok {
		p.refused(r, issuer, "unknown_sp", nil, nil)
		p.errorPage(w, r, http.StatusBadRequest, "unknown_client", fmt.Errorf("unknown SAML service provider %q", issuer))
		return
	}
	md := s.metadata(p.now())
	if md == nil {
		p.refused(r, issuer, "sp_unavailable", nil, nil)
		p.errorPage(w, r, http.StatusServiceUnavailable, "saml_sp_unavailable", fmt.Errorf("service provider %s has no valid metadata", issuer))
		return
	}
	el, signed, err := p.verified(in, s, md, s.requireSigned(md))
	if err != nil {
		p.refused(r, issuer, reasonOf(err), err, map[string]string{"binding": in.binding})
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	req, err := parseAuthnRequest(el)
	if err != nil {
		p.refused(r, issuer, "malformed", err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	if req.Issuer != issuer {
		// The verified element names another issuer than the one whose
		// keys verified it.
		err := fmt.Errorf("issuer %q of the signed request is not %q", req.Issuer, issuer)
		p.refused(r, issuer, "signature_invalid", err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	// The ACS comes from the registered metadata only. A request naming
	// another URL gets a page, never a response sent there.
	acs, err := md.selectACS(req.ACSURL, req.ACSIndex)
	if err != nil {
		p.refused(r, issuer, "acs_not_registered", err, nil)
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", err)
		return
	}
	// From here the SP and its ACS are known: errors go back to it as
	// SAML status responses.
	fail := func(reason, status, sub string, err error) {
		p.refused(r, issuer, reason, err, map[string]string{"request_id": req.ID})
		p.sendStatus(w, r, s, acs.Location, req.ID, in.relayState, status, sub, err)
	}
	if req.Version != "2.0" {
		fail("version", crewjam.StatusVersionMismatch, "", fmt.Errorf("version %q", req.Version))
		return
	}
	if req.Destination != "" && req.Destination != p.url(PathSSO) || signed && req.Destination == "" {
		// A signed request must say where it was meant to go, so that one
		// signed for another IdP cannot be replayed here.
		fail("destination", crewjam.StatusRequester, "", fmt.Errorf("Destination %q is not %s", req.Destination, p.url(PathSSO)))
		return
	}
	if req.ProtocolBinding != "" && req.ProtocolBinding != BindingPOST {
		fail("binding", crewjam.StatusRequester, crewjam.StatusUnsupportedBinding, fmt.Errorf("ProtocolBinding %q", req.ProtocolBinding))
		return
	}
	if err := p.checkTimes(req.IssueInstant); err != nil {
		fail("clock_skew", crewjam.StatusRequester, crewjam.StatusRequestDenied, err)
		return
	}
	if err := p.consumeID(r, "authn", issuer, req.ID); err != nil {
		fail(reasonOf(err), crewjam.StatusRequester, crewjam.StatusRequestDenied, err)
		return
	}
	if f := req.NameIDFormat; f != "" && f != FormatUnspecified && f != FormatOf(s.NameID) {
		fail("name_id_policy", crewjam.StatusRequester, crewjam.StatusInvalidNameIDPolicy, fmt.Errorf("NameID format %q is not %q", f, FormatOf(s.NameID)))
		return
	}
	ac := authnContext{Comparison: req.Comparison, Classes: req.ClassRefs}
	level, err := ac.requestedLevel()
	if err != nil {
		fail("authn_context", crewjam.StatusResponder, crewjam.StatusNoAuthnContext, fmt.Errorf("%w: %s %v", err, req.Comparison, req.ClassRefs))
		return
	}
	resume := url.Values{
		"sp": {issuer}, "id": {req.ID}, "acs": {acs.Location}, "relay": {in.relayState},
		"cmp": {req.Comparison}, "cls": ac.Classes,
	}
	p.authorize(w, r, s, flow.Request{
		Protocol: Protocol, App: issuer, AppName: s.Name, Requested: level, MaxAge: flow.NoMaxAge,
		// A RequestedAuthnContext is a requirement in SAML: what cannot be
		// reached is NoAuthnContext, not a weaker assertion.
		Essential:  level != assurance.None,
		ForceLogin: req.ForceAuthn, Passive: req.IsPassive, Resume: resume,
	})
}

// authorize hands a validated request to the sign-in flow and answers the
// SP when the flow can answer at once.
func (p *IdP) authorize(w http.ResponseWriter, r *http.Request, s *sp, req flow.Request) {
	acs, id, relay := req.Resume.Get("acs"), req.Resume.Get("id"), req.Resume.Get("relay")
	res, err := p.o.Flow.Authorize(w, r, req)
	switch {
	case errors.Is(err, flow.ErrLoginRequired):
		p.refused(r, s.EntityID, "no_passive", nil, map[string]string{"request_id": id})
		p.sendStatus(w, r, s, acs, id, relay, crewjam.StatusResponder, crewjam.StatusNoPassive, err)
	case errors.Is(err, flow.ErrAccessDenied):
		// The flow has audited the policy decision; this records what the
		// SP was told.
		p.refused(r, s.EntityID, "access_denied", err, map[string]string{"request_id": id})
		p.sendStatus(w, r, s, acs, id, relay, crewjam.StatusResponder, deniedStatus(err), err)
	case err != nil:
		p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
	case res.Redirect != "":
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
	default:
		p.issue(w, r, s, req, res.Session)
	}
}

// serveResume completes a flow after sign-in.
func (p *IdP) serveResume(w http.ResponseWriter, r *http.Request) {
	req, sess, err := p.o.Flow.Resume(w, r)
	if err != nil && !errors.Is(err, flow.ErrAccessDenied) {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", err)
		return
	}
	s, ok := p.sps[req.App]
	if !ok || req.Protocol != Protocol {
		p.errorPage(w, r, http.StatusBadRequest, "flow_expired", fmt.Errorf("flow for %q is not a SAML sign-in", req.App))
		return
	}
	md := s.metadata(p.now())
	acs := req.Resume.Get("acs")
	if md == nil || !md.hasACS(acs) {
		// The metadata changed during the sign-in: the ACS is no longer
		// registered, so nothing may go there.
		p.errorPage(w, r, http.StatusServiceUnavailable, "saml_sp_unavailable", fmt.Errorf("ACS %q of %s is no longer registered", acs, s.EntityID))
		return
	}
	if err != nil {
		p.refused(r, s.EntityID, "access_denied", err, map[string]string{"request_id": req.Resume.Get("id")})
		p.sendStatus(w, r, s, acs, req.Resume.Get("id"), req.Resume.Get("relay"), crewjam.StatusResponder, deniedStatus(err), err)
		return
	}
	p.issue(w, r, s, req, sess)
}

// serveIdPInitiated starts an unsolicited sign-in to an SP that allows it:
// GET /saml/idp-initiated?sp=<entityID>[&RelayState=...].
func (p *IdP) serveIdPInitiated(w http.ResponseWriter, r *http.Request) {
	spID := r.URL.Query().Get("sp")
	s, ok := p.sps[spID]
	if !ok {
		p.refused(r, spID, "unknown_sp", nil, map[string]string{"idp_initiated": "true"})
		p.errorPage(w, r, http.StatusNotFound, "unknown_client", fmt.Errorf("unknown SAML service provider %q", spID))
		return
	}
	if !s.IdPInitiated {
		p.refused(r, spID, "idp_initiated_disabled", nil, nil)
		p.errorPage(w, r, http.StatusForbidden, "saml_idp_initiated_disabled", fmt.Errorf("IdP-initiated SSO is off for %s", spID))
		return
	}
	md := s.metadata(p.now())
	if md == nil {
		p.errorPage(w, r, http.StatusServiceUnavailable, "saml_sp_unavailable", fmt.Errorf("service provider %s has no valid metadata", spID))
		return
	}
	relay := r.URL.Query().Get("RelayState")
	if len(relay) > maxRelayState {
		p.errorPage(w, r, http.StatusBadRequest, "saml_bad_request", errors.New("RelayState too long"))
		return
	}
	acs, _ := md.selectACS("", nil)
	p.authorize(w, r, s, flow.Request{
		Protocol: Protocol, App: spID, AppName: s.Name, MaxAge: flow.NoMaxAge,
		Resume: url.Values{"sp": {spID}, "acs": {acs.Location}, "relay": {relay}},
	})
}

// sendStatus answers an SP with a status Response (no assertion). The
// detail goes to the log, never into the response.
func (p *IdP) sendStatus(w http.ResponseWriter, r *http.Request, s *sp, acs, inResponseTo, relay, status, sub string, cause error) {
	p.log.Info("SAML request answered with an error status", "sp", s.EntityID, "status", sub, "err", cause)
	b, err := p.response(s, acs, inResponseTo, status, sub, nil)
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	p.postForm(w, r, acs, "SAMLResponse", b, relay, s.Name)
}

// participant is an SP that received an assertion in a session, kept for
// Single Logout.
type participant struct {
	SP           string `json:"sp"`
	NameID       string `json:"nid"`
	Format       string `json:"fmt"`
	SessionIndex string `json:"si"`
}

func participantsKey(sid string) string { return "saml:sid:" + sid }
func sessionIndexKey(si string) string  { return "saml:si:" + si }

// issue answers an SP with an assertion for sess.
func (p *IdP) issue(w http.ResponseWriter, r *http.Request, s *sp, req flow.Request, sess *session.Session) {
	acs, id, relay := req.Resume.Get("acs"), req.Resume.Get("id"), req.Resume.Get("relay")
	md := s.metadata(p.now())
	if md == nil {
		p.errorPage(w, r, http.StatusServiceUnavailable, "saml_sp_unavailable", fmt.Errorf("service provider %s has no valid metadata", s.EntityID))
		return
	}
	ac := authnContext{Comparison: req.Resume.Get("cmp"), Classes: req.Resume["cls"]}
	class, err := ac.answer(sess.Level)
	if err != nil {
		p.refused(r, s.EntityID, "authn_context", err, map[string]string{"request_id": id, "acr": sess.Level.ACR()})
		p.sendStatus(w, r, s, acs, id, relay, crewjam.StatusResponder, crewjam.StatusNoAuthnContext, err)
		return
	}
	nameID := p.nameID(s, sess)
	if nameID == "" {
		err := fmt.Errorf("the person has no %s for the NameID", s.NameID)
		p.refused(r, s.EntityID, "name_id_unavailable", err, map[string]string{"request_id": id})
		p.sendStatus(w, r, s, acs, id, relay, crewjam.StatusResponder, crewjam.StatusInvalidNameIDPolicy, err)
		return
	}
	el, err := p.assertion(grant{sp: s, acs: acs, inResponseTo: id, session: sess, nameID: nameID, class: class})
	if err == nil && s.EncryptAssertion {
		el, err = p.encrypt(md, el)
	}
	var msg []byte
	if err == nil {
		msg, err = p.response(s, acs, id, crewjam.StatusSuccess, "", el)
	}
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	si := p.sessionIndex(sess.ID)
	if err := p.remember(r, sess, participant{SP: s.EntityID, NameID: nameID, Format: FormatOf(s.NameID), SessionIndex: si}); err != nil {
		// Logout would miss this SP: say so, but the sign-in stands.
		p.log.Error("recording the SAML session participant failed", "sp", s.EntityID, "err", err)
	}
	p.audit(r, store.AuditEvent{
		Type: EventAssertionIssued, Person: sess.Subject, App: s.EntityID, Outcome: audit.Success, SessionID: sess.ID,
		Details: map[string]string{
			"request_id": id, "acs": acs, "authn_context": class, "name_id_format": FormatOf(s.NameID),
			"encrypted": fmt.Sprint(s.EncryptAssertion), "idp_initiated": fmt.Sprint(id == ""),
		},
	})
	p.postForm(w, r, acs, "SAMLResponse", msg, relay, s.Name)
}

// remember adds an SP to the session's participants (for Single Logout).
func (p *IdP) remember(r *http.Request, sess *session.Session, pt participant) error {
	ctx := r.Context()
	ttl := sess.ExpiresAt.Sub(p.now())
	if ttl <= 0 || ttl > p.o.SessionLifetime {
		ttl = p.o.SessionLifetime
	}
	key := participantsKey(sess.ID)
	// Compare-and-swap loop: two SPs signing in at once in one session
	// must both be recorded.
	for range 5 {
		old, err := p.o.Ephemeral.Get(ctx, key)
		var list []participant
		switch {
		case errors.Is(err, store.ErrNotFound):
			old = nil
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(old, &list); err != nil {
				return err
			}
		}
		replaced := false
		for i := range list {
			if list[i].SP == pt.SP {
				list[i], replaced = pt, true
			}
		}
		if !replaced {
			list = append(list, pt)
		}
		next, _ := json.Marshal(list)
		if old == nil {
			ok, err := p.o.Ephemeral.SetNX(ctx, key, next, ttl)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		} else {
			ok, err := p.o.Ephemeral.CompareAndSwap(ctx, key, old, next)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		return p.o.Ephemeral.Set(ctx, sessionIndexKey(pt.SessionIndex), []byte(sess.ID), ttl)
	}
	return errors.New("participants record kept changing")
}

// deniedStatus is the second-level status of a policy refusal: an
// authentication context no accepted method reaches is NoAuthnContext,
// anything else RequestDenied.
func deniedStatus(err error) string {
	var denied *flow.DeniedError
	if errors.As(err, &denied) && denied.Reason == "essential_acr_unreachable" {
		return crewjam.StatusNoAuthnContext
	}
	return crewjam.StatusRequestDenied
}
