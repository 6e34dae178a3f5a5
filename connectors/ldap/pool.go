package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// maxIdle is how long an idle connection is trusted. Firewalls and AD
// (MaxConnIdleTime, 900 s by default) drop idle connections silently; a
// connection older than this is replaced rather than risk an operation
// waiting for a timeout on a dead socket.
const maxIdle = 60 * time.Second

// errPoolClosed is returned once Close was called.
var errPoolClosed = errors.New("connection pool closed")

// conn is one LDAP connection and the socket under it. go-ldap has no
// context support, so deadlines and cancellation are applied to the socket:
// an operation that outlives them kills the connection, which is then
// discarded.
type conn struct {
	l        *goldap.Conn
	raw      net.Conn
	lastUsed time.Time
	broken   bool
}

// do runs one LDAP operation bounded by timeout and ctx.
func (c *conn) do(ctx context.Context, timeout time.Duration, op func(*goldap.Conn) error) error {
	if c.broken || c.l.IsClosing() {
		c.broken = true
		return goldap.NewError(goldap.ErrorNetwork, errors.New("connection closed"))
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.l.SetTimeout(time.Until(deadline))
	_ = c.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	err := op(c.l)
	cancelled := !stop()
	if cancelled || !time.Now().Before(deadline) {
		// The socket deadline may have fired, or a response may still be
		// in flight: the connection cannot be trusted any more.
		c.broken = true
		if err != nil {
			return &timeoutError{err: err, cancelled: cancelled}
		}
		return nil
	}
	if isConnError(err) {
		c.broken = true
		return err
	}
	_ = c.raw.SetDeadline(time.Time{})
	return err
}

func (c *conn) close() {
	if c.l != nil {
		c.l.Close()
	} else if c.raw != nil {
		c.raw.Close()
	}
}

// timeoutError marks an operation that ran out of time or was cancelled,
// so that it is not retried on another connection.
type timeoutError struct {
	err       error
	cancelled bool
}

func (e *timeoutError) Error() string {
	if e.cancelled {
		return "cancelled: " + e.err.Error()
	}
	return "timed out: " + e.err.Error()
}

func (e *timeoutError) Unwrap() error { return e.err }

// isConnError tells a failure of the connection (after which it cannot be
// reused) from an LDAP result the server sent.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		// Result codes from 200 are go-ldap's own client-side errors
		// (ErrorNetwork, ...); busy and unavailable mean this server
		// should not be used for now either.
		return le.ResultCode >= goldap.ErrorNetwork || le.ResultCode == goldap.LDAPResultBusy ||
			le.ResultCode == goldap.LDAPResultUnavailable
	}
	return true
}

// pool is a bounded set of connections: at most size are in use at once,
// and at most size are kept idle. Connections are checked before reuse and
// discarded after any connection-level error.
type pool struct {
	name   string
	tokens chan struct{}
	dial   func(ctx context.Context) (*conn, error)

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

func newPool(name string, size int, dial func(context.Context) (*conn, error)) *pool {
	return &pool{name: name, tokens: make(chan struct{}, size), dial: dial}
}

// get returns a connection and whether it was reused, waiting for a free
// slot until ctx is done.
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	select {
	case p.tokens <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("waiting for a %s connection: %w", p.name, ctx.Err())
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.tokens
			return nil, false, errPoolClosed
		}
		var c *conn
		if n := len(p.idle); n > 0 {
			// Most recently used first: the likeliest to be alive.
			c = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		if c.l.IsClosing() || time.Since(c.lastUsed) > maxIdle {
			c.close()
			continue
		}
		return c, true, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.tokens
		return nil, false, err
	}
	return c, false, nil
}

// put gives a connection back, closing it if it is broken or not needed.
func (p *pool) put(c *conn) {
	defer func() { <-p.tokens }()
	if c.broken || c.l.IsClosing() {
		c.close()
		return
	}
	c.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= cap(p.tokens) {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// with runs fn on a pooled connection. If a reused connection turns out to
// be dead (closed by the server while idle), fn is retried once on a fresh
// one; timeouts and cancellations are not retried, so a hung directory
// costs one timeout, not two.
func (p *pool) with(ctx context.Context, fn func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		p.put(c)
		var te *timeoutError
		if err != nil && c.broken && reused && attempt == 0 && !errors.As(err, &te) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// dialer opens connections to the first directory that answers.
type dialer struct {
	urls     []*url.URL
	startTLS bool
	tls      func(host string) *tls.Config
	timeout  time.Duration
}

// dial tries each URL in order (failover) and returns the first connection
// that completes TCP, TLS and, when configured, StartTLS.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	var errs []error
	for _, u := range d.urls {
		c, err := d.dialURL(ctx, u)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.Redacted(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d *dialer) dialURL(ctx context.Context, u *url.URL) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
	}
	nd := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := nd.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	if u.Scheme == "ldaps" {
		tc := tls.Client(raw, d.tls(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		l := goldap.NewConn(tc, true)
		l.Start()
		return &conn{l: l, raw: raw}, nil
	}
	l := goldap.NewConn(raw, false)
	l.Start()
	c := &conn{l: l, raw: raw}
	if d.startTLS {
		err := c.do(ctx, d.timeout, func(l *goldap.Conn) error { return l.StartTLS(d.tls(host)) })
		if err != nil {
			c.close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	return c, nil
}
