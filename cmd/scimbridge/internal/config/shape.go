package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The shape check walks the parsed YAML tree beside the Config type, driven by the yaml struct
// tags alone (a key added to any struct reachable from Config is known here without a list), and
// reports every problem of the file at once, each with its line and key path:
//
//	line 4: source.file: unknown key "Path"; did you mean "path"?
//	line 7: target.concurrency: expected an integer, not "many"
//
// It also records the line of every key, so that Validate's messages, which name key paths,
// can say where the key is (keyLines).

// shapeError is one problem found by the shape check.
type shapeError struct {
	line int
	key  string // the key path the problem is at (for an unknown key: the key itself)
	msg  string
	// suggested is the key path an unknown key was likely meant to be; Validate's complaint
	// that this key is missing is then the same mistake, and left out.
	suggested string
}

func (e *shapeError) Error() string {
	return fmt.Sprintf("line %d: %s", e.line, e.msg)
}

// shapeChecker carries the walk's findings.
type shapeChecker struct {
	errs  []*shapeError
	lines map[string]int // key path -> line of the key
	depth int
}

// checkShape walks the document root against Config.
func checkShape(root *yaml.Node) ([]*shapeError, map[string]int) {
	c := &shapeChecker{lines: map[string]int{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		c.walk(root.Content[0], reflect.TypeFor[Config](), "")
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].line < c.errs[j].line })
	return c.errs, c.lines
}

func (c *shapeChecker) fail(n *yaml.Node, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	c.errs = append(c.errs, &shapeError{line: n.Line, key: key, msg: msg})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk checks node n against type t; path is n's key path ("" for the root).
func (c *shapeChecker) walk(n *yaml.Node, t reflect.Type, path string) {
	if c.depth > 64 { // alias loops and absurd nesting: the decoder reports those
		return
	}
	c.depth++
	defer func() { c.depth-- }()
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			c.walk(n.Alias, t, path)
		}
		return
	}
	if isNull(n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isLeaf(t) || t == stdDurationType {
		c.leaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "expected a mapping of keys (%s), not %s", strings.Join(firstKeys(t, 4), ", "), describe(n))
			return
		}
		fields := structKeys(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				c.walk(v, t, path)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				if it, ok := fields[""]; ok { // an inline map takes any other key
					c.lines[join(path, k.Value)] = k.Line
					c.walk(v, it, join(path, k.Value))
					continue
				}
				msg := fmt.Sprintf("unknown key %q", k.Value)
				suggested := ""
				if s := closest(k.Value, keysOf(fields)); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
					suggested = join(path, s)
				} else {
					msg += fmt.Sprintf(" (known keys: %s)", strings.Join(keysOf(fields), ", "))
				}
				c.errs = append(c.errs, &shapeError{line: k.Line, key: join(path, k.Value), msg: prefixPath(path, msg), suggested: suggested})
				continue
			}
			c.lines[join(path, k.Value)] = k.Line
			c.walk(v, ft, join(path, k.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "expected a mapping, not %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.fail(k, path, "expected a name as key, not %s", describe(k))
				continue
			}
			c.lines[join(path, k.Value)] = k.Line
			c.walk(v, t.Elem(), join(path, k.Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.fail(n, path, "expected a list, not %s", describe(n))
			return
		}
		for i, e := range n.Content {
			c.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Interface:
		// any value
	default:
		c.leaf(n, t, path)
	}
}

// leaf checks a value that decodes as one: a scalar, or a type with its own UnmarshalYAML.
func (c *shapeChecker) leaf(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	if isLeaf(t) {
		// The type's own message, without the line it starts with (the line is added again).
		var msgs []string
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = te.Errors
		} else {
			msgs = []string{err.Error()}
		}
		for _, m := range msgs {
			c.fail(n, path, "%s", lineTag.ReplaceAllString(m, ""))
		}
		return
	}
	c.fail(n, path, "expected %s, not %s", want(t), describe(n))
}

var lineTag = regexp.MustCompile(`^line \d+: `)

