package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garde-sso/garde/broker/store"
)

// storeMetrics time every store operation: garde_store_duration_seconds
// and garde_store_errors_total, by store (durable, ephemeral) and op.
type storeMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	m := &storeMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "garde_store_duration_seconds", Help: "Durable and ephemeral store operation latency, by store and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"store", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garde_store_errors_total", Help: "Store operations that failed (not found and conflicts are answers, not failures), by store and operation.",
		}, []string{"store", "op"}),
	}
	reg.MustRegister(m.duration, m.errors)
	return m
}

// done records one operation that started at start. store.ErrNotFound and
// store.ErrConflict are answers (an expired code, a lost race), not
// failures of the store.
func (m *storeMetrics) done(st, op string, start time.Time, err error) {
	m.duration.WithLabelValues(st, op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) && !errors.Is(err, context.Canceled) {
		m.errors.WithLabelValues(st, op).Inc()
	}
}

func timed[T any](m *storeMetrics, st, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	m.done(st, op, start, err)
	return v, err
}

func timed0(m *storeMetrics, st, op string, f func() error) error {
	start := time.Now()
	err := f()
	m.done(st, op, start, err)
	return err
}

// timedEphemeral is a store.Ephemeral that records its operations.
type timedEphemeral struct {
	store.Ephemeral
	m *storeMetrics
}

const ephemeral, durable = "ephemeral", "durable"

func (t timedEphemeral) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return timed0(t.m, ephemeral, "set", func() error { return t.Ephemeral.Set(ctx, key, value, ttl) })
}
func (t timedEphemeral) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return timed(t.m, ephemeral, "setnx", func() (bool, error) { return t.Ephemeral.SetNX(ctx, key, value, ttl) })
}
func (t timedEphemeral) Get(ctx context.Context, key string) ([]byte, error) {
	return timed(t.m, ephemeral, "get", func() ([]byte, error) { return t.Ephemeral.Get(ctx, key) })
}
func (t timedEphemeral) Take(ctx context.Context, key string) ([]byte, error) {
	return timed(t.m, ephemeral, "take", func() ([]byte, error) { return t.Ephemeral.Take(ctx, key) })
}
func (t timedEphemeral) CompareAndSwap(ctx context.Context, key string, prev, next []byte) (bool, error) {
	return timed(t.m, ephemeral, "compare_and_swap", func() (bool, error) { return t.Ephemeral.CompareAndSwap(ctx, key, prev, next) })
}
func (t timedEphemeral) Delete(ctx context.Context, keys ...string) error {
	return timed0(t.m, ephemeral, "delete", func() error { return t.Ephemeral.Delete(ctx, keys...) })
}
func (t timedEphemeral) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	return timed(t.m, ephemeral, "incr", func() (int64, error) { return t.Ephemeral.Incr(ctx, key, window) })
}
func (t timedEphemeral) Ping(ctx context.Context) error {
	return timed0(t.m, ephemeral, "ping", func() error { return t.Ephemeral.Ping(ctx) })
}

// timedDurable is a store.Durable that records its operations. Methods
// added to store.Durable later pass through, untimed, until listed here.
type timedDurable struct {
	store.Durable
	m *storeMetrics
}

