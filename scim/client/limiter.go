package client

import (
	"context"
	"math"
	"sync"
	"time"
)

// LimiterConfig configures an adaptive Limiter. Rates are in requests per second. The zero value
// is usable: it starts at 5 req/s and may settle anywhere between 0.5 and 1000 req/s.
type LimiterConfig struct {
	// Initial is the starting rate; 0 means 5.
	Initial float64
	// Min is the floor the rate is never cut below; 0 means 0.5.
	Min float64
	// Max is the ceiling the rate never grows beyond; 0 means 1000.
	Max float64
	// Burst is how many requests may start at once after an idle spell or a pause; 0 means
	// a quarter of a second's worth of the current rate, at least 1.
	Burst int
	// Now is the clock; nil means time.Now. Tests and simulations pass a fake one.
	Now func() time.Time
}

// Limiter is an adaptive token bucket shared by every request to one target. The target's real
// limit is unknown to the client, so the limiter searches for it: it grows quickly until the first
// throttle (slow start), then additively-multiplicatively: it grows by a small fraction per second
// while requests succeed and are held back by the bucket, cuts the rate on a throttle
// (429 or ThrottlingException), and pauses the whole bucket for the Retry-After the target asked
// for. Several throttles that answer requests sent at the same old rate cause only one cut.
//
// After a storm (a rate far above the target's, such as a start at 50 times its limit) the cut
// takes what really went out and what the target accepted, not the rate, and the limiter then
// grows back at +25%/s until the next throttle, since that count is only a lower bound of the
// limit. A throttle of the burst that resumes after a pause halves the burst instead of the rate
// (a target whose bucket holds a request or two); the burst doubles back after calm spells.
//
// A Limiter is safe for concurrent use; a nil *Limiter never waits.
type Limiter struct {
	mu  sync.Mutex
	now func() time.Time

	min, max   float64
	burstFixed int

	rate           float64   // current rate, req/s
	tokens         float64   // available tokens
	last           time.Time // when tokens were last refilled
	pauseUntil     time.Time // no request starts before this
	slowStart      bool      // no throttle seen yet: grow fast
	regrow         bool      // the last cut came from a storm: its limit is only a lower bound, grow back fast
	wmax           float64   // the rate at the last throttle: the best guess of the target's limit
	probe          float64   // seconds spent at or above wmax while saturated since the last cut
	lastGrow       time.Time // when the rate last grew
	lastShort      time.Time // when a caller last had to wait for a token (the bucket is the bottleneck)
	lastCut        time.Time // when the rate was last cut
	lastThrottle   time.Time // when the target last refused a request
	saturatedSince time.Time // start of the current spell in which callers kept waiting for tokens
	started        bool
	okTimes        [512]time.Time // ring of recent successes, to measure the rate the target accepted
	okNext         int            // where the next success is written
	okTail         int            // oldest success counted by recent
	okCount        int            // successes from okTail up to okNext
	sentTimes      [512]time.Time // ring of recent grants, to measure the rate requests really went out at
	sentNext       int
	burstCap       float64   // the largest burst the target took after a pause (0: no limit known)
	lastBurstCut   time.Time // when burstCap was last halved
}

// Tuning of the search. Growth rates are fractions of the current rate per second.
const (
	limSlowStartGrowth = 0.5    // +50%/s until the first throttle
	limRegrowth        = 0.25   // +25%/s after a storm, until the next throttle
	limRecover         = 0.05   // +5%/s back up to the rate of the last throttle
	limProbe           = 0.0002 // then above it: +0.02% x t^2 (t in s): +2% after 10 s, +8% after 20 s
	limCut             = 0.9    // on a throttle: we were just above the limit
	limCutCooldown     = 2 * time.Second
	limProbeGrace      = 3.0                    // seconds of probing above wmax before a throttle confirms it
	limFar             = 0.7                    // accepted below this share of the rate: far over the limit
	limBusy            = 0.7                    // grow only while successes reach this share of the rate
	limCalm            = time.Second            // no growth until this long after the last throttle
	limWindow          = 2 * time.Second        // how far back accepted requests are counted
	limMaxGrowStep     = time.Second            // an idle spell does not turn into a jump of the rate
	limResume          = 250 * time.Millisecond // a throttle this soon after a pause (at most half a request's spacing) refused the burst that resumed
	limBurstCalm       = 30 * time.Second       // burstCap doubles after this long without such a throttle
)

