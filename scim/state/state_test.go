package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)

func openTemp(t testing.TB, opts ...Option) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustUser(t testing.TB, targetID string, u scim.User, now time.Time) Object {
	t.Helper()
	o, err := NewUserObject(targetID, u, now)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustGroup(t testing.TB, targetID string, g scim.Group, now time.Time) Object {
	t.Helper()
	o, err := NewGroupObject(targetID, g, now)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func objectIDs(t testing.TB, s Store, kind Kind) []string {
	t.Helper()
	objs, err := s.Objects(context.Background(), kind)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, o := range objs {
		ids = append(ids, o.ExternalID+"="+o.TargetID)
	}
	return ids
}

func TestObjectsRoundTrip(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		u1 := scim.User{ExternalID: "u-2", UserName: "bob", DisplayName: "Bob B", GivenName: "Bob", FamilyName: "B", Email: "bob@example.com", Active: true,
			Address: &scim.Address{Locality: "Paris"}, Enterprise: scim.Enterprise{Manager: "u-1"}}
		u2 := scim.User{ExternalID: "u-1", UserName: "ann", DisplayName: "Ann A", GivenName: "Ann", FamilyName: "A", Active: true}
		g := scim.Group{ExternalID: "g-1", DisplayName: "Finance", Members: []string{"u-1", "u-2"}}
		raw := Object{Kind: KindUser, ExternalID: "u-3", TargetID: "t3", Data: json.RawMessage(`{ "userName" : "c" }`), UpdatedAt: t0.Add(time.Hour)}
		if err := s.PutObjects(ctx, []Object{mustUser(t, "t2", u1, t0), mustUser(t, "t1", u2, t0), raw, mustGroup(t, "tg", g, t0)}); err != nil {
			t.Fatal(err)
		}
		users, err := s.Objects(ctx, KindUser)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"u-1=t1", "u-2=t2", "u-3=t3"}, objectIDs(t, s, KindUser)); diff != "" {
			t.Fatalf("users (-want +got):\n%s", diff)
		}
		gotU, err := users[1].User()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(u1, gotU); diff != "" {
			t.Errorf("decoded user (-want +got):\n%s", diff)
		}
		if got, want := users[1].Hash, Fingerprint(users[1].Data); got != want || len(got) != 64 {
			t.Errorf("hash = %q, want %q", got, want)
		}
		if !users[1].UpdatedAt.Equal(t0) {
			t.Errorf("UpdatedAt = %v, want %v", users[1].UpdatedAt, t0)
		}
		// Raw JSON is stored compact and hashed when no hash is given.
		if got := string(users[2].Data); got != `{"userName":"c"}` {
			t.Errorf("stored data = %s", got)
		}
		if got, want := users[2].Hash, Fingerprint([]byte(`{"userName":"c"}`)); got != want {
			t.Errorf("computed hash = %q, want %q", got, want)
		}
		if !users[2].UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("UpdatedAt = %v", users[2].UpdatedAt)
		}
		groups, err := s.Objects(ctx, KindGroup)
		if err != nil {
			t.Fatal(err)
		}
		gotG, err := groups[0].Group()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(scim.Group{ExternalID: "g-1", DisplayName: "Finance"}, gotG); diff != "" {
			t.Errorf("group data keeps members or differs (-want +got):\n%s", diff)
		}
		if _, err := groups[0].User(); !errors.Is(err, ErrInvalid) {
			t.Errorf("group.User() = %v, want ErrInvalid", err)
		}

		// Upsert: a rename replaces data, hash, target id and time; a given hash is kept.
		u1.UserName = "robert"
		o := mustUser(t, "t2b", u1, t0.Add(2*time.Hour))
		o.Hash = "caller-hash"
		if err := s.PutObjects(ctx, []Object{o}); err != nil {
			t.Fatal(err)
		}
		users, _ = s.Objects(ctx, KindUser)
		if got, _ := users[1].User(); got.UserName != "robert" || users[1].TargetID != "t2b" || users[1].Hash != "caller-hash" || !users[1].UpdatedAt.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("after upsert: %+v (%s)", users[1], users[1].Data)
		}
		if len(users) != 3 {
			t.Errorf("upsert added a row: %d users", len(users))
		}
	})
}

func TestPutObjectsRejectsAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		good := Object{Kind: KindUser, ExternalID: "u", TargetID: "t", Data: json.RawMessage(`{}`)}
		tests := []struct {
			name string
			bad  Object
		}{
			{"invalid kind", Object{Kind: "no such kind", ExternalID: "x", TargetID: "t", Data: json.RawMessage(`{}`)}},
			{"empty external id", Object{Kind: KindUser, TargetID: "t", Data: json.RawMessage(`{}`)}},
			{"empty target id", Object{Kind: KindUser, ExternalID: "x", Data: json.RawMessage(`{}`)}},
			{"not json", Object{Kind: KindUser, ExternalID: "x", TargetID: "t", Data: json.RawMessage(`{"a":`)}},
			{"no data", Object{Kind: KindGroup, ExternalID: "x", TargetID: "t"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.PutObjects(ctx, []Object{good, tt.bad})
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("PutObjects = %v, want ErrInvalid", err)
				}
				if !strings.HasPrefix(err.Error(), "state: put 2 objects: ") {
					t.Errorf("error %q does not name the operation", err)
				}
				if ids := objectIDs(t, s, KindUser); len(ids) != 0 {
					t.Errorf("a rejected batch wrote %v", ids)
				}
			})
		}
	})
}

func TestPending(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		if err := s.RecordPending(ctx, KindUser, []string{"a", "b", "c", "a"}, testNow); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordPending(ctx, KindGroup, []string{"a"}, testNow); err != nil {
			t.Fatal(err)
		}
		// Creating "a" clears only the user intent of "a".
		if err := s.PutObjects(ctx, []Object{{Kind: KindUser, ExternalID: "a", TargetID: "ta", Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.ClearPending(ctx, KindUser, []string{"c", "never"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Pending(ctx, KindUser)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]bool{"b": true}, got); diff != "" {
			t.Errorf("pending users (-want +got):\n%s", diff)
		}
		got, _ = s.Pending(ctx, KindGroup)
		if diff := cmp.Diff(map[string]bool{"a": true}, got); diff != "" {
			t.Errorf("pending groups (-want +got):\n%s", diff)
		}
		if err := s.DeleteObjects(ctx, KindGroup, []string{"a"}); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Pending(ctx, KindGroup); len(got) != 0 {
			t.Errorf("DeleteObjects left pending %v", got)
		}
		if err := s.RecordPending(ctx, KindUser, []string{"ok", ""}, testNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("RecordPending with empty id = %v", err)
		}
		if _, err := s.Pending(ctx, "no such kind"); !errors.Is(err, ErrInvalid) {
			t.Errorf("Pending(invalid kind) = %v", err)
		}
		if got, _ = s.Pending(ctx, KindUser); got["ok"] {
			t.Error("a rejected RecordPending wrote")
		}
	})
}

func TestMembers(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		g := func(id string) Object { return mustGroup(t, "t-"+id, scim.Group{ExternalID: id, DisplayName: id}, t0) }
		if err := s.PutObjects(ctx, []Object{g("G1"), g("G2"), g("G3")}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			do   func() error
			want map[string][]string
		}{
			{"add", func() error { return s.AddMembers(ctx, "G1", []string{"u3", "u1", "u2", "u1"}) },
				map[string][]string{"G1": {"u1", "u2", "u3"}}},
			{"add again is idempotent", func() error { return s.AddMembers(ctx, "G1", []string{"u1"}) },
				map[string][]string{"G1": {"u1", "u2", "u3"}}},
			{"bulk", func() error {
				return s.AddMemberships(ctx, []Membership{{"G2", "u1"}, {"G3", "u2"}, {"G2", "u4"}})
			}, map[string][]string{"G1": {"u1", "u2", "u3"}, "G2": {"u1", "u4"}, "G3": {"u2"}}},
			{"remove", func() error { return s.RemoveMembers(ctx, "G1", []string{"u2", "absent"}) },
				map[string][]string{"G1": {"u1", "u3"}, "G2": {"u1", "u4"}, "G3": {"u2"}}},
			{"remove everywhere", func() error { return s.RemoveUserEverywhere(ctx, "u1") },
				map[string][]string{"G1": {"u3"}, "G2": {"u4"}, "G3": {"u2"}}},
			{"group update keeps members", func() error {
				return s.PutObjects(ctx, []Object{mustGroup(t, "t-G2", scim.Group{ExternalID: "G2", DisplayName: "renamed"}, t0)})
			}, map[string][]string{"G1": {"u3"}, "G2": {"u4"}, "G3": {"u2"}}},
			{"set", func() error { return s.SetMembers(ctx, "G2", []string{"u9", "u8"}) },
				map[string][]string{"G1": {"u3"}, "G2": {"u8", "u9"}, "G3": {"u2"}}},
			{"delete group drops its rows", func() error { return s.DeleteObjects(ctx, KindGroup, []string{"G1"}) },
				map[string][]string{"G2": {"u8", "u9"}, "G3": {"u2"}}},
			{"delete user drops its rows", func() error { return s.DeleteObjects(ctx, KindUser, []string{"u2"}) },
				map[string][]string{"G2": {"u8", "u9"}}},
			{"not owned group", func() error { return s.AddMembers(ctx, "nope", []string{"u1"}) },
				map[string][]string{"G2": {"u8", "u9"}}},
			{"bulk with a not owned group writes nothing", func() error {
				return s.AddMemberships(ctx, []Membership{{"G3", "u1"}, {"nope", "u1"}})
			}, map[string][]string{"G2": {"u8", "u9"}}},
		}
		for _, st := range steps {
			err := st.do()
			if strings.Contains(st.name, "not owned") {
				if !errors.Is(err, ErrNotOwned) {
					t.Errorf("%s: err = %v, want ErrNotOwned", st.name, err)
				}
			} else if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			got, err := s.Members(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("%s: Members() (-want +got):\n%s", st.name, diff)
			}
		}
		if err := s.SetMembers(ctx, "nope", nil); !errors.Is(err, ErrNotOwned) {
			t.Errorf("SetMembers(not owned) = %v", err)
		}
		if err := s.AddMembers(ctx, "G2", []string{""}); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddMembers(empty user) = %v", err)
		}
		if err := s.RemoveUserEverywhere(ctx, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("RemoveUserEverywhere(\"\") = %v", err)
		}
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		if _, ok, err := s.Meta(ctx, "k"); ok || err != nil {
			t.Fatalf("Meta(missing) = %v, %v", ok, err)
		}
		for _, v := range []string{"one", "", "two"} {
			if err := s.SetMeta(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.Meta(ctx, "k"); got != v || !ok || err != nil {
				t.Errorf("Meta(k) = %q, %v, %v; want %q", got, ok, err, v)
			}
		}
		if err := s.DeleteMeta(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Meta(ctx, "k"); ok {
			t.Error("DeleteMeta left the key")
		}
		if err := s.SetMeta(ctx, "", "x"); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetMeta(\"\") = %v", err)
		}
	})
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

		if _, ok, err := s.LastSuccess(ctx); ok || err != nil {
			t.Fatalf("LastSuccess on empty history = %v, %v", ok, err)
		}
		id1, err := s.StartRun(ctx, "cli", false, at(0))
		if err != nil {
			t.Fatal(err)
		}
		counts := Counts{Created: 3, MemberAdds: 250, Failed: 1}
		if err := s.FinishRun(ctx, id1, ResultPartial, counts, []string{"user \"x\": 400"}, "+ 3 users", at(1)); err != nil {
			t.Fatal(err)
		}
		// Run 2 is left open, as by a crash; run 3 closes it.
		id2, _ := s.StartRun(ctx, "schedule", false, at(10))
		id3, _ := s.StartRun(ctx, "webhook", false, at(20))
		if err := s.FinishRun(ctx, id3, ResultSuccess, Counts{}, nil, "no changes", at(21)); err != nil {
			t.Fatal(err)
		}
		id4, _ := s.StartRun(ctx, "manual", true, at(30))
		// A run with access changes keeps them (the counts are stored as JSON in both stores).
		accessCounts := Counts{Updated: 2, Access: AccessCounts{AssignmentsCreated: 13, PermissionSetsUpdated: 1, Failed: 1}}
		if err := s.FinishRun(ctx, id4, ResultSuccess, accessCounts, nil, "~ 2 users", at(31)); err != nil {
			t.Fatal(err)
		}

		runs, err := s.Runs(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []Run{
			{ID: id4, Trigger: "manual", DryRun: true, Started: at(30), Ended: at(31), Result: ResultSuccess, Counts: accessCounts, Plan: "~ 2 users"},
			{ID: id3, Trigger: "webhook", Started: at(20), Ended: at(21), Result: ResultSuccess, Plan: "no changes"},
			{ID: id2, Trigger: "schedule", Started: at(10), Ended: at(20), Result: ResultFailed, Errors: []string{InterruptedError}},
		}
		if diff := cmp.Diff(want, runs); diff != "" {
			t.Errorf("Runs(0) after pruning to 3 (-want +got):\n%s", diff)
		}
		if runs, _ := s.Runs(ctx, 1); len(runs) != 1 || runs[0].ID != id4 {
			t.Errorf("Runs(1) = %+v", runs)
		}
		// The dry run does not count as the last success.
		if got, ok, err := s.LastSuccess(ctx); !ok || err != nil || !got.Equal(at(21)) {
			t.Errorf("LastSuccess = %v, %v, %v; want %v", got, ok, err, at(21))
		}
		if _, err := s.GetRun(ctx, id1); !errors.Is(err, ErrRunNotFound) {
			t.Errorf("GetRun(pruned) = %v", err)
		}
		if err := s.FinishRun(ctx, id1, ResultSuccess, Counts{}, nil, "", at(40)); !errors.Is(err, ErrRunNotFound) {
			t.Errorf("FinishRun(pruned) = %v", err)
		}
		if err := s.FinishRun(ctx, id3, "great", Counts{}, nil, "", at(40)); !errors.Is(err, ErrInvalid) {
			t.Errorf("FinishRun(bad result) = %v", err)
		}
		if _, err := s.StartRun(ctx, "", false, at(40)); !errors.Is(err, ErrInvalid) {
			t.Errorf("StartRun(empty trigger) = %v", err)
		}

		// An open run reads back with zero Ended; too many errors are capped.
		id5, _ := s.StartRun(ctx, "cli", false, at(50))
		r, err := s.GetRun(ctx, id5)
		if err != nil || !r.Ended.IsZero() || r.Result != "" {
			t.Errorf("open run = %+v, %v", r, err)
		}
		errs := make([]string, 1500)
		for i := range errs {
			errs[i] = fmt.Sprintf("e%d", i)
		}
		if err := s.FinishRun(ctx, id5, ResultFailed, Counts{}, errs, "", at(51)); err != nil {
			t.Fatal(err)
		}
		r, _ = s.GetRun(ctx, id5)
		if len(r.Errors) != maxRunErrors+1 || r.Errors[maxRunErrors] != "... and 500 more errors" || r.Errors[0] != "e0" {
			t.Errorf("kept %d errors, last %q", len(r.Errors), r.Errors[len(r.Errors)-1])
		}
	}, WithKeepRuns(3))
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, loc string) {
		s, err := OpenStore(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutObjects(ctx, []Object{
			mustUser(t, "t1", scim.User{ExternalID: "u1", UserName: "a"}, t0),
			mustGroup(t, "tg", scim.Group{ExternalID: "g1", DisplayName: "G"}, t0),
		}); err != nil {
			t.Fatal(err)
		}
		must(t, s.AddMembers(ctx, "g1", []string{"u1"}))
		must(t, s.RecordPending(ctx, KindUser, []string{"u2"}, testNow))
		must(t, s.SetMeta(ctx, "last_full", "x"))
		id, err := s.StartRun(ctx, "cli", false, t0)
		must(t, err)
		must(t, s.FinishRun(ctx, id, ResultSuccess, Counts{Created: 2}, nil, "plan", t0.Add(time.Second)))
		wantUsers, _ := s.Objects(ctx, KindUser)
		must(t, s.Close())

		s = openStore(t, loc)
		gotUsers, _ := s.Objects(ctx, KindUser)
		if diff := cmp.Diff(wantUsers, gotUsers); diff != "" {
			t.Errorf("users after reopen (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"g1=tg"}, objectIDs(t, s, KindGroup)); diff != "" {
			t.Errorf("groups after reopen (-want +got):\n%s", diff)
		}
		if st, err := s.Stats(ctx); err != nil {
			t.Errorf("Stats after reopen: %v", err)
		} else if diff := cmp.Diff(Stats{Users: 1, Groups: 1, Memberships: 1, PendingUsers: 1}, st); diff != "" {
			t.Errorf("Stats after reopen (-want +got):\n%s", diff)
		}
		m, _ := s.Members(ctx)
		p, _ := s.Pending(ctx, KindUser)
		v, _, _ := s.Meta(ctx, "last_full")
		runs, _ := s.Runs(ctx, 0)
		if diff := cmp.Diff(map[string][]string{"g1": {"u1"}}, m); diff != "" {
			t.Errorf("members after reopen (-want +got):\n%s", diff)
		}
		if !p["u2"] || v != "x" || len(runs) != 1 || runs[0].Counts.Created != 2 {
			t.Errorf("after reopen: got pending %v meta %q runs %+v, want u2 pending, meta x, one run that created 2", p, v, runs)
		}
	})
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		must(t, s.PutObjects(ctx, []Object{mustGroup(t, "tg", scim.Group{ExternalID: "g1", DisplayName: "G"}, t0)}))
		must(t, s.AddMembers(ctx, "g1", []string{"u1"}))
		must(t, s.RecordPending(ctx, KindUser, []string{"u2"}, testNow))
		must(t, s.SetMeta(ctx, "source_fingerprint", "abc"))
		id, _ := s.StartRun(ctx, "cli", false, t0)
		must(t, s.FinishRun(ctx, id, ResultSuccess, Counts{}, nil, "", t0))

		must(t, s.Reset(ctx))
		if st, err := s.Stats(ctx); err != nil || st != (Stats{}) {
			t.Errorf("Stats after Reset = %+v, %v", st, err)
		}
		m, _ := s.Members(ctx)
		p, _ := s.Pending(ctx, KindUser)
		_, ok, _ := s.Meta(ctx, "source_fingerprint")
		runs, _ := s.Runs(ctx, 0)
		if len(objectIDs(t, s, KindGroup)) != 0 || len(m) != 0 || len(p) != 0 || ok || len(runs) != 1 {
			t.Errorf("after Reset: members %v pending %v meta %v runs %d", m, p, ok, len(runs))
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	eachStore(t, func(t *testing.T, s Store) {
		must(t, s.PutObjects(ctx, []Object{mustGroup(t, "tg", scim.Group{ExternalID: "g", DisplayName: "G"}, t0)}))
		const writers, each = 6, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers*each*3+100)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("u-%d-%03d", w, i)
					if err := s.RecordPending(ctx, KindUser, []string{id}, testNow); err != nil {
						errs <- err
					}
					if err := s.PutObjects(ctx, []Object{mustUser(t, "t"+id, scim.User{ExternalID: id}, t0)}); err != nil {
						errs <- err
					}
					if err := s.AddMembers(ctx, "g", []string{id}); err != nil {
						errs <- err
					}
				}
			})
		}
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 2 {
			readers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.Objects(ctx, KindUser); err != nil {
						errs <- err
					}
					if _, err := s.Members(ctx); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := len(objectIDs(t, s, KindUser)); n != writers*each {
			t.Errorf("%d users recorded, want %d", n, writers*each)
		}
		m, _ := s.Members(ctx)
		p, _ := s.Pending(ctx, KindUser)
		if len(m["g"]) != writers*each || len(p) != 0 {
			t.Errorf("%d members, %d pending; want %d, 0", len(m["g"]), len(p), writers*each)
		}
	}, WithRelaxedSync())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
