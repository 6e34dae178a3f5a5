package siem

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
)

// Syslog facilities (RFC 5424 §6.2.1) that suit security events.
var Facilities = map[string]int{
	"auth": 4, "authpriv": 10, "security": 13,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Severities (RFC 5424 §6.2.1) Garde uses.
const (
	SeverityCritical      = 2
	SeverityWarning       = 4
	SeverityNotice        = 5
	SeverityInformational = 6
)

// Severity maps an event to a syslog severity: critical for what calls for
// action now (details severity=high: a cloned key, a phishing origin; a
// reused token), warning for other failures, notice for changes to the
// audit trail itself (a purge), informational for the rest.
func Severity(e store.AuditEvent) int {
	switch {
	case e.Details["severity"] == "high" || e.Type == audit.TokenReuse:
		return SeverityCritical
	case e.Outcome == audit.Failure:
		return SeverityWarning
	case e.Type == audit.Purged:
		return SeverityNotice
	default:
		return SeverityInformational
	}
}

// DefaultSDID is the SD-ID of the element holding the event's fields.
// 32473 is the enterprise number RFC 5612 reserves for documentation:
// Garde has none of its own yet, so the SD-ID is configurable.
const DefaultSDID = "garde@32473"

// AppName is the syslog APP-NAME of every message.
const AppName = "garde"

// Format is how events become RFC 5424 messages.
type Format struct {
	// Facility, default authpriv (10).
	Facility int
	// Hostname is the HOSTNAME field (default: the host's name).
	Hostname string
	// SDID names the structured-data element of the event fields
	// (default DefaultSDID); details go in "details" + the part of SDID
	// from "@" on.
	SDID string
}

func (f Format) withDefaults() Format {
	if f.Facility == 0 {
		f.Facility = Facilities["authpriv"]
	}
	if f.Hostname == "" {
		f.Hostname, _ = os.Hostname()
	}
	if f.SDID == "" {
		f.SDID = DefaultSDID
	}
	return f
}

// Message formats e as one RFC 5424 message (without framing):
//
//	<PRI>1 TIMESTAMP HOSTNAME garde - TYPE [garde@32473 id=".." ...][details@32473 k="v" ...] {JSON}
//
// PRI is facility × 8 + Severity(e); TIMESTAMP is the event's time (UTC,
// microseconds); MSGID is the event type; the first SD element has every
// field of the event (always, even empty), the second its details (when
// it has some); MSG is the event as JSON (audit.JSONEvent), without a BOM.
func (f Format) Message(e store.AuditEvent) []byte {
	f = f.withDefaults()
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s %s - %s ", f.Facility*8+Severity(e), e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
		headerField(f.Hostname, 255), AppName, headerField(e.Type, 32))
	b.WriteByte('[')
	b.WriteString(sdName(f.SDID))
	j := audit.ToJSON(e)
	for _, p := range [...][2]string{{"id", strconv.FormatInt(e.ID, 10)}, {"type", e.Type}, {"person", e.Person}, {"app", e.App},
		{"client_addr", e.ClientAddr}, {"outcome", e.Outcome}, {"reason", e.Reason}, {"session_id", e.SessionID},
		{"time", j.Time}, {"hash", j.Hash}} {
		writeParam(&b, p[0], p[1])
	}
	b.WriteByte(']')
	if len(e.Details) > 0 {
		id := "details"
		if at := strings.IndexByte(f.SDID, '@'); at >= 0 {
			id += f.SDID[at:]
		}
		b.WriteByte('[')
		b.WriteString(sdName(id))
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			writeParam(&b, sdName(k), e.Details[k])
		}
		b.WriteByte(']')
	}
	if msg, err := audit.MarshalJSON(e); err == nil {
		b.WriteByte(' ')
		b.Write(msg)
	}
	return b.Bytes()
}

func writeParam(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	b.WriteString(EscapeParamValue(value))
	b.WriteByte('"')
}

