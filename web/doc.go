// Package web holds Garde's pages: templates, translations (French by
// default, English) and static assets, all embedded, and the HTTP plumbing
// around them: security headers, cookies, CSRF tokens and language choice.
//
// It has no business rules. The broker decides what happened and passes a
// view model holding message keys (LoginPage, ErrorPage, ...); the Renderer
// picks the language, translates and writes the page. Wiring, in cmd/garde:
//
//	r, err := web.NewRenderer(web.WithLogger(logger))
//	mux.Handle(web.StaticPrefix, web.StaticHandler())
//	cop := web.CrossOriginProtection()
//	cop.SetDenyHandler(r.CrossOriginDenied())
//	h := web.SecurityHeaders(web.LanguageSwitch(cop.Handler(mux), isHTTPS), isHTTPS)
//
// and in a handler:
//
//	r.Render(w, req, http.StatusOK, web.PageLogin, web.LoginPage{
//		App: app.Name, FlowID: id, StepToken: step,
//		CSRFToken: csrf.Token(binding, "login:"+id), Action: "/login",
//	})
//
// Security keys and passkeys: LoginPage.Passkeys, PageSecondFactor,
// PageKeys and PageKeyRemoveConfirm render the controls that
// static/webauthn.js drives; the script talks JSON to the broker (see
// WebAuthnRequest, Renderer.JSONError, JSONRedirect) and takes every text
// it shows from the page.
package web
