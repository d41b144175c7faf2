package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimbridge/scimbridge/scim/state/pgtest"
)

// binary is the scimbridge binary built once for the command tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scimbridge-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "scimbridge")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// quickstart copies the example config and directory into a fresh folder and returns it.
func quickstart(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"scimbridge.yaml", "directory.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs the binary in dir and returns stdout, stderr and the exit code.
func run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestQuickstart(t *testing.T) {
	dir := quickstart(t)
	out, errOut, code := run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run")
	if code != exitChanges || !strings.Contains(out, `+ group "Administrators"`) || !strings.Contains(out, "users 15 to create") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitOK || !strings.Contains(out, "21 created") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitOK || !strings.Contains(out, "No changes") || !strings.Contains(out, "0 requests") {
		t.Fatalf("second run must print no changes and make no request: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, f := range []string{"data/state.db", "data/identity-center.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	// A person leaves the directory file: the dry run shows it and exits 2; JSON is parseable.
	path := filepath.Join(dir, "directory.yaml")
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), "userName: alan.kay@example.com", "userName: alan.c.kay@example.com", 1)
	if edited == string(b) {
		t.Fatal("the example directory changed: update this test")
	}
	os.WriteFile(path, []byte(edited), 0o600)
	out, _, code = run(t, dir, "sync", "--config", "scimbridge.yaml", "--dry-run", "--output", "json")
	var res struct {
		Result  string
		DryRun  bool
		Summary struct{ UpdateUsers int }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitChanges || res.Summary.UpdateUsers != 1 {
		t.Fatalf("json dry run: exit %d err %v\n%s", code, err, out)
	}
	out, _, code = run(t, dir, "sync", "--config", "scimbridge.yaml")
	if code != exitOK || !strings.Contains(out, "1 updated") || !strings.Contains(out, `userName: "alan.kay@example.com" -> "alan.c.kay@example.com"`) {
		t.Fatalf("rename: exit %d\n%s", code, out)
	}
}

func TestGuardBlockExitCode(t *testing.T) {
	dir := quickstart(t)
	if _, errOut, code := run(t, dir, "sync", "-c", "scimbridge.yaml"); code != 0 {
		t.Fatal(errOut)
	}
	// An emptied directory must never delete: blocked, exit 3, nothing written.
	os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte("users: []\ngroups: []\n"), 0o600)
	out, errOut, code := run(t, dir, "sync", "-c", "scimbridge.yaml")
	if code != exitBlocked || !strings.Contains(errOut, "blocked by a safety guard") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = run(t, dir, "sync", "-c", "scimbridge.yaml", "--dry-run", "--output", "json")
	if !strings.Contains(out, `"result": "blocked"`) {
		t.Errorf("dry run of a blocked plan: %s", out)
	}
}

func TestConfigErrorsAreAllReported(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("source: {type: file, file: {path: nope.yaml}}\nsync: {policy: yolo}\nlog: {format: xml}\n"), 0o600)
	_, errOut, code := run(t, dir, "sync", "-c", "bad.yaml")
	if code != exitError {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"sync.policy", "log.format"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not mention %s:\n%s", want, errOut)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := quickstart(t)
	out, errOut, code := run(t, dir, "check", "-c", "scimbridge.yaml")
	if code != 0 || !strings.Contains(out, "15 users, 6 groups") || strings.Count(out, "sample user") != 3 || !strings.Contains(out, "everything reachable") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "scimbridge ") {
		t.Fatalf("exit %d: %s", code, out)
	}
}
