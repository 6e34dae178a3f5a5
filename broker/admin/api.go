package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/web"
)

type apiFunc func(w http.ResponseWriter, r *http.Request, p *Principal)

// maxAPIBody bounds a JSON request body.
const maxAPIBody = 64 << 10

// api authenticates and authorises a JSON API call: a bearer token of an
// automation client, or the console cookie (with the CSRF header on
// unsafe methods). Not authenticated: 401; authenticated without the
// permission: 403.
func (c *Console) api(perm Permission, f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var p *Principal
		if h := r.Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || token == "" || len(token) > 4096 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="garde-admin"`)
				apiError(w, http.StatusUnauthorized, "invalid_token")
				return
			}
			var status int
			if p, status = c.fromBearer(ctx, token); p == nil {
				if status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="garde-admin", error="invalid_token"`)
				}
				apiError(w, status, map[int]string{http.StatusUnauthorized: "invalid_token", http.StatusForbidden: "forbidden"}[status])
				return
			}
		} else {
			var err error
			p, err = c.fromCookie(ctx, r)
			if errors.Is(err, errNoConsole) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="garde-admin"`)
				apiError(w, http.StatusUnauthorized, "unauthenticated")
				return
			} else if err != nil {
				c.o.Logger.Error("admin API: console session", "err", err)
				apiError(w, http.StatusServiceUnavailable, "unavailable")
				return
			}
			if r.Method != http.MethodGet && !c.checkCSRF(p, r.Header.Get(CSRFHeader)) {
				apiError(w, http.StatusForbidden, "csrf_failed")
				return
			}
		}
		if !Can(p.Roles, perm) {
			apiError(w, http.StatusForbidden, "forbidden")
			return
		}
		f(w, r, p)
	}
}

func apiError(w http.ResponseWriter, status int, code string) {
	if code == "" {
		code = "error"
	}
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// opError answers an operation's error.
func (c *Console) opError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		c.o.Logger.Error("admin API", "err", err)
	}
	apiError(w, status, map[int]string{http.StatusNotFound: "not_found", http.StatusBadRequest: "invalid_request",
		http.StatusConflict: "conflict", http.StatusInternalServerError: "server_error"}[status])
}

// decode reads a JSON body into v: unknown fields and trailing data are
// refused, and the body is bounded.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		apiError(w, http.StatusUnsupportedMediaType, "expected application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_json")
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "invalid_json")
		return false
	}
	return true
}

func (c *Console) apiWhoami(w http.ResponseWriter, r *http.Request, p *Principal) {
	writeJSON(w, http.StatusOK, p)
}

func (c *Console) apiSessions(w http.ResponseWriter, r *http.Request, p *Principal) {
	q := r.URL.Query()
	subject := q.Get("subject")
	if subject == "" {
		subject = c.resolveSubject(r.Context(), q.Get("q"))
	}
	if subject == "" {
		apiError(w, http.StatusNotFound, "not_found")
		return
	}
	list, err := c.sessionsOf(r.Context(), subject)
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "sessions": list})
}

func (c *Console) apiSessionRevoke(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		SID string `json:"sid"`
	}
	if !decode(w, r, &in) {
		return
	}
	if err := c.revokeSession(r.Context(), p, r, in.SID); err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": 1})
}

func (c *Console) apiSessionRevokeAll(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		Subject string `json:"subject"`
	}
	if !decode(w, r, &in) {
		return
	}
	n, err := c.revokeAll(r.Context(), p, r, in.Subject)
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (c *Console) apiPeople(w http.ResponseWriter, r *http.Request, p *Principal) {
	refs, err := c.findPeople(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		c.opError(w, err)
		return
	}
	if refs == nil {
		refs = []PersonRef{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"people": refs})
}

func (c *Console) apiPerson(w http.ResponseWriter, r *http.Request, p *Principal) {
	per, err := c.person(r.Context(), r.URL.Query().Get("subject"))
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, per)
}

func (c *Console) apiKeyRevoke(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		Subject string `json:"subject"`
		ID      string `json:"id"`
	}
	if !decode(w, r, &in) {
		return
	}
	n, err := c.revokeKeys(r.Context(), p, r, in.Subject, in.ID)
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (c *Console) apiCode(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		Subject string `json:"subject"`
	}
	if !decode(w, r, &in) {
		return
	}
	code, exp, err := c.issueCode(r.Context(), p, r, in.Subject)
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": code, "expires": exp.Format(time.RFC3339)})
}

func (c *Console) apiUnlink(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		Subject       string `json:"subject"`
		Source        string `json:"source"`
		SourceSubject string `json:"source_subject"`
	}
	if !decode(w, r, &in) {
		return
	}
	if err := c.unlink(r.Context(), p, r, in.Subject, in.Source, in.SourceSubject); err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": 1})
}

func (c *Console) apiAudit(w http.ResponseWriter, r *http.Request, p *Principal) {
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		c.opError(w, err)
		return
	}
	q.Limit = auditPageSize
	events, err := c.o.AuditLog.ListAuditEvents(r.Context(), q)
	if err != nil {
		c.opError(w, err)
		return
	}
	out := make([]any, 0, len(events))
	var next int64
	for _, e := range events {
		out = append(out, auditJSON(e))
		next = e.ID
	}
	resp := map[string]any{"events": out}
	if len(events) == auditPageSize {
		resp["next_after"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}

func (c *Console) apiAuditExport(w http.ResponseWriter, r *http.Request, p *Principal) {
	c.auditExport(w, r, p)
}

func (c *Console) apiEmergency(w http.ResponseWriter, r *http.Request, p *Principal) {
	items, err := c.emergencyQueue(r.Context())
	if err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pending": items})
}

func (c *Console) apiEmergencyAck(w http.ResponseWriter, r *http.Request, p *Principal) {
	var in struct {
		EventID int64  `json:"event_id"`
		Comment string `json:"comment"`
	}
	if !decode(w, r, &in) {
		return
	}
	if err := c.ackEmergency(r.Context(), p, r, in.EventID, in.Comment); err != nil {
		c.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reviewed": in.EventID})
}

func (c *Console) apiApps(w http.ResponseWriter, r *http.Request, p *Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"apps": c.apps(web.Language(r))})
}

func auditJSON(e store.AuditEvent) audit.JSONEvent { return audit.ToJSON(e) }
