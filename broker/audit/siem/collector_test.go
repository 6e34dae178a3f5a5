package siem

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pki is a test CA with a server certificate for localhost / 127.0.0.1 and
// a client certificate.
type pki struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newPKI(t testing.TB) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SIEM CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := pki{pool: x509.NewCertPool(), server: leaf(2, "siem.test", x509.ExtKeyUsageServerAuth), client: leaf(3, "garde", x509.ExtKeyUsageClientAuth)}
	p.pool.AddCert(ca)
	return p
}

func (p pki) clientTLS() *tls.Config {
	return &tls.Config{ServerName: "localhost", RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}
}

// message is a parsed RFC 5424 message.
type message struct {
	pri                                     int
	version                                 string
	timestamp, hostname, app, procid, msgid string
	sd                                      map[string]map[string]string // SD-ID → params
	msg                                     string
}

// parseFrames reads octet-counted frames (RFC 6587 §3.4.1) until EOF.
func parseFrames(r *bufio.Reader, each func([]byte)) error {
	for {
		lenText, err := r.ReadString(' ')
		if err != nil {
			if err == io.EOF && lenText == "" {
				return nil
			}
			return err
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
		if err != nil || n <= 0 || n > 1<<20 {
			return fmt.Errorf("bad frame length %q", lenText)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		each(b)
	}
}

// parseMessage parses an RFC 5424 message strictly enough to check what
// Garde sends.
func parseMessage(b []byte) (message, error) {
	var m message
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return m, errors.New("bad PRI")
	}
	m.pri = pri
	fields := strings.SplitN(s[end+1:], " ", 7)
	if len(fields) < 7 {
		return m, errors.New("short header")
	}
	m.version, m.timestamp, m.hostname, m.app, m.procid, m.msgid = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	rest := fields[6]
	m.sd = map[string]map[string]string{}
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else {
		for strings.HasPrefix(rest, "[") {
			i := 1
			j := strings.IndexAny(rest[i:], " ]")
			if j < 0 {
				return m, errors.New("unterminated SD-ID")
			}
			id := rest[i : i+j]
			params := map[string]string{}
			m.sd[id] = params
			i += j
			for rest[i] == ' ' {
				i++
				eq := strings.IndexByte(rest[i:], '=')
				if eq < 1 || i+eq+1 >= len(rest) || rest[i+eq+1] != '"' {
					return m, fmt.Errorf("bad SD-PARAM at %d", i)
				}
				name := rest[i : i+eq]
				i += eq + 2
				var v strings.Builder
				for {
					if i >= len(rest) {
						return m, errors.New("unterminated PARAM-VALUE")
					}
					c := rest[i]
					if c == '\\' && i+1 < len(rest) && strings.IndexByte(`"\]`, rest[i+1]) >= 0 {
						v.WriteByte(rest[i+1])
						i += 2
						continue
					}
					if c == '"' {
						i++
						break
					}
					if c == ']' {
						return m, errors.New("unescaped ] in PARAM-VALUE")
					}
					v.WriteByte(c)
					i++
				}
				params[name] = v.String()
				if i >= len(rest) {
					return m, errors.New("unterminated SD-ELEMENT")
				}
			}
			if rest[i] != ']' {
				return m, fmt.Errorf("expected ] at %d", i)
			}
			rest = rest[i+1:]
		}
	}
	if rest != "" {
		if rest[0] != ' ' {
			return m, errors.New("no space before MSG")
		}
		m.msg = rest[1:]
	}
	return m, nil
}

// collector is a syslog-over-TLS receiver (RFC 5425) that can go down and
// come back on the same address.
type collector struct {
	t    *testing.T
	pki  pki
	addr string

	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	messages []message
	bad      []error
	got      chan struct{}
	wg       sync.WaitGroup
}

func newCollector(t *testing.T, p pki) *collector {
	c := &collector{t: t, pki: p, got: make(chan struct{}, 1)}
	c.start("127.0.0.1:0")
	t.Cleanup(c.stop)
	return c
}

func (c *collector) start(addr string) {
	cfg := &tls.Config{Certificates: []tls.Certificate{c.pki.server}, ClientCAs: c.pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		c.t.Fatalf("collector listen %s: %v", addr, err)
	}
	c.mu.Lock()
	c.ln, c.addr = ln, ln.Addr().String()
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				err := parseFrames(bufio.NewReader(conn), func(b []byte) {
					m, err := parseMessage(b)
					c.mu.Lock()
					if err != nil {
						c.bad = append(c.bad, fmt.Errorf("%w: %q", err, b))
					} else {
						c.messages = append(c.messages, m)
					}
					c.mu.Unlock()
					select {
					case c.got <- struct{}{}:
					default:
					}
				})
				if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					c.mu.Lock()
					c.bad = append(c.bad, err)
					c.mu.Unlock()
				}
			}()
		}
	}()
}

// stop closes the listener and every connection: the SIEM is down.
func (c *collector) stop() {
	c.mu.Lock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *collector) restart() { c.start(c.addr) }

func (c *collector) snapshot() ([]message, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]message(nil), c.messages...), append([]error(nil), c.bad...)
}

// waitFor waits until cond holds on the received messages (bounded, so a
// bug fails the test instead of hanging it).
func (c *collector) waitFor(what string, cond func([]message) bool) []message {
	c.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		msgs, bad := c.snapshot()
		if len(bad) > 0 {
			c.t.Fatalf("collector: malformed input: %v", bad)
		}
		if cond(msgs) {
			return msgs
		}
		select {
		case <-c.got:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("collector: gave up waiting for %s; got %d messages", what, len(msgs))
		}
	}
}
