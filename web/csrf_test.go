package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testKey() []byte { return bytes.Repeat([]byte{7}, 32) }

func TestCSRFToken(t *testing.T) {
	c := NewCSRF(testKey())
	binding := NewBinding()
	tok := c.Token(binding, "login:flow-1")
	if tok == "" || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q is not unpadded base64url", tok)
	}
	if !c.Verify(binding, "login:flow-1", tok) {
		t.Fatal("token does not verify for its own binding and purpose")
	}
	if c.Token(binding, "login:flow-1") != tok {
		t.Error("token is not deterministic")
	}
	other := NewBinding()
	if other == binding {
		t.Fatal("NewBinding repeats")
	}
	tampered := []byte(tok)
	tampered[3] ^= 1
	if tampered[3] == '+' || tampered[3] == '/' {
		tampered[3] = 'A'
	}
	for _, tc := range []struct{ name, binding, purpose, token string }{
		{"other binding", other, "login:flow-1", tok},
		{"other purpose", binding, "logout", tok},
		{"other flow", binding, "login:flow-2", tok},
		{"tampered", binding, "login:flow-1", string(tampered)},
		{"truncated", binding, "login:flow-1", tok[:len(tok)-1]},
		{"extended", binding, "login:flow-1", tok + "A"},
		{"padded", binding, "login:flow-1", tok + "="},
		{"empty token", binding, "login:flow-1", ""},
		{"empty binding", "", "login:flow-1", c.Token("", "login:flow-1")},
		{"not base64", binding, "login:flow-1", "!!!"},
	} {
		if c.Verify(tc.binding, tc.purpose, tc.token) {
			t.Errorf("%s: verified", tc.name)
		}
	}
	// Another key does not verify.
	if NewCSRF(bytes.Repeat([]byte{8}, 32)).Verify(binding, "login:flow-1", tok) {
		t.Error("verified under another key")
	}
	// The 0x00 separator cannot be forged by moving bytes across it.
	if c.Token("a\x00b", "c") != "" || c.Token("a", "b\x00c") != "" {
		t.Error("NUL in binding or purpose must yield no token")
	}
	if c.Token("", "x") != "" {
		t.Error("empty binding must yield no token")
	}
}

func TestCSRFKeyIsCopied(t *testing.T) {
	key := testKey()
	c := NewCSRF(key)
	tok := c.Token("b", "p")
	key[0] ^= 0xff
	if !c.Verify("b", "p", tok) {
		t.Error("CSRF kept a reference to the caller's key")
	}
}

func TestCSRFShortKeyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("short key accepted")
		}
	}()
	NewCSRF(make([]byte, 16))
}

func TestCrossOriginProtection(t *testing.T) {
	r := newTestRenderer(t)
	cop := CrossOriginProtection()
	cop.SetDenyHandler(r.CrossOriginDenied())
	h := cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	req := httptest.NewRequest(http.MethodPost, "https://garde.example.fr/login?lang=en", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "Form refused") {
		t.Errorf("cross-site POST: %d\n%s", w.Code, w.Body)
	}

	req = httptest.NewRequest(http.MethodPost, "https://garde.example.fr/login", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Errorf("same-origin POST: %d", w.Code)
	}
}
