package google

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimbridge/scimbridge/connectors"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

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
	golden := filepath.Join("testdata", "google.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("mapped google directory (-want +got):\n%s", cmp.Diff(string(want), string(got)))
	}
}
