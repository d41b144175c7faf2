package handoff

import (
	"context"
	"encoding/json"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// RecordWithoutNotify stores a request without the NOTIFY, as if the notification were lost.
func RecordWithoutNotify(ctx context.Context, q *Queue, req reconcile.Request) error {
	b, err := json.Marshal(request{Trigger: req.Trigger, DryRun: req.DryRun, Only: req.Only})
	if err != nil {
		return err
	}
	_, err = q.pool.Exec(ctx, "INSERT INTO run_requests (request) VALUES ($1)", string(b))
	return err
}
