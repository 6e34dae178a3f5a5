package admin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/web"
)

type pageFunc func(w http.ResponseWriter, r *http.Request, p *Principal)

// page authenticates and authorises a console page or form: no console
// session sends the browser to sign in (GET) or refuses (POST); a missing
// permission is a 403 page; a form needs its CSRF token.
func (c *Console) page(perm Permission, f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := c.fromCookie(r.Context(), r)
		if err != nil {
			if !errors.Is(err, errNoConsole) {
				c.failPage(w, r, http.StatusServiceUnavailable, "admin_unavailable", err)
				return
			}
			if r.Method != http.MethodGet {
				c.o.Pages.Render(w, r, http.StatusUnauthorized, web.PageError, web.ErrorPage{MessageKey: web.MsgSessionExpired})
				return
			}
			http.Redirect(w, r, PathLogin+"?return="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !Can(p.Roles, perm) {
			c.o.Pages.Render(w, r, http.StatusForbidden, web.PageError, web.ErrorPage{MessageKey: web.MsgAccessDenied})
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !c.checkCSRF(p, r.PostFormValue(web.FieldCSRF)) {
				c.o.Pages.Render(w, r, http.StatusForbidden, web.PageError, web.ErrorPage{MessageKey: web.MsgCSRFFailed})
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		f(w, r, p)
	}
}

var navItems = []struct {
	key, url string
	perm     Permission
}{
	{"ui.admin.nav.home", PathHome, PermConsole},
	{"ui.admin.nav.sessions", PathSessions, PermSessions},
	{"ui.admin.nav.people", PathPeople, PermPeople},
	{"ui.admin.nav.audit", PathAudit, PermAudit},
	{"ui.admin.nav.emergency", PathEmergency, PermEmergencyRead},
	{"ui.admin.nav.apps", PathApps, PermApps},
}

func (c *Console) base(r *http.Request, p *Principal) web.AdminPage {
	out := web.AdminPage{User: p.Name, CSRFToken: p.CSRFToken, LogoutAction: PathLogout}
	for _, role := range p.Roles {
		out.Roles = append(out.Roles, string(role))
	}
	for _, n := range navItems {
		if Can(p.Roles, n.perm) {
			out.Nav = append(out.Nav, web.AdminNav{Key: n.key, URL: n.url, Current: r.URL.Path == n.url})
		}
	}
	q := r.URL.Query()
	switch m := q.Get("msg"); m {
	case "admin_session_revoked", "admin_link_deleted", "admin_emergency_acked", "admin_key_revoked":
		out.Message = m
	case "admin_sessions_revoked", "admin_keys_revoked":
		n, _ := strconv.Atoi(q.Get("n"))
		out.Message, out.MessageArgs = m, []any{n}
	}
	return out
}

// errorKey is the message of an operation's error.
func errorKey(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "admin_not_found"
	case errors.Is(err, ErrCommentRequired):
		return "admin_comment_required"
	case errors.Is(err, ErrAlreadyReviewed):
		return "admin_already_reviewed"
	case errors.Is(err, ErrBadRequest):
		return "admin_bad_filter"
	}
	return "admin_unavailable"
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrCommentRequired), errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrAlreadyReviewed):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, data web.AdminPage) {
	c.o.Pages.Render(w, r, status, page, data)
}

func (c *Console) homePage(w http.ResponseWriter, r *http.Request, p *Principal) {
	c.render(w, r, http.StatusOK, web.PageAdminHome, c.base(r, p))
}

// ---- sessions

func (c *Console) sessionsPage(w http.ResponseWriter, r *http.Request, p *Principal) {
	c.renderSessions(w, r, p, http.StatusOK, "")
}

