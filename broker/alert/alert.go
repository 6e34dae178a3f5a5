// Package alert sends security alerts (an emergency access was declared)
// to the hospital's on-call tooling through a webhook, at once and without
// holding up the sign-in that caused them.
//
// Each alert is a JSON POST, signed with HMAC-SHA256 over the body when a
// secret is configured (header X-Garde-Signature: sha256=<hex>), so that
// the receiver can tell Garde's alerts from forgeries. Delivery is retried
// with backoff a few times; an alert that cannot be delivered is logged at
// error level — the audit event, exported to the SIEM, remains the record.
package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Webhook posts alerts to a URL.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Logger *slog.Logger
	// Attempts is how many times an alert is tried (default 4); Backoff
	// the first wait between tries, doubled each time (default 1s).
	Attempts int
	Backoff  time.Duration

	queue chan []byte
	once  sync.Once
	wg    sync.WaitGroup
	stop  chan struct{}
}

// SignatureHeader carries the body's HMAC-SHA256.
const SignatureHeader = "X-Garde-Signature"

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) start() {
	w.once.Do(func() {
		if w.Client == nil {
			w.Client = &http.Client{Timeout: 10 * time.Second}
		}
		if w.Logger == nil {
			w.Logger = slog.Default()
		}
		if w.Attempts <= 0 {
			w.Attempts = 4
		}
		if w.Backoff <= 0 {
			w.Backoff = time.Second
		}
		w.queue = make(chan []byte, 256)
		w.stop = make(chan struct{})
		w.wg.Add(1)
		go w.run()
	})
}

// Send queues an alert (any JSON-encodable value) and returns at once. A
// full queue (the receiver has been down for long) drops the alert with an
// error log: sign-ins never wait on alerting.
func (w *Webhook) Send(kind string, payload any) {
	w.start()
	body, err := json.Marshal(map[string]any{"kind": kind, "alert": payload})
	if err != nil {
		w.Logger.Error("alert: encode", "kind", kind, "err", err)
		return
	}
	select {
	case w.queue <- body:
	default:
		w.Logger.Error("alert: queue full, alert not sent (see the audit trail)", "kind", kind)
	}
}

// Close stops after the queued alerts are tried, or when ctx ends.
func (w *Webhook) Close(ctx context.Context) error {
	w.start()
	close(w.stop)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Webhook) run() {
	defer w.wg.Done()
	for {
		select {
		case body := <-w.queue:
			w.deliver(body)
		case <-w.stop:
			for {
				select {
				case body := <-w.queue:
					w.deliver(body)
				default:
					return
				}
			}
		}
	}
}

func (w *Webhook) deliver(body []byte) {
	wait := w.Backoff
	var err error
	for attempt := 1; attempt <= w.Attempts; attempt++ {
		if err = w.post(body); err == nil {
			return
		}
		if attempt < w.Attempts {
			select {
			case <-time.After(wait):
			case <-w.stop:
				// Shutting down: one last try without waiting.
			}
			wait *= 2
		}
	}
	w.Logger.Error("alert: not delivered (see the audit trail)", "url", w.URL, "attempts", w.Attempts, "err", err)
}

func (w *Webhook) post(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(w.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	resp, err := w.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
