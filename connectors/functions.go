package connectors

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// FunctionNames lists the functions that mapping and scoping expressions may call, besides expr's
// own builtins (len, filter, map, hasPrefix, ...) and the operators (+, ==, ?:, ??, and, or, not,
// in, matches). attr, values and hasValue read the current entry:
//
//	attr(name) string               first value of the attribute, name matched ignoring case; "" if none
//	values(name) []string           every value of the attribute
//	hasValue(name, value) bool      whether the attribute has the value (compared ignoring case)
//	first(list) string              first element, or ""; a string is returned as is
//	lower(s), upper(s), trim(s)     case changes and white-space trimming
//	default(a, b) string            b when a is empty (a may be a list: its first value)
//	join(list, sep) string          the elements joined with sep
//	split(s, sep) []string          s split around sep
//	replace(s, old, new) string     every old replaced by new
//	regexMatch(s, re) bool          whether the regular expression (RE2) matches s
//	regexReplace(s, re, repl) string every match replaced by repl ($1 expands groups)
//
// The environment also holds id (the entry's ID), attrs (attribute name to values, names as the
// source spells them) and keys (the entry's Keys).
var FunctionNames = []string{"attr", "values", "hasValue", "first", "lower", "upper", "trim", "default", "join", "split", "replace", "regexMatch", "regexReplace"}

var (
	functionsOnce sync.Once
	functionOpts  []expr.Option
)

// functionOptions returns the expr options that declare the pure functions.
func functionOptions() []expr.Option {
	functionsOnce.Do(func() {
		functionOpts = []expr.Option{
			expr.Function("first", fnFirst, new(func([]string) string), new(func([]any) string), new(func(string) string)),
			expr.Function("lower", func(p ...any) (any, error) { return strings.ToLower(p[0].(string)), nil }, new(func(string) string)),
			expr.Function("upper", func(p ...any) (any, error) { return strings.ToUpper(p[0].(string)), nil }, new(func(string) string)),
			expr.Function("trim", func(p ...any) (any, error) { return strings.TrimSpace(p[0].(string)), nil }, new(func(string) string)),
			expr.Function("default", fnDefault, new(func(string, string) string), new(func([]string, string) string)),
			expr.Function("join", fnJoin, new(func([]string, string) string), new(func([]any, string) string)),
			expr.Function("split", fnSplit, new(func(string, string) []string)),
			expr.Function("replace", func(p ...any) (any, error) {
				return strings.ReplaceAll(p[0].(string), p[1].(string), p[2].(string)), nil
			}, new(func(string, string, string) string)),
			expr.Function("regexMatch", fnRegexMatch, new(func(string, string) bool)),
			expr.Function("regexReplace", fnRegexReplace, new(func(string, string, string) string)),
		}
	})
	return functionOpts
}

func fnFirst(p ...any) (any, error) {
	switch v := p[0].(type) {
	case []string:
		if len(v) > 0 {
			return v[0], nil
		}
	case []any:
		if len(v) > 0 {
			return toString(v[0])
		}
	case string:
		return v, nil
	}
	return "", nil
}

func fnDefault(p ...any) (any, error) {
	var a string
	switch v := p[0].(type) {
	case string:
		a = v
	case []string:
		if len(v) > 0 {
			a = v[0]
		}
	}
	if strings.TrimSpace(a) == "" {
		return p[1].(string), nil
	}
	return a, nil
}

func fnJoin(p ...any) (any, error) {
	sep := p[1].(string)
	switch v := p[0].(type) {
	case []string:
		return strings.Join(v, sep), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			s, err := toString(x)
			if err != nil {
				return nil, fmt.Errorf("join: %w", err)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, sep), nil
	}
	return "", nil
}

func fnSplit(p ...any) (any, error) {
	s := p[0].(string)
	if s == "" {
		return []string{}, nil
	}
	return strings.Split(s, p[1].(string)), nil
}

func fnRegexMatch(p ...any) (any, error) {
	re, err := cachedRegexp(p[1].(string))
	if err != nil {
		return nil, err
	}
	return re.MatchString(p[0].(string)), nil
}

func fnRegexReplace(p ...any) (any, error) {
	re, err := cachedRegexp(p[1].(string))
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(p[0].(string), p[2].(string)), nil
}

// maxCachedRegexps bounds the regexp cache, which only grows with patterns built at run time.
const maxCachedRegexps = 1024

var (
	regexpCache      sync.Map // pattern -> *regexp.Regexp
	regexpCacheCount atomic.Int64
)

// cachedRegexp compiles pattern once; literal patterns are compiled (and checked) at config load.
func cachedRegexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := regexpCache.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", pattern, err)
	}
	if regexpCacheCount.Load() < maxCachedRegexps {
		if _, loaded := regexpCache.LoadOrStore(pattern, re); !loaded {
			regexpCacheCount.Add(1)
		}
	}
	return re, nil
}

// regexVisitor finds regexMatch and regexReplace calls whose pattern is a literal.
type regexVisitor struct{ err error }

func (v *regexVisitor) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || v.err != nil || len(call.Arguments) < 2 {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || (id.Value != "regexMatch" && id.Value != "regexReplace") {
		return
	}
	if s, ok := call.Arguments[1].(*ast.StringNode); ok {
		if _, err := cachedRegexp(s.Value); err != nil {
			v.err = err
		}
	}
}

// checkLiteralRegexes compiles every literal pattern of the expression, so that a bad one is a
// configuration error and none is compiled per entry.
func checkLiteralRegexes(root ast.Node) error {
	v := &regexVisitor{}
	ast.Walk(&root, v)
	return v.err
}
