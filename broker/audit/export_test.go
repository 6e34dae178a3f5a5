package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

func exportEvents() []store.AuditEvent {
	return []store.AuditEvent{
		{ID: 1, Time: t0, Type: SignInFailure, App: "=HYPERLINK(\"http://evil\",\"x\")", ClientAddr: "10.0.0.1",
			Outcome: Failure, Reason: "invalid_credentials", Details: map[string]string{"method": "password"}, Hash: []byte{1, 2}},
		{ID: 2, Time: t0.Add(time.Second), Type: SignInSuccess, Person: "+33612345678", App: "@SUM(A1)", Outcome: Success,
			Details: map[string]string{"note": "a,b\n\"c\""}},
		{ID: 3, Time: t0.Add(2 * time.Second), Type: Logout, Person: "-2+3", Reason: "\tx", SessionID: "\r=1", Outcome: Success},
	}
}

func export(t *testing.T, format string, events []store.AuditEvent) string {
	t.Helper()
	var b bytes.Buffer
	if err := Export(&b, format, Events(events)); err != nil {
		t.Fatalf("Export(%s): %v", format, err)
	}
	return b.String()
}

func TestExportCSV(t *testing.T) {
	out := export(t, FormatCSV, exportEvents())
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, out)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != "id,time,type,person,app,client_addr,outcome,reason,session_id,details,hash" {
		t.Fatalf("rows = %q", rows)
	}
	if r := rows[1]; r[0] != "1" || r[1] != "2026-03-03T09:00:00.000000Z" || r[2] != "signin.failure" || r[9] != `{"method":"password"}` || r[10] != "0102" {
		t.Errorf("row 1 = %q", r)
	}
	// Every cell a spreadsheet would evaluate starts with an apostrophe.
	for cell, want := range map[string]string{
		rows[1][4]: `'=HYPERLINK("http://evil","x")`, rows[2][3]: "'+33612345678", rows[2][4]: "'@SUM(A1)",
		rows[3][3]: "'-2+3", rows[3][7]: "'\tx", rows[3][8]: "'\r=1", rows[2][9]: `{"note":"a,b\n\"c\""}`,
	} {
		if cell != want {
			t.Errorf("cell %q, want %q", cell, want)
		}
	}
	for _, r := range rows {
		for _, c := range r {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q would be evaluated", c)
			}
		}
	}
	if got := export(t, FormatCSV, nil); got != strings.Join(CSVHeader, ",")+"\n" {
		t.Errorf("empty CSV = %q", got)
	}
}

func TestExportJSON(t *testing.T) {
	var arr []JSONEvent
	if err := json.Unmarshal([]byte(export(t, FormatJSON, exportEvents())), &arr); err != nil {
		t.Fatal(err)
	}
	if len(arr) != 3 || arr[0].App != `=HYPERLINK("http://evil","x")` || arr[1].Details["note"] != "a,b\n\"c\"" || arr[0].Hash != "0102" || arr[2].Details == nil {
		t.Fatalf("json = %+v", arr)
	}
	if err := json.Unmarshal([]byte(export(t, FormatJSON, nil)), &arr); err != nil || len(arr) != 0 {
		t.Fatalf("empty json: %v %v", arr, err)
	}
	lines := strings.Split(strings.TrimSuffix(export(t, FormatJSONL, exportEvents()), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("jsonl lines = %q", lines)
	}
	for i, l := range lines {
		var e JSONEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.ID != int64(i+1) {
			t.Fatalf("line %d: %q %v", i, l, err)
		}
	}
	if export(t, FormatJSONL, nil) != "" {
		t.Error("empty jsonl is not empty")
	}
}

func TestExportTable(t *testing.T) {
	evs := exportEvents()
	evs[0].Person = "\x1b[2Jevil"
	out := export(t, FormatTable, evs)
	if strings.Contains(out, "\x1b") || !strings.Contains(out, "?[2Jevil") || !strings.HasPrefix(out, "ID  ") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestExportErrors(t *testing.T) {
	var b bytes.Buffer
	if err := Export(&b, "xml", Events(nil)); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("xml: %v", err)
	}
	boom := errors.New("boom")
	failing := func(yield func(store.AuditEvent, error) bool) {
		if yield(exportEvents()[0], nil) {
			yield(store.AuditEvent{}, boom)
		}
	}
	for _, f := range Formats {
		if err := Export(&b, f, failing); !errors.Is(err, boom) {
			t.Errorf("%s: %v, want the read error", f, err)
		}
	}
}

func TestQueryPages(t *testing.T) {
	s := openStore(t)
	var evs []store.AuditEvent
	for i := range 1203 {
		typ := TokenIssued
		if i%3 == 0 {
			typ = SignInFailure
		}
		evs = append(evs, store.AuditEvent{Time: t0, Type: typ, Outcome: Success, Details: map[string]string{"i": strconv.Itoa(i)}})
	}
	if err := s.AppendAuditEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	count := func(q store.AuditQuery) (n int, last int64) {
		for e, err := range Query(t.Context(), s, q) {
			if err != nil {
				t.Fatal(err)
			}
			if e.ID <= last {
				t.Fatalf("IDs out of order: %d after %d", e.ID, last)
			}
			n, last = n+1, e.ID
		}
		return n, last
	}
	if n, last := count(store.AuditQuery{}); n != 1203 || last != 1203 {
		t.Errorf("all: %d events, last %d", n, last)
	}
	if n, _ := count(store.AuditQuery{Type: SignInFailure}); n != 401 {
		t.Errorf("failures: %d", n)
	}
	if n, last := count(store.AuditQuery{Limit: 700, AfterID: 10}); n != 700 || last != 710 {
		t.Errorf("limit 700 after 10: %d, last %d", n, last)
	}
	// Stopping early stops reading.
	n := 0
	for range Query(t.Context(), s, store.AuditQuery{}) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatal(n)
	}
	var b bytes.Buffer
	if err := Export(&b, FormatCSV, Query(t.Context(), s, store.AuditQuery{ClientAddr: "10.0.0.0/33"})); err == nil {
		t.Error("a bad filter gave no error")
	}
}

// FuzzCSVCell: whatever a recorded value holds, the exported CSV parses
// back to the same number of cells, each equal to the value or to the
// value behind an apostrophe, and no cell starts with a formula character.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"", "=1+1", "+", "-", "@", "\t=", "\r", "'=", "a,b", "\"q\"", "x\ny", "é=", "\x00"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, person, reason string) {
		e := store.AuditEvent{ID: 7, Time: t0, Type: SignInFailure, Person: person, Reason: reason, Details: map[string]string{person: reason}}
		var b bytes.Buffer
		if err := Export(&b, FormatCSV, Events([]store.AuditEvent{e})); err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(&b)
		rows, err := r.ReadAll()
		if err != nil {
			t.Fatalf("the CSV does not parse: %v", err)
		}
		if len(rows) != 2 || len(rows[1]) != len(CSVHeader) {
			t.Fatalf("rows = %q", rows)
		}
		for _, c := range rows[1] {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Fatalf("cell %q would be evaluated", c)
			}
		}
		// encoding/csv reads \r\n inside quotes as \n: compare so.
		norm := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
		for i, want := range map[int]string{3: person, 7: reason} {
			got := rows[1][i]
			if norm(got) != norm(want) && norm(got) != norm("'"+want) {
				t.Fatalf("cell %d = %q, want %q", i, got, want)
			}
		}
	})
}
