package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/garde-sso/garde/broker/store/memory"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/connectors"
)

func testEngine(t *testing.T, key string) *Engine {
	t.Helper()
	now := time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)
	m := memory.New(func() time.Time { return now })
	t.Cleanup(func() { m.Close() })
	return New(Options{
		Ephemeral: m,
		MACKey:    []byte(strings.Repeat(key, 32)[:32]),
		Clock:     func() time.Time { return now },
	})
}

// A hop's MAC is bound to its flow and its step: a URL or form replayed
// from one step, or from another flow, is worthless.
func TestMACBinding(t *testing.T) {
	e := testEngine(t, "k")
	const flowID, otherFlow = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFi", "b3RoZXJmbG93b3RoZXJmbG93b3RoZXI"
	cred := e.mac(flowID, stepCredentials)

	if !e.checkMAC(flowID, stepCredentials, cred) {
		t.Fatal("a MAC does not verify for its own flow and step")
	}
	if cred != e.mac(flowID, stepCredentials) {
		t.Fatal("mac is not deterministic")
	}
	if e.checkMAC(flowID, stepComplete, cred) {
		t.Fatal("the credentials-step MAC completes the flow")
	}
	if e.checkMAC(otherFlow, stepCredentials, cred) {
		t.Fatal("a MAC of one flow verifies for another")
	}
	if e.checkMAC(otherFlow, stepComplete, e.mac(flowID, stepComplete)) {
		t.Fatal("a completion MAC of one flow completes another")
	}
	// Another deployment (or a rotated key) does not accept it.
	if testEngine(t, "z").checkMAC(flowID, stepCredentials, cred) {
		t.Fatal("a MAC verifies under another key")
	}
	for _, bad := range []string{"", cred[:len(cred)-1], cred + "A", strings.ToUpper(cred), flowID} {
		if e.checkMAC(flowID, stepCredentials, bad) {
			t.Fatalf("checkMAC accepted %q", bad)
		}
	}
	// An empty flow id still needs its MAC (Resume passes "" when the
	// query has none).
	if e.checkMAC("", stepComplete, "") {
		t.Fatal("empty flow id with empty MAC verifies")
	}
	// The separator keeps (id, step) pairs apart: moving characters
	// between the id and the step changes the MAC.
	if e.mac("ab", "c") == e.mac("a", "bc") || e.mac(flowID+"\x00", "") == e.mac(flowID, "") {
		t.Fatal("mac is ambiguous about where the flow id ends")
	}
}

func TestHashBinding(t *testing.T) {
	a, b := hashBinding("browser-one-secret-0123456789abcdef"), hashBinding("browser-two-secret-0123456789abcdef")
	if a == b {
		t.Fatal("two bindings hash alike")
	}
	if a != hashBinding("browser-one-secret-0123456789abcdef") {
		t.Fatal("hashBinding is not deterministic")
	}
	if strings.Contains(a, "browser-one") || len(a) != 43 {
		t.Fatalf("hashBinding = %q: want a base64url SHA-256, not the secret", a)
	}
}

// loadFlow hands a flow only to the browser that started it.
func TestLoadFlowBinding(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, "k")
	const binding = "cookie-binding-secret-of-browser-A-0123456789"
	rec := &record{ID: randomID(24), Binding: hashBinding(binding), State: stateCredentials,
		Request: Request{Protocol: "oidc", App: "dossier-patient"}, CreatedAt: e.now()}
	if err := e.saveFlow(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, raw, err := e.loadFlow(ctx, rec.ID, binding)
	if err != nil || got.Request.App != "dossier-patient" || len(raw) == 0 {
		t.Fatalf("loadFlow with the right binding = %+v, %v", got, err)
	}
	for name, tc := range map[string]struct{ id, binding string }{
		"other browser":                  {rec.ID, "cookie-binding-secret-of-browser-B-0123456789"},
		"stored hash used as the cookie": {rec.ID, hashBinding(binding)},
		"no cookie":                      {rec.ID, ""},
		"no flow id":                     {"", binding},
		"unknown flow":                   {randomID(24), binding},
	} {
		if _, _, err := e.loadFlow(ctx, tc.id, tc.binding); !errors.Is(err, ErrFlowNotFound) {
			t.Errorf("%s: loadFlow = %v, want ErrFlowNotFound", name, err)
		}
	}
}

