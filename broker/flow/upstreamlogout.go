package flow

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
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
// for back-channel logout.
func (e *Engine) indexUpstream(ctx context.Context, s *session.Session, up *connectors.Upstream) {
	if up == nil || up.Connector == "" {
		return
	}
	ttl := s.ExpiresAt.Sub(e.now())
	if ttl <= 0 {
		return
	}
	for _, k := range []string{upSIDKey(up.Connector, up.SessionID), upSubKey(up.Connector, up.Subject)} {
		if k == upSIDKey(up.Connector, "") || k == upSubKey(up.Connector, "") {
			continue
		}
		if err := e.eph.Set(ctx, k, []byte(s.ID), ttl); err != nil {
			e.log.Error("indexing the upstream session failed: back-channel logout will not find it", "err", err)
		}
	}
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
	var keys []string
	if sid != "" {
		keys = append(keys, upSIDKey(src.ID, sid))
	}
	if sub != "" {
		keys = append(keys, upSubKey(src.ID, sub))
	}
	for _, k := range keys {
		gardeSID, err := e.eph.Take(ctx, k)
		if errors.Is(err, nil) && len(gardeSID) > 0 {
			e.signout.End(ctx, func() (*session.Session, error) { return e.sessions.EndByID(ctx, string(gardeSID)) },
				signout.Event{How: signout.ByBackchannel, ClientAddr: clientaddr.From(r).String()})
		}
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
