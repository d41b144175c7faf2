package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim"
	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/reconcile"
	"github.com/scimbridge/scimbridge/scim/state"
)

// TestRunStopsAtDeadlineAndNextRunContinues gives an initial sync less time than it needs (a
// Lambda invocation's budget): it stops at a request boundary before the deadline, is recorded as
// failed with how far it got, and leaves no pending intent for a create it never sent. The next
// run trusts the state store (no full read), creates nothing twice and finishes the plan.
func TestRunStopsAtDeadlineAndNextRunContinues(t *testing.T) {
	e := newEnv(t)
	var snap scim.Snapshot
	for i := range 300 {
		snap.Users = append(snap.Users, person(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d", i)))
	}
	for g := range 4 {
		grp := scim.Group{ExternalID: fmt.Sprintf("g%d", g), DisplayName: fmt.Sprintf("Group %d", g)}
		for i := g; i < 300; i += 2 {
			grp.Members = append(grp.Members, fmt.Sprintf("u%03d", i))
		}
		snap.Groups = append(snap.Groups, grp)
	}
	e.set(snap)
	// Times are generous so that a loaded machine (CI runs the suite with -race) still stops inside
	// the user creates (300 x 30 ms / 4 at a time is ~2.2 s of creates; the stop comes at 1.5 s) and
	// returns well inside the margin.
	e.srv.Emu.SetFaults(emulator.Faults{Latency: 30 * time.Millisecond})
	r := e.reconciler(func(c *reconcile.Config) { c.Concurrency = 4; c.FullReconcileEvery = time.Hour })

	parent, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	ctx, stop := reconcile.StopBefore(parent, 2500*time.Millisecond)
	defer stop()
	res, err := r.RunOnce(ctx, reconcile.RunOptions{})
	if !errors.Is(err, reconcile.ErrStopped) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first run: got err %v, want ErrStopped wrapping the deadline", err)
	}
	if deadline, _ := parent.Deadline(); !time.Now().Before(deadline) {
		t.Errorf("the stopped run returned after its parent's deadline")
	}
	if res.Result != reconcile.ResultFailed || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "changes done") {
		t.Errorf("first run recorded as %q with errors %q, want failed with how far it got", res.Result, res.Errors)
	}
	first := e.srv.Emu.Stats()["scim.CreateUser"]
	if first == 0 || first >= 300 {
		t.Fatalf("first run created %d users, want some but not all 300 (the deadline falls inside the creates)", first)
	}
	for _, kind := range []state.Kind{state.KindUser, state.KindGroup} {
		pending, err := e.st.PendingTimes(context.Background(), kind)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 0 {
			t.Errorf("pending %s intents left by the stopped run: got %d, want 0 (creates it never sent)", kind, len(pending))
		}
	}

	e.srv.Emu.SetFaults(emulator.Faults{})
	e.srv.Emu.ResetStats()
	res = e.run(r, reconcile.RunOptions{})
	if res.FullRead {
		t.Errorf("the run after a stopped one read the whole target; want it to continue from the state store")
	}
	st := e.srv.Emu.Stats()
	if got := first + st["scim.CreateUser"]; got != 300 {
		t.Errorf("user creates over both runs: got %d, want 300 (none twice)", got)
	}
	if st["scim.ListUsers"]+st["scim.ListGroups"] != 0 {
		t.Errorf("the continuing run listed the target: %v", st)
	}
	v := e.view()
	if len(v.Users) != 300 || len(v.Groups) != 4 {
		t.Fatalf("target holds %d users and %d groups, want 300 and 4", len(v.Users), len(v.Groups))
	}
	for _, g := range snap.Groups {
		var want []string
		for _, m := range g.Members {
			want = append(want, "user"+m[1:]+"@example.com")
		}
		if diff := cmp.Diff(want, v.Groups[g.DisplayName]); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", g.DisplayName, diff)
		}
	}
	if p := e.run(r, reconcile.RunOptions{FullRead: true}).Plan; !p.Empty() {
		t.Errorf("a full read after the two runs plans changes: %+v", p.Changes)
	}
}
