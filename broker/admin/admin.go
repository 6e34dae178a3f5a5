// Package admin serves the admin console (server-rendered pages under
// /admin) and its JSON API (/admin/api/...): active sessions and global
// sign-out, people with their linked identities and authenticators, the
// audit trail with export, the emergency-access review queue, and the
// applications with their effective policy.
//
// The console is an OpenID Connect application of Garde itself
// (ClientID): an admin signs in through the ordinary sign-in flow, and the
// console checks what the ID token proves (level, groups, session) before
// opening its own short-lived session. Roles come from directory groups;
// every page and API call checks one permission, in one place (authorize).
//
// The JSON API accepts the console's session cookie (then unsafe methods
// need the X-CSRF-Token header: GET /admin/api/whoami returns it) or a
// bearer access token that Garde issued with the client_credentials grant
// to one of the configured automation clients, which carries that client's
// role.
//
// Every action is audited twice: its domain event (logout,
// webauthn.revoked, ...) and an "admin.action" event naming the action, its
// target and the admin.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
	"github.com/garde-sso/garde/web"
)

// ClientID is the console's client id at Garde's OpenID provider, and its
// application id in audit events.
const ClientID = "garde-admin"

// Audit event types of the console. Stable: documented in docs/admin.md.
const (
	// EventAction is every console or API action (Details: action, target,
	// by, and before/after where relevant).
	EventAction = "admin.action"
	// EventSignIn is a console sign-in, allowed or refused (Reason).
	EventSignIn = "admin.signin"
	// EventEmergencyDeclared is an emergency access (the sign-in flow
	// records it: Reason is the access mode; Details: justification,
	// denied_for, until, severity).
	EventEmergencyDeclared = audit.EmergencyDeclared
	// EventEmergencyReviewed acknowledges one (Details: event_id, comment,
	// by).
	EventEmergencyReviewed = audit.EmergencyReviewed
	// EventIdentityUnlinked is an identity link deleted by an admin
	// (Details: source, source_subject, method, by).
	EventIdentityUnlinked = "identity.unlinked"
)

// Role is a console role.
type Role string

// Roles.
const (
	RoleAdmin    Role = "admin"
	RoleHelpdesk Role = "helpdesk"
	RoleAuditor  Role = "auditor"
)

// Permission is what one page or API call needs.
type Permission string

// Permissions.
const (
	PermSessions        Permission = "sessions"         // list and end sessions
	PermPeople          Permission = "people"           // people, keys, codes, links
	PermAudit           Permission = "audit"            // search and export the trail
	PermEmergencyRead   Permission = "emergency.read"   // see the review queue
	PermEmergencyReview Permission = "emergency.review" // acknowledge in it
	PermApps            Permission = "apps"             // applications and policies
	// PermConsole is any role: the home page and whoami.
	PermConsole Permission = "console"
)

// grants is the whole authorisation model. An auditor reads the audit
// trail (and the emergency queue, which is part of it) but changes
// nothing; the helpdesk manages people and their sessions; an admin does
// everything, including acknowledging emergency accesses.
var grants = map[Role][]Permission{
	RoleAdmin:    {PermConsole, PermSessions, PermPeople, PermAudit, PermEmergencyRead, PermEmergencyReview, PermApps},
	RoleHelpdesk: {PermConsole, PermSessions, PermPeople},
	RoleAuditor:  {PermConsole, PermAudit, PermEmergencyRead},
}

// Can reports whether any of roles grants p.
func Can(roles []Role, p Permission) bool {
	for _, r := range roles {
		if slices.Contains(grants[r], p) {
			return true
		}
	}
	return false
}

// Directory finds people in one password connector.
type Directory struct {
	// ID is the connector id: a person's subject is ID + ":" + their
	// subject there.
	ID       string
	Users    connectors.UsernameLookup
	Subjects connectors.LookupConnector
}

// App is an application as the applications page shows it.
type App struct {
	ID, Name string
	// Kind is "oidc" or "saml".
	Kind   string
	Policy policies.Effective
}

