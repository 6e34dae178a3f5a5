// Package signout ends SSO sessions the same way whoever asks: the person
// (logout), an application (RP-initiated logout), an upstream provider
// (back-channel logout from Pro Santé Connect) or an admin. Ending a session
// also revokes the refresh tokens issued in it, so that an application
// holding one cannot outlive the sign-out, and is audited with how it
// happened.
package signout

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
)

// How a session ended, in audit events (Details["how"]).
const (
	ByUser        = "user"
	ByApp         = "app"
	ByBackchannel = "backchannel"
	ByAdmin       = "admin"
)

// Signer-out ends sessions.
type Signout struct {
	Sessions *session.Manager
	Refresh  store.RefreshTokens
	Audit    *audit.Recorder
	Log      *slog.Logger
}

// Event is who asked, for the audit event.
type Event struct {
	App        string
	How        string
	ClientAddr string
	// By is the admin who ended the session (How ByAdmin).
	By string
}

// End ends the session end returns (session.Manager.End or EndByID) and
// everything issued in it. It returns the ended session, or nil when there
// was none (already ended, expired).
func (s *Signout) End(ctx context.Context, end func() (*session.Session, error), ev Event) *session.Session {
	sess, err := end()
	if errors.Is(err, session.ErrNoSession) {
		return nil
	}
	if err != nil {
		s.log().Error("ending SSO session failed", "err", err)
		return nil
	}
	n, err := s.Refresh.RevokeRefreshTokensOfSession(ctx, sess.ID)
	if err != nil {
		s.log().Error("revoking the session's refresh tokens failed", "sid", sess.ID, "err", err)
	}
	details := map[string]string{"how": ev.How, "refresh_tokens_revoked": strconv.FormatInt(n, 10)}
	if ev.By != "" {
		details["by"] = ev.By
	}
	s.Audit.Record(store.AuditEvent{
		Type: audit.Logout, Person: sess.Subject, App: ev.App, ClientAddr: ev.ClientAddr,
		Outcome: audit.Success, SessionID: sess.ID, Details: details,
	})
	return sess
}

func (s *Signout) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
