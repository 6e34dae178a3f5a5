package passkeys

import (
	"context"
	"testing"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
)

// TestSQLite runs the main ceremonies against the SQLite credential store:
// sign counts, flags and library records must survive the round trip.
func TestSQLite(t *testing.T) {
	saved := credsFactory
	t.Cleanup(func() { credsFactory = saved })
	credsFactory = func(t testing.TB) store.WebAuthnCredentials {
		s, err := sqlite.Open(context.Background(), t.TempDir()+"/x.db")
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for name, test := range map[string]func(*testing.T){
		"SecondFactor":        TestSecondFactor,
		"Passwordless":        TestPasswordless,
		"Replayed":            TestReplayedAssertion,
		"SignCountRegression": TestSignCountRegression,
		"AnotherPersonsKey":   TestAnotherPersonsKey,
		"UnknownCredential":   TestUnknownCredential,
		"Synced":              TestSynced,
		"Metadata":            TestMetadata,
	} {
		t.Run(name, test)
	}
}
