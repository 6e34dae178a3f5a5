package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"text/template/parse"
)

// Page names accepted by Renderer.Render.
const (
	PageLogin         = "login"          // data: LoginPage
	PageError         = "error"          // data: ErrorPage
	PageThrottled     = "throttled"      // data: ErrorPage (keys default to "throttled")
	PageUnavailable   = "unavailable"    // data: ErrorPage (keys default to "directory_unavailable")
	PageLogoutConfirm = "logout_confirm" // data: LogoutConfirmPage
	PageLoggedOut     = "logged_out"     // data: LoggedOutPage
)

// Form field names used by the templates; the broker reads the posted forms
// with these.
const (
	FieldCSRF      = "csrf_token"
	FieldFlowID    = "flow_id"
	FieldStepToken = "step"
	FieldUsername  = "username"
	FieldPassword  = "password"
	FieldConfirm   = "confirm" // logout confirmation: value "yes"
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

// templateFiles maps page names to their template files.
var templateFiles = map[string]string{
	PageLogin:         "login.html",
	PageError:         "error.html",
	PageThrottled:     "error.html",
	PageUnavailable:   "error.html",
	PageLogoutConfirm: "logout_confirm.html",
	PageLoggedOut:     "logged_out.html",
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
		t, err := l.ParseFS(templateFS, "templates/"+file)
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
	Page  any
	Text  texts
	cat   catalog
}

// texts are the view model's message keys, resolved to the request's
// language by Render.
type texts struct {
	Error                string // LoginPage.Error
	Title, Message, Next string // ErrorPage
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// T translates key into the page's language, formatting args into it.
func (v *view) T(key string, args ...any) string { return v.cat.text(v.Lang, key, args...) }

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
	v := &view{Lang: lang, Langs: langLinks(req, lang, r.cat), CSS: r.css, Icon: r.icon, cat: r.cat}
	switch page {
	case PageLogin:
		p, ok := deref[LoginPage](data)
		if !ok {
			return nil, fmt.Errorf("%s: %w %T", page, errWrongData, data)
		}
		if p.Error != "" {
			v.Text.Error = r.cat.text(lang, r.knownKey(p.Error))
		}
		v.Page = p
	case PageError, PageThrottled, PageUnavailable:
		p, ok := deref[ErrorPage](data)
		if !ok && data != nil {
			return nil, fmt.Errorf("%s: %w %T", page, errWrongData, data)
		}
		if p.MessageKey == "" {
			p.MessageKey = map[string]string{PageThrottled: MsgThrottled, PageUnavailable: MsgDirectoryUnavailable}[page]
		}
		v.Text = r.errorTexts(lang, p)
		v.Page = p
	case PageLogoutConfirm:
		p, ok := deref[LogoutConfirmPage](data)
		if !ok {
			return nil, fmt.Errorf("%s: %w %T", page, errWrongData, data)
		}
		v.Page = p
	case PageLoggedOut:
		p, ok := deref[LoggedOutPage](data)
		if !ok && data != nil {
			return nil, fmt.Errorf("%s: %w %T", page, errWrongData, data)
		}
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
	return texts{
		Title:   r.cat.text(lang, title),
		Message: r.cat.text(lang, msg, p.Args...),
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
