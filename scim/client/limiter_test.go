package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLimiterBasics(t *testing.T) {
	var nilLim *Limiter
	if err := nilLim.Wait(context.Background()); err != nil {
		t.Errorf("nil limiter Wait: %v", err)
	}
	nilLim.OnThrottle(time.Second)
	nilLim.OnSuccess()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(LimiterConfig{Initial: 10, Burst: 1, Now: func() time.Time { return now }})
	if d := l.reserve(now); d != 0 {
		t.Fatalf("first reserve waits %v", d)
	}
	if d := l.reserve(now); d < 99*time.Millisecond || d > 101*time.Millisecond {
		t.Errorf("second reserve at 10 req/s waits %v, want 100ms", d)
	}
	// A throttle with Retry-After pauses the bucket and cuts the rate.
	l.throttle(now, 3*time.Second)
	if r := l.Rate(); r >= 10 {
		t.Errorf("rate after throttle %v, want < 10", r)
	}
	if d := l.reserve(now.Add(time.Second)); d != 2*time.Second {
		t.Errorf("reserve during the pause waits %v, want the 2s left", d)
	}
	if d := l.reserve(now.Add(3 * time.Second)); d != 0 {
		t.Errorf("reserve after the pause waits %v", d)
	}
	// Throttles within the cooldown (answers to requests sent at the old rate) cut only once.
	r := l.Rate()
	l.throttle(now.Add(1500*time.Millisecond), 0)
	if l.Rate() != r {
		t.Errorf("second throttle within the cooldown cut the rate to %v from %v", l.Rate(), r)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewLimiter(LimiterConfig{}).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context: %v", err)
	}
	if got := NewLimiter(LimiterConfig{Initial: 5000, Max: 50}).Rate(); got != 50 {
		t.Errorf("initial rate above Max: %v, want 50", got)
	}
}

// TestLimiterWaitPaces: a real-clock smoke test that Wait hands out tokens (no timing assertion).
func TestLimiterWaitPaces(t *testing.T) {
	l := NewLimiter(LimiterConfig{Initial: 1000, Burst: 5})
	for range 20 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLimiterNoRunawayWhenClientIsSlow: when the client itself sends far less than the target
// allows, the limiter has nothing to learn and must not grow the rate without bound (a later
// burst would then hit the target unchecked).
func TestLimiterNoRunawayWhenClientIsSlow(t *testing.T) {
	// 2 workers at 200 ms: at most 10 req/s against a 100 req/s target.
	r := simulate(100, 100, 2, 200*time.Millisecond, 300*time.Second, 60*time.Second, 3)
	if r.finalRate > 20 {
		t.Errorf("limiter rate %.1f for a client that sends 10 req/s, want <= 20", r.finalRate)
	}
	if r.throttledAll != 0 {
		t.Errorf("%d throttles", r.throttledAll)
	}
}
