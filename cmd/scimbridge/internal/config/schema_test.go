package config

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// valuesSchemaPath is the Helm chart's values schema, whose config property JSONSchema fills.
const valuesSchemaPath = "../../../../deploy/helm/scimbridge/values.schema.json"

// helmValuesSchema returns the chart's values schema with its config property made from
// JSONSchema, plus the chart's own rules: source is required, and service.listen is set by the
// chart from containerPort.
func helmValuesSchema(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(valuesSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", valuesSchemaPath, err)
	}
	cfg := JSONSchema()
	cfg["type"] = "object"
	cfg["required"] = []string{"source"}
	cfg["description"] = "scimbridge's configuration file, checked against scimbridge's own config schema " +
		"(generated with deploy/CONFIG.md by go generate ./cmd/scimbridge/internal/config)"
	svc := cfg["properties"].(map[string]any)["service"].(map[string]any)
	svc["not"] = map[string]any{"required": []string{"listen"}}
	svc["description"] = "service.listen is set by the chart from containerPort"
	doc["properties"].(map[string]any)["config"] = cfg
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestHelmValuesSchema keeps the chart's values.schema.json config property equal to
// JSONSchema: a key added to the Config without regenerating fails here. Regenerate with
// `go generate ./cmd/scimbridge/internal/config` (or this test with -update).
func TestHelmValuesSchema(t *testing.T) {
	want := helmValuesSchema(t)
	if *update {
		if err := os.WriteFile(valuesSchemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(valuesSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(got), string(want)); diff != "" {
		t.Fatalf("the chart's values.schema.json is stale; regenerate it: go generate ./cmd/scimbridge/internal/config (-file +generated):\n%s", diff)
	}
}

// TestJSONSchemaCoversEveryKey: every key of deploy/CONFIG.md is in the schema, every secret
// refuses a literal, every enum tag is an enum.
func TestJSONSchemaCoversEveryKey(t *testing.T) {
	s := JSONSchema()
	for _, v := range EnvVars() {
		node := s
		for _, k := range strings.Split(v.Key, ".") {
			props, _ := node["properties"].(map[string]any)
			next, ok := props[k].(map[string]any)
			if !ok {
				t.Fatalf("the schema lacks %s", v.Key)
			}
			node = next
		}
		if v.Type == "secret" && !cmp.Equal(node["not"], map[string]any{"not": map[string]any{"pattern": SecretReference}}) {
			t.Errorf("%s: a secret whose schema is %v", v.Key, node)
		}
	}
	policy := s["properties"].(map[string]any)["sync"].(map[string]any)["properties"].(map[string]any)["policy"]
	if diff := cmp.Diff(map[string]any{"enum": []string{"sync", "upsert-only", "create-only"}}, policy); diff != "" {
		t.Errorf("sync.policy (-want +got):\n%s", diff)
	}
}
