// Package awsaccess reads and writes IAM Identity Center access through the AWS SDK: the
// organization's accounts (organizations) and the instance's permission sets and account
// assignments (sso-admin). It implements access.Reader and access.Applier.
//
// Every call goes through one adaptive rate limiter (scim/client's), shared by both APIs, since
// the Identity Center admin APIs share about 20 requests per second. The SDK's own retries are
// turned off for the calls made here: a ThrottlingException (TooManyRequestsException for
// organizations) slows the limiter and the call is tried again; an internal error or a broken
// connection is tried again with a backoff, a few times; any other error is the call's.
//
// Reads page through every listing and fail as a whole when any call fails: a partial answer is
// never returned. ApplyAssignments keeps exactly MaxOutstanding asynchronous operations in flight
// and learns how long they take, so that it polls about when they end, with one
// List...Status call for all of them (see assignments.go).
package awsaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/smithy-go"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/client"
)

// Defaults of Options.
const (
	DefaultMaxOutstanding = 10
	DefaultRate           = 20
	DefaultMaxAttempts    = 5
)

// ErrFailed is wrapped by the error of an asynchronous operation that ended FAILED; the error
// text carries AWS's FailureReason.
var ErrFailed = errors.New("operation failed")

// Options configure a Client. The zero value is usable.
type Options struct {
	// IdentityStoreID picks the instance when ListInstances returns several.
	IdentityStoreID string
	// MaxOutstanding is how many asynchronous assignment operations ApplyAssignments keeps in
	// flight (0: DefaultMaxOutstanding, AWS's quota).
	MaxOutstanding int
	// Limiter paces every call; nil makes one that starts at half of Rate, never exceeds it, and
	// lets 2 x MaxOutstanding calls go at once.
	Limiter *client.Limiter
	// Rate is the ceiling of the limiter made when Limiter is nil (0: DefaultRate).
	Rate float64
	// MaxAttempts is how many times a call is tried on an internal error or a broken
	// connection (0: DefaultMaxAttempts). Throttles are retried apart, up to 10 times as many.
	MaxAttempts int
	// PollMin is the shortest wait between two status polls of one kind (0: 50 ms).
	PollMin time.Duration
	// FirstEstimate is the first guess of how long an operation takes, before any has been seen
	// to finish (0: 1 s).
	FirstEstimate time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Client implements access.Reader and access.Applier with the SDK clients.
type Client struct {
	sso  *ssoadmin.Client
	org  *organizations.Client
	opts Options
	lim  *client.Limiter
	log  *slog.Logger

	mu         sync.Mutex
	calls      map[string]int64
	throttles  int64
	estimators map[opKind]*estimator // how long operations take, learned (assignments.go)
}

var (
	_ access.Reader  = (*Client)(nil)
	_ access.Applier = (*Client)(nil)
)

// New returns a Client over the two SDK clients.
func New(sso *ssoadmin.Client, org *organizations.Client, opts Options) *Client {
	if opts.MaxOutstanding <= 0 {
		opts.MaxOutstanding = DefaultMaxOutstanding
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.PollMin <= 0 {
		opts.PollMin = 50 * time.Millisecond
	}
	if opts.FirstEstimate <= 0 {
		opts.FirstEstimate = time.Second
	}
	c := &Client{sso: sso, org: org, opts: opts, lim: opts.Limiter, log: opts.Logger, calls: map[string]int64{}}
	if c.lim == nil {
		// A burst of twice MaxOutstanding lets the operations that ended together be
		// replaced at once, right after the polls that saw them end.
		c.lim = client.NewLimiter(client.LimiterConfig{Initial: opts.Rate / 2, Max: opts.Rate, Burst: 2 * opts.MaxOutstanding})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Calls returns how many calls were sent per operation (retries included), and the number of
// throttled answers.
func (c *Client) Calls() (map[string]int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out, c.throttles
}

// noRetrySSO and noRetryOrg turn the SDK's retries off: the Client retries itself.
func noRetrySSO(o *ssoadmin.Options)      { o.Retryer = aws.NopRetryer{} }
func noRetryOrg(o *organizations.Options) { o.Retryer = aws.NopRetryer{} }

// callOpts are the options of one call.
type callOpts struct {
	// retryConflict retries a ConflictException, which AWS answers to an asynchronous operation
	// started while too many are outstanding or one touches the same permission set.
	retryConflict bool
}

// call runs fn under the limiter, retrying throttles, internal errors and broken connections.
// It returns how many attempts it made.
func (c *Client) call(ctx context.Context, name string, o callOpts, fn func(context.Context) error) (int, error) {
	failures, throttles := 0, 0
	for attempt := 1; ; attempt++ {
		if err := c.lim.Wait(ctx); err != nil {
			return attempt - 1, err
		}
		c.mu.Lock()
		c.calls[name]++
		c.mu.Unlock()
		err := fn(ctx)
		if err == nil {
			c.lim.OnSuccess()
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ctx.Err()
		}
		kind, retryAfter := classify(err, o)
		switch kind {
		case errThrottle:
			c.lim.OnThrottle(retryAfter)
			c.mu.Lock()
			c.throttles++
			c.mu.Unlock()
			throttles++
			if throttles <= 10*c.opts.MaxAttempts {
				c.log.DebugContext(ctx, "throttled, trying again", "operation", name, "throttles", throttles)
				continue
			}
		case errRetry:
			c.lim.OnSuccess()
			failures++
			if failures < c.opts.MaxAttempts {
				d := backoff(failures)
				c.log.DebugContext(ctx, "call failed, trying again", "operation", name, "in", d, "error", err)
				if err := sleep(ctx, d); err != nil {
					return attempt, err
				}
				continue
			}
		default:
			c.lim.OnSuccess()
		}
		return attempt, fmt.Errorf("%s: %w", name, err)
	}
}

type errKind int

const (
	errFinal errKind = iota
	errThrottle
	errRetry
)

// classify says what to do about a failed call, and the pause the service asked for.
func classify(err error, o callOpts) (errKind, time.Duration) {
	var retryAfter time.Duration
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if s, perr := strconv.Atoi(re.Response.Header.Get("Retry-After")); perr == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		if re.Response.StatusCode == http.StatusTooManyRequests {
			return errThrottle, retryAfter
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded":
			return errThrottle, retryAfter
		case "InternalServerException", "ServiceException", "InternalFailure", "ServiceUnavailable":
			return errRetry, 0
		case "ConflictException":
			if o.retryConflict {
				return errRetry, 0
			}
		}
		if re != nil && re.Response != nil && re.Response.StatusCode >= 500 {
			return errRetry, 0
		}
		return errFinal, 0
	}
	// No answer at all: a dropped connection, a reset, a time-out.
	return errRetry, 0
}

// backoff is the pause before the n-th retry: 100 ms doubling up to 5 s, with jitter.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 6)
	d = min(d, 5*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
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