func TestLoginErrorKey(t *testing.T) {
	// Detail a person must never see: the directory's own words.
	const detail = "ldap: result 49 data 52e, v4563 cn=alice,ou=users,dc=chu,dc=fr at 10.1.2.3"
	tests := []struct {
		err  error
		want string
	}{
		{throttle.ErrThrottled, "throttled"},
		{connectors.ErrAccountDisabled, "account_disabled"},
		{connectors.ErrAccountLocked, "account_locked"},
		{connectors.ErrAccountExpired, "account_expired"},
		{connectors.ErrPasswordExpired, "password_expired"},
		{connectors.ErrUnavailable, "directory_unavailable"},
		{connectors.ErrInvalidCredentials, "invalid_credentials"},
		// Connectors wrap their sentinels with context.
		{fmt.Errorf("%s: %w", detail, connectors.ErrAccountLocked), "account_locked"},
		{fmt.Errorf("%s: %w", detail, connectors.ErrUnavailable), "directory_unavailable"},
		{fmt.Errorf("%s: %w", detail, connectors.ErrInvalidCredentials), "invalid_credentials"},
		// Anything unknown is the generic message: no hint that the
		// account exists, nor of what went wrong.
		{errors.New(detail), "invalid_credentials"},
		{context.DeadlineExceeded, "invalid_credentials"},
		{nil, "invalid_credentials"},
	}
	for _, tt := range tests {
		key, reason := loginErrorKey(tt.err)
		if key != tt.want || reason != tt.want {
			t.Errorf("loginErrorKey(%v) = %q, %q; want %q", tt.err, key, reason, tt.want)
		}
		if strings.Contains(key, "ldap") || strings.Contains(reason, "cn=") || strings.Contains(reason, "10.1.2.3") {
			t.Errorf("loginErrorKey(%v) reveals detail: %q / %q", tt.err, key, reason)
		}
	}
}

func TestDescribe(t *testing.T) {
	err := fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter must be present.").WithDebug("redirect_uri=https://evil.test")
	got := describe(fmt.Errorf("authorize: %w", err))
	if !strings.HasPrefix(got, "invalid_request: ") || !strings.Contains(got, "redirect_uri' parameter must be present") ||
		!strings.Contains(got, "(redirect_uri=https://evil.test)") {
		t.Fatalf("describe = %q: want error, description, hint and debug", got)
	}
	// fosite errors made with WithTrace carry a stack: the log line must
	// not.
	traced := fosite.ErrServerError.WithTrace(errors.New("boom"))
	if len(traced.StackTrace()) == 0 {
		t.Fatal("test setup: WithTrace attached no stack")
	}
	for _, e := range []error{err, traced} {
		if d := describe(e); strings.Contains(d, "\n") || strings.Contains(d, ".go:") || strings.Contains(d, "goroutine") {
			t.Fatalf("describe leaks a stack trace: %q", d)
		}
	}
	if got := describe(errors.New("plain failure")); got != "plain failure" {
		t.Fatalf("describe(plain) = %q", got)
	}
}

// The log is where the detail goes (a person only sees a reference): a
// server error wrapping a store failure must keep that failure in the log.
func TestDescribeKeepsCause(t *testing.T) {
	err := fosite.ErrServerError.WithWrap(errors.New("redis: connection refused"))
	if d := describe(err); !strings.Contains(d, "connection refused") {
		t.Fatalf("describe(%v) = %q drops the wrapped cause", err, d)
	}
}