func (c *Console) renderSessions(w http.ResponseWriter, r *http.Request, p *Principal, status int, errKey string) {
	ctx := r.Context()
	d := c.base(r, p)
	d.Error = errKey
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	s := &web.AdminSessions{Query: q, RevokeAction: PathSessionRevoke, RevokeAllAction: PathSessionRevokeAll}
	d.Sessions = s
	if subject := c.resolveSubject(ctx, q); subject != "" {
		s.Subject = subject
		list, err := c.sessionsOf(ctx, subject)
		if err != nil {
			c.failPage(w, r, http.StatusServiceUnavailable, "admin_unavailable", err)
			return
		}
		for _, si := range list {
			s.Rows = append(s.Rows, web.AdminSessionRow{SID: si.SID, Subject: si.Subject, Name: si.Name, Username: si.Username,
				Method: si.Method, Level: si.Level, AMR: strings.Join(si.AMR, " "), Apps: strings.Join(si.Apps, ", "),
				AuthTime: si.AuthTime, LastSeen: si.LastSeen, Expires: si.Expires})
		}
	} else if q != "" {
		d.Error = "admin_not_found"
	}
	c.render(w, r, status, web.PageAdminSessions, d)
}

// back redirects to a console page after a form, with a message.
func back(w http.ResponseWriter, r *http.Request, path string, q url.Values) {
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

func (c *Console) sessionRevokeForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	ctx := r.Context()
	sid := r.PostFormValue("sid")
	var subject string
	if s, err := c.o.Sessions.GetByID(ctx, sid); err == nil {
		subject = s.Subject
	}
	if err := c.revokeSession(ctx, p, r, sid); err != nil {
		c.renderSessions(w, r, p, statusOf(err), errorKey(err))
		return
	}
	back(w, r, PathSessions, url.Values{"q": {subject}, "msg": {"admin_session_revoked"}})
}

func (c *Console) sessionRevokeAllForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	subject := r.PostFormValue("subject")
	n, err := c.revokeAll(r.Context(), p, r, subject)
	if err != nil {
		c.renderSessions(w, r, p, statusOf(err), errorKey(err))
		return
	}
	back(w, r, PathSessions, url.Values{"q": {subject}, "msg": {"admin_sessions_revoked"}, "n": {strconv.Itoa(n)}})
}

// ---- people

func (c *Console) peoplePage(w http.ResponseWriter, r *http.Request, p *Principal) {
	c.renderPeople(w, r, p, http.StatusOK, c.base(r, p), r.URL.Query().Get("q"), r.URL.Query().Get("subject"))
}

func (c *Console) renderPeople(w http.ResponseWriter, r *http.Request, p *Principal, status int, d web.AdminPage, q, subject string) {
	ctx := r.Context()
	pp := &web.AdminPeople{Query: q, RevokeKeyAction: PathKeyRevoke, CodeAction: PathCode, UnlinkAction: PathUnlink}
	d.People = pp
	if q != "" && subject == "" {
		refs, err := c.findPeople(ctx, q)
		if err != nil {
			d.Error = "admin_unavailable"
		}
		if len(refs) == 1 && refs[0].Subject != "" {
			subject = refs[0].Subject
		} else {
			for _, ref := range refs {
				u := ""
				if ref.Subject != "" {
					u = PathPeople + "?" + url.Values{"subject": {ref.Subject}}.Encode()
				}
				pp.Results = append(pp.Results, web.AdminPersonRow{Subject: ref.Subject, Username: ref.Username, Name: ref.Name, Connector: ref.Connector, URL: u})
			}
		}
	}
	if subject != "" {
		per, err := c.person(ctx, subject)
		if err != nil {
			c.failPage(w, r, http.StatusServiceUnavailable, "admin_unavailable", err)
			return
		}
		v := &web.AdminPerson{Subject: per.Subject, Username: per.Username, Name: per.Name, Email: per.Email, NationalID: per.NationalID,
			NationalIDType: per.NationalIDType, Connector: per.Connector, Groups: per.Groups, Sessions: per.Sessions}
		for _, l := range per.Links {
			v.Links = append(v.Links, web.AdminLink{Source: l.Source, SourceSubject: l.SourceSubject, Method: l.Method, CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt})
		}
		for _, k := range per.Keys {
			kind := web.KeyKindHardware
			if k.Synced {
				kind = web.KeyKindSynced
			}
			v.Keys = append(v.Keys, web.AdminKey{ID: k.ID, Name: k.Name, Model: k.Model, Kind: kind, Flagged: k.Flagged, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt})
		}
		for _, k := range per.Codes {
			v.Codes = append(v.Codes, web.AdminCode{CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, UsedAt: k.UsedAt})
		}
		pp.Person = v
		pp.SessionsURL = PathSessions + "?" + url.Values{"q": {per.Subject}}.Encode()
	}
	c.render(w, r, status, web.PageAdminPeople, d)
}

