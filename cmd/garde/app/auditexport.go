package app

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/audit/siem"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// instrumentStores puts the stores behind timing wrappers
// (garde_store_duration_seconds, garde_store_errors_total).
func (a *App) instrumentStores(m *metrics) {
	sm := newStoreMetrics(m.reg)
	a.Durable = timedDurable{Durable: a.Durable, m: sm}
	a.Ephemeral = timedEphemeral{Ephemeral: a.Ephemeral, m: sm}
}

// exportMetrics are the SIEM exporters' metrics.
type exportMetrics struct {
	sent, errors *prometheus.CounterVec
	lag          *prometheus.GaugeVec
}

func newExportMetrics(reg prometheus.Registerer) *exportMetrics {
	m := &exportMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garde_audit_export_sent_total", Help: "Audit events delivered to a SIEM sink.",
		}, []string{"sink"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "garde_audit_export_errors_total", Help: "Failed attempts to export audit events (the events are kept and sent again).",
		}, []string{"sink"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "garde_audit_export_lag_events", Help: "Stored audit events a SIEM sink has not received yet.",
		}, []string{"sink"}),
	}
	reg.MustRegister(m.sent, m.errors, m.lag)
	return m
}

func (m *exportMetrics) stats() siem.Stats {
	return siem.Stats{
		Sent:  func(sink string, n int) { m.sent.WithLabelValues(sink).Add(float64(n)) },
		Error: func(sink string) { m.errors.WithLabelValues(sink).Inc() },
		Lag:   func(sink string, lag int64) { m.lag.WithLabelValues(sink).Set(float64(lag)) },
	}
}

// startAudit starts the SIEM exporters and the daily retention purge, and
// registers their shutdown. Call it after the Recorder is set up: the
// exporters are stopped before it flushes (closers run in reverse), and
// whatever they had not sent is sent at the next start.
func (a *App) startAudit(cfg *config.Config, master []byte, m *metrics, o Options) error {
	em := newExportMetrics(m.reg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	a.closers = append(a.closers, func(cctx context.Context) error {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-cctx.Done():
			return cctx.Err()
		}
	})
	for _, e := range cfg.Audit.Export {
		sink, err := openSink(e, o)
		if err != nil {
			return fmt.Errorf("audit.export %s: %w", e.Name, err)
		}
		x, err := siem.New(siem.Options{Name: e.Name, Sink: sink, Store: a.Durable, Clock: o.Clock, Logger: o.Logger, Stats: em.stats()})
		if err != nil {
			return fmt.Errorf("audit.export %s: %w", e.Name, err)
		}
		em.sent.WithLabelValues(e.Name)
		em.errors.WithLabelValues(e.Name)
		a.Audit.AfterWrite(x.Notify)
		wg.Go(func() { x.Run(ctx) })
	}
	if r := cfg.Audit.Retention; r > 0 {
		pub := audit.DeriveCheckpointKey(master).Public().(ed25519.PublicKey)
		p := audit.NewPurger(a.Durable, pub, o.Clock, o.Logger)
		wg.Go(func() { a.purgeAudit(ctx, p, r, o.Clock) })
	}
	return nil
}

// purgeAudit purges events older than retention once a day (the first time
// a minute after start, out of the way of startup). Every replica runs it:
// the store lets one purge through a given anchor, and the others find
// nothing left to purge.
func (a *App) purgeAudit(ctx context.Context, p *audit.Purger, retention time.Duration, clock func() time.Time) {
	wait := time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = 24 * time.Hour
		res, err := p.PurgeAuditEvents(ctx, clock().Add(-retention))
		switch {
		case errors.Is(err, store.ErrConflict):
			a.logger.Debug("audit: another replica purged first")
		case errors.Is(err, audit.ErrChainBroken):
			a.logger.Error("audit: not purging old events: the trail does not verify; run garde audit verify", "err", err)
		case err != nil && ctx.Err() == nil:
			a.logger.Warn("audit: purging old events failed; retrying in an hour", "err", err)
			wait = time.Hour
		case res.Through == 0:
			a.logger.Debug("audit: nothing to purge")
		}
	}
}

// openSink builds a configured sink.
func openSink(e config.AuditExport, o Options) (siem.Sink, error) {
	switch e.Type {
	case "jsonl":
		j := e.JSONL
		return siem.NewFile(siem.FileOptions{Path: resolve(o.BaseDir, j.Path), MaxSize: int64(j.MaxSizeMB) << 20,
			Daily: j.Daily, MaxFiles: j.MaxFiles, Clock: o.Clock})
	case "syslog":
		s := e.Syslog
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
		if tc.ServerName == "" {
			host, _, err := net.SplitHostPort(s.Address)
			if err != nil {
				return nil, err
			}
			tc.ServerName = host
		}
		if s.CAFile != "" {
			pool, err := loadCAs(resolve(o.BaseDir, s.CAFile))
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			tc.RootCAs = pool
		}
		if s.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(resolve(o.BaseDir, s.CertFile), resolve(o.BaseDir, s.KeyFile))
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		f := siem.Format{Hostname: s.Hostname, SDID: s.SDID}
		if s.Facility != "" {
			f.Facility = siem.Facilities[s.Facility]
		}
		return siem.NewSyslog(siem.SyslogOptions{Address: s.Address, TLS: tc, Format: f})
	default:
		return nil, fmt.Errorf("unknown sink type %q", e.Type)
	}
}
