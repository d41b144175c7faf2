// Package lambda runs scimbridge as an AWS Lambda function (`scimbridge lambda`, started by the
// binary when AWS_LAMBDA_RUNTIME_API is set). One handler takes two kinds of event:
//
//   - an EventBridge scheduled event ("detail-type": "Scheduled Event") runs a full sync;
//   - a Function URL or API Gateway HTTP API (payload 2.0) request is a webhook: POST /v1/sync,
//     signed (HMAC-SHA256 over timestamp and body) or with the bearer token, and POST
//     /v1/webhooks/google, checked by the very handlers of `scimbridge serve` (package
//     service), then run at once, inside the invocation, and answered with the run's result.
//
// One run at a time: every run takes the state store's one-writer lock first (Config.Lock: the
// PostgreSQL leader lock with a new fencing term, or the SQLite file lock). A scheduled event
// that finds it held does nothing (the holder is syncing); a webhook that finds it held is
// answered 503 with Retry-After.
//
// A run gets the invocation's remaining time less Config.StopMargin (reconcile.StopBefore): when
// the plan would not be done by then, it stops at a request boundary, lets the requests in
// flight finish, records them, and is recorded (as failed) with how far it got. Every write is
// in the state store as it happens, so the next invocation plans from it without reading the
// whole target again and creates nothing twice: a long initial sync is finished over several
// scheduled invocations. StopMargin must cover the target's request timeout and a commit.
//
// The replay cache of signed webhooks is kept per function instance; the signature's timestamp
// window (service.replay_window, 5 minutes) bounds a replay to another instance, and a replayed
// sync request only asks for a sync.
package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// Runner runs one sync; *reconcile.Reconciler implements it.
type Runner interface {
	RunOnce(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Result, error)
}

// ErrBusy is what Config.Lock returns (wrapped) when another run holds the lock; an error that
// wraps state.ErrLocked counts as busy too.
var ErrBusy = errors.New("another run holds the state lock")

// Config configures a Handler.
type Config struct {
	// Runner runs the syncs.
	Runner Runner
	// Lock takes the one-writer lock for one run and returns its release; ctx is the run's. An
	// error wrapping ErrBusy or state.ErrLocked means another run holds it. The context the
	// lock returns, when not nil, replaces the run's: it ends when the lock is lost.
	Lock func(ctx context.Context) (runCtx context.Context, release func(), err error)
	// Service configures the webhook handlers (secrets, replay window, body limit, Google);
	// its Controller is the handler's own and is set by New.
	Service service.Config
	// Options are the base options of every run (AllowDeletes).
	Options reconcile.RunOptions
	// StopMargin is how long before the invocation's deadline a run stops starting requests;
	// default 30s.
	StopMargin time.Duration
	// Logger receives the handler's lines; nil discards.
	Logger *slog.Logger
}

// Handler is the Lambda function's handler; pass Invoke to lambda.Start.
type Handler struct {
	cfg Config
	log *slog.Logger
	web *service.Server
	ctl *requests
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Runner == nil || cfg.Lock == nil {
		return nil, errors.New("lambda: Config.Runner and Config.Lock are required")
	}
	if cfg.StopMargin <= 0 {
		cfg.StopMargin = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, log: log, ctl: &requests{}}
	sc := cfg.Service
	sc.Controller = h.ctl
	if sc.Logger == nil {
		sc.Logger = log
	}
	web, err := service.New(sc)
	if err != nil {
		return nil, fmt.Errorf("lambda: %w", err)
	}
	h.web = web
	return h, nil
}

// Outcome is what a run answers: to a scheduled event as the function's result, to a webhook
// as the JSON body. It names no user or group.
type Outcome struct {
	RunID   int64        `json:"run_id,omitempty"`
	Trigger string       `json:"trigger"`
	Result  string       `json:"result"`
	Counts  state.Counts `json:"counts"`
	// Stopped is true when the run stopped before the end of its plan (the budget ran out); the
	// next invocation continues.
	Stopped bool `json:"stopped,omitempty"`
	// Busy is true when another run held the lock and this one did nothing.
	Busy bool `json:"busy,omitempty"`
}

// event is what tells the kinds of event apart.
type event struct {
	DetailType     *string `json:"detail-type"`
	Source         string  `json:"source"`
	RequestContext *struct {
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
}

// Invoke handles one event: a scheduled event runs a sync and returns its Outcome (an error
// only when the run failed, so that Lambda's error metrics and alarms see it); an HTTP request
// returns an events.LambdaFunctionURLResponse (which API Gateway's payload 2.0 also reads).
func (h *Handler) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("lambda: event is not a JSON object: %w", err)
	}
	switch {
	case ev.DetailType != nil:
		if *ev.DetailType != "Scheduled Event" {
			return nil, fmt.Errorf("lambda: EventBridge event %q from %q: only scheduled events run a sync", *ev.DetailType, ev.Source)
		}
		opts := h.cfg.Options
		opts.Trigger = reconcile.TriggerSchedule
		out, err := h.run(ctx, opts)
		if err != nil && out.Result == reconcile.ResultFailed && !out.Stopped {
			return out, err
		}
		return out, nil
	case ev.RequestContext != nil && ev.RequestContext.HTTP != nil:
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("lambda: HTTP request event: %w", err)
		}
		return h.serveHTTP(ctx, req), nil
	}
	return nil, errors.New("lambda: unrecognised event: neither an EventBridge scheduled event nor a Function URL / API Gateway (payload 2.0) request")
}

