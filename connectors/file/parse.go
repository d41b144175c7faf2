package file

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every problem Parse reports about the file's content.
var ErrInvalid = errors.New("invalid directory file")

// ParseError is one problem of a directory file: the record (kind and id, or index when the id is
// missing), the line, and what is wrong.
type ParseError struct {
	Kind  string // "user", "group" or "" for the file as a whole
	ID    string
	Index int
	Line  int
	Msg   string
}

// Error names the record and the line.
func (e *ParseError) Error() string {
	var b strings.Builder
	switch {
	case e.Kind != "" && e.ID != "":
		fmt.Fprintf(&b, "%s %q", e.Kind, e.ID)
	case e.Kind != "":
		fmt.Fprintf(&b, "%ss[%d]", e.Kind, e.Index)
	}
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(line %d)", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap lets errors.Is match ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// userStringFields are the user keys holding one string: the keys of the user attribute table
// (scim.UserAttributes), each stored as an attribute of the same name, except the address's,
// which the file writes in a nested address: mapping (see addressFields).
var userStringFields = func() []string {
	var keys []string
	for _, a := range scim.UserAttributes() {
		if a.Key != "" && !a.Bool && !a.Address {
			keys = append(keys, a.Key)
		}
	}
	return keys
}()

// addressFields are the keys of a user's address: mapping, stored as address.<key>.
var addressFields = func() []string {
	var keys []string
	for _, a := range scim.UserAttributes() {
		if a.Address {
			keys = append(keys, strings.TrimPrefix(a.Key, "address."))
		}
	}
	return keys
}()

// legacyUserFields are the older spellings of user keys: they still work, and a read that meets
// one warns with the key to write instead. The value is stored under both names, so mapping
// expressions written for the old name keep working.
var legacyUserFields = map[string]string{
	"phone":         "phoneNumber",
	"streetAddress": "address.streetAddress",
	"locality":      "address.locality",
	"region":        "address.region",
	"postalCode":    "address.postalCode",
	"country":       "address.country",
}

// legacyKeys lists the legacy keys in a stable order for messages.
func legacyKeys() []string {
	keys := make([]string, 0, len(legacyUserFields))
	for k := range legacyUserFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// groupStringFields are the group keys holding one string.
var groupStringFields = []string{"name", "description"}

// parser collects every problem of one file. A problem of a record that has an id leaves that
// record out (reported in Directory.Skipped, so the plan leaves its target object alone) and the
// rest of the file goes on; a problem of the file as a whole, or of a record without an id (which
// no target object can be matched to), fails the whole read.
type parser struct {
	errs    []error
	skipped []*ParseError
	lines   map[string][]int // kind -> line of each record returned, in order
	// legacy holds, for each older key spelling met, the lines it is on.
	legacy map[string][]int
	// unique indexes the values that must be unique when no two records share one (see uniq).
	unique *uniq
}

// deprecation notes that the older key spelling k is used on line.
func (p *parser) deprecation(k string, line int) {
	if p.legacy == nil {
		p.legacy = map[string][]int{}
	}
	p.legacy[k] = append(p.legacy[k], line)
}

// Warnings returns one line per older key spelling the file uses, naming the key to write and
// the first lines it is on.
func (p *parser) warnings() []string {
	var out []string
	for _, k := range legacyKeys() {
		lines := p.legacy[k]
		if len(lines) == 0 {
			continue
		}
		shown := lines
		if len(shown) > 5 {
			shown = shown[:5]
		}
		var b strings.Builder
		for i, l := range shown {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(l))
		}
		if len(lines) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(lines)-len(shown))
		}
		want := legacyUserFields[k]
		if sub, ok := strings.CutPrefix(want, "address."); ok {
			want = "address: {" + sub + ": ...}"
		}
		out = append(out, fmt.Sprintf("user key %q is a deprecated spelling (lines %s); write %s", k, b.String(), want))
	}
	return out
}

