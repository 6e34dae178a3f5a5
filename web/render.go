package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
)

// Page names accepted by Renderer.Render.
const (
	PageLogin         = "login"          // data: LoginPage
	PageError         = "error"          // data: ErrorPage
	PageThrottled     = "throttled"      // data: ErrorPage (keys default to "throttled")
	PageUnavailable   = "unavailable"    // data: ErrorPage (keys default to "directory_unavailable")
	PageLogoutConfirm = "logout_confirm" // data: LogoutConfirmPage
	PageLoggedOut     = "logged_out"     // data: LoggedOutPage
	// PageSecondFactor asks for a security key after the password.
	PageSecondFactor = "login_key" // data: SecondFactorPage
	// PageKeys lists the person's security keys and passkeys.
	PageKeys = "keys" // data: KeysPage
	// PageKeyRemoveConfirm is the server-side confirmation step of
	// KeysPage's delete form.
	PageKeyRemoveConfirm = "key_remove_confirm" // data: KeyRemoveConfirmPage
)

// Form field names used by the templates; the broker reads the posted forms
// with these.
const (
	FieldCSRF      = "csrf_token"
	FieldFlowID    = "flow_id"
	FieldStepToken = "step"
	FieldUsername  = "username"
	FieldPassword  = "password"
	FieldConfirm   = "confirm" // logout and key-removal confirmation: value "yes"
	// Keys page forms (KeysPage, KeyRemoveConfirmPage).
	FieldKeyID      = "id"   // base64url credential id (KeyView.ID)
	FieldKeyName    = "name" // the key's label (rename form; register JSON)
	FieldEnrollCode = "code" // enrollment code from the support
)

// LoginPage is the view model of the sign-in page.
type LoginPage struct {
	// App is the display name of the application the person is signing in
	// to ("Connexion à {App}"); empty gives a plain "Connexion".
	App string
	// FlowID identifies the sign-in flow; StepToken is the MAC binding the
	// flow id to this step (see broker/flow). Both go back in hidden fields.
	FlowID    string
	StepToken string
	// CSRFToken goes back in a hidden field (see CSRF.Token).
	CSRFToken string
	// Username pre-fills the username field. Leave it empty unless it was
	// typed in this same flow (re-display after a failed attempt): on a
	// shared workstation the previous person's name must not appear.
	Username string
	// Error is a message KEY (MsgInvalidCredentials, ...), not a text;
	// empty shows no error.
	Error string
	// Action is the URL the form posts to; empty posts to the current URL.
	Action string
	// Passkeys offers the "security key or passkey" method: a button for a
	// passwordless sign-in and, where the browser supports it, passkeys
	// offered in the username field's autofill (conditional mediation).
	// Both post JSON to PasskeyBeginURL then PasskeyFinishURL with the
	// form's flow_id, step and csrf_token (see WebAuthnRequest). False
	// renders the page exactly as before, without the WebAuthn script.
	Passkeys         bool
	PasskeyBeginURL  string
	PasskeyFinishURL string
	// Options are the card and Pro Santé Connect methods, shown before
	// the password.
	Options []LoginOption
	// StepUp, when set, says why a signed-in person is asked for a
	// stronger method (the application's policy, in both languages); the
	// page then offers only the methods that get there.
	StepUp *Explanation
	// HidePassword leaves out the password form (a step-up that a
	// password cannot satisfy).
	HidePassword bool
}

// Explanation is a policy's text for a person, in both languages (the
// policy engine writes them; Render picks the request's).
type Explanation struct{ FR, EN string }

// In returns the explanation in lang.
func (x Explanation) In(lang string) string {
	if lang == LangEN && x.EN != "" {
		return x.EN
	}
	return x.FR
}

// SecondFactorPage is the view model of "Confirmez avec votre clé de
// sécurité", shown after a password sign-in when a key is required.
type SecondFactorPage struct {
	// App is the display name of the application, if known.
	App string
	// FlowID, StepToken and CSRFToken go back in the JSON requests (see
	// WebAuthnRequest), as in LoginPage.
	FlowID    string
	StepToken string
	CSRFToken string
	// BeginURL and FinishURL are the assertion endpoints.
	BeginURL  string
	FinishURL string
	// Error is a message KEY (MsgWebAuthnNoCredential, ...); empty shows
	// none.
	Error string
	// CanEnrollURL, when set, is offered as a link to register a key
	// (when the person may enroll one now). Empty hides it.
	CanEnrollURL string
}

