package policies

import (
	"net/netip"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// The policy is decided on every authorization (twice for a fresh
// sign-in): these measure what it adds to the hot path.
func benchEngine(b *testing.B, withCEL bool) *Engine {
	b.Helper()
	app := AppPolicy{Rules: Rules{
		MinLevel: assurance.Substantial,
		Allow:    Who{Groups: []string{"medecins", "internes"}, Professions: []string{"10"}},
		Zones:    map[string]ZoneRule{"vpn": {MinLevel: assurance.High}, ZoneOutside: {Deny: true}},
	}}
	if withCEL {
		app.Conditions = []Condition{{Expr: `request.hour >= 7 && request.hour < 21 && "medecins" in person.groups`, Reason: "day_only", MessageFR: "jour", MessageEN: "day"}}
	}
	e, err := Compile(Config{
		Zones: []Zone{{Name: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, {Name: "vpn", Prefixes: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}}},
		Apps:  map[string]AppPolicy{"dpi": app},
	})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func benchInput() Input {
	return Input{
		App: "dpi", Subject: "ad:3f2504e0-4f89-11d3-9a0c-0305e82c3301", Groups: []string{"medecins", "personnel"},
		Professions: []connectors.Profession{{Code: "10", Activities: []connectors.Activity{{FinessSite: "750000001"}}}},
		Level:       assurance.Substantial, AMR: []string{"pwd", "hwk", "mfa"}, Methods: []string{MethodKey},
		AuthTime: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), ClientAddr: "10.1.2.3",
		Now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
	}
}

func BenchmarkDecide(b *testing.B) {
	e := benchEngine(b, false)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(in); d.Outcome != Allow {
			b.Fatalf("%v %s", d.Outcome, d.Reason)
		}
	}
}

func BenchmarkDecideWithCEL(b *testing.B) {
	e := benchEngine(b, true)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(in); d.Outcome != Allow {
			b.Fatalf("%v %s", d.Outcome, d.Reason)
		}
	}
}
