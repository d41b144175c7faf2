package service

import (
	"bytes"
	_ "embed"
	"fmt"
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
	// Targeted marks a targeted sync whose selection is not shown (not signed in).
	Targeted bool
	// ErrorCount is how many errors the run had, for a page that does not show them.
	ErrorCount int
	// Access is the run's access changes in short ("+13 assignments, 1 permission set updated"),
	// empty when it made none.
	Access string
}

// accessText is the access changes of a run in short, counts only; empty when there are none.
func accessText(c state.AccessCounts) string {
	var parts []string
	add := func(n int, format, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, fmt.Sprintf(format, n, one))
		case n > 1:
			parts = append(parts, fmt.Sprintf(format, n, many))
		}
	}
	add(c.AssignmentsCreated, "+%d %s", "assignment", "assignments")
	add(c.AssignmentsDeleted, "\u2212%d %s", "assignment", "assignments")
	add(c.PermissionSetsCreated, "%d %s created", "permission set", "permission sets")
	add(c.PermissionSetsUpdated, "%d %s updated", "permission set", "permission sets")
	add(c.PermissionSetsProvisioned, "%d %s provisioned", "permission set", "permission sets")
	add(c.PermissionSetsDeleted, "%d %s deleted", "permission set", "permission sets")
	add(c.Failed, "%d %s", "failed", "failed")
	return strings.Join(parts, ", ")
}

type statusPage struct {
	Target      string
	Now         time.Time
	Flash       string
	FlashBad    bool
	Standby     bool
	Follower    bool
	Running     string
	NextRun     time.Time
	NextIn      string
	LastSuccess time.Time
	Feed        *statusFeed
	Runs        []statusRun
	// Chart is the history of the last days as an inline SVG (status_chart.go).
	Chart     template.HTML
	ChartDays int
	Plan      string
	PlanRun   int64
	// SignedIn shows the plan, the run errors, the selections and the run form.
	SignedIn bool
	// CanSignIn shows the sign-in form (a UI password or bearer token is configured).
	CanSignIn bool
	// CSRF is the token of the signed-in forms.
	CSRF string
}

var flashes = map[string]struct {
	text string
	bad  bool
}{
	"run":            {"A run was requested; it starts when no other run is going on.", false},
	"dry-run":        {"A dry run was requested; its plan appears below once it has run.", false},
	"refused":        {"The password was not accepted.", true},
	"signed-out":     {"Signed out.", false},
	"expired":        {"Your session has ended; sign in again.", true},
	"standby":        {"This replica is a standby: nothing was requested. Runs are made by the replica that holds the state lock.", true},
	"forward-failed": {"The request could not be recorded for the leader; try again.", true},
}

// session returns the id of r's live session, or "".
func (s *Server) session(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil || !s.sessions.valid(c.Value, s.now()) {
		return ""
	}
	return c.Value
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now()
	sid := s.session(r)
	p := statusPage{Now: now, NextRun: s.cfg.Controller.NextRun(), SignedIn: sid != "", CanSignIn: s.uiPass.set()}
	if p.SignedIn {
		p.Target, p.CSRF = s.cfg.Target, s.sessions.csrf(sid)
	}
	if p.Target == "" {
		p.Target = "the target"
	}
	p.Standby, _ = s.standby()
	if p.Standby && s.cfg.Forward != nil {
		p.Standby, p.Follower = false, true
	}
	p.Feed = s.feedStatus(now, p.SignedIn)
	q := r.URL.Query()
	for _, k := range []string{"requested", "flash"} {
		if f, ok := flashes[q.Get(k)]; ok {
			p.Flash, p.FlashBad = f.text, f.bad
		}
	}
	if !p.NextRun.IsZero() {
		p.NextIn = max(p.NextRun.Sub(now), 0).Round(time.Second).String()
	}
	if opts, since, ok := s.cfg.Controller.Running(); ok {
		if !p.SignedIn {
			opts.Only = nil // the selection names people
		}
		p.Running = describe(opts) + " since " + since.UTC().Format("15:04:05")
	}
	runs, err := s.cfg.History.Runs(ctx, chartRuns)
	if err != nil {
		s.log.Error("status page: read run history", "err", err)
		http.Error(w, "the run history cannot be read", http.StatusInternalServerError)
		return
	}
	if t, ok, err := s.cfg.History.LastSuccess(ctx); err == nil && ok {
		p.LastSuccess = t
	}
	p.Chart, p.ChartDays = historyChart(runs, now), chartDays
	if len(runs) > statusRuns {
		runs = runs[:statusRuns]
	}
	for _, run := range runs {
		sr := statusRun{Run: run, Duration: "running", ErrorCount: len(run.Errors), Access: accessText(run.Counts.Access)}
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
		if !p.SignedIn {
			// Counts only: errors, selections and plans name users and groups.
			sr.Errors, sr.MoreErrors, sr.Plan = nil, 0, ""
			sr.Targeted, sr.Only = sr.Only != "", ""
		}
		p.Runs = append(p.Runs, sr)
		if p.SignedIn && p.Plan == "" && run.Plan != "" {
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
	if o.Changes != nil {
		s += fmt.Sprintf(" of %d changed entries", o.Changes.Len())
	}
	return s
}

// readForm parses a small form; it answers 400 and returns false when it cannot.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.cfg.Metrics.webhook(endpoint, http.StatusBadRequest)
		s.log.Warn("form refused", "endpoint", endpoint, "status", http.StatusBadRequest, "remote", r.RemoteAddr, "reason", "unreadable form")
		http.Error(w, "unreadable form", http.StatusBadRequest)
		return false
	}
	return true
}

