package admin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
)

// AppInfo is an application with its effective policy and the policy
// explained in the caller's language.
type AppInfo struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	OwnRules    bool     `json:"own_rules"`
	MinLevel    string   `json:"min_level"`
	Methods     []string `json:"methods"`
	Emergency   bool     `json:"emergency_access"`
	AdminApp    bool     `json:"admin"`
	Explanation []string `json:"explanation"`
}

func (c *Console) apps(lang string) []AppInfo {
	out := make([]AppInfo, 0, len(c.o.Apps))
	for _, a := range c.o.Apps {
		e := a.Policy
		out = append(out, AppInfo{ID: a.ID, Name: a.Name, Kind: a.Kind, OwnRules: e.Own, MinLevel: levelName(e.MinLevel),
			Methods: slices.Clone(e.Methods), Emergency: e.Emergency != nil && e.Emergency.Allowed && !e.Admin, AdminApp: e.Admin,
			Explanation: explain(e, lang == "en")})
	}
	return out
}

func levelName(l assurance.Level) string {
	if l == assurance.None {
		return "none"
	}
	return l.String()
}

var levelFR = map[assurance.Level]string{assurance.None: "aucun", assurance.Low: "faible", assurance.Substantial: "substantiel", assurance.High: "élevé"}

// explain says an effective policy in sentences, one rule a line.
func explain(e policies.Effective, en bool) []string {
	pick := func(fr, eng string) string {
		if en {
			return eng
		}
		return fr
	}
	lvl := func(l assurance.Level) string { return pick(levelFR[l], levelName(l)) }
	var out []string
	if e.Own {
		out = append(out, pick("Règles par défaut et règles propres à l'application, combinées (la plus stricte l'emporte).",
			"Default rules and the application's own, combined (the stricter wins)."))
	} else {
		out = append(out, pick("Règles par défaut seulement.", "Default rules only."))
	}
	out = append(out, fmt.Sprintf(pick("Niveau minimal : %s.", "Minimum level: %s."), lvl(e.MinLevel)))
	out = append(out, fmt.Sprintf(pick("Méthodes acceptées : %s.", "Accepted methods: %s."), strings.Join(e.Methods, ", ")))
	for _, w := range e.Allow {
		var parts []string
		add := func(fr, eng string, vs []string) {
			if len(vs) > 0 {
				parts = append(parts, pick(fr, eng)+" "+strings.Join(vs, ", "))
			}
		}
		add("groupes", "groups", w.Groups)
		add("professions", "professions", w.Professions)
		add("savoir-faire", "specialties", w.Specialties)
		add("types d'identifiant", "id types", w.NationalIDTypes)
		add("FINESS", "FINESS", w.Finess)
		out = append(out, pick("Réservé à : ", "Only for: ")+strings.Join(parts, pick(" et ", " and "))+".")
	}
	zones := make([]string, 0, len(e.Zones))
	for z := range e.Zones {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	for _, z := range zones {
		zr := e.Zones[z]
		switch {
		case zr.Deny:
			out = append(out, fmt.Sprintf(pick("Zone %s : refusée.", "Zone %s: denied."), z))
		case zr.MinLevel > assurance.None:
			out = append(out, fmt.Sprintf(pick("Zone %s : niveau %s au moins.", "Zone %s: level %s at least."), z, lvl(zr.MinLevel)))
		}
	}
	if s := e.Session.Lifetime; s.Absolute > 0 || s.Idle > 0 {
		out = append(out, fmt.Sprintf(pick("Session : durée maximale %s, inactivité %s.", "Session: lifetime %s, idle %s."), bound(s.Absolute, en), bound(s.Idle, en)))
	}
	for _, cnd := range e.Conditions {
		out = append(out, fmt.Sprintf(pick("Condition (%s) : %s", "Condition (%s): %s"), cnd.Reason, cnd.Expr))
	}
	switch {
	case e.Admin:
		out = append(out, pick("Application d'administration : jamais d'accès en urgence.", "Administration application: never emergency access."))
	case e.Emergency != nil && e.Emergency.Allowed:
		out = append(out, fmt.Sprintf(pick("Accès en urgence possible : durée %s, au plus %d par jour, motifs %s.", "Emergency access allowed: lifetime %s, at most %d a day, reasons %s."),
			e.Emergency.Lifetime, e.Emergency.PerPersonPerDay, strings.Join(e.Emergency.Reasons, ", ")))
	default:
		out = append(out, pick("Pas d'accès en urgence.", "No emergency access."))
	}
	return out
}

func bound(d interface{ String() string }, en bool) string {
	if s := d.String(); s != "0s" {
		return s
	}
	if en {
		return "no bound"
	}
	return "sans limite"
}
