package google

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/scim/golden"
)

// TestFlavourGolden maps the sample directory (seedSmall: aliases, custom schemas, suspended
// and archived users, nested groups with a cycle, external and CUSTOMER members) through the
// google flavour's default mapping and compares the snapshot with testdata/google.golden.
func TestFlavourGolden(t *testing.T) {
	e := newEnv(t)
	seedSmall(e.fake)
	dir, err := e.open(t, nil).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := connectors.Compile(Flavour(), connectors.MappingConfig{}, connectors.ScopeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(m.Apply(dir), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden.Check(t, filepath.Join("testdata", "google.golden"), got)
}
