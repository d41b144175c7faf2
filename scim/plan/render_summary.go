package plan

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// LargePlanLines is how many lines of text a plan may take before a terminal is shown its summary
// instead (WriteTextShort).
const LargePlanLines = 200

// EntriesPerKind is how many entries of each kind of change a shortened plan lists.
const EntriesPerKind = 5

// WriteTextShort writes the plan as WriteText does when that takes at most maxLines lines. A
// longer plan is shortened: for each kind of change (+ user, ~ user, ! disable user, - group,
// ~ members of, = adopt user, ...), in the order of the full plan, its count and its first
// perKind entries with their details, then the problems likewise, then the summary lines;
// fullPlan says where the whole plan is (a file, or a flag that prints it). It reports whether
// it shortened. The output is as deterministic as WriteText's.
func (p *Plan) WriteTextShort(w io.Writer, maxMembers, maxLines, perKind int, fullPlan string) (bool, error) {
	var full strings.Builder
	if err := p.WriteText(&full, maxMembers); err != nil {
		return false, err
	}
	text := full.String()
	total := strings.Count(text, "\n")
	if total <= maxLines {
		_, err := io.WriteString(w, text)
		return false, err
	}
	sec := splitPlanText(text)
	var b strings.Builder
	fmt.Fprintf(&b, "scimbridge will make the following changes (%s lines in full; here the first %d of each kind; %s):\n", thousands(total), perKind, fullPlan)
	writeKinds(&b, sec.entries, perKind)
	if sec.problemsHeader != "" {
		fmt.Fprintf(&b, "\n%s\n", sec.problemsHeader)
		writeKinds(&b, sec.problems, perKind)
	}
	b.WriteString("\n")
	for _, l := range sec.footer {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return true, err
}

// planEntry is one change of the text plan: its first line and its detail lines.
type planEntry struct {
	kind  string
	lines []string
}

type planSections struct {
	entries, problems []planEntry
	problemsHeader    string
	footer            []string
}

// splitPlanText cuts WriteText's output into its entries (a line indented by two spaces, with
// the deeper-indented lines under it), the problems, and the summary lines at the end.
func splitPlanText(text string) planSections {
	var s planSections
	list := &s.entries
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "" || strings.HasPrefix(l, "scimbridge will make"):
		case strings.HasPrefix(l, "Problems ("):
			s.problemsHeader = l
			list = &s.problems
		case strings.HasPrefix(l, "    ") && len(*list) > 0:
			e := &(*list)[len(*list)-1]
			e.lines = append(e.lines, l)
		case strings.HasPrefix(l, "  "):
			*list = append(*list, planEntry{kind: entryKind(l), lines: []string{l}})
		default:
			s.footer = append(s.footer, l)
		}
	}
	return s
}

// entryKind is the words of an entry line before the first quoted name: "+ user", "~ members of",
// "= adopt group", "! disable user", "?".
func entryKind(line string) string {
	var words []string
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, `"`) || strings.HasPrefix(f, "(") || strings.HasSuffix(f, ":") {
			break
		}
		words = append(words, f)
		if len(words) == 3 {
			break
		}
	}
	return strings.Join(words, " ")
}

// writeKinds writes, per kind in order of first appearance, the count and the first n entries.
func writeKinds(b *strings.Builder, entries []planEntry, n int) {
	var order []string
	byKind := map[string][]planEntry{}
	for _, e := range entries {
		if _, ok := byKind[e.kind]; !ok {
			order = append(order, e.kind)
		}
		byKind[e.kind] = append(byKind[e.kind], e)
	}
	for _, k := range order {
		es := byKind[k]
		fmt.Fprintf(b, "\n  %s: %s\n", k, thousands(len(es)))
		for i, e := range es {
			if i == n {
				fmt.Fprintf(b, "    ... and %s more\n", thousands(len(es)-n))
				break
			}
			for _, l := range e.lines {
				b.WriteString(l + "\n")
			}
		}
	}
}

// thousands writes n with commas: 12,345.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
