package flow

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/web"
)

// UpstreamLogouter is a redirect connector whose provider can end its own
// session (RP-initiated logout at Pro Santé Connect).
type UpstreamLogouter interface {
	EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (string, error)
}

// LogoutTokenVerifier is a redirect connector whose provider sends
// back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0).
type LogoutTokenVerifier interface {
	// VerifyLogoutToken checks the token and returns its sub and sid
	// (either may be empty, not both) and jti.
	VerifyLogoutToken(ctx context.Context, raw string) (subject, sessionID, jti string, err error)
}

// Paths of upstream logout.
const (
	// PathUpstreamLoggedOut is where the provider sends the browser back
	// after ending its session: the post_logout_redirect_uri registered
	// there.
	PathUpstreamLoggedOut = "/logout/upstream"
	// PathBackchannel receives the provider's logout tokens:
	// PathBackchannel + "/" + source id is the backchannel_logout_uri
	// registered there.
	PathBackchannel = "/logout/backchannel"
)

func upSIDKey(source, sid string) string { return "upsid:" + source + ":" + sid }
func upSubKey(source, sub string) string { return "upsub:" + source + ":" + sub }
func upLogoutKey(state string) string    { return "uplogout:" + state }

// RegisterUpstreamLogout mounts the upstream logout endpoints. The
// back-channel endpoint is server to server: no cookie, no CSRF token, the
// logout token's signature is the authentication.
func (e *Engine) RegisterUpstreamLogout(mux *http.ServeMux) {
	if len(e.redirects) == 0 {
		return
	}
	mux.HandleFunc("GET "+PathUpstreamLoggedOut, e.upstreamLoggedOut)
	mux.HandleFunc("POST "+PathBackchannel+"/{source}", e.backchannelLogout)
}

// indexUpstream remembers which Garde session an upstream session opened,
// for back-channel logout: by the provider's sid (one session), and by its
// sub (every session of the person, for a logout token without sid).
func (e *Engine) indexUpstream(ctx context.Context, s *session.Session, up *connectors.Upstream) {
	if up == nil || up.Connector == "" {
		return
	}
	now := e.now()
	ttl := s.ExpiresAt.Sub(now)
	if ttl <= 0 {
		return
	}
	var err error
	if up.SessionID != "" {
		err = e.eph.Set(ctx, upSIDKey(up.Connector, up.SessionID), []byte(s.ID), ttl)
	}
	if up.Subject != "" {
		err = errors.Join(err, e.addSubjectSession(ctx, upSubKey(up.Connector, up.Subject), s, now))
	}
	if err != nil {
		e.log.Error("indexing the upstream session failed: back-channel logout will not find it", "err", err)
	}
}

// maxSubjectSessions bounds the Garde sessions remembered per upstream
// subject: a person has a few workstations, not hundreds.
const maxSubjectSessions = 32

// subjectSessions is the value under upSubKey: "sessionID@unixExpiry"
// entries separated by spaces. Each carries its expiry so that the key can
// live as long as its longest-lived session and drop the ended ones.
func parseSubjectSessions(b []byte, now time.Time) map[string]int64 {
	out := map[string]int64{}
	for _, f := range strings.Fields(string(b)) {
		id, exp, ok := strings.Cut(f, "@")
		n, err := strconv.ParseInt(exp, 10, 64)
		if !ok || id == "" || err != nil || n <= now.Unix() {
			continue
		}
		out[id] = n
	}
	return out
}