// APIClient is an automation client of the JSON API.
type APIClient struct {
	ClientID string
	Role     Role
}

// Options configure the console.
type Options struct {
	// Issuer is Garde's issuer; Secret the console's client secret;
	// HTTPClient reaches Garde's own endpoints (in-process in serve).
	Issuer     string
	Secret     string
	HTTPClient *http.Client

	Sessions  *session.Manager
	Signout   *signout.Signout
	Ephemeral store.Ephemeral
	AuditLog  store.AuditLog
	Audit     *audit.Recorder
	Creds     store.WebAuthnCredentials
	Codes     store.EnrollmentCodes
	Links     store.IdentityLinks

	Pages   *web.Renderer
	CSRF    *web.CSRF
	Cookies web.CookiePolicy

	// Roles maps each role to its directory groups.
	Roles map[Role][]string
	// MinLevel is the assurance a console sign-in must have.
	MinLevel assurance.Level
	// IdleTimeout and Lifetime bound a console session.
	IdleTimeout time.Duration
	Lifetime    time.Duration
	APIClients  []APIClient

	Directories []Directory
	Apps        []App
	// Model names an authenticator model from its AAGUID ("" if unknown).
	Model func(aaguid []byte) string
	// CodeLifetime is how long an enrollment code is valid.
	CodeLifetime time.Duration
	// Emergency reports whether an SSO session was opened with emergency
	// access: such a session never opens the console. Default: its
	// identity's Method is "emergency".
	Emergency func(*session.Session) bool

	Clock  func() time.Time
	Logger *slog.Logger
}

// Console serves the admin console and API.
type Console struct {
	o  Options
	rp *relyingParty
}

