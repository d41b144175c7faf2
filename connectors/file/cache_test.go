package file

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
)

// parseErrors lists the problems of a failed parse.
func parseErrors(err error) []ParseError {
	var out []ParseError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var pe *ParseError
		if errors.As(err, &pe) {
			out = append(out, *pe)
		} else if err != nil {
			out = append(out, ParseError{Msg: "not a ParseError: " + err.Error()})
		}
	}
	walk(err)
	return out
}

// checkCached parses data through c and checks that it gives exactly what a fresh parse gives,
// and what reading the file whole gives (which shares no code with the record by record read);
// and that the index of unique values the cache keeps is that of the records read, kept whenever
// no two records share a value.
func checkCached(t *testing.T, c *parseCache, data []byte) {
	t.Helper()
	_, gd, gw, gerr := c.parse(data)
	for _, ref := range []struct {
		name string
		read func([]byte) (*connectors.Directory, []string, error)
	}{{"fresh", ParseWithWarnings}, {"whole", parseWhole}} {
		wd, ww, werr := ref.read(data)
		if diff := cmp.Diff(wd, gd); diff != "" {
			t.Errorf("directory (-%s +cached):\n%s\nfile:\n%s", ref.name, diff, data)
		}
		if diff := cmp.Diff(ww, gw); diff != "" {
			t.Errorf("warnings (-%s +cached):\n%s\nfile:\n%s", ref.name, diff, data)
		}
		if diff := cmp.Diff(parseErrors(werr), parseErrors(gerr)); diff != "" {
			t.Errorf("errors (-%s +cached):\n%s\nfile:\n%s", ref.name, diff, data)
		}
		if got, want := fmt.Sprint(gerr), fmt.Sprint(werr); got != want {
			t.Errorf("error %q, want %q (%s)", got, want, ref.name)
		}
	}
	if _, ok := split(data); !ok {
		return // read whole: the cache keeps the last split content's records
	}
	// The cache holds this content's items and no others.
	inContent := map[itemKey]bool{}
	for _, it := range c.last.items {
		inContent[it.key] = true
	}
	for k, dec := range c.last.byKey {
		if !inContent[k] {
			t.Errorf("the cache still names an item of an earlier content: %s %q", dec.kind, dec.entry.ID)
		}
	}
	if gd == nil {
		return
	}
	shared := strings.Contains(fmt.Sprint(gd.Skipped), "is already used by")
	u := c.last.uniq
	switch {
	case u == nil && !shared:
		t.Errorf("no two records share a value, yet the index of unique values was dropped\nfile:\n%s", data)
	case u != nil && shared:
		t.Errorf("two records share a value, yet the index of unique values was kept\nfile:\n%s", data)
	case u != nil:
		want := newUniq(0, 0)
		for kind, entries := range map[string][]connectors.Entry{"user": gd.Users, "group": gd.Groups} {
			for _, e := range entries {
				dec := &decoded{kind: kind, entry: e}
				dec.unique[0], dec.unique[1] = uniqueValues(kind, e)
				if !want.add(dec) {
					t.Fatalf("the records read share a value: %s %s", kind, e.ID)
				}
			}
		}
		if diff := cmp.Diff(want, u, cmp.AllowUnexported(uniq{})); diff != "" {
			t.Errorf("index of unique values (-records read +kept):\n%s\nfile:\n%s", diff, data)
		}
	}
}

// doc lays out a directory file: header lines, then the user and group items.
func doc(header int, users, groups []string) []byte {
	var b strings.Builder
	for i := range header {
		fmt.Fprintf(&b, "# header line %d\n", i)
	}
	b.WriteString("users:\n")
	for _, u := range users {
		b.WriteString(u)
	}
	b.WriteString("groups:\n")
	for _, g := range groups {
		b.WriteString(g)
	}
	return []byte(b.String())
}

const (
	ada = "  - id: u1\n    userName: ada@example.com\n    givenName: Ada\n    phone: \"+1 555 0100\" # the older spelling\n"
	bob = "  - id: u2\n    userName: bob@example.com\n    givenName: Bob\n"
	cy  = "  - id: u3\n    userName: cy@example.com\n    colour: blue\n"
	dee = "  - id: u4\n    userName: dee@example.com\n    attributes:\n      badge: \"4\"\n"
	g1  = "  - id: g1\n    name: One\n    members: [u1, u2]\n"
)

