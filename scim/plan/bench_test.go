package plan

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/scimbridge/scimbridge/scim"
)

// largeWorld builds a desired snapshot of users, groups and memberships and the target state that
// holds exactly it, owned by scimbridge.
func largeWorld(users, groups, memberships int) (scim.Snapshot, scim.TargetState, Owned) {
	r := rand.New(rand.NewPCG(1, 2))
	var s scim.Snapshot
	var t scim.TargetState
	owned := Owned{Users: make(map[string]string, users), Groups: make(map[string]string, groups)}
	for i := range users {
		u := user(fmt.Sprintf("u%07d", i), fmt.Sprintf("user%07d", i))
		s.Users = append(s.Users, u)
		id := fmt.Sprintf("tu-%07d", i)
		t.Users = append(t.Users, scim.TargetUser{ID: id, User: u})
		owned.Users[id] = u.ExternalID
	}
	per := memberships / groups
	for g := range groups {
		grp := scim.Group{ExternalID: fmt.Sprintf("g%05d", g), DisplayName: fmt.Sprintf("group%05d", g)}
		tg := scim.TargetGroup{ID: fmt.Sprintf("tg-%05d", g), ExternalID: grp.ExternalID, DisplayName: grp.DisplayName}
		start := r.IntN(users)
		for k := range per {
			i := (start + k) % users
			grp.Members = append(grp.Members, s.Users[i].ExternalID)
			tg.Members = append(tg.Members, t.Users[i].ID)
		}
		s.Groups = append(s.Groups, grp)
		t.Groups = append(t.Groups, tg)
		owned.Groups[tg.ID] = grp.ExternalID
	}
	return scim.Normalize(s), t, owned
}

func benchmarkCompute(b *testing.B, users, groups, memberships int, empty bool) {
	desired, current, owned := largeWorld(users, groups, memberships)
	if empty {
		current, owned = scim.TargetState{}, Owned{}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var p *Plan
	for range b.N {
		p = Compute(desired, current, owned, Options{})
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MB")
	if empty && len(p.CreateUsers) != users || !empty && !p.Empty() {
		b.Fatalf("unexpected plan: %d creates, empty %v", len(p.CreateUsers), p.Empty())
	}
}

// BenchmarkCompute plans 100,000 users, 10,000 groups and 1,000,000 memberships: once against a
// target that already holds them (the no-change run) and once against an empty target (the
// initial sync). Run with -benchmem; heap-MB is the live heap after the last plan.
func BenchmarkCompute(b *testing.B) {
	b.Run("no-change/100k-10k-1M", func(b *testing.B) { benchmarkCompute(b, 100_000, 10_000, 1_000_000, false) })
	b.Run("initial/100k-10k-1M", func(b *testing.B) { benchmarkCompute(b, 100_000, 10_000, 1_000_000, true) })
}
