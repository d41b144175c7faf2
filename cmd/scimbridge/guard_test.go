package main

// The guards of issue 13 through the binary: a mapping typo that blanks an attribute (item 5), an
// empty source (item 6), and users disabled in the directory (item 19), each on the quickstart's
// directory synced into an emulator in this process.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/state"
)

// quickstartRig is a rig whose directory is the quickstart's (deploy/examples), synced once.
func quickstartRig(t *testing.T) *rig {
	t.Helper()
	b := newRig(t, "")
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "directory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b.write("directory.yaml", string(raw))
	if out, errOut, code := b.sync(); code != exitOK || !strings.Contains(out, "21 created") {
		t.Fatalf("initial sync: exit %d\n%s\n%s", code, out, errOut)
	}
	return b
}

// emails maps the managed users' userNames to their email.
func (b *rig) emails() map[string]string {
	b.t.Helper()
	out := map[string]string{}
	for _, u := range b.dump().Users {
		if u.CreatedBy == "scim" {
			out[u.UserName] = u.Email
		}
	}
	return out
}

func TestMappingTypoThatBlanksEmailsIsBlocked(t *testing.T) {
	b := quickstartRig(t)
	before := b.emails()
	if len(before) != 15 || before["grace.hopper@example.com"] != "grace.hopper@example.com" {
		t.Fatalf("emails after the initial sync: %v", before)
	}
	typo := targetConfig(t, b.dir, b.srv, "mapping:\n  user:\n    email: lower(attr(\"mial\"))\n")

	b.srv.Emu.ResetStats()
	for _, args := range [][]string{{"sync", "-c", typo}, {"sync", "-c", typo, "--dry-run"}, {"sync", "-c", typo, "--allow-deletes", "100"}} {
		out, errOut, code := runEnv(t, b.dir, b.env, args...)
		if code != exitBlocked {
			t.Fatalf("%v: exit %d, want %d (blocked)\n%s\n%s", args, code, exitBlocked, tail(out), errOut)
		}
		for _, want := range []string{"blocked by a safety guard: updates would clear emails (mapping target email) on 15 of the 15 users scimbridge owns (100.0%), more than max_clear_percent (10%)",
			"re-run with --allow-clears emails to let it through"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errOut)
			}
		}
		if r := b.lastRun(); r.Result != state.ResultBlocked {
			t.Errorf("%v: run recorded as %q, want blocked", args, r.Result)
		}
	}
	if w := writeCount(b.srv.Emu.Stats()); w != 0 {
		t.Fatalf("blocked runs wrote %d requests", w)
	}
	if got := b.emails(); len(got) != 15 || got["grace.hopper@example.com"] != "grace.hopper@example.com" {
		t.Fatalf("emails after the blocked runs: %v", got)
	}

	// A misspelt allowance is refused before anything is read.
	if _, errOut, code := runEnv(t, b.dir, b.env, "sync", "-c", typo, "--allow-clears", "emial"); code != exitError || !strings.Contains(errOut, `--allow-clears "emial": not a user attribute`) {
		t.Errorf("--allow-clears emial: exit %d\n%s", code, errOut)
	}
	// sync.guards.max_clear_percent: -1 turns the guard off (serve reads the same key).
	off := targetConfig(t, b.dir, b.srv, "mapping:\n  user:\n    email: lower(attr(\"mial\"))\nsync:\n  guards: {max_clear_percent: -1}\n")
	if out, errOut, code := runEnv(t, b.dir, b.env, "sync", "-c", off, "--dry-run"); code != exitChanges || !strings.Contains(out, "15 to update") {
		t.Errorf("max_clear_percent -1: exit %d, want %d\n%s\n%s", code, exitChanges, tail(out), errOut)
	}

	// A person who means it names the attribute (as the mapping spells it, or as the plan does).
	out, errOut, code := runEnv(t, b.dir, b.env, "sync", "-c", typo, "--allow-clears", "email")
	if code != exitOK || !strings.Contains(out, "15 updated") {
		t.Fatalf("--allow-clears email: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	for name, email := range b.emails() {
		if email != "" {
			t.Errorf("%s still has email %q after the allowed clear", name, email)
		}
	}
	b.checkUnmanaged()
}