// run takes the lock and runs one sync within the invocation's budget.
func (h *Handler) run(ctx context.Context, opts reconcile.RunOptions) (Outcome, error) {
	out := Outcome{Trigger: opts.Trigger}
	runCtx, release, err := h.cfg.Lock(ctx)
	if errors.Is(err, ErrBusy) || errors.Is(err, state.ErrLocked) {
		h.log.Info("another run holds the state lock; this invocation does nothing", "trigger", opts.Trigger, "reason", err.Error())
		out.Busy, out.Result = true, "busy"
		return out, err
	}
	if err != nil {
		out.Result = reconcile.ResultFailed
		return out, fmt.Errorf("lambda: take the state lock: %w", err)
	}
	defer release()
	if runCtx == nil {
		runCtx = ctx
	}
	if d, ok := ctx.Deadline(); ok {
		h.log.Info("run starts", "trigger", opts.Trigger, "budget", time.Until(d).Round(time.Millisecond).String(),
			"stop_margin", h.cfg.StopMargin.String())
	}
	budget, cancel := reconcile.StopBefore(runCtx, h.cfg.StopMargin)
	defer cancel()
	res, err := h.cfg.Runner.RunOnce(budget, opts)
	if res != nil {
		out.RunID, out.Result, out.Counts = res.RunID, res.Result, res.Counts
	} else {
		out.Result = reconcile.ResultFailed
	}
	out.Stopped = errors.Is(err, reconcile.ErrStopped)
	if out.Stopped {
		h.log.Info("run stopped at its budget; the next invocation continues", "run_id", out.RunID, "err", err)
	}
	return out, err
}

// serveHTTP checks a webhook with the service's handlers and, when it asks for a run, runs it.
func (h *Handler) serveHTTP(ctx context.Context, ev events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return jsonResponse(http.StatusBadRequest, map[string]string{"error": "body is not valid base64"})
		}
		body = b
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	r, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, "https://lambda"+path, bytes.NewReader(body))
	if err != nil {
		return jsonResponse(http.StatusBadRequest, map[string]string{"error": "bad request line"})
	}
	for k, v := range ev.Headers {
		r.Header.Set(k, v)
	}
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP + ":0"
	r.ContentLength = int64(len(body))

	h.ctl.reset()
	w := &response{header: http.Header{}}
	h.web.WebhookHandler().ServeHTTP(w, r)
	req, asked := h.ctl.take()
	if !asked || w.status != http.StatusAccepted {
		return w.lambda()
	}
	opts := h.cfg.Options
	opts.Trigger, opts.DryRun = req.Trigger, req.DryRun
	if !req.Only.Empty() {
		sel := req.Only
		opts.Only = &sel
	}
	out, err := h.run(ctx, opts)
	switch {
	case out.Busy:
		resp := jsonResponse(http.StatusServiceUnavailable, map[string]any{"error": "busy: another run holds the state lock", "busy": true})
		resp.Headers["Retry-After"] = "60"
		return resp
	case err != nil && out.Result == reconcile.ResultFailed && out.RunID == 0 && !out.Stopped:
		h.log.Error("webhook run failed", "err", err)
		return jsonResponse(http.StatusInternalServerError, map[string]string{"error": "run failed; see the function's log"})
	}
	if err != nil {
		h.log.Warn("webhook run ended with an error", "run_id", out.RunID, "err", err)
	}
	return jsonResponse(http.StatusOK, out)
}

func jsonResponse(code int, v any) events.LambdaFunctionURLResponse {
	b, _ := json.Marshal(v)
	return events.LambdaFunctionURLResponse{StatusCode: code, Body: string(b),
		Headers: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}}
}

// requests is the service's Controller inside the handler: it keeps the run a webhook asked for,
// which the handler then runs in the same invocation.
type requests struct {
	mu    sync.Mutex
	req   reconcile.Request
	asked bool
}

var _ service.Controller = (*requests)(nil)

func (c *requests) Request(_ time.Time, req reconcile.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.req, c.asked = req, true
}

func (c *requests) NextRun() time.Time { return time.Time{} }

func (c *requests) Running() (reconcile.RunOptions, time.Time, bool) {
	return reconcile.RunOptions{}, time.Time{}, false
}

func (c *requests) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.req, c.asked = reconcile.Request{}, false
}

func (c *requests) take() (reconcile.Request, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.req, c.asked
}

// response is the http.ResponseWriter the service's handlers write a Lambda answer into.
type response struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *response) Header() http.Header { return w.header }

func (w *response) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *response) lambda() events.LambdaFunctionURLResponse {
	out := events.LambdaFunctionURLResponse{StatusCode: w.status, Body: w.body.String(), Headers: map[string]string{}}
	if out.StatusCode == 0 {
		out.StatusCode = http.StatusOK
	}
	for k, v := range w.header {
		out.Headers[k] = strings.Join(v, ", ")
	}
	return out
}
