package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/scim/plan"
)

// TestEveryMistakeOfAFileAtOnce loads a file with a mistake on almost every line and compares
// all that Load says of it with testdata/mistakes/errors.golden: one message per mistake, in the
// order of the lines, each naming its line and its key path (never a Go type), with the nearest
// key or value for a typo. Rewrite with: go test ./cmd/scimbridge/internal/config -run
// TestEveryMistakeOfAFileAtOnce -update
func TestEveryMistakeOfAFileAtOnce(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "mistakes", "config.yaml"))
	if err == nil {
		t.Fatal("Load accepted a file full of mistakes")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "mistakes", "errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("Load's errors differ from %s (-got +want):\n%s", golden, diff)
	}
	for _, goType := range []string{"config.Config", "plan.Policy", "unmarshal", "!!", "struct", "not found in type", "a-literal-token"} {
		if strings.Contains(got, goType) {
			t.Errorf("the errors mention %q (a Go type or a secret):\n%s", goType, got)
		}
	}
}

// TestShapeCheckFollowsTheStructTags: a key is known by its yaml tag wherever the struct is, so
// keys other sections add are checked without a list; inline structs and maps count.
func TestShapeCheckFollowsTheStructTags(t *testing.T) {
	type inner struct {
		Depth int `yaml:"depth"`
	}
	type section struct {
		inner   `yaml:",inline"`
		Name    string            `yaml:"name"`
		Items   []inner           `yaml:"items"`
		Labels  map[string]inner  `yaml:"labels"`
		Skipped string            `yaml:"-"`
		Extra   map[string]string `yaml:",inline"`
	}
	_ = section{}.Skipped
	_ = section{}.inner
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"name: x\ndepth: 3\nitems: [{depth: 1}]\nlabels: {a: {depth: 2}}\nanything: goes\n", nil},
		{"items:\n  - {depth: 1}\n  - {detph: 2}\n", []string{`line 3: items[1]: unknown key "detph"; did you mean "depth"?`}},
		{"labels: {a: {depth: deep}}\n", []string{`line 1: labels.a.depth: expected an integer, not "deep"`}},
		{"items: {depth: 1}\n", []string{`line 1: items: expected a list, not a mapping`}},
	} {
		c := &shapeChecker{lines: map[string]int{}}
		root := mustNode(t, tc.doc)
		c.walk(root.Content[0], reflectTypeOf[section](), "")
		var got []string
		for _, e := range c.errs {
			got = append(got, e.Error())
		}
		if diff := cmp.Diff(got, tc.want); diff != "" {
			t.Errorf("%q: (-got +want)\n%s", tc.doc, diff)
		}
	}
}

func TestClosest(t *testing.T) {
	keys := []string{"path", "policy", "deprovision", "adopt", "scim_url", "token_file"}
	for in, want := range map[string]string{
		"Path": "path", "polcy": "policy", "deprovison": "deprovision", "scimurl": "scim_url",
		"tokenfile": "token_file", "colour": "", "x": "", "adopted": "adopt",
	} {
		if got := closest(in, keys); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustNode(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func reflectTypeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// TestEnumTagsListTheRealValues: every value the code defines passes the enum tags, and a value
// next to them does not.
func TestEnumTagsListTheRealValues(t *testing.T) {
	var c Config
	for _, p := range []plan.Policy{plan.PolicySync, plan.PolicyUpsertOnly, plan.PolicyCreateOnly} {
		for _, d := range []plan.Deprovision{plan.DeprovisionDelete, plan.DeprovisionDisable} {
			for _, a := range []plan.Adopt{plan.AdoptNone, plan.AdoptExternalID, plan.AdoptName} {
				for _, pr := range []Profile{ProfileIdentityCenter, ProfileGeneric} {
					for _, gm := range []GroupMembers{GroupMembersAuto, GroupMembersListings, GroupMembersFilter, GroupMembersGet} {
						c.Sync.Policy, c.Sync.Deprovision, c.Sync.Adopt, c.Target.Profile, c.Target.GroupMembers = p, d, a, pr, gm
						if errs := validateEnums(reflect.ValueOf(&c).Elem(), ""); len(errs) > 0 {
							t.Fatalf("got %v for %s %s %s %s %s, want no error", errs, p, d, a, pr, gm)
						}
					}
				}
			}
		}
	}
	c.Sync.Policy = "upsert"
	errs := validateEnums(reflect.ValueOf(&c).Elem(), "")
	if len(errs) != 1 || errs[0].Error() != `sync.policy: expected one of sync, upsert-only, create-only, not "upsert"` {
		t.Errorf("got %v, want one sync.policy error", errs)
	}
}
