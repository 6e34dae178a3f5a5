package psctest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CIBA (OpenID Connect Client-Initiated Backchannel Authentication) as ANS's
// e-Santé proxy uses it: login_hint = idNat, a two-digit binding_message
// shown on the card reader or the e-CPS app, PSC's own channel parameter.
const (
	CIBAExpiresIn = 120 * time.Second
	CIBAInterval  = time.Second
)

type cibaRequest struct {
	idNat    string
	channel  string
	binding  string
	state    string // pending, approved, denied
	expires  time.Time
	lastPoll time.Time
	grant    *grant
}

var bindingRE = regexp.MustCompile(`^[0-9]{2}$`)

func (s *Sim) cibaAuth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST expected")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if ok, desc := s.authenticateClient(r); !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", desc)
		return
	}
	f := r.PostForm
	scopes := strings.Fields(f.Get("scope"))
	switch {
	case !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "scope_all"):
		oauthError(w, http.StatusBadRequest, "invalid_scope", "scope must contain openid and scope_all")
		return
	case f.Get("login_hint") == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "missing login_hint")
		return
	case !bindingRE.MatchString(f.Get("binding_message")):
		oauthError(w, http.StatusBadRequest, "invalid_binding_message", "binding_message must be two digits")
		return
	case f.Get("channel") != "CARD" && f.Get("channel") != "MOBILE":
		oauthError(w, http.StatusBadRequest, "invalid_request", "channel must be CARD or MOBILE")
		return
	case !slices.Contains(strings.Fields(f.Get("acr_values")), "eidas1"):
		oauthError(w, http.StatusBadRequest, "invalid_request", "acr_values must be eidas1")
		return
	}
	id := randomID(24)
	s.mu.Lock()
	s.cibas[id] = &cibaRequest{
		idNat:   f.Get("login_hint"),
		channel: f.Get("channel"),
		binding: f.Get("binding_message"),
		state:   "pending",
		expires: s.now().Add(CIBAExpiresIn),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": id,
		"expires_in":  int(CIBAExpiresIn.Seconds()),
		"interval":    int(CIBAInterval.Seconds()),
	})
}

// PendingDecoupled returns the auth_req_ids waiting for the person, with
// their binding messages.
func (s *Sim) PendingDecoupled() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, c := range s.cibas {
		if c.state == "pending" {
			out[id] = c.binding
		}
	}
	return out
}

// ApproveDecoupled plays the person approving on the card or app: the
// next user (with the requested idNat and channel as authMode) signs in.
func (s *Sim) ApproveDecoupled(authReqID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cibas[authReqID]
	if c == nil || c.state != "pending" {
		return fmt.Errorf("psctest: no pending decoupled sign-in %q", authReqID)
	}
	u := s.next
	u.IDNat, u.AuthMode = c.idNat, c.channel
	c.state = "approved"
	c.grant = &grant{user: u, sid: uuid(), authTime: s.now()}
	return nil
}

// DenyDecoupled plays the person refusing.
func (s *Sim) DenyDecoupled(authReqID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cibas[authReqID]
	if c == nil || c.state != "pending" {
		return fmt.Errorf("psctest: no pending decoupled sign-in %q", authReqID)
	}
	c.state = "denied"
	return nil
}

func (s *Sim) cibaGrant(w http.ResponseWriter, r *http.Request) {
	id := r.PostForm.Get("auth_req_id")
	now := s.now()
	s.mu.Lock()
	c := s.cibas[id]
	var (
		state string
		fast  bool
	)
	if c != nil {
		state = c.state
		fast = !c.lastPoll.IsZero() && now.Sub(c.lastPoll) < CIBAInterval
		c.lastPoll = now
		if state == "approved" || state == "denied" || !now.Before(c.expires) {
			delete(s.cibas, id) // one answer per request
		}
	}
	s.mu.Unlock()
	switch {
	case c == nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid Auth Req ID")
	case !now.Before(c.expires):
		oauthError(w, http.StatusBadRequest, "expired_token", "The auth_req_id has expired")
	case state == "denied":
		oauthError(w, http.StatusBadRequest, "access_denied", "The end-user denied the authorization request")
	case state == "approved":
		s.issueTokens(w, c.grant)
	case fast:
		oauthError(w, http.StatusBadRequest, "slow_down", "Too early to poll")
	default:
		oauthError(w, http.StatusBadRequest, "authorization_pending", "The authorization request is still pending")
	}
}