// addSubjectSession adds s to the sessions of one upstream subject. Two
// sign-ins of the same person at the same instant may race here and keep
// only one of the two sessions; a logout token with a sid (PSC sends one)
// still finds the other.
func (e *Engine) addSubjectSession(ctx context.Context, key string, s *session.Session, now time.Time) error {
	prev, err := e.eph.Get(ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	sessions := parseSubjectSessions(prev, now)
	sessions[s.ID] = s.ExpiresAt.Unix()
	ids := slices.SortedFunc(maps.Keys(sessions), func(a, b string) int { return cmp.Compare(sessions[a], sessions[b]) })
	if len(ids) > maxSubjectSessions {
		ids = ids[len(ids)-maxSubjectSessions:]
	}
	var last int64
	entries := make([]string, 0, len(ids))
	for _, id := range ids {
		entries = append(entries, id+"@"+strconv.FormatInt(sessions[id], 10))
		last = max(last, sessions[id])
	}
	return e.eph.Set(ctx, key, []byte(strings.Join(entries, " ")), time.Unix(last, 0).Sub(now)+time.Second)
}

// UpstreamLogout returns where to send the browser so that the provider
// ends the session that opened s ("" when there is none to end); the
// provider then sends the browser back to PathUpstreamLoggedOut, which
// goes on to next (a URL Garde already validated), or shows "signed out".
func (e *Engine) UpstreamLogout(ctx context.Context, s *session.Session, next string) (string, error) {
	up := s.Identity.Upstream
	if up == nil || up.IDToken == "" {
		return "", nil
	}
	src, ok := e.redirectSource(up.Connector)
	if !ok {
		return "", nil
	}
	lo, ok := src.Connector.(UpstreamLogouter)
	if !ok {
		return "", nil
	}
	state := randomID(24)
	if err := e.eph.Set(ctx, upLogoutKey(state), []byte(next), 10*time.Minute); err != nil {
		return "", err
	}
	return lo.EndSessionURL(ctx, up.IDToken, e.publicURL+PathUpstreamLoggedOut, state)
}

func (e *Engine) upstreamLoggedOut(w http.ResponseWriter, r *http.Request) {
	next, err := e.eph.Take(r.Context(), upLogoutKey(r.URL.Query().Get("state")))
	if err == nil && len(next) > 0 {
		http.Redirect(w, r, string(next), http.StatusSeeOther)
		return
	}
	e.pages.Render(w, r, http.StatusOK, web.PageLoggedOut, web.LoggedOutPage{})
}

// backchannelLogout ends the Garde sessions an upstream session opened.
func (e *Engine) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	src, ok := e.redirectSource(r.PathValue("source"))
	v, canVerify := src.Connector.(LogoutTokenVerifier)
	if !ok || !canVerify {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
		backchannelError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	sub, sid, jti, err := v.VerifyLogoutToken(ctx, r.PostForm.Get("logout_token"))
	if err != nil {
		e.log.Info("back-channel logout token refused", "connector", src.ID, "err", err)
		backchannelError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if jti != "" {
		fresh, err := e.eph.SetNX(ctx, "uplogoutjti:"+src.ID+":"+jti, []byte{1}, 24*time.Hour)
		if err != nil {
			backchannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
			return
		}
		if !fresh {
			e.log.Info("back-channel logout token replayed", "connector", src.ID)
			backchannelError(w, http.StatusBadRequest, "invalid_request")
			return
		}
	}
	// OpenID Connect Back-Channel Logout 1.0 §2.4: a sid names one
	// session; only without one do all the person's sessions end (a
	// professional logging out of PSC on one workstation must not be
	// logged out of Garde on another).
	var gardeSIDs []string
	if sid != "" {
		if b, err := e.eph.Take(ctx, upSIDKey(src.ID, sid)); err == nil && len(b) > 0 {
			gardeSIDs = append(gardeSIDs, string(b))
		}
	} else {
		if b, err := e.eph.Take(ctx, upSubKey(src.ID, sub)); err == nil {
			gardeSIDs = slices.Collect(maps.Keys(parseSubjectSessions(b, e.now())))
		}
	}
	for _, gardeSID := range gardeSIDs {
		e.signout.End(ctx, func() (*session.Session, error) { return e.sessions.EndByID(ctx, gardeSID) },
			signout.Event{How: signout.ByBackchannel, ClientAddr: clientaddr.From(r).String()})
	}
	w.WriteHeader(http.StatusOK)
}

// backchannelError answers the provider as OpenID Connect Back-Channel
// Logout 1.0 §2.8 says: a status and an OAuth error code.
func backchannelError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
}
