package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/garde-sso/garde/broker/account"
	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
)

// Errors the pages and the API turn into messages and status codes.
var (
	ErrNotFound        = errors.New("admin: not found")
	ErrBadRequest      = errors.New("admin: bad request")
	ErrCommentRequired = errors.New("admin: a comment is required")
	ErrAlreadyReviewed = errors.New("admin: already reviewed")
)

// maxComment bounds a review comment (it goes into the audit trail).
const maxComment = 1000

// SessionInfo is one live SSO session.
type SessionInfo struct {
	SID      string    `json:"sid"`
	Subject  string    `json:"subject"`
	Name     string    `json:"name,omitempty"`
	Username string    `json:"username,omitempty"`
	Method   string    `json:"method,omitempty"`
	Level    string    `json:"acr"`
	AMR      []string  `json:"amr"`
	Apps     []string  `json:"apps"`
	AuthTime time.Time `json:"auth_time"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
}

func sessionInfo(s *session.Session) SessionInfo {
	return SessionInfo{SID: s.ID, Subject: s.Subject, Name: s.Identity.DisplayName, Username: s.Identity.Username,
		Method: s.Identity.Method, Level: s.Level.ACR(), AMR: s.AMR, Apps: s.Apps, AuthTime: s.AuthTime,
		Created: s.CreatedAt, LastSeen: s.LastSeen, Expires: s.ExpiresAt}
}

// PersonRef is a search result.
type PersonRef struct {
	Subject   string `json:"subject"`
	Username  string `json:"username"`
	Name      string `json:"name"`
	Connector string `json:"connector"`
}

// Person is one person with their identities and authenticators.
type Person struct {
	PersonRef
	Email          string               `json:"email,omitempty"`
	NationalID     string               `json:"national_id,omitempty"`
	NationalIDType string               `json:"national_id_type,omitempty"`
	Groups         []string             `json:"groups,omitempty"`
	Links          []store.IdentityLink `json:"links"`
	Keys           []KeyInfo            `json:"keys"`
	Codes          []CodeInfo           `json:"enrollment_codes"`
	Sessions       int                  `json:"sessions"`
}

// KeyInfo is a security key or passkey.
type KeyInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Model      string    `json:"model,omitempty"`
	AAGUID     string    `json:"aaguid"`
	Synced     bool      `json:"synced"`
	Flagged    bool      `json:"flagged"`
	CreatedAt  time.Time `json:"created"`
	LastUsedAt time.Time `json:"last_used,omitzero"`
}

// CodeInfo is an enrollment code, never its value.
type CodeInfo struct {
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires"`
	UsedAt    time.Time `json:"used,omitzero"`
}

// resolveSubject turns a search into a subject: a subject as given when it
// has a connector prefix, else the first directory that knows the
// username.
func (c *Console) resolveSubject(ctx context.Context, q string) string {
	q = strings.TrimSpace(q)
	if q == "" {
		return ""
	}
	if strings.Contains(q, ":") {
		return q
	}
	if refs, err := c.findPeople(ctx, q); err == nil && len(refs) > 0 {
		return refs[0].Subject
	}
	return ""
}

