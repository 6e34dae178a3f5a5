package audit

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// Export formats.
const (
	// FormatCSV: RFC 4180 CSV, CSVHeader first, one event per row.
	FormatCSV = "csv"
	// FormatJSON: one JSON array of JSONEvent objects.
	FormatJSON = "json"
	// FormatJSONL: JSON Lines, one JSONEvent object per line.
	FormatJSONL = "jsonl"
	// FormatTable: aligned text for a terminal (not for machines).
	FormatTable = "table"
)

// Formats lists the export formats.
var Formats = []string{FormatCSV, FormatJSON, FormatJSONL, FormatTable}

// ErrUnknownFormat is returned by Export for a format not in Formats.
var ErrUnknownFormat = errors.New("audit: unknown export format")

// CSVHeader is the first row of a CSV export. Stable (docs/audit.md):
// columns are added at the end, never renamed or moved.
var CSVHeader = []string{"id", "time", "type", "person", "app", "client_addr", "outcome", "reason", "session_id", "details", "hash"}

// TimeFormat is how exports write times: RFC 3339, UTC, microseconds (what
// the store keeps).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// JSONEvent is an event as exported in JSON (files, syslog messages, the
// json and jsonl formats). Stable: fields are added, never renamed.
type JSONEvent struct {
	ID         int64             `json:"id"`
	Time       string            `json:"time"`
	Type       string            `json:"type"`
	Person     string            `json:"person"`
	App        string            `json:"app"`
	ClientAddr string            `json:"client_addr"`
	Outcome    string            `json:"outcome"`
	Reason     string            `json:"reason"`
	SessionID  string            `json:"session_id"`
	Details    map[string]string `json:"details"`
	// Hash and PrevHash are hex; empty for events from before the chain.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ToJSON returns e as exported.
func ToJSON(e store.AuditEvent) JSONEvent {
	d := e.Details
	if d == nil {
		d = map[string]string{}
	}
	return JSONEvent{
		ID: e.ID, Time: e.Time.UTC().Format(TimeFormat), Type: e.Type, Person: e.Person, App: e.App,
		ClientAddr: e.ClientAddr, Outcome: e.Outcome, Reason: e.Reason, SessionID: e.SessionID, Details: d,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash),
	}
}

// MarshalJSON returns e as one line of JSON (no newline). HTML characters
// are not escaped: the output goes to files and SIEMs, not to pages.
func MarshalJSON(e store.AuditEvent) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ToJSON(e)); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// CSVCell neutralises a cell that a spreadsheet would run as a formula
// (CSV injection, CWE-1236): a value starting with =, +, -, @, a tab or a
// carriage return gets a leading apostrophe, which spreadsheets show as
// text. Garde's own values (IDs, times, hashes, types) never start so;
// person, app, reason and details may hold text from outside.
func CSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvRow is an event as a CSV row, in CSVHeader order.
func csvRow(e store.AuditEvent) ([]string, error) {
	d := e.Details
	if d == nil {
		d = map[string]string{}
	}
	details, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	row := []string{strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(TimeFormat), e.Type, e.Person, e.App,
		e.ClientAddr, e.Outcome, e.Reason, e.SessionID, string(details), hex.EncodeToString(e.Hash)}
	for i := range row {
		row[i] = CSVCell(row[i])
	}
	return row, nil
}

// Export writes events to w in format (one of Formats), streaming: the
// admin console and `garde audit query` share it. It stops at the first
// error, from events or from w.
func Export(w io.Writer, format string, events iter.Seq2[store.AuditEvent, error]) error {
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return err
		}
		for e, err := range events {
			if err != nil {
				return err
			}
			row, err := csvRow(e)
			if err != nil {
				return fmt.Errorf("audit: event %d: %w", e.ID, err)
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatJSON, FormatJSONL:
		sep, open, end := "\n", "", ""
		if format == FormatJSON {
			sep, open, end = ",\n", "[\n", "\n]\n"
		}
		if _, err := io.WriteString(w, open); err != nil {
			return err
		}
		first := true
		for e, err := range events {
			if err != nil {
				return err
			}
			b, err := MarshalJSON(e)
			if err != nil {
				return fmt.Errorf("audit: event %d: %w", e.ID, err)
			}
			if !first {
				if _, err := io.WriteString(w, sep); err != nil {
					return err
				}
			}
			first = false
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		if format == FormatJSONL {
			if first {
				return nil
			}
			end = "\n"
		} else if first {
			end = "]\n"
		}
		_, err := io.WriteString(w, end)
		return err
	case FormatTable:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tTYPE\tPERSON\tAPP\tADDRESS\tOUTCOME\tREASON")
		for e, err := range events {
			if err != nil {
				tw.Flush()
				return err
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.UTC().Format(time.DateTime), printable(e.Type),
				printable(e.Person), printable(e.App), printable(e.ClientAddr), printable(e.Outcome), printable(e.Reason))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("%w %q; expected one of %s", ErrUnknownFormat, format, strings.Join(Formats, ", "))
	}
}

// printable keeps terminal control characters (escape sequences an
// attacker could have put in a recorded value) out of table output.
func printable(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// Events yields the events of a slice, for Export.
func Events(events []store.AuditEvent) iter.Seq2[store.AuditEvent, error] {
	return func(yield func(store.AuditEvent, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// queryPage is how many events Query reads at a time.
const queryPage = 500

// Query yields the events matching q, in ID order, reading the store a page
// at a time from q.AfterID. q.Limit caps the total (0: no cap). A read
// error is yielded once, last.
func Query(ctx context.Context, log store.AuditLog, q store.AuditQuery) iter.Seq2[store.AuditEvent, error] {
	return func(yield func(store.AuditEvent, error) bool) {
		remaining := q.Limit
		page := q
		page.Types = slices.Clone(q.Types)
		for {
			page.Limit = queryPage
			if q.Limit > 0 {
				page.Limit = min(queryPage, remaining)
			}
			events, err := log.ListAuditEvents(ctx, page)
			if err != nil {
				yield(store.AuditEvent{}, err)
				return
			}
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
			remaining -= len(events)
			if len(events) < page.Limit || (q.Limit > 0 && remaining <= 0) {
				return
			}
			page.AfterID = events[len(events)-1].ID
		}
	}
}
