package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/handoff"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

type serveFlags struct {
	config  string
	listen  string
	verbose bool
	lease   leaseOpts
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run as a service: sync on a schedule and on webhooks, with metrics and a status page",
		Long: `Runs a full sync at once, then every service.interval (with jitter) and whenever a webhook
asks (POST /v1/sync, POST /v1/webhooks/google), at most one run at a time. When the source has a
change feed (service.feed), each change becomes a run that reads only the changed entries. Serves /healthz, /readyz,
/metrics and a status page at /. On SIGTERM a run in progress lets its requests in flight finish and
is recorded; the process exits within service.shutdown_grace.

Replicas: only the one that holds the state lock syncs. With the SQLite state another replica is a
standby (/readyz 503, webhooks 503). With PostgreSQL (state.url) it is a follower: ready ("ready:
follower"), it serves the status page from the shared run history and records webhooks in the
database for the leader. Each leader begins a new fenced term; a leader that stops answering loses
the lock after --lease (the database ends its idle lock session) and stops starting requests
before that; followers try the lock every --standby-retry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", defaultConfig, "config file")
	fl.StringVar(&f.listen, "listen", "", "address to listen on (default: service.listen, 127.0.0.1:8080)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging")
	fl.DurationVar(&f.lease.lease, "lease", defaultLease, "PostgreSQL state: a leader that stops answering loses the lock after this long, and stops itself before")
	fl.DurationVar(&f.lease.keepalive, "keepalive", defaultKeepalive, "PostgreSQL state: how often the leader renews its lease (at most half of --lease)")
	fl.DurationVar(&f.lease.retry, "standby-retry", standbyRetry, "how often a replica that does not lead tries the lock")
	return cmd
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	if err := f.lease.check(); err != nil {
		return err
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return err
	}
	setMemoryLimit()
	sc := cfg.Service
	if f.listen != "" {
		sc.Listen = f.listen
	}
	// ctx ends on SIGTERM or SIGINT (see main).
	ctx := cmd.Context()
	log := newLogger(cmd.ErrOrStderr(), cfg.Log, f.verbose)
	secrets := newSecrets(log)
	whSecret, err1 := cfg.WebhookSecret(ctx, secrets)
	bearer, err2 := cfg.BearerToken(ctx, secrets)
	uiPass, err3 := cfg.UIPassword(ctx, secrets)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("config %s: %w", f.config, err)
	}
	rt, err := newRuntime(ctx, cfg, log, secrets)
	if err != nil {
		return err
	}
	defer rt.Close()

	// Only the leader runs syncs: the replica that holds the state lock (a file lock beside the
	// SQLite file, or PostgreSQL's advisory lock), with a leader term that fences the store.
	// Another replica is a standby (SQLite: not ready, refuses webhooks) or, on PostgreSQL, a
	// follower that serves and records webhooks for the leader (package handoff).
	lead := newLeader(rt.stateLoc, rt.state, lockInfo("serve"), log.With("component", "lock"), f.lease)
	defer lead.Release()
	var queue *handoff.Queue
	if lead.postgres {
		if queue, err = handoff.Open(ctx, rt.stateLoc, log.With("component", "handoff")); err != nil {
			return err
		}
		defer queue.Close()
	}

	metrics := service.NewMetrics()
	rt.counter.forward(metrics)
	if last, ok, err := rt.state.LastSuccess(ctx); err == nil && ok {
		metrics.SetLastSuccess(last)
	}
	rt.onRunStart = lead.SetRunID
	if err := rt.keepDirectory(); err != nil {
		return err
	}
	metrics.AddSourceReads(rt.dirSource.Reads)
	r, err := rt.reconciler(nil, nil)
	if err != nil {
		return err
	}
	var feed *reconcile.FeedRunner // set below when the source has a change feed
	ctrl, err := reconcile.NewController(reconcile.ControllerConfig{
		Runner:   leaderRunner{r: r, lead: lead},
		Interval: time.Duration(sc.Interval),
		Jitter:   *sc.Jitter,
		MinGap:   time.Duration(*sc.MinTriggerGap),
		Options:  reconcile.RunOptions{AllowDeletes: cfg.Sync.Guards.AllowDeletes},
		Logger:   log.With("component", "controller"),
		OnStart:  metrics.RunStarted,
		OnFinish: func(opts reconcile.RunOptions, res *reconcile.Result, err error) {
			metrics.RunFinished(opts, res, err)
			fitMemoryLimit(log)
			if feed != nil {
				feed.RunFinished(opts, res, err)
			}
		},
	})
	if err != nil {
		return err
	}
	if feed, err = rt.feedRunner(ctrl, metrics); err != nil {
		return err
	}

	var verifier service.GoogleVerifier
	if w, ok := rt.source.(google.Watcher); ok {
		if err := w.Watch(ctx); err != nil {
			log.Warn("google push notifications are off; syncs run on the schedule and POST /v1/sync only", "err", err)
		} else {
			verifier = w
		}
	}
	var forward func(context.Context, reconcile.Request) error
	if queue != nil {
		forward = queue.Record
	}
	srv, err := service.New(service.Config{
		Controller:    ctrl,
		History:       rt.state,
		Metrics:       metrics,
		Probes:        rt.probes(),
		ProbeCache:    time.Duration(sc.ProbeCache),
		ReadyMaxAge:   time.Duration(sc.ReadyMaxAge),
		WebhookSecret: []byte(whSecret.Reveal()),
		BearerToken:   []byte(bearer.Reveal()),
		UIPassword:    []byte(uiPass.Reveal()),
		// AuthFailuresPerMinute throttles guesses of the tokens and the UI password.
		AuthFailuresPerMinute: sc.AuthFailuresPerMinute,
		ReplayWindow:          time.Duration(sc.ReplayWindow),
		MaxBodyBytes:          sc.MaxBodyBytes,
		Google:                verifier,
		Logger:                log.With("component", "http"),
		Target:                rt.targetDesc,
		Standby:               lead.Standby,
		StandbyPoll:           time.Second,
		Forward:               forward,
		Feed:                  feedStatus(feed),
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if !whSecret.IsSet() && !bearer.IsSet() {
		log.Warn("no service.webhook_secret or service.bearer_token: POST /v1/sync answers 401")
	}

	servers, err := listen(log, sc, srv)
	if err != nil {
		return err
	}
	httpErr := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				httpErr <- fmt.Errorf("serve %s: %w", s.ln.Addr(), err)
			}
		}()
	}
	runCtx, stopRuns := context.WithCancel(ctx)
	defer stopRuns()
	ctrlDone := make(chan error, 1)
	// Only the replica that holds the state lock runs syncs (service.Config.Standby); another
	// waits as a standby or follower and keeps trying the lock. The leader also runs the
	// requests followers recorded.
	go lead.run(runCtx)
	lead.firstTry(runCtx)
	// The change feed runs beside the controller, on the replica that holds the lock only.
	go func() {
		ctrlDone <- srv.RunController(runCtx, withFeed(func(ctx context.Context) error {
			if queue != nil {
				go func() { _ = queue.Serve(ctx, func(req reconcile.Request) { ctrl.Request(time.Now(), req) }) }()
			}
			return ctrl.Run(ctx)
		}, feed))
	}()
	log.Info("scimbridge serving", "version", version, "interval", time.Duration(sc.Interval).String(), "target", rt.targetDesc)

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", time.Duration(sc.ShutdownGrace).String())
	case failed = <-httpErr:
		log.Error("http server failed", "err", failed)
	}
	stopRuns()
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(sc.ShutdownGrace))
	defer cancel()
	for _, s := range servers {
		_ = s.srv.Shutdown(grace) // refuse new requests; answers in flight finish
	}
	select {
	case <-ctrlDone:
		log.Info("stopped")
	case <-grace.Done():
		return &codeError{exitError, fmt.Errorf("the run in progress did not finish within the shutdown grace of %s", time.Duration(sc.ShutdownGrace))}
	}
	return failed
}

// server is one HTTP listener of the service.
type server struct {
	ln  net.Listener
	srv *http.Server
}

// listen opens the service's listener, and the webhook listener when one is configured.
func listen(log *slog.Logger, sc config.Service, srv *service.Server) ([]server, error) {
	type spec struct {
		addr, what string
		h          http.Handler
	}
	specs := []spec{{sc.Listen, "service", srv.Handler()}}
	if sc.WebhookListen != "" {
		specs = []spec{{sc.Listen, "service", srv.AdminHandler()}, {sc.WebhookListen, "webhooks", srv.WebhookHandler()}}
	}
	var out []server
	for _, s := range specs {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, o := range out {
				o.ln.Close()
			}
			return nil, fmt.Errorf("%s: listen on %s: %w", s.what, s.addr, err)
		}
		log.Info("listening", "what", s.what, "addr", ln.Addr().String())
		out = append(out, server{ln: ln, srv: &http.Server{
			Handler:           s.h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}})
	}
	return out, nil
}

// probes are /readyz's checks: the source (its own check, when it has one) and the SCIM target.
func (rt *app) probes() []service.Probe {
	var ps []service.Probe
	if c, ok := rt.source.(connectors.Checker); ok {
		ps = append(ps, service.Probe{Name: "source", Check: func(ctx context.Context) error {
			_, err := c.Check(ctx)
			return err
		}})
	}
	ps = append(ps, service.Probe{Name: "target", Check: func(ctx context.Context) error {
		_, err := rt.client.FindUser(ctx, "userName", "scimbridge-readyz-probe")
		return err
	}})
	return ps
}
