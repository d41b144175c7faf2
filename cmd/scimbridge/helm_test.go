package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/config"
)

const chartDir = "../../deploy/helm/scimbridge"

// renderChart renders the Helm chart as `helm template` does (values coalesced, values.schema.json
// checked, strict templates) and returns its ConfigMap and Deployment.
func renderChart(t *testing.T, values string) (*corev1.ConfigMap, *appsv1.Deployment) {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals.AsMap(), chartutil.ReleaseOptions{Name: "sync", Namespace: "identity", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	out, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var cm corev1.ConfigMap
	var d appsv1.Deployment
	if err := yaml.Unmarshal([]byte(out["scimbridge/templates/configmap.yaml"]), &cm); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(out["scimbridge/templates/deployment.yaml"]), &d); err != nil {
		t.Fatal(err)
	}
	return &cm, &d
}

// podFiles writes the ConfigMap's files where the pod sees them (/etc/scimbridge, moved into a
// temporary folder) and returns the config file's path; the environment of the container's
// plain values is set for the test.
func podFiles(t *testing.T, cm *corev1.ConfigMap, d *appsv1.Deployment) string {
	t.Helper()
	etc := t.TempDir()
	for name, content := range cm.Data {
		content = strings.ReplaceAll(content, "/etc/scimbridge/", etc+"/")
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom == nil {
			t.Setenv(e.Name, e.Value)
		}
	}
	return filepath.Join(etc, "scimbridge.yaml")
}

// TestChartConfigLoads renders the chart and loads its config with scimbridge's own loader, as
// the pod would, for the default values (a demo that works: `scimbridge check` reads the example
// directory and reaches the embedded target), the chart's CI values, and two replicas on
// PostgreSQL (state.url comes from a Secret at run time, so it is not in the file).
func TestChartConfigLoads(t *testing.T) {
	for name, values := range map[string]string{
		"defaults": "",
		"full":     mustRead(t, filepath.Join(chartDir, "ci", "full-values.yaml")),
		"replicas": `replicas: 2
stateDatabase: {existingSecret: scimbridge-db}
secrets: {existingSecret: scimbridge}
config:
  source: {type: file, file: {path: /etc/scimbridge/directory.yaml}}
  target: {scim_url: 'https://scim.eu-west-1.amazonaws.com/abcd1234/scim/v2', token_file: /run/secrets/scimbridge/scim-token}
`,
	} {
		t.Run(name, func(t *testing.T) {
			cm, d := renderChart(t, values)
			path := podFiles(t, cm, d)
			c, err := config.Load(path)
			if err != nil {
				t.Fatalf("the rendered config does not load: %v\n%s", err, cm.Data["scimbridge.yaml"])
			}
			if c.Service.Listen != "0.0.0.0:8080" {
				t.Errorf("service.listen %q, want the container port on every address", c.Service.Listen)
			}
			if name != "defaults" {
				return
			}
			env := exampleEnv("SCIMBRIDGE_SERVICE_LISTEN=0.0.0.0:8080")
			out, errOut, code := runEnv(t, t.TempDir(), env, "check", "--config", path)
			if code != 0 || !strings.Contains(out, "15 users, 6 groups") || !strings.Contains(out, "everything reachable") {
				t.Errorf("check of the default values: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
