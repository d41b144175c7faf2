package main

// The state lock (issue 19): two `scimbridge sync` processes on one state store never both write.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state"
)

// lockDirectory writes a directory of n users and one group holding all of them.
func lockDirectory(t *testing.T, dir string, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	var ids []string
	for i := range n {
		fmt.Fprintf(&b, "  - {id: u-%04d, userName: lock%04d@example.com, givenName: Lock, familyName: N%04d, email: lock%04d@example.com}\n", i, i, i, i)
		ids = append(ids, fmt.Sprintf("u-%04d", i))
	}
	fmt.Fprintf(&b, "groups:\n  - {id: g-all, name: Everyone, members: [%s]}\n", strings.Join(ids, ", "))
	if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startSync starts `scimbridge sync` and returns a function that waits for its exit code and
// output.
func startSync(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, func() (int, string)) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"sync"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() (int, string) {
		err := cmd.Wait()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), out.String()
			}
			t.Fatal(err)
		}
		return 0, out.String()
	}
}

func TestStateLockOneWriterAtATime(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary")
	}
	const users = 200
	dir := t.TempDir()
	lockDirectory(t, dir, users)
	srv := emulatortest.Start(t, emulator.Options{})
	srv.Emu.SetFaults(emulator.Faults{Latency: 15 * time.Millisecond})
	cfg := targetConfig(t, dir, srv, "")
	env := childEnv(dir, srv.Token)
	lowerBound := int64(users + 1 + (users-100+99)/100) // users, the group with 100 members, PATCHes of the rest

	// Two runs started at once: exactly one applies; the other exits 4 at once, naming the holder.
	srv.Emu.ResetStats()
	_, waitA := startSync(t, dir, env, "-c", cfg)
	_, waitB := startSync(t, dir, env, "-c", cfg)
	codeA, outA := waitA()
	codeB, outB := waitB()
	winner, loser := outA, outB
	if codeA != exitOK {
		codeA, codeB = codeB, codeA
		winner, loser = loser, winner
	}
	if codeA != exitOK || codeB != exitLocked {
		t.Fatalf("exit codes %d and %d, want one 0 and one %d\nA: %s\nB: %s", codeA, codeB, exitLocked, tail(outA), tail(outB))
	}
	for _, want := range []string{"is locked by pid", "scimbridge sync", "state unlock --force"} {
		if !strings.Contains(loser, want) {
			t.Errorf("the refused run's message lacks %q:\n%s", want, loser)
		}
	}
	if strings.Contains(loser, "created") || strings.Contains(loser, "Plan:") {
		t.Errorf("the refused run planned or wrote:\n%s", loser)
	}
	if got := writeCount(srv.Emu.Stats()); got != lowerBound {
		t.Errorf("writes of two overlapping runs: got %d, want %d (one run's lower bound)\nwinner: %s", got, lowerBound, tail(winner))
	}
	t.Logf("overlapping runs: exit %d and %d, %d writes for a lower bound of %d", codeA, codeB, writeCount(srv.Emu.Stats()), lowerBound)

	// With state.lock_timeout the second run waits for the first and then has nothing to do.
	for i := range 20 { // a change for the first run to apply
		lockDirectoryRename(t, dir, i)
	}
	srv.Emu.ResetStats()
	srv.Emu.SetFaults(emulator.Faults{Latency: 150 * time.Millisecond}) // the first run lasts while the second starts
	waitEnv := append(env[:len(env):len(env)], "SCIMBRIDGE_STATE_LOCK_TIMEOUT=2m")
	first, waitFirst := startSync(t, dir, waitEnv, "-c", cfg)
	waitForLock(t, dir, first.Process.Pid)
	_, waitSecond := startSync(t, dir, waitEnv, "-c", cfg)
	code1, out1 := waitFirst()
	writesOfFirst := writeCount(srv.Emu.Stats())
	code2, out2 := waitSecond()
	if code1 != exitOK || code2 != exitOK {
		t.Fatalf("waiting runs: exit %d and %d\n%s\n%s", code1, code2, tail(out1), tail(out2))
	}
	if !strings.Contains(out2, "waiting for the state lock") || !strings.Contains(out2, "took the state lock") || !strings.Contains(out2, fmt.Sprintf("pid %d", first.Process.Pid)) {
		t.Errorf("the second run did not wait for the lock:\n%s", tail(out2))
	}
	if writesOfFirst != 20 {
		t.Errorf("first run: got %d writes, want 20 renames", writesOfFirst)
	}
	if got := writeCount(srv.Emu.Stats()) - writesOfFirst; got != 0 || !strings.Contains(out2, "No changes") {
		t.Errorf("the run that waited: got %d writes, want 0 and no changes\n%s", got, tail(out2))
	}

	// A holder killed with SIGKILL leaves no lock behind: the next run takes it at once.
	for i := range 50 {
		lockDirectoryRename(t, dir, 100+i)
	}
	srv.Emu.SetFaults(emulator.Faults{Latency: 100 * time.Millisecond})
	victim, waitVictim := startSync(t, dir, env, "-c", cfg)
	waitForLock(t, dir, victim.Process.Pid)
	// The holder records its run in the lock file, for the message a second writer gets.
	waitForLockText(t, dir, `"runId":`)
	if _, errOut, code := runEnv(t, dir, env, "sync", "-c", cfg); code != exitLocked || !strings.Contains(errOut, ", run ") {
		t.Errorf("a run during the victim's: exit %d, %q; want %d naming the holder's run", code, errOut, exitLocked)
	}
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitVictim()
	srv.Emu.SetFaults(emulator.Faults{})
	start := time.Now()
	if code, out := runEnvCode(t, dir, env, "sync", "-c", cfg); code != exitOK {
		t.Fatalf("run after the holder was killed: exit %d\n%s", code, tail(out))
	}
	t.Logf("run after SIGKILL of the holder took the lock and finished in %s", time.Since(start).Round(time.Millisecond))
}