func TestEmptySourceNeedsItsOwnFlag(t *testing.T) {
	b := quickstartRig(t)
	b.write("directory.yaml", "users: []\ngroups: []\n")
	b.srv.Emu.ResetStats()

	// The count guard's allowance, however large, does not let an empty source deprovision, in
	// a dry run or a real one; nor does the empty-source flag alone let 21 deletions past it.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", "--allow-deletes", "21"}, "re-run with --allow-empty-source --allow-deletes 21 to let it through"},
		{[]string{"--allow-deletes", "1091"}, "re-run with --allow-empty-source --allow-deletes 21 to let it through"},
		{[]string{"--dry-run", "--output", "json", "--allow-deletes", "1091"}, "re-run with --allow-empty-source --allow-deletes 21 to let it through"},
		{[]string{"--allow-empty-source"}, "re-run with --allow-empty-source --allow-deletes 21 to let it through"},
	} {
		out, errOut, code := b.sync(tc.args...)
		if code != exitBlocked || !strings.Contains(errOut, tc.want) {
			t.Fatalf("%v: exit %d, want %d and %q\n%s\n%s", tc.args, code, exitBlocked, tc.want, tail(out), errOut)
		}
		if strings.HasPrefix(tc.args[0], "--allow-deletes") || tc.args[0] == "--dry-run" {
			if !strings.Contains(errOut, "the source holds no users, and the plan would deprovision 15 of the 15 users scimbridge owns") {
				t.Errorf("%v: the message does not say the source is empty:\n%s", tc.args, errOut)
			}
		}
		if slicesContain(tc.args, "json") {
			var res struct{ Result string }
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Result != state.ResultBlocked {
				t.Errorf("%v: JSON result %q (err %v), want blocked", tc.args, res.Result, err)
			}
		}
	}
	if w := writeCount(b.srv.Emu.Stats()); w != 0 || len(b.userNames()) != 15 {
		t.Fatalf("blocked runs wrote %d requests; %d managed users left", w, len(b.userNames()))
	}

	// Both consents: the directory really is empty.
	out, errOut, code := b.sync("--allow-empty-source", "--allow-deletes", "21")
	if code != exitOK || !strings.Contains(out, "21 deleted") {
		t.Fatalf("both flags: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	if got := b.userNames(); len(got) != 0 {
		t.Errorf("managed users left: %v", got)
	}
	b.checkUnmanaged()
}

func TestDirectoryDisableCountsAsDisabled(t *testing.T) {
	b := quickstartRig(t)
	raw, err := os.ReadFile(filepath.Join(b.dir, "directory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const radia = "    email: radia.perlman@example.com\n"
	if !strings.Contains(string(raw), radia) {
		t.Fatal("the example directory changed: update this test")
	}
	b.write("directory.yaml", strings.Replace(string(raw), radia, radia+"    suspended: true\n", 1))

	// The dry run: a disable in the plan, the summary and the JSON; its log line says planned.
	out, errOut, code := b.sync("--dry-run", "-v")
	if code != exitChanges {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{`! disable user "radia.perlman@example.com" (u-1014): disabled in the directory`, "users 0 to create, 0 to update, 1 to disable, 0 to delete"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run plan lacks %q:\n%s", want, out)
		}
	}
	finished := logLine(t, errOut, `msg="run finished"`)
	for _, want := range []string{"planned_disables=1", "planned_updates=0", "planned_creates=0"} {
		if !strings.Contains(finished, want) {
			t.Errorf("dry-run log line lacks %s: %s", want, finished)
		}
	}
	for _, bad := range []string{" created=", " updated=", " disabled="} {
		if strings.Contains(finished, bad) {
			t.Errorf("dry-run log line says%s as if it had written: %s", bad, finished)
		}
	}
	out, _, _ = b.sync("--dry-run", "--output", "json")
	var res struct {
		Summary struct{ UpdateUsers, DisableUsers int }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Summary.DisableUsers != 1 || res.Summary.UpdateUsers != 0 {
		t.Errorf("JSON summary %+v (err %v), want 1 to disable and 0 to update", res.Summary, err)
	}

	// The real run: counted as disabled in the output, the log line and the history.
	out, errOut, code = b.sync("-v")
	if code != exitOK || !strings.Contains(out, "0 updated, 1 disabled") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	if finished := logLine(t, errOut, `msg="run finished"`); !strings.Contains(finished, "disabled=1") || !strings.Contains(finished, "updated=0") {
		t.Errorf("log line: %s", finished)
	}
	if c := b.lastRun().Counts; c.Disabled != 1 || c.Updated != 0 {
		t.Errorf("history counts %+v, want 1 disabled, 0 updated", c)
	}
	for _, u := range b.dump().Users {
		if u.UserName == "radia.perlman@example.com" && u.Active {
			t.Error("radia is still active")
		}
	}
}

// logLine returns the first line of logs that holds what.
func logLine(t *testing.T, logs, what string) string {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, what) {
			return l
		}
	}
	t.Fatalf("no log line holds %s:\n%s", what, logs)
	return ""
}
