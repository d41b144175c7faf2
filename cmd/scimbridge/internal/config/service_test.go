package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scimbridge/scimbridge/connectors/secret"
)

func TestServiceDefaults(t *testing.T) {
	c, err := Parse([]byte("source: {type: file, file: {path: d.yaml}}\nservice: {interval: 10m}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := c.Service
	if s.Listen != "127.0.0.1:8080" || *s.Jitter != 0.1 || time.Duration(*s.MinTriggerGap) != 30*time.Second ||
		time.Duration(s.ReadyMaxAge) != 30*time.Minute || time.Duration(s.ShutdownGrace) != 30*time.Second ||
		time.Duration(s.ReplayWindow) != 5*time.Minute || s.MaxBodyBytes != 1<<20 || time.Duration(s.ProbeCache) != 30*time.Second ||
		s.AuthFailuresPerMinute != 5 {
		t.Errorf("defaults: %+v", s)
	}
	c, _ = Parse([]byte("source: {type: file, file: {path: d.yaml}}\nservice: {min_trigger_gap: 0s, jitter: 0}\n"), env(nil))
	if err := c.Validate(); err != nil || *c.Service.MinTriggerGap != 0 || *c.Service.Jitter != 0 {
		t.Errorf("an explicit 0 is kept: %v %+v", err, c.Service)
	}
}

func TestServiceProblemsAreAllReportedWithoutSecrets(t *testing.T) {
	c, err := Parse([]byte(`
source: {type: file, file: {path: d.yaml}}
service:
  listen: nowhere
  interval: 10ms
  jitter: 2
  min_trigger_gap: -1s
  webhook_secret: hunter2-webhook
  webhook_secret_file: /run/secret
  bearer_token: hunter2-bearer
  bearer_token_file: /run/token
  max_body_bytes: -5
  auth_failures_per_minute: -1
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"service.listen", "service.interval", "service.jitter", "service.min_trigger_gap",
		"service.webhook_secret and service.webhook_secret_file", "service.bearer_token and service.bearer_token_file", "service.max_body_bytes",
		"service.auth_failures_per_minute"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	out, _ := yaml.Marshal(c)
	for _, s := range []string{"hunter2-webhook", "hunter2-bearer"} {
		if strings.Contains(err.Error(), s) || strings.Contains(string(out), s) {
			t.Errorf("a secret leaks into the error or the rendered config")
		}
	}
}

func TestServiceSecretFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "wh"), []byte("from-file\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("source: {type: file, file: {path: d.yaml}}\nservice: {webhook_secret_file: wh, bearer_token: inline}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("users: []\n"), 0o600)
	c, err := Load(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wh, err := c.WebhookSecret(t.Context(), secret.NewResolver(secret.ResolverOptions{}))
	if err != nil || wh.Reveal() != "from-file" {
		t.Errorf("webhook secret from file: %v", err)
	}
	tok, err := c.BearerToken(t.Context(), nil)
	if err != nil || tok.Reveal() != "inline" {
		t.Errorf("bearer token: %v", err)
	}
	if ui, err := c.UIPassword(t.Context(), nil); err != nil || ui.IsSet() {
		t.Errorf("ui password unset: %v", err)
	}
}
