package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// position is where a value or key starts in the file.
type position struct{ line, col int }

// report collects what the decoder and the validator find, and remembers
// where every key path came from so that a problem found on a decoded Go
// value can still name its line.
type report struct {
	file   string
	pos    map[string]position // value position of every path seen, null values included
	keyPos map[string]position // position of the key naming each path
	set    map[string]bool     // paths given a non-null value
	bad    map[string]bool     // paths whose value could not be decoded
	errs   []*Error
	warns  []*Error
}

func newReport(file string) *report {
	return &report{
		file:   file,
		pos:    map[string]position{},
		keyPos: map[string]position{},
		set:    map[string]bool{},
		bad:    map[string]bool{},
	}
}

// parent returns the path one level up: "a.b[2]" → "a.b" → "a" → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// at returns the position of path's value, or of its nearest ancestor when
// the path was not written (a missing required key is reported where its
// parent is).
func (r *report) at(path string) position {
	for p := path; ; p = parent(p) {
		if pos, ok := r.pos[p]; ok && pos.line > 0 {
			return pos
		}
		if p == "" {
			return position{1, 1}
		}
	}
}

// atKey returns the position of the key naming path, falling back to at.
func (r *report) atKey(path string) position {
	if pos, ok := r.keyPos[path]; ok {
		return pos
	}
	return r.at(path)
}

// suppressed reports whether path or an ancestor failed to decode: the
// decoder already said what is wrong there, and the zero value left behind
// would only add confusing follow-up errors.
func (r *report) suppressed(path string) bool {
	for p := path; ; p = parent(p) {
		if r.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func (r *report) add(list *[]*Error, pos position, path, format string, args ...any) {
	*list = append(*list, &Error{File: r.file, Line: pos.line, Column: pos.col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// errorf reports a problem with path's value.
func (r *report) errorf(path, format string, args ...any) {
	if r.suppressed(path) {
		return
	}
	r.add(&r.errs, r.at(path), path, format, args...)
}

// keyErrorf reports a problem with the presence of a key (rather than its
// value), at the key.
func (r *report) keyErrorf(path, format string, args ...any) {
	if r.suppressed(path) {
		return
	}
	r.add(&r.errs, r.atKey(path), path, format, args...)
}

func (r *report) warnf(path, format string, args ...any) {
	r.add(&r.warns, r.at(path), path, format, args...)
}

// decodeError is a decoder problem: it also marks path bad.
func (r *report) decodeError(path string, pos position, format string, args ...any) {
	r.bad[path] = true
	r.add(&r.errs, pos, path, format, args...)
}

// nodeBudget bounds the work done on one document: aliases let a small file
// name the same large node many times.
const nodeBudget = 200_000

// decoder maps YAML nodes onto the schema structs by their yaml tags. It is
// written by hand rather than using yaml.Unmarshal so that unknown keys,
// type errors and ${VAR} references are all reported with their position
// and key path, and so that decoding goes on after the first problem.
type decoder struct {
	*report
	env          func(string) (string, bool)
	budget       int
	exhausted    bool
	exhaustedErr *Error
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
)

func nodePos(n *yaml.Node) position { return position{n.Line, n.Column} }

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for type errors. Scalars are quoted as
// written in the file (before ${VAR} expansion, so an environment value is
// never shown); secret fields are never quoted.
func describe(n *yaml.Node, secret bool) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if secret {
			return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
		}
		v := n.Value
		if len(v) > 60 {
			v = v[:57] + "..."
		}
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", v)
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		}
		return fmt.Sprintf("%q", v)
	}
	return "an unsupported YAML node"
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if !d.exhausted {
			d.exhausted = true
			d.decodeError(path, nodePos(n), "the document is too large or uses too many aliases; expected a configuration file")
			d.exhaustedErr = d.errs[len(d.errs)-1]
		}
		return
	}
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.decodeError(path, position{}, "alias chain too long")
		return
	}
	d.pos[path] = nodePos(n)
	if isNull(n) {
		return // an empty value is the same as an absent key
	}
	d.set[path] = true

	t := v.Type()
	switch {
	case t == durationType, t == secretType, t == prefixType,
		t.Kind() == reflect.String, t.Kind() == reflect.Bool, t.Kind() == reflect.Int:
		d.scalar(n, v, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := ""
			if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String {
				hint = fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
			}
			d.decodeError(path, nodePos(n), "expected a list, got %s%s", describe(n, false), hint)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, s.Index(i), index(path, i))
		}
		v.Set(s)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.decodeError(path, nodePos(n), "expected a mapping, got %s", describe(n, false))
			return
		}
		p := reflect.New(t.Elem())
		d.mapping(n, p.Elem(), path)
		v.Set(p)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.decodeError(path, nodePos(n), "expected a mapping, got %s", describe(n, false))
			return
		}
		d.mapping(n, v, path)
	default:
		panic("config: schema field of unsupported type " + t.String())
	}
}

type pair struct{ key, val *yaml.Node }

