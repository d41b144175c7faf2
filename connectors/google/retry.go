package google

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// rateLimitReasons are the 403 error reasons that mean "slow down", not "forbidden".
var rateLimitReasons = map[string]bool{
	"userRateLimitExceeded": true,
	"rateLimitExceeded":     true,
	"quotaExceeded":         true,
}

// maxRetryAfter caps a server's Retry-After.
const maxRetryAfter = 5 * time.Minute

// transport bounds the requests in flight and retries the ones Google asks to retry. The
// generated Admin SDK client does not retry at all; this is the one place that classifies.
type transport struct {
	base        http.RoundTripper
	sem         *semaphore
	capacity    int
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	logger      *slog.Logger
	// sleep waits d or until ctx ends; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error

	requests atomic.Int64 // attempts sent
	retries  atomic.Int64 // attempts that were retries
}

func newTransport(base http.RoundTripper, c Config, logger *slog.Logger) *transport {
	if base == nil {
		// Keep a connection per concurrent request alive (the default keeps 2 per host).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.Concurrency
		base = t
	}
	return &transport{
		base:        base,
		sem:         newSemaphore(c.Concurrency),
		capacity:    c.Concurrency,
		maxAttempts: c.MaxAttempts,
		backoff:     c.RetryBackoff,
		maxBackoff:  c.MaxRetryBackoff,
		logger:      logger,
		sleep:       sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// RoundTrip sends req, holding one concurrency slot per attempt until the response body is
// closed, and retries on 429, 5xx, 403 rate-limit reasons and transport errors, at most
// maxAttempts times in all. The last failed response is returned as it came, so the client's
// error carries Google's code and reason.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 {
			r = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				if req.GetBody == nil {
					return nil, fmt.Errorf("google: retry %s %s: request body cannot be replayed", req.Method, req.URL.Path)
				}
				b, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("google: retry %s %s: %w", req.Method, req.URL.Path, err)
				}
				r.Body = b
			}
		}
		if err := t.sem.acquire(ctx, isUrgent(ctx)); err != nil {
			return nil, err
		}
		t.requests.Add(1)
		if attempt > 1 {
			t.retries.Add(1)
		}
		resp, err := t.base.RoundTrip(r)
		var why string
		var wait time.Duration
		switch {
		case err != nil:
			t.sem.release()
			if ctx.Err() != nil {
				return nil, err
			}
			why = "transport error"
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusForbidden:
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			t.sem.release()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if rerr != nil && ctx.Err() != nil {
				return nil, rerr
			}
			reason := errorReason(body)
			if resp.StatusCode == http.StatusForbidden && !rateLimitReasons[reason] {
				return resp, nil
			}
			why = strconv.Itoa(resp.StatusCode) + " " + reason
			wait = retryAfter(resp.Header.Get("Retry-After"))
		default:
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: t.sem.release}
			return resp, nil
		}
		if attempt >= t.maxAttempts {
			t.logger.Warn("google request failed, retries exhausted", "method", req.Method, "path", req.URL.Path, "attempts", attempt, "reason", why)
			return resp, err
		}
		if d := t.delay(attempt); d > wait {
			wait = d
		}
		t.logger.Debug("google request retried", "method", req.Method, "path", req.URL.Path, "attempt", attempt, "reason", why, "wait", wait)
		if serr := t.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("google: waiting to retry %s %s: %w", req.Method, req.URL.Path, errors.Join(serr, errOf(resp, err)))
		}
	}
}

func errOf(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("last answer %s", resp.Status)
}

// delay is the backoff before retry number attempt: exponential with full jitter in its upper
// half, capped.
func (t *transport) delay(attempt int) time.Duration {
	d := t.backoff << (attempt - 1)
	if d > t.maxBackoff || d <= 0 {
		d = t.maxBackoff
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	}
	return min(max(d, 0), maxRetryAfter)
}

// errorReason returns the first error reason of a Google JSON error body, or its status.
func errorReason(body []byte) string {
	var e struct {
		Error struct {
			Status string `json:"status"`
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	for _, x := range e.Error.Errors {
		if x.Reason != "" {
			return x.Reason
		}
	}
	return e.Error.Status
}

// releaseBody frees the concurrency slot when the body is closed.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
