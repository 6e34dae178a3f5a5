package policies

import (
	"fmt"
	"strings"

	"github.com/garde-sso/garde/internal/assurance"
)

func levelFR(l assurance.Level) string {
	switch l {
	case assurance.Low:
		return "faible"
	case assurance.Substantial:
		return "substantiel"
	case assurance.High:
		return "élevé"
	}
	return "aucun"
}

var methodFR = map[string]string{
	MethodCard: "carte CPS", MethodPSC: "Pro Santé Connect", MethodPassword: "mot de passe",
	MethodPasskey: "clé d'accès (passkey)", MethodKey: "mot de passe et clé de sécurité",
}

var methodEN = map[string]string{
	MethodCard: "CPS card", MethodPSC: "Pro Santé Connect", MethodPassword: "password",
	MethodPasskey: "passkey", MethodKey: "password and security key",
}

func methodNames(ms []string, names map[string]string) string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if n, ok := names[m]; ok {
			out = append(out, n)
		} else {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// messages are the default texts a person sees for a reason code.
func messages(reason string, d Decision) (fr, en string) {
	switch reason {
	case "not_authenticated":
		return "Vous devez vous identifier pour accéder à cette application.", "You must sign in to use this application."
	case "essential_acr_unreachable":
		return "Cette application exige un niveau d'authentification (" + levelFR(d.Level) + ") qu'aucune des méthodes de connexion qu'elle accepte ne permet d'atteindre. Contactez le support informatique.",
			"This application requires an authentication level (" + d.Level.String() + ") that none of the sign-in methods it accepts can reach. Contact IT support."
	case "group_not_allowed":
		return "Votre compte ne fait partie d'aucun des groupes autorisés à utiliser cette application.", "Your account is in none of the groups allowed to use this application."
	case "profession_not_allowed":
		return "Votre profession ne fait pas partie de celles autorisées pour cette application.", "Your profession is not among those allowed to use this application."
	case "specialty_not_allowed":
		return "Votre spécialité ne fait pas partie de celles autorisées pour cette application.", "Your specialty is not among those allowed to use this application."
	case "national_id_type_not_allowed":
		return "Votre type d'identifiant national (RPPS, ADELI...) ne permet pas d'utiliser cette application.", "Your type of national identifier (RPPS, ADELI...) does not give access to this application."
	case "finess_not_allowed":
		return "Votre lieu d'exercice ne fait pas partie des établissements autorisés pour cette application.", "Your place of practice is not among the establishments allowed to use this application."
	case "zone_denied":
		return "Cette application n'est pas accessible depuis le réseau où vous vous trouvez.", "This application cannot be used from the network you are on."
	case "level_too_low":
		return "Cette application demande une authentification plus forte (niveau " + levelFR(d.Level) + ") : utilisez " + methodNames(d.Methods, methodFR) + ".",
			"This application requires a stronger authentication (level " + d.Level.String() + "): use " + methodNames(d.Methods, methodEN) + "."
	case "method_not_accepted":
		return "Cette application n'accepte pas la méthode de connexion que vous avez utilisée : utilisez " + methodNames(d.Methods, methodFR) + ".",
			"This application does not accept the sign-in method you used: use " + methodNames(d.Methods, methodEN) + "."
	case "emergency_not_valid_here":
		return "Votre accès en urgence ne vaut que pour l'application pour laquelle vous l'avez déclaré.", "Your emergency access is valid only for the application you declared it for."
	case "emergency_limit_reached":
		return "Vous avez atteint le nombre maximal d'accès en urgence pour aujourd'hui. Contactez l'administrateur de garde.", "You have reached today's limit of emergency accesses. Contact the on-call administrator."
	}
	if strings.HasPrefix(reason, "condition_error:") {
		return "Une règle d'accès de cette application n'a pas pu être vérifiée ; l'accès est refusé par prudence. Contactez le support informatique.",
			"An access rule of this application could not be checked, so access is refused. Contact IT support."
	}
	return "L'accès à cette application vous est refusé par une de ses règles d'accès.", "An access rule of this application refuses you access."
}

var outcomeFR = map[Outcome]string{Allow: "autorisé", Deny: "refusé", StepUp: "authentification plus forte requise", EmergencyEligible: "refusé, accès en urgence possible"}
var outcomeEN = map[Outcome]string{Allow: "allowed", Deny: "denied", StepUp: "stronger authentication required", EmergencyEligible: "denied, emergency access possible"}

// Explain says the decision and how it was reached, in lang ("en", else
// French): `garde policy test` prints it, and the admin console shows it.
func (d Decision) Explain(lang string) string {
	en := lang == "en"
	var b strings.Builder
	pick := func(fr, e string) string {
		if en {
			return e
		}
		return fr
	}
	out := pick(outcomeFR[d.Outcome], outcomeEN[d.Outcome])
	if d.Reason != "" {
		out += " (" + d.Reason + ")"
	}
	fmt.Fprintf(&b, "%s %s\n", pick("Décision :", "Decision:"), out)
	if msg := d.Message(lang); msg != "" {
		fmt.Fprintf(&b, "  %s\n", msg)
	}
	if d.Outcome == StepUp || d.Outcome == EmergencyEligible && len(d.Methods) > 0 {
		fmt.Fprintf(&b, "%s %s — %s %s\n", pick("Niveau à atteindre :", "Level to reach:"), pick(levelFR(d.Level), d.Level.String()),
			pick("méthodes :", "methods:"), strings.Join(d.Methods, ", "))
	}
	if e := d.Emergency; e != nil && d.Outcome == EmergencyEligible {
		fmt.Fprintf(&b, "%s %s, %s %d/%s, %s %s\n", pick("Accès en urgence : durée", "Emergency access: lifetime"), e.Lifetime,
			pick("au plus", "at most"), e.PerPersonPerDay, pick("jour", "day"), pick("motifs", "reasons"), strings.Join(e.Reasons, ", "))
	}
	if s := d.Session; s.Absolute > 0 || s.Idle > 0 {
		fmt.Fprintf(&b, "%s %s, %s %s\n", pick("Session : durée maximale", "Session: lifetime"), boundText(s.Absolute, en),
			pick("inactivité", "idle"), boundText(s.Idle, en))
	}
	fmt.Fprintln(&b, pick("Règles examinées :", "Rules considered:"))
	for _, s := range d.Trace {
		mark := "✓"
		if !s.OK {
			mark = "✗"
		}
		rule := s.Source
		if s.Rule != "" && s.Rule != "-" {
			rule += "." + s.Rule
		}
		fmt.Fprintf(&b, "  %s %-34s %s\n", mark, rule, pick(s.FR, s.EN))
		if s.Effect != "none" {
			fmt.Fprintf(&b, "      → %s\n", s.Effect)
		}
	}
	return b.String()
}

func boundText(d interface{ String() string }, en bool) string {
	if s := d.String(); s != "0s" {
		return s
	}
	if en {
		return "no bound"
	}
	return "sans limite"
}
