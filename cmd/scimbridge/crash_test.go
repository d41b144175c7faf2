package main

// Crash recovery (issue 9): `scimbridge sync` as a child process, killed with SIGKILL at ten
// points of a large initial sync against a throttled emulator, then run again until it converges.
// After every kill the state file passes SQLite's integrity check and the target holds no
// duplicate; at the end the target equals the directory exactly.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state"
)

const (
	crashUsers  = 2000
	crashGroups = 50
)

// crashDirectory writes the directory file: crashUsers users, crashGroups groups of about 80
// members each, and g-000 "Everyone" holding every user (a POST of 100 and 19 PATCHes).
func crashDirectory(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for i := range crashUsers {
		fmt.Fprintf(&b, "  - {id: u-%05d, userName: user%05d@example.com, givenName: User, familyName: N%05d, email: user%05d@example.com}\n", i, i, i, i)
	}
	b.WriteString("groups:\n")
	for g := range crashGroups {
		var members []string
		for i := range crashUsers {
			if g == 0 || i%crashGroups == g || (i/20)%crashGroups == g {
				members = append(members, fmt.Sprintf("u-%05d", i))
			}
		}
		name := fmt.Sprintf("Team %03d", g)
		if g == 0 {
			name = "Everyone"
		}
		fmt.Fprintf(&b, "  - {id: g-%03d, name: %q, members: [%s]}\n", g, name, strings.Join(members, ", "))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// targetConfig writes a config that syncs directory.yaml into srv, with bulk reads through the
// identitystore API; the token comes from $SCIM_TOKEN. Each extra text gets a file of its own.
func targetConfig(t *testing.T, dir string, srv *emulatortest.Server, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`source:
  type: file
  file: {path: directory.yaml}
target:
  scim_url: %s
  token: ${SCIM_TOKEN}
  identity_store_id: %s
  region: us-east-1
  identitystore_endpoint: %s
  concurrency: 16
  rate: {initial: 400}
state: {path: state.db}
data_dir: data
log: {level: warn}
%s`, srv.URL, srv.StoreID, srv.IdentityStoreEndpoint, extra)
	name := "scimbridge.yaml"
	if extra != "" {
		name = fmt.Sprintf("scimbridge-%08x.yaml", crc32.ChecksumIEEE([]byte(extra)))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// childEnv is the environment of a child sync: the token, and AWS credentials that point nowhere
// but the emulator.
func childEnv(dir, token string) []string {
	return append(os.Environ(), "SCIM_TOKEN="+token, "AWS_ACCESS_KEY_ID=AKIDCRASHTEST", "AWS_SECRET_ACCESS_KEY=crash-test-secret",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "HOME="+dir)
}

func writeCount(s emulator.Stats) int64 {
	var n int64
	for k, v := range s {
		if strings.HasPrefix(k, "scim.") && !strings.HasPrefix(k, "scim.List") && !strings.HasPrefix(k, "scim.Get") {
			n += v
		}
	}
	return n
}

// checkNoDuplicates fails on two users or two groups with one externalId or one name.
func checkNoDuplicates(t *testing.T, d emulator.Dump) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range d.Users {
		for _, k := range []string{"ext:" + u.ExternalID, "name:" + strings.ToLower(u.UserName)} {
			if seen["u"+k] {
				t.Errorf("duplicate user %s", k)
			}
			seen["u"+k] = true
		}
	}
	for _, g := range d.Groups {
		for _, k := range []string{"ext:" + g.ExternalID, "name:" + g.DisplayName} {
			if seen["g"+k] {
				t.Errorf("duplicate group %s", k)
			}
			seen["g"+k] = true
		}
	}
}

func checkStateIntegrity(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatalf("state file does not open after a kill: %v", err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(ctx); err != nil {
		t.Fatalf("state file corrupt after a kill: %v", err)
	}
}

func TestCrashRecoveryWithSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary 10+ times")
	}
	dir := t.TempDir()
	crashDirectory(t, filepath.Join(dir, "directory.yaml"))
	srv := emulatortest.Start(t, emulator.Options{})
	manual := addUnmanaged(t, srv)
	srv.Emu.SetFaults(emulator.Faults{RateLimit: 600, Burst: 60})
	srv.Emu.ResetStats()
	cfg := targetConfig(t, dir, srv, "")
	env := childEnv(dir, srv.Token)

	// Kill points, as the number of writes the target has received: from the first user creates
	// to the last membership PATCHes of Everyone (2,069 writes in all: 2,000 users, 50 groups, 19 PATCHes). A break-glass user in a
	// Control Tower group, made outside scimbridge, must come through untouched.
	points := []int64{40, 300, 650, 1000, 1350, 1700, 1990, 2025, 2050, 2062}
	start := time.Now()
	killed := 0
	for i, at := range points {
		cmd := exec.Command(binary, "sync", "-c", cfg)
		cmd.Dir, cmd.Env = dir, env
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		done := false
		for !done {
			select {
			case err := <-exited:
				t.Logf("point %d (%d writes): the run finished before the kill: %v", i, at, err)
				done = true
			case <-time.After(2 * time.Millisecond):
				if writeCount(srv.Emu.Stats()) >= at {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-exited
					killed++
					done = true
				}
			}
		}
		checkStateIntegrity(t, filepath.Join(dir, "state.db"))
		d, err := srv.Emu.Dump()
		if err != nil {
			t.Fatal(err)
		}
		checkNoDuplicates(t, d)
		t.Logf("point %d: killed at %d writes; target %s", i, writeCount(srv.Emu.Stats()), d.Counts())
	}
	if killed < 8 {
		t.Errorf("only %d of %d kills landed in the sync; move the points", killed, len(points))
	}

	// Run again until it succeeds.
	converged := false
	for range 3 {
		out, errOut, code := runEnv(t, dir, env, "sync", "-c", cfg)
		if code == exitOK {
			converged = true
			break
		}
		t.Logf("recovery run: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	if !converged {
		t.Fatal("no recovery run succeeded")
	}
	checkStateIntegrity(t, filepath.Join(dir, "state.db"))
	d, err := srv.Emu.Dump()
	if err != nil {
		t.Fatal(err)
	}
	checkNoDuplicates(t, d)
	checkUnmanaged(t, manual, d)
	checkCrashTarget(t, d)

	// A full read finds nothing to do: the state store agrees with the target.
	out, errOut, code := runEnv(t, dir, env, "sync", "-c", cfg, "--full")
	if code != exitOK || !strings.Contains(out, "No changes") {
		t.Errorf("a full run after recovery is not a no-op: exit %d\n%s\n%s", code, tail(out), errOut)
	}
	t.Logf("10 kills and recovery in %s; %d writes for a lower bound of 2,069", time.Since(start).Round(time.Millisecond), writeCount(srv.Emu.Stats()))
}

// checkCrashTarget compares the target with crashDirectory exactly.
func checkCrashTarget(t *testing.T, d emulator.Dump) {
	t.Helper()
	d.Users = slices.DeleteFunc(slices.Clone(d.Users), func(u emulator.DumpUser) bool { return u.CreatedBy != "scim" })
	d.Groups = slices.DeleteFunc(slices.Clone(d.Groups), func(g emulator.DumpGroup) bool { return g.CreatedBy != "scim" })
	if len(d.Users) != crashUsers || len(d.Groups) != crashGroups {
		t.Fatalf("target holds %s, want %d users and %d groups", d.Counts(), crashUsers, crashGroups)
	}
	ext := map[string]string{}
	for _, u := range d.Users {
		i := strings.TrimPrefix(u.ExternalID, "u-")
		if u.UserName != "user"+i+"@example.com" || u.Email != u.UserName || u.FamilyName != "N"+i || !u.Active {
			t.Errorf("user %s is %+v", u.ExternalID, u)
		}
		ext[u.ID] = u.ExternalID
	}
	for _, g := range d.Groups {
		var n int
		if _, err := fmt.Sscanf(g.ExternalID, "g-%03d", &n); err != nil {
			t.Fatalf("group %+v", g)
		}
		var want, got []string
		for i := range crashUsers {
			if n == 0 || i%crashGroups == n || (i/20)%crashGroups == n {
				want = append(want, fmt.Sprintf("u-%05d", i))
			}
		}
		for _, m := range g.Members {
			got = append(got, ext[m])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("group %s (%s): %d members, want %d", g.ExternalID, g.DisplayName, len(got), len(want))
		}
	}
}

// runEnv runs the binary in dir with env and returns stdout, stderr and the exit code.
func runEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
