// Package redisstore is the ephemeral store on Redis, for several replicas.
//
// It works on a single server, behind Sentinel, or on a Cluster: Options
// picks which. Every key gets Options.KeyPrefix, so one Redis can host
// several Garde deployments (or test runs) side by side.
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/garde-sso/garde/broker/store"
)

var _ store.Ephemeral = (*Store)(nil)

// Options selects and reaches the Redis deployment.
type Options struct {
	// Addrs are host:port addresses: one for a single server, the seed
	// nodes of a Cluster (more than one), or the Sentinels when MasterName
	// is set.
	Addrs []string
	// MasterName is the Sentinel master name; set it to use Sentinel.
	MasterName string
	// Cluster forces Cluster mode with a single address (a managed
	// service's configuration endpoint).
	Cluster  bool
	Username string
	Password string
	// DB is the database number (single server or Sentinel only).
	DB int
	// KeyPrefix is put before every key. It must not contain '{' or '}':
	// callers' hash tags decide the Cluster slot, and a tag in the prefix
	// would put every key in one slot.
	KeyPrefix string
	// TLS enables TLS when non-nil.
	TLS *tls.Config
}

// Store is a store.Ephemeral on Redis.
type Store struct {
	c      redis.UniversalClient
	prefix string
	owned  bool
}

// Open connects to Redis as o says and checks that it answers. The store
// owns the client: Close closes it.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redisstore: no address")
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redisstore: key prefix %q must not contain '{' or '}'", o.KeyPrefix)
	}
	if o.DB != 0 && o.MasterName == "" && (len(o.Addrs) > 1 || o.Cluster) {
		return nil, errors.New("redisstore: a Redis Cluster has no database numbers; leave DB at 0")
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         o.Addrs,
		MasterName:    o.MasterName,
		IsClusterMode: o.Cluster,
		Username:      o.Username,
		Password:      o.Password,
		DB:            o.DB,
		TLSConfig:     o.TLS,
	})
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisstore: ping %s: %w", strings.Join(o.Addrs, ","), err)
	}
	return &Store{c: c, prefix: o.KeyPrefix, owned: true}, nil
}

// New wraps a client the caller owns (Close leaves it open), with every key
// under prefix. Tests use it with a random prefix.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{c: client, prefix: prefix}
}

func (s *Store) key(k string) string { return s.prefix + k }

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("redisstore: ttl must be positive")
	}
	return nil
}

// ms converts a TTL to whole milliseconds for PX, rounding up so that a
// sub-millisecond TTL does not become "no expiry" or an error.
// Durations near the maximum saturate instead of overflowing to a negative
// PX, which Redis refuses.
func ms(d time.Duration) int64 {
	if d > math.MaxInt64-time.Millisecond {
		return int64(math.MaxInt64 / time.Millisecond)
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Set implements store.Ephemeral.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := s.c.Do(ctx, "set", s.key(key), value, "px", ms(ttl)).Err(); err != nil {
		return fmt.Errorf("redisstore: set: %w", err)
	}
	return nil
}

// SetNX implements store.Ephemeral with SET NX PX.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	err := s.c.Do(ctx, "set", s.key(key), value, "nx", "px", ms(ttl)).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	default:
		return false, fmt.Errorf("redisstore: set nx: %w", err)
	}
}

// Get implements store.Ephemeral.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := s.c.Get(ctx, s.key(key)).Bytes()
	return value(v, err, "get")
}

// Take implements store.Ephemeral with GETDEL (Redis 6.2 or later), which is
// atomic: of concurrent callers exactly one gets the value.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := s.c.GetDel(ctx, s.key(key)).Bytes()
	return value(v, err, "getdel")
}

func value(v []byte, err error, op string) ([]byte, error) {
	switch {
	case err == nil:
		if v == nil {
			v = []byte{}
		}
		return v, nil
	case errors.Is(err, redis.Nil):
		return nil, store.ErrNotFound
	default:
		return nil, fmt.Errorf("redisstore: %s: %w", op, err)
	}
}

// casScript swaps the value only if it equals ARGV[1]. KEEPTTL (Redis 6.0)
// keeps the remaining TTL, so a used code expires when the unused one would
// have. A missing key reads as false, which never equals a string.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
	return 1
end
return 0`)

// CompareAndSwap implements store.Ephemeral with a Lua script, which Redis
// runs atomically.
func (s *Store) CompareAndSwap(ctx context.Context, key string, prev, next []byte) (bool, error) {
	n, err := casScript.Run(ctx, s.c, []string{s.key(key)}, prev, next).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: compare and swap: %w", err)
	}
	return n == 1, nil
}

// Delete implements store.Ephemeral. The keys may hash to different Cluster
// slots, so it sends one DEL per key (pipelined) rather than one multi-key
// DEL, which a Cluster rejects with CROSSSLOT.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := s.c.Del(ctx, s.key(keys[0])).Err(); err != nil {
			return fmt.Errorf("redisstore: del: %w", err)
		}
		return nil
	}
	pipe := s.c.Pipeline()
	for _, k := range keys {
		pipe.Del(ctx, s.key(k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: del: %w", err)
	}
	return nil
}

// incrScript starts the window on the first increment only: later ones do
// not extend it (fixed window). In one script, a crash between INCR and
// PEXPIRE cannot leave a counter that never expires.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n`)

// Incr implements store.Ephemeral.
func (s *Store) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := checkTTL(window); err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.c, []string{s.key(key)}, ms(window)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: incr: %w", err)
	}
	return n, nil
}

// Ping implements store.Ephemeral.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the client if Open made it; a client given to New is the
// caller's to close.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	return s.c.Close()
}
