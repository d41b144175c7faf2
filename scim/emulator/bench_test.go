package emulator_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
)

// Benchmarks print figures; none fails on time. Run with:
//
//	go test -run '^$' -bench . -benchtime 1x ./scim/emulator/

func BenchmarkCreateUser(b *testing.B) {
	_, c := start(b, emulator.Options{})
	b.ResetTimer()
	for i := range b.N {
		c.createUser(fmt.Sprintf("bench-%d", i))
	}
}

// BenchmarkLoad pushes 10k users, 1k groups and 60k memberships (100 per PATCH) through SCIM,
// then reads them back through every listing, and reports the time of each phase.
func BenchmarkLoad(b *testing.B) {
	const users, groups, perGroup = 10000, 1000, 60
	for range b.N {
		srv, c := start(b, emulator.Options{})
		t0 := time.Now()
		ids := make([]string, users)
		for i := range users {
			ids[i] = c.createUser(fmt.Sprintf("load-%05d", i))
		}
		t1 := time.Now()
		gids := make([]string, groups)
		for g := range groups {
			gids[g] = c.createGroup(fmt.Sprintf("group-%04d", g))
		}
		t2 := time.Now()
		var ops []map[string]any
		flush := func(gid string) {
			if len(ops) > 0 {
				var ms []any
				for _, o := range ops {
					ms = append(ms, o)
				}
				c.must(204, "PATCH", "/Groups/"+gid, patch(op("add", "members", ms)))
				ops = ops[:0]
			}
		}
		for g, gid := range gids {
			for k := range perGroup {
				ops = append(ops, map[string]any{"value": ids[(g*perGroup+k)%users]})
			}
			flush(gid)
		}
		t3 := time.Now()
		n := 0
		for cursor := ""; ; {
			r := c.must(200, "GET", "/Users?cursor="+url.QueryEscape(cursor), nil)
			n += len(r.resources())
			next, _ := r.body["nextCursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		t4 := time.Now()
		for _, uid := range ids[:1000] {
			c.must(200, "GET", "/Groups?filter="+url.QueryEscape(`members.value eq "`+uid+`"`), nil)
		}
		t5 := time.Now()
		d, err := srv.Emu.Dump()
		if err != nil || len(d.Memberships) != groups*perGroup || n != users {
			b.Fatalf("dump %s, listed %d users, err %v", d.Counts(), n, err)
		}
		t6 := time.Now()
		b.ReportMetric(float64(users)/t1.Sub(t0).Seconds(), "user-creates/s")
		b.ReportMetric(float64(groups)/t2.Sub(t1).Seconds(), "group-creates/s")
		b.ReportMetric(float64(groups*perGroup)/t3.Sub(t2).Seconds(), "memberships/s")
		b.ReportMetric(float64(users)/t4.Sub(t3).Seconds(), "users-listed/s")
		b.ReportMetric(1000/t5.Sub(t4).Seconds(), "member-filters/s")
		b.ReportMetric(t6.Sub(t5).Seconds()*1000, "dump-ms")
	}
}
