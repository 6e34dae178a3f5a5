package policies

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	// Europe/Paris must resolve in a minimal container image too.
	_ "time/tzdata"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"

	"github.com/garde-sso/garde/internal/assurance"
)

// Limits on conditions. An expression is written by an administrator, but
// it runs on every sign-in: its size and its evaluation cost are bounded
// so that no rule can stall the broker.
const (
	maxExprLen   = 4096
	celCostLimit = 100_000
)

// The CEL input, as native Go types so that the expressions are
// type-checked field by field when the configuration loads: a misspelt
// field is a configuration error, not a denial at 3 a.m. Names are
// documented in docs/policies.md.
type celPerson struct {
	Subject        string          `cel:"subject"`
	Groups         []string        `cel:"groups"`
	Professions    []celProfession `cel:"professions"`
	NationalIDType string          `cel:"national_id_type"`
	Structure      string          `cel:"structure"`
}

type celProfession struct {
	Code        string   `cel:"code"`
	Specialties []string `cel:"specialties"`
	Finess      []string `cel:"finess"`
}

type celSession struct {
	Level          string   `cel:"level"`
	LevelRank      int      `cel:"level_rank"`
	AMR            []string `cel:"amr"`
	Methods        []string `cel:"methods"`
	AuthAgeSeconds int      `cel:"auth_age_seconds"`
	Emergency      bool     `cel:"emergency"`
}

type celRequest struct {
	Zone           string    `cel:"zone"`
	Zones          []string  `cel:"zones"`
	ClientAddr     string    `cel:"client_addr"`
	RequestedLevel string    `cel:"requested_level"`
	Essential      bool      `cel:"essential"`
	Now            time.Time `cel:"now"`
	Weekday        int       `cel:"weekday"`
	Hour           int       `cel:"hour"`
}

type celEnv struct {
	env   *cel.Env
	paris *time.Location
}

func newCELEnv() (*celEnv, error) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, err
	}
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[celPerson](), reflect.TypeFor[celSession](), reflect.TypeFor[celRequest](), ext.ParseStructTags(true)),
		cel.Variable("app", cel.StringType),
		cel.Variable("person", cel.ObjectType("policies.celPerson")),
		cel.Variable("session", cel.ObjectType("policies.celSession")),
		cel.Variable("request", cel.ObjectType("policies.celRequest")),
		ext.Strings(),
	)
	if err != nil {
		return nil, err
	}
	return &celEnv{env: env, paris: paris}, nil
}

type compiledCondition struct {
	Condition
	prg cel.Program
}

// compile type-checks expr and requires a bool.
func (c *celEnv) compile(expr string) (cel.Program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("the expression is empty; expected a CEL expression that returns true or false")
	}
	if len(expr) > maxExprLen {
		return nil, fmt.Errorf("the expression is %d characters long; expected at most %d", len(expr), maxExprLen)
	}
	ast, iss := c.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			// One line per problem, without CEL's caret drawing: the
			// configuration error names the line of the key already.
			msgs = append(msgs, fmt.Sprintf("%s (expression line %d, column %d)", e.Message, e.Location.Line(), e.Location.Column()+1))
		}
		return nil, fmt.Errorf("CEL: %s", strings.Join(msgs, "; "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("CEL: the expression returns %s; expected bool", ast.OutputType())
	}
	prg, err := c.env.Program(ast, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("CEL: %w", err)
	}
	return prg, nil
}

// activation builds the CEL input from a decision's input.
func (c *celEnv) activation(in Input, zones []string) map[string]any {
	p := celPerson{
		Subject:        in.Subject,
		Groups:         nonNil(in.Groups),
		Professions:    []celProfession{},
		NationalIDType: in.NationalIDType,
		Structure:      in.Structure,
	}
	for _, pr := range in.Professions {
		cp := celProfession{Code: pr.Code, Specialties: nonNil(pr.Specialties), Finess: []string{}}
		for _, a := range pr.Activities {
			for _, f := range []string{a.FinessSite, a.FinessLegal} {
				if f != "" {
					cp.Finess = append(cp.Finess, f)
				}
			}
		}
		p.Professions = append(p.Professions, cp)
	}
	age := 0
	if !in.AuthTime.IsZero() && !in.Now.IsZero() {
		age = int(in.Now.Sub(in.AuthTime) / time.Second)
	}
	s := celSession{
		Level: in.Level.String(), LevelRank: int(in.Level), AMR: nonNil(in.AMR), Methods: nonNil(in.Methods),
		AuthAgeSeconds: age, Emergency: in.Emergency,
	}
	local := in.Now.In(c.paris)
	r := celRequest{
		Zone: zones[0], Zones: zones, ClientAddr: in.ClientAddr, RequestedLevel: in.Requested.String(),
		Essential: in.Essential, Now: in.Now, Weekday: int(local.Weekday()), Hour: local.Hour(),
	}
	if in.Requested == assurance.None {
		r.RequestedLevel = ""
	}
	return map[string]any{"app": in.App, "person": p, "session": s, "request": r}
}

// eval runs a condition; an error (cost limit, a missing value) is
// returned so that the caller denies.
func (cc compiledCondition) eval(act map[string]any) (ok bool, err error) {
	// cel-go reports evaluation problems as errors; the recover is a last
	// line of defence so that no expression can crash a sign-in.
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("CEL evaluation panicked: %v", r)
		}
	}()
	out, _, err := cc.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, isBool := out.Value().(bool)
	if !isBool {
		return false, fmt.Errorf("CEL: the expression returned %s, not a bool", out.Type())
	}
	return b, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