func personURL(subject string, extra url.Values) url.Values {
	if extra == nil {
		extra = url.Values{}
	}
	extra.Set("subject", subject)
	return extra
}

func (c *Console) keyRevokeForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	subject, id := r.PostFormValue("subject"), r.PostFormValue("id")
	n, err := c.revokeKeys(r.Context(), p, r, subject, id)
	if err != nil {
		d := c.base(r, p)
		d.Error = errorKey(err)
		c.renderPeople(w, r, p, statusOf(err), d, "", subject)
		return
	}
	if id != "" {
		back(w, r, PathPeople, personURL(subject, url.Values{"msg": {"admin_key_revoked"}}))
		return
	}
	back(w, r, PathPeople, personURL(subject, url.Values{"msg": {"admin_keys_revoked"}, "n": {strconv.FormatInt(n, 10)}}))
}

// codeForm issues an enrollment code and shows it once, on this response
// only (never in a URL).
func (c *Console) codeForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	subject := r.PostFormValue("subject")
	d := c.base(r, p)
	code, exp, err := c.issueCode(r.Context(), p, r, subject)
	status := http.StatusOK
	if err != nil {
		d.Error, status = errorKey(err), statusOf(err)
	} else {
		d.Code, d.CodeExpires = code, exp
	}
	c.renderPeople(w, r, p, status, d, "", subject)
}

func (c *Console) unlinkForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	subject := r.PostFormValue("subject")
	if err := c.unlink(r.Context(), p, r, subject, r.PostFormValue("source"), r.PostFormValue("source_subject")); err != nil {
		d := c.base(r, p)
		d.Error = errorKey(err)
		c.renderPeople(w, r, p, statusOf(err), d, "", subject)
		return
	}
	back(w, r, PathPeople, personURL(subject, url.Values{"msg": {"admin_link_deleted"}}))
}

// ---- audit

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, p *Principal) {
	d := c.base(r, p)
	v := r.URL.Query()
	a := &web.AdminAudit{Person: v.Get("person"), App: v.Get("app"), Type: v.Get("type"), Outcome: v.Get("outcome"),
		Since: v.Get("since"), Until: v.Get("until"), Addr: v.Get("addr")}
	d.Audit = a
	filters := url.Values{}
	for _, k := range []string{"person", "app", "type", "outcome", "since", "until", "addr"} {
		if s := v.Get(k); s != "" {
			filters.Set(k, s)
		}
	}
	csv, js := url.Values{}, url.Values{}
	for k, vs := range filters {
		csv[k], js[k] = vs, vs
	}
	csv.Set("format", audit.FormatCSV)
	js.Set("format", audit.FormatJSON)
	a.ExportCSV, a.ExportJSON = PathAuditExport+"?"+csv.Encode(), PathAuditExport+"?"+js.Encode()
	q, err := parseAuditQuery(v)
	if err != nil {
		d.Error = "admin_bad_filter"
		c.render(w, r, http.StatusBadRequest, web.PageAdminAudit, d)
		return
	}
	q.Limit = auditPageSize
	events, err := c.o.AuditLog.ListAuditEvents(r.Context(), q)
	if err != nil {
		c.failPage(w, r, http.StatusServiceUnavailable, "admin_unavailable", err)
		return
	}
	for _, e := range events {
		a.Events = append(a.Events, web.AdminEvent{ID: e.ID, Time: e.Time, Type: e.Type, Person: e.Person, App: e.App,
			Addr: e.ClientAddr, Outcome: e.Outcome, Reason: e.Reason, Details: detailsText(e.Details)})
	}
	if len(events) == auditPageSize {
		next := url.Values{}
		for k, vs := range filters {
			next[k] = vs
		}
		next.Set("after", strconv.FormatInt(events[len(events)-1].ID, 10))
		a.NextURL = PathAudit + "?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, web.PageAdminAudit, d)
}

func detailsText(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(k + "=" + d[k])
	}
	return b.String()
}

