package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
)

const policyUsage = `usage: garde policy test --app ID [--config FILE] [--person USERNAME | --subject SUB]
         [--group G]... [--profession CODE]... [--specialty CODE]... [--finess N]...
         [--national-id-type rpps|adeli|structure|other] [--zone NAME | --addr IP]
         [--level low|substantial|high] [--methods card,psc,password,passkey,key]
         [--requested LEVEL [--essential]] [--emergency] [--emergencies-today N]
         [--at RFC3339] [--lang fr|en] [--expect allow|deny|step_up|emergency_eligible]`

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// policyCommand explains the decision for a hypothetical sign-in:
//
//	garde policy test --app dpi --person jdupont --zone vpn --level substantial
//
// Exit status 0 when a decision was made (or matches --expect), 1 when the
// configuration or the person cannot be loaded or --expect differs, 2 on a
// usage error.
func policyCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, policyUsage)
		return 2
	}
	fs := flagSet("policy test", stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, policyUsage) }
	var (
		path                                     = fs.String("config", "", "configuration file (default: the built-in demo)")
		appID                                    = fs.String("app", "", "client id or SAML entity id")
		person                                   = fs.String("person", "", "username, looked up in the configured connectors")
		subject                                  = fs.String("subject", "", "subject, for a person no connector can look up")
		natType                                  = fs.String("national-id-type", "", "rpps, adeli, structure or other")
		structure                                = fs.String("structure", "", "structure id (staff cards)")
		zone                                     = fs.String("zone", "", "network zone the sign-in comes from")
		addr                                     = fs.String("addr", "", "client address the sign-in comes from")
		level                                    = fs.String("level", "", "level the person reached: low, substantial or high")
		methods                                  = fs.String("methods", "", "comma-separated methods used")
		requested                                = fs.String("requested", "", "level the application asks for")
		essential                                = fs.Bool("essential", false, "the requested level is essential")
		emergency                                = fs.Bool("emergency", false, "the session is an emergency access session")
		today                                    = fs.Int("emergencies-today", 0, "emergencies the person declared today")
		at                                       = fs.String("at", "", "time of the sign-in, RFC 3339 (default now)")
		lang                                     = fs.String("lang", "fr", "language of the explanation: fr or en")
		expect                                   = fs.String("expect", "", "exit 1 unless the outcome is this one")
		groups, professions, specialties, finess list
	)
	fs.StringVar(level, "acr", "", "same as --level")
	fs.Var(&groups, "group", "AD group (repeatable; added to the person's)")
	fs.Var(&professions, "profession", "profession code (repeatable)")
	fs.Var(&specialties, "specialty", "specialty code (repeatable)")
	fs.Var(&finess, "finess", "FINESS of a place of practice (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "garde policy test: "+format+"\n%s\n", append(a, policyUsage)...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *appID == "":
		return usageErr("--app is required")
	case *zone != "" && *addr != "":
		return usageErr("give --zone or --addr, not both")
	case *person != "" && *subject != "":
		return usageErr("give --person or --subject, not both")
	case *lang != "fr" && *lang != "en":
		return usageErr("--lang is fr or en")
	case *expect != "" && !slices.Contains([]string{"allow", "deny", "step_up", "emergency_eligible"}, *expect):
		return usageErr("--expect is allow, deny, step_up or emergency_eligible")
	}

	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "garde: configuration is not valid:\n%v\n", err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engine, err := policies.Compile(cfg.PolicyConfig(), policies.WithLogger(logger))
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}

	in := policies.Input{App: *appID, Subject: "hypothetical", NationalIDType: *natType, Structure: *structure,
		Essential: *essential, Emergency: *emergency, EmergenciesToday: *today, Now: time.Now()}
	if *subject != "" {
		in.Subject = *subject
	}
	if *person != "" {
		baseDir := ""
		if *path != "" {
			baseDir = filepath.Dir(*path)
		}
		id, err := lookupPerson(cfg, logger, baseDir, *person)
		if err != nil {
			fmt.Fprintln(stderr, "garde:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s %s (%s, %s)\n", pickLang(*lang, "Personne :", "Person:"), id.Username, id.Connector, id.Subject)
		in.Subject, in.Groups, in.Professions = id.Subject, id.Groups, id.Professions
		if in.NationalIDType == "" {
			in.NationalIDType = id.NationalIDType
		}
		if in.Structure == "" {
			in.Structure = id.Structure
		}
	}
	for _, g := range groups {
		if !slices.Contains(in.Groups, g) {
			in.Groups = append(in.Groups, g)
		}
	}
	if p := hypotheticalProfessions(professions, specialties, finess); p != nil {
		in.Professions = append(in.Professions, p...)
	}

	if *at != "" {
		if in.Now, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageErr("--at %q is not an RFC 3339 time (e.g. 2026-11-25T22:30:00+01:00)", *at)
		}
	}
	in.AuthTime = in.Now
	if *methods != "" {
		for _, m := range strings.Split(*methods, ",") {
			m = strings.TrimSpace(m)
			if policies.MaxLevel(m) == assurance.None {
				return usageErr("--methods: %q is not a method; expected %s", m, strings.Join(policies.Methods(), ", "))
			}
			in.Methods = append(in.Methods, m)
		}
	}
	if *level != "" {
		l, ok := assurance.ParseACR(*level)
		if !ok {
			return usageErr("--level %q is not a level; expected low, substantial or high", *level)
		}
		in.Level = l
	}
	// What is not said is filled in plausibly: the level the methods
	// reach, or the usual methods for the level.
	switch {
	case in.Level == assurance.None && len(in.Methods) > 0:
		for _, m := range in.Methods {
			in.Level = max(in.Level, policies.MaxLevel(m))
		}
	case in.Level == assurance.None:
		in.Level = assurance.Low
		fallthrough
	case len(in.Methods) == 0:
		in.Methods = map[assurance.Level][]string{
			assurance.Low:         {policies.MethodPassword},
			assurance.Substantial: {policies.MethodPassword, policies.MethodKey},
			assurance.High:        {policies.MethodCard},
		}[in.Level]
	}
	if *requested != "" {
		l, ok := assurance.ParseACR(*requested)
		if !ok {
			return usageErr("--requested %q is not a level; expected low, substantial or high", *requested)
		}
		in.Requested = l
	}
	switch {
	case *addr != "":
		in.ClientAddr = *addr
	case *zone != "" && *zone != policies.ZoneOutside:
		i := slices.IndexFunc(cfg.Policies.Zones, func(z config.PolicyZone) bool { return z.Name == *zone })
		if i < 0 || len(cfg.Policies.Zones[i].Networks) == 0 {
			return usageErr("--zone %q is not a configured zone", *zone)
		}
		in.ClientAddr = cfg.Policies.Zones[i].Networks[0].Addr().String()
	}

	d := engine.Decide(in)
	fmt.Fprint(stdout, d.Explain(*lang))
	if *expect != "" && d.Outcome.String() != *expect {
		fmt.Fprintf(stderr, "garde policy test: outcome %s, expected %s\n", d.Outcome, *expect)
		return 1
	}
	return 0
}

