package service

import (
	"bytes"
	"crypto/subtle"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}).Parse(statusHTML))

// statusRuns is how many runs the page lists; statusErrors how many errors per run.
const (
	statusRuns   = 20
	statusErrors = 5
)

type statusRun struct {
	state.Run
	Duration   string
	MoreErrors int
	// Only names the selection of a targeted sync, from its recorded plan.
	Only string
}

type statusPage struct {
	Target      string
	Now         time.Time
	Flash       string
	FlashBad    bool
	Running     string
	NextRun     time.Time
	NextIn      string
	LastSuccess time.Time
	Runs        []statusRun
	Plan        string
	PlanRun     int64
	FormEnabled bool
}

var flashes = map[string]string{
	"run":     "A run was requested; it starts when no other run is going on.",
	"dry-run": "A dry run was requested; its plan appears below once it has run.",
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now()
	p := statusPage{Target: s.cfg.Target, Now: now, NextRun: s.cfg.Controller.NextRun(), FormEnabled: len(s.cfg.UIPassword) > 0}
	if p.Target == "" {
		p.Target = "the target"
	}
	p.Flash = flashes[r.URL.Query().Get("requested")]
	if r.URL.Query().Get("refused") != "" {
		p.Flash, p.FlashBad = "The token was not accepted; nothing was requested.", true
	}
	if !p.NextRun.IsZero() {
		p.NextIn = max(p.NextRun.Sub(now), 0).Round(time.Second).String()
	}
	if opts, since, ok := s.cfg.Controller.Running(); ok {
		p.Running = describe(opts) + " since " + since.UTC().Format("15:04:05")
	}
	runs, err := s.cfg.History.Runs(ctx, statusRuns)
	if err != nil {
		s.log.Error("status page: read run history", "err", err)
		http.Error(w, "the run history cannot be read", http.StatusInternalServerError)
		return
	}
	if t, ok, err := s.cfg.History.LastSuccess(ctx); err == nil && ok {
		p.LastSuccess = t
	}
	for _, run := range runs {
		sr := statusRun{Run: run, Duration: "running"}
		if run.Result == "" {
			sr.Result = "running"
		}
		if !run.Ended.IsZero() {
			sr.Duration = run.Ended.Sub(run.Started).Round(time.Millisecond).String()
		}
		if first, _, _ := strings.Cut(run.Plan, "\n"); strings.HasPrefix(first, "Targeted sync of ") {
			sr.Only = strings.TrimSuffix(strings.TrimPrefix(first, "Targeted sync of "), ".")
		}
		if n := len(run.Errors); n > statusErrors {
			sr.Errors, sr.MoreErrors = run.Errors[:statusErrors], n-statusErrors
		}
		p.Runs = append(p.Runs, sr)
		if p.Plan == "" && run.Plan != "" {
			p.Plan, p.PlanRun = run.Plan, run.ID
		}
	}
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, p); err != nil {
		s.log.Error("status page: render", "err", err)
		http.Error(w, "the status page cannot be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(b.Bytes())
}

func describe(o reconcile.RunOptions) string {
	s := o.Trigger
	if o.DryRun {
		s += " dry run"
	}
	if o.Only != nil {
		s += " of " + o.Only.String()
	}
	return s
}

// handleUIRun serves the status page's form: the token typed in is compared in constant time
// with the UI password (or the bearer token); the answer is a redirect back to the page.
func (s *Server) handleUIRun(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, "ui", http.StatusBadRequest, errors.New("unreadable form"))
		return
	}
	if len(s.cfg.UIPassword) == 0 {
		s.refuse(w, r, "ui", http.StatusForbidden, errors.New("the form is disabled: no ui_password or bearer_token"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), s.cfg.UIPassword) != 1 {
		s.cfg.Metrics.webhook("ui", http.StatusUnauthorized)
		s.log.Warn("webhook refused", "endpoint", "ui", "status", http.StatusUnauthorized, "remote", r.RemoteAddr, "reason", "token does not match")
		http.Redirect(w, r, "/?refused=1", http.StatusSeeOther)
		return
	}
	mode := r.PostForm.Get("mode")
	if mode != "run" {
		mode = "dry-run"
	}
	s.cfg.Controller.Request(s.now(), reconcile.Request{Trigger: "manual", DryRun: mode == "dry-run"})
	s.cfg.Metrics.webhook("ui", http.StatusSeeOther)
	s.log.Info("sync requested", "endpoint", "ui", "remote", r.RemoteAddr, "dry_run", mode == "dry-run")
	http.Redirect(w, r, "/?requested="+mode, http.StatusSeeOther)
}
