// Package testutil holds helpers shared by Garde's tests.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
)

// Environment variables naming the test services.
const (
	EnvRedisAddr       = "GARDE_TEST_REDIS_ADDR"
	EnvPostgresDSN     = "GARDE_TEST_POSTGRES_DSN"
	EnvRequireServices = "GARDE_TEST_REQUIRE_SERVICES"
)

// Defaults when the environment does not name the services.
const (
	DefaultRedisAddr   = "127.0.0.1:6379"
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

const serviceHint = "start the test services with scripts/test.sh (or set %s)"

// unavailable skips the test when a service does not answer, or fails it
// when GARDE_TEST_REQUIRE_SERVICES=1 (CI), where a skip would hide a whole
// backend's tests.
func unavailable(t testing.TB, service, env string, err error) {
	t.Helper()
	if os.Getenv(EnvRequireServices) == "1" {
		t.Fatalf("%s unavailable: %v; "+serviceHint, service, err, env)
	}
	t.Skipf("%s unavailable: %v; "+serviceHint+"; set %s=1 to fail instead of skipping",
		service, err, env, EnvRequireServices)
}

// Random returns n random bytes as hex.
func Random(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// RedisAddr returns the test Redis address (GARDE_TEST_REDIS_ADDR, or the
// default).
func RedisAddr() string { return env(EnvRedisAddr, DefaultRedisAddr) }

// RedisClient returns a client on the test Redis and a key prefix unique to
// this test. At cleanup it deletes the keys under the prefix and closes the
// client.
func RedisClient(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	addr := RedisAddr()
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       []string{addr},
		DialTimeout: 2 * time.Second,
		MaxRetries:  -1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		unavailable(t, "Redis at "+addr, EnvRedisAddr, err)
	}
	prefix := "garde-test:" + Random(t, 8) + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, prefix+"*", 500).Result()
			if err != nil {
				t.Errorf("testutil: cleaning Redis keys %s*: %v", prefix, err)
				return
			}
			for _, k := range keys {
				c.Del(ctx, k)
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	})
	return c, prefix
}

// PostgresDSN creates a fresh database garde_t_<random> on the test server
// and returns a DSN for it; at cleanup it drops the database. Test packages
// running in parallel thus never see each other's rows. Close what uses the
// database before the cleanup runs (register its Close with t.Cleanup after
// calling PostgresDSN).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := env(EnvPostgresDSN, DefaultPostgresDSN)
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("testutil: %s: %v", EnvPostgresDSN, err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unavailable(t, "PostgreSQL at "+cfg.Host, EnvPostgresDSN, err)
	}
	name := "garde_t_" + Random(t, 8)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testutil: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	return withDatabase(t, admin, name)
}

func dropDatabase(t testing.TB, admin, name string) {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Errorf("testutil: %v", err)
		return
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// FORCE (PostgreSQL 13+) ends sessions a test left open.
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		if _, err2 := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err2 != nil {
			t.Errorf("testutil: drop database %s: %v", name, err)
		}
	}
}

// withDatabase returns dsn with its database replaced by name, for both the
// URL and the key=value forms.
func withDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("testutil: %s: %v", EnvPostgresDSN, err)
		}
		u.Path = "/" + name
		return u.String()
	}
	// In key=value form a later key overrides an earlier one.
	return dsn + " dbname=" + name
}