// KeysPage is the view model of the "my security keys" page.
type KeysPage struct {
	// Person is the signed-in person's display name or username.
	Person string
	// Keys are the person's registered keys, in display order.
	Keys []KeyView
	// CanEnroll shows the registration section (name + button); otherwise
	// EnrollHint and the enrollment-code form are shown.
	CanEnroll bool
	// FlowID and StepToken, when the page is a step of a sign-in flow
	// (enrollment during sign-in), go in every form's hidden fields
	// flow_id and step, hence in the registration JSON; empty outside a
	// flow (flow_id and step are then sent empty).
	FlowID    string
	StepToken string
	// CSRFToken goes in every form and in the registration JSON.
	CSRFToken string
	// RegisterBeginURL and RegisterFinishURL are the registration
	// endpoints (JSON, see WebAuthnRequest).
	RegisterBeginURL  string
	RegisterFinishURL string
	// RenameAction receives csrf_token, id, name; DeleteAction receives
	// csrf_token, id (the broker then renders PageKeyRemoveConfirm, whose
	// form posts csrf_token, id, confirm=yes to the same action);
	// CodeAction receives csrf_token, code.
	RenameAction string
	DeleteAction string
	CodeAction   string
	// Message is a success message KEY (MsgKeyRegistered, ...), Error an
	// error message KEY; empty shows none. MsgEnrollmentGrace as Message is
	// shown as a notice, not as a success.
	Message string
	Error   string
	// EnrollHint is a message KEY explaining why enrollment is not allowed
	// now (MsgEnrollmentNotAllowed, ...), shown when !CanEnroll; empty
	// means MsgEnrollmentNotAllowed.
	EnrollHint string
}

// Key kinds (KeyView.Kind).
const (
	KeyKindHardware = "hwk" // device-bound: a security key, a TPM, ...
	KeyKindSynced   = "swk" // synced passkey (phone, password manager)
)

