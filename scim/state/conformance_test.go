package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// The conformance suite: every test that takes a Store through eachStore or eachBackend runs
// against both implementations, SQLite in a temporary file and PostgreSQL in a fresh database of
// the server pgtest starts for this test binary.

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachBackend runs fn once per implementation with a new, empty location: a file path for
// SQLite, a database URL for PostgreSQL (skipped, or failed in CI, without a server).
//
// The tests that use it run in parallel with each other (each has stores of its own): most of a
// PostgreSQL test's time is spent waiting for the server.
func eachBackend(t *testing.T, fn func(t *testing.T, loc string)) {
	t.Helper()
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "state.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.URL(t)) })
}

// eachStore runs fn once per implementation with a new, empty store opened with opts.
func eachStore(t *testing.T, fn func(t *testing.T, s Store), opts ...Option) {
	t.Helper()
	eachBackend(t, func(t *testing.T, loc string) { fn(t, openStore(t, loc, opts...)) })
}

// openStore opens the store at loc, closed when t ends.
func openStore(t testing.TB, loc string, opts ...Option) Store {
	t.Helper()
	s, err := OpenStore(context.Background(), loc, opts...)
	if err != nil {
		t.Fatalf("OpenStore(%s) = %v", RedactURL(loc), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sliceFixture fills s with users, groups and memberships for the slice reads (ObjectsByID,
// MembersOf, GroupsOf), and returns every id it used. The ids mix cases, non-ASCII letters and
// characters that JSON escapes, so that both the byte order and the binding of the lists are
// tested; some groups have no members, and some members are users the store does not own.
func sliceFixture(t testing.TB, s Store, users, groups int) (userIDs, groupIDs []string) {
	t.Helper()
	ctx := context.Background()
	odd := []string{"", "É", "<&>", `"q"`, `\`, " space", "\u2028", "Z"}
	var objs []Object
	for i := range users {
		id := fmt.Sprintf("u%05d%s", i, odd[i%len(odd)])
		if i%5 == 1 {
			id = strings.ToUpper(id)
		}
		userIDs = append(userIDs, id)
		objs = append(objs, mustUser(t, "tu-"+id, scim.User{ExternalID: id, UserName: id + "@example.com", DisplayName: id, Active: true}, t0))
	}
	for j := range groups {
		id := fmt.Sprintf("g%04d%s", j, odd[(j*3)%len(odd)])
		groupIDs = append(groupIDs, id)
		objs = append(objs, mustGroup(t, "tg-"+id, scim.Group{ExternalID: id, DisplayName: id}, t0))
	}
	if err := s.PutObjects(ctx, objs); err != nil {
		t.Fatal(err)
	}
	var ms []Membership
	for j, g := range groupIDs {
		if j%10 == 9 {
			continue // no members
		}
		for i, u := range userIDs {
			if (i*7+j*3)%11 < 3 {
				ms = append(ms, Membership{Group: g, User: u})
			}
		}
		ms = append(ms, Membership{Group: g, User: fmt.Sprintf("ghost%d", j%4)}) // a user not owned
	}
	if err := s.AddMemberships(ctx, ms); err != nil {
		t.Fatal(err)
	}
	return userIDs, groupIDs
}

// everything is what a store holds, read whole, to filter in Go.
type everything struct {
	objects map[Kind][]Object
	members map[string][]string
}

func readEverything(t testing.TB, s Store) everything {
	t.Helper()
	ctx := context.Background()
	e := everything{objects: map[Kind][]Object{}}
	for _, kind := range []Kind{KindUser, KindGroup} {
		objs, err := s.Objects(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		e.objects[kind] = objs
	}
	var err error
	if e.members, err = s.Members(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// objectsByID is Objects(kind) restricted to ids, in Go.
func (e everything) objectsByID(kind Kind, ids []string) []Object {
	set := setOf(ids)
	out := []Object{}
	for _, o := range e.objects[kind] {
		if set[o.ExternalID] {
			out = append(out, o)
		}
	}
	return out
}

// membersOf and groupsOf are Members restricted to groups, and to users, in Go.
func (e everything) membersOf(groups []string) map[string][]string {
	out := map[string][]string{}
	for g := range setOf(groups) {
		if l, ok := e.members[g]; ok {
			out[g] = l
		}
	}
	return out
}

func (e everything) groupsOf(users []string) map[string][]string {
	set := setOf(users)
	out := map[string][]string{}
	for g, l := range e.members {
		for _, u := range l {
			if set[u] {
				out[g] = append(out[g], u)
			}
		}
	}
	return out
}

func setOf(ids []string) map[string]bool {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// checkSlice compares the three slice reads of ids with what e, the whole store, holds filtered
// in Go.
func checkSlice(t *testing.T, s Store, e everything, name string, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, kind := range []Kind{KindUser, KindGroup} {
		got, err := s.ObjectsByID(ctx, kind, ids)
		if err != nil {
			t.Fatalf("%s: ObjectsByID(%s) = %v", name, kind, err)
		}
		if diff := cmp.Diff(got, e.objectsByID(kind, ids)); diff != "" {
			t.Errorf("%s: ObjectsByID(%s) (-got +want):\n%s", name, kind, diff)
		}
	}
	got, err := s.MembersOf(ctx, ids)
	if err != nil {
		t.Fatalf("%s: MembersOf = %v", name, err)
	}
	if diff := cmp.Diff(got, e.membersOf(ids)); diff != "" {
		t.Errorf("%s: MembersOf (-got +want):\n%s", name, diff)
	}
	got, err = s.GroupsOf(ctx, ids)
	if err != nil {
		t.Fatalf("%s: GroupsOf = %v", name, err)
	}
	if diff := cmp.Diff(got, e.groupsOf(ids)); diff != "" {
		t.Errorf("%s: GroupsOf (-got +want):\n%s", name, diff)
	}
}

func TestSliceReads(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		users, groups := sliceFixture(t, s, 200, 30)
		every := func(ids []string, n int) []string {
			var out []string
			for i := 0; i < len(ids); i += n {
				out = append(out, ids[i])
			}
			return out
		}
		some := every(users, 7)
		someGroups := every(groups, 3)
		cases := []struct {
			name string
			ids  []string
		}{
			{"nil", nil},
			{"empty", []string{}},
			{"unknown", []string{"nobody", "u99999", "g9999", "ghost9"}},
			{"one user", users[4:5]},
			{"one group", groups[2:3]},
			{"a group without members", groups[9:10]},
			{"users", some},
			{"groups", someGroups},
			{"duplicates", append(append(slices.Clone(some), some...), someGroups[0], someGroups[0])},
			{"a user not owned", []string{"ghost1", "ghost3"}},
			{"ids no store holds", []string{"", "u00000\x00", "\xff\xfe", users[0] + "\xff"}},
			{"mix", append(append(append(slices.Clone(some[:10]), someGroups[:4]...), users[len(users)-1], "nobody", "", "ghost2", groups[0]), some[:3]...)},
			{"everything", append(slices.Clone(users), groups...)},
		}
		e := readEverything(t, s)
		for _, tc := range cases {
			checkSlice(t, s, e, tc.name, tc.ids)
		}
		// The filters in Go are not empty where they should not be: the test compares something.
		if got, _ := s.ObjectsByID(ctx, KindUser, some); len(got) != len(some) {
			t.Errorf("ObjectsByID(%d users) found %d", len(some), len(got))
		}
		if got, _ := s.MembersOf(ctx, someGroups); len(got) == 0 {
			t.Error("MembersOf(groups) found none")
		}
		// An empty result is an empty map or slice, not nil.
		if got, _ := s.ObjectsByID(ctx, KindGroup, nil); got == nil {
			t.Error("ObjectsByID(nil) = nil, want an empty slice")
		}
		if got, _ := s.GroupsOf(ctx, []string{"nobody"}); got == nil {
			t.Error("GroupsOf(unknown) = nil, want an empty map")
		}
		if _, err := s.ObjectsByID(ctx, Kind("no kind!"), users[:1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("ObjectsByID(bad kind) = %v, want ErrInvalid", err)
		}
		// After writes, the slices follow.
		must(t, s.RemoveUserEverywhere(ctx, some[1]))
		must(t, s.DeleteObjects(ctx, KindGroup, someGroups[:1]))
		must(t, s.DeleteObjects(ctx, KindUser, some[2:3]))
		checkSlice(t, s, readEverything(t, s), "after writes", append(slices.Clone(some), someGroups...))
	})
}

// TestSliceReadsOfManyIDs asks for 40,000 ids in one call, past SQLite's limit of 32,766 bound
// parameters: each list is one parameter. (Under -race, SQLite's 40,000 lookups take seconds:
// each method is called once.)
func TestSliceReadsOfManyIDs(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		users, groups := sliceFixture(t, s, 300, 40)
		ids := append(slices.Clone(users), groups...)
		for i := len(ids); i < 40_000; i++ {
			ids = append(ids, fmt.Sprintf("absent%05d", i))
		}
		objs, err := s.ObjectsByID(ctx, KindUser, ids)
		if err != nil {
			t.Fatalf("ObjectsByID(%d ids) = %v", len(ids), err)
		}
		e := readEverything(t, s)
		if diff := cmp.Diff(objs, e.objects[KindUser]); diff != "" {
			t.Errorf("ObjectsByID(%d ids) (-got +want):\n%s", len(ids), diff)
		}
		for _, c := range []struct {
			name string
			read func(context.Context, []string) (map[string][]string, error)
			want map[string][]string
		}{{"MembersOf", s.MembersOf, e.members}, {"GroupsOf", s.GroupsOf, e.groupsOf(users)}} {
			got, err := c.read(ctx, ids)
			if err != nil {
				t.Fatalf("%s(%d ids) = %v", c.name, len(ids), err)
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("%s(%d ids) (-got +want):\n%s", c.name, len(ids), diff)
			}
		}
	})
}
