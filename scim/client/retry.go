package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how patiently a request is retried after a retryable failure
// (see IsRetryable). Delays grow exponentially from BaseDelay up to MaxDelay, with jitter; a
// Retry-After from the target is honoured when it is longer. Zero fields take the defaults of
// DefaultRetryPolicy; MaxAttempts 1 means no retries.
type RetryPolicy struct {
	MaxAttempts int
	BaseDelay   time.Duration
	MaxDelay    time.Duration
}

// DefaultRetryPolicy is used for the zero fields of a RetryPolicy.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, BaseDelay: 200 * time.Millisecond, MaxDelay: 20 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultRetryPolicy.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	return p
}

// backoff returns the delay before attempt n+1 (n >= 1 failed attempts so far): "equal jitter",
// half of the exponential delay fixed and half random, so retries of many requests spread out.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	if d > p.MaxDelay {
		d = p.MaxDelay
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// retrier runs one logical request with the limiter, the retry policy and the observer.
type retrier struct {
	policy   RetryPolicy
	limiter  *Limiter
	observer Observer
	sleep    func(ctx context.Context, d time.Duration) error
	// failFast, when set and true for a failure, allows that failure one retry only.
	failFast func(err error) bool
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do calls attempt until it succeeds, fails for good, or the attempts run out. Each attempt
// waits for the limiter first; throttles and other answers are fed back to it. api and op name
// the request for the observer.
func (r *retrier) do(ctx context.Context, api, op string, attempt func(ctx context.Context) (status int, err error)) error {
	sleep := r.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	var err error
	for n := 1; ; n++ {
		if werr := r.limiter.Wait(ctx); werr != nil {
			if err != nil {
				return errors.Join(werr, err)
			}
			return werr
		}
		start := time.Now()
		var status int
		status, err = attempt(ctx)
		if r.observer != nil {
			r.observer.ObserveRequest(api, op, status, time.Since(start), err)
		}
		var ae *APIError
		isAPI := errors.As(err, &ae)
		switch {
		case isAPI && ae.throttled():
			r.limiter.OnThrottle(ae.RetryAfter)
		case err == nil || isAPI:
			r.limiter.OnSuccess()
		}
		if err == nil || !IsRetryable(err) || n >= r.policy.MaxAttempts {
			return err
		}
		if n >= 2 && r.failFast != nil && r.failFast(err) {
			return err
		}
		d := r.policy.backoff(n)
		if isAPI && ae.RetryAfter > d {
			d = ae.RetryAfter
		}
		if serr := sleep(ctx, d); serr != nil {
			return errors.Join(serr, err)
		}
	}
}