// KeyView is one key as shown on the keys page.
type KeyView struct {
	// ID is the base64url credential id, posted back in the "id" field.
	ID string
	// Name is the person's label; Model the authenticator's model name
	// (from the metadata service), empty if unknown.
	Name  string
	Model string
	// Kind is KeyKindHardware or KeyKindSynced.
	Kind string
	// Discoverable: the key can sign in without a username.
	Discoverable bool
	// Flagged: a possible clone was detected and the key is blocked.
	Flagged bool
	// CreatedAt and LastUsedAt are shown in the renderer's time zone
	// (WithTimeZone); a zero LastUsedAt shows "never".
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// KeyRemoveConfirmPage is the view model of "Retirer cette clé ?", the
// confirmation step of KeysPage's delete form.
type KeyRemoveConfirmPage struct {
	// Key is the key to remove.
	Key KeyView
	// Last warns that this is the person's last key.
	Last bool
	// CSRFToken goes back in a hidden field with id=Key.ID and
	// confirm=yes, posted to DeleteAction.
	CSRFToken    string
	DeleteAction string
	// CancelURL is where "Annuler" leads (the keys page); empty hides it.
	CancelURL string
}

// ErrorPage is the view model of the error, throttled and unavailable
// pages. It is also what a person sees for any failure: a translated title,
// message and next step, and a reference, never a stack trace.
type ErrorPage struct {
	// MessageKey says what happened (MsgAccessDenied, ...). Empty means
	// server_error (or throttled / directory_unavailable for those pages).
	MessageKey string
	// TitleKey overrides the title; empty means "<MessageKey>.title".
	TitleKey string
	// NextKey overrides the advice; empty means "<MessageKey>.next".
	NextKey string
	// Ref is shown so the helpdesk can find the log line; put the same
	// value in the log. Empty shows none.
	Ref string
	// Args fill the message's %[n]v verbs, if it has any.
	Args []any
	// Explanation, when set, is the first argument, in the request's
	// language (a policy's reason for MsgPolicyDenied).
	Explanation *Explanation
	// ContinueURL, when set, is offered as "back to the application" (it
	// carries the refusal to the application).
	ContinueURL string
}

// LogoutConfirmPage is the view model of "Voulez-vous vous déconnecter ?".
type LogoutConfirmPage struct {
	// App is the display name of the application that asked for the
	// logout, if known.
	App string
	// Action is the URL the confirmation posts to; empty posts to the
	// current URL.
	Action string
	// CSRFToken goes back in a hidden field.
	CSRFToken string
	// FlowID identifies the pending logout request, if the caller keeps one.
	FlowID string
	// CancelURL is where "Annuler" leads; empty hides the link. It must be
	// a URL the caller trusts (a registered post-logout URI, or the broker).
	CancelURL string
}

// LoggedOutPage is the view model of the "signed out" page.
type LoggedOutPage struct {
	// ReturnURL, when set, is offered as a link back to the application.
	// The caller must only pass a registered post-logout redirect URI.
	ReturnURL string
	// App names the application in that link, if known.
	App string
}

//go:embed templates/*.html
var templateFS embed.FS

// Renderer renders Garde's pages. It is safe for concurrent use.
type Renderer struct {
	pages  map[string]*template.Template // page name → layout + page
	cat    catalog
	css    string // versioned URL of garde.css
	icon   string // versioned URL of the favicon
	js     string // versioned URL of webauthn.js
	samlJS string // versioned URL of saml_post.js
	loc    *time.Location
	logger *slog.Logger
}

// RendererOption configures a Renderer.
type RendererOption func(*Renderer)

// WithLogger sets where template failures are logged (default
// slog.Default()).
func WithLogger(l *slog.Logger) RendererOption {
	return func(r *Renderer) {
		if l != nil {
			r.logger = l
		}
	}
}

// WithTimeZone sets the zone dates are shown in (KeyView.CreatedAt, ...);
// default time.Local. Pass the hospital's zone (Europe/Paris, ...).
func WithTimeZone(loc *time.Location) RendererOption {
	return func(r *Renderer) {
		if loc != nil {
			r.loc = loc
		}
	}
}

// templateFiles maps page names to their template files.
var templateFiles = map[string]string{
	PageLogin:            "login.html",
	PageError:            "error.html",
	PageThrottled:        "error.html",
	PageUnavailable:      "error.html",
	PageLogoutConfirm:    "logout_confirm.html",
	PageLoggedOut:        "logged_out.html",
	PageSecondFactor:     "login_key.html",
	PageKeys:             "keys.html",
	PageKeyRemoveConfirm: "key_remove_confirm.html",
	PageLink:             "login_link.html",
	PageDecoupled:        "login_decoupled.html",
	PageSAMLPost:         "saml_post.html",
	PageEmergency:        "emergency.html",
	PageAdminHome:        "admin_home.html",
	PageAdminSessions:    "admin_sessions.html",
	PageAdminPeople:      "admin_people.html",
	PageAdminAudit:       "admin_audit.html",
	PageAdminEmergency:   "admin_emergency.html",
	PageAdminApps:        "admin_apps.html",
}

// NewRenderer parses the embedded templates and translations once. It fails
// if a translation is missing in a language or a template uses a key the
// catalogue does not have.
func NewRenderer(opts ...RendererOption) (*Renderer, error) {
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	assets, err := loadStatic()
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		pages:  map[string]*template.Template{},
		cat:    cat,
		css:    assets.url("garde.css"),
		icon:   assets.url("favicon.svg"),
		js:     assets.url("webauthn.js"),
		samlJS: assets.url("saml_post.js"),
		loc:    time.Local,
		logger: slog.Default(),
	}
	for _, o := range opts {
		o(r)
	}
	layout, err := template.ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout: %w", err)
	}
	for page, file := range templateFiles {
		l, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", page, err)
		}
		files := []string{"templates/" + file}
		if isAdminPage(page) {
			files = append(files, "templates/"+adminPartials)
		}
		t, err := l.ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", page, err)
		}
		for _, key := range templateKeys(t) {
			if !cat.has(key) {
				return nil, fmt.Errorf("web: template %s uses unknown translation key %q", file, key)
			}
		}
		r.pages[page] = t.Lookup("layout")
	}
	return r, nil
}

