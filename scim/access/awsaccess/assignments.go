package awsaccess

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim/access"
)

// How ApplyAssignments works. It starts operations until MaxOutstanding are in flight (the
// starts of one batch go out together), then sleeps until the first of them is expected to end,
// waiting for those expected within a twentieth of their duration after it, and asks with one
// ListAccountAssignmentCreationStatus (or ...DeletionStatus) filtered on IN_PROGRESS which of its
// operations still run: the others have ended, and their slots are filled at once. Beside those
// starts the ended operations are settled: one is described (status and reason in one call);
// several are matched against one listing of the FAILED ones, and only the failed are described,
// for their reason. Operations that ended together are replaced together, so they stay in step
// and share their polls.
//
// How long operations take is learned per kind (create, delete, provision) from what the polls
// saw: an operation that was due and is seen running at age a takes longer than a, one seen
// ended at age b took at most b. The next poll aims between the two bounds until they are within
// two PollMin of each other, then at the upper one, so that a poll finds its operations just
// ended: 1 call to start plus a share of about two calls per batch.

// opKind is what the learned times are kept for.
type opKind string

const (
	kindCreate    opKind = "create"
	kindDelete    opKind = "delete"
	kindProvision opKind = "provision"
)

// estimateWindow is how many recent bounds the estimate is made from.
const estimateWindow = 20

// estimator learns how long an operation of one kind takes.
type estimator struct {
	mu     sync.Mutex
	first  time.Duration
	lo, hi []time.Duration // recent lower and upper bounds
}

func (c *Client) estimate(kind opKind) *estimator {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.estimators == nil {
		c.estimators = map[opKind]*estimator{}
	}
	e := c.estimators[kind]
	if e == nil {
		e = &estimator{first: c.opts.FirstEstimate}
		c.estimators[kind] = e
	}
	return e
}

func push(w []time.Duration, d time.Duration) []time.Duration {
	w = append(w, d)
	if len(w) > estimateWindow {
		w = w[len(w)-estimateWindow:]
	}
	return w
}

// stillRunning records an operation seen IN_PROGRESS at this age.
func (e *estimator) stillRunning(age time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lo = push(e.lo, age)
	if len(e.hi) == 0 && age >= e.first {
		e.first = age * 3 / 2 // nothing seen to end yet: guess further out
	}
}

// finished records an operation seen ended at this age.
func (e *estimator) finished(age time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hi = push(e.hi, age)
}

// target is the age at which an operation is expected to have ended.
func (e *estimator) target(pollMin time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.hi) == 0 {
		return e.first
	}
	hi := slices.Min(e.hi)
	lo := time.Duration(0)
	if len(e.lo) > 0 {
		lo = slices.Max(e.lo)
	}
	if lo >= hi || hi-lo <= 2*pollMin {
		return hi
	}
	return lo + (hi-lo)/2
}

// step is the wait before asking again about an operation seen still running.
func (e *estimator) step(opts Options) time.Duration {
	return max(opts.PollMin, e.target(opts.PollMin)/20)
}

// next is when an operation started at started is expected to have ended.
func (e *estimator) next(started time.Time, opts Options) time.Time {
	return started.Add(e.target(opts.PollMin))
}

// pendingOp is an operation in flight.
type pendingOp struct {
	op        access.AssignmentOp
	id        string
	started   time.Time
	notBefore time.Time // seen running: not asked about again before this
	requests  int
	share     float64 // its share of the polls that asked about it
}

func (p *pendingOp) result(err error) access.OpResult {
	return access.OpResult{Op: p.op, Err: err, Requests: p.requests + int(math.Ceil(p.share)), Took: time.Since(p.started)}
}

func kindOf(op access.AssignmentOp) opKind {
	if op.Kind == access.OpDelete {
		return kindDelete
	}
	return kindCreate
}

// ApplyAssignments runs the operations with exactly MaxOutstanding in flight while there are
// enough, polling their status as described above, and calls done once per operation in
// completion order. A FAILED operation's Err wraps ErrFailed with AWS's reason; the others go
// on. It returns early only when ctx ends.
func (c *Client) ApplyAssignments(ctx context.Context, inst access.Instance, ops []access.AssignmentOp, done func(access.OpResult)) error {
	queue := slices.Clone(ops)
	inflight := map[opKind]map[string]*pendingOp{kindCreate: {}, kindDelete: {}}
	lastPoll := map[opKind]time.Time{}
	count := func() int { return len(inflight[kindCreate]) + len(inflight[kindDelete]) }
	var ended []*pendingOp // seen ended by the last poll, to settle while their successors start
	var endedKind opKind
	for len(queue) > 0 || count() > 0 || len(ended) > 0 {
		// Fill the free slots; the starts go out together, each answered in its own time, and
		// beside them the operations that just ended are settled.
		var st settled
		var swg sync.WaitGroup
		if len(ended) > 0 {
			swg.Add(1)
			go func(kind opKind, ended []*pendingOp) {
				defer swg.Done()
				st = c.settle(ctx, inst, kind, ended)
			}(endedKind, ended)
			ended = nil
		}
		n := min(c.opts.MaxOutstanding-count(), len(queue))
		batch := queue[:n]
		queue = queue[n:]
		started := make([]*pendingOp, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, op := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started[i], errs[i] = c.startAssignment(ctx, inst, op)
			}()
		}
		wg.Wait()
		swg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, r := range st.results {
			done(r)
		}
		for _, p := range st.again {
			inflight[kindOf(p.op)][p.id] = p
		}
		for i, p := range started {
			switch {
			case errs[i] != nil:
				done(p.result(errs[i]))
			case p.id == "":
				done(p.result(nil)) // ended at once
			default:
				inflight[kindOf(p.op)][p.id] = p
			}
		}
		if count() == 0 {
			continue
		}
		kind, at := c.nextPoll(inflight, lastPoll)
		if err := sleep(ctx, time.Until(at)); err != nil {
			return err
		}
		lastPoll[kind] = time.Now()
		var err error
		if ended, err = c.poll(ctx, inst, kind, inflight[kind], done); err != nil {
			return err
		}
		endedKind = kind
	}
	return ctx.Err()
}

