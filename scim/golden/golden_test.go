package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing the test that uses it.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, format)
}

func TestCheck(t *testing.T) {
	if Updating() {
		t.Skip("-update rewrites files; this test checks comparison")
	}
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Check(r, path, []byte("a\nb\n"))
	if len(r.errors) != 0 {
		t.Errorf("equal content: got errors %q, want none", r.errors)
	}
	Check(r, path, []byte("a\nc\n"))
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "differs") {
		t.Errorf("different content: got errors %q, want one difference", r.errors)
	}
	r.errors = nil
	Check(r, filepath.Join(t.TempDir(), "missing.golden"), []byte("a"))
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "-update") {
		t.Errorf("missing file: got errors %q, want one naming -update", r.errors)
	}
}

func TestCheckUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.golden")
	old := *update
	*update = true
	t.Cleanup(func() { *update = old })
	r := &recorder{TB: t}
	Check(r, path, []byte("new\n"))
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new\n" || len(r.errors) != 0 {
		t.Errorf("after -update: got %q and errors %q, want %q and none", got, r.errors, "new\n")
	}
}
