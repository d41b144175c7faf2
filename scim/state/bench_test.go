package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// The scale of issue 3: 100,000 users, 10,000 groups, 1,000,000 memberships (100 per group, 10
// groups per user).
const (
	benchUsers   = 100_000
	benchGroups  = 10_000
	benchPerGrp  = 100
	benchMembers = benchGroups * benchPerGrp
)

func benchUserObjects(b *testing.B) []Object {
	objs := make([]Object, benchUsers)
	for i := range objs {
		id := fmt.Sprintf("u%07d", i)
		u := scim.User{ExternalID: id, UserName: id + "@example.com", DisplayName: "User " + id, GivenName: "User", FamilyName: id,
			Email: id + "@example.com", EmailType: "work", Title: "Engineer", Active: true,
			Enterprise: scim.Enterprise{EmployeeNumber: id, Department: "R&D", Manager: fmt.Sprintf("u%07d", i/10)}}
		o, err := NewUserObject("tu-"+id, u, t0)
		if err != nil {
			b.Fatal(err)
		}
		objs[i] = o
	}
	return objs
}

func benchGroupObjects(b *testing.B) []Object {
	objs := make([]Object, benchGroups)
	for i := range objs {
		id := fmt.Sprintf("g%05d", i)
		o, err := NewGroupObject("tg-"+id, scim.Group{ExternalID: id, DisplayName: "Group " + id}, t0)
		if err != nil {
			b.Fatal(err)
		}
		objs[i] = o
	}
	return objs
}

func benchMemberships() []Membership {
	ms := make([]Membership, 0, benchMembers)
	for g := range benchGroups {
		for k := range benchPerGrp {
			ms = append(ms, Membership{Group: fmt.Sprintf("g%05d", g), User: fmt.Sprintf("u%07d", (g*benchPerGrp+k*7919)%benchUsers)})
		}
	}
	return ms
}

// benchBackends are the stores the benchmarks measure, side by side. PostgreSQL runs as pgtest
// starts it: without fsync unless SCIMBRIDGE_PGTEST_DURABLE=1, which the figures that compare
// commits (AddMembers batches, PutObjectOneByOne) need, since SQLite's commits are durable
// (synchronous=FULL).
var benchBackends = []string{"sqlite", "postgres"}

// benchStore opens a new, empty store of backend and returns it with a function that reports
// its size on disk.
func benchStore(b *testing.B, backend string) (Store, func()) {
	b.Helper()
	loc := filepath.Join(b.TempDir(), "state.db")
	if backend == "postgres" {
		loc = pgtest.URL(b)
	}
	s, err := OpenStore(context.Background(), loc)
	if err != nil {
		b.Fatal(err)
	}
	return s, func() { reportSize(b, s, loc) }
}

// reportSize reports the size of the SQLite file and its WAL, or of the PostgreSQL database.
func reportSize(b *testing.B, s Store, loc string) {
	var size int64
	if pg, ok := s.(*Postgres); ok {
		if err := pg.pool.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&size); err != nil {
			b.Fatal(err)
		}
	} else {
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(loc + suffix); err == nil {
				size += fi.Size()
			}
		}
	}
	b.ReportMetric(float64(size)/1e6, "store-MB")
}

