package ldap_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/connectors/ldap/ldaptest"
)

// benchFeed edits one user per iteration (a title change) and waits for the feed's batch,
// then reads the user with ReadEntries. Each edit waits a random part of jitter first (the
// poll interval: edits land anywhere between two polls, not just after one). It reports the latency from the end of the edit to
// the batch (p50, p95, max) and the LDAP requests per change, counted from the start of the
// poll that saw it (pushed: from the edit) to the end of ReadEntries.
func benchFeed(b *testing.B, run *watchRun, src connectors.Source, proxy *ldaptest.Proxy, pollStart func(int64) int64, jitter time.Duration, admin *goldap.Conn, dn, idAttr string) {
	id := idOf(b, admin, dn, idAttr)
	var lat []time.Duration
	var reqs int64
	b.ResetTimer()
	for i := range b.N {
		if jitter > 0 {
			b.StopTimer()
			time.Sleep(rand.N(jitter))
			b.StartTimer()
		}
		before := proxy.Requests()
		start := time.Now()
		modify(b, admin, dn, func(m *goldap.ModifyRequest) {
			m.Replace("title", []string{"T" + time.Now().Format(time.RFC3339Nano) + string(rune('a'+i%26))})
		})
		edited := time.Now()
		_, d, _ := run.waitFor(b, id, start, 60*time.Second)
		lat = append(lat, max(0, d.at.Sub(edited)))
		if pollStart != nil {
			before = pollStart(d.poll)
		}
		if _, _, err := src.(connectors.TargetedReader).ReadEntries(context.Background(), []string{id}, nil); err != nil {
			b.Fatal(err)
		}
		reqs += proxy.Requests() - before
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(reqs)/float64(b.N), "requests/change")
}

// BenchmarkSyncreplLatency measures a change pushed by slapd's syncprov. Run it with
//
//	go test -run '^$' -bench SyncreplLatency -benchtime 50x ./connectors/ldap/
func BenchmarkSyncreplLatency(b *testing.B) {
	s := startFixtureSlapd(b)
	src, proxy, _ := olFeedSource(b, s, ldap.FeedSyncrepl)
	admin := admin2(b, s)
	run := startWatch(b, openFeed(b, src, ldap.FeedSyncrepl), "")
	run.next(b, 10*time.Second)
	benchFeed(b, run, src, proxy, nil, 0, admin, "uid=alice,"+olPeople, "entryUUID")
}

// BenchmarkDirSyncLatency measures a change seen by DirSync (and by uSNChanged polling) of the
// Samba AD DC every 5 s (the interval the freshness goal names). Run it with
//
//	go test -run '^$' -bench DirSyncLatency -benchtime 20x ./connectors/ldap/
func BenchmarkDirSyncLatency(b *testing.B) {
	for _, mode := range []string{ldap.FeedDirSync, ldap.FeedUSN} {
		b.Run(mode, func(b *testing.B) {
			s := adSamba(b)
			admin := adminConn(b, s.URL, ldaptest.SambaAdmin, ldaptest.SambaPassword)
			users, groups, _ := adFeedFixture(b, admin, "bench")
			proxy := ldaptest.StartProxy(b, "127.0.0.1:389")
			cfg := adConfig(s)
			cfg.URL, cfg.StartTLS = proxy.URL, false
			cfg.Users.BaseDN, cfg.Groups.BaseDN = users, groups
			cfg.Feed = ldap.FeedConfig{Mode: mode, PollInterval: 5 * time.Second}
			src, err := cfg.Open(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = src.Close() })
			fd := openFeed(b, src, mode)
			var mu sync.Mutex
			starts := map[int64]int64{}
			ldap.SetFeedPollHook(fd, func(n int64) { mu.Lock(); starts[n] = proxy.Requests(); mu.Unlock() })
			run := startWatch(b, fd, "")
			run.next(b, 10*time.Second)
			benchFeed(b, run, src, proxy, func(n int64) int64 { mu.Lock(); defer mu.Unlock(); return starts[n] }, cfg.Feed.PollInterval, admin, "CN=fa,"+users, "objectGUID")
		})
	}
}
