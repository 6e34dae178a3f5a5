package passkeys

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"

	"github.com/garde-sso/garde/internal/assurance"
)

func TestSecondFactor(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})

	if ok, err := f.svc.HasCredentials(ctx, alice.Subject); err != nil || ok {
		t.Fatalf("HasCredentials before = %v, %v", ok, err)
	}
	if _, err := f.svc.BeginLogin(ctx, alice.Subject, "x"); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("BeginLogin without credential = %v, want ErrNoCredential", err)
	}
	rec, err := f.register(auth, alice, false, "  Clé\x00 bleue  ")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if rec.Name != "Clé bleue" || rec.Subject != "alice" || rec.Discoverable || rec.BackupEligible || rec.Flagged {
		t.Fatalf("record = %+v", rec)
	}
	if string(rec.AAGUID) != string(testAAGUID[:]) {
		t.Fatalf("AAGUID = %x", rec.AAGUID)
	}
	if ok, err := f.svc.HasCredentials(ctx, alice.Subject); err != nil || !ok {
		t.Fatalf("HasCredentials after = %v, %v", ok, err)
	}

	res, err := f.secondFactor(auth, alice.Subject, 0, 1)
	if err != nil {
		t.Fatalf("second factor: %v", err)
	}
	if res.Subject != "alice" || !res.UserVerified || res.Level != assurance.Substantial {
		t.Fatalf("result = %+v", res)
	}
	// Device-bound, presence tested, UV without metadata: no method named.
	if want := []string{"hwk", "user"}; !slices.Equal(res.AMR, want) {
		t.Fatalf("AMR = %v, want %v", res.AMR, want)
	}
	got, _ := f.creds.GetWebAuthnCredential(ctx, rec.ID)
	if got.SignCount != 1 || !got.LastUsedAt.Equal(f.clock()) {
		t.Fatalf("after use: count %d, used %v", got.SignCount, got.LastUsedAt)
	}
	// A second use with a higher counter works too.
	if _, err := f.secondFactor(auth, alice.Subject, 0, 1); err != nil {
		t.Fatalf("second use: %v", err)
	}
}

func TestSecondFactorOptions(t *testing.T) {
	f := newFixture(t, Policy{SecondFactorUV: protocol.VerificationRequired})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)

	opts, err := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	if o.PublicKey.RPID != testRPID || o.PublicKey.UserVerification != "required" || len(o.PublicKey.AllowCredentials) != 1 {
		t.Fatalf("options = %s", opts)
	}
	// UV required by policy and not performed.
	auth.Options.UserNotVerified = true
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, auth, 0, 1, opts)); !errors.Is(err, ErrUserVerificationRequired) {
		t.Fatalf("no UV = %v, want ErrUserVerificationRequired", err)
	}
}

func TestSecondFactorWithoutUVWhenPreferred(t *testing.T) {
	f := newFixture(t, Policy{})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})
	f.mustRegister(auth, alice, false)
	res, err := f.secondFactor(auth, alice.Subject, 0, 1)
	if err != nil {
		t.Fatalf("second factor without UV: %v", err)
	}
	if res.UserVerified || !slices.Equal(res.AMR, []string{"hwk", "user"}) {
		t.Fatalf("result = %+v", res)
	}
}

