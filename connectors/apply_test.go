package connectors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/scimbridge/scimbridge/scim"
)

func user(id string, kv ...string) Entry {
	e := Entry{ID: id, Attributes: map[string][]string{"mail": {id + "@example.com"}, "givenName": {"G" + id}, "sn": {"S" + id}}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attributes[kv[i]] = []string{kv[i+1]}
	}
	return e
}

func group(id, cn string, members ...string) Entry {
	return Entry{ID: id, Attributes: map[string][]string{"cn": {cn}}, Members: members}
}

// scopeDirectory: admins (a1, nested ops) > ops (o1, o2), dev (d1), svc user, disabled user.
func scopeDirectory() *Directory {
	return &Directory{
		Users: []Entry{
			user("a1"), user("o1"), user("o2", "disabled", "true"), user("d1"), user("svc", "kind", "service"), user("lone"),
		},
		Groups: []Entry{
			group("admins", "aws-admins", "a1", "ops"),
			group("ops", "ops", "o1", "o2"),
			group("dev", "aws-dev", "d1", "svc"),
		},
	}
}

type shape struct {
	Users  []string
	Groups map[string][]string
}

func shapeOf(s scim.Snapshot) shape {
	out := shape{Groups: map[string][]string{}}
	for _, u := range s.Users {
		id := u.ExternalID
		if !u.Active {
			id += "(inactive)"
		}
		out.Users = append(out.Users, id)
	}
	for _, g := range s.Groups {
		out.Groups[g.DisplayName] = g.Members
	}
	return out
}

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scope ScopeConfig
		want  shape
	}{
		{"everything", ScopeConfig{}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "o2(inactive)", "svc"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1", "o2"}, "ops": {"o1", "o2"}, "aws-dev": {"d1", "svc"}}}},
		{"exclude service users", ScopeConfig{Users: UserScope{Exclude: Expr(`attr("kind") == "service"`)}}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "o2(inactive)"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1", "o2"}, "ops": {"o1", "o2"}, "aws-dev": {"d1"}}}},
		{"include by id", ScopeConfig{Users: UserScope{Include: Expr(`id in ["a1", "o1"]`)}}, shape{
			Users:  []string{"a1", "o1"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1"}, "ops": {"o1"}, "aws-dev": {}}}},
		{"inactive excluded", ScopeConfig{InactiveUsers: InactiveExclude}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "svc"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1"}, "ops": {"o1"}, "aws-dev": {"d1", "svc"}}}},
		{"group pattern", ScopeConfig{Groups: GroupScope{NamePattern: Expr(`^aws-`)}}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "o2(inactive)", "svc"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1", "o2"}, "aws-dev": {"d1", "svc"}}}},
		{"group names and pattern", ScopeConfig{Groups: GroupScope{Names: []string{"OPS"}, NamePattern: Expr(`dev$`)}}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "o2(inactive)", "svc"},
			Groups: map[string][]string{"ops": {"o1", "o2"}, "aws-dev": {"d1", "svc"}}}},
		{"group exclude", ScopeConfig{Groups: GroupScope{Exclude: Expr(`id == "dev"`)}}, shape{
			Users:  []string{"a1", "d1", "lone", "o1", "o2(inactive)", "svc"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1", "o2"}, "ops": {"o1", "o2"}}}},
		{"group members: nested group out of scope still counts", ScopeConfig{Groups: GroupScope{Names: []string{"aws-admins"}}, UserMode: UserModeGroupMembers}, shape{
			Users:  []string{"a1", "o1", "o2(inactive)"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1", "o2"}}}},
		{"group members with filters and inactive excluded", ScopeConfig{
			Users:  UserScope{Exclude: Expr(`attr("kind") == "service"`)},
			Groups: GroupScope{Include: Expr(`hasPrefix(attr("cn"), "aws-")`)}, UserMode: UserModeGroupMembers, InactiveUsers: InactiveExclude}, shape{
			Users:  []string{"a1", "d1", "o1"},
			Groups: map[string][]string{"aws-admins": {"a1", "o1"}, "aws-dev": {"d1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Compile(testFlavour, MappingConfig{}, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			snap := m.Apply(scopeDirectory())
			got := shapeOf(snap)
			for k, v := range got.Groups {
				if v == nil {
					got.Groups[k] = []string{}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
			if len(snap.Skipped) != 0 {
				t.Errorf("Skipped = %v, want none", snap.Skipped)
			}
		})
	}
}

func TestScopeFilterErrorsSkipNotDeprovision(t *testing.T) {
	// The filters index a list that is empty for some entries: a run-time error.
	m, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{
		Users:    UserScope{Include: Expr(`values("kind")[0] != "service"`)},
		Groups:   GroupScope{Exclude: Expr(`values("flag")[0] == "x"`)},
		UserMode: UserModeGroupMembers,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := &Directory{
		Users:  []Entry{user("a", "kind", "person"), user("b")},
		Groups: []Entry{group("g", "G", "a", "b")},
	}
	snap := m.Apply(d)
	if len(snap.Users) != 1 || snap.Users[0].ExternalID != "a" {
		t.Errorf("users = %v, want only a", shapeOf(snap).Users)
	}
	if len(snap.Groups) != 0 {
		t.Errorf("groups = %v, want none", snap.Groups)
	}
	skipped := snap.SkippedIDs(scim.KindUser)
	if !skipped["b"] || !snap.SkippedIDs(scim.KindGroup)["g"] {
		t.Errorf("Skipped = %v, want user b and group g dropped", snap.Skipped)
	}
	for _, p := range snap.Skipped {
		if !strings.HasPrefix(p.Field, "scope.") {
			t.Errorf("problem %v: field should name the filter", p)
		}
	}
}

func TestMappingErrorsAndReferences(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{User: map[string]Expression{
		"title": Expr(`split(attr("title"), "/")[1]`), // fails when title has no "/"
	}}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	boss := user("boss", "title", "a/CEO")
	boss.Keys = []string{"CN=Boss,OU=People,DC=example,DC=com"}
	d := &Directory{
		Users: []Entry{
			boss,
			user("u1", "title", "a/Dev", "manager", "cn=boss,ou=people,dc=example,dc=com"), // by key, ignoring case
			user("u2", "title", "Dev"),                                                                // title fails
			user("u3", "title", "a/Dev", "manager", "nobody"),                                         // unresolvable manager
			user("u4", "title", "a/Dev", "manager", "grp"),                                            // a group is no manager
			user("u5", "title", "a/Dev", "manager", "u5"),                                             // oneself
			{ID: "u6", Attributes: map[string][]string{"mail": {"u6@example.com"}, "title": {"a/x"}}}, // no givenName
		},
		Groups: []Entry{
			{ID: "grp", Attributes: map[string][]string{"cn": {"Group"}}, Members: []string{"u1", "u2", "u6", "ghost", "ghost2", "grp"}},
			{ID: "noname", Attributes: map[string][]string{}, Members: []string{"u1"}},
		},
	}
	snap := m.Apply(d)
	var managerOfU1 string
	for _, u := range snap.Users {
		if u.ExternalID == "u1" {
			managerOfU1 = u.Enterprise.Manager
		}
	}
	if managerOfU1 != "boss" {
		t.Errorf("u1 manager = %q, want boss (resolved through a key)", managerOfU1)
	}
	var got []string
	for _, p := range snap.Skipped {
		got = append(got, fmt.Sprintf("%s %s %s %t", p.Kind, p.ID, p.Field, p.Dropped))
	}
	want := []string{
		"group grp members false",
		"group noname displayName true",
		"user u2 title true",
		"user u3 manager false",
		"user u4 manager false",
		"user u5 manager false",
		"user u6 displayName true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s\n%v", diff, snap.Skipped)
	}
	for _, p := range snap.Skipped {
		if p.ID == "grp" && !strings.Contains(p.Reason, "2 member reference(s)") {
			t.Errorf("group problem %q should count the 2 unresolved references", p.Reason)
		}
		if p.ID == "u2" && !strings.Contains(p.Reason, "out of range") {
			t.Errorf("u2 reason %q should say why", p.Reason)
		}
	}
	if len(snap.Groups) != 1 || !slices.Equal(snap.Groups[0].Members, []string{"u1"}) {
		t.Errorf("groups = %+v, want grp with u1 (u2 and u6 failed: Normalize leaves them as they are)", snap.Groups)
	}
}

func TestApplyDoesNotModifyAndIsConcurrent(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := generate(3000, 50, 6000, 1)
	before := fmt.Sprint(d)
	want := m.Apply(d)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got := m.Apply(d); !cmp.Equal(want, got) {
				t.Error("concurrent Apply gave a different snapshot")
			}
		})
	}
	wg.Wait()
	if fmt.Sprint(d) != before {
		t.Error("Apply modified the directory")
	}
	if len(want.Users) != 3000 || len(want.Groups) != 50 {
		t.Errorf("got %d users and %d groups, want 3000 and 50", len(want.Users), len(want.Groups))
	}
}

func TestExplain(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{Users: UserScope{Exclude: Expr(`attr("kind") == "service"`)}})
	if err != nil {
		t.Fatal(err)
	}
	d := scopeDirectory()
	d.Users[0].Keys = []string{"uid=a1"}
	for _, tc := range []struct {
		id, kind, scope string
		in              bool
	}{
		{"a1", "user", "in scope", true},
		{"uid=a1", "user", "in scope", true},
		{"svc", "user", "out of scope: the exclude filter is true", false},
		{"admins", "group", "in scope", true},
	} {
		ex, err := m.Explain(d, tc.id)
		if err != nil {
			t.Fatalf("Explain(%q): %v", tc.id, err)
		}
		if ex.Kind != tc.kind || ex.Scope != tc.scope || ex.InScope != tc.in {
			t.Errorf("Explain(%q) = %s/%q/%v, want %s/%q/%v", tc.id, ex.Kind, ex.Scope, ex.InScope, tc.kind, tc.scope, tc.in)
		}
		if tc.in && ex.User == nil && ex.Group == nil {
			t.Errorf("Explain(%q) has no record", tc.id)
		}
		if s := ex.String(); !strings.Contains(s, tc.scope) {
			t.Errorf("String() = %q", s)
		}
	}
	ex, _ := m.Explain(d, "admins")
	if !slices.Equal(ex.Group.Members, []string{"a1", "o1", "o2"}) {
		t.Errorf("admins members = %v", ex.Group.Members)
	}
	if _, err := m.Explain(d, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Explain(nobody) = %v, want ErrNotFound", err)
	}
	// A failing entry explains its problem.
	d.Users = append(d.Users, Entry{ID: "bad", Attributes: map[string][]string{"mail": {"bad@example.com"}}})
	ex, _ = m.Explain(d, "bad")
	if ex.InScope || len(ex.Problems) == 0 || !ex.Problems[0].Dropped || !strings.Contains(ex.String(), "problem: user") {
		t.Errorf("Explain(bad) = %+v", ex)
	}
}

// TestFlatten compares flatten with a breadth-first search on random graphs with cycles.
func TestFlatten(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		nGroups, nUsers := 1+r.IntN(30), r.IntN(40)
		users, subs := make([][]int32, nGroups), make([][]int32, nGroups)
		for g := range nGroups {
			for range r.IntN(5) {
				if nUsers > 0 {
					users[g] = append(users[g], int32(r.IntN(nUsers)))
				}
			}
			for range r.IntN(3) {
				subs[g] = append(subs[g], int32(r.IntN(nGroups)))
			}
		}
		got := flatten(nUsers, users, subs)
		for g := range nGroups {
			want := bfs(g, users, subs)
			have := slices.Clone(got[g])
			slices.Sort(have)
			if len(have) != len(slices.Compact(slices.Clone(have))) {
				t.Fatalf("round %d group %d: duplicates in %v", round, g, got[g])
			}
			if !slices.Equal(have, want) {
				t.Fatalf("round %d group %d: got %v, want %v (users %v subs %v)", round, g, have, want, users, subs)
			}
		}
	}
}

func bfs(start int, users, subs [][]int32) []int32 {
	seen := map[int32]bool{int32(start): true}
	queue := []int32{int32(start)}
	set := map[int32]bool{}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		for _, u := range users[g] {
			set[u] = true
		}
		for _, s := range subs[g] {
			if !seen[s] {
				seen[s] = true
				queue = append(queue, s)
			}
		}
	}
	out := []int32{}
	for u := range set {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

func TestFlattenDeepAndCyclic(t *testing.T) {
	const depth = 5000
	// A chain g0 > g1 > ... > g(depth-1), each holding one user, closed into a cycle at the end.
	users, subs := make([][]int32, depth), make([][]int32, depth)
	for g := range depth {
		users[g] = []int32{int32(g)}
		if g+1 < depth {
			subs[g] = []int32{int32(g + 1)}
		}
	}
	flat := flatten(depth, users, subs)
	if len(flat[0]) != depth || len(flat[depth-1]) != 1 {
		t.Errorf("chain: top has %d users, bottom %d; want %d and 1", len(flat[0]), len(flat[depth-1]), depth)
	}
	subs[depth-1] = []int32{0}
	flat = flatten(depth, users, subs)
	for _, g := range []int{0, depth / 2, depth - 1} {
		if len(flat[g]) != depth {
			t.Errorf("cycle: group %d has %d users, want all %d", g, len(flat[g]), depth)
		}
	}
}

func TestNestedGroupsThroughApply(t *testing.T) {
	m, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d := &Directory{
		Users: []Entry{user("u1"), user("u2"), user("u3")},
		Groups: []Entry{
			{ID: "a", Keys: []string{"CN=A"}, Attributes: map[string][]string{"cn": {"A"}}, Members: []string{"u1", "CN=B"}},
			{ID: "b", Keys: []string{"CN=B"}, Attributes: map[string][]string{"cn": {"B"}}, Members: []string{"u2", "c"}},
			{ID: "c", Attributes: map[string][]string{"cn": {"C"}}, Members: []string{"u3", "cn=a"}}, // a cycle, by key
		},
	}
	snap := m.Apply(d)
	for _, g := range snap.Groups {
		if !slices.Equal(g.Members, []string{"u1", "u2", "u3"}) {
			t.Errorf("group %s members %v, want all three", g.ExternalID, g.Members)
		}
	}
	if len(snap.Skipped) != 0 {
		t.Errorf("Skipped = %v", snap.Skipped)
	}
}
