package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/garde-sso/garde/connectors"
)

// connCall times one identity source call and counts it as an error when
// it failed for the source's reasons: unreachable or broken, not a wrong
// password or a refused card (those are the person's, and sign-in metrics
// count them).
func (m *metrics) connCall(connector, op string, start time.Time, err error) {
	m.connDuration.WithLabelValues(connector, op).Observe(time.Since(start).Seconds())
	if err != nil && (errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		m.connErrors.WithLabelValues(connector, op).Inc()
	}
}

// timedPassword measures a password connector (AD, the static directory).
// It keeps every capability of the connector it wraps: the optional
// lookups answer ErrUnknownSubject when the connector has none.
type timedPassword struct {
	id    string
	inner connectors.PasswordConnector
	m     *metrics
}

func (t timedPassword) Login(ctx context.Context, username, password string) (connectors.Identity, error) {
	return t.timed("login", func() (connectors.Identity, error) { return t.inner.Login(ctx, username, password) })
}

func (t timedPassword) Lookup(ctx context.Context, subject string) (connectors.Identity, error) {
	l, ok := t.inner.(connectors.LookupConnector)
	if !ok {
		return connectors.Identity{}, connectors.ErrUnknownSubject
	}
	return t.timed("lookup", func() (connectors.Identity, error) { return l.Lookup(ctx, subject) })
}

func (t timedPassword) LookupNationalID(ctx context.Context, idNat string) (connectors.Identity, error) {
	l, ok := t.inner.(connectors.NationalIDLookup)
	if !ok {
		return connectors.Identity{}, connectors.ErrUnknownSubject
	}
	return t.timed("lookup_national_id", func() (connectors.Identity, error) { return l.LookupNationalID(ctx, idNat) })
}

func (t timedPassword) LookupUsername(ctx context.Context, username string) (connectors.Identity, error) {
	l, ok := t.inner.(connectors.UsernameLookup)
	if !ok {
		return connectors.Identity{}, connectors.ErrUnknownSubject
	}
	return t.timed("lookup_username", func() (connectors.Identity, error) { return l.LookupUsername(ctx, username) })
}

func (t timedPassword) timed(op string, call func() (connectors.Identity, error)) (connectors.Identity, error) {
	start := time.Now()
	id, err := call()
	t.m.connCall(t.id, op, start, err)
	return id, err
}

// Close closes the wrapped connector if it holds connections (LDAP pools).
func (t timedPassword) Close() {
	if c, ok := t.inner.(interface{ Close() }); ok {
		c.Close()
	}
}

// timedTransport measures the HTTP calls of a connector (revocation lists
// and OCSP for the card); op names the kind of call.
type timedTransport struct {
	next      http.RoundTripper
	m         *metrics
	connector string
	op        func(*http.Request) string
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	var failed error
	switch {
	case err != nil:
		failed = errors.Join(connectors.ErrUnavailable, err)
	case resp.StatusCode >= 500:
		failed = connectors.ErrUnavailable
	}
	t.m.connCall(t.connector, t.op(r), start, failed)
	return resp, err
}

// cardFetchOp tells an OCSP request (a POST) from a revocation list fetch.
func cardFetchOp(r *http.Request) string {
	if r.Method == http.MethodPost {
		return "ocsp"
	}
	return "crl"
}
