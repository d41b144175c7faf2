package connectors

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// Expression is the text of a mapping or scoping expression (or, for a group name pattern, a
// regular expression) together with the place in the YAML configuration it was read from, so that
// a compile error can name the line.
//
// In YAML it is a plain scalar: `department: attr("department")`. An empty or null value maps
// nothing: in a MappingConfig it removes the flavour's default for that target.
type Expression struct {
	// Text is the expression's source text.
	Text string
	// Line and Column locate the value in the configuration file; zero when unknown.
	Line   int
	Column int
}

// Expr returns an Expression with no position, for configurations built in code.
func Expr(text string) Expression { return Expression{Text: text} }

// UnmarshalYAML reads a scalar and remembers its position.
func (e *Expression) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: an expression must be a string, not a %s", n.Line, nodeKind(n))}}
	}
	*e = Expression{Text: n.Value, Line: n.Line, Column: n.Column}
	return nil
}

// MarshalYAML writes the expression as its text.
func (e Expression) MarshalYAML() (any, error) { return e.Text, nil }

// String returns the expression's text.
func (e Expression) String() string { return e.Text }

// IsZero reports whether the expression is empty (all white space counts as empty).
func (e Expression) IsZero() bool { return strings.TrimSpace(e.Text) == "" }

// where names the configuration key and, when known, its line: `mapping.user.title (line 12)`.
func (e Expression) where(key string) string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d)", key, e.Line)
	}
	return key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	default:
		return "scalar"
	}
}

// ErrConfig is wrapped by every configuration error that Compile returns.
var ErrConfig = errors.New("invalid mapping configuration")

// configError is one problem of a mapping configuration; it wraps ErrConfig.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return ErrConfig }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// env is what an expression sees. One env belongs to one evaluator (one goroutine); it is pointed
// at each entry in turn, so evaluation allocates nothing per entry for the environment.
type env struct {
	ID       string                    `expr:"id"`
	Attrs    map[string][]string       `expr:"attrs"`
	Keys     []string                  `expr:"keys"`
	Attr     func(string) string       `expr:"attr"`
	Values   func(string) []string     `expr:"values"`
	HasValue func(string, string) bool `expr:"hasValue"`

	entry *Entry
}

func newEnv() *env {
	e := &env{entry: &Entry{}}
	e.Attr = func(name string) string { return e.entry.Get(name) }
	e.Values = func(name string) []string { return e.entry.Values(name) }
	e.HasValue = func(name, value string) bool {
		for _, v := range e.entry.Values(name) {
			if strings.EqualFold(v, value) {
				return true
			}
		}
		return false
	}
	return e
}

func (e *env) set(en *Entry) {
	e.entry = en
	e.ID, e.Attrs, e.Keys = en.ID, en.Attributes, en.Keys
}

// evaluator evaluates programs for one goroutine.
type evaluator struct {
	vm  vm.VM
	env *env
}

func newEvaluator() *evaluator { return &evaluator{env: newEnv()} }

// resultKind is what a compiled expression must produce.
type resultKind int

const (
	kindString resultKind = iota // a string; a list gives its first value, nil gives ""
	kindBool                     // a bool, or a string that strconv.ParseBool accepts
)

// program is one compiled expression.
type program struct {
	key   string // the configuration key, for messages
	where string // key and line: `mapping.user.title (line 12)`
	text  string // the expression's source text
	kind  resultKind
	prog  *vm.Program
	// fastAttr is set when the whole expression is attr("literal"): it is then evaluated without
	// the VM, which is most default mappings.
	fastAttr string
	fast     bool
}