// auditExport streams the selection as CSV or JSON (pages and API share
// it). The export itself is audited: who took a copy of the trail.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, p *Principal) {
	v := r.URL.Query()
	format := v.Get("format")
	if format != audit.FormatCSV && format != audit.FormatJSON {
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
		return
	}
	q, err := parseAuditQuery(v)
	if err != nil {
		http.Error(w, "invalid filter", http.StatusBadRequest)
		return
	}
	c.record(r.Context(), p, r, "audit.export", format, "", map[string]string{"filter": v.Encode()})
	ctype := "text/csv; charset=utf-8"
	if format == audit.FormatJSON {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="garde-audit-`+c.o.Clock().UTC().Format("20060102T150405Z")+`.`+format+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := audit.Export(w, format, audit.Query(r.Context(), c.o.AuditLog, q)); err != nil {
		// Headers are gone: the truncated file is the signal, the log
		// the detail.
		c.o.Logger.Error("admin: audit export failed", "err", err)
	}
}

// ---- emergency

func (c *Console) emergencyPage(w http.ResponseWriter, r *http.Request, p *Principal) {
	c.renderEmergency(w, r, p, http.StatusOK, "")
}

func (c *Console) renderEmergency(w http.ResponseWriter, r *http.Request, p *Principal, status int, errKey string) {
	d := c.base(r, p)
	d.Error = errKey
	items, err := c.emergencyQueue(r.Context())
	if err != nil {
		c.failPage(w, r, http.StatusServiceUnavailable, "admin_unavailable", err)
		return
	}
	e := &web.AdminEmergency{}
	if Can(p.Roles, PermEmergencyReview) {
		e.AckAction = PathEmergencyAck
	}
	for _, it := range items {
		e.Items = append(e.Items, web.AdminEmergencyItem{EventID: it.EventID, Time: it.Time, Person: it.Person, App: it.App,
			Reason: it.Reason, Justification: it.Justification})
	}
	d.Emergency = e
	c.render(w, r, status, web.PageAdminEmergency, d)
}

func (c *Console) emergencyAckForm(w http.ResponseWriter, r *http.Request, p *Principal) {
	id, err := strconv.ParseInt(r.PostFormValue("event_id"), 10, 64)
	if err == nil {
		err = c.ackEmergency(r.Context(), p, r, id, r.PostFormValue("comment"))
	} else {
		err = ErrNotFound
	}
	if err != nil {
		c.renderEmergency(w, r, p, statusOf(err), errorKey(err))
		return
	}
	back(w, r, PathEmergency, url.Values{"msg": {"admin_emergency_acked"}})
}

// ---- applications

func (c *Console) appsPage(w http.ResponseWriter, r *http.Request, p *Principal) {
	d := c.base(r, p)
	for _, a := range c.apps(web.Language(r)) {
		d.Apps = append(d.Apps, web.AdminApp{ID: a.ID, Name: a.Name, Kind: a.Kind, Lines: a.Explanation})
	}
	c.render(w, r, http.StatusOK, web.PageAdminApps, d)
}
