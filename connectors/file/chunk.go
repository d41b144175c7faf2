package file

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// A directory file of 100,000 users parsed whole into yaml.v3 nodes takes about ten times its
// size in memory. Most files are laid out plainly (top-level keys at column 0, each followed by a
// block list), so they are cut into one piece per list item and each piece is parsed on its own:
// the nodes of one record are garbage once the record is read. Anything that is not plainly laid
// out (flow lists, document markers, anchors, tabs, a piece that does not parse alone) makes
// split give up, and Parse reads the file whole, which also gives the exact YAML error.

// piece is one list item's text and the line it starts on.
type piece struct {
	text []byte
	line int
}

// section is a top-level key with its list items.
type section struct {
	key   string
	line  int
	items []piece
	// null is set when the key has no value at all (`users:` followed by nothing).
	null bool
}

// split cuts a plainly laid out file into its top-level sections; ok is false when the file is
// not laid out plainly.
func split(data []byte) (sections []section, ok bool) {
	if bytes.IndexByte(data, '\t') >= 0 || bytes.Contains(data, []byte("&")) || bytes.Contains(data, []byte("*")) {
		return nil, false // tabs, anchors and aliases: leave those files to the full parser
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	var cur *section
	itemIndent := -1
	for i, raw := range lines {
		lineNo := i + 1
		body := bytes.TrimRight(raw, "\r\n")
		trimmed := bytes.TrimLeft(body, " ")
		indent := len(body) - len(trimmed)
		if len(trimmed) == 0 || trimmed[0] == '#' {
			if cur != nil && len(cur.items) > 0 {
				last := &cur.items[len(cur.items)-1]
				last.text = append(last.text, raw...)
			}
			continue
		}
		if indent == 0 && trimmed[0] != '-' {
			// A top-level key: `key:` alone on its line, or with a comment.
			colon := bytes.IndexByte(body, ':')
			if colon <= 0 || bytes.ContainsAny(body[:colon], "\"'{}[],?!%@`|>") {
				return nil, false
			}
			rest := bytes.TrimSpace(body[colon+1:])
			if len(rest) > 0 && rest[0] != '#' {
				return nil, false // an inline value, such as `users: []`
			}
			sections = append(sections, section{key: string(body[:colon]), line: lineNo, null: true})
			cur = &sections[len(sections)-1]
			itemIndent = -1
			continue
		}
		if cur == nil {
			return nil, false
		}
		if itemIndent < 0 {
			if trimmed[0] != '-' || (len(trimmed) > 1 && trimmed[1] != ' ') {
				return nil, false // the key's value is not a block list
			}
			itemIndent = indent
		}
		switch {
		case indent == itemIndent && trimmed[0] == '-' && (len(trimmed) == 1 || trimmed[1] == ' '):
			cur.null = false
			cur.items = append(cur.items, piece{text: append([]byte(nil), raw...), line: lineNo})
		case indent > itemIndent && len(cur.items) > 0:
			last := &cur.items[len(cur.items)-1]
			last.text = append(last.text, raw...)
		default:
			return nil, false
		}
	}
	return sections, true
}

// parsePiece parses one list item alone and returns its node, with line numbers as in the file.
func parsePiece(p piece) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(p.text, &doc); err != nil || len(doc.Content) != 1 {
		return nil, false
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 {
		return nil, false
	}
	item := seq.Content[0]
	shiftLines(item, p.line-1)
	return item, true
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}