// want names what a value of type t is written as.
func want(t reflect.Type) string {
	if t == stdDurationType || t == durationType {
		return "a duration (such as 30s or 24h)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a single value"
	}
	return "a " + t.Kind().String()
}

// describe names what a node holds, for messages; a scalar's text is quoted (secrets never get
// here: a secret is a string, and any scalar decodes into a string).
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func prefixPath(path, msg string) string {
	if path == "" {
		return msg
	}
	return path + ": " + msg
}

// structKeys maps each yaml key of struct t (inline structs merged) to its field type; an inline
// map is under "".
func structKeys(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				out[""] = ft.Elem()
				continue
			}
			for k, v := range structKeys(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func keysOf(m map[string]reflect.Type) []string {
	var k []string
	for n := range m {
		if n != "" {
			k = append(k, n)
		}
	}
	slices.Sort(k)
	return k
}

func firstKeys(t reflect.Type, n int) []string {
	k := keysOf(structKeys(t))
	if len(k) > n {
		k = append(k[:n:n], "...")
	}
	return k
}

// closest returns the candidate nearest to s by edit distance (ignoring case), when it is near
// enough to be the likely intent: at most a third of the word's length, and at least 1.
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(s)/3) {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b, in bytes: insertions,
// deletions, substitutions and swaps of two neighbours ("flie" is 1 from "file").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// keyOf returns the key path a Validate message starts with ("sync.policy: ..." or
// "source.type is required"), or "".
var keyOf = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_-]+|\[\d+\])*)[: ]`)

// lineOf returns the line of key path k or of its nearest ancestor the file names, or 0.
func lineOf(lines map[string]int, k string) int {
	for k != "" {
		if l, ok := lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// lineError puts a line before a Validate message, keeping it unwrappable.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// withLines puts before each of err's messages the line of the key it names, when the file
// names it (a key set by a SCIMBRIDGE_* variable, or a missing one, has no line), and leaves out
// the messages about keys the shape check already reported (their values were not decoded) or
// that an unknown key was likely meant to be ("flie" for a missing "file").
// Messages keep their order.
func withLines(err error, lines map[string]int, shape []*shapeError) error {
	if err == nil || (lines == nil && shape == nil) {
		return err
	}
	var out []error
next:
	for _, e := range leaves(err) {
		m := keyOf.FindStringSubmatch(e.Error())
		if m == nil {
			out = append(out, e)
			continue
		}
		for _, s := range shape {
			if m[1] == s.key || strings.HasPrefix(m[1], s.key+".") || m[1] == s.suggested {
				continue next
			}
		}
		if l := lineOf(lines, m[1]); l > 0 {
			e = &lineError{l, e}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// lineNumber is the line a message starts with ("line 12: ...").
var lineNumber = regexp.MustCompile(`^line (\d+): `)

// byLine orders err's messages by the line they name; the ones without a line come last, in
// their order.
func byLine(err error) error {
	if err == nil {
		return nil
	}
	es := leaves(err)
	line := func(e error) int {
		if m := lineNumber.FindStringSubmatch(e.Error()); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return 1 << 30
	}
	sort.SliceStable(es, func(i, j int) bool { return line(es[i]) < line(es[j]) })
	return errors.Join(es...)
}

// problemsError is every problem of a config file, one a line:
//
//	config scimbridge.yaml: 2 problems:
//	  line 3: source: unknown key "flie"; did you mean "file"?
//	  line 6: sync.policy: expected one of sync, upsert-only, create-only, not "upsert_only"; ...
type problemsError struct {
	path string
	errs []error
}

// fileProblems wraps the (joined) problems of the config file at path.
func fileProblems(path string, err error) error {
	return &problemsError{path: path, errs: leaves(err)}
}

func (e *problemsError) Error() string {
	if len(e.errs) == 1 {
		return fmt.Sprintf("config %s: %v", e.path, e.errs[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problems:", e.path, len(e.errs))
	for _, err := range e.errs {
		b.WriteString("\n  " + strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return b.String()
}

func (e *problemsError) Unwrap() []error { return e.errs }
