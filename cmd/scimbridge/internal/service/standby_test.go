package service

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// standbyFlag is what the state lock's holder would keep up to date.
type standbyFlag struct {
	on atomic.Bool
}

func (s *standbyFlag) get() (bool, string) {
	if s.on.Load() {
		return true, "state lock held by pid 4242 on host replica-b"
	}
	return false, ""
}

// TestStandbyAnswers: a standby replica answers /readyz 503 "standby" (details in the log),
// says so on the status page, refuses webhooks and the run form with 503 / a flash and hands
// nothing to the controller; once active again everything works.
func TestStandbyAnswers(t *testing.T) {
	flag := &standbyFlag{}
	flag.on.Store(true)
	f := newFixture(t, func(c *Config) { c.Standby, c.Google = flag.get, fakeGoogle{} })

	rec := f.do("GET", "/readyz", "", nil)
	if rec.Code != 503 || rec.Body.String() != "not ready: standby\n" {
		t.Errorf("/readyz on a standby: %d %q, want 503 %q", rec.Code, rec.Body.String(), "not ready: standby\n")
	}
	if !strings.Contains(f.logs.String(), "replica-b") {
		t.Errorf("the standby's reason is not logged:\n%s", f.logs)
	}
	page := f.do("GET", "/", "", nil).Body.String()
	if !strings.Contains(page, "standby (another replica holds the state lock)") || strings.Contains(page, "replica-b") {
		t.Errorf("the status page of a standby:\n%s", page)
	}

	body := `{"users":["u1"]}`
	if rec := f.do("POST", "/v1/sync", body, signed(testSecret, f.now, body)); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("signed webhook on a standby: %d Retry-After %q, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	gh := http.Header{google.HeaderChannelID: {"chan-1"}, google.HeaderChannelToken: {"chan-token"}, google.HeaderResourceState: {"update"}}
	if rec := f.do("POST", "/v1/webhooks/google", `{"id":"1234"}`, gh); rec.Code != 503 {
		t.Errorf("google push on a standby: %d, want 503", rec.Code)
	}
	_, cookie := f.login(t, testUIPass, nil)
	csrf := csrfRE.FindStringSubmatch(f.do("GET", "/", "", withCookie(cookie, nil)).Body.String())[1]
	form := url.Values{"csrf": {csrf}, "mode": {"run"}}.Encode()
	if rec := f.do("POST", "/ui/run", form, withCookie(cookie, formHeader())); rec.Header().Get("Location") != "/?flash=standby" {
		t.Errorf("run form on a standby: %d %s, want a redirect to /?flash=standby", rec.Code, rec.Header().Get("Location"))
	}
	if n := len(f.ctrl.requests()); n != 0 {
		t.Errorf("%d requests reached the controller of a standby", n)
	}

	flag.on.Store(false)
	if rec := f.do("GET", "/readyz", "", nil); rec.Code != 200 {
		t.Errorf("/readyz once active: got %d %s, want 200", rec.Code, rec.Body)
	}
	if rec := f.do("POST", "/v1/sync", body, signed(testSecret, f.now.Add(time.Second), body)); rec.Code != 202 {
		t.Errorf("webhook once active: got %d, want 202", rec.Code)
	}
	if page := f.do("GET", "/", "", nil).Body.String(); strings.Contains(page, "standby") {
		t.Error("the page still says standby once active")
	}
}

// countingRunner runs nothing; it counts runs and remembers whether one was cancelled.
type countingRunner struct {
	mu        sync.Mutex
	runs      []reconcile.RunOptions
	cancelled int
	hold      chan struct{} // when set, each run waits for it or its context
}

func (r *countingRunner) RunOnce(ctx context.Context, opts reconcile.RunOptions) (*reconcile.Result, error) {
	r.mu.Lock()
	r.runs = append(r.runs, opts)
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			r.mu.Lock()
			r.cancelled++
			r.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	return &reconcile.Result{}, nil
}

func (r *countingRunner) count() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs), r.cancelled
}

// TestRunControllerStandby drives a real reconcile.Controller through RunController: while the
// replica is a standby neither the schedule nor requests start a run; once active a full run
// starts at once and requests are served; turning standby again cancels the run going on and
// starts no more.
func TestRunControllerStandby(t *testing.T) {
	flag := &standbyFlag{}
	flag.on.Store(true)
	runner := &countingRunner{}
	ctrl, err := reconcile.NewController(reconcile.ControllerConfig{Runner: runner, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *Config) { c.Controller, c.Standby, c.StandbyPoll = ctrl, flag.get, 10*time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.RunController(ctx, ctrl.Run) }()

	ctrl.Request(time.Now(), reconcile.Request{Trigger: "manual"}) // as if a request slipped in
	time.Sleep(300 * time.Millisecond)                             // 15 intervals
	if n, _ := runner.count(); n != 0 {
		t.Fatalf("a standby ran %d syncs", n)
	}
	if text := f.do("GET", "/metrics", "", nil).Body.String(); !strings.Contains(text, "scimbridge_standby 1") {
		t.Error("/metrics does not say standby")
	}

	flag.on.Store(false)
	waitFor(t, "a run once active", func() bool { n, _ := runner.count(); return n >= 2 })
	runner.mu.Lock()
	first := runner.runs[0]
	runner.hold = make(chan struct{})
	runner.mu.Unlock()
	// The request made while standby is served first, as a full run.
	if diff := cmp.Diff(reconcile.RunOptions{Trigger: "manual"}, first); diff != "" {
		t.Errorf("first run once active (-want +got):\n%s", diff)
	}
	if text := f.do("GET", "/metrics", "", nil).Body.String(); !strings.Contains(text, "scimbridge_standby 0") {
		t.Error("/metrics still says standby")
	}
	// A run that holds on; the replica turns standby: the run is cancelled and no more start.
	waitFor(t, "a held run", func() bool {
		_, _, running := ctrl.Running()
		return running
	})
	flag.on.Store(true)
	waitFor(t, "the held run cancelled", func() bool { _, c := runner.count(); return c == 1 })
	n, _ := runner.count()
	time.Sleep(200 * time.Millisecond)
	if m, _ := runner.count(); m != n {
		t.Errorf("%d runs started after the replica turned standby", m-n)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "stopping the runs of this one") || !strings.Contains(logs, "replica-b") {
		t.Errorf("the turn to standby is not logged with its reason:\n%s", logs)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunController: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunController did not return after its context ended")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
	}
}
