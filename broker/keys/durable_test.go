package keys

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/postgres"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/internal/testutil"
)

// TestOnDurableStores runs the store-dependent tests against the real
// durable stores, where concurrent replicas meet on a unique constraint.
func TestOnDurableStores(t *testing.T) {
	backends := map[string]func(t testing.TB) store.SigningKeys{
		"sqlite": func(t testing.TB) store.SigningKeys {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t testing.TB) store.SigningKeys {
			s, err := postgres.Open(context.Background(), testutil.PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	tests := map[string]func(*testing.T){
		"FirstStart":           TestFirstStartCreatesSealedKeysAndSecondStartLoadsThem,
		"WrongMasterKey":       TestWrongMasterKey,
		"RotationAndPruning":   TestRotationAndPruning,
		"PublishedBefore":      TestSuccessorIsPublishedBeforeItSigns,
		"ConcurrentRotation":   TestConcurrentRotationMakesOneGeneration,
		"ConcurrentFirstStart": TestConcurrentFirstStartMakesOneKey,
	}
	saved := newTestStore
	t.Cleanup(func() { newTestStore = saved })
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			newTestStore = open
			for tn, fn := range tests {
				t.Run(tn, fn)
			}
		})
	}
}