// findPeople looks q up as a username in every directory, or as a subject.
func (c *Console) findPeople(ctx context.Context, q string) ([]PersonRef, error) {
	q = strings.TrimSpace(q)
	if q == "" || len(q) > 256 {
		return nil, nil
	}
	var out []PersonRef
	if conn, rest, ok := strings.Cut(q, ":"); ok {
		for _, d := range c.o.Directories {
			if d.ID == conn && d.Subjects != nil {
				if id, err := d.Subjects.Lookup(ctx, rest); err == nil {
					out = append(out, ref(d.ID, id))
				}
			}
		}
		if len(out) == 0 {
			// A linked-only person ("nat:...") or an unknown subject:
			// still show what Garde holds about it.
			out = append(out, PersonRef{Subject: q, Name: q, Connector: conn})
		}
		return out, nil
	}
	var errs []error
	for _, d := range c.o.Directories {
		if d.Users == nil {
			continue
		}
		id, err := d.Users.LookupUsername(ctx, q)
		switch {
		case err == nil:
			out = append(out, ref(d.ID, id))
		case errors.Is(err, connectors.ErrUnknownSubject):
		case errors.Is(err, connectors.ErrAccountDisabled), errors.Is(err, connectors.ErrAccountLocked), errors.Is(err, connectors.ErrAccountExpired):
			// The account exists but may not sign in: the helpdesk
			// still needs to see it; the lookup gives no identity, so
			// show the name searched.
			out = append(out, PersonRef{Subject: "", Username: q, Name: q + " (" + err.Error() + ")", Connector: d.ID})
		default:
			errs = append(errs, err)
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func ref(conn string, id connectors.Identity) PersonRef {
	name := id.DisplayName
	if name == "" {
		name = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	}
	if name == "" {
		name = id.Username
	}
	return PersonRef{Subject: conn + ":" + id.Subject, Username: id.Username, Name: name, Connector: conn}
}

// person gathers what Garde knows of subject.
func (c *Console) person(ctx context.Context, subject string) (*Person, error) {
	if subject == "" {
		return nil, ErrNotFound
	}
	p := &Person{PersonRef: PersonRef{Subject: subject, Name: subject}}
	conn, rest, _ := strings.Cut(subject, ":")
	p.Connector = conn
	for _, d := range c.o.Directories {
		if d.ID == conn && d.Subjects != nil {
			if id, err := d.Subjects.Lookup(ctx, rest); err == nil {
				p.PersonRef = ref(d.ID, id)
				p.Email, p.NationalID, p.NationalIDType, p.Groups = id.Email, id.NationalID, id.NationalIDType, id.Groups
			}
		}
	}
	var err error
	if p.Links, err = c.o.Links.ListIdentityLinks(ctx, subject); err != nil {
		return nil, fmt.Errorf("identity links: %w", err)
	}
	creds, err := c.o.Creds.ListWebAuthnCredentials(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("security keys: %w", err)
	}
	for _, k := range creds {
		p.Keys = append(p.Keys, KeyInfo{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, Model: c.o.Model(k.AAGUID),
			AAGUID: fmt.Sprintf("%x", k.AAGUID), Synced: k.BackupEligible, Flagged: k.Flagged, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt})
	}
	codes, err := c.o.Codes.ListEnrollmentCodes(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("enrollment codes: %w", err)
	}
	for _, k := range codes {
		p.Codes = append(p.Codes, CodeInfo{CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, UsedAt: k.UsedAt})
	}
	ss, err := c.o.Sessions.ListBySubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	p.Sessions = len(ss)
	if p.Links == nil {
		p.Links = []store.IdentityLink{}
	}
	return p, nil
}

func (c *Console) sessionsOf(ctx context.Context, subject string) ([]SessionInfo, error) {
	ss, err := c.o.Sessions.ListBySubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]SessionInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, sessionInfo(s))
	}
	return out, nil
}

// revokeSession ends one SSO session (and its refresh tokens).
func (c *Console) revokeSession(ctx context.Context, p *Principal, r *http.Request, sid string) error {
	s := c.o.Signout.End(ctx, func() (*session.Session, error) { return c.o.Sessions.EndByID(ctx, sid) },
		signout.Event{App: ClientID, How: signout.ByAdmin, ClientAddr: clientAddr(r), By: p.By()})
	if s == nil {
		return ErrNotFound
	}
	c.record(ctx, p, r, "session.revoke", s.ID, s.Subject, nil)
	return nil
}

// revokeAll is a global sign-out of subject: every session ends.
func (c *Console) revokeAll(ctx context.Context, p *Principal, r *http.Request, subject string) (int, error) {
	if subject == "" {
		return 0, ErrBadRequest
	}
	ss, err := c.o.Sessions.ListBySubject(ctx, subject)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range ss {
		if c.o.Signout.End(ctx, func() (*session.Session, error) { return c.o.Sessions.EndByID(ctx, s.ID) },
			signout.Event{App: ClientID, How: signout.ByAdmin, ClientAddr: clientAddr(r), By: p.By()}) != nil {
			n++
		}
	}
	c.record(ctx, p, r, "session.revoke_all", subject, subject, map[string]string{"count": strconv.Itoa(n)})
	return n, nil
}

