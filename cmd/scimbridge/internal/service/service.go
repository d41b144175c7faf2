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
//	GET  /readyz              source and target reachable, last successful sync recent enough, not
//	                          a standby replica; the answer is a status and a short reason, the
//	                          details are in the log; with replicas, "ready: leader" or "ready:
//	                          follower" (Config.Forward)
//	GET  /metrics             Prometheus metrics, scimbridge_*, with no authentication: expose it
//	                          to the scraper only, never through an ingress
//	GET  /                    the status page
//	POST /ui/login            signs in to the status page with the UI password
//	POST /ui/logout           signs out
//	POST /ui/run              requests a run or a dry run (signed in, with the form's CSRF token)
//
// The status page shows to anyone who can reach it the state of the service and, per run, the
// trigger, result and counts. Names, emails, run errors, the last plan and the run form are shown
// only after signing in with service.ui_password (default: service.bearer_token); with neither
// configured nobody can sign in. A sign-in is a cookie session (HttpOnly, SameSite=Strict,
// Secure over https, 12 hours, kept in memory) and the page's forms carry a CSRF token.
//
// Failed authentications (a wrong password, bearer token, signature or Google channel token) are
// logged and counted per client address: after Config.AuthFailuresPerMinute of them (default 5)
// the address is answered 429 until its allowance refills, whatever it sends. Behind a proxy
// every client shares the proxy's address. Passwords and tokens are compared as fixed-length
// HMAC digests, so the time a comparison takes does not depend on the secret's length.
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

// History is what the service reads of the run history; state.Store implements it.
type History interface {
	Runs(ctx context.Context, limit int) ([]state.Run, error)
	LastSuccess(ctx context.Context) (time.Time, bool, error)
}

var _ History = (state.Store)(nil)

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
	// Probes are checked by /readyz, at most once per ProbeCache. They run on a context of the
	// service's own (never on a caller's), one check at a time whoever asks, and an
	// interrupted check is never cached.
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
	// UIPassword signs in to the status page; empty means BearerToken; with neither nobody can
	// sign in and the page shows counts only.
	UIPassword []byte
	// AuthFailuresPerMinute is how many failed authentications one client address may make
	// per minute before it is answered 429; default 5.
	AuthFailuresPerMinute int
	// ReplayWindow is how far a signed timestamp may be from now; default 5m.
	ReplayWindow time.Duration
	// MaxBodyBytes limits webhook bodies; default 1 MiB.
	MaxBodyBytes int64
	// Google, when set, serves POST /v1/webhooks/google.
	Google GoogleVerifier
	// Standby, when set, tells whether this replica is a standby: another replica holds the
	// state store's lock, so this one must not sync. While it reports true:
	//
	//   - RunController does not run the controller (no scheduled, webhook or manual run
	//     starts; a run going on when the replica turns standby is cancelled as on SIGTERM),
	//     and starts it again, with a full run at once, when it reports false;
	//   - /readyz answers 503 "standby", so that the replica leaves the Kubernetes Service;
	//     reason goes to the log only;
	//   - POST /v1/sync, POST /v1/webhooks/google and the status page's run form answer 503
	//     (the sender may retry on the active replica) and hand nothing to the controller;
	//   - the status page says "standby (another replica holds the state lock)";
	//   - the metric scimbridge_standby is 1.
	//
	// It is called on every such request and every StandbyPoll by RunController, from several
	// goroutines at once, so it must be cheap and safe for concurrent use (read a flag the lock
	// holder keeps up to date, or try the lock without waiting). reason is free text for the
	// log, such as "state lock held by pid 42 on host a since 10:02"; it must hold no secret.
	// nil means always active.
	Standby func() (standby bool, reason string)
	// Forward, when set with Standby, makes a replica that is not the leader a follower rather
	// than a standby: it serves as the leader does, except that it runs nothing itself. /readyz
	// answers "ready: follower" (the probes and ReadyMaxAge, read from the shared run history,
	// still apply), the status page says "follower", and POST /v1/sync, the Google webhook and
	// the run form hand their request to Forward, which records it for the leader (in the shared
	// database), instead of answering 503; an error of Forward is answered 503. The leader's
	// /readyz answers "ready: leader". A load balancer may send webhooks and page views to every
	// ready replica.
	Forward func(ctx context.Context, req reconcile.Request) error
	// Feed, when set, is the source's change feed, shown on the status page.
	Feed FeedStatuser
	// StandbyPoll is how often RunController asks Standby; default 5s.
	StandbyPoll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the service's lines; nil discards.
	Logger *slog.Logger
	// Target names the target on the status page, to signed-in users only (no secret in it).
	Target string
}

// Server serves the routes; build it with New.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	replay   *replayCache
	bearer   secretDigest
	uiPass   secretDigest
	throttle *throttle
	sessions *sessions
	csrf     *http.CrossOriginProtection

	// ctx is the service's own context: probes run on it; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	probeMu  sync.Mutex
	probedAt time.Time
	probeErr error
	probing  *probeRun // the check going on, shared by every caller

	readyMu   sync.Mutex
	notReady  string // the last reason /readyz gave, "" when ready
	readySeen bool
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
	if cfg.AuthFailuresPerMinute <= 0 {
		cfg.AuthFailuresPerMinute = 5
	}
	if cfg.StandbyPoll <= 0 {
		cfg.StandbyPoll = 5 * time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := randomBytes(32)
	s := &Server{
		cfg: cfg, log: log, now: now, replay: newReplayCache(100_000),
		bearer:   newSecretDigest(key, cfg.BearerToken),
		uiPass:   newSecretDigest(key, cfg.UIPassword),
		throttle: newThrottle(cfg.AuthFailuresPerMinute, time.Minute, 100_000),
		sessions: newSessions(key),
		csrf:     http.NewCrossOriginProtection(),
	}
	// The raw secrets are not kept: only their digests are compared.
	s.cfg.BearerToken, s.cfg.UIPassword = nil, nil
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops the probes going on; the handlers answer "not ready" from then on.
func (s *Server) Close() error {
	s.cancel()
	return nil
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
	// The forms are refused when a browser says they come from another site, besides
	// carrying a CSRF token (run, logout).
	mux.Handle("POST /ui/login", s.csrf.Handler(http.HandlerFunc(s.handleLogin)))
	mux.Handle("POST /ui/logout", s.csrf.Handler(http.HandlerFunc(s.handleLogout)))
	mux.Handle("POST /ui/run", s.csrf.Handler(http.HandlerFunc(s.handleUIRun)))
}