// compileExpression compiles x for key; a problem is a configError naming the key and line.
func compileExpression(key string, x Expression, kind resultKind) (*program, error) {
	opts := append([]expr.Option{expr.Env(&env{})}, functionOptions()...)
	p, err := expr.Compile(x.Text, opts...)
	if err != nil {
		return nil, configErrorf("%s: %s", x.where(key), describeCompileError(err))
	}
	if err := checkResultType(p.Node().Type(), kind); err != nil {
		return nil, configErrorf("%s: %v", x.where(key), err)
	}
	if err := checkLiteralRegexes(p.Node()); err != nil {
		return nil, configErrorf("%s: %v", x.where(key), err)
	}
	out := &program{key: key, where: x.where(key), text: x.Text, kind: kind, prog: p}
	if call, ok := p.Node().(*ast.CallNode); ok && len(call.Arguments) == 1 && kind == kindString {
		if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Value == "attr" {
			if s, ok := call.Arguments[0].(*ast.StringNode); ok {
				out.fast, out.fastAttr = true, s.Value
			}
		}
	}
	return out, nil
}

func describeCompileError(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Column > 0 {
			return fmt.Sprintf("%s (column %d of the expression)", strings.TrimSpace(fe.Message), fe.Column+1)
		}
		return strings.TrimSpace(fe.Message)
	}
	return err.Error()
}

func checkResultType(t reflect.Type, kind resultKind) error {
	if t == nil || t.Kind() == reflect.Interface {
		return nil // decided at run time
	}
	switch kind {
	case kindBool:
		if t.Kind() == reflect.Bool || t.Kind() == reflect.String {
			return nil
		}
		return fmt.Errorf("must give a bool, not %s", t)
	default:
		switch t.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
			return nil
		case reflect.Slice:
			if e := t.Elem(); e.Kind() == reflect.String || e.Kind() == reflect.Interface {
				return nil
			}
		}
		return fmt.Errorf("must give a string, not %s", t)
	}
}

// run evaluates p for the entry the evaluator is set to.
func (p *program) run(ev *evaluator) (any, error) {
	if p.fast {
		return ev.env.entry.Get(p.fastAttr), nil
	}
	return ev.vm.Run(p.prog, ev.env)
}

// runString evaluates p and converts its result to a string.
func (p *program) runString(ev *evaluator) (string, error) {
	v, err := p.run(ev)
	if err != nil {
		return "", runtimeError(err)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case []string:
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	case []any:
		if len(v) == 0 {
			return "", nil
		}
		return toString(v[0])
	default:
		return toString(v)
	}
}

func toString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("gave a %T, not a string", v)
	}
}

// runBool evaluates p and converts its result to a bool.
func (p *program) runBool(ev *evaluator) (bool, error) {
	v, err := p.run(ev)
	if err != nil {
		return false, runtimeError(err)
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("gave %q, not a bool", v)
		}
		return b, nil
	case nil:
		return false, errors.New("gave nil, not a bool")
	default:
		return false, fmt.Errorf("gave a %T, not a bool", v)
	}
}

// runtimeError shortens expr's multi-line run-time errors to their message.
func runtimeError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) && fe.Message != "" {
		return errors.New(fe.Message)
	}
	return err
}

// fromConfig reports whether the expression was written in the configuration (not a flavour's
// default).
func (p *program) fromConfig() bool { return !strings.HasPrefix(p.key, "flavour ") }

// attributeNames returns the source attribute names the expression reads by a literal name:
// attr("x"), values("x"), hasValue("x", ...), attrs["x"] and attrs.x, in order, without repeats.
func (p *program) attributeNames() []string {
	var names []string
	add := func(n string) {
		for _, have := range names {
			if strings.EqualFold(have, n) {
				return
			}
		}
		names = append(names, n)
	}
	ast.Find(p.prog.Node(), func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && len(n.Arguments) > 0 &&
				(id.Value == "attr" || id.Value == "values" || id.Value == "hasValue") {
				if s, ok := n.Arguments[0].(*ast.StringNode); ok {
					add(s.Value)
				}
			}
		case *ast.MemberNode:
			if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "attrs" {
				if s, ok := n.Property.(*ast.StringNode); ok {
					add(s.Value)
				}
			}
		}
		return false
	})
	return names
}
