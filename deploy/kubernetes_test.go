package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor that the chart writes
// (its CRD types are not a dependency); unknown fields are still rejected.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects are the parsed documents of a rendering, by kind.
type objects struct {
	deployments     []*appsv1.Deployment
	cronJobs        []*batchv1.CronJob
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	pvcs            []*corev1.PersistentVolumeClaim
	serviceAccounts []*corev1.ServiceAccount
	ingresses       []*networkingv1.Ingress
	serviceMonitors []*serviceMonitor
	pdbs            []*policyv1.PodDisruptionBudget
	kinds           []string
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// parseManifests decodes every YAML document of src into its Kubernetes API type, strictly: an
// unknown or misspelt field, a duplicate key, a wrong type or an unknown kind is an error.
func parseManifests(t *testing.T, name, src string, into *objects) {
	t.Helper()
	for i, doc := range docSeparator.Split(src, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("%s document %d: %v", name, i, err)
		}
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			o := &appsv1.Deployment{}
			into.deployments, obj = append(into.deployments, o), o
		case "batch/v1/CronJob":
			o := &batchv1.CronJob{}
			into.cronJobs, obj = append(into.cronJobs, o), o
		case "v1/ConfigMap":
			o := &corev1.ConfigMap{}
			into.configMaps, obj = append(into.configMaps, o), o
		case "v1/Secret":
			o := &corev1.Secret{}
			into.secrets, obj = append(into.secrets, o), o
		case "v1/Service":
			o := &corev1.Service{}
			into.services, obj = append(into.services, o), o
		case "v1/PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			into.pvcs, obj = append(into.pvcs, o), o
		case "v1/ServiceAccount":
			o := &corev1.ServiceAccount{}
			into.serviceAccounts, obj = append(into.serviceAccounts, o), o
		case "networking.k8s.io/v1/Ingress":
			o := &networkingv1.Ingress{}
			into.ingresses, obj = append(into.ingresses, o), o
		case "policy/v1/PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			into.pdbs, obj = append(into.pdbs, o), o
		case "monitoring.coreos.com/v1/ServiceMonitor":
			o := &serviceMonitor{}
			into.serviceMonitors, obj = append(into.serviceMonitors, o), o
		default:
			t.Fatalf("%s document %d: unexpected kind %s/%s", name, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s document %d (%s): %v\n%s", name, i, tm.Kind, err, doc)
		}
		into.kinds = append(into.kinds, tm.Kind)
	}
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

const chartDir = "helm/scimbridge"

// render renders the chart with Helm's engine (strict: a missing value is an error) after Helm's
// own values coalescing and values.schema.json validation, as `helm template` does.
func render(t *testing.T, valuesFiles ...string) (map[string]string, error) {
	t.Helper()
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	for _, f := range valuesFiles {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	if !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		t.Fatalf("chart kubeVersion %q does not accept %s", ch.Metadata.KubeVersion, caps.KubeVersion.String())
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "sync", Namespace: "identity", Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(ch, rv)
}

// renderObjects renders and parses every manifest; NOTES.txt is returned apart.
func renderObjects(t *testing.T, valuesFiles ...string) (*objects, string) {
	t.Helper()
	out, err := render(t, valuesFiles...)
	if err != nil {
		t.Fatalf("render %v: %v", valuesFiles, err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs objects
	notes := ""
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "NOTES.txt"):
			notes = out[n]
		case strings.HasSuffix(n, ".yaml"):
			parseManifests(t, n, out[n], &objs)
		}
	}
	return &objs, notes
}

func TestChartDefaultValues(t *testing.T) {
	objs, notes := renderObjects(t)
	if diff := cmp.Diff([]string{"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"}, objs.kinds); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
	d := objs.deployments[0]
	checkDeployment(t, d)
	if v := d.Spec.Template.Spec.Volumes[len(d.Spec.Template.Spec.Volumes)-1]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != objs.pvcs[0].Name {
		t.Errorf("state volume %+v, want the chart's PVC %s", v, objs.pvcs[0].Name)
	}
	if d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/scimbridge/scimbridge:0.1.0" {
		t.Errorf("image %s, want the appVersion tag", d.Spec.Template.Spec.Containers[0].Image)
	}
	cfg := objs.configMaps[0].Data["scimbridge.yaml"]
	var parsed struct {
		Source  map[string]any    `json:"source"`
		Target  map[string]any    `json:"target"`
		Service map[string]string `json:"service"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatalf("rendered config: %v\n%s", err, cfg)
	}
	if parsed.Service["listen"] != "0.0.0.0:8080" || parsed.Service["interval"] != "1h" {
		t.Errorf("service section %v, want listen 0.0.0.0:8080 and the values' interval", parsed.Service)
	}
	// The defaults are a demo that works: the example directory into the embedded target.
	if parsed.Target != nil || parsed.Source["type"] != "file" {
		t.Errorf("source %v target %v, want the file source and no target (the embedded Identity Center)", parsed.Source, parsed.Target)
	}
	example, err := os.ReadFile("examples/directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := objs.configMaps[0].Data["directory.yaml"]; got != string(example) {
		t.Errorf("the ConfigMap's directory.yaml differs from deploy/examples/directory.yaml (copy it to %s/files/directory.yaml)", chartDir)
	}
	if objs.pvcs[0].Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the state PVC must survive helm uninstall")
	}
	for _, want := range []string{"DEMO: no config.target", "port-forward svc/sync-scimbridge 8080",
		"/metrics has no authentication", "sign in with service.ui_password"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
}

// checkDeployment asserts what every rendering's Deployment must hold.
func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %s, want exactly 1 and Recreate", fmt.Sprint(d.Spec.Replicas != nil && *d.Spec.Replicas == 1), d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if diff := cmp.Diff([]string{"serve", "--config", "/etc/scimbridge/scimbridge.yaml"}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	checkSecurity(t, pod.SecurityContext, c.SecurityContext)
	for probe, want := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.String() != "http" {
			t.Errorf("probe on %s: %+v", probe, want)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want memory requests and limits", c.Resources)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m, ok := mounts["/var/lib/scimbridge"]; !ok || m.ReadOnly {
		t.Errorf("state mount %+v, want /var/lib/scimbridge writable", m)
	}
	if m, ok := mounts["/etc/scimbridge"]; !ok || !m.ReadOnly {
		t.Errorf("config mount %+v, want /etc/scimbridge read-only", m)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a config change would not roll the pod")
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels", k, v)
		}
	}
}

// checkSecurity asserts the hardening every pod of ours has.
func checkSecurity(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", pod)
	}
	if c == nil || c.RunAsNonRoot == nil || !*c.RunAsNonRoot || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem ||
		c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation || c.Capabilities == nil ||
		!slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v", c)
	}
}

func TestChartFullValues(t *testing.T) {
	objs, notes := renderObjects(t, filepath.Join(chartDir, "ci", "full-values.yaml"))
	if diff := cmp.Diff([]string{"ConfigMap", "Deployment", "Ingress", "PersistentVolumeClaim", "Service", "ServiceAccount", "ServiceMonitor"}, objs.kinds); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
	d := objs.deployments[0]
	checkDeployment(t, d)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/platform/scimbridge@sha256:0000000000000000000000000000000000000000000000000000000000000000" {
		t.Errorf("image %s, want the digest", c.Image)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["SCIMBRIDGE_SERVICE_UI_PASSWORD"]; e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
		e.ValueFrom.SecretKeyRef.Name != "scimbridge" || e.ValueFrom.SecretKeyRef.Key != "ui-password" {
		t.Errorf("secret env %+v", e)
	}
	if env["AWS_REGION"].Value != "eu-west-1" || env["SCIMBRIDGE_SERVICE_LISTEN"].Value != "0.0.0.0:8080" {
		t.Errorf("env %v", env)
	}
	var secretVol *corev1.Volume
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secretVol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	if secretVol == nil || secretVol.Secret.SecretName != "scimbridge" || *secretVol.Secret.DefaultMode != 0o400 {
		t.Errorf("secret volume %+v", secretVol)
	}
	if sa := objs.serviceAccounts[0]; sa.Name != "scimbridge-sync" || d.Spec.Template.Spec.ServiceAccountName != sa.Name ||
		sa.Annotations["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("service account %+v", sa.ObjectMeta)
	}
	ing := objs.ingresses[0]
	if p := ing.Spec.Rules[0].HTTP.Paths; len(p) != 1 || p[0].Path != "/v1" || p[0].Backend.Service.Name != "directory-sync" ||
		p[0].Backend.Service.Port.Name != "http" || ing.Spec.TLS[0].SecretName != "scimbridge-tls" {
		t.Errorf("ingress %+v", ing.Spec)
	}
	sm := objs.serviceMonitors[0]
	if sm.Labels["release"] != "prometheus" || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Port != "http" {
		t.Errorf("service monitor %+v", sm)
	}
	if svc := objs.services[0]; svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service %+v", svc.Spec)
	}
	cm := objs.configMaps[0]
	if !strings.Contains(cm.Data["scimbridge.yaml"], "token: aws-secretsmanager://scimbridge/scim#token") || cm.Data["ca.pem"] == "" {
		t.Errorf("config map %v", cm.Data)
	}
	if !strings.Contains(notes, "https://scimbridge.corp.example.com/v1/sync") {
		t.Errorf("NOTES.txt lacks the webhook URL:\n%s", notes)
	}
}

func TestChartEmptyDirValues(t *testing.T) {
	objs, notes := renderObjects(t, filepath.Join(chartDir, "ci", "emptydir-values.yaml"))
	if diff := cmp.Diff([]string{"Deployment", "Service"}, objs.kinds); diff != "" {
		t.Fatalf("kinds, want no ConfigMap, PVC or ServiceAccount (-want +got):\n%s", diff)
	}
	d := objs.deployments[0]
	checkDeployment(t, d)
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	if v := vols["state"]; v.EmptyDir == nil || v.EmptyDir.SizeLimit.String() != "256Mi" {
		t.Errorf("state volume %+v, want an emptyDir of 256Mi", v)
	}
	if v := vols["config"]; v.ConfigMap == nil || v.ConfigMap.Name != "my-scimbridge-config" {
		t.Errorf("config volume %+v", v)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "shared-sync" {
		t.Errorf("service account %s", d.Spec.Template.Spec.ServiceAccountName)
	}
	if !strings.Contains(notes, "persistence is off") {
		t.Errorf("NOTES.txt lacks the persistence warning")
	}
}

// TestChartExposedServiceWarns: a Service reachable from outside the cluster puts /metrics,
// which has no authentication, in front of everyone; NOTES.txt says so.
func TestChartExposedServiceWarns(t *testing.T) {
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte("service: {type: LoadBalancer}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, notes := renderObjects(t, f)
	if !strings.Contains(notes, "WARNING: service.type is LoadBalancer: /metrics (no authentication)") {
		t.Errorf("NOTES.txt lacks the warning about an exposed /metrics:\n%s", notes)
	}
	_, notes = renderObjects(t)
	if strings.Contains(notes, "WARNING: service.type") {
		t.Errorf("NOTES.txt warns about a ClusterIP Service:\n%s", notes)
	}
}

// TestChartSchemaRejects checks that values.schema.json stops bad values at render time.
func TestChartSchemaRejects(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"misspelt key", "persistance: {enabled: false}\n", "persistance"},
		{"literal token", "config: {source: {type: file}, target: {token: s3cr3t-value}}\n", "token"},
		{"writable root", "securityContext: {runAsNonRoot: true, readOnlyRootFilesystem: false, allowPrivilegeEscalation: false}\n", "readOnlyRootFilesystem"},
		{"listen set by hand", "config: {source: {type: file}, service: {listen: '127.0.0.1:9'}}\n", "service"},
		{"unknown source", "config: {source: {type: okta}}\n", "type"},
		{"bad digest", "image: {repository: x, digest: latest}\n", "digest"},
		{"lease not a duration", "leader: {lease: soon}\n", "lease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := render(t, f)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("render error %v, want a schema error about %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows a value: %v", err)
			}
		})
	}
}

func TestKubernetesManifests(t *testing.T) {
	var objs objects
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parseManifests(t, f, string(b), &objs)
	}
	if got := fmt.Sprint(len(objs.cronJobs), len(objs.configMaps), len(objs.pvcs), len(objs.serviceAccounts), len(objs.secrets)); got != "1 1 1 1 1" {
		t.Fatalf("CronJob, ConfigMap, PVC, ServiceAccount, Secret counts %s, want one each", got)
	}
	cj := objs.cronJobs[0]
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || cj.Spec.Schedule == "" {
		t.Errorf("cronjob spec %+v", cj.Spec)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	if diff := cmp.Diff([]string{"sync", "--config", "/etc/scimbridge/scimbridge.yaml"}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy: got %s, want %s", pod.RestartPolicy, corev1.RestartPolicyNever)
	}
	checkSecurity(t, pod.SecurityContext, c.SecurityContext)
	if pod.ServiceAccountName != objs.serviceAccounts[0].Name {
		t.Errorf("service account %s", pod.ServiceAccountName)
	}
	refs := map[string]string{}
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			refs["ConfigMap"] = v.ConfigMap.Name
		case v.Secret != nil:
			refs["Secret"] = v.Secret.SecretName
		case v.PersistentVolumeClaim != nil:
			refs["PVC"] = v.PersistentVolumeClaim.ClaimName
		}
	}
	want := map[string]string{"ConfigMap": objs.configMaps[0].Name, "Secret": objs.secrets[0].Name, "PVC": objs.pvcs[0].Name}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("volumes name other objects than the manifests' (-want +got):\n%s", diff)
	}
	rules := cj.Spec.JobTemplate.Spec.PodFailurePolicy
	if rules == nil || rules.Rules[0].OnExitCodes == nil || !slices.Contains(rules.Rules[0].OnExitCodes.Values, 3) {
		t.Errorf("exit code 3 (a guard blocked the run) must fail the job without retries: %+v", rules)
	}
	var cfg struct {
		Source struct {
			Type string `json:"type"`
		} `json:"source"`
		Target map[string]string `json:"target"`
	}
	if err := yaml.Unmarshal([]byte(objs.configMaps[0].Data["scimbridge.yaml"]), &cfg); err != nil || cfg.Source.Type == "" ||
		!strings.HasPrefix(cfg.Target["token_file"], "/run/secrets/scimbridge/") {
		t.Errorf("config %+v: %v", cfg, err)
	}
}

// writeValues writes values for a test into a file and returns its path.
func writeValues(t *testing.T, values string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// haValues are two replicas on PostgreSQL with a real target.
const haValues = `replicas: 2
stateDatabase: {existingSecret: scimbridge-db, key: url}
secrets: {existingSecret: scimbridge}
config:
  source: {type: file, file: {path: /etc/scimbridge/directory.yaml}}
  target:
    scim_url: https://scim.eu-west-1.amazonaws.com/abcd1234/scim/v2
    token_file: /run/secrets/scimbridge/scim-token
`

// TestChartHighAvailability: replicas 2 with a database URL from a Secret renders a rolling
// Deployment of 2 whose pods get the URL as SCIMBRIDGE_STATE_URL (state.url), prefer different
// nodes, a PodDisruptionBudget, and no PVC.
func TestChartHighAvailability(t *testing.T) {
	objs, notes := renderObjects(t, writeValues(t, haValues))
	if diff := cmp.Diff([]string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"}, objs.kinds); diff != "" {
		t.Fatalf("kinds, want a PodDisruptionBudget and no PVC (-want +got):\n%s", diff)
	}
	d := objs.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("replicas %v strategy %+v, want 2, a rolling update that keeps one running", d.Spec.Replicas, d.Spec.Strategy)
	}
	pod := d.Spec.Template.Spec
	checkSecurity(t, pod.SecurityContext, pod.Containers[0].SecurityContext)
	var url *corev1.EnvVar
	for i, e := range pod.Containers[0].Env {
		if e.Name == "SCIMBRIDGE_STATE_URL" {
			url = &pod.Containers[0].Env[i]
		}
	}
	if url == nil || url.Value != "" || url.ValueFrom == nil || url.ValueFrom.SecretKeyRef.Name != "scimbridge-db" || url.ValueFrom.SecretKeyRef.Key != "url" {
		t.Errorf("SCIMBRIDGE_STATE_URL %+v, want it from the Secret scimbridge-db, key url", url)
	}
	for _, v := range pod.Volumes {
		if v.Name == "state" && v.EmptyDir == nil {
			t.Errorf("state volume %+v, want an emptyDir (the state is in PostgreSQL)", v)
		}
	}
	aff := pod.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("affinity %+v, want a preferred anti-affinity over hostnames", aff)
	} else if sel := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchLabels; !cmp.Equal(sel, d.Spec.Selector.MatchLabels) {
		t.Errorf("anti-affinity selects %v, want the pods' own labels %v", sel, d.Spec.Selector.MatchLabels)
	}
	pdb := objs.pdbs[0]
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || !cmp.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %+v", pdb.Spec)
	}
	if !strings.Contains(notes, "2 replicas share the state in PostgreSQL") {
		t.Errorf("NOTES.txt lacks the replicas note:\n%s", notes)
	}
	objs, _ = renderObjects(t, writeValues(t, haValues+"podAntiAffinity: hard\n"))
	if a := objs.deployments[0].Spec.Template.Spec.Affinity; a == nil || len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("podAntiAffinity hard: affinity %+v, want a required anti-affinity", a)
	}
	// The lease settings of serve go to its arguments; left empty, serve keeps its defaults.
	objs, _ = renderObjects(t, writeValues(t, haValues+"leader: {lease: 30s, keepalive: 5s, standbyRetry: 1m30s}\n"))
	want := []string{"serve", "--config", "/etc/scimbridge/scimbridge.yaml", "--lease=30s", "--keepalive=5s", "--standby-retry=1m30s"}
	if diff := cmp.Diff(want, objs.deployments[0].Spec.Template.Spec.Containers[0].Args); diff != "" {
		t.Errorf("serve's arguments with leader settings (-want +got):\n%s", diff)
	}
	// One replica with a database: no PVC either, and still one replica.
	objs, _ = renderObjects(t, writeValues(t, strings.Replace(haValues, "replicas: 2", "replicas: 1", 1)))
	if len(objs.pvcs) != 0 || len(objs.pdbs) != 0 || *objs.deployments[0].Spec.Replicas != 1 {
		t.Errorf("replicas 1 on PostgreSQL: %d PVCs, %d PDBs, %d replicas; want none, none, 1", len(objs.pvcs), len(objs.pdbs), *objs.deployments[0].Spec.Replicas)
	}
}

// TestChartRenderTimeErrors: mistakes that would end in a crash loop, or in two writers on one
// SQLite file, fail at render time saying what to set.
func TestChartRenderTimeErrors(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"replicas without a database", "replicas: 2\nconfig: {source: {type: file}, target: {scim_url: 'https://x/scim/v2', token: 'env://T'}}\n",
			"replicas: 2 needs stateDatabase.existingSecret"},
		{"replicas with the embedded target", "replicas: 3\nstateDatabase: {existingSecret: db}\n", "replicas: 3 needs config.target.scim_url"},
		{"a secret file without the Secret", "config: {source: {type: file}, target: {scim_url: 'https://x/scim/v2', token_file: /run/secrets/scimbridge/scim-token}}\n",
			"secrets.existingSecret is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, writeValues(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestChartSchemaChecksTheConfig: values.schema.json holds scimbridge's own config schema, so a
// misspelt or mistyped nested key, a wrong value or a literal secret anywhere in config fails at
// render time, and references pass.
func TestChartSchemaChecksTheConfig(t *testing.T) {
	for _, tc := range []struct{ name, values, want string }{
		{"misspelt nested key", "config: {source: {type: file}, target: {scim_ur: 'https://x'}}\n", "scim_ur"},
		{"misspelt deep key", "config: {source: {type: ldap, ldap: {users: {base_db: 'dc=x'}}}}\n", "base_db"},
		{"wrong enum", "config: {source: {type: file}, sync: {policy: yolo}}\n", "policy"},
		{"wrong type", "config: {source: {type: file}, target: {concurrency: many}}\n", "concurrency"},
		{"literal LDAP password", "config: {source: {type: ldap, ldap: {bind_password: hunter2-hunter2}}}\n", "bind_password"},
		{"literal Google key", "config: {source: {type: google, google: {service_account_key: '{\"private_key\": \"x\"}'}}}\n", "service_account_key"},
		{"literal webhook secret", "config: {source: {type: file}, service: {webhook_secret: abc123abc123}}\n", "webhook_secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, writeValues(t, tc.values))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("got %v, want a schema error about %s", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "abc123abc123", "private_key"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the secret %q: %v", secret, err)
				}
			}
		})
	}
	ok := `secrets: {existingSecret: scimbridge}
config:
  source:
    type: ldap
    ldap: {flavour: active_directory, url: 'ldaps://dc1:636', bind_password: 'aws-ssm:///scimbridge/bind', users: {base_dn: 'dc=x'}}
  target: {scim_url: 'https://x/scim/v2', token: 'aws-secretsmanager://scimbridge/scim#token', concurrency: 8, timeout: 45s}
  service: {webhook_secret_file: /run/secrets/scimbridge/webhook-secret, bearer_token: '${BEARER}'}
  sync: {policy: upsert-only, guards: {max_deletes: 50}}
`
	if _, err := render(t, writeValues(t, ok)); err != nil {
		t.Errorf("references and valid values were refused: %v", err)
	}
}
