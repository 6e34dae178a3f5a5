package passkeys

import (
	"context"
	"fmt"
	"testing"

	"github.com/descope/virtualwebauthn"
)

// FuzzFinishLogin feeds arbitrary bodies to FinishLogin after a real
// BeginLogin (second factor and passwordless): it must never panic and
// never succeed (each ceremony has a fresh challenge no input can know).
func FuzzFinishLogin(f *testing.F) {
	fx := newFixture(f, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	fx.mustRegister(auth, alice, true)

	opts, err := fx.svc.BeginLogin(ctx, alice.Subject, "seed")
	if err != nil {
		f.Fatal(err)
	}
	valid := assertion(f, testRP, auth, 0, 1, opts)
	f.Add(valid)
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"","authenticatorData":"","signature":""}}`))
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"}}`))
	f.Add(valid[:len(valid)/2])

	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		n++
		c := fmt.Sprintf("fuzz%d", n)
		if _, err := fx.svc.BeginLogin(ctx, alice.Subject, c); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.svc.FinishLogin(ctx, c, alice.Subject, body); err == nil {
			t.Fatalf("second factor accepted %q", body)
		}
		if _, err := fx.svc.BeginPasswordless(ctx, c, false); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.svc.FinishLogin(ctx, c, "", body); err == nil {
			t.Fatalf("passwordless accepted %q", body)
		}
	})
}
