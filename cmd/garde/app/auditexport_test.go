package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// A configured jsonl sink receives the events the app records, and the
// store and export metrics are served; the Grafana dashboard asks only for
// metrics that exist.
func TestAuditExportWiring(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Demo()
	cfg.Audit.Export = []config.AuditExport{{Name: "fichier", Type: "jsonl", JSONL: &config.AuditJSONLExport{Path: "audit.jsonl"}}}
	a, err := app.Build(context.Background(), cfg, app.Options{BaseDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	a.Audit.Record(store.AuditEvent{Type: audit.Logout, Person: "demo:dr.martin", Outcome: audit.Success})
	if err := a.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var types []string
	for deadline := time.Now().Add(time.Minute); !strings.Contains(strings.Join(types, " "), audit.Logout); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the jsonl sink got %v", types)
		}
		types = nil
		f, err := os.Open(filepath.Join(dir, "audit.jsonl"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e audit.JSONEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			types = append(types, e.Type)
		}
		f.Close()
	}
	if types[0] != audit.KeyCreated {
		t.Errorf("exported %v: not from the first event", types)
	}

	rec := httptest.NewRecorder()
	a.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`garde_store_duration_seconds_count{op="append_audit_events",store="durable"}`,
		`garde_audit_export_sent_total{sink="fichier"}`, `garde_audit_export_lag_events{sink="fichier"}`, `garde_audit_export_errors_total{sink="fichier"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "grafana", "garde-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	// A vector with no series yet (no sign-in in this test) is not
	// served: the dashboard's names are checked against those the code
	// defines.
	known := []string{"garde_signins_total", "garde_audit_events_total", "garde_audit_export_sent_total", "garde_audit_export_errors_total",
		"garde_audit_export_lag_events", "garde_store_duration_seconds", "garde_store_errors_total", "garde_http_requests_total", "garde_http_request_duration_seconds",
		"garde_stepups_total", "garde_emergency_accesses_total", "garde_tokens_issued_total", "garde_connector_duration_seconds", "garde_connector_errors_total"}
	name := regexp.MustCompile(`garde_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				ok := false
				for _, k := range known {
					ok = ok || m == k
				}
				if !ok {
					t.Errorf("panel %q uses unknown metric %s", p.Title, m)
				}
				n++
			}
		}
	}
	if n < 10 {
		t.Errorf("dashboard uses %d metrics", n)
	}
	for _, k := range known {
		if !strings.Contains(body, "# HELP "+k+" ") && !strings.Contains(string(mustRead(t)), k) {
			t.Errorf("%s is neither served nor defined", k)
		}
	}
}

func mustRead(t *testing.T) []byte {
	var all []byte
	for _, f := range []string{"metrics.go", "storemetrics.go", "auditexport.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