// nextPoll picks the kind to poll next and when: the earliest expected end of an operation in
// flight, no sooner than PollMin after that kind's last poll. Operations of that kind expected
// to end within a twentieth of their expected duration after it are waited for, so that one
// poll settles them together and their successors start together: operations that run in step
// share their polls.
func (c *Client) nextPoll(inflight map[opKind]map[string]*pendingOp, lastPoll map[opKind]time.Time) (opKind, time.Time) {
	due := func(k opKind, p *pendingOp) time.Time {
		d := c.estimate(k).next(p.started, c.opts)
		if p.notBefore.After(d) {
			d = p.notBefore
		}
		if earliest := lastPoll[k].Add(c.opts.PollMin); earliest.After(d) {
			d = earliest
		}
		return d
	}
	var kind opKind
	var at time.Time
	for _, k := range []opKind{kindCreate, kindDelete} {
		for _, p := range inflight[k] {
			if d := due(k, p); at.IsZero() || d.Before(at) {
				kind, at = k, d
			}
		}
	}
	window := max(c.opts.PollMin, c.estimate(kind).target(c.opts.PollMin)/20)
	end := at
	for _, p := range inflight[kind] {
		if d := due(kind, p); d.After(end) && !d.After(at.Add(window)) {
			end = d
		}
	}
	return kind, end
}

// startAssignment starts one operation. A pendingOp without an id has already ended.
func (c *Client) startAssignment(ctx context.Context, inst access.Instance, op access.AssignmentOp) (*pendingOp, error) {
	p := &pendingOp{op: op, started: time.Now()}
	a := op.Assignment
	var status *ssotypes.AccountAssignmentOperationStatus
	var err error
	switch op.Kind {
	case access.OpCreate:
		p.requests, err = c.call(ctx, "CreateAccountAssignment", callOpts{retryConflict: true}, func(ctx context.Context) error {
			out, err := c.sso.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
				InstanceArn: aws.String(inst.ARN), PermissionSetArn: aws.String(a.PermissionSetARN),
				PrincipalId: aws.String(a.PrincipalID), PrincipalType: ssotypes.PrincipalType(a.PrincipalType),
				TargetId: aws.String(a.AccountID), TargetType: ssotypes.TargetTypeAwsAccount}, noRetrySSO)
			if err == nil {
				status = out.AccountAssignmentCreationStatus
			}
			return err
		})
	case access.OpDelete:
		p.requests, err = c.call(ctx, "DeleteAccountAssignment", callOpts{retryConflict: true}, func(ctx context.Context) error {
			out, err := c.sso.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
				InstanceArn: aws.String(inst.ARN), PermissionSetArn: aws.String(a.PermissionSetARN),
				PrincipalId: aws.String(a.PrincipalID), PrincipalType: ssotypes.PrincipalType(a.PrincipalType),
				TargetId: aws.String(a.AccountID), TargetType: ssotypes.TargetTypeAwsAccount}, noRetrySSO)
			if err == nil {
				status = out.AccountAssignmentDeletionStatus
			}
			return err
		})
	default:
		return p, fmt.Errorf("assignment operation %q: want create or delete", op.Kind)
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w", op.Kind, describe(a), err)
	}
	if status == nil {
		return p, fmt.Errorf("%s %s: no status in the answer", op.Kind, describe(a))
	}
	switch status.Status {
	case ssotypes.StatusValuesFailed:
		return p, fmt.Errorf("%s %s: %w: %s", op.Kind, describe(a), ErrFailed, aws.ToString(status.FailureReason))
	case ssotypes.StatusValuesSucceeded:
		return p, nil
	}
	p.id = aws.ToString(status.RequestId)
	if p.id == "" {
		return p, fmt.Errorf("%s %s: no request id in the answer", op.Kind, describe(a))
	}
	return p, nil
}

// describe names an assignment in errors.
func describe(a access.Assignment) string {
	return fmt.Sprintf("assignment of %s to %s %s in account %s", a.PermissionSetARN, a.PrincipalType, a.PrincipalID, a.AccountID)
}
