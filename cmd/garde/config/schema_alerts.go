package config

import (
	"net/url"
	"time"
)

// Alerts are where security alerts go at once (an emergency access was
// declared), besides the audit trail and its SIEM export.
type Alerts struct {
	// WebhookURL receives each alert as a JSON POST. Empty: no webhook
	// (the log line and the audit event remain).
	WebhookURL string `yaml:"webhook_url"`
	// WebhookSecret, when set, signs each body (HMAC-SHA256, header
	// X-Garde-Signature: sha256=<hex>).
	WebhookSecret Secret `yaml:"webhook_secret"`
	// Timeout per delivery attempt. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

func (v *validator) alerts() {
	a := &v.cfg.Alerts
	if !v.set["alerts.timeout"] {
		a.Timeout = 10 * time.Second
	} else {
		v.duration("alerts.timeout", a.Timeout, time.Minute)
	}
	if a.WebhookURL != "" {
		u, err := url.Parse(a.WebhookURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			v.errorf("alerts.webhook_url", "%q is not an http(s) URL; expected e.g. https://alertes.hopital.fr/garde", a.WebhookURL)
		case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
			v.errorf("alerts.webhook_url", "%q is plain http; expected https (alerts name people and patients' care)", a.WebhookURL)
		}
	}
	if a.WebhookSecret.IsSet() && len(a.WebhookSecret.Reveal()) < 32 {
		v.errorf("alerts.webhook_secret", "is too short; expected at least 32 characters")
	}
	if a.WebhookSecret.IsSet() && a.WebhookURL == "" {
		v.keyErrorf("alerts.webhook_secret", "is set but alerts.webhook_url is not; expected both")
	}
}
