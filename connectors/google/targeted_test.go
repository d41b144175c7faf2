package google

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admin "google.golang.org/api/admin/directory/v1"

	"github.com/scimbridge/scimbridge/connectors"
)

// ids returns the ids of entries.
func ids(es []connectors.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// pick returns the entries of d whose ids are in want.
func pick(es []connectors.Entry, want ...string) []connectors.Entry {
	out := []connectors.Entry{}
	for _, e := range es {
		if slices.Contains(want, e.ID) {
			out = append(out, e)
		}
	}
	return out
}

var entryOpts = cmpopts.EquateEmpty()

// TestReadEntriesEqualsRead reads every user and group of the sample directory through
// ReadEntries, after a full Read and (a restarted source) without one, in each configuration
// that changes how entries and members are named, and compares with the full Read.
func TestReadEntriesEqualsRead(t *testing.T) {
	configs := []struct {
		name string
		edit func(*Config)
	}{
		{"defaults", nil},
		{"omit suspended and archived, custom schemas", func(c *Config) {
			c.Suspended, c.Archived, c.CustomSchemas = Omit, Omit, []string{"Employment"}
		}},
		{"derived nesting", func(c *Config) { c.NestedGroups = Derived }},
		{"user and group queries", func(c *Config) { c.UserQuery = "orgUnitPath='/Eng'"; c.GroupQuery = "email:eng*" }},
		{"domain", func(c *Config) { c.Domain = "example.com" }},
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			seedSmall(e.fake)
			ctx := context.Background()
			full, err := e.open(t, tc.edit).Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			allUsers := []string{"u1", "u2", "u3", "u4", "nobody"}
			allGroups := []string{"g1", "g2", "g9", "g404"}
			for _, warm := range []bool{true, false} {
				s := e.open(t, tc.edit)
				if warm {
					if _, err := s.Read(ctx); err != nil {
						t.Fatal(err)
					}
				}
				got, missing, err := s.ReadEntries(ctx, allUsers, allGroups)
				if err != nil {
					t.Fatalf("ReadEntries (after a full read: %t): %v", warm, err)
				}
				if diff := cmp.Diff(got.Users, full.Users, entryOpts); diff != "" {
					t.Errorf("after a full read: %t: users differ from a full Read (-got +want):\n%s", warm, diff)
				}
				if diff := cmp.Diff(got.Groups, full.Groups, entryOpts); diff != "" {
					t.Errorf("after a full read: %t: groups differ from a full Read (-got +want):\n%s", warm, diff)
				}
				var wantMissing []string
				for _, id := range append(allUsers, allGroups...) {
					if !slices.Contains(ids(full.Users), id) && !slices.Contains(ids(full.Groups), id) {
						wantMissing = append(wantMissing, id)
					}
				}
				slices.Sort(wantMissing)
				if diff := cmp.Diff(missing, wantMissing); diff != "" {
					t.Errorf("after a full read: %t: missing (-got +want):\n%s", warm, diff)
				}
			}
		})
	}
}

// TestReadEntriesAfterChanges changes the directory after a full read (a new user in a group,
// a new nested group, a deletion, a rename) and checks the targeted read of what changed
// against a fresh full read.
func TestReadEntriesAfterChanges(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	ctx := context.Background()
	s := e.open(t, nil)
	if _, err := s.Read(ctx); err != nil {
		t.Fatal(err)
	}
	e.fake.CreateUser(&admin.User{Id: "u5", PrimaryEmail: "erin@example.com", Name: &admin.UserName{GivenName: "Erin", FamilyName: "E", FullName: "Erin E"}})
	e.fake.CreateGroup(&admin.Group{Id: "g3", Email: "sre@example.com", Name: "SRE"},
		&admin.Member{Id: "u5", Email: "erin@example.com", Type: "USER"})
	e.fake.AddMember("g1", &admin.Member{Id: "g3", Email: "sre@example.com", Type: "GROUP"})
	e.fake.AddMember("g2", &admin.Member{Id: "u5", Email: "erin@example.com", Type: "USER"})
	e.fake.RenameUser("u2", "robert@example.com")
	e.fake.DeleteUser("u1")

	// The engine reads the groups whose members changed; it learns of u5 later.
	got, missing, err := s.ReadEntries(ctx, []string{"u1", "u2"}, []string{"g1", "g2"})
	if err != nil {
		t.Fatal(err)
	}
	full, err := e.open(t, nil).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.Groups, pick(full.Groups, "g1", "g2"), entryOpts); diff != "" {
		t.Errorf("groups differ from a full Read (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(got.Users, pick(full.Users, "u2"), entryOpts); diff != "" {
		t.Errorf("users differ from a full Read (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(missing, []string{"u1"}); diff != "" {
		t.Errorf("missing (-got +want):\n%s", diff)
	}
	got, _, err = s.ReadEntries(ctx, []string{"u5"}, []string{"g3"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, &connectors.Directory{Users: pick(full.Users, "u5"), Groups: pick(full.Groups, "g3")}, entryOpts); diff != "" {
		t.Errorf("new user and group differ from a full Read (-got +want):\n%s", diff)
	}
}

// TestReadEntriesRequests counts the requests of targeted reads after a full read: one per
// user, and per group one groups.get and one members.list page (plus the nested groups it
// expands).
func TestReadEntriesRequests(t *testing.T) {
	e := newEnv(t)
	seedLarge(e.fake, 1000, 100, 10, 10)
	ctx := context.Background()
	s := e.open(t, nil)
	if _, err := s.Read(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		users, groups []string
		want          int
	}{
		{"one user", []string{"u00007"}, nil, 1},
		{"one group", nil, []string{"g0042"}, 2},
		{"a user and two groups", []string{"u00007"}, []string{"g0042", "g0043"}, 5},
	} {
		e.fake.ResetRequests()
		if _, _, err := s.ReadEntries(ctx, tc.users, tc.groups); err != nil {
			t.Fatal(err)
		}
		if got := len(e.fake.Requests()); got != tc.want {
			t.Errorf("%s: %d requests, want %d", tc.name, got, tc.want)
		}
	}
	// A restarted source that trusts the state store lists the ids once (2 user pages of 500,
	// 1 group page) before its first targeted read.
	s2 := e.open(t, nil)
	e.fake.ResetRequests()
	if _, _, err := s2.ReadEntries(ctx, []string{"u00007"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(e.fake.Requests()); got != 4 {
		t.Errorf("first targeted read without a full read: %d requests, want 4", got)
	}
}
