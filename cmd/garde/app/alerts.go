package app

import (
	"context"
	"net/http"

	"github.com/garde-sso/garde/broker/alert"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// emergencyAlerts returns what the flow calls when someone declares an
// emergency access: the configured webhook, if any. The flow also logs it
// at warning level and audits it (severity high), which the SIEM export
// ships over syslog.
func (a *App) emergencyAlerts(cfg *config.Config, o Options) func(flow.EmergencyAlert) {
	if cfg.Alerts.WebhookURL == "" {
		return nil
	}
	w := &alert.Webhook{
		URL:    cfg.Alerts.WebhookURL,
		Secret: []byte(cfg.Alerts.WebhookSecret.Reveal()),
		Client: &http.Client{Timeout: cfg.Alerts.Timeout},
		Logger: o.Logger,
	}
	a.closers = append(a.closers, func(ctx context.Context) error { return w.Close(ctx) })
	return func(e flow.EmergencyAlert) { w.Send("emergency_access", e) }
}