// templateKeys returns the literal keys passed to .T in every template of t.
func templateKeys(t *template.Template) []string {
	var keys []string
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if len(n.Args) >= 2 && isTCall(n.Args[0]) {
				if s, ok := n.Args[1].(*parse.StringNode); ok {
					keys = append(keys, s.Text)
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	return keys
}

func isTCall(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.FieldNode:
		return len(n.Ident) == 1 && n.Ident[0] == "T"
	case *parse.VariableNode:
		return len(n.Ident) == 2 && n.Ident[0] == "$" && n.Ident[1] == "T"
	}
	return false
}

// view is what the templates see.
type view struct {
	Lang  string
	Langs []langLink
	CSS   string
	Icon  string
	// Script is the versioned URL of webauthn.js on the pages that use it,
	// else empty (no script tag).
	Script string
	// Wide widens the content column (the keys table).
	Wide bool
	Page any
	Text texts
	cat  catalog
	loc  *time.Location
}

// texts are the view model's message keys, resolved to the request's
// language by Render.
type texts struct {
	Error                string // LoginPage, SecondFactorPage, KeysPage .Error
	Title, Message, Next string // ErrorPage; Message is also KeysPage.Message
	Hint                 string // KeysPage.EnrollHint
	Notice               string // KeysPage.Message when it is not a success
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// T translates key into the page's language, formatting args into it.
func (v *view) T(key string, args ...any) string { return v.cat.text(v.Lang, key, args...) }

// Date formats t for people, in the renderer's time zone and the page's
// language ("30/11/2026 14:05" in French); "" for the zero time.
func (v *view) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(v.loc).Format(v.cat.text(v.Lang, "ui.date_format"))
}

// webauthnMsgs are the texts webauthn.js shows, as data-msg-<name>
// attributes of the [data-webauthn-status] region: the script carries no
// text of its own.
var webauthnMsgs = []struct{ name, key string }{
	{"prefix", "ui.error.prefix"},
	{"cancelled", MsgWebAuthnCancelled},
	{"exists", MsgWebAuthnExists},
	{"security", MsgWebAuthnSecurity},
	{"unsupported", MsgWebAuthnUnsupported},
	{"failed", MsgWebAuthnFailed},
}

// WebAuthnMsgs renders webauthnMsgs in the page's language. It builds the
// attributes itself because html/template would treat a value of
// "data-msg-security" (whose name contains "uri") as a URL and
// percent-encode the text.
func (v *view) WebAuthnMsgs() template.HTMLAttr {
	var b strings.Builder
	for i, m := range webauthnMsgs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("data-msg-" + m.name + `="` + html.EscapeString(v.T(m.key)) + `"`)
	}
	return template.HTMLAttr(b.String())
}

// Endpoint passes a webauthn.js endpoint URL (data-begin, data-finish)
// through if it is relative or http(s), else returns "". html/template does
// not treat those attributes as URLs, so it would not catch a javascript:
// URL there; the script also refuses any endpoint on another origin.
func (v *view) Endpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return s
}

// DateISO formats t for <time datetime="...">.
func (v *view) DateISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(v.loc).Format(time.RFC3339)
}

