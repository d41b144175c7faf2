package client

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// simServer is a token-bucket rate limit as a target applies it, in virtual time.
type simServer struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Duration
}

// admit reports whether a request arriving at t is accepted, and the Retry-After (whole seconds,
// at least 1, as an HTTP header carries it) when it is not.
func (s *simServer) admit(t time.Duration) (bool, time.Duration) {
	s.tokens = math.Min(s.burst, s.tokens+(t-s.last).Seconds()*s.rate)
	s.last = t
	if s.tokens >= 1 {
		s.tokens--
		return true, 0
	}
	wait := (1 - s.tokens) / s.rate
	return false, time.Duration(math.Max(1, math.Ceil(wait))) * time.Second
}

var simTrace func(now time.Duration, l *Limiter, ev string)

type simEvent struct {
	at     time.Duration
	worker int
	kind   int // 0: ask the limiter, 1: response arrives
	seq    int
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simResult struct {
	fraction      float64 // accepted requests per second after warm-up, over the server's rate
	throttledFrac float64 // share of requests answered 429 after warm-up
	throttledAll  int
	sentAll       int
	finalRate     float64
	okPerSec      []int     // accepted requests in each virtual second
	ratePerSec    []float64 // the limiter's rate at the end of each virtual second
}

// simulate runs workers that each send one request at a time through one Limiter against a
// token-bucket server, in virtual time: latency is per response, with deterministic jitter. A
// throttled request waits its Retry-After before going back to the limiter, as the client's
// retry loop does.
func simulate(serverRate float64, serverBurst float64, workers int, latency time.Duration, total, warmup time.Duration, seed uint64) simResult {
	return simulateFrom(0, serverRate, serverBurst, workers, latency, total, warmup, seed)
}

// simulateFrom is simulate with the limiter starting at initial requests per second (0: its
// default).
func simulateFrom(initial, serverRate float64, serverBurst float64, workers int, latency time.Duration, total, warmup time.Duration, seed uint64) simResult {
	var now time.Duration
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := NewLimiter(LimiterConfig{Initial: initial, Max: 2000, Now: func() time.Time { return epoch.Add(now) }})
	srv := &simServer{rate: serverRate, burst: serverBurst, tokens: serverBurst}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	q := &simQueue{}
	seq := 0
	push := func(at time.Duration, w, kind int) {
		seq++
		heap.Push(q, simEvent{at: at, worker: w, kind: kind, seq: seq})
	}
	accepted := make([]bool, workers)
	retryAfter := make([]time.Duration, workers)
	for w := 0; w < workers; w++ {
		push(0, w, 0)
	}
	var res simResult
	okAfter, sentAfter, thrAfter := 0, 0, 0
	for q.Len() > 0 {
		e := heap.Pop(q).(simEvent)
		if e.at > total {
			break
		}
		for time.Duration(len(res.ratePerSec)+1)*time.Second <= e.at {
			res.ratePerSec = append(res.ratePerSec, lim.Rate())
			res.okPerSec = append(res.okPerSec, 0)
		}
		now = e.at
		switch e.kind {
		case 0:
			if d := lim.reserve(epoch.Add(now)); d > 0 {
				push(now+d, e.worker, 0)
				continue
			}
			lat := latency + time.Duration(rng.Int64N(int64(latency/2)+1)) - latency/4
			ok, ra := srv.admit(now + lat/2)
			accepted[e.worker], retryAfter[e.worker] = ok, ra
			res.sentAll++
			if now >= warmup {
				sentAfter++
				if ok {
					okAfter++
				} else {
					thrAfter++
				}
			}
			push(now+lat, e.worker, 1)
		case 1:
			if accepted[e.worker] {
				sec := int(now / time.Second)
				for len(res.okPerSec) <= sec {
					res.okPerSec = append(res.okPerSec, 0)
				}
				res.okPerSec[sec]++
				lim.success(epoch.Add(now))
				push(now, e.worker, 0)
			} else {
				res.throttledAll++
				lim.throttle(epoch.Add(now), retryAfter[e.worker])
				if simTrace != nil {
					simTrace(now, lim, "429")
				}
				push(now+retryAfter[e.worker], e.worker, 0)
			}
		}
	}
	secs := (total - warmup).Seconds()
	res.fraction = float64(okAfter) / secs / serverRate
	if sentAfter > 0 {
		res.throttledFrac = float64(thrAfter) / float64(sentAfter)
	}
	res.finalRate = lim.Rate()
	return res
}

// TestLimiterFindsUnknownLimit drives the limiter in virtual time against targets whose limit it
// is not told (5 to 100 req/s), and requires it to use at least 90% of each limit after a minute
// of adaptation, with fewer than 1% of requests throttled at the 20 req/s of the sync benchmark.
// Against targets without any burst allowance (burst 1) latency jitter alone makes requests arrive
// closer together than the limit, so no client keeps 90% of it: there the bar is 85% of what a
// perfectly even sender keeps (reachable). `make test` runs these cases without -race too, where
// the 50 and 100 req/s ones are not skipped.
func TestLimiterFindsUnknownLimit(t *testing.T) {
	even := func(rate float64) float64 { return 0.85 * reachable(rate, 1) / rate }
	for _, tc := range []struct {
		rate, burst  float64
		minFraction  float64
		maxThrottled float64 // 0: not checked
	}{
		{5, 5, 0.90, 0},
		{5, 1, even(5), 0},
		{20, 5, 0.90, 0.01},
		{20, 20, 0.90, 0.01},
		{20, 1, even(20), 0.01},
		{50, 10, 0.90, 0.01},
		{100, 20, 0.90, 0.01},
		{100, 100, 0.90, 0.01},
		{100, 1, even(100), 0.02},
	} {
		t.Run(fmt.Sprintf("rate=%v/burst=%v", tc.rate, tc.burst), func(t *testing.T) {
			t.Parallel()
			if raceEnabled && tc.rate > 20 {
				t.Skip("deterministic simulation, slow under -race; run without -race")
			}
			r := simulate(tc.rate, tc.burst, 16, 20*time.Millisecond, 400*time.Second, 60*time.Second, 1)
			t.Logf("server %v req/s burst %v: achieved %.1f%% of the limit, 429s after warm-up %.2f%%, all 429s %d of %d, final rate %.1f",
				tc.rate, tc.burst, 100*r.fraction, 100*r.throttledFrac, r.throttledAll, r.sentAll, r.finalRate)
			if r.fraction < tc.minFraction {
				t.Errorf("achieved %.3f of the limit, want >= %.2f", r.fraction, tc.minFraction)
			}
			if tc.maxThrottled > 0 && r.throttledFrac >= tc.maxThrottled {
				t.Errorf("429s after warm-up %.4f, want < %.2f", r.throttledFrac, tc.maxThrottled)
			}
		})
	}
}

// BenchmarkLimiterSimulation reports, per target limit, the fraction of the limit the limiter
// achieves after a minute of adaptation and the share of requests answered 429, in virtual
// time (10 virtual minutes per run). Run: go test -run '^$' -bench LimiterSimulation ./scim/client/
func BenchmarkLimiterSimulation(b *testing.B) {
	for _, rate := range []float64{5, 20, 100} {
		for _, burst := range []float64{1, rate / 4, rate} {
			b.Run(fmt.Sprintf("rate=%v/burst=%v", rate, burst), func(b *testing.B) {
				var r simResult
				for i := 0; i < b.N; i++ {
					r = simulate(rate, math.Max(1, burst), 16, 20*time.Millisecond, 600*time.Second, 60*time.Second, uint64(i+1))
				}
				b.ReportMetric(100*r.fraction, "%limit")
				b.ReportMetric(100*r.throttledFrac, "%429")
			})
		}
	}
}

// recovery is what a storm simulation shows, in whole virtual seconds from the start of the
// storm: when the limiter's rate first came down to 125% of the target's limit (the storm is
// over), when it was back at 90% of the reachable rate after that, how low it fell, and, over the
// minute after it was back, its mean rate and the share of the limit the target accepted.
type recovery struct {
	down, back  int // -1: never
	minRate     float64
	meanAft     float64
	acceptedAft float64
}

func recoveryOf(r simResult, reachable float64, limit float64) recovery {
	rec := recovery{down: -1, back: -1, minRate: math.Inf(1)}
	for i, rt := range r.ratePerSec {
		sec := i + 1 // ratePerSec[i] is the rate at the end of second i+1
		if rec.down < 0 && rt <= 1.25*limit {
			rec.down = sec
		}
		if rec.down >= 0 {
			rec.minRate = math.Min(rec.minRate, rt)
		}
		if rec.down >= 0 && rec.back < 0 && rt >= 0.9*reachable {
			rec.back = sec
		}
	}
	if rec.back < 0 {
		return rec
	}
	end := min(rec.back+60, len(r.ratePerSec), len(r.okPerSec))
	ok, sum := 0, 0.0
	for i := rec.back; i < end; i++ {
		ok += r.okPerSec[i]
		sum += r.ratePerSec[i]
	}
	if n := end - rec.back; n > 0 {
		rec.acceptedAft = float64(ok) / float64(n) / limit
		rec.meanAft = sum / float64(n)
	}
	return rec
}

// simJitter is the widest gap between the arrival jitter of two requests in the simulation:
// latency 20 ms +-25%, arriving at half of it, so +-2.5 ms each.
const simJitter = 5 * time.Millisecond

// reachable is the highest rate a perfectly even sender keeps below a target of rate req/s with
// burst 1 when arrivals jitter by simJitter: requests must be 1/rate + simJitter apart. A bigger
// burst absorbs the jitter.
func reachable(rate, burst float64) float64 {
	if burst > 1 {
		return rate
	}
	return math.Min(rate, 1/(1/rate+simJitter.Seconds()))
}

// TestLimiterSurvivesAStorm starts the limiter 50 times above targets of 5 to 100 req/s with a
// burst of 1 to 20 (8 writers, 20 ms latency, the target's Retry-After in whole seconds), as a
// client configured for a much faster target would, and requires its rate back at 90% of the
// target's limit within 60 s of the storm's start, and on average at 80% or more over the minute
// after (no second collapse). Against a burst of 1, arrival jitter alone makes requests closer
// than the limit; there the bar is 90% of what an even sender can keep (reachable), which is the
// limit itself up to about 22 req/s. It prints the figures per target. About a second under -race.
func TestLimiterSurvivesAStorm(t *testing.T) {
	for _, rate := range []float64{5, 10, 20, 50, 100} {
		for _, burst := range []float64{1, 2, 5, 10, 20} {
			t.Run(fmt.Sprintf("rate=%v/burst=%v", rate, burst), func(t *testing.T) {
				t.Parallel()
				r := simulateFrom(50*rate, rate, burst, 8, 20*time.Millisecond, 130*time.Second, 0, 3)
				reach := reachable(rate, burst)
				rec := recoveryOf(r, reach, rate)
				t.Logf("from %v req/s against %v req/s burst %v (reachable %.1f): storm over after %d s, back at 90%% after %d s, low point %.1f req/s; the minute after: mean rate %.1f, accepted %.1f%% of the limit",
					50*rate, rate, burst, reach, rec.down, rec.back, rec.minRate, rec.meanAft, 100*rec.acceptedAft)
				if rec.back < 0 || rec.back > 60 {
					t.Errorf("rate back at 90%% of %.1f req/s after %d s (-1: never), want within 60 s", reach, rec.back)
				}
				if rec.back >= 0 && rec.meanAft < 0.8*reach {
					t.Errorf("mean rate %.1f in the minute after, want >= %.1f", rec.meanAft, 0.8*reach)
				}
			})
		}
	}
}
