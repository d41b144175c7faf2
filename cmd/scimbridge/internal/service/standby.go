package service

import (
	"context"
	"net/http"
	"time"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// RunController runs run (the controller's Run: a full sync at once, then scheduled and
// requested runs) while this replica is active, until ctx is done, and returns run's error.
// With Config.Standby set, it asks it every StandbyPoll: while the replica is a standby, run is
// not going, so that no scheduled or requested run starts; when the replica turns active, run
// starts (with its full run at once); when it turns standby again, run's context is cancelled
// (the run going on lets its requests in flight finish and is recorded) and RunController
// waits for run to return before it waits for the replica to turn active again.
func (s *Server) RunController(ctx context.Context, run func(context.Context) error) error {
	if s.cfg.Standby == nil {
		return run(ctx)
	}
	tick := time.NewTicker(s.cfg.StandbyPoll)
	defer tick.Stop()
	wasStandby := false
	for {
		// Wait while this replica is a standby.
		for {
			standby, why := s.standby()
			s.cfg.Metrics.setStandby(standby)
			if !standby {
				break
			}
			if !wasStandby {
				s.log.Warn("standby: another replica holds the state lock; this one does not sync", "reason", why)
				wasStandby = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		if wasStandby {
			s.log.Info("active: this replica holds the state lock and syncs")
			wasStandby = false
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run(rctx) }()
	active:
		for {
			select {
			case <-ctx.Done():
				stop()
				return <-done
			case err := <-done:
				stop()
				return err
			case <-tick.C:
				standby, why := s.standby()
				if !standby {
					continue
				}
				s.cfg.Metrics.setStandby(true)
				s.log.Warn("standby: another replica holds the state lock; stopping the runs of this one", "reason", why)
				wasStandby = true
				stop()
				if err := <-done; err != nil {
					return err
				}
				break active
			}
		}
	}
}

// follower reports whether this replica is a follower: not the leader, with Config.Forward set,
// so that it serves and hands requests to the leader instead of refusing them.
func (s *Server) follower() bool {
	standby, _ := s.standby()
	return standby && s.cfg.Forward != nil
}

// request hands req to the controller, or on a follower to Config.Forward, whose error it returns.
func (s *Server) request(ctx context.Context, req reconcile.Request) error {
	if s.follower() {
		return s.cfg.Forward(ctx, req)
	}
	s.cfg.Controller.Request(s.now(), req)
	return nil
}

// refuseStandby answers 503 when this replica is a standby (not a follower, which forwards) and
// reports whether it did.
func (s *Server) refuseStandby(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	standby, why := s.standby()
	if !standby || s.cfg.Forward != nil {
		return false
	}
	s.cfg.Metrics.webhook(endpoint, http.StatusServiceUnavailable)
	s.log.Info("request refused: standby", "endpoint", endpoint, "remote", r.RemoteAddr, "reason", why)
	w.Header().Set("Retry-After", "30")
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "standby"})
	return true
}