// TestCachedParseIsAFreshParse edits a file step by step and checks that every read through one
// cache gives exactly what a fresh parse gives, decoding only the records that changed: the
// lines of moved records (in problems and in warnings), the index of a record without an id, a
// file that must be read whole in between, and duplicates appearing and going.
func TestCachedParseIsAFreshParse(t *testing.T) {
	var c parseCache
	bob2 := strings.Replace(bob, "Bob", "Robert", 1)
	dee2 := strings.Replace(dee, "attributes:", "suspended: maybe\n    attributes:", 1)
	for _, step := range []struct {
		name    string
		data    []byte
		decodes int // items decoded by this step; -1: not checked
		// checkAll is set when the step must check every record for a shared value: the one
		// before had records sharing one, or this one has (else only the records decoded are).
		checkAll bool
	}{
		{"first read", doc(0, []string{ada, bob, cy}, []string{g1}), 4, true},
		{"the same content", doc(0, []string{ada, bob, cy}, []string{g1}), 0, false},
		{"one record edited", doc(0, []string{ada, bob2, cy}, []string{g1}), 1, false},
		{"the deprecated key's record moved", doc(0, []string{bob2, cy, ada}, []string{g1}), 0, false},
		{"every line moved down", doc(3, []string{bob2, cy, ada}, []string{g1}), 0, false},
		{"one added, one removed", doc(3, []string{cy, ada, dee}, []string{g1}), 1, false},
		{"one made invalid", doc(3, []string{cy, ada, dee2}, []string{g1}), 1, false},
		{"valid again", doc(3, []string{cy, ada, dee}, []string{g1}), 1, false},
		{"half saved: read whole", doc(3, []string{cy, ada, "  - id: \"u4\n"}, []string{g1}), -1, false},
		{"saved, without the record before the break", doc(2, []string{cy, dee}, []string{g1}), 0, false},
		{"that record back", doc(2, []string{cy, ada, dee}, []string{g1}), 1, false},
		{"a userName taken twice", doc(2, []string{cy, ada, strings.Replace(dee, "dee@", "ADA@", 1)}, []string{g1}), 1, true},
		{"the later one renamed", doc(2, []string{cy, ada, dee}, []string{g1}), 1, true},
		{"a record twice", doc(2, []string{cy, ada, dee, ada}, []string{g1}), 0, true},
		{"once again", doc(2, []string{cy, ada, dee}, []string{g1}), 0, true},
		{"a record without an id", doc(2, []string{cy, ada, "  - userName: x@example.com\n", dee}, []string{g1}), 1, false},
		{"that record moved first", doc(2, []string{"  - userName: x@example.com\n", cy, ada, dee}, []string{g1}), 0, false},
		{"an id used by a user and a group", doc(2, []string{cy, ada, dee}, []string{g1, "  - id: u4\n    name: Four\n"}), 1, true},
		{"the group gone", doc(2, []string{cy, ada, dee}, []string{g1}), 0, true},
		{"a user and a group swap places", doc(0, []string{cy, ada, "  - id: g1\n    name: One\n"}, []string{"  - id: u4\n    userName: dee@example.com\n"}), 2, false},
	} {
		_, decodes, checks := c.stats()
		checkCached(t, &c, step.data)
		_, decodesAfter, checksAfter := c.stats()
		if got := decodesAfter - decodes; step.decodes >= 0 && got != step.decodes {
			t.Errorf("%s: decoded %d items, want %d", step.name, got, step.decodes)
		}
		if got := checksAfter > checks; got != step.checkAll {
			t.Errorf("%s: checked every record for shared values: %t, want %t", step.name, got, step.checkAll)
		}
		if t.Failed() {
			t.Fatalf("at step %q", step.name)
		}
	}
}

// TestMovedRecordsAreNotDecodedAgain moves records near and far, and reverses the file: no record
// is decoded again, and every line is where a fresh parse puts it.
func TestMovedRecordsAreNotDecodedAgain(t *testing.T) {
	var users []string
	for i := range 40 {
		users = append(users, fmt.Sprintf("  - id: u%d\n    userName: u%d@example.com\n    phone: \"%d\"\n", i, i, i))
	}
	users = append(users, "  - id: bad\n    colour: blue\n")
	var c parseCache
	checkCached(t, &c, doc(0, users, nil))
	_, decodes, _ := c.stats()
	users = append(users[1:], users[0])       // the first record last
	users = append(users[30:], users[:30]...) // a block moved far
	users[3], users[35] = users[35], users[3] // two records swapped far apart
	checkCached(t, &c, doc(5, users, nil))
	slices.Reverse(users)
	checkCached(t, &c, doc(1, users, nil))
	if _, after, _ := c.stats(); after != decodes {
		t.Errorf("%d records decoded again after moves, want none", after-decodes)
	}
}

