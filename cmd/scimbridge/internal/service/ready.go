package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// NotReadyError is why /readyz fails: Reason is the short text its callers see (it names no
// URL and holds no error text), Err the details for the log.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// probeRun is one check of the probes, which every caller that asks while it goes on waits for.
type probeRun struct {
	done chan struct{}
	err  error
}

// Ready reports why the service is not ready, as a *NotReadyError, or nil: this replica is a
// standby, a probe failed (cached for ProbeCache), or the last successful sync is missing or
// older than ReadyMaxAge. ctx only bounds the wait of this caller: the probes run on the
// service's own context and their outcome is kept for the next caller even if this one left.
func (s *Server) Ready(ctx context.Context) error {
	if standby, why := s.standby(); standby && s.cfg.Forward == nil {
		return &NotReadyError{Reason: "standby", Err: errors.New(why)}
	}
	if err := s.probe(ctx); err != nil {
		return err
	}
	if s.cfg.ReadyMaxAge <= 0 {
		return nil
	}
	hctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProbeTimeout)
	defer cancel()
	last, ok, err := s.cfg.History.LastSuccess(hctx)
	switch {
	case err != nil:
		return &NotReadyError{Reason: "run history unreadable", Err: err}
	case !ok:
		return &NotReadyError{Reason: "no successful sync yet"}
	}
	if age := s.now().Sub(last); age > s.cfg.ReadyMaxAge {
		return &NotReadyError{Reason: "last successful sync too old",
			Err: fmt.Errorf("it ended %s ago, more than ready_max_age %s", age.Round(time.Second), s.cfg.ReadyMaxAge)}
	}
	return nil
}

// standby asks Config.Standby, if any.
func (s *Server) standby() (bool, string) {
	if s.cfg.Standby == nil {
		return false, ""
	}
	return s.cfg.Standby()
}

// probe returns the cached outcome of the probes while it is fresh, else the outcome of a new
// check (or of the one going on). A caller that leaves early gets its context's error; the
// check goes on and is cached. An outcome of a check the service itself interrupted (Close)
// is never cached.
func (s *Server) probe(ctx context.Context) error {
	s.probeMu.Lock()
	if !s.probedAt.IsZero() && s.now().Sub(s.probedAt) < s.cfg.ProbeCache {
		err := s.probeErr
		s.probeMu.Unlock()
		return err
	}
	run := s.probing
	if run == nil {
		run = &probeRun{done: make(chan struct{})}
		s.probing = run
		go s.runProbes(run)
	}
	s.probeMu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return &NotReadyError{Reason: "probe interrupted", Err: ctx.Err()}
	}
}

// runProbes checks every probe at once on the service's context and records the outcome.
func (s *Server) runProbes(run *probeRun) {
	errs := make([]error, len(s.cfg.Probes))
	var wg sync.WaitGroup
	for i, p := range s.cfg.Probes {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProbeTimeout)
			defer cancel()
			if err := p.Check(pctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.Name, err)
			}
		})
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, s.cfg.Probes[i].Name)
		}
	}
	var err error
	if len(failed) > 0 {
		err = &NotReadyError{Reason: strings.Join(failed, ", ") + " not reachable", Err: errors.Join(errs...)}
	}
	interrupted := s.ctx.Err() != nil || errors.Is(err, context.Canceled)
	if err != nil && !interrupted {
		s.log.Warn("readiness probe failed", "err", err)
	}

	s.probeMu.Lock()
	run.err = err
	if interrupted {
		run.err = &NotReadyError{Reason: "probe interrupted", Err: err}
	} else {
		s.probedAt, s.probeErr = s.now(), err
	}
	s.probing = nil
	s.probeMu.Unlock()
	close(run.done)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	err := s.Ready(r.Context())
	reason := ""
	if err != nil {
		reason = "not ready"
		var nr *NotReadyError
		if errors.As(err, &nr) {
			reason = nr.Reason
		}
	}
	s.logReadiness(reason, err)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", reason)
		return
	}
	switch {
	case s.cfg.Standby == nil:
		_, _ = w.Write([]byte("ready\n"))
	case s.follower():
		_, _ = w.Write([]byte("ready: follower\n"))
	default:
		_, _ = w.Write([]byte("ready: leader\n"))
	}
}

// logReadiness logs /readyz's answer with its details when it differs from the last one, so that
// a probe every few seconds does not repeat the same line.
func (s *Server) logReadiness(reason string, err error) {
	if reason == "probe interrupted" {
		return // the caller left; nothing was learned
	}
	s.readyMu.Lock()
	changed := !s.readySeen || reason != s.notReady
	s.readySeen, s.notReady = true, reason
	s.readyMu.Unlock()
	switch {
	case !changed:
	case err != nil:
		s.log.Warn("not ready", "reason", reason, "err", err)
	default:
		s.log.Info("ready")
	}
}
