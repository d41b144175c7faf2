package main

// The PostgreSQL state store from the command line (issue 17): `state migrate` copies an SQLite
// state into PostgreSQL, a full plan against the copy is empty, and sync takes the database's
// writer lock (exit 4 when another writer holds it). The URL's password never shows.

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/emulator"
	"github.com/scimbridge/scimbridge/scim/emulator/emulatortest"
	"github.com/scimbridge/scimbridge/scim/state"
	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// runAll runs the binary in dir with env and returns its output, stdout then stderr, and exit code.
func runAll(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	out, errOut, code := runEnv(t, dir, env, args...)
	return out + errOut, code
}

func TestStateMigrateToPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the binary")
	}
	dbURL := pgtest.URL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	dir := t.TempDir()
	lockDirectory(t, dir, 150)
	srv := emulatortest.Start(t, emulator.Options{})
	cfg := targetConfig(t, dir, srv, "")
	env := append(childEnv(dir, srv.Token), "STATE_URL="+dbURL)
	noPassword := func(step, out string) {
		t.Helper()
		if strings.Contains(out, password) {
			t.Errorf("%s: the output shows the database password:\n%s", step, out)
		}
	}

	if out, code := runAll(t, dir, env, "sync", "-c", cfg); code != exitOK {
		t.Fatalf("first sync into SQLite: exit %d\n%s", code, out)
	}
	out, code := runAll(t, dir, env, "state", "migrate", "-c", cfg, "--to", "env://STATE_URL")
	noPassword("migrate", out)
	if code != exitOK || !strings.Contains(out, "150 users, 1 groups, 150 memberships") || !strings.Contains(out, "compares equal") {
		t.Fatalf("state migrate: exit %d\n%s", code, out)
	}
	// Into a database that holds state it refuses, unless --force.
	out, code = runAll(t, dir, env, "state", "migrate", "-c", cfg, "--to", dbURL)
	noPassword("second migrate", out)
	if code != exitError || !strings.Contains(out, "not empty") || !strings.Contains(out, "--force") {
		t.Errorf("migrate into a non-empty database: exit %d, want %d naming --force\n%s", code, exitError, out)
	}
	if out, code := runAll(t, dir, env, "state", "migrate", "-c", cfg, "--to", "env://STATE_URL", "--force"); code != exitOK {
		t.Errorf("migrate --force: exit %d\n%s", code, out)
	}

	// The configuration now names the database: a full plan against the copy is empty, and a
	// real run writes nothing.
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pgCfg := filepath.Join(dir, "postgres.yaml")
	if err := os.WriteFile(pgCfg, bytes.Replace(b, []byte("state: {path: state.db}"), []byte("state: {url: env://STATE_URL}"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Emu.ResetStats()
	for _, args := range [][]string{{"--dry-run", "--full"}, {"--dry-run"}, {"--full"}, {}} {
		out, code := runAll(t, dir, env, append([]string{"sync", "-c", pgCfg}, args...)...)
		noPassword("sync", out)
		if code != exitOK || !strings.Contains(out, "No changes") {
			t.Errorf("sync %v against the migrated store: exit %d, want %d and no changes\n%s", args, code, exitOK, out)
		}
	}
	if n := writeCount(srv.Emu.Stats()); n != 0 {
		t.Errorf("runs against the migrated store wrote %d times, want 0", n)
	}

	// Another writer holds the database's lock: sync exits 4 at once, naming it.
	held, err := state.AcquireLock(context.Background(), dbURL, state.LockInfo{PID: 4242, Host: "other-replica", Command: "serve"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	out, code = runAll(t, dir, env, "sync", "-c", pgCfg)
	noPassword("locked sync", out)
	if code != exitLocked || !strings.Contains(out, "pid 4242 on host other-replica") || !strings.Contains(out, "xxxxx@") {
		t.Errorf("sync while another writer holds the lock: exit %d, want %d naming the holder and the database\n%s", code, exitLocked, out)
	}
	out, code = runAll(t, dir, env, "state", "unlock", "-c", pgCfg)
	noPassword("unlock", out)
	if code != exitError || !strings.Contains(out, "pid 4242") {
		t.Errorf("state unlock without --force: exit %d\n%s", code, out)
	}
	if out, code := runAll(t, dir, env, "state", "unlock", "-c", pgCfg, "--force"); code != exitOK {
		t.Errorf("state unlock --force: exit %d\n%s", code, out)
	}
	if err := held.Check(context.Background()); !errors.Is(err, state.ErrLockLost) {
		t.Errorf("the holder's lock after unlock --force: got %v, want ErrLockLost", err)
	}
	if out, code := runAll(t, dir, env, "sync", "-c", pgCfg); code != exitOK {
		t.Errorf("sync after unlock --force: exit %d\n%s", code, out)
	}
}