// randomEdits returns a function that makes a random edit (records replaced, moved, added,
// removed, repeated, broken; lines added above) to a file of few ids and names, so that
// duplicates come and go, and returns the file.
func randomEdits(seed uint64) func() []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	user := func() string {
		var b strings.Builder
		switch r.IntN(20) {
		case 0:
			return "  - just a string\n"
		case 1:
			return "  - userName: nobody@example.com\n"
		case 2:
			return "  - id: \"u9\n" // does not parse alone: the file is read whole
		}
		fmt.Fprintf(&b, "  - id: u%d\n    userName: %c@example.com\n", r.IntN(8), 'a'+r.IntN(8))
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "    email: %c@example.com\n", 'A'+r.IntN(8))
		}
		if r.IntN(4) == 0 {
			b.WriteString("    locality: Paris\n")
		}
		if r.IntN(8) == 0 {
			b.WriteString("    colour: blue\n")
		}
		if r.IntN(5) == 0 {
			b.WriteString("\n    # a comment\n")
		}
		return b.String()
	}
	group := func() string {
		switch r.IntN(10) {
		case 0:
			return fmt.Sprintf("  - id: u%d\n    name: U\n", r.IntN(8))
		case 1: // no members, as an empty list and as nothing: alike in Identity Center, not in the entry
			return fmt.Sprintf("  - id: g%d\n    name: G%d\n    members: []\n", r.IntN(4), r.IntN(4))
		case 2:
			return fmt.Sprintf("  - id: g%d\n    name: G%d\n    members:\n", r.IntN(4), r.IntN(4))
		}
		return fmt.Sprintf("  - id: g%d\n    name: G%d\n    members: [u%d, g%d]\n", r.IntN(4), r.IntN(4), r.IntN(8), r.IntN(4))
	}
	edit := func(list []string, gen func() string) []string {
		switch op := r.IntN(6); {
		case op == 0 || len(list) == 0:
			i := r.IntN(len(list) + 1)
			return append(list[:i], append([]string{gen()}, list[i:]...)...)
		case op == 1:
			i := r.IntN(len(list))
			return append(list[:i], list[i+1:]...)
		case op == 2:
			i, j := r.IntN(len(list)), r.IntN(len(list))
			list[i], list[j] = list[j], list[i]
		case op == 3:
			return append(list, list[r.IntN(len(list))])
		default:
			list[r.IntN(len(list))] = gen()
		}
		return list
	}
	var users, groups []string
	for range 8 {
		users = append(users, user())
	}
	for range 3 {
		groups = append(groups, group())
	}
	header := 0
	return func() []byte {
		switch r.IntN(5) {
		case 0:
			groups = edit(groups, group)
		case 1:
			header = r.IntN(4)
		default:
			users = edit(users, user)
		}
		return doc(header, users, groups)
	}
}

// TestCachedParseAcrossRandomEdits checks each read of a randomly edited file through one cache
// against a fresh parse.
func TestCachedParseAcrossRandomEdits(t *testing.T) {
	next := randomEdits(7)
	var c parseCache
	for step := range 250 {
		checkCached(t, &c, next())
		if t.Failed() {
			t.Fatalf("at step %d", step)
		}
	}
}

// FuzzCachedParse reads a content, then another, through one cache: the second read must give
// exactly what a fresh parse gives. Run: go test -fuzz FuzzCachedParse -fuzztime 2m ./connectors/file/
func FuzzCachedParse(f *testing.F) {
	f.Add(doc(0, []string{ada, bob, cy}, []string{g1}), doc(2, []string{cy, ada, bob}, []string{g1}))
	f.Add(doc(0, []string{ada, dee}, nil), doc(0, []string{ada, strings.Replace(dee, "dee@", "ADA@", 1)}, nil))
	f.Add(doc(1, []string{ada, bob}, []string{g1}), doc(1, []string{ada, ada, "  - id: \"u9\n"}, []string{g1}))
	f.Add(doc(0, []string{cy, "  - userName: x@example.com\n"}, nil), doc(0, []string{"  - userName: x@example.com\n", cy}, []string{"  - id: u3\n"}))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		var c parseCache
		c.parse(first)
		checkCached(t, &c, second)
		checkCached(t, &c, first)
	})
}