// Render writes page in the request's language with the given status. The
// page is executed into a buffer first: a template failure is logged and
// becomes a clean 500 error page, never half a page. Responses are
// Cache-Control: no-store (they may carry a username and a CSRF token, on a
// shared workstation).
func (r *Renderer) Render(w http.ResponseWriter, req *http.Request, status int, page string, data any) {
	lang := Language(req)
	body, err := r.execute(req, lang, page, data)
	if err != nil {
		ref := newRef()
		r.logger.Error("web: rendering failed", "page", page, "ref", ref, "err", err)
		status = http.StatusInternalServerError
		body, err = r.execute(req, lang, PageError, ErrorPage{MessageKey: MsgServerError, Ref: ref})
		if err != nil {
			r.logger.Error("web: rendering the error page failed", "ref", ref, "err", err)
			writeHeaders(w, lang, "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "%s\nRef: %s\n", r.cat.text(lang, MsgServerError), ref)
			return
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	writeHeaders(w, lang, "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeHeaders(w http.ResponseWriter, lang, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", lang)
	h.Set("Vary", "Accept-Language, Cookie")
}

var errWrongData = errors.New("wrong view model type")

func (r *Renderer) execute(req *http.Request, lang, page string, data any) ([]byte, error) {
	t, ok := r.pages[page]
	if !ok {
		return nil, fmt.Errorf("unknown page %q", page)
	}
	v := &view{Lang: lang, Langs: langLinks(req, lang, r.cat), CSS: r.css, Icon: r.icon, cat: r.cat, loc: r.loc}
	switch page {
	case PageLogin:
		p, err := viewOf[LoginPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		if p.StepUp != nil {
			v.Text.Notice = p.StepUp.In(lang)
		}
		if p.Passkeys {
			v.Script = r.js
		}
		v.Page = p
	case PageLink:
		p, err := viewOf[LinkPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		v.Page = p
	case PageDecoupled:
		p, err := viewOf[DecoupledPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Page = p
	case PageEmergency:
		p, err := viewOf[EmergencyPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		v.Text.Notice = p.Denial.In(lang)
		v.Page = p
	case PageSecondFactor:
		p, err := viewOf[SecondFactorPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		v.Script = r.js
		v.Page = p
	case PageKeys:
		p, err := viewOf[KeysPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		switch p.Message {
		case "":
		case MsgEnrollmentGrace:
			v.Text.Notice = r.cat.text(lang, p.Message)
		default:
			v.Text.Message = r.message(lang, p.Message)
		}
		if !p.CanEnroll {
			hint := p.EnrollHint
			if hint == "" {
				hint = MsgEnrollmentNotAllowed
			}
			v.Text.Hint = r.message(lang, hint)
		} else {
			v.Script = r.js
		}
		v.Wide = true
		v.Page = p
	case PageKeyRemoveConfirm:
		p, err := viewOf[KeyRemoveConfirmPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Page = p
	case PageError, PageThrottled, PageUnavailable:
		p, err := viewOf[ErrorPage](page, data, true)
		if err != nil {
			return nil, err
		}
		if p.MessageKey == "" {
			p.MessageKey = map[string]string{PageThrottled: MsgThrottled, PageUnavailable: MsgDirectoryUnavailable}[page]
		}
		v.Text = r.errorTexts(lang, p)
		v.Page = p
	case PageLogoutConfirm:
		p, err := viewOf[LogoutConfirmPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Page = p
	case PageSAMLPost:
		p, err := viewOf[SAMLPostPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Script = r.samlJS
		v.Page = p
	case PageLoggedOut:
		p, err := viewOf[LoggedOutPage](page, data, true)
		if err != nil {
			return nil, err
		}
		v.Page = p
	default:
		if !isAdminPage(page) {
			break
		}
		p, err := viewOf[AdminPage](page, data, false)
		if err != nil {
			return nil, err
		}
		v.Text.Error = r.message(lang, p.Error)
		v.Text.Message = r.message(lang, p.Message, p.MessageArgs...)
		v.Wide = true
		v.Page = p
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// errorTexts resolves an ErrorPage's keys, falling back to generic texts.
func (r *Renderer) errorTexts(lang string, p ErrorPage) texts {
	msg := r.knownKey(p.MessageKey)
	if p.MessageKey == "" {
		msg = MsgServerError
	}
	title := p.TitleKey
	if title == "" || !r.cat.has(title) {
		title = msg + ".title"
	}
	if !r.cat.has(title) {
		title = "ui.error.title"
	}
	next := p.NextKey
	if next == "" || !r.cat.has(next) {
		next = msg + ".next"
	}
	if !r.cat.has(next) {
		next = "ui.error.next"
	}
	args := p.Args
	if p.Explanation != nil {
		args = append([]any{p.Explanation.In(lang)}, args...)
	}
	return texts{
		Title:   r.cat.text(lang, title),
		Message: r.cat.text(lang, msg, args...),
		Next:    r.cat.text(lang, next),
	}
}

// knownKey returns key if the catalogue has it, else server_error: a typo in
// the broker must not put a raw key on a clinician's screen.
func (r *Renderer) knownKey(key string) string {
	if r.cat.has(key) {
		return key
	}
	r.logger.Warn("web: unknown message key", "key", key)
	return MsgServerError
}

// deref accepts a T or a non-nil *T.
// viewOf returns data as the view model T of page (a T or a non-nil *T);
// optional pages also take no data at all (the zero T).
func viewOf[T any](page string, data any, optional bool) (T, error) {
	p, ok := deref[T](data)
	if !ok && !(optional && data == nil) {
		return p, fmt.Errorf("%s: %w %T", page, errWrongData, data)
	}
	return p, nil
}

// message is the text of a message key in lang, "" for no key.
func (r *Renderer) message(lang, key string, args ...any) string {
	if key == "" {
		return ""
	}
	return r.cat.text(lang, r.knownKey(key), args...)
}

func deref[T any](data any) (T, bool) {
	switch d := data.(type) {
	case T:
		return d, true
	case *T:
		if d != nil {
			return *d, true
		}
	}
	var zero T
	return zero, false
}

// langLinks builds the language switch: links to the current URL with lang
// set. They are query-only relative references ("?lang=en&flow=..."), which
// keep the current path without echoing it (a path such as "//host" would
// otherwise become a link to another site). After a POST they lead to the
// POST URL with GET, so callers re-displaying a form keep that URL GET-able.
func langLinks(req *http.Request, current string, cat catalog) []langLink {
	links := make([]langLink, 0, len(supportedLangs))
	for _, lang := range supportedLangs {
		q := url.Values{}
		if req.URL != nil {
			q = req.URL.Query()
		}
		q.Set(LangParam, lang)
		links = append(links, langLink{
			Code:    lang,
			Name:    cat.text(lang, "ui.lang."+lang),
			URL:     "?" + q.Encode(),
			Current: lang == current,
		})
	}
	return links
}

// newRef returns a short reference a person can read out to the helpdesk.
func newRef() string {
	return rand.Text()[:12]
}

// NewRef returns a reference id for an error page, to put in the log line
// that explains it too.
func NewRef() string { return newRef() }