func (p *parser) add(kind, id string, index, line int, format string, args ...any) {
	p.report(&ParseError{Kind: kind, ID: id, Index: index, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// report files pe: a problem of a record with an id leaves that record out; any other fails the
// read.
func (p *parser) report(pe *ParseError) {
	if pe.Kind != "" && pe.ID != "" {
		p.skipped = append(p.skipped, pe)
		return
	}
	p.errs = append(p.errs, pe)
}

// problems counts what has been reported so far.
func (p *parser) problems() int { return len(p.errs) + len(p.skipped) }

// finish returns the directory with its skipped records, or, when the file cannot be read, every
// problem (those of single records too).
func (p *parser) finish(d *connectors.Directory) (*connectors.Directory, error) {
	if p.unique == nil { // else the read has shown that no two records share a value
		p.unique = p.duplicates(d)
	}
	if len(p.errs) > 0 {
		all := slices.Clone(p.errs)
		for _, pe := range p.skipped {
			all = append(all, pe)
		}
		return nil, errors.Join(all...)
	}
	for _, pe := range p.skipped {
		reason := pe.Msg
		if pe.Line > 0 {
			reason = fmt.Sprintf("line %d: %s", pe.Line, pe.Msg)
		}
		d.Skipped = append(d.Skipped, scim.Problem{Kind: pe.Kind, ID: pe.ID, Reason: reason, Dropped: true})
	}
	return d, nil
}

// Parse decodes a directory file. It reports every problem at once (errors.Join of *ParseError,
// each wrapping ErrInvalid) and returns no Directory when there is any. Entries keep the file's
// order; their attributes are named like the file's keys, with "active" set to "true" or "false".
func Parse(data []byte) (*connectors.Directory, error) {
	d, _, err := ParseWithWarnings(data)
	return d, err
}

// ParseWithWarnings is Parse that also returns what a person should fix but that does not stop
// the read: older spellings of keys, each with the key to write instead.
func ParseWithWarnings(data []byte) (*connectors.Directory, []string, error) {
	if r, ok := parseSplit(data, nil); ok {
		return r.dir, r.warnings, r.err
	}
	return parseWhole(data)
}

// parseWhole reads the file as one YAML document.
func parseWhole(data []byte) (*connectors.Directory, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, &ParseError{Msg: fmt.Sprintf("not valid YAML: %v", err)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, &ParseError{Msg: "the file is empty; a directory with no users must still say `users: []`"}
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, nil, &ParseError{Line: root.Line, Msg: "the file must be a mapping with the keys users and groups"}
	}
	p := &parser{lines: map[string][]int{}}
	d := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if seen[k.Value] {
			p.add("", "", 0, k.Line, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "users":
			d.Users = p.records(v, "user", p.user)
		case "groups":
			d.Groups = p.records(v, "group", p.group)
		default:
			p.add("", "", 0, k.Line, "unknown key %q (known: users, groups)", k.Value)
		}
	}
	d, err := p.finish(d)
	return d, p.warnings(), err
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (p *parser) records(n *yaml.Node, kind string, one func(n *yaml.Node, index int) (connectors.Entry, bool)) []connectors.Entry {
	out := []connectors.Entry{}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return out
	}
	if n.Kind != yaml.SequenceNode {
		p.add("", "", 0, n.Line, "%ss must be a list, not a %s", kind, kindName(n))
		return out
	}
	for i, c := range n.Content {
		p.item(resolve(c), i, kind, one, &out)
	}
	return out
}

// item reads the i-th record of a list into out.
func (p *parser) item(c *yaml.Node, i int, kind string, one func(n *yaml.Node, index int) (connectors.Entry, bool), out *[]connectors.Entry) {
	if c.Kind != yaml.MappingNode {
		p.add(kind, "", i, c.Line, "must be a mapping, not a %s", kindName(c))
		return
	}
	if e, ok := one(c, i); ok {
		*out = append(*out, e)
		p.lines[kind] = append(p.lines[kind], c.Line)
	}
}

// fields walks a record's keys: the id first (to name the record in messages), then the rest.
type record struct {
	p     *parser
	kind  string
	id    string
	index int
}

func (r *record) add(line int, format string, args ...any) {
	r.p.add(r.kind, r.id, r.index, line, format, args...)
}

func (r *record) scalar(k, v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		r.add(v.Line, "%s must be a single value, not a %s", k.Value, kindName(v))
		return "", false
	}
	if v.ShortTag() == "!!null" {
		return "", true
	}
	return v.Value, true
}

func (r *record) boolean(k, v *yaml.Node) (bool, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		r.add(v.Line, "%s must be true or false, not %q", k.Value, v.Value)
		return false, false
	}
	b, err := strconv.ParseBool(v.Value)
	if err != nil {
		r.add(v.Line, "%s must be true or false, not %q", k.Value, v.Value)
		return false, false
	}
	return b, true
}

func (r *record) list(k, v *yaml.Node) []string {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		r.add(v.Line, "%s must be a list, not a %s", k.Value, kindName(v))
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, c := range v.Content {
		c = resolve(c)
		if c.Kind != yaml.ScalarNode || c.ShortTag() == "!!null" || strings.TrimSpace(c.Value) == "" {
			r.add(c.Line, "%s must hold non-empty single values", k.Value)
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

// attributes reads the free-form `attributes:` mapping into e.
// address reads a user's address: mapping into the attributes address.<key>.
func (r *record) address(v *yaml.Node, e *connectors.Entry) {
	if v.Kind != yaml.MappingNode {
		r.add(v.Line, "address must be a mapping of %s, not a %s", strings.Join(addressFields, ", "), kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		if !slices.Contains(addressFields, k.Value) {
			r.add(k.Line, "address: unknown key %q (known: %s)", k.Value, strings.Join(addressFields, ", "))
			continue
		}
		if s, ok := r.scalar(k, val); ok && s != "" {
			e.Attributes["address."+k.Value] = []string{s}
		}
	}
}

func (r *record) attributes(v *yaml.Node, e *connectors.Entry, reserved []string) {
	if v.Kind != yaml.MappingNode {
		r.add(v.Line, "attributes must be a mapping, not a %s", kindName(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		name := k.Value
		if name == "" || slices.ContainsFunc(reserved, func(s string) bool { return strings.EqualFold(s, name) }) {
			r.add(k.Line, "attributes: %q is a field of the record; set it there", name)
			continue
		}
		if e.Values(name) != nil {
			r.add(k.Line, "attributes: %q appears twice", name)
			continue
		}
		switch val.Kind {
		case yaml.ScalarNode:
			if val.ShortTag() == "!!null" {
				e.Attributes[name] = []string{}
			} else {
				e.Attributes[name] = []string{val.Value}
			}
		case yaml.SequenceNode:
			e.Attributes[name] = r.list(k, val)
		default:
			r.add(val.Line, "attributes: %q must be a value or a list of values, not a %s", name, kindName(val))
		}
	}
}

// start finds the record's id (to name it in later messages) and checks keys are not repeated.
func (r *record) start(n *yaml.Node) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			r.add(k.Line, "key %q appears twice", k.Value)
		}
		seen[k.Value] = true
		if k.Value == "id" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode {
				r.id = strings.TrimSpace(v.Value)
			}
		}
	}
	if r.id == "" {
		r.add(n.Line, "id is required")
	}
}

func (p *parser) user(n *yaml.Node, index int) (connectors.Entry, bool) {
	r := &record{p: p, kind: "user", index: index}
	before := p.problems()
	r.start(n)
	e := connectors.Entry{ID: r.id, Attributes: map[string][]string{}}
	var active, suspended *bool
	var attrs *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch {
		case k.Value == "id":
			r.scalar(k, v)
		case k.Value == "active" || k.Value == "suspended":
			if b, ok := r.boolean(k, v); ok {
				if k.Value == "active" {
					active = &b
				} else {
					suspended = &b
				}
			}
		case k.Value == "attributes":
			attrs = v
		case slices.Contains(userStringFields, k.Value):
			if s, ok := r.scalar(k, v); ok && s != "" {
				e.Attributes[k.Value] = []string{s}
			}
		case k.Value == "address":
			r.address(v, &e)
		case legacyUserFields[k.Value] != "":
			p.deprecation(k.Value, k.Line)
			if s, ok := r.scalar(k, v); ok && s != "" {
				e.Attributes[legacyUserFields[k.Value]] = []string{s}
				e.Attributes[k.Value] = []string{s}
			}
		default:
			r.add(k.Line, "unknown key %q (known: id, %s, address, active, suspended, attributes)", k.Value, strings.Join(userStringFields, ", "))
		}
	}
	isActive := true
	switch {
	case active != nil && suspended != nil && *active == *suspended:
		r.add(n.Line, "active: %t and suspended: %t contradict each other", *active, *suspended)
	case active != nil:
		isActive = *active
	case suspended != nil:
		isActive = !*suspended
	}
	e.Attributes["active"] = []string{strconv.FormatBool(isActive)}
	if attrs != nil {
		reserved := slices.Concat([]string{"id", "active", "suspended", "address"}, userStringFields, legacyKeys())
		for _, f := range addressFields {
			reserved = append(reserved, "address."+f)
		}
		r.attributes(attrs, &e, reserved)
	}
	for _, k := range []string{"userName", "email"} {
		if v := e.Get(k); v != "" && !slices.Contains(e.Keys, v) {
			e.Keys = append(e.Keys, v)
		}
	}
	return e, p.problems() == before
}

func (p *parser) group(n *yaml.Node, index int) (connectors.Entry, bool) {
	r := &record{p: p, kind: "group", index: index}
	before := p.problems()
	r.start(n)
	e := connectors.Entry{ID: r.id, Attributes: map[string][]string{}}
	var attrs *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		switch {
		case k.Value == "id":
			r.scalar(k, v)
		case k.Value == "members":
			e.Members = r.list(k, v)
			for _, m := range e.Members {
				if m == r.id {
					r.add(v.Line, "the group lists itself as a member")
				}
			}
		case k.Value == "attributes":
			attrs = v
		case slices.Contains(groupStringFields, k.Value):
			if s, ok := r.scalar(k, v); ok && s != "" {
				e.Attributes[k.Value] = []string{s}
			}
		default:
			r.add(k.Line, "unknown key %q (known: id, name, description, members, attributes)", k.Value)
		}
	}
	if attrs != nil {
		r.attributes(attrs, &e, []string{"id", "name", "description", "members"})
	}
	if name := e.Get("name"); name != "" {
		e.Keys = []string{name}
	}
	return e, p.problems() == before
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "single value"
	}
}
