package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/scim/plan"
)

func TestGuardKeys(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: d.yaml}}
sync:
  guards: {max_clear_percent: 25, allow_clears: [email, title], allow_empty_source: true}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := plan.DefaultGuards
	want.MaxClearPercent, want.AllowClears, want.AllowEmptySource = 25, []string{"email", "title"}, true
	if diff := cmp.Diff(want, c.Guards()); diff != "" {
		t.Errorf("guards (-want +got):\n%s", diff)
	}

	// Negative turns the clear guard off; the environment sets it as any other key.
	if err := c.applyEnv([]string{"SCIMBRIDGE_SYNC_GUARDS_MAX_CLEAR_PERCENT=-1", "SCIMBRIDGE_SYNC_GUARDS_ALLOW_EMPTY_SOURCE=false"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if g := c.Guards(); g.MaxClearPercent != -1 || g.AllowEmptySource {
		t.Errorf("after the environment: max_clear_percent %g, allow_empty_source %v; want -1 and false", g.MaxClearPercent, g.AllowEmptySource)
	}
}

func TestGuardKeyProblemsAreAllReported(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: d.yaml}}
sync:
  guards: {max_delete_percent: 120, max_clear_percent: 101, allow_clears: [emial, title, phoneNumbr]}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"max_delete_percent: 120 is over 100", "sync.guards.max_clear_percent: 101 is over 100",
		`sync.guards.allow_clears: "emial" is not a user attribute`, `sync.guards.allow_clears: "phoneNumbr" is not a user attribute`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not hold %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"title"`) {
		t.Errorf("a known attribute is reported:\n%v", err)
	}
}