// uiRefuse answers a refused form with a short text and logs why.
func (s *Server) uiRefuse(w http.ResponseWriter, r *http.Request, endpoint string, code int, why string) {
	s.cfg.Metrics.webhook(endpoint, code)
	s.log.Warn("form refused", "endpoint", endpoint, "status", code, "remote", r.RemoteAddr, "reason", why)
	http.Error(w, why, code)
}

// handleLogin signs in with the UI password: a wrong one counts as a failed authentication of
// the client's address and sends the browser back to the page; a right one starts a session.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	const endpoint = "login"
	if s.throttled(w, r, endpoint) || !s.readForm(w, r, endpoint) {
		return
	}
	if !s.uiPass.set() {
		s.uiRefuse(w, r, endpoint, http.StatusForbidden, "sign-in is disabled: set service.ui_password or service.bearer_token")
		return
	}
	if !s.uiPass.equal([]byte(r.PostForm.Get("password"))) {
		left := s.throttle.fail(clientAddr(r), s.now())
		s.cfg.Metrics.webhook(endpoint, http.StatusUnauthorized)
		s.log.Warn("sign-in refused", "endpoint", endpoint, "status", http.StatusUnauthorized, "remote", r.RemoteAddr,
			"reason", "password does not match", "attempts_left", left)
		http.Redirect(w, r, "/?flash=refused", http.StatusSeeOther)
		return
	}
	id := s.sessions.start(s.now())
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r),
	})
	s.cfg.Metrics.webhook(endpoint, http.StatusSeeOther)
	s.log.Info("signed in to the status page", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// isHTTPS reports whether the browser reached the service over https (directly or, as the
// proxy says, through it): the session cookie is then marked Secure.
func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// signedInForm checks that a form comes from a live session with its CSRF token; it answers 403
// and returns "" when not.
func (s *Server) signedInForm(w http.ResponseWriter, r *http.Request, endpoint string) string {
	if !s.readForm(w, r, endpoint) {
		return ""
	}
	sid := s.session(r)
	switch {
	case sid == "":
		s.cfg.Metrics.webhook(endpoint, http.StatusForbidden)
		s.log.Warn("form refused", "endpoint", endpoint, "status", http.StatusForbidden, "remote", r.RemoteAddr, "reason", "no live session")
		http.Redirect(w, r, "/?flash=expired", http.StatusSeeOther)
		return ""
	case !s.sessions.csrfOK(sid, r.PostForm.Get("csrf")):
		s.uiRefuse(w, r, endpoint, http.StatusForbidden, "the form's CSRF token does not match; reload the page")
		return ""
	}
	return sid
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sid := s.signedInForm(w, r, "logout")
	if sid == "" {
		return
	}
	s.sessions.end(sid)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r)})
	s.log.Info("signed out of the status page", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/?flash=signed-out", http.StatusSeeOther)
}

// handleUIRun serves the status page's run form (signed in, with the CSRF token); the answer
// is a redirect back to the page.
func (s *Server) handleUIRun(w http.ResponseWriter, r *http.Request) {
	const endpoint = "ui"
	if s.signedInForm(w, r, endpoint) == "" {
		return
	}
	if standby, why := s.standby(); standby && s.cfg.Forward == nil {
		s.cfg.Metrics.webhook(endpoint, http.StatusServiceUnavailable)
		s.log.Info("request refused: standby", "endpoint", endpoint, "remote", r.RemoteAddr, "reason", why)
		http.Redirect(w, r, "/?flash=standby", http.StatusSeeOther)
		return
	}
	mode := r.PostForm.Get("mode")
	if mode != "run" {
		mode = "dry-run"
	}
	if err := s.request(r.Context(), reconcile.Request{Trigger: "manual", DryRun: mode == "dry-run"}); err != nil {
		s.cfg.Metrics.webhook(endpoint, http.StatusServiceUnavailable)
		s.log.Warn("request not recorded for the leader", "endpoint", endpoint, "err", err)
		http.Redirect(w, r, "/?flash=forward-failed", http.StatusSeeOther)
		return
	}
	s.cfg.Metrics.webhook(endpoint, http.StatusSeeOther)
	s.log.Info("sync requested", "endpoint", endpoint, "remote", r.RemoteAddr, "dry_run", mode == "dry-run")
	http.Redirect(w, r, "/?requested="+mode, http.StatusSeeOther)
}
