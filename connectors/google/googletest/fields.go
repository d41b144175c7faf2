package googletest

import (
	"fmt"
	"strings"
)

// selection is a parsed partial-response field mask: "a,b(c,d)". A nil sub-selection keeps
// the whole value.
type selection map[string]selection

// parseFields parses the subset of Google's fields syntax with commas and parentheses.
func parseFields(s string) (selection, error) {
	sel, rest, err := parseList(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected %q", rest)
	}
	return sel, nil
}

func parseList(s string) (selection, string, error) {
	sel := selection{}
	for {
		i := strings.IndexAny(s, ",()")
		name := s
		if i >= 0 {
			name = s[:i]
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, "/*") {
			return nil, "", fmt.Errorf("bad field name %q", name)
		}
		if i < 0 {
			sel[name] = nil
			return sel, "", nil
		}
		switch s[i] {
		case '(':
			sub, rest, err := parseList(s[i+1:])
			if err != nil {
				return nil, "", err
			}
			if !strings.HasPrefix(rest, ")") {
				return nil, "", fmt.Errorf("missing )")
			}
			sel[name] = sub
			s = rest[1:]
			if s == "" || s[0] == ')' {
				return sel, s, nil
			}
			if s[0] != ',' {
				return nil, "", fmt.Errorf("unexpected %q", s)
			}
			s = s[1:]
		case ')':
			sel[name] = nil
			return sel, s[i:], nil
		default: // ','
			sel[name] = nil
			s = s[i+1:]
		}
	}
}

// apply keeps only the selected fields of a decoded JSON value; lists are filtered item by item.
func (sel selection) apply(v any) any {
	if sel == nil {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range sel {
			if val, ok := x[k]; ok {
				out[k] = sub.apply(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = sel.apply(x[i])
		}
		return out
	}
	return v
}
