// Package service is the HTTP side of `scimbridge serve`: webhooks that ask for a sync, health
// and readiness, Prometheus metrics and a server-rendered status page. It never syncs inside a
// request: webhooks hand a request to the controller (scim/reconcile) and answer 202 at once.
//
// Routes:
//
//	POST /v1/sync             a signed (HMAC-SHA256) or bearer-token request for a sync; the optional
//	                          JSON body {"users": [...], "groups": [...], "dry_run": false} names
//	                          source ids for a targeted sync
//	POST /v1/webhooks/google  Google Directory push notifications (channel id and token checked)
//	GET  /healthz             the process is up
//	GET  /readyz              source and target reachable, last successful sync recent enough
//	GET  /metrics             Prometheus metrics, scimbridge_*
//	GET  /                    the status page; POST /ui/run requests a run or a dry run from it
//
// Signing a request with the shared secret (a shell example):
//
//	ts=$(date +%s); body='{"users":["u-1001"]}'
//	sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -hex | sed 's/^.* //')
//	curl -X POST -H "X-Scimbridge-Timestamp: $ts" -H "X-Scimbridge-Signature: sha256=$sig" \
//	     -d "$body" http://127.0.0.1:8080/v1/sync
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// Controller is what the service needs of the reconcile controller.
type Controller interface {
	Request(now time.Time, req reconcile.Request)
	NextRun() time.Time
	Running() (reconcile.RunOptions, time.Time, bool)
}

var _ Controller = (*reconcile.Controller)(nil)

// History is what the service reads of the run history; *state.Store implements it.
type History interface {
	Runs(ctx context.Context, limit int) ([]state.Run, error)
	LastSuccess(ctx context.Context) (time.Time, bool, error)
}

var _ History = (*state.Store)(nil)

// Probe checks that one dependency (the source, the target) is reachable.
type Probe struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	Controller Controller
	History    History
	Metrics    *Metrics
	// Probes are checked by /readyz, at most once per ProbeCache.
	Probes     []Probe
	ProbeCache time.Duration
	// ProbeTimeout bounds one probe; default 10s.
	ProbeTimeout time.Duration
	// ReadyMaxAge fails /readyz when the last successful sync ended longer ago; 0 disables.
	ReadyMaxAge time.Duration
	// WebhookSecret is the HMAC key of POST /v1/sync; BearerToken the alternative token. With
	// neither, POST /v1/sync answers 401.
	WebhookSecret []byte
	BearerToken   []byte
	// UIPassword protects the status page's form; empty means BearerToken; with neither the
	// form is disabled.
	UIPassword []byte
	// ReplayWindow is how far a signed timestamp may be from now; default 5m.
	ReplayWindow time.Duration
	// MaxBodyBytes limits webhook bodies; default 1 MiB.
	MaxBodyBytes int64
	// Google, when set, serves POST /v1/webhooks/google.
	Google GoogleVerifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's lines; nil discards.
	Logger *slog.Logger
	// Target names the target on the status page (no secret in it).
	Target string
}

// Server serves the routes; build it with New.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	replay *replayCache

	probeMu  sync.Mutex
	probedAt time.Time
	probeErr error
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Controller == nil {
		errs = append(errs, errors.New("service: Config.Controller is required"))
	}
	if cfg.History == nil {
		errs = append(errs, errors.New("service: Config.History is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = 5 * time.Minute
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 10 * time.Second
	}
	if len(cfg.UIPassword) == 0 {
		cfg.UIPassword = cfg.BearerToken
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log, now: now, replay: newReplayCache(100_000)}, nil
}

// Handler serves every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.webhookRoutes(mux)
	s.adminRoutes(mux)
	return mux
}

// WebhookHandler serves only the webhooks, for a listener of their own.
func (s *Server) WebhookHandler() http.Handler {
	mux := http.NewServeMux()
	s.webhookRoutes(mux)
	return mux
}

// AdminHandler serves everything but the webhooks.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	s.adminRoutes(mux)
	return mux
}

func (s *Server) webhookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/sync", s.handleSync)
	mux.HandleFunc("POST /v1/webhooks/google", s.handleGoogle)
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	mux.HandleFunc("GET /{$}", s.handleStatus)
	mux.HandleFunc("POST /ui/run", s.handleUIRun)
}

// Ready reports why the service is not ready, or nil: a probe failed (cached for ProbeCache),
// or the last successful sync is missing or older than ReadyMaxAge.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.probe(ctx); err != nil {
		return err
	}
	if s.cfg.ReadyMaxAge <= 0 {
		return nil
	}
	last, ok, err := s.cfg.History.LastSuccess(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("run history: %w", err)
	case !ok:
		return errors.New("no successful sync yet")
	}
	if age := s.now().Sub(last); age > s.cfg.ReadyMaxAge {
		return fmt.Errorf("last successful sync ended %s ago, more than %s", age.Round(time.Second), s.cfg.ReadyMaxAge)
	}
	return nil
}

// probe runs the probes, or returns the cached outcome while it is fresh.
func (s *Server) probe(ctx context.Context) error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	now := s.now()
	if !s.probedAt.IsZero() && now.Sub(s.probedAt) < s.cfg.ProbeCache {
		return s.probeErr
	}
	var errs []error
	for _, p := range s.cfg.Probes {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
		err := p.Check(pctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
		}
	}
	s.probedAt, s.probeErr = now, errors.Join(errs...)
	if s.probeErr != nil {
		s.log.Warn("readiness probe failed", "err", s.probeErr)
	}
	return s.probeErr
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.Ready(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
