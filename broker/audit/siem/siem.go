// Package siem exports the audit trail to a hospital's SIEM: JSON lines to
// a rotated file, and RFC 5424 syslog over TLS (RFC 5425).
//
// Delivery is at least once, and never at the expense of sign-ins: an
// Exporter reads events from the durable store after its cursor (the last
// event the sink accepted, kept in the store), hands them to its sink, and
// only then moves the cursor. The store is the buffer: a SIEM outage, a
// full disk or a restart leaves events in the store, and they are sent
// when the sink is back. Recording an event never waits for an exporter:
// the Recorder only pokes it (Notify, which never blocks). Each message
// carries the event's ID, so the SIEM can drop a duplicate after a resend.
//
// With several replicas, one exporter per sink runs at a time: they take
// a lease in the store (store.AuditExportCursors), renewed while they run
// and taken over by another replica when it expires.
package siem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// Sink delivers events to one destination.
type Sink interface {
	// Send delivers events, in order. It returns nil only when every event
	// was handed over (written and synced to the file, written to the
	// connection); on an error the exporter sends them again later, so a
	// sink may deliver an event twice, never zero times.
	Send(ctx context.Context, events []store.AuditEvent) error
	Close() error
}

// Source is what an Exporter reads and records.
type Source interface {
	store.AuditLog
	store.AuditExportCursors
	AuditChainHead(ctx context.Context) (id int64, hash []byte, err error)
}

// Options configure an Exporter. Zero values take the defaults.
type Options struct {
	// Name names the sink: its cursor and lease in the store, and its
	// metrics label. Required.
	Name  string
	Sink  Sink
	Store Source
	// Holder identifies this replica in the lease (default: host name and
	// a random suffix).
	Holder string
	// Batch is how many events are read and sent at a time (default 256).
	Batch int
	// Poll is how often the store is read without a Notify (events from
	// other replicas; default 1 s).
	Poll time.Duration
	// LeaseTTL is how long a lease lasts unless renewed (default 30 s): a
	// replica that dies is replaced after at most this long.
	LeaseTTL time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, doubled
	// at each consecutive one (defaults 500 ms and 1 min).
	MinBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one Send (default 30 s).
	SendTimeout time.Duration
	Clock       func() time.Time
	Logger      *slog.Logger
	// Stats, when set, receive what the exporter does (for metrics).
	Stats Stats
}

// Stats receives an exporter's counts. Any field may be nil.
type Stats struct {
	// Sent: n events were delivered.
	Sent func(sink string, n int)
	// Error: a read, send or cursor update failed.
	Error func(sink string)
	// Lag: how many stored events the sink has not received yet.
	Lag func(sink string, lag int64)
}

// Exporter sends the audit trail to one Sink.
type Exporter struct {
	o       Options
	notify  chan struct{}
	holding bool
	renewAt time.Time
	cursor  int64
}

// New returns an Exporter. Start it with Run.
func New(o Options) (*Exporter, error) {
	if o.Name == "" || o.Sink == nil || o.Store == nil {
		return nil, errors.New("siem: an exporter needs a name, a sink and a store")
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.Holder = host + "-" + hex.EncodeToString(b)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	def(&o.Poll, time.Second)
	def(&o.LeaseTTL, 30*time.Second)
	def(&o.MinBackoff, 500*time.Millisecond)
	def(&o.MaxBackoff, time.Minute)
	def(&o.SendTimeout, 30*time.Second)
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("sink", o.Name)
	return &Exporter{o: o, notify: make(chan struct{}, 1)}, nil
}

// Notify tells the exporter that events were written. It never blocks: a
// notification already pending covers this one.
func (x *Exporter) Notify() {
	select {
	case x.notify <- struct{}{}:
	default:
	}
}

// Run exports until ctx ends, then releases the lease and closes the sink.
// Failures are logged, counted and retried with backoff.
func (x *Exporter) Run(ctx context.Context) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if x.holding {
			if err := x.o.Store.ReleaseAuditExportLease(rctx, x.o.Name, x.o.Holder); err != nil {
				x.o.Logger.Warn("siem: releasing the export lease failed", "err", err)
			}
		}
		if err := x.o.Sink.Close(); err != nil {
			x.o.Logger.Warn("siem: closing the sink failed", "err", err)
		}
	}()
	backoff := x.o.MinBackoff
	failing := false
	for {
		more, err := x.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := x.o.Poll
		switch {
		case err != nil:
			if x.o.Stats.Error != nil {
				x.o.Stats.Error(x.o.Name)
			}
			if !failing {
				x.o.Logger.Error("siem: export failed; events stay in the store and will be sent when the sink is back", "err", err)
			} else {
				x.o.Logger.Debug("siem: export still failing", "err", err, "retry_in", backoff)
			}
			failing = true
			wait = backoff
			backoff = min(backoff*2, x.o.MaxBackoff)
		case more:
			wait = 0
			fallthrough
		default:
			if failing {
				x.o.Logger.Info("siem: export recovered")
			}
			failing = false
			backoff = x.o.MinBackoff
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		// A notification does not cut a backoff short: a sink that is
		// down is not hammered at the pace of sign-ins.
		notify := x.notify
		if err != nil {
			notify = nil
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-notify:
			t.Stop()
		}
	}
}

