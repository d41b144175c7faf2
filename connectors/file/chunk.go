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

// piece is one list item's text, where it starts in the file and the line it starts on.
type piece struct {
	text []byte
	off  int
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
// not laid out plainly. Each piece's text is a slice of data (an item's lines are consecutive).
func split(data []byte) (sections []section, ok bool) {
	if bytes.IndexByte(data, '\t') >= 0 || bytes.IndexByte(data, '&') >= 0 || bytes.IndexByte(data, '*') >= 0 {
		return nil, false // tabs, anchors and aliases: leave those files to the full parser
	}
	var cur *section
	itemIndent := -1
	// extend adds the line ending at end to the last item of the current section, if any.
	extend := func(end int) {
		if cur != nil && len(cur.items) > 0 {
			last := &cur.items[len(cur.items)-1]
			last.text = data[last.off:end:end]
		}
	}
	for pos, lineNo := 0, 1; pos < len(data); lineNo++ {
		start, end := pos, len(data)
		if nl := bytes.IndexByte(data[pos:], '\n'); nl >= 0 {
			end = pos + nl + 1
		}
		pos = end
		// body is the line without its end, trimmed the line without its indent.
		stop := end
		for stop > start && (data[stop-1] == '\n' || data[stop-1] == '\r') {
			stop--
		}
		body := data[start:stop]
		indent := 0
		for indent < len(body) && body[indent] == ' ' {
			indent++
		}
		trimmed := body[indent:]
		if len(trimmed) == 0 || trimmed[0] == '#' {
			extend(end)
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
			cur.items = append(cur.items, piece{text: data[start:end:end], off: start, line: lineNo})
		case indent > itemIndent && len(cur.items) > 0:
			extend(end)
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
