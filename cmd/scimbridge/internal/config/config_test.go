package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/scim/plan"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestUnknownKeysAndWrongTypesAreAllReported(t *testing.T) {
	_, err := Parse([]byte(`
source:
  type: file
  file: {path: d.yaml, colour: blue}
target:
  concurrency: many
sink: nowhere
`), env(nil))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"colour", "line 6", "many", "sink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestEnvironmentExpansion(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: "${DIR}/d.yaml"}}
target:
  scim_url: https://scim.example.com/${TENANT:-t1}/scim/v2
  token: ${TOKEN}
  concurrency: ${CONC}
data_dir: "cost: $$5"
`), env(map[string]string{"DIR": "/srv", "TOKEN": "s3cr3t: {not yaml}", "CONC": "4"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.File.Path != "/srv/d.yaml" || c.Target.SCIMURL != "https://scim.example.com/t1/scim/v2" {
		t.Errorf("expansion: %q %q", c.Source.File.Path, c.Target.SCIMURL)
	}
	if c.Target.Token.Reveal() != "s3cr3t: {not yaml}" {
		t.Errorf("a value with YAML syntax must stay a value, got %q", c.Target.Token.Reveal())
	}
	if c.Target.Concurrency != 4 || c.DataDir != "cost: $5" {
		t.Errorf("concurrency %d data_dir %q", c.Target.Concurrency, c.DataDir)
	}
	_, err = Parse([]byte("source: {type: file}\ntarget:\n  token: ${MISSING}\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "MISSING is not set") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("missing variable: %v", err)
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: ldpa}
target: {scim_url: "http://scim.example.com/x", profile: fancy, concurrency: -1}
sync: {policy: yolo, deprovision: shred, adopt: everything, guards: {max_delete_percent: 150}}
log: {level: loud, format: xml}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"source.type", "https", "token or token_file", "profile", "concurrency",
		"sync.policy", "sync.deprovision", "sync.adopt", "max_delete_percent", "log.level", "log.format"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not mention %q:\n%v", want, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Sync.Policy != plan.PolicySync || c.Sync.Deprovision != plan.DeprovisionDelete || c.Sync.Adopt != plan.AdoptNone {
		t.Errorf("sync defaults: %+v", c.Sync)
	}
	if time.Duration(*c.Sync.FullReconcileInterval) != 24*time.Hour || time.Duration(c.Target.Timeout) != 30*time.Second {
		t.Errorf("durations: %v %v", *c.Sync.FullReconcileInterval, c.Target.Timeout)
	}
	if diff := cmp.Diff(plan.DefaultGuards, c.Guards()); diff != "" {
		t.Errorf("guards (-want +got):\n%s", diff)
	}
	if c.StatePath() != filepath.Join("data", "state.db") {
		t.Errorf("state path %q", c.StatePath())
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("users: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	body := "source: {type: file, file: {path: d.yaml}}\ntarget: {scim_url: https://scim.example.com/t/scim/v2, token: " + token + ", token_file: /x, profile: bad}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("error leaks the token or is missing: %v", err)
	}
	c, err := Parse([]byte(body), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), token) || !strings.Contains(string(out), "<secret>") {
		t.Errorf("rendered config leaks the token:\n%s", out)
	}
}

func TestLoadResolvesPathsAgainstTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("users: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("source: {type: file, file: {path: d.yaml}}\ntarget: {token_file: tok}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "need scim_url") {
		t.Fatalf("token without scim_url: %v", err)
	}
	if err := os.WriteFile(path, []byte("source: {type: file, file: {path: d.yaml}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Source.File.Path; got != filepath.Join(dir, "d.yaml") {
		t.Errorf("source.file.path = %q, want it resolved against the config's folder", got)
	}
	if _, err := Load(filepath.Join(dir, "nope.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLineNumbersSurviveExpansion(t *testing.T) {
	raw := "source:\n  type: file\n\n\n  file:\n    path: ${DIR}/d.yaml   # a comment\n\n\ntarget:\n  bogus: 1\n"
	_, err := Parse([]byte(raw), env(map[string]string{"DIR": "/a b: c"}))
	if err == nil || !strings.Contains(err.Error(), "line 10") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("want the unknown key reported on line 10, got %v", err)
	}
}

func TestTargetProfileSettings(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		want         []string // "" for none
	}{
		{"identity_center limits", `{scim_url: "https://s.example.com/scim/v2", token: t, page_size: 200, members_per_request: 500, group_members: listings}`,
			[]string{"target.page_size: 200 is outside 1..100", "target.members_per_request: 500 is outside 1..100", `target.group_members: "listings" does not work with the identity_center profile`}},
		{"generic settings", `{scim_url: "https://s.example.com/scim/v2", token: t, profile: generic, page_size: 500, members_per_request: 2000, group_members: get}`, nil},
		{"unknown group_members", `{scim_url: "https://s.example.com/scim/v2", token: t, profile: generic, group_members: sometimes, page_size: -1}`,
			[]string{`target.group_members: expected one of auto, listings, filter, get, not "sometimes"`, "target.page_size: -1"}},
		{"identity_store_id without region", `{scim_url: "https://s.example.com/scim/v2", token: t, identity_store_id: d-1234567890}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\ntarget: "+tc.target+"\n"), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("got %v, want no error", err)
				}
				return
			}
			for _, want := range tc.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want it to say %q", err, want)
				}
			}
		})
	}
}