func (t timedDurable) InsertSigningKey(ctx context.Context, k store.SigningKey) error {
	return timed0(t.m, durable, "insert_signing_key", func() error { return t.Durable.InsertSigningKey(ctx, k) })
}
func (t timedDurable) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return timed(t.m, durable, "list_signing_keys", func() ([]store.SigningKey, error) { return t.Durable.ListSigningKeys(ctx) })
}
func (t timedDurable) CreateRefreshToken(ctx context.Context, r store.RefreshToken) error {
	return timed0(t.m, durable, "create_refresh_token", func() error { return t.Durable.CreateRefreshToken(ctx, r) })
}
func (t timedDurable) GetRefreshToken(ctx context.Context, sig string) (store.RefreshToken, error) {
	return timed(t.m, durable, "get_refresh_token", func() (store.RefreshToken, error) { return t.Durable.GetRefreshToken(ctx, sig) })
}
func (t timedDurable) DeactivateRefreshToken(ctx context.Context, sig string) (bool, error) {
	return timed(t.m, durable, "deactivate_refresh_token", func() (bool, error) { return t.Durable.DeactivateRefreshToken(ctx, sig) })
}
func (t timedDurable) RevokeRefreshTokenFamily(ctx context.Context, id string) (int64, error) {
	return timed(t.m, durable, "revoke_refresh_token_family", func() (int64, error) { return t.Durable.RevokeRefreshTokenFamily(ctx, id) })
}
func (t timedDurable) RevokeRefreshTokensOfSession(ctx context.Context, sid string) (int64, error) {
	return timed(t.m, durable, "revoke_refresh_tokens_of_session", func() (int64, error) { return t.Durable.RevokeRefreshTokensOfSession(ctx, sid) })
}
func (t timedDurable) AppendAuditEvents(ctx context.Context, events []store.AuditEvent) error {
	return timed0(t.m, durable, "append_audit_events", func() error { return t.Durable.AppendAuditEvents(ctx, events) })
}
func (t timedDurable) ListAuditEvents(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error) {
	return timed(t.m, durable, "list_audit_events", func() ([]store.AuditEvent, error) { return t.Durable.ListAuditEvents(ctx, q) })
}
func (t timedDurable) AddAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	return timed0(t.m, durable, "add_audit_checkpoint", func() error { return t.Durable.AddAuditCheckpoint(ctx, c) })
}
func (t timedDurable) PurgeAuditEvents(ctx context.Context, anchor store.AuditCheckpoint, record store.AuditEvent) (int64, error) {
	return timed(t.m, durable, "purge_audit_events", func() (int64, error) { return t.Durable.PurgeAuditEvents(ctx, anchor, record) })
}
func (t timedDurable) AcquireAuditExportLease(ctx context.Context, sink, holder string, now time.Time, ttl time.Duration) (bool, error) {
	return timed(t.m, durable, "acquire_audit_export_lease", func() (bool, error) {
		return t.Durable.AcquireAuditExportLease(ctx, sink, holder, now, ttl)
	})
}
func (t timedDurable) AdvanceAuditExportCursor(ctx context.Context, sink string, id int64) error {
	return timed0(t.m, durable, "advance_audit_export_cursor", func() error { return t.Durable.AdvanceAuditExportCursor(ctx, sink, id) })
}
func (t timedDurable) CreateWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error {
	return timed0(t.m, durable, "create_webauthn_credential", func() error { return t.Durable.CreateWebAuthnCredential(ctx, c) })
}
func (t timedDurable) GetWebAuthnCredential(ctx context.Context, id []byte) (store.WebAuthnCredential, error) {
	return timed(t.m, durable, "get_webauthn_credential", func() (store.WebAuthnCredential, error) { return t.Durable.GetWebAuthnCredential(ctx, id) })
}
func (t timedDurable) ListWebAuthnCredentials(ctx context.Context, subject string) ([]store.WebAuthnCredential, error) {
	return timed(t.m, durable, "list_webauthn_credentials", func() ([]store.WebAuthnCredential, error) {
		return t.Durable.ListWebAuthnCredentials(ctx, subject)
	})
}
func (t timedDurable) UpdateWebAuthnCredentialUse(ctx context.Context, id []byte, signCount uint32, usedAt time.Time, data []byte) error {
	return timed0(t.m, durable, "update_webauthn_credential_use", func() error {
		return t.Durable.UpdateWebAuthnCredentialUse(ctx, id, signCount, usedAt, data)
	})
}
func (t timedDurable) UseEnrollmentCode(ctx context.Context, hash []byte, subject string, now time.Time) error {
	return timed0(t.m, durable, "use_enrollment_code", func() error { return t.Durable.UseEnrollmentCode(ctx, hash, subject, now) })
}
func (t timedDurable) Ping(ctx context.Context) error {
	return timed0(t.m, durable, "ping", func() error { return t.Durable.Ping(ctx) })
}