// revokeKeys removes one key (id set) or all of subject's keys.
func (c *Console) revokeKeys(ctx context.Context, p *Principal, r *http.Request, subject, id string) (int64, error) {
	if subject == "" {
		return 0, ErrBadRequest
	}
	if id != "" {
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) == 0 {
			return 0, ErrBadRequest
		}
		if err := c.o.Creds.DeleteWebAuthnCredential(ctx, subject, raw); errors.Is(err, store.ErrNotFound) {
			return 0, ErrNotFound
		} else if err != nil {
			return 0, err
		}
		c.o.Audit.Record(store.AuditEvent{Type: audit.KeyRemoved, Person: subject, App: ClientID, ClientAddr: clientAddr(r),
			Outcome: audit.Success, Details: map[string]string{"by": p.By(), "credential": id}})
		c.record(ctx, p, r, "webauthn.revoke", id, subject, nil)
		return 1, nil
	}
	n, err := c.o.Creds.DeleteWebAuthnCredentialsOf(ctx, subject)
	if err != nil {
		return 0, err
	}
	c.o.Audit.Record(store.AuditEvent{Type: audit.KeysRevoked, Person: subject, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Success, Details: map[string]string{"by": p.By(), "count": strconv.FormatInt(n, 10)}})
	c.record(ctx, p, r, "webauthn.revoke_all", subject, subject, map[string]string{"count": strconv.FormatInt(n, 10)})
	return n, nil
}

func (c *Console) issueCode(ctx context.Context, p *Principal, r *http.Request, subject string) (string, time.Time, error) {
	if subject == "" {
		return "", time.Time{}, ErrBadRequest
	}
	code, exp, err := account.IssueEnrollmentCode(ctx, c.o.Codes, subject, p.By(), c.o.CodeLifetime, c.o.Clock())
	if err != nil {
		return "", time.Time{}, err
	}
	c.o.Audit.Record(store.AuditEvent{Type: audit.EnrollmentCodeIssued, Person: subject, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Success, Details: map[string]string{"by": p.By(), "expires": exp.Format(time.RFC3339)}})
	c.record(ctx, p, r, "enrollment_code.issue", subject, subject, nil)
	return code, exp, nil
}

// unlink deletes an identity link of subject (only one that resolves to
// subject: a form naming another person's link is refused).
func (c *Console) unlink(ctx context.Context, p *Principal, r *http.Request, subject, source, sourceSubject string) error {
	if subject == "" || source == "" || sourceSubject == "" {
		return ErrBadRequest
	}
	l, err := c.o.Links.GetIdentityLink(ctx, source, sourceSubject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && l.Person != subject) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	if err := c.o.Links.DeleteIdentityLink(ctx, source, sourceSubject); errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	c.o.Audit.Record(store.AuditEvent{Type: EventIdentityUnlinked, Person: subject, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Success, Details: map[string]string{"by": p.By(), "source": source, "source_subject": sourceSubject, "method": l.Method}})
	c.record(ctx, p, r, "identity.unlink", source+":"+sourceSubject, subject,
		map[string]string{"before": l.Method + " " + l.CreatedAt.UTC().Format(time.RFC3339), "after": "none"})
	return nil
}

// auditPageSize is how many events a page shows.
const auditPageSize = 50

// parseAuditQuery reads the audit filters of a request. Times are RFC 3339,
// or a date, or a date and minute (UTC).
func parseAuditQuery(v url.Values) (store.AuditQuery, error) {
	q := store.AuditQuery{Person: v.Get("person"), App: v.Get("app"), Type: v.Get("type"), Outcome: v.Get("outcome"), ClientAddr: v.Get("addr")}
	for _, f := range []string{q.Person, q.App, q.Type, q.Outcome, q.ClientAddr} {
		if len(f) > 256 || !utf8.ValidString(f) {
			return q, ErrBadRequest
		}
	}
	if q.Outcome != "" && q.Outcome != audit.Success && q.Outcome != audit.Failure {
		return q, ErrBadRequest
	}
	if q.ClientAddr != "" {
		if _, err := store.ParseAuditAddrFilter(q.ClientAddr); err != nil {
			return q, ErrBadRequest
		}
	}
	var err error
	if q.Since, err = parseTime(v.Get("since")); err != nil {
		return q, ErrBadRequest
	}
	if q.Until, err = parseTime(v.Get("until")); err != nil {
		return q, ErrBadRequest
	}
	if a := v.Get("after"); a != "" {
		if q.AfterID, err = strconv.ParseInt(a, 10, 64); err != nil || q.AfterID < 0 {
			return q, ErrBadRequest
		}
	}
	return q, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, ErrBadRequest
}