// lockDirectoryRename changes user i's family name in the directory file.
func lockDirectoryRename(t *testing.T, dir string, i int) {
	t.Helper()
	path := filepath.Join(dir, "directory.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("familyName: N%04d,", i)
	s := strings.Replace(string(b), old, fmt.Sprintf("familyName: R%04d,", i), 1)
	if s == string(b) {
		t.Fatalf("user %d not found", i)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitForLock waits until the process pid holds the state lock in dir.
func waitForLock(t *testing.T, dir string, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "state.db.lock"))
		if strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, pid)) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never took the lock", pid)
}

// waitForLockText waits until the lock file in dir holds text.
func waitForLockText(t *testing.T, dir, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(filepath.Join(dir, "state.db.lock")); strings.Contains(string(b), text) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the lock file never held %s", text)
}

// runEnvCode runs the binary and returns its exit code and combined output.
func runEnvCode(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	out, errOut, code := runEnv(t, dir, env, args...)
	return code, out + errOut
}

func TestStateUnlockCommand(t *testing.T) {
	dir := quickstart(t)
	cfg := filepath.Join(dir, "scimbridge.yaml")
	if out, _, code := run(t, dir, "state", "unlock", "-c", cfg); code != exitOK || !strings.Contains(out, "not locked") {
		t.Errorf("unlock of a free state: exit %d, %q", code, out)
	}
	// This test process stands in for a hung holder.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	hung, err := state.AcquireLock(t.Context(), filepath.Join(dir, "data", "state.db"), state.LockInfo{PID: 4242, Host: "old-node", Command: "serve"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Release()
	if _, errOut, code := run(t, dir, "sync", "-c", cfg); code != exitLocked || !strings.Contains(errOut, "pid 4242 on host old-node") {
		t.Errorf("sync while locked: exit %d, %q", code, errOut)
	}
	if out, _, code := run(t, dir, "sync", "-c", cfg, "--dry-run"); code != exitChanges || !strings.Contains(out, "Plan:") {
		t.Errorf("a dry run must not need the lock: exit %d\n%s", code, out)
	}
	_, errOut, code := run(t, dir, "state", "unlock", "-c", cfg)
	if code != exitError || !strings.Contains(errOut, "pid 4242 on host old-node") || !strings.Contains(errOut, "--force") {
		t.Errorf("unlock without --force: exit %d, %q", code, errOut)
	}
	out, errOut, code := run(t, dir, "state", "unlock", "--force", "-c", cfg)
	if code != exitOK || !strings.Contains(errOut, "WARNING") || !strings.Contains(out, "lock removed") {
		t.Errorf("unlock --force: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := run(t, dir, "sync", "-c", cfg); code != exitOK {
		t.Errorf("sync after unlock --force: exit %d\n%s%s", code, out, errOut)
	}
}
