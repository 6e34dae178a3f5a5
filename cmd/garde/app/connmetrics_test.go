package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garde-sso/garde/connectors"
)

// Revocation list and OCSP fetches are timed, and a source that answers
// 5xx or not at all counts as an error.
func TestTimedTransport(t *testing.T) {
	m := newMetrics()
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail {
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	c := &http.Client{Transport: timedTransport{next: http.DefaultTransport, m: m, connector: "cps", op: cardFetchOp}}
	get := func() {
		resp, err := c.Get(srv.URL + "/ACI-FO-PP.crl")
		if err == nil {
			resp.Body.Close()
		}
	}
	get()
	fail = true
	get()
	resp, err := c.Post(srv.URL+"/ocsp", "application/ocsp-request", strings.NewReader("x"))
	if err == nil {
		resp.Body.Close()
	}
	srv.Close()
	get() // refused connection
	if n := testutil.CollectAndCount(m.connDuration); n != 2 {
		t.Errorf("%d duration series, want crl and ocsp", n)
	}
	if got := testutil.ToFloat64(m.connErrors.WithLabelValues("cps", "crl")); got != 2 {
		t.Errorf("crl errors = %v, want 2 (a 502 and a refused connection)", got)
	}
	if got := testutil.ToFloat64(m.connErrors.WithLabelValues("cps", "ocsp")); got != 1 {
		t.Errorf("ocsp errors = %v, want 1", got)
	}
}

// A wrong password is the person's failure, not the directory's.
func TestConnCallCountsOnlySourceFailures(t *testing.T) {
	m := newMetrics()
	m.connCall("ad", "login", nowForTest(), connectors.ErrInvalidCredentials)
	m.connCall("ad", "login", nowForTest(), connectors.ErrAccountLocked)
	m.connCall("ad", "login", nowForTest(), connectors.ErrUnavailable)
	m.connCall("ad", "login", nowForTest(), context.DeadlineExceeded)
	if got := testutil.ToFloat64(m.connErrors.WithLabelValues("ad", "login")); got != 2 {
		t.Errorf("errors = %v, want 2", got)
	}
}

func nowForTest() (t0 time.Time) { return time.Now() }