// BenchmarkPutObjects writes 100,000 users, then 10,000 groups, each in one call, to a new store.
func BenchmarkPutObjects(b *testing.B) {
	for _, backend := range benchBackends {
		for _, tc := range []struct {
			name string
			objs func(*testing.B) []Object
		}{{"users=100000", benchUserObjects}, {"groups=10000", benchGroupObjects}} {
			b.Run(backend+"/"+tc.name, func(b *testing.B) {
				objs := tc.objs(b)
				ctx := context.Background()
				for b.Loop() {
					b.StopTimer()
					s, size := benchStore(b, backend)
					b.StartTimer()
					if err := s.PutObjects(ctx, objs); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					size()
					s.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(len(objs))*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
			})
		}
	}
}

// BenchmarkPutObjectOneByOne is the reconciler's pattern: one call (one durable commit) per
// created object. The figure is per call.
func BenchmarkPutObjectOneByOne(b *testing.B) {
	objs := benchUserObjects(b)
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			s, _ := benchStore(b, backend)
			defer s.Close()
			i := 0
			for b.Loop() {
				if err := s.PutObjects(ctx, objs[i%len(objs):i%len(objs)+1]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAddMembers records 1,000,000 memberships of 10,000 owned groups: in one bulk call
// (AddMemberships), and as the reconciler does it, one call per PATCH of 100.
func BenchmarkAddMembers(b *testing.B) {
	ctx := context.Background()
	groups := benchGroupObjects(b)
	ms := benchMemberships()
	for _, backend := range benchBackends {
		setup := func(b *testing.B) (Store, func()) {
			b.StopTimer()
			s, size := benchStore(b, backend)
			if err := s.PutObjects(ctx, groups); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			return s, size
		}
		b.Run(backend+"/bulk=1000000", func(b *testing.B) {
			for b.Loop() {
				s, size := setup(b)
				if err := s.AddMemberships(ctx, ms); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				size()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(len(ms))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(backend+"/batches=10000x100", func(b *testing.B) {
			users := make([]string, benchPerGrp)
			for b.Loop() {
				s, _ := setup(b)
				for g := 0; g < len(ms); g += benchPerGrp {
					for k := range users {
						users[k] = ms[g+k].User
					}
					if err := s.AddMembers(ctx, ms[g].Group, users); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(len(ms))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkLoad reads the whole state back for a trusted-state plan: Objects(users),
// Objects(groups) and Members, from a store holding 100,000 users, 10,000 groups and 1,000,000
// memberships.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	objs := append(benchUserObjects(b), benchGroupObjects(b)...)
	ms := benchMemberships()
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			s, size := benchStore(b, backend)
			defer s.Close()
			if err := s.PutObjects(ctx, objs); err != nil {
				b.Fatal(err)
			}
			if err := s.AddMemberships(ctx, ms); err != nil {
				b.Fatal(err)
			}
			size()
			for b.Loop() {
				users, err := s.Objects(ctx, KindUser)
				if err != nil {
					b.Fatal(err)
				}
				groups, err := s.Objects(ctx, KindGroup)
				if err != nil {
					b.Fatal(err)
				}
				members, err := s.Members(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(users) != benchUsers || len(groups) != benchGroups || len(members) != benchGroups {
					b.Fatalf("loaded %d users, %d groups, %d member lists", len(users), len(groups), len(members))
				}
			}
		})
	}
}

// BenchmarkSliceLoad reads the slice a change-feed run plans, from a store holding 100,000 users,
// 10,000 groups and 1,000,000 memberships: ObjectsByID of 10 users, MembersOf 5 groups, GroupsOf
// 10 users, the three together (slice), the three of a burst 100 times larger (1,000 users and
// 100 groups), against the whole load (Objects of users and groups,
// and Members) that they replace; and ObjectsByName of 10 userNames (in other cases), the
// holders of the names a selection's creates and renames want. Before measuring, it checks that
// the slice reads' plans look their ids (and names) up by key at this size (with the tables as
// the bulk load left them, before any ANALYZE, and after).
func BenchmarkSliceLoad(b *testing.B) {
	ctx := context.Background()
	objs := append(benchUserObjects(b), benchGroupObjects(b)...)
	ms := benchMemberships()
	spread := func(format string, n, of int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(format, i*(of/n)+i%7)
		}
		return ids
	}
	users, groups := spread("u%07d", 10, benchUsers), spread("g%05d", 5, benchGroups)
	burstUsers, burstGroups := spread("u%07d", 1000, benchUsers), spread("g%05d", 100, benchGroups)
	names := make([]string, len(users))
	for i, id := range users {
		names[i] = strings.ToUpper(id) + "@Example.com"
	}
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			s, _ := benchStore(b, backend)
			defer s.Close()
			if err := s.PutObjects(ctx, objs); err != nil {
				b.Fatal(err)
			}
			if err := s.AddMemberships(ctx, ms); err != nil {
				b.Fatal(err)
			}
			checkSlicePlans(b, s, slicePlans(b, s, append(slices.Clone(users), groups...), false))
			checkNamePlan(b, s, namePlan(b, s, names, false))
			if pg, ok := s.(*Postgres); ok {
				if _, err := pg.pool.Exec(ctx, "ANALYZE objects, members"); err != nil {
					b.Fatal(err)
				}
			}
			checkSlicePlans(b, s, slicePlans(b, s, append(slices.Clone(burstUsers), burstGroups...), false))
			checkNamePlan(b, s, namePlan(b, s, names, false))
			objectsByID := func(b *testing.B) {
				if got, err := s.ObjectsByID(ctx, KindUser, users); err != nil || len(got) != len(users) {
					b.Fatalf("ObjectsByID = %d objects, %v; want %d", len(got), err, len(users))
				}
			}
			membersOf := func(b *testing.B) {
				if got, err := s.MembersOf(ctx, groups); err != nil || len(got) != len(groups) {
					b.Fatalf("MembersOf = %d groups, %v; want %d", len(got), err, len(groups))
				}
			}
			groupsOf := func(b *testing.B) {
				if got, err := s.GroupsOf(ctx, users); err != nil || len(got) == 0 {
					b.Fatalf("GroupsOf = %d groups, %v", len(got), err)
				}
			}
			for _, tc := range []struct {
				name string
				read func(*testing.B)
			}{
				{"ObjectsByID=10", objectsByID},
				{"MembersOf=5", membersOf},
				{"GroupsOf=10", groupsOf},
				{"ObjectsByName=10", func(b *testing.B) {
					if got, err := s.ObjectsByName(ctx, KindUser, names); err != nil || len(got) != len(names) {
						b.Fatalf("ObjectsByName = %d objects, %v; want %d", len(got), err, len(names))
					}
				}},
				{"slice", func(b *testing.B) { objectsByID(b); membersOf(b); groupsOf(b) }},
				{"slice=1000+100", func(b *testing.B) {
					got, err := s.ObjectsByID(ctx, KindUser, burstUsers)
					if err != nil || len(got) != len(burstUsers) {
						b.Fatalf("ObjectsByID = %d objects, %v; want %d", len(got), err, len(burstUsers))
					}
					if got, err := s.MembersOf(ctx, burstGroups); err != nil || len(got) != len(burstGroups) {
						b.Fatalf("MembersOf = %d groups, %v; want %d", len(got), err, len(burstGroups))
					}
					if _, err := s.GroupsOf(ctx, burstUsers); err != nil {
						b.Fatal(err)
					}
				}},
				{"whole", func(b *testing.B) {
					for _, kind := range []Kind{KindUser, KindGroup} {
						if _, err := s.Objects(ctx, kind); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := s.Members(ctx); err != nil {
						b.Fatal(err)
					}
				}},
			} {
				b.Run(tc.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						tc.read(b)
					}
				})
			}
		})
	}
}
