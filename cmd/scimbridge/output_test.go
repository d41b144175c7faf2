package main

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// syncSchema compiles deploy/docs/sync-result.schema.json.
func syncSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "deploy", "docs", "sync-result.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return s
}

// TestSyncJSONMatchesItsSchema runs real syncs of the quickstart and checks every
// `--output json` document against the documented schema: a dry run with changes, the sync that
// applies them, a run with nothing to do, --summary-only, and a run that left records out (exit 5).
// With and without changes the documents have the same keys, the plan's included.
func TestSyncJSONMatchesItsSchema(t *testing.T) {
	schema := syncSchema(t)
	dir := quickstart(t)
	docs := map[string]map[string]any{}
	runJSON := func(name string, wantCode int, args ...string) {
		t.Helper()
		out, errOut, code := run(t, dir, append([]string{"sync", "-c", "scimbridge.yaml", "--output", "json"}, args...)...)
		if code != wantCode {
			t.Fatalf("%s: exit %d, want %d\n%s", name, code, wantCode, errOut)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
		if err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", name, err, out)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("%s: the output does not match deploy/docs/sync-result.schema.json:\n%v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		if m["schema_version"] != float64(syncResultSchemaVersion) {
			t.Errorf("%s: schema_version %v, want %d", name, m["schema_version"], syncResultSchemaVersion)
		}
		docs[name] = m
	}
	runJSON("dry run", exitChanges, "--dry-run")
	runJSON("apply", exitOK)
	runJSON("no changes", exitOK)
	runJSON("summary only", exitOK, "--summary-only")
	if _, ok := docs["summary only"]["plan"]; ok {
		t.Errorf("--summary-only printed a plan")
	}
	if acc, _ := docs["summary only"]["access"].(map[string]any); acc == nil || acc["plan"] != nil || acc["summary"] == nil {
		t.Errorf("--summary-only: access %v, want its summary without its plan", acc)
	}
	if acc, _ := docs["dry run"]["access"].(map[string]any); acc == nil || acc["plan"] == nil || acc["summary"] == nil {
		t.Errorf("dry run: access %v, want its plan and summary", acc)
	}
	for _, name := range []string{"apply", "no changes"} {
		if got, want := keys(docs[name]), keys(docs["dry run"]); !slices.Equal(got, want) {
			t.Errorf("%s: keys %v, want those of a run with changes %v", name, got, want)
		}
		got, _ := docs[name]["plan"].(map[string]any)
		want, _ := docs["dry run"]["plan"].(map[string]any)
		if !slices.Equal(keys(got), keys(want)) || len(want) < 15 {
			t.Errorf("%s: plan keys %v, want those of a plan with changes %v", name, keys(got), keys(want))
		}
	}

	// A target object scimbridge does not own holds a userName: exit 5, clashes listed.
	leftOut := quickstart(t)
	if _, errOut, code := run(t, leftOut, "sync", "-c", "scimbridge.yaml"); code != 0 {
		t.Fatalf("sync: %s", errOut)
	}
	dir = leftOut
	removeState(t, leftOut)
	runJSON("left out", exitLeftOut)
	if cl, _ := docs["left out"]["clashes"].([]any); len(cl) == 0 {
		t.Errorf("left out: no clashes listed")
	}

	// The directory emptied after a sync: blocked by the guards (exit 3), same document.
	dir = quickstart(t)
	if _, errOut, code := run(t, dir, "sync", "-c", "scimbridge.yaml"); code != 0 {
		t.Fatalf("sync: %s", errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "directory.yaml"), []byte("users: []\ngroups: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runJSON("blocked", exitBlocked)
	if docs["blocked"]["result"] != "blocked" || len(docs["blocked"]["errors"].([]any)) == 0 {
		t.Errorf("blocked: result %v errors %v", docs["blocked"]["result"], docs["blocked"]["errors"])
	}
}

// removeState deletes the quickstart's state store (the embedded target stays): every object
// is then unowned.
func removeState(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "data", "state.db*"))
	if len(matches) == 0 {
		t.Fatal("no state file to remove")
	}
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// TestJSONLogDurations: with log.format json, durations carry their unit in the key
// (duration_ms, a number of milliseconds), never bare nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	dir := quickstart(t)
	env := append(envWithout("SCIMBRIDGE_LOG_FORMAT"), "SCIMBRIDGE_LOG_FORMAT=json")
	_, errOut, code := runEnv(t, dir, env, "sync", "-c", "scimbridge.yaml")
	if code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(errOut))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		for k, v := range line {
			if strings.Contains(k, "duration") && !strings.HasSuffix(k, "_ms") && !strings.HasSuffix(k, "_seconds") {
				t.Errorf("log key %q = %v has no unit", k, v)
			}
		}
		if line["msg"] == "run finished" {
			ms, ok := line["duration_ms"].(float64)
			found = ok && ms > 0 && ms < 120_000
			if !found {
				t.Errorf("run finished: got duration_ms %v, want milliseconds", line["duration_ms"])
			}
		}
	}
	if !found {
		t.Errorf("no run finished line in\n%s", errOut)
	}
}