// NewLimiter returns an adaptive limiter configured by cfg (zero fields take their defaults).
func NewLimiter(cfg LimiterConfig) *Limiter {
	l := &Limiter{now: cfg.Now, min: cfg.Min, max: cfg.Max, burstFixed: cfg.Burst, rate: cfg.Initial, slowStart: true}
	if l.now == nil {
		l.now = time.Now
	}
	if l.min <= 0 {
		l.min = 0.5
	}
	if l.max <= 0 {
		l.max = 1000
	}
	if l.max < l.min {
		l.max = l.min
	}
	if l.rate <= 0 {
		l.rate = 5
	}
	l.rate = math.Min(math.Max(l.rate, l.min), l.max)
	return l
}

// Rate returns the current rate in requests per second.
func (l *Limiter) Rate() float64 {
	if l == nil {
		return math.Inf(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// Wait blocks until a request may start, or ctx is done (then it returns ctx's error).
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := l.reserve(l.now())
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// OnThrottle tells the limiter that the target refused a request for its rate. retryAfter is
// the pause the target asked for (0 when it did not say).
func (l *Limiter) OnThrottle(retryAfter time.Duration) {
	if l != nil {
		l.throttle(l.now(), retryAfter)
	}
}

// OnSuccess tells the limiter that a request was accepted (any answer but a throttle counts).
func (l *Limiter) OnSuccess() {
	if l != nil {
		l.success(l.now())
	}
}

func (l *Limiter) burst() float64 {
	if l.burstFixed > 0 {
		return float64(l.burstFixed)
	}
	b := math.Max(1, l.rate/4)
	if l.burstCap > 0 {
		b = math.Max(1, math.Min(b, l.burstCap))
	}
	return b
}

// refill adds the tokens earned since l.last, up to the burst. Tokens are earned during a pause
// too (the target refills its own bucket meanwhile), so the limiter resumes with a burst.
func (l *Limiter) refill(now time.Time) {
	if !l.started {
		l.started = true
		l.last = now
		l.lastGrow = now
		l.tokens = 1
		return
	}
	if now.After(l.last) {
		l.tokens = math.Min(l.burst(), l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	if now.After(l.last) {
		l.last = now
	}
}

// reserve takes a token at now if one is available and returns 0; otherwise it returns how long
// to wait before trying again.
func (l *Limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if !now.Before(l.pauseUntil) && l.tokens >= 1 {
		l.tokens--
		l.sentTimes[l.sentNext] = now
		l.sentNext = (l.sentNext + 1) % len(l.sentTimes)
		return 0
	}
	if now.Sub(l.lastShort) > time.Second {
		l.saturatedSince = now
	}
	l.lastShort = now
	if now.Before(l.pauseUntil) {
		return l.pauseUntil.Sub(now)
	}
	d := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

func (l *Limiter) success(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	l.okTimes[l.okNext] = now
	l.okNext = (l.okNext + 1) % len(l.okTimes)
	if l.okCount == len(l.okTimes) {
		l.okTail = l.okNext
	} else {
		l.okCount++
	}
	if l.burstCap > 0 && now.Sub(l.lastBurstCut) >= limBurstCalm {
		l.burstCap *= 2
		l.lastBurstCut = now
		if l.burstCap >= l.rate/4 {
			l.burstCap = 0
		}
	}
	dt := now.Sub(l.lastGrow)
	if dt <= 0 {
		return
	}
	l.lastGrow = now
	// Grow only while the bucket is what holds requests back; a client that sends less than
	// the rate allows learns nothing about the target's limit.
	if now.Sub(l.lastShort) > time.Second || now.Before(l.pauseUntil) || now.Sub(l.lastThrottle) < limCalm {
		return
	}
	// Nor while the target accepts clearly less than the rate (the client itself is slower).
	if l.recent(now) < limBusy*math.Min(l.rate, float64(len(l.okTimes))) {
		return
	}
	if dt > limMaxGrowStep {
		dt = limMaxGrowStep
	}
	s := dt.Seconds()
	switch {
	case l.slowStart:
		l.rate *= 1 + limSlowStartGrowth*s
	case l.regrow:
		l.rate *= 1 + limRegrowth*s
	case l.rate < l.wmax:
		l.rate = math.Min(l.wmax, l.rate*(1+limRecover*s))
	default:
		// Probe above the last limit, slowly at first and faster the longer it holds (the
		// limit may have been raised), as TCP CUBIC does.
		l.probe += s
		l.rate += l.wmax * 2 * limProbe * l.probe * s
	}
	l.rate = math.Min(l.max, l.rate)
}

// recent returns how many requests succeeded in the last second (at most len(okTimes)).
func (l *Limiter) recent(now time.Time) float64 {
	for l.okCount > 0 && now.Sub(l.okTimes[l.okTail]) > time.Second {
		l.okTail = (l.okTail + 1) % len(l.okTimes)
		l.okCount--
	}
	return float64(l.okCount)
}

// accepted returns the rate of successes over the last limWindow, not counting a pause or a
// spell in which the limiter did not hold callers back (such a count says nothing about the
// target); 0 when less than a second is left to count.
func (l *Limiter) accepted(now time.Time) float64 {
	from := now.Add(-limWindow)
	for _, t := range []time.Time{l.saturatedSince, l.pauseUntil} {
		if t.After(from) {
			from = t
		}
	}
	if now.Sub(from) < time.Second {
		return 0
	}
	n := 0
	for _, t := range l.okTimes {
		if !t.IsZero() && t.After(from) && !t.After(now) {
			n++
		}
	}
	if n < 4 {
		return 0
	}
	return float64(n) / now.Sub(from).Seconds()
}

// sent returns the rate at which requests went out over the last limWindow (0 when less than a
// second is known). In a storm, requests wait out their Retry-After, so far fewer go out than
// the rate allows: the rate then says nothing about the target, what went out does.
func (l *Limiter) sent(now time.Time) float64 {
	from := now.Add(-limWindow)
	if l.pauseUntil.After(from) {
		from = l.pauseUntil // a pause the limiter itself kept says nothing about the target
	}
	if now.Sub(from) < time.Second/2 {
		return 0
	}
	n := 0
	for _, t := range l.sentTimes {
		if !t.IsZero() && t.After(from) && !t.After(now) {
			n++
		}
	}
	if n < 4 || n == len(l.sentTimes) {
		return 0 // too little to count, or more than the ring holds
	}
	return float64(n) / now.Sub(from).Seconds()
}

func (l *Limiter) throttle(now time.Time, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	l.lastThrottle = now
	resume := min(limResume, time.Duration(float64(time.Second)/(2*l.rate)))
	if !l.pauseUntil.IsZero() && !now.Before(l.pauseUntil) && now.Sub(l.pauseUntil) < resume {
		// Refused in the burst that resumed after a pause: the target takes smaller bursts (its
		// Retry-After is in whole seconds, its bucket may hold one request), not a lower rate.
		l.burstCap = math.Max(1, l.burst()/2)
		l.lastBurstCut = now
		l.tokens = math.Min(l.tokens, 0)
		return
	}
	if now.Sub(l.lastCut) >= limCutCooldown || l.lastCut.IsZero() {
		// wmax, the best guess of the target's limit, is the rate at the throttle, corrected
		// when that rate is known to overshoot.
		w := l.rate
		// A rate far above what really went out (the requests were waiting out Retry-After)
		// overshoots the target by at least that much.
		far := false
		if s := l.sent(now); s > 0 && s < limFar*w {
			w, far = s, true
		}
		// What the target accepted just now, when known, bounds the limit when the rate
		// overshoots it far (slow start, or a limit that was lowered); near the limit the
		// count is too noisy to beat the rate itself.
		if a := l.accepted(now); a > 0 && (a < limFar*w || (l.slowStart || l.regrow) && a < w) {
			far = far || a < limFar*w
			w = a
		}
		switch {
		case l.slowStart, l.regrow:
		case l.probe < limProbeGrace:
			// Throttled before probing above the last limit for long: that limit was too high.
			w = math.Min(w, l.wmax) * (1 + limCut) / 2
		}
		l.wmax = w
		// After a storm the count is only a lower bound of the limit: what went out while
		// most requests waited out a Retry-After. Grow back fast until the next throttle, but
		// not again right after such a climb (a target that refuses any burst ends it far too).
		l.regrow = far && !l.regrow
		l.slowStart = false
		l.rate = math.Max(l.min, l.wmax*limCut)
		l.probe = 0
		l.lastCut = now
		l.lastGrow = now
		if retryAfter > 0 {
			if p := now.Add(retryAfter); p.After(l.pauseUntil) {
				l.pauseUntil = p
			}
		}
	}
	l.tokens = math.Min(l.tokens, 0)
}
