package web

import (
	"strings"
	"time"
)

// Admin console pages. Each takes an AdminPage whose section for that
// page is set.
const (
	PageAdminHome      = "admin_home"
	PageAdminSessions  = "admin_sessions"
	PageAdminPeople    = "admin_people"
	PageAdminAudit     = "admin_audit"
	PageAdminEmergency = "admin_emergency"
	PageAdminApps      = "admin_apps"
)

// adminPartials is parsed with every admin page: the console's navigation
// and message area.
const adminPartials = "admin_nav.html"

func isAdminPage(page string) bool { return strings.HasPrefix(page, "admin_") }

// AdminPage is the view model of every console page.
type AdminPage struct {
	// User is the signed-in admin's display name; Roles their roles.
	User  string
	Roles []string
	// Nav lists the sections the admin may open.
	Nav []AdminNav
	// CSRFToken goes in every form's csrf_token field.
	CSRFToken string
	// LogoutAction ends the console session (POST with csrf_token).
	LogoutAction string
	// Message is a success message KEY, with MessageArgs; Error an error
	// message KEY. Empty shows none.
	Message     string
	MessageArgs []any
	Error       string
	// Code is an enrollment code just issued, shown once, valid until
	// CodeExpires.
	Code        string
	CodeExpires time.Time

	Sessions  *AdminSessions
	People    *AdminPeople
	Audit     *AdminAudit
	Emergency *AdminEmergency
	Apps      []AdminApp
}

// AdminNav is one console section.
type AdminNav struct {
	// Key is the translation key of its name.
	Key     string
	URL     string
	Current bool
}

// AdminSessions is the active-sessions page: a person's live sessions.
type AdminSessions struct {
	// Query is what was searched (a username or a subject).
	Query string
	// Subject is the person found, "" when nothing was searched or found.
	Subject string
	Rows    []AdminSessionRow
	// RevokeAction receives csrf_token and sid; RevokeAllAction
	// csrf_token and subject.
	RevokeAction    string
	RevokeAllAction string
}

// AdminSessionRow is one SSO session.
type AdminSessionRow struct {
	SID, Subject, Name, Username string
	Method, Level, AMR, Apps     string
	AuthTime, LastSeen, Expires  time.Time
}

// AdminPeople is the people page: a search and, when one person is
// selected, their identities and authenticators.
type AdminPeople struct {
	Query   string
	Results []AdminPersonRow
	Person  *AdminPerson
	// Actions (POST, csrf_token and subject always): RevokeKeyAction takes
	// id (a key) or nothing (all keys); CodeAction issues an enrollment
	// code; UnlinkAction takes source and source_subject.
	RevokeKeyAction string
	CodeAction      string
	UnlinkAction    string
	SessionsURL     string
}

// AdminPersonRow is a search result.
type AdminPersonRow struct {
	Subject, Username, Name, Connector string
	URL                                string
}

// AdminPerson is one person as the console shows them.
type AdminPerson struct {
	Subject, Username, Name, Email string
	NationalID, NationalIDType     string
	Connector                      string
	Groups                         []string
	Links                          []AdminLink
	Keys                           []AdminKey
	Codes                          []AdminCode
	Sessions                       int
}

// AdminLink is an identity joined to the person.
type AdminLink struct {
	Source, SourceSubject, Method, CreatedBy string
	CreatedAt                                time.Time
}

// AdminKey is a security key or passkey.
type AdminKey struct {
	ID, Name, Model, Kind string
	Flagged               bool
	CreatedAt, LastUsedAt time.Time
}

// AdminCode is an enrollment code (never its value).
type AdminCode struct {
	CreatedBy                    string
	CreatedAt, ExpiresAt, UsedAt time.Time
}

// AdminAudit is the audit search page.
type AdminAudit struct {
	Person, App, Type, Outcome, Since, Until, Addr string
	Events                                         []AdminEvent
	// NextURL pages on; ExportCSV and ExportJSON download the whole
	// selection.
	NextURL, ExportCSV, ExportJSON string
}

// AdminEvent is one audit event.
type AdminEvent struct {
	ID                                                int64
	Time                                              time.Time
	Type, Person, App, Addr, Outcome, Reason, Details string
}

// AdminEmergency is the emergency-access review queue.
type AdminEmergency struct {
	Items []AdminEmergencyItem
	// AckAction receives csrf_token, event_id, comment; empty when the
	// admin may only read the queue.
	AckAction string
}

// AdminEmergencyItem is one emergency access waiting for review.
type AdminEmergencyItem struct {
	EventID                            int64
	Time                               time.Time
	Person, App, Reason, Justification string
}

// AdminApp is an application with its effective policy, explained.
type AdminApp struct {
	ID, Name, Kind string
	// Lines explain the effective policy, one rule a line.
	Lines []string
}
