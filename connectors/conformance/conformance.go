// Package conformance checks that a connector's Directory keeps the promises the mapping relies
// on. Connector tests call it on what their Source read:
//
//	func TestConformance(t *testing.T) {
//		conformance.CheckSource(t, src)
//	}
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
)

// Problems returns every way d breaks the Directory contract: empty or repeated ids (across users
// and groups), ids with surrounding white space, empty keys, attributes with an empty name or a
// nil value list, users with members and groups listing themselves. An empty result means d
// conforms. Unresolved member references are checked apart (UnresolvedMembers).
func Problems(d *connectors.Directory) []error {
	if d == nil {
		return []error{fmt.Errorf("conformance: nil directory")}
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("conformance: "+format, args...)) }
	ids := map[string]string{}
	check := func(kind string, i int, e connectors.Entry) {
		switch {
		case strings.TrimSpace(e.ID) == "":
			bad("%s[%d] has an empty id", kind, i)
		case e.ID != strings.TrimSpace(e.ID):
			bad("%s %q: id has surrounding white space", kind, e.ID)
		}
		if other, dup := ids[e.ID]; dup && e.ID != "" {
			bad("%s %q: id already used by a %s", kind, e.ID, other)
		}
		ids[e.ID] = kind
		for _, k := range e.Keys {
			if k == "" {
				bad("%s %q: empty key", kind, e.ID)
			}
		}
		for name, v := range e.Attributes {
			if name == "" {
				bad("%s %q: attribute with an empty name", kind, e.ID)
			}
			if v == nil {
				bad("%s %q: attribute %q has a nil value list", kind, e.ID, name)
			}
		}
	}
	for i, u := range d.Users {
		check("user", i, u)
		if len(u.Members) > 0 {
			bad("user %q has members", u.ID)
		}
	}
	for i, g := range d.Groups {
		check("group", i, g)
	}
	for _, g := range d.Groups {
		for _, m := range g.Members {
			if m == g.ID {
				bad("group %q lists itself as a member", g.ID)
			}
		}
	}
	return errs
}

// UnresolvedMembers returns, per group id, the member references of d that match no entry's ID
// or Key (ignoring case). Connectors that read a whole directory should have none; the mapping
// reports them rather than failing.
func UnresolvedMembers(d *connectors.Directory) map[string][]string {
	refs := map[string]bool{}
	for _, list := range [][]connectors.Entry{d.Users, d.Groups} {
		for _, e := range list {
			refs[strings.ToLower(e.ID)] = true
			for _, k := range e.Keys {
				refs[strings.ToLower(k)] = true
			}
		}
	}
	out := map[string][]string{}
	for _, g := range d.Groups {
		for _, m := range g.Members {
			if !refs[strings.ToLower(m)] {
				out[g.ID] = append(out[g.ID], m)
			}
		}
	}
	return out
}

// CheckDirectory fails t for every problem Problems finds in d.
func CheckDirectory(t testing.TB, d *connectors.Directory) {
	t.Helper()
	for _, err := range Problems(d) {
		t.Error(err)
	}
}

// CheckSource reads src twice and fails t when a read fails, when the Directory breaks the
// contract (see Problems), or when the two reads differ (order included: a Directory must be
// deterministic so that plans are), or when a member reference matches no entry.
func CheckSource(t testing.TB, src connectors.Source) {
	t.Helper()
	CheckSourceOptions(t, src, Options{})
}

// Options tunes CheckSourceOptions.
type Options struct {
	// AllowUnresolvedMembers accepts member references that match no entry (a source whose
	// test data deliberately holds some).
	AllowUnresolvedMembers bool
}

// CheckSourceOptions is CheckSource with options.
func CheckSourceOptions(t testing.TB, src connectors.Source, o Options) {
	t.Helper()
	ctx := context.Background()
	a, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("conformance: first read: %v", err)
	}
	CheckDirectory(t, a)
	if !o.AllowUnresolvedMembers {
		for g, refs := range UnresolvedMembers(a) {
			t.Errorf("conformance: group %q: member references match no entry: %q", g, refs)
		}
	}
	b, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("conformance: second read: %v", err)
	}
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("conformance: encode: %v", err)
	}
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("conformance: two reads of an unchanged source differ")
	}
}