func TestPasswordless(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, bob.Subject)})
	rec := f.mustRegister(auth, bob, true)
	if !rec.Discoverable {
		t.Fatal("passkey not recorded as discoverable")
	}

	opts, err := f.svc.BeginPasswordless(ctx, "pw", true)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Mediation string `json:"mediation"`
		PublicKey struct {
			UserVerification string `json:"userVerification"`
			AllowCredentials []any  `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	if o.Mediation != "conditional" || o.PublicKey.UserVerification != "required" || len(o.PublicKey.AllowCredentials) != 0 {
		t.Fatalf("options = %s", opts)
	}
	res, err := f.svc.FinishLogin(ctx, "pw", "", assertion(t, testRP, auth, 0, 1, opts))
	if err != nil {
		t.Fatalf("passwordless: %v", err)
	}
	if res.Subject != "bob" || !res.UserVerified || res.Level != assurance.Substantial {
		t.Fatalf("result = %+v", res)
	}
	if want := []string{"hwk", "user", "mfa"}; !slices.Equal(res.AMR, want) {
		t.Fatalf("AMR = %v, want %v", res.AMR, want)
	}
}

func TestRegistrationOptions(t *testing.T) {
	f := newFixture(t, Policy{Attestation: protocol.PreferDirectAttestation})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	rec := f.mustRegister(auth, alice, false)

	opts, err := f.svc.BeginRegistration(ctx, alice, true, "r")
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			RP   struct{ ID, Name string } `json:"rp"`
			User struct {
				ID          string `json:"id"`
				Name        string `json:"name"`
				DisplayName string `json:"displayName"`
			} `json:"user"`
			Attestation string `json:"attestation"`
			Selection   struct {
				ResidentKey      string `json:"residentKey"`
				RequireResident  bool   `json:"requireResidentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Exclude []struct {
				ID string `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	pk := o.PublicKey
	if pk.RP.ID != testRPID || pk.Attestation != "direct" || pk.Selection.ResidentKey != "required" || !pk.Selection.RequireResident || pk.Selection.UserVerification != "required" {
		t.Fatalf("options = %s", opts)
	}
	if pk.User.Name != alice.Username || pk.User.DisplayName != alice.DisplayName || strings.Contains(string(opts), `"alice"`) {
		t.Fatalf("user entity = %+v (the subject must not leak)", pk.User)
	}
	if len(pk.Exclude) != 1 || pk.Exclude[0].ID != protocol.URLEncodedBase64(rec.ID).String() {
		t.Fatalf("excludeCredentials = %+v", pk.Exclude)
	}
}

func TestRegistrationPasskeyNeedsUV(t *testing.T) {
	f := newFixture(t, Policy{})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})
	if _, err := f.register(auth, alice, true, ""); !errors.Is(err, ErrUserVerificationRequired) {
		t.Fatalf("passkey without UV = %v, want ErrUserVerificationRequired", err)
	}
}

func TestRegistrationDefaultAndLongName(t *testing.T) {
	f := newFixture(t, Policy{})
	rec, err := f.register(newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), alice, false, " ")
	if err != nil || rec.Name != DefaultName {
		t.Fatalf("name = %q, %v", rec.Name, err)
	}
	rec, err = f.register(newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), alice, false, strings.Repeat("é", 100))
	if err != nil || len([]rune(rec.Name)) != 64 {
		t.Fatalf("name = %q, %v", rec.Name, err)
	}
}

func TestReplayedAssertion(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	opts, err := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if err != nil {
		t.Fatal(err)
	}
	body := assertion(t, testRP, auth, 0, 1, opts)
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, body); err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, body); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("replay = %v, want ErrChallengeNotFound", err)
	}
}

func TestChallengeSingleUseEvenOnFailure(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, []byte("{}")); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, auth, 0, 1, opts)); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("after a failed attempt = %v, want ErrChallengeNotFound", err)
	}
}

func TestChallengeOfAnotherCeremony(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	optsA, _ := f.svc.BeginLogin(ctx, alice.Subject, "flow-a:2fa")
	if _, err := f.svc.BeginLogin(ctx, alice.Subject, "flow-b:2fa"); err != nil {
		t.Fatal(err)
	}
	body := assertion(t, testRP, auth, 0, 1, optsA)
	// The answer to A presented for B: B's challenge is another one.
	if _, err := f.svc.FinishLogin(ctx, "flow-b:2fa", alice.Subject, body); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("A's answer for B = %v, want ErrChallengeNotFound", err)
	}
	// A ceremony id that was never begun.
	if _, err := f.svc.FinishLogin(ctx, "flow-c:2fa", alice.Subject, body); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("unknown ceremony = %v, want ErrChallengeNotFound", err)
	}
	// A second-factor challenge cannot finish a passwordless sign-in, nor
	// one begun for alice a sign-in for bob.
	if _, err := f.svc.FinishLogin(ctx, "flow-a:2fa", "", body); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("2fa ceremony finished as passwordless = %v, want ErrChallengeNotFound", err)
	}
	optsD, _ := f.svc.BeginLogin(ctx, alice.Subject, "flow-d:2fa")
	if _, err := f.svc.FinishLogin(ctx, "flow-d:2fa", bob.Subject, assertion(t, testRP, auth, 0, 1, optsD)); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("ceremony of alice finished for bob = %v, want ErrChallengeNotFound", err)
	}
	// A registration ceremony cannot finish a login.
	if _, err := f.svc.BeginRegistration(ctx, alice, false, "flow-e:reg"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.FinishLogin(ctx, "flow-e:reg", alice.Subject, body); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("registration ceremony finished as login = %v, want ErrChallengeNotFound", err)
	}
}

func TestExpiredChallenge(t *testing.T) {
	f := newFixture(t, Policy{ChallengeTTL: time.Minute})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
	f.advance(time.Minute + time.Second)
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, auth, 0, 1, opts)); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("expired = %v, want ErrChallengeNotFound", err)
	}
	// Registration too.
	ropts, _ := f.svc.BeginRegistration(ctx, bob, false, "r")
	f.advance(2 * time.Minute)
	ao, _ := virtualwebauthn.ParseAttestationOptions(string(ropts))
	body := virtualwebauthn.CreateAttestationResponse(testRP, *auth, newCred(), *ao)
	if _, err := f.svc.FinishRegistration(ctx, bob, "r", "", []byte(body)); !errors.Is(err, ErrChallengeNotFound) {
		t.Fatalf("expired registration = %v, want ErrChallengeNotFound", err)
	}
}

func TestSignCountRegression(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	rec := f.mustRegister(auth, alice, true)
	f.mustRegister(auth, alice, false) // a second key, index 1
	if _, err := f.secondFactor(auth, alice.Subject, 0, 5); err != nil {
		t.Fatalf("count 5: %v", err)
	}
	// A clone answers with an older counter.
	_, err := f.secondFactor(auth, alice.Subject, 0, -2)
	if !errors.Is(err, ErrClonedAuthenticator) {
		t.Fatalf("regression = %v, want ErrClonedAuthenticator", err)
	}
	got, _ := f.creds.GetWebAuthnCredential(ctx, rec.ID)
	if !got.Flagged || got.SignCount != 5 {
		t.Fatalf("after regression: flagged %v count %d", got.Flagged, got.SignCount)
	}
	// The flagged key is no longer offered, and refused if used anyway.
	opts, err := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(opts), protocol.URLEncodedBase64(rec.ID).String()) {
		t.Fatal("flagged credential offered in allowCredentials")
	}
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, auth, 0, 10, opts)); !errors.Is(err, ErrCredentialFlagged) {
		t.Fatalf("flagged second factor = %v, want ErrCredentialFlagged", err)
	}
	if _, err := f.passwordless(testRP, auth, 0, 10); !errors.Is(err, ErrCredentialFlagged) {
		t.Fatalf("flagged passwordless = %v, want ErrCredentialFlagged", err)
	}
	// The other key still works.
	if _, err := f.secondFactor(auth, alice.Subject, 1, 0); err != nil {
		t.Fatalf("other key: %v", err)
	}
}

func TestZeroCountersAreNotClones(t *testing.T) {
	f := newFixture(t, Policy{})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	for range 2 {
		if _, err := f.secondFactor(auth, alice.Subject, 0, 0); err != nil {
			t.Fatalf("authenticator without counter: %v", err)
		}
	}
}

func TestOriginAndRPID(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	f.mustRegister(auth, alice, true)

	phishing := virtualwebauthn.RelyingParty{ID: testRPID, Name: "x", Origin: "https://sso.hopital.fr.evil.com"}
	otherRP := virtualwebauthn.RelyingParty{ID: "evil.com", Name: "x", Origin: testOrigin}
	for _, rp := range []virtualwebauthn.RelyingParty{phishing, otherRP} {
		opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
		if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, rp, auth, 0, 1, opts)); !errors.Is(err, ErrOriginOrRPID) {
			t.Fatalf("second factor at %+v = %v, want ErrOriginOrRPID", rp, err)
		}
		if _, err := f.passwordless(rp, auth, 0, 1); !errors.Is(err, ErrOriginOrRPID) {
			t.Fatalf("passwordless at %+v = %v, want ErrOriginOrRPID", rp, err)
		}
		if _, err := f.registerWith(rp, newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), bob, false, ""); !errors.Is(err, ErrOriginOrRPID) {
			t.Fatalf("registration at %+v = %v, want ErrOriginOrRPID", rp, err)
		}
	}
}

func TestPasswordlessNeedsUV(t *testing.T) {
	f := newFixture(t, Policy{})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	f.mustRegister(auth, alice, true)
	auth.Options.UserNotVerified = true
	if _, err := f.passwordless(testRP, auth, 0, 1); !errors.Is(err, ErrUserVerificationRequired) {
		t.Fatalf("passwordless without UV = %v, want ErrUserVerificationRequired", err)
	}
}

func TestPasswordlessUserHandleMismatch(t *testing.T) {
	f := newFixture(t, Policy{})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	f.mustRegister(auth, alice, true)
	auth.Options.UserHandle = UserHandle(testKey, bob.Subject)
	if _, err := f.passwordless(testRP, auth, 0, 1); !errors.Is(err, ErrWrongPerson) {
		t.Fatalf("user handle of bob on alice's key = %v, want ErrWrongPerson", err)
	}
}

func TestAnotherPersonsKey(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	aliceKey := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	bobKey := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(aliceKey, alice, false)
	f.mustRegister(bobKey, bob, false)
	opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, bobKey, 0, 1, opts)); !errors.Is(err, ErrWrongPerson) {
		t.Fatalf("bob's key for alice = %v, want ErrWrongPerson", err)
	}
}

func TestUnknownCredential(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	stranger := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	stranger.AddCredential(newCred())
	opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, stranger, 0, 1, opts)); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("unknown key = %v, want ErrUnknownCredential", err)
	}
}

func TestForgedSignatureDoesNotFlag(t *testing.T) {
	f := newFixture(t, Policy{})
	ctx := context.Background()
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	rec := f.mustRegister(auth, alice, false)
	if _, err := f.secondFactor(auth, alice.Subject, 0, 5); err != nil {
		t.Fatal(err)
	}
	// An attacker knowing the credential id signs a low counter with
	// another key: refused, and the credential is not flagged.
	forger := *auth
	forger.Credentials = []virtualwebauthn.Credential{newCred()}
	forger.Credentials[0].ID = rec.ID
	opts, _ := f.svc.BeginLogin(ctx, alice.Subject, "c")
	if _, err := f.svc.FinishLogin(ctx, "c", alice.Subject, assertion(t, testRP, &forger, 0, 1, opts)); !errors.Is(err, ErrVerification) {
		t.Fatalf("forged signature = %v, want ErrVerification", err)
	}
	if got, _ := f.creds.GetWebAuthnCredential(ctx, rec.ID); got.Flagged {
		t.Fatal("a forged answer flagged the credential")
	}
}

func TestAAGUIDLists(t *testing.T) {
	other := "00000000-0000-0000-0000-000000000001"
	for _, tc := range []struct {
		name        string
		allow, deny []string
		ok          bool
	}{
		{"deny", nil, []string{testAAGUIDString}, false},
		{"deny other", nil, []string{other}, true},
		{"allow other", []string{other}, nil, false},
		{"allow", []string{strings.ToUpper(testAAGUIDString)}, nil, true},
		{"deny wins", []string{testAAGUIDString}, []string{testAAGUIDString}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Policy{AllowAAGUIDs: tc.allow, DenyAAGUIDs: tc.deny})
			_, err := f.register(newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), alice, false, "")
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrNotAllowedByPolicy) {
				t.Fatalf("= %v, want ErrNotAllowedByPolicy", err)
			}
		})
	}
}

func TestSynced(t *testing.T) {
	synced := virtualwebauthn.AuthenticatorOptions{BackupEligible: true, BackupState: true, UserHandle: UserHandle(testKey, alice.Subject)}
	f := newFixture(t, Policy{})
	if _, err := f.register(newAuthenticator(synced), alice, true, ""); !errors.Is(err, ErrNotAllowedByPolicy) {
		t.Fatalf("synced passkey without AllowSynced = %v, want ErrNotAllowedByPolicy", err)
	}
	f = newFixture(t, Policy{AllowSynced: true})
	auth := newAuthenticator(synced)
	rec := f.mustRegister(auth, alice, true)
	if !rec.BackupEligible {
		t.Fatal("BackupEligible not recorded")
	}
	res, err := f.passwordless(testRP, auth, 0, 0)
	if err != nil {
		t.Fatalf("synced passwordless: %v", err)
	}
	if res.AMR[0] != "swk" || res.Level != assurance.Substantial {
		t.Fatalf("result = %+v", res)
	}
}

func TestNewValidation(t *testing.T) {
	creds := newMemCreds()
	good := func() Policy { return Policy{RPID: testRPID, RPName: "Garde", Origins: []string{testOrigin}} }
	for name, mut := range map[string]func(*Policy){
		"ip rpid":         func(p *Policy) { p.RPID = "192.168.1.10"; p.Origins = []string{"https://192.168.1.10"} },
		"ipv6 rpid":       func(p *Policy) { p.RPID = "::1" },
		"empty rpid":      func(p *Policy) { p.RPID = "" },
		"no origins":      func(p *Policy) { p.Origins = nil },
		"http origin":     func(p *Policy) { p.Origins = []string{"http://sso.hopital.fr"} },
		"foreign origin":  func(p *Policy) { p.Origins = []string{"https://evil.com"} },
		"origin path":     func(p *Policy) { p.Origins = []string{"https://sso.hopital.fr/login"} },
		"bad uv":          func(p *Policy) { p.SecondFactorUV = "always" },
		"bad attestation": func(p *Policy) { p.Attestation = "full" },
		"bad aaguid":      func(p *Policy) { p.DenyAAGUIDs = []string{"yubikey"} },
		"metadata roots":  func(p *Policy) { p.MetadataFile = "/nonexistent" },
		"require md":      func(p *Policy) { p.RequireMetadata = true },
	} {
		p := good()
		mut(&p)
		eph := newTestEphemeral(t)
		if _, err := New(p, creds, eph, testKey, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, p)
		}
	}
	eph := newTestEphemeral(t)
	if _, err := New(good(), creds, eph, testKey[:16], nil); err == nil {
		t.Error("short user handle key accepted")
	}
	local := Policy{RPID: "localhost", RPName: "Garde", Origins: []string{"http://localhost:8080"}}
	if _, err := New(local, creds, eph, testKey, nil); err != nil {
		t.Errorf("localhost demo: %v", err)
	}
}

func TestUserHandle(t *testing.T) {
	a, b := UserHandle(testKey, "alice"), UserHandle(testKey, "alice")
	if string(a) != string(b) || len(a) != 32 || strings.Contains(string(a), "alice") {
		t.Fatalf("UserHandle = %x", a)
	}
	if string(UserHandle(testKey, "bob")) == string(a) || string(UserHandle(testKey[1:], "alice")) == string(a) {
		t.Fatal("UserHandle collides")
	}
}
