package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path, expanding ${VAR}
// from the process environment. On failure the error is an Errors listing
// every problem, or a read error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses a configuration document. filename is only used in error
// messages. env looks up ${VAR} references; nil means no variable is set.
// Relative file paths in the configuration are relative to the working
// directory, and files named by it are checked for existence.
//
// It returns either a valid configuration (with Warnings possibly set) or
// an Errors value listing every problem found, in file order.
func Parse(filename string, data []byte, env func(string) (string, bool)) (*Config, error) {
	return parse(filename, data, env, os.Stat)
}

//go:embed demo.yaml
var demoYAML []byte

// DemoFile is the name under which the embedded demo configuration is
// reported in messages.
const DemoFile = "demo.yaml"

// DemoYAML returns a copy of the embedded demo configuration, e.g. for a
// command printing a starting point for a real file.
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// Demo returns the configuration `garde serve` runs with when no --config
// is given: a local demonstration on http://localhost:5556 with a static
// directory and two example clients. It panics if the embedded file is
// invalid, which the package's tests rule out.
func Demo() *Config {
	cfg, err := Parse(DemoFile, demoYAML, nil)
	if err != nil {
		panic("config: embedded demo.yaml is invalid: " + err.Error())
	}
	return cfg
}

// IsLoopbackDemo reports whether the issuer is an http URL on a loopback
// host: a local demonstration, where some rules become warnings.
func (c *Config) IsLoopbackDemo() bool {
	u, err := url.Parse(c.Issuer)
	return err == nil && u.Scheme == "http" && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

func parse(filename string, data []byte, env func(string) (string, bool), stat func(string) (fs.FileInfo, error)) (*Config, error) {
	r := newReport(filename)
	root, err := parseYAML(filename, data)
	if err != nil {
		return nil, Errors{err}
	}
	cfg := &Config{}
	if root != nil {
		d := &decoder{report: r, env: env, budget: nodeBudget}
		d.value(root, reflect.ValueOf(cfg).Elem(), "")
		if d.exhausted {
			// What was decoded is partial; validating it would only bury
			// the one useful message under follow-up errors.
			return nil, Errors{d.exhaustedErr}
		}
	}
	applyDefaults(cfg, r)
	v := &validator{report: r, cfg: cfg, env: env, stat: stat}
	v.validate()
	sortErrors(r.warns)
	for _, w := range r.warns {
		cfg.Warnings = append(cfg.Warnings, w.Error())
	}
	if len(r.errs) > 0 {
		sortErrors(r.errs)
		return nil, Errors(r.errs)
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML returns the root node of the only document in data (nil for an
// empty file), or a syntax error with its line.
func parseYAML(filename string, data []byte) (root *yaml.Node, err *Error) {
	defer func() {
		// The YAML library is not ours; a panic on hostile input must
		// not take the server (or `garde check-config`) down.
		if p := recover(); p != nil {
			root, err = nil, &Error{File: filename, Message: fmt.Sprintf("cannot parse YAML: %v", p)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if e := dec.Decode(&doc); e != nil {
		if errors.Is(e, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(filename, e)
	}
	var extra yaml.Node
	if e := dec.Decode(&extra); !errors.Is(e, io.EOF) {
		if e != nil {
			return nil, syntaxError(filename, e)
		}
		return nil, &Error{File: filename, Line: extra.Line, Column: extra.Column,
			Message: "a second YAML document (---) is not allowed; expected one document"}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// parserProblems are the messages of the YAML parser (parserc.go), whose line
// numbers are off by one.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

func syntaxError(filename string, e error) *Error {
	msg := e.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			// The YAML library reports the parser's (as opposed to the
			// scanner's) marks 0-based.
			line++
		}
		return &Error{File: filename, Line: line, Message: "invalid YAML: " + m[2]}
	}
	return &Error{File: filename, Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}
