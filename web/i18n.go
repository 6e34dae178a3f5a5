package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Languages Garde speaks. French is the default: the users are clinicians
// in French hospitals; English is offered for visiting staff and vendors.
const (
	LangFR = "fr"
	LangEN = "en"
	// DefaultLang is used when nothing in the request asks for a supported
	// language.
	DefaultLang = LangFR
)

// Languages lists the supported languages, default first.
var supportedLangs = []string{LangFR, LangEN}

// LangParam is the query parameter that switches the language explicitly.
const LangParam = "lang"

// LangCookie remembers an explicit language choice. It is a preference, not
// a secret, and it must keep its name when the broker runs on plain HTTP, so
// it does not take the __Host- prefix of CookiePolicy.
const LangCookie = "garde_lang"

// langCookieMaxAge keeps the choice for a year: a workstation's browser is
// shared, but so, usually, is the language of the ward.
const langCookieMaxAge = 365 * 24 * time.Hour

// Message keys the broker passes in view models (LoginPage.Error,
// ErrorPage.MessageKey). Each has a text in every language, and a
// "<key>.title" and "<key>.next" (what to do next) used by the error page.
const (
	// MsgInvalidCredentials is shown for an unknown user AND for a wrong
	// password: one message for both, so the page does not tell an attacker
	// which usernames exist.
	MsgInvalidCredentials   = "invalid_credentials"
	MsgMissingCredentials   = "missing_credentials"
	MsgAccountDisabled      = "account_disabled"
	MsgAccountLocked        = "account_locked"
	MsgAccountExpired       = "account_expired"
	MsgPasswordExpired      = "password_expired"
	MsgThrottled            = "throttled"
	MsgDirectoryUnavailable = "directory_unavailable"
	MsgSessionExpired       = "session_expired"
	MsgFlowExpired          = "flow_expired"
	MsgCSRFFailed           = "csrf_failed"
	MsgInvalidRequest       = "invalid_request"
	MsgUnknownClient        = "unknown_client"
	MsgInvalidRedirectURI   = "invalid_redirect_uri"
	MsgAccessDenied         = "access_denied"
	MsgNotFound             = "not_found"
	MsgServerError          = "server_error"
	// MsgLogoutConfirm and MsgLoggedOut are the headings of the logout pages;
	// they have no ".next" text.
	MsgLogoutConfirm = "logout_confirm"
	MsgLoggedOut     = "logged_out"

	// Security keys and passkeys (WebAuthn). The first five are also the
	// texts webauthn.js shows for browser-side failures (data-msg-*).
	MsgWebAuthnCancelled   = "webauthn_cancelled"   // NotAllowedError: cancelled or timed out
	MsgWebAuthnExists      = "webauthn_exists"      // InvalidStateError: key already registered
	MsgWebAuthnSecurity    = "webauthn_security"    // SecurityError: wrong origin / RP ID
	MsgWebAuthnUnsupported = "webauthn_unsupported" // no WebAuthn in this browser
	MsgWebAuthnFailed      = "webauthn_failed"      // network or other failure
	// MsgWebAuthnNoCredential: "Aucune clé enregistrée pour ce compte".
	MsgWebAuthnNoCredential     = "webauthn_no_credential"
	MsgWebAuthnChallengeExpired = "webauthn_challenge_expired"
	// MsgWebAuthnWrongPerson: the key belongs to another account than the
	// one signing in.
	MsgWebAuthnWrongPerson = "webauthn_wrong_person"
	// MsgWebAuthnNotAllowed: this kind or model of key is refused by the
	// hospital's policy.
	MsgWebAuthnNotAllowed = "webauthn_not_allowed"
	// MsgWebAuthnCloned: possible clone (signature counter went back); the
	// key is blocked.
	MsgWebAuthnCloned = "webauthn_cloned"
	// MsgWebAuthnUVRequired: the key must check a PIN or biometrics.
	MsgWebAuthnUVRequired = "webauthn_uv_required"
	// MsgSecondFactorRequired: a security key is needed after the password.
	MsgSecondFactorRequired = "second_factor_required"
	// MsgEnrollmentNotAllowed explains how to become allowed to register a
	// key (KeysPage.EnrollHint).
	MsgEnrollmentNotAllowed = "enrollment_not_allowed"
	// MsgEnrollmentCodeInvalid is the one message for every refused code
	// (unknown, expired, used, other person's): no oracle.
	MsgEnrollmentCodeInvalid = "enrollment_code_invalid"
	// MsgKeyRemoveLastNeedsStrong: removing the last key needs a fresh
	// sign-in with a key or a card.
	MsgKeyRemoveLastNeedsStrong = "key_remove_last_needs_strong"
	// Notices, with no ".title"/".next": the grace-period explanation
	// (KeysPage.EnrollHint or .Message) and the keys page's success
	// messages (KeysPage.Message).
	MsgEnrollmentGrace = "enrollment_grace"
	MsgKeyRegistered   = "key_registered"
	MsgKeyRenamed      = "key_renamed"
	MsgKeyRemoved      = "key_removed"
)

