package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/lambda"
	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// The secret and the time the recorded Function URL events were signed with.
const (
	webhookSecret = "lambda-test-webhook-secret"
	signedAt      = 1764633600
)

// fn is one function: an emulator as the target, an SQLite state store and its file lock, and
// the handler over a real reconciler.
type fn struct {
	t     *testing.T
	srv   *emulatortest.Server
	st    state.Store
	path  string
	snap  scim.Snapshot
	h     *lambda.Handler
	locks int
}

func newFn(t *testing.T, users int) *fn {
	t.Helper()
	f := &fn{t: t, srv: emulatortest.Start(t, emulator.Options{}), path: filepath.Join(t.TempDir(), "state.db")}
	st, err := state.Open(context.Background(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	for i := 1; i <= users; i++ {
		f.snap.Users = append(f.snap.Users, scim.User{ExternalID: fmt.Sprintf("u%03d", i), UserName: fmt.Sprintf("user%03d@example.com", i),
			DisplayName: fmt.Sprintf("User %d", i), GivenName: "User", FamilyName: fmt.Sprint(i), Email: fmt.Sprintf("user%03d@example.com", i), Active: true})
	}
	all := scim.Group{ExternalID: "g-all", DisplayName: "Everyone"}
	for _, u := range f.snap.Users {
		all.Members = append(all.Members, u.ExternalID)
	}
	f.snap.Groups = []scim.Group{all}
	c, err := client.New(client.Config{BaseURL: f.srv.URL, Token: func(context.Context) (string, error) { return f.srv.Token, nil },
		Retry: client.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reconcile.New(reconcile.Config{
		Desired:            func(context.Context) (scim.Snapshot, error) { return f.snap, nil },
		Target:             c,
		Reader:             c,
		State:              st,
		Guards:             plan.DefaultGuards,
		Concurrency:        4,
		FullReconcileEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h, err = lambda.New(lambda.Config{
		Runner: r,
		Lock: func(ctx context.Context) (context.Context, func(), error) {
			l, err := state.AcquireLock(ctx, f.path, state.LockInfo{PID: os.Getpid(), Command: "lambda test"}, 0)
			if err != nil {
				return nil, nil, err
			}
			f.locks++
			return nil, func() { _ = l.Release() }, nil
		},
		Service: service.Config{
			History:       st,
			WebhookSecret: []byte(webhookSecret),
			Now:           func() time.Time { return time.Unix(signedAt+10, 0) },
		},
		StopMargin: 150 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func event(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invoke calls the handler as the runtime would, with budget as the invocation's time left.
func (f *fn) invoke(name string, budget time.Duration) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	return f.h.Invoke(ctx, event(f.t, name))
}

func (f *fn) userNames() []string {
	d, err := f.srv.Emu.Dump()
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, u := range d.Users {
		names = append(names, u.UserName)
	}
	return names
}

func TestScheduledEventRunsASync(t *testing.T) {
	f := newFn(t, 5)
	out, err := f.invoke("eventbridge-scheduled.json", time.Minute)
	if err != nil {
		t.Fatalf("scheduled invocation: %v", err)
	}
	got := out.(lambda.Outcome)
	want := lambda.Outcome{RunID: got.RunID, Trigger: reconcile.TriggerSchedule, Result: reconcile.ResultSuccess,
		Counts: state.Counts{Created: 6, MemberAdds: 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if n := len(f.userNames()); n != 5 {
		t.Errorf("target holds %d users, want 5", n)
	}
	runs, err := f.st.Runs(context.Background(), 5)
	if err != nil || len(runs) != 1 || runs[0].Trigger != reconcile.TriggerSchedule {
		t.Errorf("run history: got %+v (%v), want one scheduled run", runs, err)
	}
}

func TestFunctionURLWebhookIsChecked(t *testing.T) {
	f := newFn(t, 3)
	if _, err := f.invoke("eventbridge-scheduled.json", time.Minute); err != nil {
		t.Fatal(err)
	}
	f.snap.Users[0].DisplayName, f.snap.Users[2].DisplayName = "Renamed 1", "Renamed 3"
	f.srv.Emu.ResetStats()

	resp := func(name string) events.LambdaFunctionURLResponse {
		t.Helper()
		out, err := f.invoke(name, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out.(events.LambdaFunctionURLResponse)
	}
	r := resp("function-url-bad-signature.json")
	if r.StatusCode != 401 || f.srv.Emu.Stats()["scim.PutUser"] != 0 {
		t.Fatalf("bad signature: got %d %s with %v, want 401 and no request", r.StatusCode, r.Body, f.srv.Emu.Stats())
	}
	if strings.Contains(r.Body, webhookSecret) {
		t.Errorf("the answer holds the secret: %s", r.Body)
	}

	// The signed request names u001 and u002: a targeted run updates u001 only (u003 waits).
	r = resp("function-url-sync-users.json")
	if r.StatusCode != 200 {
		t.Fatalf("signed request: got %d %s, want 200", r.StatusCode, r.Body)
	}
	var out lambda.Outcome
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatal(err)
	}
	if out.Trigger != reconcile.TriggerWebhook || out.Result != reconcile.ResultSuccess || out.Counts.Updated != 1 {
		t.Errorf("signed request ran %+v, want a webhook run that updated 1 user", out)
	}
	if got := f.srv.Emu.Stats()["scim.PutUser"]; got != 1 {
		t.Errorf("targeted run replaced %d users, want 1", got)
	}

	// The same signed request again is a replay; the base64 form of it too.
	for _, name := range []string{"function-url-sync-users.json", "function-url-sync-users-base64.json"} {
		if r := resp(name); r.StatusCode != 401 {
			t.Errorf("%s replayed: got %d %s, want 401", name, r.StatusCode, r.Body)
		}
	}
	r = resp("function-url-sync-full.json")
	if r.StatusCode != 200 || f.srv.Emu.Stats()["scim.PutUser"] != 2 {
		t.Errorf("signed full sync: got %d %s with %v, want 200 and u003 updated", r.StatusCode, r.Body, f.srv.Emu.Stats())
	}

	if _, err := f.h.Invoke(context.Background(), json.RawMessage(`{"Records":[]}`)); err == nil {
		t.Error("an SQS-like event was accepted")
	}
}

func TestBudgetRunContinuesInTheNextInvocation(t *testing.T) {
	f := newFn(t, 200)
	f.srv.Emu.SetFaults(emulator.Faults{Latency: 5 * time.Millisecond})
	out, err := f.invoke("eventbridge-scheduled.json", 450*time.Millisecond)
	if err != nil {
		t.Fatalf("first invocation: %v", err)
	}
	first := out.(lambda.Outcome)
	created := f.srv.Emu.Stats()["scim.CreateUser"]
	if !first.Stopped || first.Result != reconcile.ResultFailed || created == 0 || created >= 200 {
		t.Fatalf("first invocation: got %+v after %d user creates, want stopped partway (recorded as failed)", first, created)
	}

	f.srv.Emu.SetFaults(emulator.Faults{})
	f.srv.Emu.ResetStats()
	out, err = f.invoke("eventbridge-scheduled.json", time.Minute)
	if err != nil {
		t.Fatalf("second invocation: %v", err)
	}
	second := out.(lambda.Outcome)
	st := f.srv.Emu.Stats()
	if second.Stopped || second.Result != reconcile.ResultSuccess {
		t.Errorf("second invocation: got %+v, want success", second)
	}
	if got := created + st["scim.CreateUser"]; got != 200 {
		t.Errorf("user creates over both invocations: got %d, want 200 (none twice)", got)
	}
	if st["scim.ListUsers"] != 0 {
		t.Errorf("the second invocation read the target again: %v", st)
	}
	if n := len(f.userNames()); n != 200 {
		t.Errorf("target holds %d users, want 200", n)
	}
	runs, err := f.st.Runs(context.Background(), 5)
	if err != nil || len(runs) != 2 || len(runs[1].Errors) == 0 || !strings.Contains(runs[1].Errors[0], "changes done") {
		t.Errorf("run history: got %+v (%v), want the stopped run recorded with how far it got", runs, err)
	}
}

func TestOneRunAtATime(t *testing.T) {
	f := newFn(t, 3)
	held, err := state.AcquireLock(context.Background(), f.path, state.LockInfo{PID: 1, Command: "another run"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.invoke("eventbridge-scheduled.json", time.Minute)
	if err != nil || !out.(lambda.Outcome).Busy {
		t.Errorf("scheduled event while the lock is held: got %+v, %v; want busy and no error", out, err)
	}
	out, err = f.invoke("function-url-sync-full.json", time.Minute)
	if r, _ := out.(events.LambdaFunctionURLResponse); err != nil || r.StatusCode != 503 || r.Headers["Retry-After"] == "" {
		t.Errorf("webhook while the lock is held: got %+v, %v; want 503 with Retry-After", out, err)
	}
	if w := f.srv.Emu.Stats()["scim.CreateUser"]; w != 0 {
		t.Errorf("a run went ahead beside the lock holder: %d creates", w)
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	if out, err := f.invoke("eventbridge-scheduled.json", time.Minute); err != nil || out.(lambda.Outcome).Result != reconcile.ResultSuccess {
		t.Errorf("after the holder let go: got %+v, %v", out, err)
	}
}
