// Package audit records security events in the durable store.
//
// Events are queued and written in batches by one goroutine, so a sign-in or
// a token request pays for a channel send, not for a database transaction.
// The queue is bounded: when the store falls behind, callers wait rather
// than lose events. Close flushes what is queued.
//
// Event types and fields are a documented, stable schema (docs/audit.md).
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// Event types. Stable: documented in docs/audit.md.
const (
	SignInSuccess  = "signin.success"
	SignInFailure  = "signin.failure"
	TokenIssued    = "token.issued"
	TokenRefreshed = "token.refreshed"
	TokenRevoked   = "token.revoked"
	TokenReuse     = "token.reuse_detected"
	TokenFailure   = "token.failure"
	Logout         = "logout"
	// KeyEnrolled, KeyRemoved, KeyRenamed: a person's security key or
	// passkey changed; KeysRevoked: an admin removed all of a person's.
	KeyEnrolled = "webauthn.enrolled"
	KeyRemoved  = "webauthn.removed"
	KeyRenamed  = "webauthn.renamed"
	KeysRevoked = "webauthn.revoked"
	// EnrollmentCodeIssued and EnrollmentCodeUsed track admin-issued codes.
	EnrollmentCodeIssued = "enrollment_code.issued"
	EnrollmentCodeUsed   = "enrollment_code.used"
	// KeyCreated: a signing key was generated (first start or rotation).
	KeyCreated = "key.created"
	// ConfigLoaded: a replica started with its configuration.
	ConfigLoaded = "config.loaded"
	// IdentityLinked: a Pro Santé Connect or card identity was joined to
	// a person (Details: source, source_subject, method); IdentityLinkRefused:
	// a link could not be made (Reason says why).
	IdentityLinked      = "identity.linked"
	IdentityLinkRefused = "identity.link_refused"
	// StepUpRequired: a signed-in person was asked for a stronger method
	// for an application (Reason: the policy's; Details: from, to,
	// methods).
	StepUpRequired = "signin.step_up"
	// SignInDecoupled: a decoupled sign-in (Pro Santé Connect CIBA) was
	// pushed to a professional's card reader or app (Details: stage
	// "requested", national_id, channel), or approved there (stage
	// "approved"); signin.success or signin.failure follows as for any
	// sign-in.
	SignInDecoupled = "signin.decoupled"
	// EmergencyDeclared: an emergency access (bris de glace) was declared
	// (Reason: the TRE_R248 access mode; Details: justification,
	// denied_for, until, severity=high). EmergencyReviewed: an auditor
	// acknowledged one (Details: event_id, comment, by).
	EmergencyDeclared = "emergency.declared"
	EmergencyReviewed = "emergency.reviewed"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Recorder queues events for the durable store.
type Recorder struct {
	log    store.AuditLog
	logger *slog.Logger
	now    func() time.Time
	queue  chan item
	done   chan struct{}
	once   sync.Once
	// abandon is closed when Close gives up waiting: the writer then stops
	// retrying a store that is gone, and says how many events it lost.
	abandon     chan struct{}
	abandonOnce sync.Once
	observe     func(store.AuditEvent)
	written     []func()
}

// Observe registers fn to see every recorded event as it is recorded (for
// metrics). Call it before the first Record.
func (r *Recorder) Observe(fn func(store.AuditEvent)) { r.observe = fn }

// AfterWrite registers fn to be called after each batch of events is
// stored (e.g. siem.Exporter.Notify, so that the SIEM gets events without
// waiting for its next poll). fn runs on the writer goroutine: it must not
// block. Call it before the first Record.
func (r *Recorder) AfterWrite(fn func()) { r.written = append(r.written, fn) }

// item is an event, or a flush marker the writer acknowledges once
// everything queued before it is written.
type item struct {
	event   store.AuditEvent
	flushed chan struct{}
}

// New starts a Recorder writing to log. queue bounds the events held in
// memory (default 4096).
func New(log store.AuditLog, logger *slog.Logger, clock func() time.Time, queue int) *Recorder {
	if queue <= 0 {
		queue = 4096
	}
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Recorder{log: log, logger: logger, now: clock, queue: make(chan item, queue), done: make(chan struct{}), abandon: make(chan struct{})}
	go r.run()
	return r
}

// Record queues an event, stamping its time when unset. It blocks only when
// the queue is full.
func (r *Recorder) Record(e store.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	e.Time = e.Time.UTC()
	if r.observe != nil {
		r.observe(e)
	}
	r.queue <- item{event: e}
}

// linger is how long the writer waits for more events after the first of
// a batch. One transaction per event costs more than the sign-in it
// records (a WAL write and a commit each); waiting a few milliseconds lets
// a busy replica write tens of events in one transaction.
const linger = 20 * time.Millisecond

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]store.AuditEvent, 0, 256)
	var waiting []chan struct{}
	timer := time.NewTimer(linger)
	timer.Stop()
	for it := range r.queue {
		batch, waiting = batch[:0], waiting[:0]
		flushNow := false
		add := func(it item) {
			if it.flushed != nil {
				waiting = append(waiting, it.flushed)
				flushNow = true
				return
			}
			batch = append(batch, it.event)
		}
		add(it)
		timer.Reset(linger)
	collect:
		for !flushNow && len(batch) < cap(batch) {
			select {
			case it, ok := <-r.queue:
				if !ok {
					break collect
				}
				add(it)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		if len(batch) > 0 {
			r.write(batch)
		}
		for _, c := range waiting {
			close(c)
		}
	}
}

// write retries a failing store with backoff: events are not dropped
// because the database blinked.
func (r *Recorder) write(batch []store.AuditEvent) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.log.AppendAuditEvents(ctx, batch)
		cancel()
		if err == nil {
			for _, fn := range r.written {
				fn()
			}
			return
		}
		r.logger.Error("audit: writing events failed; retrying", "events", len(batch), "attempt", attempt, "err", err)
		select {
		case <-time.After(backoff):
		case <-r.abandon:
			r.logger.Error("audit: shutting down with events not written", "events", len(batch)+len(r.queue), "err", err)
			return
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// Flush waits until every event recorded before the call is written.
func (r *Recorder) Flush(ctx context.Context) error {
	c := make(chan struct{})
	select {
	case r.queue <- item{flushed: c}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events and waits until the queued ones are written
// or ctx ends. Record must not be called after Close.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.queue) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.abandonOnce.Do(func() { close(r.abandon) })
		return ctx.Err()
	}
}