// New returns the console.
func New(o Options) *Console {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Model == nil {
		o.Model = func([]byte) string { return "" }
	}
	if o.Emergency == nil {
		// A session in which an emergency access is running: the console
		// never opens to it, whatever application it was declared for.
		o.Emergency = func(s *session.Session) bool {
			for _, em := range s.Emergencies {
				if o.Clock().Before(em.Until) {
					return true
				}
			}
			return false
		}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	c := &Console{o: o}
	c.rp = newRelyingParty(o)
	return c
}

// Register mounts the console. guard wraps browser-facing handlers (Go's
// cross-origin protection); API handlers are wrapped too: bearer calls
// carry no browser headers and pass it.
func (c *Console) Register(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	g := func(f http.HandlerFunc) http.Handler { return guard(f) }
	mux.Handle("GET "+PathLogin, g(c.login))
	mux.Handle("GET "+PathCallback, g(c.callback))
	mux.Handle("POST "+PathLogout, g(c.logout))

	page := func(p Permission, f pageFunc) http.Handler { return g(c.page(p, f)) }
	mux.Handle("GET "+PathHome, page(PermConsole, c.homePage))
	mux.Handle("GET "+PathSessions, page(PermSessions, c.sessionsPage))
	mux.Handle("POST "+PathSessionRevoke, page(PermSessions, c.sessionRevokeForm))
	mux.Handle("POST "+PathSessionRevokeAll, page(PermSessions, c.sessionRevokeAllForm))
	mux.Handle("GET "+PathPeople, page(PermPeople, c.peoplePage))
	mux.Handle("POST "+PathKeyRevoke, page(PermPeople, c.keyRevokeForm))
	mux.Handle("POST "+PathCode, page(PermPeople, c.codeForm))
	mux.Handle("POST "+PathUnlink, page(PermPeople, c.unlinkForm))
	mux.Handle("GET "+PathAudit, page(PermAudit, c.auditPage))
	mux.Handle("GET "+PathAuditExport, page(PermAudit, c.auditExport))
	mux.Handle("GET "+PathEmergency, page(PermEmergencyRead, c.emergencyPage))
	mux.Handle("POST "+PathEmergencyAck, page(PermEmergencyReview, c.emergencyAckForm))
	mux.Handle("GET "+PathApps, page(PermApps, c.appsPage))

	api := func(p Permission, f apiFunc) http.Handler { return g(c.api(p, f)) }
	mux.Handle("GET "+PathAPIWhoami, api(PermConsole, c.apiWhoami))
	mux.Handle("GET "+PathAPISessions, api(PermSessions, c.apiSessions))
	mux.Handle("POST "+PathAPISessionRevoke, api(PermSessions, c.apiSessionRevoke))
	mux.Handle("POST "+PathAPISessionRevokeAll, api(PermSessions, c.apiSessionRevokeAll))
	mux.Handle("GET "+PathAPIPeople, api(PermPeople, c.apiPeople))
	mux.Handle("GET "+PathAPIPerson, api(PermPeople, c.apiPerson))
	mux.Handle("POST "+PathAPIKeyRevoke, api(PermPeople, c.apiKeyRevoke))
	mux.Handle("POST "+PathAPICode, api(PermPeople, c.apiCode))
	mux.Handle("POST "+PathAPIUnlink, api(PermPeople, c.apiUnlink))
	mux.Handle("GET "+PathAPIAudit, api(PermAudit, c.apiAudit))
	mux.Handle("GET "+PathAPIAuditExport, api(PermAudit, c.apiAuditExport))
	mux.Handle("GET "+PathAPIEmergency, api(PermEmergencyRead, c.apiEmergency))
	mux.Handle("POST "+PathAPIEmergencyAck, api(PermEmergencyReview, c.apiEmergencyAck))
	mux.Handle("GET "+PathAPIApps, api(PermApps, c.apiApps))
}

// Paths of the console pages and forms.
const (
	PathHome             = "/admin"
	PathLogin            = "/admin/login"
	PathCallback         = "/admin/callback"
	PathLogout           = "/admin/logout"
	PathSessions         = "/admin/sessions"
	PathSessionRevoke    = "/admin/sessions/revoke"
	PathSessionRevokeAll = "/admin/sessions/revoke-all"
	PathPeople           = "/admin/people"
	PathKeyRevoke        = "/admin/people/keys/revoke"
	PathCode             = "/admin/people/code"
	PathUnlink           = "/admin/people/links/delete"
	PathAudit            = "/admin/audit"
	PathAuditExport      = "/admin/audit/export"
	PathEmergency        = "/admin/emergency"
	PathEmergencyAck     = "/admin/emergency/ack"
	PathApps             = "/admin/apps"
)

// Paths of the JSON API.
const (
	PathAPIWhoami           = "/admin/api/whoami"
	PathAPISessions         = "/admin/api/sessions"
	PathAPISessionRevoke    = "/admin/api/sessions/revoke"
	PathAPISessionRevokeAll = "/admin/api/sessions/revoke-all"
	PathAPIPeople           = "/admin/api/people"
	PathAPIPerson           = "/admin/api/person"
	PathAPIKeyRevoke        = "/admin/api/people/keys/revoke"
	PathAPICode             = "/admin/api/people/code"
	PathAPIUnlink           = "/admin/api/people/links/delete"
	PathAPIAudit            = "/admin/api/audit"
	PathAPIAuditExport      = "/admin/api/audit/export"
	PathAPIEmergency        = "/admin/api/emergency"
	PathAPIEmergencyAck     = "/admin/api/emergency/ack"
	PathAPIApps             = "/admin/api/apps"
)

// rolesOf maps directory groups to roles.
func (c *Console) rolesOf(groups []string) []Role {
	var out []Role
	for _, r := range []Role{RoleAdmin, RoleHelpdesk, RoleAuditor} {
		if slices.ContainsFunc(c.o.Roles[r], func(g string) bool { return slices.Contains(groups, g) }) {
			out = append(out, r)
		}
	}
	return out
}

// record audits an admin action.
func (c *Console) record(ctx context.Context, p *Principal, r *http.Request, action, target, person string, extra map[string]string) {
	d := map[string]string{"action": action, "target": target, "by": p.By()}
	for k, v := range extra {
		d[k] = v
	}
	c.o.Audit.Record(store.AuditEvent{Type: EventAction, Person: person, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Success, Details: d})
}
