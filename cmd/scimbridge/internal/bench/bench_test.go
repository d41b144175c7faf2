package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildBinary builds the scimbridge binary the bench runs as its child.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the scimbridge binary and runs three syncs")
	}
	bin := filepath.Join(t.TempDir(), "scimbridge")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/scimbridge/scimbridge/cmd/scimbridge").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// initialWrites is the fewest writes an initial sync of d needs, computed from the generated
// directory alone (not from the plan): one POST per user (a suspended user is created inactive)
// and per group, and ceil((members-100)/100) PATCHes for a group whose flattened membership does
// not fit the 100 members its POST carries.
func initialWrites(d *Directory) int {
	var flatten func(gi int, seen map[int]bool, members map[int]bool)
	flatten = func(gi int, seen map[int]bool, members map[int]bool) {
		if seen[gi] {
			return
		}
		seen[gi] = true
		for _, m := range d.groups[gi].members {
			if d.alive[m] {
				members[m] = true
			}
		}
		for _, c := range d.groups[gi].children {
			flatten(c, seen, members)
		}
	}
	users, groups, _ := d.Counts()
	n := users + groups
	for gi := range d.groups {
		members := map[int]bool{}
		flatten(gi, map[int]bool{}, members)
		if extra := len(members) - 100; extra > 0 {
			n += (extra + 99) / 100
		}
	}
	return n
}

