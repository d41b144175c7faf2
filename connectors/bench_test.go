package connectors

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim"
)

// generate builds a directory of nUsers users and nGroups groups holding nMembers memberships in
// all, a tenth of the groups nested in another, with DN keys and managers by DN.
func generate(nUsers, nGroups, nMembers int, seed uint64) *Directory {
	r := rand.New(rand.NewPCG(seed, 7))
	d := &Directory{Users: make([]Entry, nUsers), Groups: make([]Entry, nGroups)}
	dn := func(i int) string { return "CN=User " + strconv.Itoa(i) + ",OU=People,DC=example,DC=com" }
	for i := range nUsers {
		id := fmt.Sprintf("u%07d", i)
		attrs := map[string][]string{
			"mail":       {id + "@example.com"},
			"givenName":  {"Given" + strconv.Itoa(i)},
			"sn":         {"Family" + strconv.Itoa(i)},
			"title":      {"Engineer"},
			"department": {"Dept" + strconv.Itoa(i%50)},
		}
		if i > 0 {
			attrs["manager"] = []string{dn(r.IntN(i))}
		}
		if i%97 == 0 {
			attrs["disabled"] = []string{"true"}
		}
		d.Users[i] = Entry{ID: id, Keys: []string{dn(i)}, Attributes: attrs}
	}
	for g := range nGroups {
		d.Groups[g] = Entry{ID: fmt.Sprintf("g%06d", g), Keys: []string{"CN=Group " + strconv.Itoa(g) + ",OU=Groups,DC=example,DC=com"},
			Attributes: map[string][]string{"cn": {"Group " + strconv.Itoa(g)}}}
	}
	if nGroups == 0 {
		return d
	}
	for range nMembers {
		g := r.IntN(nGroups)
		u := r.IntN(nUsers)
		ref := d.Users[u].ID
		if u%2 == 0 {
			ref = dn(u)
		}
		d.Groups[g].Members = append(d.Groups[g].Members, ref)
	}
	for g := 1; g < nGroups; g += 10 {
		parent := r.IntN(g)
		d.Groups[parent].Members = append(d.Groups[parent].Members, d.Groups[g].Keys[0])
	}
	return d
}

// BenchmarkApply maps 100,000 users, 10,000 groups and 1,000,000 memberships (LDAP-like: members
// and managers by DN, nested groups). Run:
//
//	go test -run '^$' -bench Apply -benchtime 3x ./connectors/
func BenchmarkApply(b *testing.B) {
	for _, size := range []struct{ users, groups, members int }{
		{10_000, 1_000, 100_000},
		{100_000, 10_000, 1_000_000},
	} {
		b.Run(fmt.Sprintf("users=%d/groups=%d/members=%d", size.users, size.groups, size.members), func(b *testing.B) {
			d := generate(size.users, size.groups, size.members, 1)
			m, err := Compile(testFlavour, MappingConfig{}, ScopeConfig{UserMode: UserModeAll})
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu0 := cpuTime()
			start := time.Now()
			var snap scim.Snapshot
			b.ResetTimer()
			for b.Loop() {
				snap = m.Apply(d)
				if len(snap.Users) == 0 {
					b.Fatal("no users")
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			per := time.Since(start) / time.Duration(b.N)
			// CPU time (all threads, GC included) is steadier than wall time on a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/apply")
			b.ReportMetric(float64(per.Milliseconds()), "ms/apply")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MB-alloc/apply")
			// How much of it is scim.Normalize (run again on its own output, which costs the same).
			cpu0 = cpuTime()
			scim.Normalize(snap)
			b.ReportMetric(float64((cpuTime() - cpu0).Milliseconds()), "cpu-ms-normalize")
			members := 0
			for _, g := range snap.Groups {
				members += len(g.Members)
			}
			b.ReportMetric(float64(members), "flat-members")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
