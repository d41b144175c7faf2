package state

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// crashEnv names the state store (file or database URL) a child process writes to until it is killed.
const crashEnv = "SCIMBRIDGE_STATE_CRASH_CHILD"

// TestCrashChild is the child of TestCrashRecovery: it is skipped unless crashEnv is set. It
// writes in a loop, starting at the number given in crashStartEnv, and prints "ok N" after each
// write call for N has returned (that is, committed).
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	ctx := context.Background()
	s, err := OpenStore(ctx, path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	if _, err := s.StartRun(ctx, "crash-test", false, time.Unix(int64(start), 0)); err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(3)
	}
	for i := start; ; i++ {
		u, g := fmt.Sprintf("u%06d", i), fmt.Sprintf("g%04d", i/10)
		// One write per step; the parent checks each step's effect by number.
		if err := s.RecordPending(ctx, KindUser, []string{u}, testNow); err != nil {
			fail(err)
		}
		data, _ := json.Marshal(map[string]any{"externalId": u, "userName": u + "@example.com", "pad": strings.Repeat("x", 200)})
		objs := []Object{
			{Kind: KindUser, ExternalID: u, TargetID: "t" + u, Data: data, UpdatedAt: time.Unix(int64(i), 0)},
			{Kind: KindGroup, ExternalID: g, TargetID: "t" + g, Data: json.RawMessage(`{}`)},
		}
		if err := s.PutObjects(ctx, objs); err != nil {
			fail(err)
		}
		if err := s.AddMembers(ctx, g, []string{u}); err != nil {
			fail(err)
		}
		if err := s.SetMeta(ctx, "last", strconv.Itoa(i)); err != nil {
			fail(err)
		}
		fmt.Println("ok", i)
	}
}

const crashStartEnv = "SCIMBRIDGE_STATE_CRASH_START"

// TestCrashRecovery kills a writing child process with SIGKILL several times over the same file,
// then checks that the file passes IntegrityCheck, that every write the child saw return is
// there, that at most the one write in flight is partly there, and that the killed run is
// marked interrupted when the next one starts.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	eachBackend(t, testCrashRecovery)
}

func testCrashRecovery(t *testing.T, path string) {
	ctx := context.Background()
	next := 0
	gaps := map[int]bool{} // steps that were in flight at a kill: maybe written, maybe not
	for round := range 3 {
		lastOK := runChildUntilKilled(t, path, next, 40+round*25)
		if IsPostgresURL(path) {
			// A COMMIT the child sent just before it died may still land: the server ends its
			// session when it reads the closed socket. Check the store once that has happened.
			waitForSessionsToEnd(t, path)
		}
		s, err := OpenStore(ctx, path)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		users, err := s.Objects(ctx, KindUser)
		must(t, err)
		members, err := s.Members(ctx)
		must(t, err)
		pending, err := s.Pending(ctx, KindUser)
		must(t, err)
		last, _, err := s.Meta(ctx, "last")
		must(t, err)

		have := map[string]bool{}
		for _, o := range users {
			have[o.ExternalID] = true
		}
		for i := 0; i <= lastOK; i++ {
			if gaps[i] {
				continue
			}
			u, g := fmt.Sprintf("u%06d", i), fmt.Sprintf("g%04d", i/10)
			if !have[u] || pending[u] || !contains(members[g], u) {
				t.Fatalf("round %d: committed step %d lost: owned %v pending %v member %v", round, i, have[u], pending[u], contains(members[g], u))
			}
		}
		// Beyond the last reported step, at most the step in flight may show.
		if len(users) > lastOK+2 || len(pending) > 1 {
			t.Errorf("round %d: %d users and %d pending after step %d", round, len(users), len(pending), lastOK)
		}
		if n, _ := strconv.Atoi(last); n < lastOK || n > lastOK+1 {
			t.Errorf("round %d: meta last = %q, want %d or %d", round, last, lastOK, lastOK+1)
		}
		// The killed run is open; the next start marks it interrupted.
		id, err := s.StartRun(ctx, "check", false, time.Unix(1e9, 0))
		must(t, err)
		runs, err := s.Runs(ctx, 2)
		must(t, err)
		if len(runs) != 2 || runs[1].Result != ResultFailed || len(runs[1].Errors) != 1 || runs[1].Errors[0] != InterruptedError {
			t.Errorf("round %d: killed run reads %+v", round, runs)
		}
		must(t, s.FinishRun(ctx, id, ResultSuccess, Counts{}, nil, "", time.Unix(1e9, 0)))
		// As the reconciler would after looking the target up: forget intents that did not land.
		ids := make([]string, 0, len(pending))
		for id := range pending {
			ids = append(ids, id)
		}
		must(t, s.ClearPending(ctx, KindUser, ids))
		must(t, s.Close())
		gaps[lastOK+1] = true
		next = lastOK + 2 // past the step that may have been in flight
	}
}

// runChildUntilKilled runs TestCrashChild on path from step start, kills it with SIGKILL once it
// has reported `steps` committed steps, and returns the last step it reported.
func runChildUntilKilled(t *testing.T, path string, start, steps int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashStartEnv+"="+strconv.Itoa(start))
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	lastOK := start - 1
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ok "); ok {
			lastOK, _ = strconv.Atoi(n)
			if lastOK-start+1 >= steps && !killed {
				// Kill mid-stream: the child keeps writing until the signal lands.
				must(t, cmd.Process.Signal(syscall.SIGKILL))
				killed = true
			}
			continue
		}
		if strings.HasPrefix(line, "error") {
			t.Errorf("child: %s", line)
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed: %v", err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}
	return lastOK
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// waitForSessionsToEnd waits until no session but the caller's is connected to the database.
func waitForSessionsToEnd(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	must(t, err)
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		must(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&n))
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the killed child still connected after 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
