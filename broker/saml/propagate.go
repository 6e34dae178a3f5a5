package saml

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/web"
)

// PathSLOContinue starts, in the browser, the propagation of a logout that
// did not come from a SAML SP (an OpenID Connect application's logout).
const PathSLOContinue = "/saml/slo/continue"

// StartLogout prepares telling the SAML SPs of an ended Garde session that
// it ended (front-channel: the browser carries a LogoutRequest to each),
// then sending the browser to next (a URL Garde chose: an application's
// registered post-logout URI, or the upstream provider's logout). It
// returns the URL that starts it, or "" when no SAML SP took part in the
// session.
func (p *IdP) StartLogout(ctx context.Context, sid, next string) (string, error) {
	b, err := p.o.Ephemeral.Take(ctx, participantsKey(sid))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var parts []participant
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) == 0 {
		return "", err
	}
	stateID := newID()
	st := logoutState{Remaining: parts, Next: next, SessionID: sid}
	sb, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	if err := p.o.Ephemeral.Set(ctx, logoutKey(stateID), sb, logoutTTL); err != nil {
		return "", err
	}
	return p.url(PathSLOContinue) + "?state=" + stateID, nil
}

// serveSLOContinue sends the browser to the first SP of a logout that
// StartLogout prepared.
func (p *IdP) serveSLOContinue(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("state")
	b, err := p.o.Ephemeral.Get(r.Context(), logoutKey(id))
	var st logoutState
	if err != nil || id == "" || json.Unmarshal(b, &st) != nil || st.Origin != "" || st.Pending != "" {
		p.o.Pages.Render(w, r, http.StatusOK, web.PageLoggedOut, web.LoggedOutPage{})
		return
	}
	p.nextLogout(w, r, id, &st)
}