func pickLang(lang, fr, en string) string {
	if lang == "en" {
		return en
	}
	return fr
}

// hypotheticalProfessions builds one profession per code, each with every
// given specialty and place of practice.
func hypotheticalProfessions(codes, specialties, finess []string) []connectors.Profession {
	if len(codes) == 0 && (len(specialties) > 0 || len(finess) > 0) {
		codes = []string{""}
	}
	var out []connectors.Profession
	for _, c := range codes {
		p := connectors.Profession{Code: c, Specialties: specialties}
		for _, f := range finess {
			p.Activities = append(p.Activities, connectors.Activity{FinessSite: f})
		}
		out = append(out, p)
	}
	return out
}

// lookupPerson finds username in the first connector that knows it, among
// those that can look people up by username.
func lookupPerson(cfg *config.Config, logger *slog.Logger, baseDir, username string) (connectors.Identity, error) {
	sources, err := app.OpenConnectors(cfg, logger, baseDir)
	if err != nil {
		return connectors.Identity{}, err
	}
	defer func() {
		for _, s := range sources {
			if c, ok := s.Connector.(interface{ Close() }); ok {
				c.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tried []string
	for _, s := range sources {
		ul, ok := s.Connector.(connectors.UsernameLookup)
		if !ok {
			continue
		}
		tried = append(tried, s.ID)
		id, err := ul.LookupUsername(ctx, username)
		if errors.Is(err, connectors.ErrUnknownSubject) {
			continue
		}
		if err != nil {
			return connectors.Identity{}, fmt.Errorf("connector %s: %w", s.ID, err)
		}
		return id, nil
	}
	if len(tried) == 0 {
		return connectors.Identity{}, errors.New("no configured connector can look people up by username; use --subject and --group")
	}
	return connectors.Identity{}, fmt.Errorf("%q is not known to %s", username, strings.Join(tried, ", "))
}