// EmergencyItem is an emergency access waiting for review.
type EmergencyItem struct {
	EventID       int64     `json:"event_id"`
	Time          time.Time `json:"time"`
	Person        string    `json:"person"`
	App           string    `json:"app"`
	Reason        string    `json:"reason"`
	Justification string    `json:"justification"`
}

// maxQueueScan bounds how many declarations the queue reads.
const maxQueueScan = 10000

// emergencyQueue lists declared emergency accesses without a review,
// newest first.
func (c *Console) emergencyQueue(ctx context.Context) ([]EmergencyItem, error) {
	reviewed := map[string]bool{}
	for e, err := range audit.Query(ctx, c.o.AuditLog, store.AuditQuery{Type: EventEmergencyReviewed, Limit: maxQueueScan}) {
		if err != nil {
			return nil, err
		}
		reviewed[e.Details["event_id"]] = true
	}
	var out []EmergencyItem
	for e, err := range audit.Query(ctx, c.o.AuditLog, store.AuditQuery{Type: EventEmergencyDeclared, Limit: maxQueueScan}) {
		if err != nil {
			return nil, err
		}
		if reviewed[strconv.FormatInt(e.ID, 10)] {
			continue
		}
		app := e.App
		if app == "" {
			app = e.Details["app"]
		}
		out = append(out, EmergencyItem{EventID: e.ID, Time: e.Time, Person: e.Person, App: app,
			Reason: cmp.Or(e.Reason, e.Details["reason"]), Justification: e.Details["justification"]})
	}
	slices.Reverse(out)
	if out == nil {
		out = []EmergencyItem{}
	}
	return out, nil
}

// ackEmergency records the review of emergency event id.
func (c *Console) ackEmergency(ctx context.Context, p *Principal, r *http.Request, id int64, comment string) error {
	comment = strings.TrimSpace(comment)
	if comment == "" {
		return ErrCommentRequired
	}
	if utf8.RuneCountInString(comment) > maxComment || !utf8.ValidString(comment) {
		return ErrBadRequest
	}
	evs, err := c.o.AuditLog.ListAuditEvents(ctx, store.AuditQuery{AfterID: id - 1, Limit: 1})
	if err != nil {
		return err
	}
	if id <= 0 || len(evs) == 0 || evs[0].ID != id || evs[0].Type != EventEmergencyDeclared {
		return ErrNotFound
	}
	ev := evs[0]
	// The audit writer is asynchronous: a review just recorded may not be
	// readable yet, so a marker in the ephemeral store stops a second one.
	ok, err := c.o.Ephemeral.SetNX(ctx, "emreview:"+strconv.FormatInt(id, 10), []byte(p.By()), 24*time.Hour)
	if err != nil {
		return err
	}
	if !ok {
		return ErrAlreadyReviewed
	}
	idStr := strconv.FormatInt(id, 10)
	if queue, err := c.emergencyQueue(ctx); err == nil && !slices.ContainsFunc(queue, func(e EmergencyItem) bool { return e.EventID == id }) {
		return ErrAlreadyReviewed
	}
	c.o.Audit.Record(store.AuditEvent{Type: EventEmergencyReviewed, Person: ev.Person, App: ev.App, ClientAddr: clientAddr(r),
		Outcome: audit.Success, Details: map[string]string{"event_id": idStr, "comment": comment, "by": p.By()}})
	c.record(ctx, p, r, "emergency.review", idStr, ev.Person, map[string]string{"before": "pending", "after": "reviewed"})
	return nil
}
