package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors/google"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

const (
	testSecret = "hmac-secret-9f8e7d"
	testToken  = "bearer-token-1a2b3c"
	testUIPass = "ui-password-4d5e6f"
)

// fakeController records the requests the service hands over.
type fakeController struct {
	mu   sync.Mutex
	reqs []reconcile.Request
	next time.Time
}

func (c *fakeController) Request(_ time.Time, r reconcile.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, r)
}

func (c *fakeController) NextRun() time.Time { return c.next }

func (c *fakeController) Running() (reconcile.RunOptions, time.Time, bool) {
	return reconcile.RunOptions{}, time.Time{}, false
}

func (c *fakeController) requests() []reconcile.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]reconcile.Request(nil), c.reqs...)
}

type fixture struct {
	srv  *Server
	ctrl *fakeController
	st   state.Store
	logs *bytes.Buffer
	now  time.Time
	h    http.Handler
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{ctrl: &fakeController{}, st: st, logs: &bytes.Buffer{}, now: time.Unix(1_800_000_000, 0)}
	var mu sync.Mutex
	cfg := Config{
		Controller: f.ctrl, History: st,
		WebhookSecret: []byte(testSecret), BearerToken: []byte(testToken), UIPassword: []byte(testUIPass),
		MaxBodyBytes: 1024, ReplayWindow: 5 * time.Minute,
		// Tests of other things send many refused requests from one address; the throttle's
		// own test sets the default back.
		AuthFailuresPerMinute: 1_000_000,
		Now:                   func() time.Time { return f.now },
		Logger:                slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs, mu: &mu}, nil)),
		Target:                "the test emulator",
	}
	if mod != nil {
		mod(&cfg)
	}
	f.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	return f
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) do(method, path string, body string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func signed(secret string, ts time.Time, body string) http.Header {
	return http.Header{
		HeaderTimestamp: {strconv.FormatInt(ts.Unix(), 10)},
		HeaderSignature: {Sign([]byte(secret), ts, []byte(body))},
	}
}

func TestSyncWebhookAuth(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"users":["u2","u1"],"groups":["g1"]}`
	replayed := signed(testSecret, f.now, `{"users":["r"]}`)
	tests := []struct {
		name   string
		body   string
		header http.Header
		want   int
	}{
		{"no signature nor token", body, nil, 401},
		{"wrong signature", body, signed("another-secret", f.now, body), 401},
		{"signature over another body", body, signed(testSecret, f.now, `{"users":["u3"]}`), 401},
		{"signature without sha256= prefix", body, http.Header{HeaderTimestamp: {strconv.FormatInt(f.now.Unix(), 10)},
			HeaderSignature: {strings.TrimPrefix(Sign([]byte(testSecret), f.now, []byte(body)), "sha256=")}}, 401},
		{"stale timestamp", body, signed(testSecret, f.now.Add(-6*time.Minute), body), 401},
		{"timestamp from the future", body, signed(testSecret, f.now.Add(6*time.Minute), body), 401},
		{"timestamp not a number", body, http.Header{HeaderTimestamp: {"yesterday"}, HeaderSignature: {"sha256=00"}}, 401},
		{"first use of a signature", `{"users":["r"]}`, replayed, 202},
		{"replay", `{"users":["r"]}`, replayed, 401},
		{"oversized body", `{"users":["` + strings.Repeat("x", 2000) + `"]}`, signed(testSecret, f.now, "big"), 413},
		{"wrong bearer token", body, http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"basic auth instead of bearer", body, http.Header{"Authorization": {"Basic " + testToken}}, 401},
		{"signed but not JSON", "users=u1", signed(testSecret, f.now, "users=u1"), 400},
		{"signed with an unknown field", `{"user":["u1"]}`, signed(testSecret, f.now, `{"user":["u1"]}`), 400},
		{"signed, targeted", body, signed(testSecret, f.now.Add(-time.Minute), body), 202},
		{"bearer token, empty body", "", http.Header{"Authorization": {"Bearer " + testToken}}, 202},
	}
	for _, tt := range tests {
		before := len(f.ctrl.requests())
		rec := f.do("POST", "/v1/sync", tt.body, tt.header)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, rec.Code, tt.want, rec.Body)
		}
		if got := len(f.ctrl.requests()) - before; (tt.want == 202) != (got == 1) {
			t.Errorf("%s: %d requests reached the controller", tt.name, got)
		}
	}
	want := []reconcile.Request{
		{Trigger: "webhook", Only: reconcile.Selection{Users: []string{"r"}}},
		{Trigger: "webhook", Only: reconcile.Selection{Users: []string{"u1", "u2"}, Groups: []string{"g1"}}},
		{Trigger: "webhook"},
	}
	if diff := cmp.Diff(want, f.ctrl.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	logs := f.logs.String()
	for _, s := range []string{testSecret, testToken, "nope", "another-secret"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
	for _, reason := range []string{"signature does not match", "outside the replay window", "replay", "no signature or bearer token", "bearer token does not match"} {
		if !strings.Contains(logs, reason) {
			t.Errorf("no refusal logged with reason %q", reason)
		}
	}
}

func TestSyncWebhookDisabledWithoutSecrets(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.WebhookSecret, c.BearerToken, c.UIPassword = nil, nil, nil })
	if rec := f.do("POST", "/v1/sync", "", http.Header{"Authorization": {"Bearer "}}); rec.Code != 401 {
		t.Errorf("status %d, want 401 with no secret configured", rec.Code)
	}
	if rec := f.do("POST", "/v1/sync", "", signed("", f.now, "")); rec.Code != 401 {
		t.Errorf("status %d, want 401 for an empty-key signature with no secret configured", rec.Code)
	}
	if rec := f.do("POST", "/ui/login", "password=", formHeader()); rec.Code != 403 {
		t.Errorf("sign-in with no password configured: status %d, want 403", rec.Code)
	}
	if rec := f.do("POST", "/ui/run", "mode=run", formHeader()); rec.Code != 303 || rec.Header().Get("Location") != "/?flash=expired" {
		t.Errorf("run form without a session: %d %s, want 303 to /?flash=expired", rec.Code, rec.Header().Get("Location"))
	}
	if n := len(f.ctrl.requests()); n != 0 {
		t.Errorf("%d requests reached the controller", n)
	}
}

func TestReplayCacheForgetsAfterTheWindow(t *testing.T) {
	c := newReplayCache(2)
	t0 := time.Unix(1000, 0)
	if err := c.add("a", t0, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.add("a", t0.Add(30*time.Second), t0.Add(time.Minute)); !errors.Is(err, errReplay) {
		t.Errorf("replay within the window: %v", err)
	}
	_ = c.add("b", t0, t0.Add(time.Minute))
	if err := c.add("c", t0, t0.Add(time.Minute)); !errors.Is(err, errCacheFull) {
		t.Errorf("third signature in a cache of 2: %v, want cache full", err)
	}
	if err := c.add("c", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Errorf("after the window the expired entries make room: %v", err)
	}
}

// fakeGoogle verifies like the Google source: one channel with one token.
type fakeGoogle struct{}

func (fakeGoogle) Verify(h http.Header, body []byte) (google.Notification, error) {
	switch {
	case h.Get(google.HeaderChannelID) != "chan-1":
		return google.Notification{}, fmt.Errorf("%w: %q", google.ErrUnknownChannel, h.Get(google.HeaderChannelID))
	case h.Get(google.HeaderChannelToken) != "chan-token":
		return google.Notification{}, fmt.Errorf("%w: channel chan-1", google.ErrBadToken)
	}
	n := google.Notification{ChannelID: "chan-1", State: h.Get(google.HeaderResourceState)}
	switch {
	case n.State == google.StateSync:
		return n, nil
	case !bytes.Contains(body, []byte(`"id"`)):
		return google.Notification{}, fmt.Errorf("%w: body does not name a user", google.ErrBadNotification)
	}
	n.UserID = "1234"
	return n, nil
}

func TestGoogleWebhook(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Google = fakeGoogle{} })
	hdr := func(id, token, state string) http.Header {
		return http.Header{google.HeaderChannelID: {id}, google.HeaderChannelToken: {token}, google.HeaderResourceState: {state}}
	}
	user := `{"kind":"admin#directory#user","id":"1234","primaryEmail":"a@example.com"}`
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   int
	}{
		{"wrong channel token", hdr("chan-1", "stolen", "update"), user, 401},
		{"unknown channel", hdr("chan-9", "chan-token", "update"), user, 401},
		{"no headers", nil, user, 401},
		{"malformed notification", hdr("chan-1", "chan-token", "update"), `{}`, 400},
		{"oversized body", hdr("chan-1", "chan-token", "update"), strings.Repeat("x", 2000), 413},
		{"sync confirms the channel", hdr("chan-1", "chan-token", "sync"), "", 202},
		{"user update", hdr("chan-1", "chan-token", "update"), user, 202},
	}
	for _, tt := range tests {
		if rec := f.do("POST", "/v1/webhooks/google", tt.body, tt.header); rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
	want := []reconcile.Request{{Trigger: "google", Only: reconcile.Selection{Users: []string{"1234"}}}}
	if diff := cmp.Diff(want, f.ctrl.requests()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if strings.Contains(f.logs.String(), "stolen") {
		t.Error("the log holds the channel token sent")
	}
	g := newFixture(t, nil)
	if rec := g.do("POST", "/v1/webhooks/google", user, hdr("chan-1", "chan-token", "update")); rec.Code != 404 {
		t.Errorf("without a Google source: status %d, want 404", rec.Code)
	}
}

func TestReadyz(t *testing.T) {
	var calls int
	var targetErr error
	f := newFixture(t, func(c *Config) {
		c.ProbeCache, c.ReadyMaxAge = 30*time.Second, time.Hour
		c.Probes = []Probe{
			{Name: "source", Check: func(context.Context) error { calls++; return nil }},
			{Name: "target", Check: func(context.Context) error { return targetErr }},
		}
	})
	ready := func() (int, string) {
		rec := f.do("GET", "/readyz", "", nil)
		return rec.Code, rec.Body.String()
	}
	if code, body := ready(); code != 503 || !strings.Contains(body, "no successful sync yet") {
		t.Errorf("before any sync: got %d %q, want 503 saying no successful sync yet", code, body)
	}
	ctx := context.Background()
	id, _ := f.st.StartRun(ctx, "schedule", false, f.now.Add(-2*time.Hour))
	if err := f.st.FinishRun(ctx, id, state.ResultSuccess, state.Counts{}, nil, "", f.now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, body := ready(); code != 503 || body != "not ready: last successful sync too old\n" {
		t.Errorf("last success 2h ago: got %d %q, want 503 %q", code, body, "not ready: last successful sync too old\n")
	}
	id, _ = f.st.StartRun(ctx, "schedule", false, f.now.Add(-time.Minute))
	_ = f.st.FinishRun(ctx, id, state.ResultSuccess, state.Counts{}, nil, "", f.now.Add(-time.Minute))
	if code, body := ready(); code != 200 {
		t.Errorf("recent success: got %d %q, want 200", code, body)
	}
	if calls != 1 {
		t.Errorf("source probed %d times within the cache time, want 1", calls)
	}
	targetErr = errors.New("connection refused")
	f.now = f.now.Add(31 * time.Second)
	if code, body := ready(); code != 503 || body != "not ready: target not reachable\n" {
		t.Errorf("target down: got %d %q, want 503 %q", code, body, "not ready: target not reachable\n")
	}
	if logs := f.logs.String(); !strings.Contains(logs, "target: connection refused") || !strings.Contains(logs, "more than ready_max_age 1h0m0s") {
		t.Errorf("the log lacks the details of the failures:\n%s", logs)
	}
	targetErr = nil
	f.now = f.now.Add(10 * time.Second)
	if code, _ := ready(); code != 503 {
		t.Errorf("within the probe cache the failure is kept: got %d, want 503", code)
	}
	if calls != 2 {
		t.Errorf("source probed %d times, want 2", calls)
	}
	if rec := f.do("GET", "/healthz", "", nil); rec.Code != 200 {
		t.Errorf("healthz: got %d, want 200", rec.Code)
	}
}

// TestMetricsAfterRun runs a real sync against the emulator, with the metrics as the client's
// observer and the controller reporting to them, and scrapes /metrics.
func TestMetricsAfterRun(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	metrics := NewMetrics()
	c, err := client.New(client.Config{
		BaseURL:  emu.URL,
		Token:    func(context.Context) (string, error) { return emu.Token, nil },
		Observer: metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	desired := scim.Snapshot{
		Users: []scim.User{
			{ExternalID: "u1", UserName: "alice@example.com", DisplayName: "Alice", GivenName: "Alice", FamilyName: "A", Active: true},
			{ExternalID: "u2", UserName: "bob@example.com", DisplayName: "Bob", GivenName: "Bob", FamilyName: "B", Active: true},
		},
		Groups: []scim.Group{{ExternalID: "g1", DisplayName: "Admins", Members: []string{"u1", "u2"}}},
	}
	var mu sync.Mutex
	r, err := reconcile.New(reconcile.Config{
		Desired: func(context.Context) (scim.Snapshot, error) { mu.Lock(); defer mu.Unlock(); return desired, nil },
		Target:  c, Reader: c, State: st,
		Guards: plan.Guards{MaxDeletes: 0, MaxDeletePercent: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := reconcile.NewController(reconcile.ControllerConfig{Runner: r, Interval: time.Hour,
		OnStart: metrics.RunStarted, OnFinish: metrics.RunFinished})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A dry run that would delete bob, then the same for real: blocked by max_deletes 0.
	mu.Lock()
	desired.Users = desired.Users[:1]
	desired.Groups[0].Members = []string{"u1"}
	mu.Unlock()
	if _, err := r.RunOnce(context.Background(), reconcile.RunOptions{Trigger: "manual", DryRun: true}); err == nil {
		t.Fatal("dry run past the guard: no error")
	}
	mu.Lock()
	desired.Users = append(desired.Users, scim.User{ExternalID: "u2", UserName: "bob@example.com", DisplayName: "Bob", GivenName: "Bob", FamilyName: "B", Active: true})
	desired.Users = append(desired.Users, scim.User{ExternalID: "u3", UserName: "carol@example.com", DisplayName: "Carol", GivenName: "Carol", FamilyName: "C", Active: true})
	mu.Unlock()
	res, err := r.RunOnce(context.Background(), reconcile.RunOptions{Trigger: "manual", DryRun: true})
	metrics.RunFinished(reconcile.RunOptions{Trigger: "manual", DryRun: true}, res, err)
	mu.Lock()
	desired.Users = desired.Users[:1]
	mu.Unlock()
	res, err = r.RunOnce(context.Background(), reconcile.RunOptions{Trigger: "webhook"})
	metrics.RunFinished(reconcile.RunOptions{Trigger: "webhook"}, res, err)

	f := newFixture(t, func(c *Config) { c.Metrics = metrics })
	rec := f.do("GET", "/metrics", "", nil)
	if rec.Code != 200 {
		t.Fatalf("/metrics: got %d, want 200", rec.Code)
	}
	text := rec.Body.String()
	for _, want := range []string{
		`scimbridge_runs_total{dry_run="false",result="success",trigger="schedule"} 1`,
		`scimbridge_runs_total{dry_run="false",result="blocked",trigger="webhook"} 1`,
		`scimbridge_objects_total{change="created"} 3`,
		`scimbridge_objects_total{change="member_added"} 2`,
		`scimbridge_objects_total{change="deleted"} 0`,
		`scimbridge_runs_blocked_by_guard_total 1`,
		`scimbridge_pending_changes 2`,
		`scimbridge_pending_changes_by_kind{change="create_user"} 1`,
		`scimbridge_run_in_progress 0`,
		`scimbridge_api_requests_total{code="2xx",operation="CreateUser",target="scim"} 2`,
		`scimbridge_api_requests_total{code="2xx",operation="CreateGroup",target="scim"} 1`,
		`scimbridge_run_duration_seconds_count{dry_run="false",trigger="schedule"} 1`,
		`scimbridge_api_request_duration_seconds_count{target="scim"}`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^scimbridge_last_success_timestamp_seconds (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no scimbridge_last_success_timestamp_seconds")
	}
	if v, _ := strconv.ParseFloat(m[1], 64); time.Since(time.Unix(int64(v), 0)) > time.Hour {
		t.Errorf("last success timestamp %s is not the run's end", m[1])
	}

	// Throttles are counted by target and operation.
	metrics.ObserveRequest("identitystore", "ListUsers", 400, time.Millisecond, client.ErrThrottled)
	metrics.ObserveRequest("scim", "PatchGroup", 429, time.Millisecond, nil)
	text = f.do("GET", "/metrics", "", nil).Body.String()
	for _, want := range []string{
		`scimbridge_api_throttled_total{operation="ListUsers",target="identitystore"} 1`,
		`scimbridge_api_throttled_total{operation="PatchGroup",target="scim"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkSignedSyncWebhook measures one signed POST /v1/sync: body read, HMAC check, replay
// cache and hand-over to the controller.
func BenchmarkSignedSyncWebhook(b *testing.B) {
	ctrl := &fakeController{}
	srv, err := New(Config{Controller: ctrl, History: nopHistory{}, WebhookSecret: []byte(testSecret)})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := []byte(fmt.Sprintf(`{"users":["u%d","u2"],"groups":["g1"]}`, i)) // a fresh signature each time
		req := httptest.NewRequest("POST", "/v1/sync", bytes.NewReader(body))
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(HeaderSignature, Sign([]byte(testSecret), now, body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 202 {
			b.Fatalf("status %d", rec.Code)
		}
		ctrl.reqs = ctrl.reqs[:0]
	}
}

type nopHistory struct{}

func (nopHistory) Runs(context.Context, int) ([]state.Run, error) { return nil, nil }
func (nopHistory) LastSuccess(context.Context) (time.Time, bool, error) {
	return time.Time{}, false, nil
}
