package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite deploy/CONFIG.md")

// referencePath is the generated table of every key and its environment variable.
var referencePath = filepath.Join("..", "..", "..", "..", "deploy", "CONFIG.md")

func TestEnvOverridesEveryKind(t *testing.T) {
	c, err := Parse([]byte(`
source:
  type: file
  file: {path: from-file.yaml}
target:
  scim_url: https://scim.example.com/scim/v2
  token: from-file
sync:
  policy: sync
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.applyEnv([]string{
		"SCIMBRIDGE_TARGET_SCIM_URL=https://scim.us-east-1.amazonaws.com/T/scim/v2", // string
		"SCIMBRIDGE_TARGET_TOKEN=aws-secretsmanager://scimbridge#token",             // secret (a reference)
		"SCIMBRIDGE_TARGET_CONCURRENCY=4",                                           // int
		"SCIMBRIDGE_TARGET_RATE_MAX=12.5",                                           // number
		"SCIMBRIDGE_TARGET_TIMEOUT=45s",                                             // Duration
		"SCIMBRIDGE_SYNC_FULL_RECONCILE_INTERVAL=6h",                                // *Duration
		"SCIMBRIDGE_SYNC_GUARDS_MAX_DELETES=7",                                      // *int
		"SCIMBRIDGE_SYNC_POLICY=upsert-only",                                        // named string
		"SCIMBRIDGE_SOURCE_FILE_PATH=/etc/scimbridge/directory.yaml",                // inside a pointer section
		`SCIMBRIDGE_MAPPING_USER={"title": "attr(\"title\")"}`,                      // map as JSON
		"SCIMBRIDGE_SCOPE_GROUPS_NAMES=[admins, engineering]",                       // list as YAML
		`SCIMBRIDGE_SCOPE_USERS_INCLUDE=attr("department") == "eng"`,                // expression
		"SCIMBRIDGE_DATA_DIR=/var/lib/scimbridge",
		"SCIMBRIDGE_TEST_OUTPUT=/tmp/x", // not under a config section: ignored
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatalf("applyEnv: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate after applyEnv: %v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"scim_url", c.Target.SCIMURL, "https://scim.us-east-1.amazonaws.com/T/scim/v2"},
		{"token", c.Target.Token.Reveal(), "aws-secretsmanager://scimbridge#token"},
		{"concurrency", c.Target.Concurrency, 4},
		{"rate.max", c.Target.Rate.Max, 12.5},
		{"timeout", time.Duration(c.Target.Timeout), 45 * time.Second},
		{"full_reconcile_interval", time.Duration(*c.Sync.FullReconcileInterval), 6 * time.Hour},
		{"max_deletes", *c.Sync.Guards.MaxDeletes, 7},
		{"policy", string(c.Sync.Policy), "upsert-only"},
		{"file.path", c.Source.File.Path, "/etc/scimbridge/directory.yaml"},
		{"mapping.user", c.Mapping.User["title"].Text, `attr("title")`},
		{"scope.groups.names", c.Scope.Groups.Names, []string{"admins", "engineering"}},
		{"scope.users.include", c.Scope.Users.Include.Text, `attr("department") == "eng"`},
		{"data_dir", c.DataDir, "/var/lib/scimbridge"},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestEnvAllocatesAnAbsentSection(t *testing.T) {
	c, err := Parse([]byte("source: {type: file}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.applyEnv([]string{"SCIMBRIDGE_SOURCE_FILE_PATH=d.yaml"}); err != nil {
		t.Fatal(err)
	}
	if c.Source.File == nil || c.Source.File.Path != "d.yaml" {
		t.Fatalf("source.file = %+v, want path d.yaml", c.Source.File)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a config given by the environment alone must validate: %v", err)
	}
}

func TestEnvReportsEveryProblemWithoutValues(t *testing.T) {
	c := &Config{}
	err := c.applyEnv([]string{
		"SCIMBRIDGE_TARGET_SCIM_UR=https://typo",  // unknown key under a section
		"SCIMBRIDGE_TARGET_CONCURRENCY=sixteen",   // not an int
		"SCIMBRIDGE_TARGET_TIMEOUT=soon",          // not a duration
		"SCIMBRIDGE_SCOPE_GROUPS_NAMES={unclosed", // not YAML
		"SCIMBRIDGE_MAPPING_USER_TITLE=x",         // map elements have no variables
		"SCIMBRIDGE_SCOPE_USER_MODE=everyone",     // a value its type refuses
		"SCIMBRIDGE_TARGET_TOKEN=hunter2",         // fine, and never printed
	})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{"SCIMBRIDGE_TARGET_SCIM_UR", "SCIMBRIDGE_TARGET_CONCURRENCY (target.concurrency)",
		"SCIMBRIDGE_TARGET_TIMEOUT", "SCIMBRIDGE_SCOPE_GROUPS_NAMES", "SCIMBRIDGE_MAPPING_USER_TITLE", "SCIMBRIDGE_SCOPE_USER_MODE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "SCIMBRIDGE_TARGET_TOKEN") {
		t.Errorf("error mentions the token:\n%s", msg)
	}
	if c.Target.Token.Reveal() != "hunter2" {
		t.Errorf("the valid variables are still applied")
	}
}

func TestLoadAppliesEnvBeforeValidate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	// Without the environment this file is invalid (scim_url without a token).
	if err := os.WriteFile(p, []byte("source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: 'https://scim.example.com/scim/v2'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCIMBRIDGE_TARGET_TOKEN_FILE", "/run/secrets/scim-token")
	t.Setenv("SCIMBRIDGE_LOG_FORMAT", "json")
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Target.TokenFile != "/run/secrets/scim-token" || c.Log.Format != "json" {
		t.Fatalf("env not applied: token_file %q, log.format %q", c.Target.TokenFile, c.Log.Format)
	}
	t.Setenv("SCIMBRIDGE_LOG_FORMAT", "xml")
	t.Setenv("SCIMBRIDGE_LOG_LEVELS", "debug")
	_, err = Load(p)
	for _, want := range []string{`log.format: expected one of text, json, not "xml"`, "SCIMBRIDGE_LOG_LEVELS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load error %v, want it to mention %s (env and validation problems together)", err, want)
		}
	}
}

func TestEnvVarNamesAreUniqueAndCoverTheConfig(t *testing.T) {
	vars := EnvVars()
	seen := map[string]string{}
	for _, v := range vars {
		if prev, dup := seen[v.Name]; dup {
			t.Errorf("%s names both %s and %s", v.Name, prev, v.Key)
		}
		seen[v.Name] = v.Key
	}
	// Spot checks across sections, pointer sections, leaves that are structs and defaults.
	want := map[string][2]string{
		"SCIMBRIDGE_TARGET_SCIM_URL":              {"target.scim_url", ""},
		"SCIMBRIDGE_TARGET_TIMEOUT":               {"target.timeout", "30s"},
		"SCIMBRIDGE_SYNC_FULL_RECONCILE_INTERVAL": {"sync.full_reconcile_interval", "24h"},
		"SCIMBRIDGE_SYNC_GUARDS_MAX_DELETES":      {"sync.guards.max_deletes", "100"},
		"SCIMBRIDGE_SOURCE_GOOGLE_SUBJECT":        {"source.google.subject", ""},
		"SCIMBRIDGE_SCOPE_USERS_INCLUDE":          {"scope.users.include", ""},
		"SCIMBRIDGE_DATA_DIR":                     {"data_dir", "data"},
		"SCIMBRIDGE_SERVICE_LISTEN":               {"service.listen", "127.0.0.1:8080"},
	}
	for _, v := range vars {
		if w, ok := want[v.Name]; ok {
			if v.Key != w[0] || v.Default != w[1] {
				t.Errorf("%s: key %q default %q, want %q %q", v.Name, v.Key, v.Default, w[0], w[1])
			}
			delete(want, v.Name)
		}
	}
	for name := range want {
		t.Errorf("%s is not listed", name)
	}
}

// TestEnvReference keeps deploy/CONFIG.md equal to what WriteEnvReference renders: a key added to
// the Config without regenerating the table fails here. Regenerate with
// `go generate ./cmd/scimbridge/internal/config` (or this test with -update).
func TestEnvReference(t *testing.T) {
	var b bytes.Buffer
	if err := WriteEnvReference(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(referencePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("%v (generate it with: go generate ./cmd/scimbridge/internal/config)", err)
	}
	var missing []string
	for _, v := range EnvVars() {
		if !bytes.Contains(got, []byte("| `"+v.Key+"` | `"+v.Name+"` |")) {
			missing = append(missing, v.Key)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("deploy/CONFIG.md lacks %s; regenerate it: go generate ./cmd/scimbridge/internal/config", strings.Join(missing, ", "))
	}
	if diff := cmp.Diff(b.String(), string(got)); diff != "" {
		t.Fatalf("deploy/CONFIG.md is stale; regenerate it: go generate ./cmd/scimbridge/internal/config (-generated +file):\n%s", diff)
	}
}
