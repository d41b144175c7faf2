package config

import (
	"strings"
	"testing"
)

func TestAdoptUnmatched(t *testing.T) {
	for _, tc := range []struct {
		name, sync string
		wantErr    []string
	}{
		{"with adopt external_id", `{adopt: external_id, adopt_unmatched: true}`, nil},
		{"with adopt name", `{adopt: name, adopt_unmatched: true}`, nil},
		{"without adopt", `{adopt_unmatched: true}`, []string{"sync.adopt_unmatched: needs sync.adopt external_id or name"}},
		{"with upsert-only", `{adopt: name, adopt_unmatched: true, policy: upsert-only}`, []string{"sync.adopt_unmatched: needs sync.policy sync"}},
		{"both at once", `{adopt: none, adopt_unmatched: true, policy: create-only}`, []string{"needs sync.adopt external_id or name", "needs sync.policy sync"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\nsync: "+tc.sync+"\n"), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if o := c.PlanOptions(); !o.AdoptUnmatched {
					t.Errorf("PlanOptions().AdoptUnmatched = false, want true")
				}
				return
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want an error with %q", err, want)
				}
			}
		})
	}
}
