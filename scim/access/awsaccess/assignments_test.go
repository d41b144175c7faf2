package awsaccess

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/access"
	"github.com/scimbridge/scimbridge/scim/emulator"
)

func TestAssignmentsCreatedAndDeleted(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()
	ps := e.permissionSet(t, c, "ReadOnly")
	principals := e.groups(t, 3)
	accounts := e.srv.Emu.AccountIDs()
	creates := opsFor(access.OpCreate, ps, principals, accounts[:4], 12)
	for _, r := range apply(t, c, e.inst, creates) {
		if r.Err != nil {
			t.Errorf("create %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	want := assignmentsOf(creates)
	got, err := c.Assignments(ctx, e.inst, principals)
	if err != nil {
		t.Fatalf("Assignments: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Assignments after the creates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, emulated(e.srv.Emu)); diff != "" {
		t.Errorf("the emulator's assignments after the creates (-want +got):\n%s", diff)
	}
	provisioned, err := c.ProvisionedAccounts(ctx, e.inst, ps)
	if err != nil {
		t.Fatalf("ProvisionedAccounts: %v", err)
	}
	if diff := cmp.Diff(sortedCopy(accounts[:4]), provisioned); diff != "" {
		t.Errorf("accounts the permission set is provisioned to (-want +got):\n%s", diff)
	}

	deletes := opsFor(access.OpDelete, ps, principals[:2], accounts[:4], 8)
	for _, r := range apply(t, c, e.inst, deletes) {
		if r.Err != nil {
			t.Errorf("delete %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	want = assignmentsOf(opsFor(access.OpCreate, ps, principals[2:], accounts[:4], 4))
	got, err = c.Assignments(ctx, e.inst, principals)
	if err != nil {
		t.Fatalf("Assignments: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Assignments after the deletes (-want +got):\n%s", diff)
	}
}

func TestFailedStatusReportedPerRecord(t *testing.T) {
	e := start(t, emulator.Options{})
	c := e.client(Options{})
	ctx := context.Background()
	accounts := e.srv.Emu.AccountIDs()
	suspended, lacking := accounts[5], accounts[6]
	if err := e.srv.Emu.SetAccountStatus(suspended, "SUSPENDED"); err != nil {
		t.Fatal(err)
	}
	e.srv.Emu.SetCustomerPolicyMissing(lacking, "BoundaryPolicy", true)
	arn, err := c.CreatePermissionSet(ctx, e.inst, access.PermissionSet{Name: "Bounded",
		CustomerManagedPolicies: []access.CustomerPolicy{{Name: "BoundaryPolicy"}}})
	if err != nil {
		t.Fatalf("CreatePermissionSet: %v", err)
	}
	principals := e.groups(t, 1)
	ops := opsFor(access.OpCreate, arn, principals, accounts[3:9], 6)
	reasons := map[string]string{}
	for _, r := range apply(t, c, e.inst, ops) {
		if r.Err == nil {
			continue
		}
		if !errors.Is(r.Err, ErrFailed) {
			t.Errorf("account %s: error %v does not wrap ErrFailed", r.Op.Assignment.AccountID, r.Err)
		}
		reasons[r.Op.Assignment.AccountID] = r.Err.Error()
	}
	if len(reasons) != 2 || !strings.Contains(reasons[suspended], "SUSPENDED") || !strings.Contains(reasons[lacking], "BoundaryPolicy") {
		t.Errorf("failures %v: want the suspended account %s (SUSPENDED) and %s (BoundaryPolicy) only", reasons, suspended, lacking)
	}
	got, err := c.Assignments(ctx, e.inst, principals)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("got %d assignments after 2 of 6 failed, want 4: %v", len(got), got)
	}
}

func TestOutstandingLimitNeverExceeded(t *testing.T) {
	e := start(t, emulator.Options{Access: emulator.AccessOptions{CompletionDelay: 50 * time.Millisecond}})
	c := e.client(Options{MaxOutstanding: 10})
	ps := e.permissionSet(t, c, "ReadOnly")
	principals := e.groups(t, 10)
	ops := opsFor(access.OpCreate, ps, principals, e.srv.Emu.AccountIDs(), 100)
	e.srv.Emu.ResetStats()
	for _, r := range apply(t, c, e.inst, ops) {
		if r.Err != nil {
			t.Errorf("create %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	stats := e.srv.Emu.Stats()
	if got := stats["sso-admin.MaxOutstanding"]; got != 10 {
		t.Errorf("most operations outstanding at once = %d, want exactly 10", got)
	}
	if got := stats["sso-admin.OutstandingRefused"]; got != 0 {
		t.Errorf("%d operations refused for the outstanding limit, want 0", got)
	}
	if got := stats["sso-admin.CreateAccountAssignment"]; got != 100 {
		t.Errorf("CreateAccountAssignment called %d times, want 100 (one per operation)", got)
	}
	var total int64
	for k, v := range stats {
		if strings.HasPrefix(k, "sso-admin.") && k != "sso-admin.MaxOutstanding" {
			total += v
		}
	}
	perOp := float64(total) / 100
	t.Logf("requests per assignment: %.2f (%v)", perOp, stats)
	// Settling each operation alone would take 3 (start, poll, describe); polls shared by
	// operations that end together take about 1.2 (see the access bench). The bound leaves
	// room for a loaded machine's timing.
	if perOp > 2.5 {
		t.Errorf("requests per assignment = %.2f, want at most 2.5 (1 to start + a share of the polls)", perOp)
	}
	if diff := cmp.Diff(assignmentsOf(ops), emulated(e.srv.Emu)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
}

func TestThrottlingSurvived(t *testing.T) {
	// The admin API allows 50 requests a second with a burst of 2; the client starts at 250.
	e := start(t, emulator.Options{Access: emulator.AccessOptions{RateLimit: 50, Burst: 2}})
	c := e.client(Options{Rate: 500})
	ps := e.permissionSet(t, c, "ReadOnly")
	principals := e.groups(t, 5)
	ops := opsFor(access.OpCreate, ps, principals, e.srv.Emu.AccountIDs(), 20)
	for _, r := range apply(t, c, e.inst, ops) {
		if r.Err != nil {
			t.Errorf("create %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	_, throttles := c.Calls()
	if throttles == 0 || e.srv.Emu.Stats()["sso-admin.throttled"] == 0 {
		t.Errorf("throttles seen by the client %d, by the emulator %d: want some (the test is meant to throttle)",
			throttles, e.srv.Emu.Stats()["sso-admin.throttled"])
	}
	if diff := cmp.Diff(assignmentsOf(ops), emulated(e.srv.Emu)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
}

func TestFaultInjectedRunCompletes(t *testing.T) {
	e := start(t, emulator.Options{Seed: 7})
	c := e.client(Options{MaxAttempts: 8})
	ps := e.permissionSet(t, c, "ReadOnly")
	principals := e.groups(t, 4)
	ops := opsFor(access.OpCreate, ps, principals, e.srv.Emu.AccountIDs(), 40)
	e.srv.Emu.SetFaults(emulator.Faults{ErrorRatio: 0.15, DropRatio: 0.05})
	for _, r := range apply(t, c, e.inst, ops) {
		if r.Err != nil {
			t.Errorf("create %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	got, err := c.Assignments(context.Background(), e.inst, principals)
	e.srv.Emu.SetFaults(emulator.Faults{})
	if err != nil {
		t.Fatalf("Assignments under faults: %v", err)
	}
	if diff := cmp.Diff(assignmentsOf(ops), got); diff != "" {
		t.Errorf("assignments read under faults (-want +got):\n%s", diff)
	}
	stats := e.srv.Emu.Stats()
	if stats["injected"] == 0 || stats["dropped"] == 0 {
		t.Errorf("injected %d, dropped %d: want both above 0", stats["injected"], stats["dropped"])
	}
	if diff := cmp.Diff(assignmentsOf(ops), emulated(e.srv.Emu)); diff != "" {
		t.Errorf("the emulator's assignments (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestTargetLimitBelowTheClients(t *testing.T) {
	// The instance allows 3 outstanding operations (other work holds the rest of AWS's 10);
	// the client's 10 starts meet ThrottlingException and go on as slots free.
	e := start(t, emulator.Options{Access: emulator.AccessOptions{MaxOutstanding: 3}})
	c := e.client(Options{MaxOutstanding: 10})
	ps := e.permissionSet(t, c, "ReadOnly")
	ops := opsFor(access.OpCreate, ps, e.groups(t, 2), e.srv.Emu.AccountIDs(), 24)
	for _, r := range apply(t, c, e.inst, ops) {
		if r.Err != nil {
			t.Errorf("create %+v: %v", r.Op.Assignment, r.Err)
		}
	}
	stats := e.srv.Emu.Stats()
	if stats["sso-admin.MaxOutstanding"] > 3 || stats["sso-admin.OutstandingRefused"] == 0 {
		t.Errorf("MaxOutstanding %d, OutstandingRefused %d: want at most 3, and some refused",
			stats["sso-admin.MaxOutstanding"], stats["sso-admin.OutstandingRefused"])
	}
	if diff := cmp.Diff(assignmentsOf(ops), emulated(e.srv.Emu)); diff != "" {
		t.Errorf("assignments (-want +got):\n%s", diff)
	}
}

func TestApplyAssignmentsStopsWithItsContext(t *testing.T) {
	e := start(t, emulator.Options{Access: emulator.AccessOptions{CompletionDelay: time.Hour}})
	c := e.client(Options{})
	ps := e.permissionSet(t, c, "ReadOnly")
	ops := opsFor(access.OpCreate, ps, e.groups(t, 1), e.srv.Emu.AccountIDs(), 5)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	calls := 0
	err := c.ApplyAssignments(ctx, e.inst, ops, func(access.OpResult) { calls++ })
	if !errors.Is(err, context.DeadlineExceeded) || calls != 0 {
		t.Errorf("ApplyAssignments with operations that never end: %v after %d results, want the context's deadline and none", err, calls)
	}
}