func TestBenchCountsAgreeWithTheTarget(t *testing.T) {
	bin := buildBinary(t)
	spec := Spec{Users: 300, Groups: 30, Memberships: 1500, Seed: 7}
	// A rate the client is not told, low enough that its limiter meets some 429s.
	rep, err := Run(context.Background(), Options{Spec: spec, RPS: 100, Binary: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(rep.Phases); got != 3 {
		t.Fatalf("phases: got %d, want 3", got)
	}
	for _, p := range rep.Phases {
		if len(p.Mismatches) > 0 {
			t.Errorf("%s: mismatches %q, want none", p.Name, p.Mismatches)
		}
		if p.Result != "success" {
			t.Errorf("%s: result %q, want success", p.Name, p.Result)
		}
		if p.Target.Writes != int64(p.AcceptedWrites) {
			t.Errorf("%s: target writes %d, sync's accepted writes %d", p.Name, p.Target.Writes, p.AcceptedWrites)
		}
		if p.Target.Throttled != int64(p.Throttled) {
			t.Errorf("%s: target throttled %d, sync's %d", p.Name, p.Target.Throttled, p.Throttled)
		}
		if want := ratio(p.Target.Writes, p.LowerBound); p.Ratio != want {
			t.Errorf("%s: ratio %v, want %v (target writes %d / lower bound %d)", p.Name, p.Ratio, want, p.Target.Writes, p.LowerBound)
		}
		// The planner's lower bound is reached exactly on this target.
		if p.Target.Writes != int64(p.LowerBound) {
			t.Errorf("%s: target writes %d, lower bound %d", p.Name, p.Target.Writes, p.LowerBound)
		}
	}
	initial, noChange, churn := rep.Phases[0], rep.Phases[1], rep.Phases[2]
	if want := initialWrites(Generate(spec)); initial.Target.Writes != int64(want) || initial.LowerBound != want {
		t.Errorf("initial: target writes %d, lower bound %d; want both %d (counted from the directory)",
			initial.Target.Writes, initial.LowerBound, want)
	}
	if initial.Target.Requests["scim.CreateUser"] != 300 || initial.Target.Requests["scim.CreateGroup"] != 30 {
		t.Errorf("initial: target requests %v, want 300 CreateUser and 30 CreateGroup", initial.Target.Requests)
	}
	if len(noChange.Target.Requests) != 0 || noChange.Target.Throttled != 0 {
		t.Errorf("no-change: target requests %v (%d throttled), want none", noChange.Target.Requests, noChange.Target.Throttled)
	}
	// 3 users changed (PUT), 1 left (DELETE): the replace appears under the emulator's name.
	if churn.Target.Requests["scim.DeleteUser"] != 1 || churn.Target.Requests["scim.PutUser"] < 3 || churn.Requests["scim.ReplaceUser"] < 3 {
		t.Errorf("churn: target requests %v, sync requests %v; want 1 DeleteUser and at least 3 PutUser/ReplaceUser",
			churn.Target.Requests, churn.Requests)
	}
}

// A sync that reports requests the target never saw fails the bench, and the report still says
// which phase and which count.
func TestBenchFailsWhenCountsDisagree(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bench's phases")
	}
	dir := t.TempDir()
	liar := filepath.Join(dir, "liar")
	script := `#!/bin/sh
echo '{"result":"success","requests":{"scim.CreateUser":5,"scim.ReplaceUser":2},"throttled":1,` +
		`"throttledRequests":{"scim.CreateUser":1},"errors":[],"summary":{"LowerBound":4}}'
`
	if err := os.WriteFile(liar, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{Spec: Spec{Users: 20, Groups: 2, Memberships: 30, Seed: 1},
		Binary: liar, Dir: filepath.Join(dir, "bench"), Phases: []string{"initial"}})
	if !errors.Is(err, ErrCountsDisagree) {
		t.Fatalf("Run: got error %v, want ErrCountsDisagree", err)
	}
	for _, s := range []string{"initial", "scim.CreateUser: sync 4 accepted, target 0", "scim.PutUser: sync 2 accepted, target 0", "throttled: sync 1, target 0"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if rep == nil || len(rep.Phases) != 1 {
		t.Fatalf("report: got %+v, want the initial phase", rep)
	}
	p := rep.Phases[0]
	if p.Ratio != 0 || p.Target.Writes != 0 {
		t.Errorf("ratio %v from target writes %d, want 0 from 0: the ratio comes from the target's count", p.Ratio, p.Target.Writes)
	}
	var table strings.Builder
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "COUNTS DISAGREE in initial: scim.CreateUser") {
		t.Errorf("table does not show the disagreement:\n%s", table.String())
	}
}

func TestCompareCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		requests    map[string]int
		throttledBy map[string]int
		target      TargetCounts
		want        []string
	}{
		{name: "equal, replace named PutUser by the target",
			requests:    map[string]int{"scim.CreateUser": 5, "scim.ReplaceUser": 2, "identitystore.ListUsers": 1},
			throttledBy: map[string]int{"scim.CreateUser": 2},
			target: TargetCounts{Requests: map[string]int64{"scim.CreateUser": 3, "scim.PutUser": 2, "identitystore.ListUsers": 1},
				Throttled: 2}},
		{name: "the target saw a write the sync did not count",
			requests: map[string]int{"scim.PatchGroup": 3},
			target:   TargetCounts{Requests: map[string]int64{"scim.PatchGroup": 3, "scim.DeleteUser": 1}},
			want:     []string{"scim.DeleteUser: sync 0 accepted, target 1"}},
		{name: "a throttled request counted as accepted",
			requests: map[string]int{"scim.PatchGroup": 3},
			target:   TargetCounts{Requests: map[string]int64{"scim.PatchGroup": 2}, Throttled: 1},
			want:     []string{"scim.PatchGroup: sync 3 accepted, target 2", "throttled: sync 0, target 1"}},
		{name: "injected faults",
			requests: map[string]int{"scim.PatchGroup": 1},
			target:   TargetCounts{Requests: map[string]int64{"scim.PatchGroup": 1}, Injected: 1},
			want:     []string{"faults the bench does not inject: target 1 injected, 0 dropped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			throttled := 0
			for _, n := range tc.throttledBy {
				throttled += n
			}
			got := compareCounts(tc.requests, tc.throttledBy, throttled, tc.target)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTargetCountsSplitsWritesReadsAndFaults(t *testing.T) {
	got := targetCounts(map[string]int64{"scim.CreateUser": 3, "scim.PutUser": 1, "scim.PatchUser": 1, "scim.PatchGroup": 2,
		"scim.DeleteGroup": 1, "scim.ListUsers": 4, "identitystore.ListGroupMemberships": 5, "throttled": 6, "injected": 7, "dropped": 8})
	if got.Writes != 8 || got.Reads != 9 || got.Throttled != 6 || got.Injected != 7 || got.Dropped != 8 || len(got.Requests) != 7 {
		t.Errorf("got %+v, want 8 writes, 9 reads, 6 throttled, 7 injected, 8 dropped, 7 operations", got)
	}
}
