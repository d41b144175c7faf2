package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// envWithout returns the process environment without the named variables.
func envWithout(names ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// tree lists every file under dir with a digest of its content and its mode.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %v", rel, info.Mode())
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckWritesNothing: `scimbridge check` creates, changes and leaves behind no file, before
// the first sync (no state store, no embedded target yet) and after it (the embedded target is
// read from a copy), and says what it could and could not reach.
func TestCheckWritesNothing(t *testing.T) {
	dir := quickstart(t)
	tmp := t.TempDir()
	env := append(envWithout("TMPDIR"), "TMPDIR="+tmp)

	before := tree(t, dir)
	out, errOut, code := runEnv(t, dir, env, "check", "-c", "scimbridge.yaml")
	if code != 0 || !strings.Contains(out, "15 users, 6 groups") || !strings.Contains(out, "not created yet; the first sync creates it") {
		t.Fatalf("check before the first sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := tree(t, dir); !slices.Equal(got, before) {
		t.Errorf("check before the first sync wrote files:\ngot  %q\nwant %q", got, before)
	}

	if _, errOut, code := runEnv(t, dir, env, "sync", "-c", "scimbridge.yaml"); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	before = tree(t, dir)
	out, errOut, code = runEnv(t, dir, env, "check", "-c", "scimbridge.yaml")
	if code != 0 || !strings.Contains(out, "SCIM: reachable, token accepted") || !strings.Contains(out, "identitystore: reachable") {
		t.Fatalf("check after a sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := tree(t, dir); !slices.Equal(got, before) {
		t.Errorf("check after a sync wrote files:\ngot  %q\nwant %q", got, before)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "scimbridge-check-*")); len(left) > 0 {
		t.Errorf("check left its copy behind: %q", left)
	}
}

// TestDefaultConfigOutsideTheRepository: without --config and SCIMBRIDGE_CONFIG, outside the
// repository, every subcommand with --config says how to pass one; in the repository the
// default (the quickstart) still works.
func TestDefaultConfigOutsideTheRepository(t *testing.T) {
	dir := t.TempDir()
	env := envWithout("SCIMBRIDGE_CONFIG")
	for _, args := range [][]string{{"sync"}, {"check"}, {"serve"}, {"mapping", "test", "--id", "x"}} {
		_, errOut, code := runEnv(t, dir, env, args...)
		if code != exitError || !strings.Contains(errOut, "pass --config FILE or set SCIMBRIDGE_CONFIG") ||
			!strings.Contains(errOut, "scimbridge "+strings.Join(args[:min(2, len(args))], " ")) {
			t.Errorf("%s outside the repository: exit %d\n%s", args, code, errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Fatalf("%s without a config made a data directory", args)
		}
	}
	_, errOut, code := runEnv(t, dir, append(env, "SCIMBRIDGE_CONFIG="+filepath.Join(dir, "nope.yaml")), "check")
	if code != exitError || !strings.Contains(errOut, "SCIMBRIDGE_CONFIG names "+filepath.Join(dir, "nope.yaml")+", which does not exist") {
		t.Errorf("a SCIMBRIDGE_CONFIG that does not exist: exit %d\n%s", code, errOut)
	}
	// In the repository, the quickstart is the default (mapping test writes nothing).
	out, errOut, code := runEnv(t, filepath.Join("..", ".."), env, "mapping", "test", "--id", "u-1001")
	if code != 0 || !strings.Contains(out, `user "u-1001": in scope`) {
		t.Errorf("the default config from the repository root: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestCheckAndSyncReportMissingAndAbsentAttributes: a user without an email, and a mapping that
// names an attribute no entry holds, are reported by check (count, first ids, the key and a
// suggestion) and logged by sync, though neither stops them.
func TestCheckAndSyncReportMissingAndAbsentAttributes(t *testing.T) {
	dir := quickstart(t)
	path := filepath.Join(dir, "directory.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), "    email: linus.torvalds@example.com\n", "", 1)
	if edited == string(b) {
		t.Fatal("the example directory changed: update this test")
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, dir, "check", "-c", "scimbridge.yaml")
	if code != 0 || !strings.Contains(out, "0 problems, 1 warnings") ||
		!strings.Contains(out, "    ! 1 of 15 users synced have no email (flavour file default mapping.user.email; first: u-1004)\n") {
		t.Fatalf("check of a user without email: exit %d\n%s\n%s", code, out, errOut)
	}

	cfg := filepath.Join(dir, "scimbridge.yaml")
	b, err = os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, "mapping:\n  user:\n    department: attr(\"departmnet\")\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	// The key's line: the third of those appended to the quickstart config.
	line := fmt.Sprintf("(line %d)", strings.Count(string(b), "\n")+3)
	out, errOut, code = run(t, dir, "check", "-c", "scimbridge.yaml")
	if code != 0 || !strings.Contains(out, "0 problems, 3 warnings") ||
		!strings.Contains(out, "    ! 15 of 15 users synced have no department (mapping.user.department "+line+"; first: u-1001, u-1002, u-1003, u-1004, u-1005)\n") ||
		!strings.Contains(out, "    ! mapping.user.department "+line+": attribute \"departmnet\" is on none of the 15 user entries read (did you mean \"department\"?)\n") {
		t.Fatalf("check of a misspelt attribute: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "-c", "scimbridge.yaml", "--dry-run")
	// The plan's output says it too, not only the log.
	if !strings.Contains(out, "Warnings about the source data (3; the run goes on):\n") ||
		!strings.Contains(out, "  ~ 15 of 15 users synced have no department (mapping.user.department "+line+"; first: u-1001, u-1002, u-1003, u-1004, u-1005)\n") {
		t.Errorf("sync output lacks the warnings:\n%s", out)
	}
	js, _, _ := run(t, dir, "sync", "-c", "scimbridge.yaml", "--dry-run", "-o", "json")
	var res struct{ Warnings []string }
	if err := json.Unmarshal([]byte(js), &res); err != nil || len(res.Warnings) != 3 {
		t.Errorf("JSON warnings: got %q (%v), want 3", res.Warnings, err)
	}
	if code != exitChanges || !strings.Contains(errOut, `msg="users synced without an expected attribute" target=email key="flavour file default mapping.user.email" count=1 of=15 first=u-1004`) ||
		!strings.Contains(errOut, `msg="a source attribute the configuration names is on no entry read" key="mapping.user.department `+line+`" attribute=departmnet kind=user entries=15 suggest=department`) {
		t.Fatalf("sync log: exit %d\n%s", code, errOut)
	}
}