// fieldsOf maps yaml key names to struct field indexes, in declaration order.
func fieldsOf(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	fields, names := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path, map[*yaml.Node]bool{}) {
		name := p.key.Value
		fp := join(path, name)
		d.keyPos[fp] = nodePos(p.key)
		i, ok := fields[name]
		if !ok {
			if s := suggest(name, names); s != "" {
				d.decodeError(fp, nodePos(p.key), "unknown key %q; did you mean %q?", name, s)
			} else {
				d.decodeError(fp, nodePos(p.key), "unknown key %q; expected one of %s", name, strings.Join(names, ", "))
			}
			continue
		}
		d.value(p.val, v.Field(i), fp)
	}
}

// pairs lists a mapping's key/value pairs, expanding YAML merge keys
// ("<<: *defaults"), which let a hospital share one LDAP block between
// connectors. Keys written in the mapping win over merged ones.
func (d *decoder) pairs(n *yaml.Node, path string, seen map[*yaml.Node]bool) []pair {
	if seen[n] {
		return nil
	}
	seen[n] = true
	var explicit, merged []pair
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.decodeError(path, nodePos(n.Content[i]), "keys must be strings, got %s", describe(n.Content[i], false))
			continue
		}
		if k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			rv := resolve(val)
			switch {
			case rv != nil && rv.Kind == yaml.MappingNode:
				merged = append(merged, d.pairs(rv, path, seen)...)
			case rv != nil && rv.Kind == yaml.SequenceNode:
				for _, m := range rv.Content {
					if m = resolve(m); m != nil && m.Kind == yaml.MappingNode {
						merged = append(merged, d.pairs(m, path, seen)...)
					} else {
						d.decodeError(path, nodePos(val), "a merge key (<<) takes a mapping or a list of mappings")
					}
				}
			default:
				d.decodeError(path, nodePos(val), "a merge key (<<) takes a mapping or a list of mappings")
			}
			continue
		}
		if prev, dup := first[k.Value]; dup {
			d.decodeError(join(path, k.Value), nodePos(k), "duplicate key %q; it is already set at line %d", k.Value, prev.Line)
			continue
		}
		first[k.Value] = k
		explicit = append(explicit, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := first[p.key.Value]; !ok {
			first[p.key.Value] = p.key
			explicit = append(explicit, p)
		}
	}
	return explicit
}

// scalar decodes a scalar node into a string, Secret, bool, int, duration or
// IP prefix, after ${VAR} expansion.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	secret := t == secretType
	if n.Kind != yaml.ScalarNode {
		want := "a single value"
		switch {
		case t == durationType:
			want = `a duration such as "90s", "10m" or "720h"`
		case t.Kind() == reflect.Bool:
			want = "true or false"
		case t.Kind() == reflect.Int:
			want = "a whole number"
		case t.Kind() == reflect.String:
			want = "a string"
		}
		d.decodeError(path, nodePos(n), "expected %s, got %s", want, describe(n, secret))
		return
	}
	s, ok := d.expand(n, path)
	if !ok {
		return
	}
	expanded := s != n.Value
	shown := func() string {
		if expanded {
			return fmt.Sprintf("the value of %q", n.Value) // names the variables, not their values
		}
		return fmt.Sprintf("%q", s)
	}
	switch {
	case t == durationType:
		if !expanded && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") && s != "0" {
			d.decodeError(path, nodePos(n), `%s has no unit; expected a Go duration such as "90s", "10m" or "720h"`, s)
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			hint := ""
			if strings.HasSuffix(s, "d") {
				hint = " (days are not a unit: write 720h for 30 days)"
			}
			d.decodeError(path, nodePos(n), `%s is not a duration; expected a Go duration such as "90s", "10m" or "720h"%s`, shown(), hint)
			return
		}
		v.SetInt(int64(dur))
	case t == prefixType:
		p, err := parsePrefix(s)
		if err != nil {
			d.decodeError(path, nodePos(n), "%s is not an IP address or CIDR prefix; expected e.g. 10.0.0.0/8 or 192.0.2.10", shown())
			return
		}
		v.Set(reflect.ValueOf(p))
	case t.Kind() == reflect.String:
		v.SetString(s)
	case t.Kind() == reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.decodeError(path, nodePos(n), "%s is not a boolean; expected true or false", shown())
		}
	case t.Kind() == reflect.Int:
		i, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			d.decodeError(path, nodePos(n), "%s is not a whole number; expected e.g. 5", shown())
			return
		}
		v.SetInt(i)
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("zoned address")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// expand replaces ${VAR} with the environment's value and $$ with $ in a
// scalar value. A $ followed by anything else is kept, so PHC hashes
// ("$argon2id$v=19$...") need no escaping. Keys are never expanded: the
// shape of the file must not depend on the environment.
func (d *decoder) expand(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				d.decodeError(path, nodePos(n), "unterminated ${ in value; expected ${NAME}, or $$ for a literal $")
				return "", false
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				d.decodeError(path, nodePos(n), "${%s} is not a valid variable reference; expected ${NAME} with NAME made of letters, digits and _, or $$ for a literal $", name)
				return "", false
			}
			var value string
			set := false
			if d.env != nil {
				value, set = d.env(name)
			}
			if !set {
				d.decodeError(path, nodePos(n), "environment variable %s is not set; expected it in Garde's environment (write $$ for a literal $)", name)
				ok = false
			}
			b.WriteString(value)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