// MessageKeys returns every message key a caller may put in a view model.
func MessageKeys() []string {
	return append([]string{
		MsgInvalidCredentials, MsgMissingCredentials, MsgAccountDisabled,
		MsgAccountLocked, MsgAccountExpired, MsgPasswordExpired, MsgThrottled,
		MsgDirectoryUnavailable, MsgSessionExpired, MsgFlowExpired, MsgCSRFFailed,
		MsgInvalidRequest, MsgUnknownClient, MsgInvalidRedirectURI,
		MsgAccessDenied, MsgNotFound, MsgServerError, MsgLogoutConfirm,
		MsgLoggedOut,
		MsgWebAuthnCancelled, MsgWebAuthnExists, MsgWebAuthnSecurity,
		MsgWebAuthnUnsupported, MsgWebAuthnFailed, MsgWebAuthnNoCredential,
		MsgWebAuthnChallengeExpired, MsgWebAuthnWrongPerson,
		MsgWebAuthnNotAllowed, MsgWebAuthnCloned, MsgWebAuthnUVRequired,
		MsgSecondFactorRequired, MsgEnrollmentNotAllowed,
		MsgEnrollmentCodeInvalid, MsgKeyRemoveLastNeedsStrong,
		MsgEnrollmentGrace, MsgKeyRegistered, MsgKeyRenamed, MsgKeyRemoved,
	}, upstreamMessageKeys()...)
}

// noticeMessageKeys are message keys that never head an error page, and so
// have no ".title" or ".next".
var noticeMessageKeys = []string{
	MsgLogoutConfirm, MsgLoggedOut,
	MsgEnrollmentGrace, MsgKeyRegistered, MsgKeyRenamed, MsgKeyRemoved,
}

// errorMessageKeys are the message keys that can head an error page, and so
// need a ".title" and a ".next".
func errorMessageKeys() []string {
	return slices.DeleteFunc(MessageKeys(), func(k string) bool {
		return slices.Contains(noticeMessageKeys, k)
	})
}

//go:embed i18n/*.json
var i18nFS embed.FS

// catalog maps language → key → text. Texts may hold fmt verbs with explicit
// argument indexes (%[1]s) so that translations can reorder arguments.
type catalog map[string]map[string]string

