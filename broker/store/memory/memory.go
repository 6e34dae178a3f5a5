// Package memory is the in-process ephemeral store, for a single replica.
//
// Entries live in a sharded, mutex-protected map. An expired entry is
// invisible as soon as its deadline passes (every read checks it) and is
// removed later by a background sweeper, so memory stays bounded by the
// live set plus one sweep interval of garbage.
package memory

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// SweepInterval is how often the background sweeper removes expired entries.
const SweepInterval = time.Minute

// shardCount spreads keys over independent locks so that concurrent token
// requests rarely wait on each other. A power of two, for a cheap modulo.
const shardCount = 32

// ErrNotInteger is returned by Incr when the key holds a value that is not a
// decimal integer (as Redis does).
var ErrNotInteger = errors.New("memory: value is not an integer")

var _ store.Ephemeral = (*Store)(nil)

// entry is stored by value in the map: no allocation per entry beyond the
// value bytes, which the store owns exclusively (callers get copies).
type entry struct {
	value   []byte
	expires time.Time
	// n holds a counter written by Incr; value is nil then, and Get formats
	// n on demand.
	n       int64
	counter bool
}

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

// Store is an in-memory store.Ephemeral. The zero value is not usable; call
// New.
type Store struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [shardCount]shard

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a store using now as its clock (nil means time.Now) and starts
// its sweeper; Close stops it. Tests pass a fake clock to expire entries
// without sleeping.
func New(now func() time.Time) *Store {
	return newStore(now, SweepInterval)
}

func newStore(now func() time.Time, every time.Duration) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{
		now:  now,
		seed: maphash.MakeSeed(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
	}
	go s.sweepLoop(every)
	return s
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes expired entries now and returns how many it removed. The
// background sweeper calls it; it locks one shard at a time so that it never
// stalls every request at once.
func (s *Store) Sweep() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now := s.now()
		for k, e := range sh.m {
			if !now.Before(e.expires) {
				delete(sh.m, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of entries held, expired or not (for metrics).
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&(shardCount-1)]
}

// live returns the entry under key if it exists and has not expired. The
// caller holds sh.mu.
func (s *Store) live(sh *shard, key string) (entry, bool) {
	e, ok := sh.m[key]
	if !ok {
		return entry{}, false
	}
	if !s.now().Before(e.expires) {
		delete(sh.m, key)
		return entry{}, false
	}
	return e, true
}

// assign copies value into dst's storage when it fits, else allocates. dst
// is owned by the store alone (never handed out), so reusing it is safe.
func assign(dst, value []byte) []byte {
	if dst != nil && cap(dst) >= len(value) {
		return append(dst[:0], value...)
	}
	return append(make([]byte, 0, len(value)), value...)
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("memory: ttl must be positive")
	}
	return nil
}

// Set implements store.Ephemeral.
func (s *Store) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	old := sh.m[key] // expired or not: its buffer can be reused either way
	sh.m[key] = entry{value: assign(old.value, value), expires: s.now().Add(ttl)}
	sh.mu.Unlock()
	return nil
}

// SetNX implements store.Ephemeral.
func (s *Store) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := s.live(sh, key); ok {
		return false, nil
	}
	sh.m[key] = entry{value: assign(nil, value), expires: s.now().Add(ttl)}
	return true, nil
}

// Get implements store.Ephemeral.
func (s *Store) Get(_ context.Context, key string) ([]byte, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := s.live(sh, key)
	if !ok {
		sh.mu.Unlock()
		return nil, store.ErrNotFound
	}
	var v []byte
	if e.counter {
		v = strconv.AppendInt(nil, e.n, 10)
	} else {
		v = assign(nil, e.value)
	}
	sh.mu.Unlock()
	return v, nil
}

// Take implements store.Ephemeral.
func (s *Store) Take(_ context.Context, key string) ([]byte, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := s.live(sh, key)
	if ok {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	if !ok {
		return nil, store.ErrNotFound
	}
	if e.counter {
		return strconv.AppendInt(nil, e.n, 10), nil
	}
	// The entry is gone from the map, so its buffer can be handed out as is.
	if e.value == nil {
		return []byte{}, nil
	}
	return e.value, nil
}

// CompareAndSwap implements store.Ephemeral.
func (s *Store) CompareAndSwap(_ context.Context, key string, prev, next []byte) (bool, error) {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := s.live(sh, key)
	if !ok {
		return false, nil
	}
	if e.counter {
		var buf [20]byte
		if !bytes.Equal(strconv.AppendInt(buf[:0], e.n, 10), prev) {
			return false, nil
		}
		e.counter, e.n = false, 0
	} else if !bytes.Equal(e.value, prev) {
		return false, nil
	}
	e.value = assign(e.value, next) // e.expires is kept: the TTL runs on
	sh.m[key] = e
	return true, nil
}

// Delete implements store.Ephemeral.
func (s *Store) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		sh := s.shard(k)
		sh.mu.Lock()
		delete(sh.m, k)
		sh.mu.Unlock()
	}
	return nil
}

// Incr implements store.Ephemeral.
func (s *Store) Incr(_ context.Context, key string, window time.Duration) (int64, error) {
	if err := checkTTL(window); err != nil {
		return 0, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := s.live(sh, key)
	if !ok {
		sh.m[key] = entry{n: 1, counter: true, expires: s.now().Add(window)}
		return 1, nil
	}
	if !e.counter {
		// A value written by Set: count on from it if it is a number, as
		// Redis would, keeping its TTL.
		n, err := strconv.ParseInt(string(e.value), 10, 64)
		if err != nil {
			return 0, ErrNotInteger
		}
		e = entry{n: n, counter: true, expires: e.expires}
	}
	e.n++
	sh.m[key] = e
	return e.n, nil
}

// Ping implements store.Ephemeral; an in-process store always answers.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the sweeper. The store still answers afterwards (it holds no
// outside resource), but expired entries are no longer swept.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}
