package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestProgressBarGolden draws the bar of an apply of 1,000 changes on a fake terminal with a fake
// clock, a log line in the middle: the bar ends its line before the log line, shows the time
// elapsed and, from a tenth on, the time left; finish ends the line. Golden:
// testdata/progress.golden (rewrite with -update).
func TestProgressBarGolden(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	b := &progressBar{w: &out, on: true, now: func() time.Time { return clock }}
	log := slog.New(slog.NewTextHandler(b.writer(), &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	for _, step := range []struct {
		after time.Duration
		done  int
	}{{0, 0}, {5 * time.Second, 50}, {10 * time.Second, 100}, {50 * time.Millisecond, 105}, {20 * time.Second, 300}, {-1, 0}, {80 * time.Second, 700}, {70 * time.Minute, 999}, {time.Second, 1000}} {
		if step.after < 0 {
			log.Warn("a request was throttled", "op", "scim.CreateUser")
			continue
		}
		clock = clock.Add(step.after)
		b.update(step.done, 1000)
	}
	b.finish()
	fmt.Fprintln(&out, "Done.")
	got := strings.ReplaceAll(out.String(), "\r", "<CR>")
	got = strings.ReplaceAll(got, "\x1b[K", "<EL>")
	checkGolden(t, filepath.Join("testdata", "progress.golden"), got)
	for _, line := range strings.Split(got, "\n") {
		if i := strings.Index(line, "level=WARN"); i > 0 {
			t.Errorf("the log line shares a line with the bar: %q", line)
		}
	}
}

// TestLargePlanOnTheCommandLine: a dry run of 300 users with --plan-file shows the summary per
// kind and names the file, which holds the whole plan; --detail prints the whole plan; without
// either, output that is not a terminal gets the whole plan as before.
func TestLargePlanOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	var d strings.Builder
	d.WriteString("users:\n")
	for i := range 300 {
		fmt.Fprintf(&d, "  - {id: u-%04d, userName: user%04d@example.com, givenName: User, familyName: N%d, email: user%04d@example.com}\n", i, i, i, i)
	}
	d.WriteString("groups:\n  - {id: g-1, name: Everyone, members: [u-0000, u-0001]}\n")
	if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte(d.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("source: {type: file, file: {path: directory.yaml}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, dir, "sync", "--dry-run", "-c", "c.yaml", "--plan-file", "plan.txt")
	if code != exitChanges {
		t.Fatalf("dry run: exit %d\n%s", code, errOut)
	}
	full, err := os.ReadFile(filepath.Join(dir, "plan.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(full), "  + user "); n != 300 {
		t.Errorf("plan.txt lists %d user creates, want 300", n)
	}
	if !strings.Contains(out, "the whole plan is in plan.txt") || !strings.Contains(out, "  + user: 300") ||
		!strings.Contains(out, "... and 295 more") || strings.Count(out, "  + user \"") != 5 {
		t.Errorf("the summary does not show 5 of 300 creates and the file:\n%s", out)
	}
	if !strings.Contains(out, "Plan: users 300 to create") {
		t.Errorf("the summary lost the plan's count line:\n%s", out)
	}
	out, _, _ = run(t, dir, "sync", "--dry-run", "-c", "c.yaml", "--plan-file", "plan.txt", "--detail")
	if n := strings.Count(out, "  + user \""); n != 300 {
		t.Errorf("--detail printed %d user creates, want 300", n)
	}
	out, _, _ = run(t, dir, "sync", "--dry-run", "-c", "c.yaml")
	if n := strings.Count(out, "  + user \""); n != 300 {
		t.Errorf("into a pipe without --plan-file: %d user creates printed, want all 300", n)
	}
}

// checkGolden compares got with the golden file at path, rewriting it with -update (the flag
// of this package's tests).
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("%s differs (-got +want; -update rewrites it):\n%s", path, diff)
	}
}