// loadCatalog reads the JSON files of each supported language — the main
// "<lang>.json" and one "<area>.<lang>.json" per area of the product (saml,
// admin, ...), so that each area keeps its texts beside the others without
// sharing a file — and checks that every language has exactly the same keys,
// and every message key with its title and next step: a missing translation
// is a start-up error, not a blank on a clinician's screen. A key defined
// in two files is an error too.
func loadCatalog() (catalog, error) {
	c := catalog{}
	for _, lang := range supportedLangs {
		files, err := fs.Glob(i18nFS, "i18n/*"+lang+".json")
		if err != nil {
			return nil, fmt.Errorf("web: translations for %q: %w", lang, err)
		}
		m := map[string]string{}
		found := false
		for _, file := range files {
			base := strings.TrimPrefix(file, "i18n/")
			if base != lang+".json" && !strings.HasSuffix(base, "."+lang+".json") {
				continue
			}
			found = found || base == lang+".json"
			raw, err := i18nFS.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("web: %s: %w", file, err)
			}
			part := map[string]string{}
			if err := json.Unmarshal(raw, &part); err != nil {
				return nil, fmt.Errorf("web: %s: %w", file, err)
			}
			for k, v := range part {
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("web: %s: key %q is defined in another %s file too", file, k, lang)
				}
				m[k] = v
			}
		}
		if !found {
			return nil, fmt.Errorf("web: translations for %q: i18n/%s.json is missing", lang, lang)
		}
		c[lang] = m
	}
	var problems []string
	for _, key := range MessageKeys() {
		for _, lang := range supportedLangs {
			if _, ok := c[lang][key]; !ok {
				problems = append(problems, lang+": missing "+key)
			}
		}
	}
	for _, key := range errorMessageKeys() {
		for _, lang := range supportedLangs {
			for _, suffix := range []string{".title", ".next"} {
				if _, ok := c[lang][key+suffix]; !ok {
					problems = append(problems, lang+": missing "+key+suffix)
				}
			}
		}
	}
	for _, a := range supportedLangs {
		for _, b := range supportedLangs {
			for key := range c[a] {
				if _, ok := c[b][key]; !ok {
					problems = append(problems, fmt.Sprintf("%s: missing %s (present in %s)", b, key, a))
				}
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		problems = slices.Compact(problems)
		return nil, fmt.Errorf("web: incomplete translations: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// has reports whether key exists (loadCatalog guarantees every language
// has the same keys).
func (c catalog) has(key string) bool {
	_, ok := c[DefaultLang][key]
	return ok
}

// text returns the translation of key in lang, formatted with args. An
// unknown key yields the key itself, so the fault is visible in tests;
// NewRenderer checks the templates' literal keys and Render replaces unknown
// keys from view models, so people do not see one.
func (c catalog) text(lang, key string, args ...any) string {
	s, ok := c[lang][key]
	if !ok {
		if s, ok = c[DefaultLang][key]; !ok {
			return key
		}
	}
	// Only texts with verbs are formatted, so surplus Args never show as
	// "%!(EXTRA ...)"; translations use explicit indexes (%[1]s), with which
	// fmt does not report unused arguments either.
	if len(args) > 0 && strings.Contains(s, "%") {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// Language returns the language to answer r in, "fr" or "en": an explicit
// ?lang= parameter, else the garde_lang cookie, else the Accept-Language
// header (with q-values), else French.
func Language(r *http.Request) string {
	if l, ok := supportedLang(r.URL.Query().Get(LangParam)); ok {
		return l
	}
	if c, err := r.Cookie(LangCookie); err == nil {
		if l, ok := supportedLang(c.Value); ok {
			return l
		}
	}
	return matchAcceptLanguage(r.Header.Get("Accept-Language"))
}

func supportedLang(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if slices.Contains(supportedLangs, s) {
		return s, true
	}
	return "", false
}

// maxAcceptLanguageEntries bounds the work spent on a hostile header.
const maxAcceptLanguageEntries = 32

// matchAcceptLanguage picks fr or en from an Accept-Language header
// (RFC 9110 §12.5.4). The primary subtag decides ("fr-CA" is French, "en-GB"
// English); a language takes the highest q of its entries; the highest q
// wins and ties go to the earlier entry; q=0 means "not this one"; "*"
// stands for a supported language the header does not name. Malformed
// entries are skipped. When nothing matches the answer is French, unless the
// header explicitly refuses French and not English.
func matchAcceptLanguage(header string) string {
	type score struct {
		q   float64
		pos int
	}
	scores := map[string]score{} // languages named by the header
	wild := score{q: -1}
	for i, entry := range strings.Split(header, ",") {
		if i >= maxAcceptLanguageEntries {
			break
		}
		tag, params, _ := strings.Cut(entry, ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		q, ok := parseQ(params)
		if !ok || tag == "" {
			continue
		}
		if tag == "*" {
			if q > wild.q {
				wild = score{q, i}
			}
			continue
		}
		primary, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
		lang, ok := supportedLang(primary)
		if !ok {
			continue
		}
		if s, seen := scores[lang]; !seen || q > s.q {
			scores[lang] = score{q, i}
		}
	}
	if wild.q > 0 {
		for _, lang := range supportedLangs {
			if _, named := scores[lang]; !named {
				scores[lang] = wild
				break
			}
		}
	}
	best, bestScore := "", score{q: 0}
	for _, lang := range supportedLangs {
		s, ok := scores[lang]
		if !ok || s.q == 0 {
			continue
		}
		if best == "" || s.q > bestScore.q || (s.q == bestScore.q && s.pos < bestScore.pos) {
			best, bestScore = lang, s
		}
	}
	if best != "" {
		return best
	}
	if fr, ok := scores[LangFR]; ok && fr.q == 0 {
		if en, ok := scores[LangEN]; !ok || en.q != 0 {
			return LangEN
		}
	}
	return DefaultLang
}

// parseQ reads the q parameter from the ";"-separated parameters of one
// Accept-Language entry. No q means 1. A q outside [0,1] or unparsable makes
// the entry invalid.
func parseQ(params string) (float64, bool) {
	q := 1.0
	for p := range strings.SplitSeq(params, ";") {
		name, value, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found {
			if strings.TrimSpace(p) == "" {
				continue
			}
			return 0, false
		}
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		v, ok := parseQValue(strings.TrimSpace(value))
		if !ok {
			return 0, false
		}
		q = v
	}
	return q, true
}

// LanguageSwitch remembers an explicit ?lang=fr|en in the garde_lang cookie,
// then calls next. The page itself already follows ?lang= (see Language), so
// no redirect is needed. isHTTPS reports whether the browser reached the
// broker over HTTPS (behind a TLS-terminating proxy r.TLS is nil); nil means
// DirectTLS. The cookie is Secure on HTTPS, SameSite=Lax, Path=/, one year.
func LanguageSwitch(next http.Handler, isHTTPS func(*http.Request) bool) http.Handler {
	if isHTTPS == nil {
		isHTTPS = DirectTLS
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lang, ok := supportedLang(r.URL.Query().Get(LangParam)); ok {
			http.SetCookie(w, &http.Cookie{
				Name:     LangCookie,
				Value:    lang,
				Path:     "/",
				MaxAge:   int(langCookieMaxAge / time.Second),
				Secure:   isHTTPS(r),
				HttpOnly: true, // no script reads it
				SameSite: http.SameSiteLaxMode,
			})
		}
		next.ServeHTTP(w, r)
	})
}

// DirectTLS reports whether r arrived over TLS at this process. Use it when
// no TLS-terminating proxy sits in front of Garde; behind a proxy, pass a
// function that trusts the configured proxies' forwarded header instead.
func DirectTLS(r *http.Request) bool { return r.TLS != nil }

// parseQValue parses an RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["."
// 0*3("0")]. Strict on purpose: ParseFloat would accept NaN, Inf and
// exponents.
func parseQValue(s string) (float64, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	if len(s) > 1 && s[1] != '.' {
		return 0, false
	}
	frac := ""
	if len(s) > 2 {
		frac = s[2:]
	}
	for _, c := range frac {
		if c < '0' || c > '9' || (s[0] == '1' && c != '0') {
			return 0, false
		}
	}
	if s[0] == '1' {
		return 1, true
	}
	v, err := strconv.ParseFloat("0."+frac+"0", 64)
	return v, err == nil
}
