package file

import (
	"cmp"
	"reflect"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim"
)

// diffByMaps is the feed's diff as it was first written: every record of both reads indexed by
// id and compared value by value. diff must find the same changes.
func diffByMaps(old, cur *connectors.Directory, at time.Time) []connectors.Change {
	type rec struct {
		e       *connectors.Entry
		problem []scim.Problem
	}
	index := func(d *connectors.Directory) map[connectors.ChangeKind]map[string]*rec {
		m := map[connectors.ChangeKind]map[string]*rec{connectors.ChangeUser: {}, connectors.ChangeGroup: {}}
		for i := range d.Users {
			m[connectors.ChangeUser][d.Users[i].ID] = &rec{e: &d.Users[i]}
		}
		for i := range d.Groups {
			m[connectors.ChangeGroup][d.Groups[i].ID] = &rec{e: &d.Groups[i]}
		}
		for _, p := range d.Skipped {
			k := connectors.ChangeKind(p.Kind)
			if m[k] == nil {
				continue
			}
			r := m[k][p.ID]
			if r == nil {
				r = &rec{}
				m[k][p.ID] = r
			}
			r.problem = append(r.problem, p)
		}
		return m
	}
	o, c := index(old), index(cur)
	var out []connectors.Change
	for _, kind := range []connectors.ChangeKind{connectors.ChangeUser, connectors.ChangeGroup} {
		for id, r := range c[kind] {
			if p, ok := o[kind][id]; !ok || !reflect.DeepEqual(p, r) {
				out = append(out, connectors.Change{Kind: kind, ID: id, At: at})
			}
		}
		for id := range o[kind] {
			if _, ok := c[kind][id]; !ok {
				out = append(out, connectors.Change{Kind: kind, ID: id, Deleted: true, At: at})
			}
		}
	}
	return out
}

func sortedChanges(cs []connectors.Change) []connectors.Change {
	deleted := func(c connectors.Change) int {
		if c.Deleted {
			return 1
		}
		return 0
	}
	return slices.SortedFunc(slices.Values(cs), func(a, b connectors.Change) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(deleted(a), deleted(b)))
	})
}

// TestDiffAcrossRandomEdits checks that diff finds what indexing every record finds, between
// successive reads of a randomly edited file: read through one cache (the entries of unchanged
// records shared, as the feed reads them), parsed apart (nothing shared), and one of each.
func TestDiffAcrossRandomEdits(t *testing.T) {
	next := randomEdits(3)
	var c parseCache
	var lastShared, lastApart *connectors.Directory
	at := time.Unix(1, 0)
	for step := range 250 {
		data := next()
		_, shared, _, _ := c.parse(data)
		apart, _ := Parse(data)
		if shared == nil {
			continue // the feed waits for a content that parses
		}
		if lastShared != nil {
			for _, pair := range []struct {
				name     string
				old, cur *connectors.Directory
			}{{"shared", lastShared, shared}, {"apart", lastApart, apart}, {"mixed", lastApart, shared}} {
				got, want := sortedChanges(diff(pair.old, pair.cur, at)), sortedChanges(diffByMaps(pair.old, pair.cur, at))
				if d := gocmp.Diff(want, got); d != "" {
					t.Fatalf("step %d, %s: changes (-by maps +diff):\n%s\nfile:\n%s", step, pair.name, d, data)
				}
			}
		}
		lastShared, lastApart = shared, apart
	}
}
