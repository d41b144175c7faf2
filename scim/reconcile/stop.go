package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStopped is returned (wrapped, with the context's error) by a run whose context ended while
// it applied its plan: a deadline (a Lambda invocation's time budget, see StopBefore), a lost
// leadership, a shutdown. No request started after that; those in flight finished and were
// recorded. The run is recorded as failed with how far it got, and the next run continues
// from the state store without reading the target again (when the last full read allows it)
// and without creating anything twice.
var ErrStopped = errors.New("run stopped at a request boundary before the end of its plan; the next run continues")

// StopBefore returns a context that ends margin before ctx's deadline (at once when less than
// margin is left), or with ctx when it has no deadline. A run given it stops starting requests
// in time to finish those in flight and record them before the deadline: margin should cover
// the target's request timeout and a commit of the state store.
func StopBefore(ctx context.Context, margin time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

// markSent records that the create of kind/ext is about to be sent.
func (a *applier) markSent(kind, ext string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sent == nil {
		a.sent = map[string]bool{}
	}
	a.sent[kind+"/"+ext] = true
}

// clearUnsent clears the pending intents of the creates in exts that a stopped run recorded but
// never sent: nothing of theirs can be in the target, and an intent left behind would make the
// next run read the whole target to look for them. It is called once no create is in flight.
func (a *applier) clearUnsent(kind string, exts []string) {
	if a.stop.Err() == nil {
		return
	}
	a.mu.Lock()
	var unsent []string
	for _, ext := range exts {
		if !a.sent[kind+"/"+ext] {
			unsent = append(unsent, ext)
		}
	}
	a.mu.Unlock()
	for _, ext := range unsent {
		a.rec.clearPending(kind, ext)
	}
	if len(unsent) > 0 {
		a.log.Info("run stopped before these creates were sent; their intents are cleared", "kind", kind, "count", len(unsent))
	}
}

// stopped is the error of a run whose apply ran to its end or stopped early: nil, or ErrStopped
// with how far the apply got and why it stopped.
func (a *applier) stopped() error {
	err := a.stop.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(a.stop); cause != nil {
		err = cause
	}
	return fmt.Errorf("%w (%d of %d changes done): %w", ErrStopped, a.done.Load(), a.total.Load(), err)
}
