package sqlstore

import (
	"reflect"
	"testing"
)

func TestRebind(t *testing.T) {
	d := Dialect{DollarPlaceholders: true}
	got := d.rebind("SELECT a FROM t WHERE b = ? AND c = ? LIMIT ?")
	if want := "SELECT a FROM t WHERE b = $1 AND c = $2 LIMIT $3"; got != want {
		t.Errorf("rebind = %q, want %q", got, want)
	}
	q := (&Dialect{}).rebind("x = ?")
	if q != "x = ?" {
		t.Errorf("rebind without numbering = %q", q)
	}
}

func TestStatements(t *testing.T) {
	src := "-- header\n\nCREATE TABLE a (\n\tx INT -- note; here\n);\nCREATE INDEX i ON a (x);\n-- trailing comment\n"
	got := statements(src)
	want := []string{"-- header\n\nCREATE TABLE a (\n\tx INT -- note; here\n);", "CREATE INDEX i ON a (x);"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements = %q,\nwant %q", got, want)
	}
}

func TestMigrationsParse(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 || ms[0].version != 1 {
			t.Fatalf("%s: migrations %v", d, ms)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].version <= ms[i-1].version {
				t.Fatalf("%s: versions out of order", d)
			}
		}
	}
	// Both dialects must define the same versions.
	a, _ := migrations("sqlite")
	b, _ := migrations("postgres")
	if len(a) != len(b) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(a), len(b))
	}
	for i := range a {
		if a[i].version != b[i].version {
			t.Errorf("migration %d: sqlite version %d, postgres %d", i, a[i].version, b[i].version)
		}
	}
	if _, err := migrations("oracle"); err == nil {
		t.Error("unknown dialect accepted")
	}
}