// Step does one round: take or renew the lease, send the next batch after
// the cursor, move the cursor. It reports whether a full batch was sent
// (more may be waiting). Exported for tests and for a one-shot export.
func (x *Exporter) Step(ctx context.Context) (more bool, err error) {
	now := x.o.Clock()
	if !x.holding || !now.Before(x.renewAt) {
		ok, err := x.o.Store.AcquireAuditExportLease(ctx, x.o.Name, x.o.Holder, now, x.o.LeaseTTL)
		if err != nil {
			x.holding = false
			return false, fmt.Errorf("siem: lease: %w", err)
		}
		if ok && !x.holding {
			// Another replica may have moved the cursor meanwhile.
			if x.cursor, err = x.o.Store.AuditExportCursor(ctx, x.o.Name); err != nil {
				return false, fmt.Errorf("siem: cursor: %w", err)
			}
			x.o.Logger.Info("siem: exporting", "holder", x.o.Holder, "after_event", x.cursor)
		}
		x.holding = ok
		// Renew after a third of the lease: two renewals can fail before
		// another replica may take over.
		x.renewAt = now.Add(x.o.LeaseTTL / 3)
	}
	if !x.holding {
		x.reportLag(ctx, -1)
		return false, nil
	}
	events, err := x.o.Store.ListAuditEvents(ctx, store.AuditQuery{AfterID: x.cursor, Limit: x.o.Batch})
	if err != nil {
		return false, fmt.Errorf("siem: read events: %w", err)
	}
	if len(events) == 0 {
		x.reportLag(ctx, x.cursor)
		return false, nil
	}
	sctx, cancel := context.WithTimeout(ctx, x.o.SendTimeout)
	err = x.o.Sink.Send(sctx, events)
	cancel()
	if err != nil {
		x.reportLag(ctx, x.cursor)
		return false, fmt.Errorf("siem: send: %w", err)
	}
	last := events[len(events)-1].ID
	if x.o.Stats.Sent != nil {
		x.o.Stats.Sent(x.o.Name, len(events))
	}
	// Sent but not recorded: the next round (or replica) sends these
	// again, which at-least-once allows.
	if err := x.o.Store.AdvanceAuditExportCursor(ctx, x.o.Name, last); err != nil {
		return false, fmt.Errorf("siem: cursor: %w", err)
	}
	x.cursor = last
	x.reportLag(ctx, x.cursor)
	return len(events) == x.o.Batch, nil
}

// reportLag reports head - cursor; cursor -1 reads the stored one (a
// replica that does not hold the lease still reports the sink's lag).
func (x *Exporter) reportLag(ctx context.Context, cursor int64) {
	if x.o.Stats.Lag == nil {
		return
	}
	head, _, err := x.o.Store.AuditChainHead(ctx)
	if err != nil {
		return
	}
	if cursor < 0 {
		if cursor, err = x.o.Store.AuditExportCursor(ctx, x.o.Name); err != nil {
			return
		}
	}
	x.o.Stats.Lag(x.o.Name, max(0, head-cursor))
}
