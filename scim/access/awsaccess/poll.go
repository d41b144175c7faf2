package awsaccess

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/scimbridge/scimbridge/scim/access"
)

// maxFailedPages is how many pages of FAILED statuses a poll reads to settle several ended
// operations at once; past that it describes each one instead.
const maxFailedPages = 2

// errTooManyPages stops a listing of FAILED statuses that is longer than maxFailedPages.
var errTooManyPages = errors.New("too many pages")

// listStatus lists the request ids of the operations of a kind with the status. It returns
// errTooManyPages when there are more than maxPages pages (0: no limit), and the pages read.
func (c *Client) listStatus(ctx context.Context, inst access.Instance, kind opKind, status ssotypes.StatusValues, maxPages int) (map[string]bool, int, error) {
	ids := map[string]bool{}
	pages := 0
	filter := &ssotypes.OperationStatusFilter{Status: status}
	err := c.pages(ctx, "List"+statusOp(kind), func(ctx context.Context, token *string) (*string, error) {
		if maxPages > 0 && pages >= maxPages {
			return nil, errTooManyPages
		}
		var next *string
		if kind == kindDelete {
			out, err := c.sso.ListAccountAssignmentDeletionStatus(ctx, &ssoadmin.ListAccountAssignmentDeletionStatusInput{
				InstanceArn: aws.String(inst.ARN), Filter: filter, NextToken: token}, noRetrySSO)
			if err != nil {
				return nil, err
			}
			for _, s := range out.AccountAssignmentsDeletionStatus {
				ids[aws.ToString(s.RequestId)] = true
			}
			next = out.NextToken
		} else {
			out, err := c.sso.ListAccountAssignmentCreationStatus(ctx, &ssoadmin.ListAccountAssignmentCreationStatusInput{
				InstanceArn: aws.String(inst.ARN), Filter: filter, NextToken: token}, noRetrySSO)
			if err != nil {
				return nil, err
			}
			for _, s := range out.AccountAssignmentsCreationStatus {
				ids[aws.ToString(s.RequestId)] = true
			}
			next = out.NextToken
		}
		pages++
		return next, nil
	})
	return ids, pages, err
}

func statusOp(kind opKind) string {
	if kind == kindDelete {
		return "AccountAssignmentDeletionStatus"
	}
	return "AccountAssignmentCreationStatus"
}

// describeStatus asks for one operation's status.
func (c *Client) describeStatus(ctx context.Context, inst access.Instance, kind opKind, id string) (*ssotypes.AccountAssignmentOperationStatus, int, error) {
	var status *ssotypes.AccountAssignmentOperationStatus
	n, err := c.call(ctx, "Describe"+statusOp(kind), callOpts{}, func(ctx context.Context) error {
		if kind == kindDelete {
			out, err := c.sso.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
				InstanceArn: aws.String(inst.ARN), AccountAssignmentDeletionRequestId: aws.String(id)}, noRetrySSO)
			if err == nil {
				status = out.AccountAssignmentDeletionStatus
			}
			return err
		}
		out, err := c.sso.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: aws.String(inst.ARN), AccountAssignmentCreationRequestId: aws.String(id)}, noRetrySSO)
		if err == nil {
			status = out.AccountAssignmentCreationStatus
		}
		return err
	})
	if err == nil && status == nil {
		err = fmt.Errorf("no status in the answer to request %s", id)
	}
	return status, n, err
}

// poll asks which operations of one kind still run, and returns the others, removed from
// inflight, for settle. A failed poll is an error of the operations it was about, not of the
// run: they are reported and the rest go on.
func (c *Client) poll(ctx context.Context, inst access.Instance, kind opKind, inflight map[string]*pendingOp, done func(access.OpResult)) ([]*pendingOp, error) {
	est := c.estimate(kind)
	asked := time.Now()
	running, pages, err := c.listStatus(ctx, inst, kind, ssotypes.StatusValuesInProgress, 0)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ended []*pendingOp
	for id, p := range inflight {
		p.share += float64(max(pages, 1)) / float64(len(inflight))
		if err != nil {
			delete(inflight, id)
			done(p.result(fmt.Errorf("%s %s: read its status: %w", p.op.Kind, describe(p.op.Assignment), err)))
			continue
		}
		age := asked.Sub(p.started)
		if running[id] {
			// Only an operation that was due bounds the duration from below: the others,
			// started later, would pull the bound down.
			if !est.next(p.started, c.opts).After(asked) {
				est.stillRunning(age)
				p.notBefore = time.Now().Add(est.step(c.opts))
			}
			continue
		}
		est.finished(age)
		delete(inflight, id)
		ended = append(ended, p)
	}
	return ended, nil
}

// settled is what settle found: the results of the ended operations, and those that turned out
// to be running still (a listing and a description that disagree), to be polled again.
type settled struct {
	results []access.OpResult
	again   []*pendingOp
}

// settle learns how the ended operations ended: one is described (status and reason in one
// call); several are matched against one listing of the FAILED ones, and only the failed are
// described, for their reason.
func (c *Client) settle(ctx context.Context, inst access.Instance, kind opKind, ended []*pendingOp) settled {
	var out settled
	var failed map[string]bool
	if len(ended) > 1 {
		var pages int
		var lerr error
		failed, pages, lerr = c.listStatus(ctx, inst, kind, ssotypes.StatusValuesFailed, maxFailedPages)
		for _, p := range ended {
			p.share += float64(pages) / float64(len(ended))
		}
		if lerr != nil {
			failed = nil // too many, or unreadable: describe each
		}
	}
	for _, p := range ended {
		if ctx.Err() != nil {
			return out
		}
		if failed != nil && !failed[p.id] {
			out.results = append(out.results, p.result(nil))
			continue
		}
		status, n, err := c.describeStatus(ctx, inst, kind, p.id)
		p.requests += n
		switch {
		case err != nil:
			out.results = append(out.results, p.result(fmt.Errorf("%s %s: read its status: %w", p.op.Kind, describe(p.op.Assignment), err)))
		case status.Status == ssotypes.StatusValuesFailed:
			out.results = append(out.results, p.result(fmt.Errorf("%s %s: %w: %s", p.op.Kind, describe(p.op.Assignment), ErrFailed, aws.ToString(status.FailureReason))))
		case status.Status == ssotypes.StatusValuesInProgress:
			p.notBefore = time.Now().Add(c.estimate(kind).step(c.opts))
			out.again = append(out.again, p)
		default:
			out.results = append(out.results, p.result(nil))
		}
	}
	return out
}
