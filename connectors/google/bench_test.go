package google

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead reads 10,000 users and 1,000 groups (10 members each) from the fake with 20 ms
// latency on every answer, and prints the requests against the minimum paging allows and the
// wall time against (requests / concurrency) x latency. On a busy machine answers take longer
// than 20 ms; the figure "x-observed" divides the wall time by (sum of the observed request
// times / concurrency) instead, which is what the connector's scheduling controls. Run it with:
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 1x ./connectors/google/
func BenchmarkRead(b *testing.B) {
	const (
		users, groups, perGroup = 10000, 1000, 10
		latency                 = 20 * time.Millisecond
	)
	for _, conc := range []int{4, 10, 25} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			e := newEnv(b)
			seedLarge(e.fake, users, groups, perGroup, perGroup)
			e.fake.SetLatency(latency)
			s := e.open(b, func(c *Config) { c.Concurrency = conc })
			timed := &timedTransport{base: s.tr.base}
			s.tr.base = timed
			minimum := minRequests(users, groups, func(int) int { return perGroup })
			// The token is fetched once per source: fetch it before timing.
			if _, err := s.svc.Users.Get("warm-up").Do(); err == nil {
				b.Fatal("warm-up user exists")
			}
			b.ResetTimer()
			for range b.N {
				e.fake.ResetRequests()
				timed.reset()
				cpu0 := cpuTime()
				start := time.Now()
				d, err := s.Read(context.Background())
				wall := time.Since(start)
				cpu := cpuTime() - cpu0
				if err != nil {
					b.Fatalf("Read: %v", err)
				}
				if len(d.Users) != users || len(d.Groups) != groups {
					b.Fatalf("read %d users, %d groups", len(d.Users), len(d.Groups))
				}
				reqs := len(e.fake.Requests())
				bound := time.Duration(float64(reqs) / float64(conc) * float64(latency))
				observed := timed.total() / time.Duration(conc)
				b.ReportMetric(float64(reqs), "requests")
				b.ReportMetric(wall.Seconds()/bound.Seconds(), "x-bound")
				b.ReportMetric(wall.Seconds()/observed.Seconds(), "x-observed")
				b.Logf("concurrency %d: %d requests (minimum %d); wall %s; (requests/concurrency) x latency = %s, ratio %.3f (target <= 1.2); "+
					"mean observed request %s, ratio to observed %.3f; CPU of client and fake %s",
					conc, reqs, minimum, wall.Round(time.Millisecond), bound.Round(time.Millisecond), wall.Seconds()/bound.Seconds(),
					(timed.total() / time.Duration(reqs)).Round(100*time.Microsecond), wall.Seconds()/observed.Seconds(), cpu.Round(time.Millisecond))
				if reqs != minimum {
					b.Errorf("requests = %d, want the minimum %d", reqs, minimum)
				}
			}
		})
	}
}

// timedTransport adds up the time requests spend between being sent and answered.
type timedTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	sum  time.Duration
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.mu.Lock()
	t.sum += time.Since(start)
	t.mu.Unlock()
	return resp, err
}

func (t *timedTransport) reset()               { t.mu.Lock(); t.sum = 0; t.mu.Unlock() }
func (t *timedTransport) total() time.Duration { t.mu.Lock(); defer t.mu.Unlock(); return t.sum }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
