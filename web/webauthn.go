package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
)

// The JSON protocol between static/webauthn.js and the broker. Every call
// is a same-origin POST with Content-Type: application/json.
//
//	begin  → WebAuthnRequest{flow_id, step, csrf_token}
//	       ← {"publicKey": {...}}          options, binary fields base64url
//	                                       (go-webauthn's CredentialCreation /
//	                                       CredentialAssertion marshal so)
//	       | {"error": key, "message": text}         (Renderer.JSONError)
//	finish → WebAuthnRequest{flow_id, step, csrf_token, name?, credential}
//	       ← {"redirect": url}                        (JSONRedirect)
//	       | {"error": key, "message": text}
//
// On the keys page there is no flow: flow_id and step are sent empty.

// WebAuthnRequest is the body webauthn.js posts to the begin and finish
// URLs.
type WebAuthnRequest struct {
	FlowID    string `json:"flow_id"`
	StepToken string `json:"step"`
	CSRFToken string `json:"csrf_token"`
	// Name is the key's label (finish of a registration only).
	Name string `json:"name,omitempty"`
	// Credential is the standard JSON form of the PublicKeyCredential
	// (RegistrationResponseJSON or AuthenticationResponseJSON, binary
	// fields base64url) on finish; absent on begin. go-webauthn parses it
	// with protocol.ParseCredentialCreationResponseBytes /
	// ParseCredentialRequestResponseBytes.
	Credential json.RawMessage `json:"credential,omitempty"`
}

// MaxWebAuthnRequestBytes bounds a WebAuthnRequest body. An attestation
// with a certificate chain is a few KiB; 64 KiB leaves room and no more.
const MaxWebAuthnRequestBytes = 64 << 10

// errNotJSON is returned by DecodeWebAuthnRequest for a body that is not
// application/json.
var errNotJSON = errors.New("web: request is not application/json")

// DecodeWebAuthnRequest reads a WebAuthnRequest from req: Content-Type
// application/json, at most MaxWebAuthnRequestBytes, one JSON object.
// Answer an error with Renderer.JSONError(..., MsgInvalidRequest).
func DecodeWebAuthnRequest(w http.ResponseWriter, req *http.Request) (WebAuthnRequest, error) {
	var body WebAuthnRequest
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return body, errNotJSON
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, MaxWebAuthnRequestBytes))
	if err := dec.Decode(&body); err != nil {
		return WebAuthnRequest{}, fmt.Errorf("web: webauthn request: %w", err)
	}
	if dec.More() {
		return WebAuthnRequest{}, errors.New("web: webauthn request: trailing data")
	}
	return body, nil
}

// WriteJSON writes v as JSON with status, not cacheable (the replies carry
// challenges and redirect URLs with codes).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"` + MsgServerError + `"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// webAuthnError is the JSON error reply.
type webAuthnError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Message returns the text of a message key in req's language (Language),
// for the broker's own JSON answers. An unknown key gives the server_error
// text, never the raw key.
func (r *Renderer) Message(req *http.Request, key string) string {
	return r.cat.text(Language(req), r.knownKey(key))
}

// JSONError answers a webauthn.js call with {"error": key, "message": the
// translated text} in the request's language; the script shows the
// message. key is a message key (MsgWebAuthnCloned, ...); an unknown key
// becomes server_error, as on the pages.
func (r *Renderer) JSONError(w http.ResponseWriter, req *http.Request, status int, key string) {
	key = r.knownKey(key)
	lang := Language(req)
	w.Header().Set("Content-Language", lang)
	w.Header().Set("Vary", "Accept-Language, Cookie")
	WriteJSON(w, status, webAuthnError{Error: key, Message: r.cat.text(lang, key)})
}

// JSONRedirect answers a successful finish: the script goes to url
// (http or https only; anything else is shown as a failure).
func JSONRedirect(w http.ResponseWriter, url string) {
	WriteJSON(w, http.StatusOK, struct {
		Redirect string `json:"redirect"`
	}{url})
}
