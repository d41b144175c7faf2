package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// expandText replaces ${VAR} (and ${VAR:-default}) in every scalar value of the parsed document;
// $$ stands for $. Each expanded value is written back over its own token in the source text, on
// the same line, as a plain scalar when it is a simple word (so ${PORT} can fill an integer) and
// double-quoted otherwise: a value can never change the document's structure, and every line
// number in later error messages stays the one the person wrote.
func expandText(raw []byte, root *yaml.Node, lookup func(string) (string, bool), errs *[]error) []byte {
	lines := strings.SplitAfter(string(raw), "\n")
	type edit struct {
		line, start, end int // byte offsets within the line
		text             string
	}
	var edits []edit
	var walk func(n *yaml.Node, flow bool)
	walk = func(n *yaml.Node, flow bool) {
		for _, c := range n.Content {
			walk(c, flow || n.Style&yaml.FlowStyle != 0)
		}
		if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") || n.Line < 1 || n.Line > len(lines) {
			return
		}
		line := lines[n.Line-1]
		start := runeOffset(line, n.Column-1)
		end := tokenEnd(line, start, n.Style, flow)
		if end < 0 {
			*errs = append(*errs, fmt.Errorf("line %d: ${...} is only expanded in single-line values", n.Line))
			return
		}
		v := expand(n.Value, n.Line, lookup, errs)
		text := strconv.Quote(v)
		if n.Style == 0 && plainSafe(v) {
			text = v
		}
		edits = append(edits, edit{n.Line - 1, start, end, text})
	}
	walk(root, false)
	// Apply the edits of a line from its end, so earlier offsets stay valid.
	slices.SortFunc(edits, func(a, b edit) int { return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(b.start, a.start)) })
	for _, e := range edits {
		l := lines[e.line]
		lines[e.line] = l[:e.start] + e.text + l[e.end:]
	}
	return []byte(strings.Join(lines, ""))
}

// plainWord matches values that may stay one scalar, of the type they look like, when written
// plain; plainSafe makes sure.
var plainWord = regexp.MustCompile(`^[A-Za-z0-9_./@+-][A-Za-z0-9_./@+:-]*$`)

// plainSafe reports whether v, written plain as a value in block and in flow style, reads back
// as one non-null scalar with exactly the text v. "a:", "-", "@x" and "null" are not: written
// plain they would break the document or lose the value.
func plainSafe(v string) bool {
	if !plainWord.MatchString(v) {
		return false
	}
	for _, doc := range []string{"k: " + v + "\n", "{k: " + v + "}\n"} {
		var n yaml.Node
		if yaml.Unmarshal([]byte(doc), &n) != nil || len(n.Content) != 1 || len(n.Content[0].Content) != 2 {
			return false
		}
		if val := n.Content[0].Content[1]; val.Kind != yaml.ScalarNode || val.Value != v || val.ShortTag() == "!!null" {
			return false
		}
	}
	return true
}

// runeOffset converts a 0-based column in runes to a byte offset in line.
func runeOffset(line string, col int) int {
	for i := range line {
		if col == 0 {
			return i
		}
		col--
	}
	return len(line)
}

// tokenEnd returns the byte offset just past the scalar token starting at start, or -1 when the
// token does not end on this line.
func tokenEnd(line string, start int, style yaml.Style, flow bool) int {
	body := strings.TrimRight(line, "\r\n")
	switch style {
	case yaml.DoubleQuotedStyle:
		for i := start + 1; i < len(body); i++ {
			switch body[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1
	case yaml.SingleQuotedStyle:
		for i := start + 1; i < len(body); i++ {
			if body[i] == '\'' {
				if i+1 < len(body) && body[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
		return -1
	case 0:
		// A plain scalar ends at " #", at ",", "]" or "}" in a flow (outside ${...}), or at the
		// end of the line.
		end := len(body)
	scan:
		for i := start; i < len(body); i++ {
			switch {
			case body[i] == '#' && i > start && body[i-1] == ' ':
				end = i
				break scan
			case body[i] == '$' && i+1 < len(body) && body[i+1] == '{':
				if j := strings.IndexByte(body[i:], '}'); j > 0 {
					i += j
				}
			case flow && (body[i] == ',' || body[i] == ']' || body[i] == '}'):
				end = i
				break scan
			}
		}
		return start + len(strings.TrimRight(body[start:end], " \t"))
	}
	return -1
}

func expand(s string, line int, lookup func(string) (string, bool), errs *[]error) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
		case i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				*errs = append(*errs, fmt.Errorf("line %d: unclosed ${ in value", line))
				return s
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			v, ok := lookup(name)
			switch {
			case name == "":
				*errs = append(*errs, fmt.Errorf("line %d: ${} names no environment variable", line))
			case ok && !utf8.ValidString(v):
				// Written into the YAML text it would come back as other characters (a token
				// silently changed); the value itself is never quoted in the message.
				*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is not valid UTF-8", line, name))
			case ok && (v != "" || !hasDef):
				b.WriteString(v)
			case hasDef:
				b.WriteString(def)
			default:
				*errs = append(*errs, fmt.Errorf("line %d: environment variable %s is not set", line, name))
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
