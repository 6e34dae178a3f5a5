package alert

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A receiver that fails twice then accepts gets the alert, signed.
func TestWebhookRetriesAndSigns(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var calls atomic.Int32
	var mu sync.Mutex
	var got []byte
	var sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, sig = b, r.Header.Get(SignatureHeader)
		mu.Unlock()
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Secret: secret, Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	w.Send("emergency", map[string]string{"person": "ad:1", "app": "dpi"})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3 (two failures, then delivered)", calls.Load())
	}
	var msg struct {
		Kind  string            `json:"kind"`
		Alert map[string]string `json:"alert"`
	}
	if err := json.Unmarshal(got, &msg); err != nil || msg.Kind != "emergency" || msg.Alert["app"] != "dpi" {
		t.Errorf("body %s: %v", got, err)
	}
	if sig != Sign(secret, got) {
		t.Errorf("signature %q does not verify", sig)
	}
	if Sign([]byte("another secret"), got) == sig {
		t.Error("a signature under another secret matches")
	}
}

// A receiver that never accepts: the alert is given up after Attempts,
// and Send never blocks the caller.
func TestWebhookGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Attempts: 3, Backoff: time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	w.Send("emergency", "x")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
}