// EscapeParamValue escapes an SD-PARAM value (RFC 5424 §6.3.3): '"', '\'
// and ']' get a backslash; bytes that are not UTF-8 become U+FFFD, since
// a PARAM-VALUE is UTF-8. With octet-counting framing, newlines are safe.
func EscapeParamValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsAny(s, `"\]`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c == ']' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnescapeParamValue undoes EscapeParamValue. A backslash before any other
// character is kept, as RFC 5424 says.
func UnescapeParamValue(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == ']') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sdName makes an SD-ID or PARAM-NAME: 1 to 32 printable US-ASCII
// characters other than '=', ' ', ']' and '"'; others become '_'.
func sdName(s string) string {
	b := []byte(s)
	if len(b) > 32 {
		b = b[:32]
	}
	for i, c := range b {
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// headerField makes a HOSTNAME, MSGID...: printable US-ASCII, at most n,
// "-" when empty.
func headerField(s string, n int) string {
	b := []byte(s)
	if len(b) > n {
		b = b[:n]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// SyslogOptions configure a Syslog sink.
type SyslogOptions struct {
	// Address is the collector's host:port (6514 is syslog over TLS).
	Address string
	// TLS must name the collector (ServerName) and trust its CA (RootCAs);
	// Certificates holds Garde's client certificate when the collector
	// asks for one.
	TLS    *tls.Config
	Format Format
	// DialTimeout and WriteTimeout default to 10 s.
	DialTimeout, WriteTimeout time.Duration
}

// Syslog sends events as RFC 5424 messages over TLS (RFC 5425), framed by
// octet counting (RFC 6587 §3.4.1): "LEN SP MESSAGE".
type Syslog struct {
	o    SyslogOptions
	conn *tls.Conn
}

// NewSyslog returns a Syslog sink; it connects on the first Send.
func NewSyslog(o SyslogOptions) (*Syslog, error) {
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		return nil, fmt.Errorf("siem: syslog address: %w", err)
	}
	if o.TLS == nil {
		return nil, errors.New("siem: syslog needs a TLS configuration")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	o.TLS = o.TLS.Clone()
	if o.TLS.MinVersion < tls.VersionTLS12 {
		o.TLS.MinVersion = tls.VersionTLS12
	}
	o.Format = o.Format.withDefaults()
	return &Syslog{o: o}, nil
}

// Frame returns the octet-counted frame of one message.
func Frame(msg []byte) []byte {
	return append(strconv.AppendInt(nil, int64(len(msg)), 10), append([]byte{' '}, msg...)...)
}

// Send implements Sink: the batch goes out in one write.
//
// RFC 5425 has no acknowledgements: a write that succeeded reached this
// host's socket buffer, not necessarily the collector. Before writing on a
// connection that was idle, Send checks that the collector has not closed
// it (a read that must time out), so that a restarted collector does not
// silently swallow a batch; a collector that vanishes without closing can
// still lose what was in flight (docs/audit.md).
func (s *Syslog) Send(ctx context.Context, events []store.AuditEvent) error {
	if s.conn != nil && !s.alive() {
		s.drop()
	}
	if s.conn == nil {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: s.o.DialTimeout}, Config: s.o.TLS}
		c, err := d.DialContext(ctx, "tcp", s.o.Address)
		if err != nil {
			return fmt.Errorf("syslog: connect to %s: %w", s.o.Address, err)
		}
		s.conn = c.(*tls.Conn)
	}
	var buf bytes.Buffer
	for _, e := range events {
		buf.Write(Frame(s.o.Format.Message(e)))
	}
	deadline := time.Now().Add(s.o.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.drop()
		return fmt.Errorf("syslog: write to %s: %w", s.o.Address, err)
	}
	return nil
}

// alive reports whether the collector still has the connection open: it
// never writes to us, so a read ends in a timeout on a live connection,
// and in EOF or an error on one it closed.
func (s *Syslog) alive() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var b [64]byte
	_, err := s.conn.Read(b[:])
	_ = s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return err == nil || (errors.As(err, &ne) && ne.Timeout())
}

func (s *Syslog) drop() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close implements Sink.
func (s *Syslog) Close() error {
	s.drop()
	return nil
}
